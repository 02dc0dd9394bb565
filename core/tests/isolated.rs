//! Isolated loads: a plugin served by a worker process of its own. Its segfault, abort, exit,
//! stack overflow, endless loop or escaping C++ exception costs the call an error, and the next
//! call finds a fresh worker; this process is never touched.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{plugins, registry};
use proxyso_core::isolated::Isolation;
use proxyso_core::preflight::Worker;
use proxyso_core::{Error, LoadOptions, Registry};

fn worker() -> Worker {
    Worker::open(&plugins().worker()).unwrap()
}

fn isolated(worker: &Worker, isolation: Isolation) -> LoadOptions<'_> {
    LoadOptions {
        isolation: Some(isolation),
        worker: Some(worker),
        ..LoadOptions::default()
    }
}

fn crash_plugin() -> String {
    plugins()
        .native("libfx_crash.so")
        .to_string_lossy()
        .into_owned()
}

fn call(r: &Registry, key: &str, method: &str, input: &str) -> Result<String, Error> {
    let mut out = Vec::new();
    r.call(key, Some(method), input.as_bytes(), &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty()
        && !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
}

#[test]
fn an_isolated_plugin_answers_from_another_process() {
    let w = worker();
    let (r, _dir) = registry();
    r.load_with("k", &crash_plugin(), &isolated(&w, Isolation::default()))
        .unwrap();
    let pid: i32 = call(&r, "k", "pid", "").unwrap().parse().unwrap();
    assert_ne!(pid, std::process::id() as i32);
    let info = r.info("k").unwrap();
    assert!(info.isolated);
    assert_eq!(info.worker_pid, pid);
    assert_eq!(info.name, "fx-crash");
    assert_eq!(call(&r, "k", "echo", "hello").unwrap(), "hello");
    // Sizes around the window's edges of pages and cache lines, and an empty one.
    for size in [0, 1, 63, 64, 65, 4095, 4096, 4097, 1 << 20] {
        let input: String = "x".repeat(size);
        assert_eq!(call(&r, "k", "echo", &input).unwrap().len(), size);
    }
    // A direct (fixed) buffer: too small says how large it must be.
    let mut buf = vec![0u8; 4];
    // SAFETY: `buf` outlives the output and nothing else touches it meanwhile.
    let mut out = unsafe { proxyso_core::host::FixedOutput::new(buf.as_mut_ptr(), buf.len()) };
    let err = r
        .handle("k")
        .unwrap()
        .call_fixed(Some("echo"), b"too long", &mut out)
        .unwrap_err();
    assert!(
        matches!(err, Error::OutputTooSmall { required: 8, .. }),
        "{err}"
    );
    assert!(r.unload("k").unwrap());
    assert!(r.await_retired("k", Duration::from_secs(10)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(pid), "the worker {pid} outlived its unload");
}

#[test]
fn every_kind_of_crash_is_an_error_and_the_next_call_gets_a_new_worker() {
    let w = worker();
    let (r, _dir) = registry();
    let limits = Isolation {
        call_timeout: Some(Duration::from_millis(500)),
        ..Isolation::default()
    };
    type Check = Box<dyn Fn(&Error) -> bool>;
    let cases: [(&str, Check); 5] = [
        (
            "segv",
            Box::new(|e| {
                matches!(
                    e,
                    Error::Crashed {
                        signal: 11,
                        exit_status: -1,
                        ..
                    }
                ) && e.to_string().contains("was killed by SIGSEGV")
                    && e.to_string()
                        .contains("about to write through a null pointer")
            }),
        ),
        (
            "abort",
            Box::new(|e| {
                matches!(e, Error::Crashed { signal: 6, .. }) && e.to_string().contains("SIGABRT")
            }),
        ),
        (
            "exit",
            // The plugin's exit code, never read as one of the worker's own.
            Box::new(|e| {
                matches!(
                    e,
                    Error::Crashed {
                        signal: 0,
                        exit_status: 3,
                        ..
                    }
                ) && e.to_string().contains("exited with code 3")
                    && !e.to_string().contains("parent")
            }),
        ),
        (
            "overflow",
            // Rust's guard-page handler reports the overflow and aborts.
            Box::new(|e| matches!(e, Error::Crashed { signal: 6 | 11, .. })),
        ),
        (
            "spin",
            Box::new(|e| {
                matches!(e, Error::TimedOut { millis: 500, .. })
                    && e.to_string().contains("did not return within 500 ms")
            }),
        ),
    ];
    // A key each: the backoff (3 crashes within 10 s) is a key's own.
    for (method, expected) in cases {
        r.load_with(method, &crash_plugin(), &isolated(&w, limits))
            .unwrap();
        let before = r.info(method).unwrap().worker_pid;
        let err = call(&r, method, method, "").unwrap_err();
        assert!(expected(&err), "{method}: {err:?}");
        let text = err.to_string();
        assert!(text.contains(&format!("method '{method}'")), "{text}");
        // The next call answers, from a new worker.
        assert_eq!(call(&r, method, "echo", method).unwrap(), method);
        assert_ne!(
            before,
            r.info(method).unwrap().worker_pid,
            "{method}: the same worker still serves"
        );
        // A worker killed for a timeout is reaped (and counted) by its monitor a moment later.
        let deadline = Instant::now() + Duration::from_secs(5);
        while (alive(before) || r.info(method).unwrap().crashes == 0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            !alive(before),
            "{method}: the old worker {before} still runs"
        );
        let info = r.info(method).unwrap();
        assert_eq!((info.crashes, info.generations[0].crashes), (1, 1));
        assert_eq!(info.generation, 1, "a restart is not a new generation");
    }
    // A C++ exception out of extern "C" is caught in the worker: no crash at all.
    r.load_with("throw", &crash_plugin(), &isolated(&w, limits))
        .unwrap();
    let pid = r.info("throw").unwrap().worker_pid;
    let err = call(&r, "throw", "throw", "").unwrap_err();
    assert!(
        matches!(err, Error::Plugin { panicked: true, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("thrown by fx-crash"), "{err}");
    assert_eq!(r.info("throw").unwrap().worker_pid, pid);
    assert_eq!(r.info("throw").unwrap().crashes, 0);
}

#[test]
fn repeated_crashes_hold_restarts_back() {
    let w = worker();
    let (r, _dir) = registry();
    r.load_with("k", &crash_plugin(), &isolated(&w, Isolation::default()))
        .unwrap();
    for _ in 0..3 {
        assert!(matches!(
            call(&r, "k", "abort", ""),
            Err(Error::Crashed { .. })
        ));
    }
    let started = Instant::now();
    let err = call(&r, "k", "echo", "x").unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1), "not at once");
    let text = err.to_string();
    assert!(text.contains("held back"), "{text}");
    assert!(matches!(err, Error::Crashed { .. }));
}

#[test]
fn four_threads_calling_while_the_worker_keeps_crashing_see_answers_or_crashes_only() {
    let w = worker();
    let (r, _dir) = registry();
    r.load_with("k", &crash_plugin(), &isolated(&w, Isolation::default()))
        .unwrap();
    let r = Arc::new(r);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let crashed = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(5));
    let callers: Vec<_> = (0..4)
        .map(|t| {
            let (r, stop, answered, crashed, start) = (
                Arc::clone(&r),
                Arc::clone(&stop),
                Arc::clone(&answered),
                Arc::clone(&crashed),
                Arc::clone(&start),
            );
            std::thread::spawn(move || {
                start.wait();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let input = format!("{t}-{i}");
                    match call(&r, "k", "echo", &input) {
                        Ok(out) => {
                            assert_eq!(out, input, "a wrong answer");
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::Crashed { .. }) => {
                            crashed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(other) => panic!("neither an answer nor a crash: {other}"),
                    }
                    i += 1;
                }
            })
        })
        .collect();
    start.wait();
    // Crash it twice (the backoff allows three within 10 s), with calls in flight.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(300));
        let _ = call(&r, "k", "segv", "");
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.join().unwrap();
    }
    assert!(answered.load(Ordering::Relaxed) > 100);
    assert_eq!(r.info("k").unwrap().crashes, 2);
}

#[test]
fn a_failed_isolated_replace_leaves_the_old_version_serving() {
    let w = worker();
    let (r, _dir) = registry();
    let p = plugins();
    r.load_with("k", &crash_plugin(), &isolated(&w, Isolation::default()))
        .unwrap();
    let pid = r.info("k").unwrap().worker_pid;
    let bad = p.native("libfx_ctor_segv.so");
    let err = r
        .replace_with(
            "k",
            &bad.to_string_lossy(),
            &isolated(&w, Isolation::default()),
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("in its worker process"), "{text}");
    assert!(text.contains("SIGSEGV"), "{text}");
    assert_eq!(r.info("k").unwrap().generation, 1);
    assert_eq!(r.info("k").unwrap().worker_pid, pid);
    assert_eq!(call(&r, "k", "echo", "still").unwrap(), "still");
}

#[test]
fn a_crash_within_the_probation_rolls_back() {
    let w = worker();
    let (r, _dir) = registry();
    let p = plugins();
    let limits = Isolation {
        rollback_on_crash: true,
        ..Isolation::default()
    };
    r.load_with(
        "k",
        &p.example_v1().to_string_lossy(),
        &isolated(&w, limits),
    )
    .unwrap();
    r.replace_with("k", &crash_plugin(), &isolated(&w, limits))
        .unwrap();
    assert_eq!(r.info("k").unwrap().name, "fx-crash");
    assert!(call(&r, "k", "segv", "").is_err());
    let deadline = Instant::now() + Duration::from_secs(10);
    while r.info("k").unwrap().generation != 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let info = r.info("k").unwrap();
    assert_eq!(info.generation, 3, "{info:?}");
    assert_eq!(info.name, "example");
    assert!(info.isolated);
    assert_eq!(info.rollbacks, 1);
}

#[test]
fn isolation_limits_are_checked() {
    let w = worker();
    let (r, _dir) = registry();
    let zero = Isolation {
        call_timeout: Some(Duration::ZERO),
        ..Isolation::default()
    };
    let err = r
        .load_with("k", &crash_plugin(), &isolated(&w, zero))
        .unwrap_err();
    assert!(
        err.to_string().contains("callTimeout must be positive"),
        "{err}"
    );
    assert!(r.info("k").is_none());
}

#[test]
fn the_memory_limit_makes_a_greedy_call_a_crash_of_the_worker() {
    let w = worker();
    let (r, _dir) = registry();
    let limits = Isolation {
        memory_limit: Some(64 << 20),
        ..Isolation::default()
    };
    r.load_with("k", &crash_plugin(), &isolated(&w, limits))
        .unwrap();
    assert_eq!(call(&r, "k", "alloc", "16").unwrap(), "allocated");
    // On several serving threads at once, within the limit together.
    let r = Arc::new(r);
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let r = Arc::clone(&r);
            std::thread::spawn(move || {
                (0..5)
                    .map(|_| call(&r, "k", "alloc", "8"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for caller in callers {
        for answer in caller.join().unwrap() {
            assert_eq!(answer.unwrap(), "allocated");
        }
    }
    let err = call(&r, "k", "alloc", "512").unwrap_err();
    assert!(matches!(err, Error::Crashed { signal: 6, .. }), "{err:?}");
    assert!(err.to_string().contains("out of memory"), "{err}");
    assert_eq!(call(&r, "k", "echo", "after").unwrap(), "after");
}

#[test]
fn waiting_for_a_free_slot_is_not_counted_against_the_call_timeout() {
    let w = worker();
    let (r, _dir) = registry();
    let limits = Isolation {
        call_timeout: Some(Duration::from_millis(1000)),
        ..Isolation::default()
    };
    r.load_with("k", &crash_plugin(), &isolated(&w, limits))
        .unwrap();
    // More calls than the worker has slots (twice the cores, at least 4), each 600 ms: the
    // last ones wait for a slot, then run well within their own second.
    let slots = (std::thread::available_parallelism().map_or(4, usize::from) * 2).clamp(4, 64);
    let r = Arc::new(r);
    let callers: Vec<_> = (0..slots + 2)
        .map(|_| {
            let r = Arc::clone(&r);
            std::thread::spawn(move || call(&r, "k", "sleep", "600"))
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.join().unwrap().unwrap(), "slept");
    }
    assert_eq!(r.info("k").unwrap().crashes, 0);
}

#[test]
fn a_version_that_crashes_twice_in_its_probation_rolls_back_once() {
    let w = worker();
    let (r, _dir) = registry();
    let p = plugins();
    let limits = Isolation {
        rollback_on_crash: true,
        ..Isolation::default()
    };
    let options = LoadOptions {
        keep_versions: Some(2),
        ..isolated(&w, limits)
    };
    let v1 = p.example_v1().to_string_lossy().into_owned();
    r.load_with("k", &v1, &options).unwrap();
    r.replace_with("k", &v1, &options).unwrap();
    r.replace_with("k", &crash_plugin(), &options).unwrap();
    // Two crashes before the rollback can have finished.
    let _ = call(&r, "k", "segv", "");
    let _ = call(&r, "k", "segv", "");
    let deadline = Instant::now() + Duration::from_secs(10);
    while r.info("k").unwrap().generation < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    let info = r.info("k").unwrap();
    assert_eq!((info.generation, info.rollbacks), (4, 1), "{info:?}");
    assert_eq!(info.name, "example");
    // Generation 2 serves again as 4; generation 1 is still kept.
    assert_eq!(info.previous.len(), 1, "{info:?}");
    assert_eq!(info.previous[0].generation, 1);
}

#[test]
fn an_isolated_plugin_that_asks_for_serialised_calls_gets_them_one_at_a_time() {
    let w = worker();
    let (r, _dir) = registry();
    let p = plugins();
    let serialize = p
        .native("libfx_serialize.so")
        .to_string_lossy()
        .into_owned();
    r.load_with("s", &serialize, &isolated(&w, Isolation::default()))
        .unwrap();
    assert!(r.info("s").unwrap().serialized);
    let r = Arc::new(r);
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let r = Arc::clone(&r);
            std::thread::spawn(move || {
                for _ in 0..10 {
                    call(&r, "s", "probe", "").unwrap();
                }
            })
        })
        .collect();
    for caller in callers {
        caller.join().unwrap();
    }
    assert_eq!(call(&r, "s", "max", "").unwrap(), "1");
}

#[test]
fn a_timeout_names_itself_to_the_other_calls_in_the_killed_worker() {
    let w = worker();
    let (r, _dir) = registry();
    let limits = Isolation {
        call_timeout: Some(Duration::from_millis(400)),
        ..Isolation::default()
    };
    r.load_with("k", &crash_plugin(), &isolated(&w, limits))
        .unwrap();
    let r = Arc::new(r);
    let spinner = {
        let r = Arc::clone(&r);
        std::thread::spawn(move || call(&r, "k", "spin", ""))
    };
    // The spinning call is in (however slow this machine is), and its timeout comes well
    // before the next call's.
    while r.info("k").unwrap().totals.in_flight == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(150));
    // In flight when the spinning call's timeout (400 ms) kills the worker, before its own.
    let sleeper = call(&r, "k", "sleep", "1000").unwrap_err();
    let text = sleeper.to_string();
    assert!(
        matches!(sleeper, Error::Crashed { signal: 9, .. }),
        "{text}"
    );
    assert!(
        text.contains(
            "was killed by proxyso: a call to method 'spin' ran longer than its timeout of 400 ms"
        ),
        "{text}"
    );
    let spun = spinner.join().unwrap().unwrap_err();
    assert!(
        matches!(spun, Error::TimedOut { millis: 400, .. }),
        "{spun:?}"
    );
}
