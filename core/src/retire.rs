//! The unload path: a version that left service drains, then is destroyed and closed.
//!
//! A replaced or unloaded version is retired by whichever thread drops its last reference.
//! When that is the control thread (no calls were in flight), it retires inline, so `unload`
//! of an idle key returns with the library already closed. When the last reference belongs to a
//! calling thread, the version is handed to a reaper thread instead: a call's hot path never
//! runs `destroy` or `dlclose`.
//!
//! Keys retire independently: each key with versions to close has a reaper thread of its own,
//! which closes them in the order they were handed off and ends when the key has none left. So
//! a plugin whose `destroy` blocks holds up only later versions of its own key. At most
//! `MAX_REAPERS` reaper threads run at once; beyond that a key waits for the next thread that
//! finishes its own. A `destroy` (with its `dlclose`) that runs longer than the slow-destroy
//! limit is logged as a warning and counted in the key's statistics, while it still runs.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::loaded::Loaded;
use crate::log::{self, Level};
use crate::stats::{GenerationStats, KeyStats};

/// The default slow-destroy limit: a `destroy` that runs longer is logged and counted.
pub const SLOW_DESTROY: Duration = Duration::from_secs(5);

/// The slow-destroy limit in force, in milliseconds.
static SLOW_DESTROY_MILLIS: AtomicU64 = AtomicU64::new(SLOW_DESTROY.as_millis() as u64);

/// Sets the slow-destroy limit for the whole process (`SLOW_DESTROY` unless set).
pub fn set_slow_destroy_limit(limit: Duration) {
    let millis = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
    SLOW_DESTROY_MILLIS.store(millis, Ordering::Relaxed);
    WATCHDOG_WAKE.notify_all();
}

/// The slow-destroy limit in force.
pub fn slow_destroy_limit() -> Duration {
    Duration::from_millis(SLOW_DESTROY_MILLIS.load(Ordering::Relaxed))
}

/// The most reaper threads that run at once.
pub const MAX_REAPERS: usize = 16;

/// Counts, per key, the versions that left service and are not closed yet.
#[derive(Debug, Default)]
pub struct Ledger {
    retiring: Mutex<HashMap<Arc<str>, usize>>,
    closed: Condvar,
}

impl Ledger {
    /// Notes that one version of `key` left service.
    pub fn begin(&self, key: &Arc<str>) {
        let mut retiring = self.retiring.lock().unwrap_or_else(PoisonError::into_inner);
        *retiring.entry(Arc::clone(key)).or_default() += 1;
    }

    /// Notes that one version of `key` is closed.
    fn end(&self, key: &str) {
        let mut retiring = self.retiring.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = retiring.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                retiring.remove(key);
            }
        }
        self.closed.notify_all();
    }

    /// Versions of `key` that left service and are not closed yet.
    pub fn retiring(&self, key: &str) -> usize {
        let retiring = self.retiring.lock().unwrap_or_else(PoisonError::into_inner);
        retiring.get(key).copied().unwrap_or(0)
    }

    /// Waits until every version of `key` that left service is closed; false on timeout.
    pub fn await_closed(&self, key: &str, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut retiring = self.retiring.lock().unwrap_or_else(PoisonError::into_inner);
        while retiring.contains_key(key) {
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return false;
            }
            retiring = self
                .closed
                .wait_timeout(retiring, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// A version on its way out: its plugin, and whom to tell when it is closed.
pub struct Retiring {
    /// The plugin to destroy and close.
    pub plugin: Loaded,
    /// Its key.
    pub key: Arc<str>,
    /// Its generation, with the counts to fold into the key's totals.
    pub generation_stats: Arc<GenerationStats>,
    /// The registry's ledger.
    pub ledger: Arc<Ledger>,
    /// The key's statistics.
    pub key_stats: Arc<KeyStats>,
}

impl Retiring {
    /// Destroys and closes the plugin now, on this thread, then checks it is unmapped.
    pub fn finish(self) {
        let Retiring {
            plugin,
            key,
            generation_stats,
            ledger,
            key_stats,
        } = self;
        let generation = generation_stats.generation;
        let snapshot = plugin.snapshot_path().to_path_buf();
        let kept = plugin.kept_mapped();
        let watch = Watch::start(&key, generation, &key_stats);
        // A panic here would be a bug in the host's own drop code; it must not kill the reaper.
        let stayed = catch_unwind(AssertUnwindSafe(|| plugin.close()));
        if stayed.is_err() {
            log::event(
                Level::Error,
                &key,
                generation,
                "closing the library panicked",
            );
        }
        watch.end();
        // Report, rather than pretend it was unloaded, a library that something pins.
        let pinned = !kept && stayed.unwrap_or(false);
        if pinned {
            log::event(
                Level::Warn,
                &key,
                generation,
                format!(
                    "{} stayed mapped after dlclose: something pins it (a thread-local \
                     destructor, an STB_GNU_UNIQUE symbol, or another dlopen of it)",
                    snapshot.display()
                ),
            );
        } else {
            log::event(
                Level::Debug,
                &key,
                generation,
                "retired: destroyed and closed",
            );
        }
        key_stats.closed(&generation_stats, pinned);
        ledger.end(&key);
    }

    /// Retires off the calling thread: hands the version to its key's reaper thread.
    pub fn hand_off(self) {
        let key = Arc::clone(&self.key);
        let mut reapers = lock(&REAPERS);
        if let Some(queue) = reapers.queues.get_mut(&key) {
            // A thread serves the key already, or it waits for one.
            queue.push_back(self);
            return;
        }
        reapers
            .queues
            .insert(Arc::clone(&key), VecDeque::from([self]));
        if reapers.threads >= MAX_REAPERS {
            reapers.waiting.push_back(key);
            return;
        }
        reapers.threads += 1;
        drop(reapers);
        let served = Arc::clone(&key);
        let spawned = std::thread::Builder::new()
            .name("proxyso-reaper".into())
            .spawn(move || serve(served));
        if spawned.is_ok() {
            return;
        }
        let mut reapers = lock(&REAPERS);
        reapers.threads -= 1;
        if reapers.threads > 0 {
            // A running reaper takes the key once it is done with its own.
            reapers.waiting.push_back(key);
            return;
        }
        // No reaper thread could be started: closing late is better than never.
        let queue = reapers.queues.remove(&key).unwrap_or_default();
        drop(reapers);
        queue.into_iter().for_each(Retiring::finish);
    }
}

/// The reaper threads' work: the versions handed off, per key.
#[derive(Default)]
struct Reapers {
    /// Versions handed off and not taken yet, per key, oldest first. A key is here exactly
    /// while a thread serves it or it waits in `waiting`.
    queues: HashMap<Arc<str>, VecDeque<Retiring>>,
    /// Keys with versions to close and no thread (`MAX_REAPERS` were busy), oldest first.
    waiting: VecDeque<Arc<str>>,
    /// Reaper threads running.
    threads: usize,
}

static REAPERS: LazyLock<Mutex<Reapers>> = LazyLock::new(Mutex::default);

/// A reaper thread: closes `key`'s versions in turn, then a waiting key's, until none is left.
fn serve(mut key: Arc<str>) {
    loop {
        let next = {
            let mut reapers = lock(&REAPERS);
            loop {
                if let Some(retiring) = reapers.queues.get_mut(&key).and_then(VecDeque::pop_front) {
                    break Some(retiring);
                }
                reapers.queues.remove(&key);
                match reapers.waiting.pop_front() {
                    Some(waiting) => key = waiting,
                    None => {
                        reapers.threads -= 1;
                        break None;
                    }
                }
            }
        };
        let Some(retiring) = next else { return };
        // `finish` catches the plugin's panics itself; this keeps the bookkeeping above right
        // should the host's own code panic.
        let _ = catch_unwind(AssertUnwindSafe(|| retiring.finish()));
    }
}

/// One `destroy` (with its `dlclose`) being timed.
struct Watched {
    id: u64,
    key: Arc<str>,
    generation: u64,
    started: Instant,
    stats: Arc<KeyStats>,
    /// Counted and logged as slow already.
    slow: bool,
}

/// The `destroy` calls running, watched by one thread that logs those that run too long.
struct Watchdog {
    running: Vec<Watched>,
    next_id: u64,
    /// True while the watchdog thread runs.
    thread: bool,
}

static WATCHDOG: Mutex<Watchdog> = Mutex::new(Watchdog {
    running: Vec::new(),
    next_id: 0,
    thread: false,
});
static WATCHDOG_WAKE: Condvar = Condvar::new();

/// How long the watchdog thread stays once nothing runs, before it ends.
const WATCHDOG_IDLE: Duration = Duration::from_secs(10);

/// A running `destroy`, counted in its key's statistics until `end`.
struct Watch {
    id: u64,
}

impl Watch {
    /// Starts timing the `destroy` of `key` at `generation`.
    fn start(key: &Arc<str>, generation: u64, stats: &Arc<KeyStats>) -> Watch {
        stats.destroy_started();
        let mut watchdog = lock(&WATCHDOG);
        let id = watchdog.next_id;
        watchdog.next_id += 1;
        watchdog.running.push(Watched {
            id,
            key: Arc::clone(key),
            generation,
            started: Instant::now(),
            stats: Arc::clone(stats),
            slow: false,
        });
        if !watchdog.thread {
            // Without the thread a slow destroy is still found, when it returns.
            watchdog.thread = std::thread::Builder::new()
                .name("proxyso-destroy-watch".into())
                .spawn(watch_destroys)
                .is_ok();
        }
        drop(watchdog);
        WATCHDOG_WAKE.notify_all();
        Watch { id }
    }

    /// The `destroy` returned: counts it as slow if it was and no one noticed yet.
    fn end(self) {
        let mut watchdog = lock(&WATCHDOG);
        let Some(at) = watchdog.running.iter().position(|w| w.id == self.id) else {
            return;
        };
        let watched = watchdog.running.swap_remove(at);
        let took = watched.started.elapsed();
        let late = !watched.slow && took >= slow_destroy_limit();
        if late {
            watched.stats.slow_destroy();
        }
        drop(watchdog);
        WATCHDOG_WAKE.notify_all();
        watched.stats.destroy_ended();
        if late {
            slow_warning(&watched.key, watched.generation, took, true);
        } else if watched.slow {
            log::event(
                Level::Info,
                &watched.key,
                watched.generation,
                format!(
                    "the slow destroy returned after {:.1} s",
                    took.as_secs_f64()
                ),
            );
        }
    }
}

/// The watchdog thread: marks, counts and logs each `destroy` that passes the limit.
fn watch_destroys() {
    let mut watchdog = lock(&WATCHDOG);
    loop {
        if watchdog.running.is_empty() {
            let (again, waited) = WATCHDOG_WAKE
                .wait_timeout(watchdog, WATCHDOG_IDLE)
                .unwrap_or_else(PoisonError::into_inner);
            watchdog = again;
            if waited.timed_out() && watchdog.running.is_empty() {
                watchdog.thread = false;
                return;
            }
            continue;
        }
        let limit = slow_destroy_limit();
        let now = Instant::now();
        let mut late = Vec::new();
        let mut next: Option<Instant> = None;
        for watched in watchdog.running.iter_mut().filter(|w| !w.slow) {
            let deadline = watched.started + limit;
            if deadline <= now {
                watched.slow = true;
                watched.stats.slow_destroy();
                late.push((
                    Arc::clone(&watched.key),
                    watched.generation,
                    now - watched.started,
                ));
            } else {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        if !late.is_empty() {
            drop(watchdog);
            for (key, generation, took) in late {
                slow_warning(&key, generation, took, false);
            }
            watchdog = lock(&WATCHDOG);
            continue;
        }
        watchdog = match next {
            Some(deadline) => {
                WATCHDOG_WAKE
                    .wait_timeout(watchdog, deadline.saturating_duration_since(now))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            // Every destroy running is slow and logged: nothing to do until one ends or starts.
            None => WATCHDOG_WAKE
                .wait(watchdog)
                .unwrap_or_else(PoisonError::into_inner),
        };
    }
}

/// Logs a `destroy` that has run for `took`, longer than the limit (and has `returned`).
fn slow_warning(key: &Arc<str>, generation: u64, took: Duration, returned: bool) {
    let (verb, rest) = if returned {
        ("took", "")
    } else {
        (
            "has run for",
            " and has not returned: this version stays loaded until it does (other keys \
             retire meanwhile)",
        )
    };
    log::event(
        Level::Warn,
        key,
        generation,
        format!(
            "destroy {verb} {:.1} s, longer than the {:.1} s limit{rest}",
            took.as_secs_f64(),
            slow_destroy_limit().as_secs_f64()
        ),
    );
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destroy_past_the_limit_is_counted_while_it_runs_and_once() {
        set_slow_destroy_limit(Duration::from_millis(100));
        let key: Arc<str> = "watched".into();
        let stats = Arc::new(KeyStats::default());
        let quick = Watch::start(&key, 1, &stats);
        assert_eq!(stats.destroys_running(), 1);
        quick.end();
        assert_eq!((stats.destroys_running(), stats.slow_destroys()), (0, 0));

        let slow = Watch::start(&key, 2, &stats);
        let deadline = Instant::now() + Duration::from_secs(10);
        while stats.slow_destroys() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            (stats.destroys_running(), stats.slow_destroys()),
            (1, 1),
            "the watchdog counts it before it returns"
        );
        slow.end();
        assert_eq!((stats.destroys_running(), stats.slow_destroys()), (0, 1));
        set_slow_destroy_limit(SLOW_DESTROY);
    }

    #[test]
    fn await_returns_at_once_when_nothing_retires() {
        let ledger = Ledger::default();
        assert!(ledger.await_closed("k", Duration::ZERO));
    }

    #[test]
    fn await_times_out_then_sees_the_end() {
        let ledger = Arc::new(Ledger::default());
        let key: Arc<str> = "k".into();
        ledger.begin(&key);
        ledger.begin(&key);
        assert_eq!(ledger.retiring("k"), 2);
        assert!(!ledger.await_closed("k", Duration::from_millis(20)));
        let other = Arc::clone(&ledger);
        let waiter = std::thread::spawn(move || other.await_closed("k", Duration::from_secs(10)));
        ledger.end("k");
        ledger.end("k");
        assert!(waiter.join().unwrap());
        assert_eq!(ledger.retiring("k"), 0);
    }
}
