//! A C++ exception that escapes a plugin is caught by the host's landing pad: from a method it
//! is a plugin error and the version keeps serving, from `init` a failed load that leaves
//! nothing mapped, from `destroy` an error logged with key and generation while retirement goes
//! on. Without the landing pad each of these aborts the process ("Rust cannot catch foreign
//! exceptions").
//!
//! The fixture is `libfx_throws.so` (tests/fixtures/cpp/throws.cpp).

#[path = "../../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::{DRAIN, call, mapped, plugins, registry};
use proxyso_core::host::FixedOutput;
use proxyso_core::landing::TEXT_CAPACITY;
use proxyso_core::log::{self, Level, Record};
use proxyso_core::{Error, LoadError, Registry};

fn throws() -> String {
    plugins()
        .native("libfx_throws.so")
        .to_string_lossy()
        .into_owned()
}

/// Loads the fixture under key "x" with `config`.
fn loaded(config: &[u8]) -> (Registry, tempfile::TempDir) {
    let (r, dir) = registry();
    r.load("x", &throws(), config).unwrap();
    (r, dir)
}

/// Calls `method` and returns its error's message, checking that it is a caught "panic".
fn thrown(r: &Registry, method: &str) -> (String, String) {
    let mut out = b"stale".to_vec();
    let err = r.call("x", Some(method), b"in", &mut out).unwrap_err();
    let text = err.to_string();
    let Error::Plugin {
        key,
        method: called,
        code,
        message,
        panicked,
        ..
    } = err
    else {
        panic!("expected a plugin error, got {text}");
    };
    assert_eq!((key.as_str(), called.as_str()), ("x", method));
    assert!(
        panicked,
        "an escaped exception reports as a caught panic: {text}"
    );
    assert_eq!(code, 0, "{text}");
    assert!(out.is_empty(), "no output after a failed call");
    (message, text)
}

#[test]
fn a_method_that_throws_fails_and_the_version_keeps_serving() {
    let (r, _dir) = loaded(b"");
    let (message, text) = thrown(&r, "throw");
    assert_eq!(message, "C++ exception: boom");
    assert!(
        text.starts_with("method 'throw' of library 'x' (fx-throws 1"),
        "{text}"
    );
    assert!(text.ends_with(": C++ exception: boom"), "{text}");
    assert_eq!(call(&r, "x", None, "next"), "next");

    // Thrown from inside libstdc++ itself.
    let (message, _) = thrown(&r, "at");
    assert!(message.starts_with("C++ exception: "), "{message}");
    assert!(message.contains("vector"), "{message}");
    assert_eq!(call(&r, "x", None, "again"), "again");

    let totals = r.info("x").unwrap().totals;
    assert_eq!((totals.calls, totals.in_flight), (4, 0));
}

#[test]
fn anything_else_thrown_is_named_by_its_type() {
    let (r, _dir) = loaded(b"");
    let (message, _) = thrown(&r, "throw-int");
    assert_eq!(
        message,
        "C++ exception: unknown C++ exception (of type int)"
    );
    assert_eq!(call(&r, "x", None, "next"), "next");
}

#[test]
fn a_long_what_is_cut() {
    let (r, _dir) = loaded(b"");
    let (message, _) = thrown(&r, "throw-long");
    let expected = format!("C++ exception: {}...", "x".repeat(TEXT_CAPACITY));
    assert_eq!(message, expected);
}

#[test]
fn a_throw_into_a_fixed_buffer_fails_the_same_way() {
    let (r, _dir) = loaded(b"");
    let handle = r.handle("x").unwrap();
    let mut memory = [0u8; 16];
    // SAFETY: `memory` outlives the output and nothing else touches it meanwhile.
    let mut into = unsafe { FixedOutput::new(memory.as_mut_ptr(), memory.len()) };
    let err = handle
        .call_fixed(Some("throw"), b"", &mut into)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Plugin { panicked: true, message, .. } if message == "C++ exception: boom"),
        "{err}"
    );
    // SAFETY: as above.
    let mut into = unsafe { FixedOutput::new(memory.as_mut_ptr(), memory.len()) };
    assert_eq!(handle.call_fixed(None, b"ok", &mut into).unwrap(), 2);
    assert_eq!(&memory[..2], b"ok");
}

#[test]
fn an_init_that_throws_fails_the_load_and_leaves_nothing_mapped() {
    for (config, what) in [
        (&b"init-throws"[..], "C++ exception: init boom"),
        (
            &b"init-throws-int"[..],
            "C++ exception: unknown C++ exception (of type int)",
        ),
    ] {
        let (r, dir) = registry();
        let err = r.load("x", &throws(), config).unwrap_err();
        let text = err.to_string();
        let Error::Load { key, cause, .. } = err else {
            panic!("expected a load error, got {text}");
        };
        assert_eq!(key, "x");
        let LoadError::Init {
            plugin,
            code,
            message,
            panicked,
        } = cause
        else {
            panic!("expected an init failure, got {text}");
        };
        assert_eq!(
            (plugin.as_str(), code, message.as_str(), panicked),
            ("fx-throws 1", 0, what, true),
            "{text}"
        );
        assert!(r.info("x").is_none(), "nothing serves the key");
        assert!(
            !mapped(dir.path()),
            "a snapshot of the failed load is mapped"
        );
        // The key is free: a load that succeeds takes it.
        r.load("x", &throws(), b"").unwrap();
        assert_eq!(call(&r, "x", None, "fine"), "fine");
    }
}

/// Records of `key` sent to the log sink while `f` runs. The sink is process-wide and other
/// tests log meanwhile: their records are dropped.
fn logged(key: &str, f: impl FnOnce()) -> Vec<Record> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap();
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&records);
    log::set_sink(Some(Arc::new(move |r| sink.lock().unwrap().push(r))));
    f();
    log::set_sink(None);
    let records = Arc::try_unwrap(records).unwrap().into_inner().unwrap();
    records
        .into_iter()
        .filter(|r| r.key.as_deref() == Some(key))
        .collect()
}

#[test]
fn a_destroy_that_throws_is_logged_and_the_version_still_retires() {
    let (r, _dir) = registry();
    let mut snapshots: Vec<PathBuf> = Vec::new();
    let records = logged("d", || {
        let first = r.load("d", &throws(), b"destroy-throws").unwrap();
        snapshots.push(r.info("d").unwrap().snapshot_path);
        // Replaced: the old version retires, its destroy throws.
        let second = r.replace("d", &throws(), b"destroy-throws").unwrap();
        assert!(r.await_retired("d", DRAIN));
        assert_eq!(call(&r, "d", None, "serving"), "serving");
        snapshots.push(r.info("d").unwrap().snapshot_path);
        // Unloaded: the same for the last version.
        assert!(r.unload("d").unwrap());
        assert!(r.await_retired("d", DRAIN));
        assert_eq!((first, second), (1, 2));
    });
    for (generation, snapshot) in [1, 2].into_iter().zip(&snapshots) {
        let record = records
            .iter()
            .find(|r| r.generation == generation && r.message.contains("destroy"))
            .unwrap_or_else(|| panic!("no destroy record of #{generation} in {records:#?}"));
        assert_eq!(record.level, Level::Error, "{record}");
        assert!(!record.from_plugin, "{record}");
        assert!(
            record
                .message
                .contains("destroy of plugin fx-throws 1 failed: C++ exception: destroy boom"),
            "{record}"
        );
        assert!(
            records
                .iter()
                .any(|r| r.generation == generation && r.message.contains("retired")),
            "#{generation} retired: {records:#?}"
        );
        assert!(!mapped(snapshot), "{} is still mapped", snapshot.display());
    }
}

#[test]
fn a_version_that_threw_unloads_completely() {
    let (r, _dir) = loaded(b"");
    let snapshot = r.info("x").unwrap().snapshot_path;
    for method in ["throw", "throw-int", "throw-long", "at"] {
        thrown(&r, method);
    }
    assert!(r.unload("x").unwrap());
    assert!(r.await_retired("x", DRAIN));
    assert!(
        !mapped(&snapshot),
        "a mapping of the version that threw stayed behind"
    );
    let retired = r.info("x");
    assert!(retired.is_none());
}
