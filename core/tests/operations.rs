//! Operators' features through the pure Rust core: rollback, integrity, statistics, logging.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    DRAIN, call, mapped, overwrite_in_place, plugins, registry, same_library, scratch_dir,
};
use proxyso_core::log::{self, Level, Record};
use proxyso_core::{Error, LoadError, LoadOptions};
use sha2::{Digest, Sha256};

fn sha256_of(path: &std::path::Path) -> [u8; 32] {
    Sha256::digest(std::fs::read(path).unwrap()).into()
}

fn options(config: &[u8]) -> LoadOptions<'_> {
    LoadOptions::config(config)
}

#[test]
fn rollback_restores_the_previous_version_from_its_kept_bytes() {
    let p = plugins();
    let (r, _dir) = registry();
    let work = scratch_dir();
    let live = work.path().join("live.so");
    std::fs::copy(p.example_v1(), &live).unwrap();
    let live_path = live.to_string_lossy().into_owned();
    let v1_digest = sha256_of(&live);

    assert_eq!(r.load("m", &live_path, b"").unwrap(), 1);
    // The path now holds v2, overwritten in place: rollback must not read it.
    overwrite_in_place(&live, &p.example_v2());
    assert_eq!(r.replace("m", &live_path, b"").unwrap(), 2);
    assert_eq!(call(&r, "m", Some("version"), ""), "2.0.0");
    let info = r.info("m").unwrap();
    assert_eq!(info.previous.len(), 1);
    assert_eq!(info.previous[0].generation, 1);
    assert_eq!(info.previous[0].sha256, v1_digest);

    assert_eq!(r.rollback("m").unwrap(), 3, "generations only go up");
    assert_eq!(call(&r, "m", Some("version"), ""), "1.0.0");
    let info = r.info("m").unwrap();
    assert_eq!(info.generation, 3);
    assert_eq!(info.sha256, v1_digest);
    assert_eq!(info.rollbacks, 1);
    assert_eq!(info.replacements, 1);
    assert!(
        info.previous.is_empty(),
        "the rolled-back-from version is not kept"
    );
    assert!(mapped(&info.snapshot_path));

    // Nothing left to roll back to: an error that names the key, and nothing changes.
    let err = r.rollback("m").unwrap_err();
    assert!(matches!(err, Error::NoPreviousVersion { .. }), "{err}");
    assert!(err.to_string().contains("'m'"), "{err}");
    assert_eq!(r.info("m").unwrap().generation, 3);
    assert!(matches!(
        r.rollback("ghost"),
        Err(Error::NoSuchLibrary { .. })
    ));
}

#[test]
fn rollback_keeps_the_config_and_the_depth_is_configurable() {
    let p = plugins();
    let (r, _dir) = registry();
    let fixture = p.fixture().to_string_lossy().into_owned();
    let keep2 = LoadOptions {
        keep_versions: Some(2),
        ..options(b"one")
    };
    r.load_with("k", &fixture, &keep2).unwrap();
    r.replace("k", &fixture, b"two").unwrap();
    r.replace("k", &fixture, b"three").unwrap();
    r.replace("k", &fixture, b"four").unwrap();
    let info = r.info("k").unwrap();
    assert_eq!(info.keep_versions, 2);
    let kept: Vec<u64> = info.previous.iter().map(|v| v.generation).collect();
    assert_eq!(kept, [3, 2], "the two most recent, newest first");
    assert_eq!(r.rollback("k").unwrap(), 5);
    assert_eq!(
        call(&r, "k", None, ""),
        "three",
        "init got the config it had"
    );
    assert_eq!(r.rollback("k").unwrap(), 6);
    assert_eq!(call(&r, "k", None, ""), "two");
    assert!(matches!(
        r.rollback("k"),
        Err(Error::NoPreviousVersion { .. })
    ));

    // Depth 0: nothing is kept (and no kept copy is made).
    let none = LoadOptions {
        keep_versions: Some(0),
        ..options(b"a")
    };
    r.load_with("z", &fixture, &none).unwrap();
    r.replace("z", &fixture, b"b").unwrap();
    assert!(r.info("z").unwrap().previous.is_empty());
    assert!(matches!(
        r.rollback("z"),
        Err(Error::NoPreviousVersion { .. })
    ));

    let too_many = LoadOptions {
        keep_versions: Some(65),
        ..options(b"")
    };
    let err = r.load_with("y", &fixture, &too_many).unwrap_err();
    assert!(matches!(err, Error::InvalidOption { .. }), "{err}");
    assert!(err.to_string().contains("65"), "{err}");
}

#[test]
fn rollback_drains_calls_in_the_version_it_leaves() {
    let p = plugins();
    let (r, _dir) = registry();
    let r = Arc::new(r);
    let fixture = p.fixture().to_string_lossy().into_owned();
    r.load("d", &fixture, b"old").unwrap();
    r.replace("d", &fixture, b"new").unwrap();
    let started = Arc::new(Barrier::new(2));
    let sleeper = {
        let (r, started) = (Arc::clone(&r), Arc::clone(&started));
        thread::spawn(move || {
            let mut out = Vec::new();
            started.wait();
            r.call("d", Some("sleep"), b"3000", &mut out).map(|()| out)
        })
    };
    started.wait();
    thread::sleep(Duration::from_millis(100));
    let info = r.info("d").unwrap();
    assert_eq!(info.generations[0].counts.in_flight, 1, "{info:?}");
    r.rollback("d").unwrap();
    assert_eq!(
        call(&r, "d", None, ""),
        "old",
        "new calls reach the restored version"
    );
    let draining = r.info("d").unwrap().generations;
    assert_eq!(
        draining.len(),
        2,
        "the rolled-back-from generation drains: {draining:?}"
    );
    assert_eq!(
        (draining[1].generation, draining[1].counts.in_flight),
        (2, 1)
    );
    assert_eq!(
        sleeper.join().unwrap().unwrap(),
        b"new",
        "finished where it started"
    );
    assert!(r.await_retired("d", DRAIN));
    assert_eq!(r.info("d").unwrap().generations.len(), 1);
}

#[test]
fn a_failed_rollback_changes_nothing() {
    let p = plugins();
    let (r, dir) = registry();
    let fixture = p.fixture().to_string_lossy().into_owned();
    r.load("f", &fixture, b"v1").unwrap();
    r.replace("f", &fixture, b"v2").unwrap();
    // Corrupt generation 1's kept copy behind the registry's back (not the serving version's:
    // that name is a hard link to the mapped file); the digest check catches it.
    let serving = r.info("f").unwrap().snapshot_path;
    let serving_kept = format!("kept-{}", serving.file_name().unwrap().to_string_lossy());
    let kept = walk(dir.path())
        .into_iter()
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("kept-") && name != serving_kept
        })
        .expect("generation 1's kept copy in the snapshot directory");
    std::fs::write(&kept, b"not the same bytes").unwrap();
    let before = r.info("f").unwrap();
    let err = r.rollback("f").unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            &err,
            Error::Load {
                cause: LoadError::Digest { .. },
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("generation 1"),
        "names what it rolled back to: {text}"
    );
    let last_error = same_library(&before, r.info("f").unwrap());
    assert_eq!(last_error, Some(text.clone()), "recorded as the last error");
    assert_eq!(call(&r, "f", None, ""), "v2");
}

/// The files below `dir`, but for the lock file each private directory holds while in use.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else if entry.file_name() != ".lock" {
            found.push(path);
        }
    }
    found
}

#[test]
fn unload_removes_kept_copies() {
    let p = plugins();
    let (r, dir) = registry();
    let fixture = p.fixture().to_string_lossy().into_owned();
    r.load("u", &fixture, b"1").unwrap();
    r.replace("u", &fixture, b"2").unwrap();
    assert_eq!(
        walk(dir.path()).len(),
        2,
        "the serving and the previous version's copies"
    );
    r.unload("u").unwrap();
    assert!(r.await_retired("u", DRAIN));
    assert!(walk(dir.path()).is_empty(), "{:?}", walk(dir.path()));
}

#[test]
fn a_wrong_digest_fails_the_load_and_names_both() {
    let p = plugins();
    let (r, _dir) = registry();
    let v1 = p.example_v1();
    let v2 = p.example_v2();
    let path = v1.to_string_lossy().into_owned();
    let right = sha256_of(&v1);
    let wrong = sha256_of(&v2);
    let load = |sha256| LoadOptions {
        sha256: Some(sha256),
        ..options(b"")
    };
    let err = r.load_with("h", &path, &load(wrong)).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            &err,
            Error::Load {
                cause: LoadError::Digest { .. },
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains(&hex(&wrong)) && text.contains(&hex(&right)),
        "{text}"
    );
    assert!(text.contains(&path), "{text}");
    assert!(r.info("h").is_none());

    r.load_with("h", &path, &load(right)).unwrap();
    assert_eq!(r.info("h").unwrap().sha256, right);
    let v2_path = v2.to_string_lossy().into_owned();
    let before = r.info("h").unwrap();
    assert!(r.replace_with("h", &v2_path, &load(right)).is_err());
    same_library(&before, r.info("h").unwrap());
    r.replace_with("h", &v2_path, &load(wrong)).unwrap();
    assert_eq!(r.info("h").unwrap().sha256, wrong);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn statistics_per_generation_and_per_key() {
    let p = plugins();
    let (r, _dir) = registry();
    let fixture = p.fixture().to_string_lossy().into_owned();
    let exact = LoadOptions {
        exact_timing: true,
        ..options(b"t")
    };
    r.load_with("s", &fixture, &exact).unwrap();
    let mut out = Vec::new();
    for _ in 0..5 {
        r.call("s", Some("echo"), b"x", &mut out).unwrap();
    }
    for _ in 0..3 {
        assert!(r.call("s", Some("fail"), b"x", &mut out).is_err());
    }
    r.call("s", Some("sleep"), b"30", &mut out).unwrap();
    // An unknown method never reaches the plugin: not a call.
    assert!(r.call("s", Some("nope"), b"", &mut out).is_err());
    let info = r.info("s").unwrap();
    let g = &info.generations[0];
    assert_eq!(g.generation, 1);
    assert_eq!(
        (g.counts.calls, g.counts.failed, g.counts.in_flight),
        (9, 3, 0)
    );
    assert!(g.counts.max_nanos >= 29_000_000, "{g:?}");
    assert!(g.counts.total_nanos >= g.counts.max_nanos, "{g:?}");
    assert!(g.load_nanos > 0);
    assert!(
        info.last_error
            .as_deref()
            .unwrap()
            .contains("failed on purpose"),
        "{info:?}"
    );

    // Exact timing goes with the version into a replace only if asked again; the default
    // samples short calls but counts every one.
    r.replace("s", &fixture, b"t2").unwrap();
    r.call("s", None, b"", &mut out).unwrap();
    let info = r.info("s").unwrap();
    assert_eq!(info.generations.len(), 1, "generation 1 closed");
    assert_eq!(info.generations[0].counts.calls, 1);
    assert_eq!(
        (info.totals.calls, info.totals.failed),
        (10, 3),
        "the key keeps counting"
    );
    assert_eq!(info.replacements, 1);
    assert_eq!(info.retired_versions, 1);
}

#[test]
fn counting_survives_many_threads() {
    let p = plugins();
    let (r, _dir) = registry();
    let r = Arc::new(r);
    r.load("c", &p.fixture().to_string_lossy(), b"").unwrap();
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let r = Arc::clone(&r);
            thread::spawn(move || {
                let handle = r.handle("c").unwrap();
                let mut out = Vec::new();
                for _ in 0..5_000 {
                    handle.call(Some("echo"), b"abc", &mut out).unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let totals = r.info("c").unwrap().totals;
    assert_eq!((totals.calls, totals.in_flight), (30_000, 0));
}

/// Records sent to the log sink while `f` runs.
fn logged(f: impl FnOnce()) -> Vec<Record> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap();
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&records);
    log::set_sink(Some(Arc::new(move |r| sink.lock().unwrap().push(r))));
    f();
    log::set_sink(None);
    Arc::try_unwrap(records).unwrap().into_inner().unwrap()
}

#[test]
fn events_and_plugin_lines_name_key_and_generation() {
    let p = plugins();
    let (r, _dir) = registry();
    let v1 = p.example_v1().to_string_lossy().into_owned();
    let v2 = p.example_v2().to_string_lossy().into_owned();
    let records = logged(|| {
        r.load("lg", &v1, b"cfg").unwrap();
        r.replace("lg", &v2, b"").unwrap();
        assert!(r.replace("lg", "/no/such.so", b"").is_err());
        r.rollback("lg").unwrap();
        r.unload("lg").unwrap();
        assert!(r.await_retired("lg", DRAIN));
    });
    // Other tests run meanwhile and log too: only this key's records count.
    let records: Vec<Record> = records
        .into_iter()
        .filter(|r| r.key.as_deref() == Some("lg"))
        .collect();
    let find = |pred: &dyn Fn(&Record) -> bool, what: &str| {
        records
            .iter()
            .find(|r| pred(r))
            .unwrap_or_else(|| panic!("no record for {what} in {records:#?}"))
            .clone()
    };
    let init = find(
        &|r| r.from_plugin && r.message.contains("loaded with 3 bytes"),
        "init",
    );
    assert_eq!((init.key.as_deref(), init.generation), (Some("lg"), 1));
    assert_eq!(init.level, Level::Info);
    let plugin_v2 = find(
        &|r| r.from_plugin && r.message.contains("2.0.0"),
        "v2's init",
    );
    assert_eq!(plugin_v2.generation, 2);
    let loaded = find(
        &|r| !r.from_plugin && r.message.starts_with("loaded "),
        "load",
    );
    assert!(loaded.message.contains(&v1), "{loaded:?}");
    let replaced = find(&|r| r.message.starts_with("replaced by "), "replace");
    assert_eq!(replaced.generation, 2);
    let failed = find(&|r| r.level == Level::Warn, "the failed replace");
    assert!(failed.message.contains("/no/such.so"), "{failed:?}");
    let rolled = find(&|r| r.message.starts_with("rolled back"), "rollback");
    assert_eq!(rolled.generation, 3);
    let unloaded = find(&|r| r.message == "unloaded", "unload");
    assert_eq!(unloaded.generation, 3);
    let retired = find(&|r| r.message.starts_with("retired"), "retire");
    assert_eq!(retired.level, Level::Debug);
    let unloading = find(
        &|r| r.from_plugin && r.message.contains("unloading"),
        "destroy",
    );
    assert_eq!(unloading.key.as_deref(), Some("lg"));
}

#[test]
fn a_replace_loop_with_stats_stays_correct_under_calls() {
    let p = plugins();
    let (r, _dir) = registry();
    let r = Arc::new(r);
    let fixture = p.fixture().to_string_lossy().into_owned();
    r.load("q", &fixture, b"").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let (r, stop) = (Arc::clone(&r), Arc::clone(&stop));
            thread::spawn(move || {
                let mut out = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    r.call("q", Some("echo"), b"x", &mut out).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        r.replace("q", &fixture, b"").unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let made: u64 = callers.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(r.await_retired("q", DRAIN));
    let totals = r.info("q").unwrap().totals;
    assert_eq!(
        totals.calls, made,
        "every call counted once, whichever version ran it"
    );
    assert_eq!(totals.in_flight, 0);
}
