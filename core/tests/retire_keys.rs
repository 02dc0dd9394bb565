//! Keys retire independently: a plugin whose `destroy` blocks holds up no other key's retired
//! versions, and its slow `destroy` is logged and counted while it runs. In its own process: it
//! sets the process-wide slow-destroy limit.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{DRAIN, call, plugins, registry, scratch_dir};
use proxyso_core::Registry;
use proxyso_core::log::{Level, Record};

/// Polls `test` every 10 ms until it holds; false after `within`.
fn eventually(within: Duration, mut test: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if test() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Replaces `key` (the slow-destroy fixture) while a call is in flight, so that the calling
/// thread drops the last reference and the old version goes to a reaper thread.
fn replace_under_a_call(r: &Arc<Registry>, key: &'static str, fixture: &str) {
    let caller = {
        let r = Arc::clone(r);
        thread::spawn(move || call(&r, key, Some("sleep"), "400"))
    };
    assert!(
        eventually(DRAIN, || r.info(key).unwrap().totals.in_flight == 1),
        "the call into {key} never started"
    );
    r.replace(key, fixture, b"").unwrap();
    assert_eq!(caller.join().unwrap(), "slept");
}

#[test]
fn a_blocking_destroy_holds_up_no_other_key() {
    proxyso_core::retire::set_slow_destroy_limit(Duration::from_millis(300));
    let records = Arc::new(Mutex::new(Vec::<Record>::new()));
    let sink = Arc::clone(&records);
    proxyso_core::log::set_sink(Some(Arc::new(move |record: Record| {
        sink.lock().unwrap().push(record);
    })));
    let warnings_about = |key: &str| -> Vec<String> {
        records
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.level == Level::Warn && r.key.as_deref() == Some(key))
            .map(Record::to_string)
            .collect()
    };

    let fixture = plugins()
        .native("libfx_slow_destroy.so")
        .to_string_lossy()
        .into_owned();
    let gate_dir = scratch_dir();
    let gate = gate_dir.path().join("open");
    let (r, _dir) = registry();
    let r = Arc::new(r);

    // Key a: generation 1's destroy blocks until the gate file appears.
    r.load("a", &fixture, gate.to_string_lossy().as_bytes())
        .unwrap();
    replace_under_a_call(&r, "a", &fixture);
    assert!(
        eventually(DRAIN, || r.info("a").unwrap().destroys_running == 1),
        "a's old version is being destroyed"
    );
    assert!(!r.await_retired("a", Duration::from_millis(100)));

    // Key b, meanwhile: its retired version closes at once.
    r.load("b", &fixture, b"").unwrap();
    replace_under_a_call(&r, "b", &fixture);
    let started = Instant::now();
    assert!(
        r.await_retired("b", Duration::from_secs(5)),
        "b's retired version waited for a's destroy"
    );
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    let b = r.info("b").unwrap();
    assert_eq!(
        (b.retired_versions, b.destroys_running, b.slow_destroys),
        (1, 0, 0)
    );

    // a's destroy is counted and logged as slow while it still runs.
    assert!(
        eventually(DRAIN, || r.info("a").unwrap().slow_destroys == 1),
        "the slow destroy was not counted: {:?}",
        r.info("a")
    );
    assert!(
        eventually(DRAIN, || !warnings_about("a").is_empty()),
        "no warning"
    );
    let warnings = warnings_about("a");
    assert!(
        warnings[0].starts_with("proxyso WARN [a#1] destroy has run for"),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("0.3 s limit"), "{warnings:?}");
    let a = r.info("a").unwrap();
    assert_eq!((a.retired_versions, a.destroys_running), (0, 1));

    std::fs::write(&gate, b"").unwrap();
    assert!(r.await_retired("a", DRAIN));
    let a = r.info("a").unwrap();
    assert_eq!(
        (a.retired_versions, a.destroys_running, a.slow_destroys),
        (1, 0, 1)
    );
    assert_eq!(warnings_about("a").len(), 1, "one warning a slow destroy");
    assert!(
        records
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.key.as_deref() == Some("a")
                && r.generation == 1
                && r.message.starts_with("the slow destroy returned after")),
        "its return is noted"
    );
    proxyso_core::log::set_sink(None);
}
