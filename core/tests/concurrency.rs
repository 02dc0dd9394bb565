//! Control operations from many threads at once, in random order, against a simple model.
//!
//! Every operation must succeed or fail with the documented error, and when the threads are
//! done the registry must agree with what the operations said: each key is loaded exactly when
//! its successful loads outnumber its successful unloads by one, and nothing else is mapped.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::fs;
use std::sync::Arc;
use std::thread;

use common::{DRAIN, plugins, registry};
use proxyso_core::Error;

const THREADS: u64 = 8;
const OPS: usize = 300;
const KEYS: [&str; 2] = ["a", "b"];

/// xorshift64*: a small, seeded, reproducible sequence.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// What one thread's successful state changes were, per key.
#[derive(Default, Clone, Copy)]
struct Tally {
    loads: i64,
    unloads: i64,
}

#[test]
fn random_control_operations_from_eight_threads_match_the_model() {
    let seed = std::env::var("PROXYSO_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    let p = plugins();
    let (r, dir) = registry();
    let r = Arc::new(r);
    let versions = [
        p.example_v1().to_string_lossy().into_owned(),
        p.example_v2().to_string_lossy().into_owned(),
    ];
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (r, versions) = (Arc::clone(&r), versions.clone());
            thread::spawn(move || {
                let mut rng = Rng(seed ^ (t + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                let mut tally = [Tally::default(); 2];
                let mut out = Vec::new();
                for op in 0..OPS {
                    let k = rng.below(2) as usize;
                    let key = KEYS[k];
                    let path = &versions[rng.below(2) as usize];
                    let context = format!("seed {seed:#x}, thread {t}, op {op} on '{key}'");
                    match rng.below(5) {
                        0 => match r.load(key, path, b"") {
                            Ok(generation) => {
                                assert_eq!(generation, 1, "{context}");
                                tally[k].loads += 1;
                            }
                            Err(Error::AlreadyLoaded { .. }) => {}
                            Err(e) => panic!("{context}: load: {e}"),
                        },
                        1 => match r.replace(key, path, b"") {
                            Ok(generation) => assert!(generation >= 2, "{context}"),
                            Err(Error::NoSuchLibrary { .. }) => {}
                            Err(e) => panic!("{context}: replace: {e}"),
                        },
                        2 => {
                            if r.unload(key).unwrap_or_else(|e| panic!("{context}: {e}")) {
                                tally[k].unloads += 1;
                            }
                        }
                        3 => match r.call(key, None, b"q", &mut out) {
                            Ok(()) => assert!(out == b"q" || out == b"q,ab", "{context}"),
                            Err(Error::NoSuchLibrary { .. }) => {}
                            Err(e) => panic!("{context}: call: {e}"),
                        },
                        _ => {
                            if let Some(info) = r.info(key) {
                                assert_eq!(info.key, key, "{context}");
                                assert_eq!(info.name, "example", "{context}");
                            }
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut totals = [Tally::default(); 2];
    for worker in workers {
        let tally = worker
            .join()
            .expect("a worker failed; its message names the seed");
        for k in 0..2 {
            totals[k].loads += tally[k].loads;
            totals[k].unloads += tally[k].unloads;
        }
    }
    let mut live = 0;
    for (k, key) in KEYS.iter().enumerate() {
        let loaded = r.info(key).is_some();
        let mut out = Vec::new();
        assert_eq!(r.call(key, None, b"", &mut out).is_ok(), loaded, "'{key}'");
        assert_eq!(
            totals[k].loads - totals[k].unloads,
            i64::from(loaded),
            "'{key}': {} loads and {} unloads succeeded (seed {seed:#x})",
            totals[k].loads,
            totals[k].unloads
        );
        assert!(r.await_retired(key, DRAIN));
        live += usize::from(loaded);
    }
    let expected: Vec<String> = KEYS
        .iter()
        .filter(|k| r.info(k).is_some())
        .map(|k| k.to_string())
        .collect();
    assert_eq!(r.keys(), expected);
    // Every version that left service is unmapped: only the live ones remain.
    let maps = fs::read_to_string("/proc/self/maps").unwrap();
    let prefix = dir.path().to_string_lossy().into_owned();
    let mut mapped: Vec<&str> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|path| path.starts_with(&*prefix))
        .collect();
    mapped.sort_unstable();
    mapped.dedup();
    assert_eq!(mapped.len(), live, "mapped snapshots: {mapped:?}");
}
