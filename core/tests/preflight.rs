//! Half-written and crashing libraries: the ELF check refuses every half-written version of a
//! plugin, and a pre-flight load in a child process (`proxyso-worker`) takes the crash of a
//! library that no check of its bytes can foresee, so this process never opens it.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::fs;
use std::path::Path;

use common::{call, plugins, registry};
use proxyso_core::preflight::Worker;
use proxyso_core::{Error, LoadError, LoadOptions, Registry};

/// Options that ask for a pre-flight with the built worker.
fn preflight(worker: &Worker) -> LoadOptions<'_> {
    LoadOptions {
        preflight: true,
        worker: Some(worker),
        ..LoadOptions::default()
    }
}

/// Loads `path` under "p" with `options`; returns the load error's cause and text.
fn refused(r: &Registry, path: &Path, options: &LoadOptions<'_>) -> (LoadError, String) {
    let err = r
        .load_with("p", &path.to_string_lossy(), options)
        .unwrap_err();
    let text = err.to_string();
    let Error::Load { cause, .. } = err else {
        panic!("expected a load error, got {text}");
    };
    assert!(r.info("p").is_none(), "nothing is loaded after: {text}");
    (cause, text)
}

#[test]
fn a_library_whose_constructor_crashes_fails_in_the_child_never_here() {
    let p = plugins();
    let worker = Worker::open(&p.worker()).unwrap();
    let (r, _dir) = registry();
    let crashing = p.native("libfx_ctor_segv.so");
    let (cause, text) = refused(&r, &crashing, &preflight(&worker));
    assert!(matches!(cause, LoadError::Preflight(_)), "{text}");
    assert!(
        text.contains("pre-flight dlopen in a child process failed: the child was killed by SIGSEGV (signal 11"),
        "{text}"
    );
    assert!(text.contains(&*crashing.to_string_lossy()), "{text}");
    // This process is alive and still loads what is sound, with the same pre-flight.
    r.load_with(
        "good",
        &p.example_v1().to_string_lossy(),
        &preflight(&worker),
    )
    .unwrap();
    assert_eq!(call(&r, "good", None, "alive"), "alive");
    r.replace_with(
        "good",
        &p.example_v2().to_string_lossy(),
        &preflight(&worker),
    )
    .unwrap();
    assert_eq!(call(&r, "good", None, "x"), "x,ab");
}

#[test]
fn what_the_child_refuses_is_named_with_the_users_path() {
    let p = plugins();
    let worker = Worker::open(&p.worker()).unwrap();
    let (r, _dir) = registry();
    let missing = p.native("libfx_missing_symbol.so");
    let (_, text) = refused(&r, &missing, &preflight(&worker));
    assert!(
        text.contains("the child exited with code 10 (dlopen failed)"),
        "{text}"
    );
    assert!(text.contains("undefined symbol"), "{text}");
    assert!(
        !text.contains("/proc/self/fd"),
        "names the user's file: {text}"
    );
    assert!(
        text.contains(&format!("{}: undefined symbol", missing.display())),
        "{text}"
    );

    let (_, text) = refused(&r, &p.native("libfx_abi_mismatch.so"), &preflight(&worker));
    assert!(
        text.contains("code 12 (ABI version mismatch)")
            && text.contains("the host expects 1, the plugin has 99"),
        "{text}"
    );
    let (_, text) = refused(&r, &p.native("libfx_no_descriptor.so"), &preflight(&worker));
    assert!(text.contains("code 11 (no plugin descriptor)"), "{text}");
}

#[test]
fn a_preflight_without_a_worker_fails_clearly() {
    let p = plugins();
    let (r, dir) = registry();
    let options = LoadOptions {
        preflight: true,
        ..LoadOptions::default()
    };
    let (cause, text) = refused(&r, &p.example_v1(), &options);
    assert!(matches!(cause, LoadError::Preflight(_)), "{text}");
    assert!(
        text.contains("no proxyso-worker executable is configured")
            && text.contains("proxyso.worker"),
        "{text}"
    );
    let absent = dir.path().join("no-such-worker");
    let text = Worker::open(&absent).unwrap_err();
    assert!(
        text.contains(&format!("cannot open {}", absent.display()))
            && text.contains("No such file"),
        "{text}"
    );
    let plain = dir.path().join("not-executable");
    fs::write(&plain, b"#!/bin/sh\n").unwrap();
    let text = Worker::open(&plain).unwrap_err();
    assert!(text.contains("not executable"), "{text}");
    assert!(
        Worker::open(dir.path())
            .unwrap_err()
            .contains("not a regular file")
    );
}

#[test]
fn the_worker_runs_from_its_descriptor_even_once_its_name_is_gone() {
    // Opened once, run through the descriptor: deleting the file (or a tmp cleaner doing it,
    // and another user putting a program of theirs at the name) changes nothing that runs.
    let p = plugins();
    let (r, dir) = registry();
    let copy = dir.path().join("proxyso-worker");
    fs::copy(p.worker(), &copy).unwrap();
    let worker = Worker::open(&copy).unwrap();
    fs::remove_file(&copy).unwrap();
    fs::write(&copy, b"#!/bin/sh\nexit 0\n").unwrap();
    let crashing = p.native("libfx_ctor_segv.so");
    let (_, text) = refused(&r, &crashing, &preflight(&worker));
    assert!(
        text.contains("killed by SIGSEGV"),
        "the real worker ran: {text}"
    );
    r.load_with("p", &p.example_v1().to_string_lossy(), &preflight(&worker))
        .unwrap();
    assert_eq!(call(&r, "p", None, "x"), "x");
}

#[test]
fn every_half_written_version_is_refused_before_dlopen() {
    // Version 2 written over version 1: in place without truncating (rsync --inplace, a
    // plain open(O_WRONLY)) or truncated first (cp), stopped part-way, as a watch that
    // settled too early would see it. The check a load makes of its snapshot refuses each.
    let p = plugins();
    let v1 = fs::read(p.example_v1()).unwrap();
    let v2 = fs::read(p.example_v2()).unwrap();
    let dir = common::scratch_dir();
    let live = dir.path().join("live.so");
    for (old, new) in [(&v1, &v2), (&v2, &v1)] {
        for pct in 1..100 {
            let written = new.len() * pct / 100;
            let mut in_place = old.clone();
            if in_place.len() < written {
                in_place.resize(written, 0);
            }
            in_place[..written].copy_from_slice(&new[..written]);
            for (how, bytes) in [("in place", &in_place[..]), ("truncated", &new[..written])] {
                fs::write(&live, bytes).unwrap();
                let checked = proxyso_core::elf::check(&fs::File::open(&live).unwrap());
                assert!(checked.is_err(), "{how}, {pct} % written: accepted");
            }
        }
    }
    // And through a load: refused before dlopen, nothing loaded.
    let (r, _snapshots) = registry();
    let mut half = v1.clone();
    half[..v2.len() / 2].copy_from_slice(&v2[..v2.len() / 2]);
    fs::write(&live, &half).unwrap();
    let (cause, text) = refused(&r, &live, &LoadOptions::default());
    assert!(matches!(cause, LoadError::NotLoadable(_)), "{text}");
}
