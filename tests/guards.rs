//! The guards for plugins that leave code behind: kept-mapped versions, pinned versions, and
//! the crash both exist to prevent (shown in a child process).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::mpsc;
use std::thread;

use common::{DRAIN, call, mapped, plugins, registry};
use proxyso_core::LoadOptions;

/// A thread that calls `method` of `key` once, then waits for a word before it exits.
fn caller_that_waits(
    r: &std::sync::Arc<proxyso_core::Registry>,
    key: &'static str,
    method: &'static str,
) -> (mpsc::Sender<()>, thread::JoinHandle<String>) {
    let (go, wait) = mpsc::channel::<()>();
    let (done, called) = mpsc::channel::<()>();
    let r = std::sync::Arc::clone(r);
    let handle = thread::spawn(move || {
        let answer = call(&r, key, Some(method), "");
        done.send(()).unwrap();
        let _ = wait.recv();
        answer
    });
    called.recv().unwrap();
    (go, handle)
}

#[test]
fn a_kept_mapped_version_survives_a_pthread_key_destructor() {
    let p = plugins();
    let v1 = p.example_v1().to_string_lossy().into_owned();
    for (fixture, options) in [
        (
            "libfx_pthread_key.so",
            LoadOptions {
                keep_mapped: true,
                ..LoadOptions::default()
            },
        ),
        ("libfx_pthread_key_flagged.so", LoadOptions::default()),
    ] {
        let (r, _dir) = registry();
        let r = std::sync::Arc::new(r);
        r.load_with("k", &p.native(fixture).to_string_lossy(), &options)
            .unwrap();
        let old = r.info("k").unwrap();
        assert!(old.kept_mapped, "{fixture}");
        let (go, caller) = caller_that_waits(&r, "k", "set");
        r.replace("k", &v1, b"").unwrap();
        assert!(r.await_retired("k", DRAIN));
        // The thread exits now and glibc runs the plugin's destructor: still mapped, so fine.
        go.send(()).unwrap();
        assert_eq!(caller.join().unwrap(), "set");
        let info = r.info("k").unwrap();
        assert_eq!(info.retired_versions, 1, "{fixture}");
        assert_eq!(
            info.pinned_versions, 0,
            "kept on purpose is not pinned: {fixture}"
        );
        assert!(mapped(&old.snapshot_path), "{fixture} was kept mapped");
    }
}

/// The crash the option prevents, run in a child process (this test binary, one test).
#[test]
#[ignore = "run by without_keep_mapped_the_destructor_crashes_the_process in a child process"]
fn child_unloads_a_pthread_key_plugin_under_a_live_thread() {
    let (r, _dir) = registry();
    let r = std::sync::Arc::new(r);
    let path = plugins().native("libfx_pthread_key.so");
    r.load("k", &path.to_string_lossy(), b"").unwrap();
    let (go, caller) = caller_that_waits(&r, "k", "set");
    assert!(r.unload("k").unwrap());
    assert!(r.await_retired("k", DRAIN));
    go.send(()).unwrap();
    let _ = caller.join();
    println!("CHILD SURVIVED");
}

#[test]
fn without_keep_mapped_the_destructor_crashes_the_process() {
    plugins();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "--nocapture"])
        .arg("child_unloads_a_pthread_key_plugin_under_a_live_thread")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.signal().is_some() && !stdout.contains("CHILD SURVIVED"),
        "the child was not killed by a signal from the destructor in unmapped code: {:?}\n\
         {stdout}",
        out.status
    );
}

#[test]
fn a_version_pinned_by_a_thread_local_destructor_is_reported() {
    let p = plugins();
    let (r, _dir) = registry();
    let r = std::sync::Arc::new(r);
    r.load(
        "t",
        &p.native("libfx_thread_local.so").to_string_lossy(),
        b"",
    )
    .unwrap();
    let old = r.info("t").unwrap();
    assert!(!old.kept_mapped);
    let (go, caller) = caller_that_waits(&r, "t", "touch");
    r.replace("t", &p.example_v1().to_string_lossy(), b"")
        .unwrap();
    assert!(r.await_retired("t", DRAIN));
    let info = r.info("t").unwrap();
    assert_eq!(info.retired_versions, 1);
    assert_eq!(info.pinned_versions, 1, "the pinned version is reported");
    assert!(mapped(&old.snapshot_path));
    go.send(()).unwrap();
    assert_eq!(caller.join().unwrap(), "1");
}
