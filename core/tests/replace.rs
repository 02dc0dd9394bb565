//! Replacement semantics through the pure Rust core: no JVM involved.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{DRAIN, call, mapped, overwrite_in_place, plugins, registry};
use proxyso_core::Error;

#[test]
fn load_call_info_and_unload() {
    let p = plugins();
    let (r, _dir) = registry();
    let path = p.example_v1().to_string_lossy().into_owned();
    assert_eq!(r.load("model", &path, b"").unwrap(), 1);
    assert_eq!(call(&r, "model", None, "hello"), "hello");
    assert_eq!(call(&r, "model", Some("version"), ""), "1.0.0");
    let info = r.info("model").unwrap();
    assert_eq!(info.generation, 1);
    assert_eq!(info.path, path);
    assert_eq!(info.name, "example");
    assert_eq!(info.version, "1.0.0");
    assert_eq!(info.methods[0], "echo");
    assert!(info.methods.iter().any(|m| m == "version"));
    assert!(mapped(&info.snapshot_path));
    assert!(
        !info.snapshot_path.exists(),
        "the snapshot is deleted once mapped"
    );
    assert_eq!(r.keys(), vec!["model".to_string()]);

    assert!(r.unload("model").unwrap());
    assert!(r.await_retired("model", DRAIN));
    assert!(
        !mapped(&info.snapshot_path),
        "unloaded library is still mapped"
    );
    assert!(r.info("model").is_none());
    assert!(!r.unload("model").unwrap());
}

#[test]
fn replace_switches_new_calls_and_retires_the_old_version() {
    let p = plugins();
    let (r, _dir) = registry();
    r.load("m", &p.example_v1().to_string_lossy(), b"").unwrap();
    let old = r.info("m").unwrap();
    assert_eq!(
        r.replace("m", &p.example_v2().to_string_lossy(), b"")
            .unwrap(),
        2
    );
    assert_eq!(call(&r, "m", None, "x"), "x,ab");
    assert!(r.await_retired("m", DRAIN));
    assert!(!mapped(&old.snapshot_path));
    assert_eq!(r.info("m").unwrap().version, "2.0.0");
}

#[test]
fn loading_an_existing_key_is_refused_and_changes_nothing() {
    let p = plugins();
    let (r, _dir) = registry();
    r.load("m", &p.example_v1().to_string_lossy(), b"").unwrap();
    let err = r
        .load("m", &p.example_v2().to_string_lossy(), b"")
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyLoaded { .. }), "{err}");
    assert!(err.to_string().contains("use replace"), "{err}");
    assert_eq!(call(&r, "m", None, "x"), "x");
}

#[test]
fn replace_right_after_replace_keeps_generations_increasing() {
    let p = plugins();
    let (r, _dir) = registry();
    let (v1, v2) = (p.example_v1(), p.example_v2());
    r.load("m", &v1.to_string_lossy(), b"").unwrap();
    let mut last = 1;
    let mut snapshots = vec![r.info("m").unwrap().snapshot_path];
    for i in 0..20 {
        let path = if i % 2 == 0 { &v2 } else { &v1 };
        let generation = r.replace("m", &path.to_string_lossy(), b"").unwrap();
        assert!(generation > last);
        last = generation;
        snapshots.push(r.info("m").unwrap().snapshot_path);
    }
    // 20 replacements alternate v2, v1, ...: the last was v1.
    assert_eq!(call(&r, "m", None, "q"), "q");
    assert!(r.await_retired("m", DRAIN));
    let live = snapshots.pop().unwrap();
    assert!(mapped(&live));
    for retired in snapshots {
        assert!(!mapped(&retired), "{} is still mapped", retired.display());
    }
}

#[test]
fn the_same_path_overwritten_in_place_loads_each_new_version() {
    let p = plugins();
    let (r, dir) = registry();
    let live = dir.path().join("live.so");
    std::fs::copy(p.example_v1(), &live).unwrap();
    let live_str = live.to_string_lossy().into_owned();
    r.load("m", &live_str, b"").unwrap();
    for round in 0..6 {
        let (source, want) = if round % 2 == 0 {
            (p.example_v2(), "in,ab")
        } else {
            (p.example_v1(), "in")
        };
        overwrite_in_place(&live, &source);
        // The overwrite reaches no mapped code: the serving version answers as before.
        let before = if round % 2 == 0 { "in" } else { "in,ab" };
        assert_eq!(call(&r, "m", None, "in"), before);
        r.replace("m", &live_str, b"").unwrap();
        assert_eq!(call(&r, "m", None, "in"), want, "round {round}");
    }
}

#[test]
fn calls_in_flight_finish_on_the_old_version() {
    let p = plugins();
    let (r, _dir) = registry();
    let r = Arc::new(r);
    let fixture = p.fixture().to_string_lossy().into_owned();
    r.load("slow", &fixture, b"old").unwrap();
    let old = r.info("slow").unwrap();
    let caller = {
        let r = Arc::clone(&r);
        thread::spawn(move || call(&r, "slow", Some("sleep"), "400"))
    };
    // The call is in the old version before the replace (however slow this machine is).
    while r.info("slow").unwrap().totals.in_flight == 0 {
        thread::sleep(Duration::from_millis(1));
    }
    r.replace("slow", &fixture, b"new").unwrap();
    assert_eq!(
        call(&r, "slow", None, ""),
        "new",
        "new calls go to the new version"
    );
    assert_eq!(r.retiring("slow"), 1, "the old version waits for its call");
    assert!(mapped(&old.snapshot_path));
    assert_eq!(caller.join().unwrap(), "old");
    assert!(r.await_retired("slow", DRAIN));
    assert!(!mapped(&old.snapshot_path));
}

#[test]
fn the_last_call_out_of_a_retired_version_does_not_run_its_destroy() {
    let p = plugins();
    let (r, _dir) = registry();
    let r = Arc::new(r);
    let fixture = p.fixture().to_string_lossy().into_owned();
    // This version's destroy takes two seconds.
    r.load("d", &fixture, b"slow-destroy").unwrap();
    let caller = {
        let r = Arc::clone(&r);
        thread::spawn(move || {
            let started = Instant::now();
            let answer = call(&r, "d", Some("sleep"), "300");
            (answer, started.elapsed())
        })
    };
    thread::sleep(Duration::from_millis(100));
    r.replace("d", &fixture, b"next").unwrap();
    let (answer, took) = caller.join().unwrap();
    assert_eq!(answer, "slow-destroy");
    // The caller held the last reference; had it run destroy, its call would take 2.3 s.
    assert!(took < Duration::from_millis(1500), "the call took {took:?}");
    assert!(r.await_retired("d", DRAIN), "the reaper thread retires it");
}

#[test]
fn unload_with_calls_in_flight_lets_them_finish() {
    let p = plugins();
    let (r, _dir) = registry();
    let r = Arc::new(r);
    r.load("u", &p.fixture().to_string_lossy(), b"tag").unwrap();
    let snapshot = r.info("u").unwrap().snapshot_path;
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let r = Arc::clone(&r);
            thread::spawn(move || call(&r, "u", Some("sleep"), "300"))
        })
        .collect();
    thread::sleep(Duration::from_millis(100));
    assert!(r.unload("u").unwrap());
    let mut out = Vec::new();
    assert!(matches!(
        r.call("u", None, b"", &mut out),
        Err(Error::NoSuchLibrary { .. })
    ));
    assert!(
        !r.await_retired("u", Duration::from_millis(10)),
        "calls are still running"
    );
    for caller in callers {
        assert_eq!(caller.join().unwrap(), "tag");
    }
    assert!(r.await_retired("u", DRAIN));
    assert!(!mapped(&snapshot));
}

#[test]
fn replace_under_four_calling_threads_fails_no_call() {
    let p = plugins();
    let (r, _dir) = registry();
    let r = Arc::new(r);
    let (v1, v2) = (p.example_v1(), p.example_v2());
    r.load("hot", &v1.to_string_lossy(), b"").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (r, stop, counts) = (Arc::clone(&r), Arc::clone(&stop), Arc::clone(&counts));
            thread::spawn(move || {
                let mut out = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let slot = match r.call("hot", None, b"ping", &mut out) {
                        Ok(()) if out == b"ping" => 0,
                        Ok(()) if out == b"ping,ab" => 1,
                        _ => 2,
                    };
                    counts[slot].fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for i in 0..60 {
        let path = if i % 2 == 0 { &v2 } else { &v1 };
        r.replace("hot", &path.to_string_lossy(), b"").unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.join().unwrap();
    }
    let [v1_answers, v2_answers, failed] = counts.each_ref().map(|c| c.load(Ordering::Relaxed));
    assert_eq!(failed, 0, "calls failed during replacement");
    assert!(
        v1_answers > 0 && v2_answers > 0,
        "v1 {v1_answers}, v2 {v2_answers}"
    );
    assert!(r.await_retired("hot", DRAIN));
}

/// Calls that sleep inside the plugin, by key and through a handle, while the key is replaced
/// every millisecond or two: no version is closed while a call is inside it (its code would be
/// unmapped under the sleeping thread, which then crashes the process on return), each call
/// answers from the version it entered, and every replaced version is closed once drained.
#[test]
fn no_version_is_closed_while_a_call_is_inside_it_under_rapid_replacement() {
    let p = plugins();
    let (r, _dir) = registry();
    let r = Arc::new(r);
    let fixture = p.fixture().to_string_lossy().into_owned();
    r.load("rapid", &fixture, b"g0").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..3)
        .map(|i| {
            let (r, stop) = (Arc::clone(&r), Arc::clone(&stop));
            thread::spawn(move || {
                let handle = r.handle("rapid").unwrap();
                let mut out = Vec::new();
                let mut calls = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if (calls + i) % 2 == 0 {
                        handle.call(Some("sleep"), b"1", &mut out).unwrap();
                    } else {
                        r.call("rapid", Some("sleep"), b"1", &mut out).unwrap();
                    }
                    let tag = String::from_utf8(out.clone()).unwrap();
                    assert!(tag.starts_with('g'), "answered {tag:?}");
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    let replacements = 60;
    for n in 1..=replacements {
        r.replace("rapid", &fixture, format!("g{n}").as_bytes())
            .unwrap();
        thread::sleep(Duration::from_micros(500 + 1000 * (n % 2)));
    }
    stop.store(true, Ordering::Relaxed);
    let calls: u64 = callers.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(calls > 0);
    assert!(r.await_retired("rapid", DRAIN));
    let info = r.info("rapid").unwrap();
    assert_eq!(info.retired_versions, replacements);
    assert_eq!(info.totals.in_flight, 0);
    assert_eq!(info.totals.calls, calls);
    assert_eq!(
        call(&r, "rapid", Some("tag"), ""),
        format!("g{replacements}")
    );
}

#[test]
fn dropping_the_registry_closes_everything() {
    let p = plugins();
    let (r, _dir) = registry();
    r.load("a", &p.example_v1().to_string_lossy(), b"").unwrap();
    r.load("b", &p.example_v2().to_string_lossy(), b"").unwrap();
    let snapshots = [
        r.info("a").unwrap().snapshot_path,
        r.info("b").unwrap().snapshot_path,
    ];
    drop(r);
    for s in snapshots {
        assert!(!mapped(&s), "{} is still mapped", s.display());
    }
}
