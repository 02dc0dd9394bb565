//! The unload path: a version that left service drains, then is destroyed and closed.
//!
//! A replaced or unloaded version is retired by whichever thread drops its last reference.
//! When that is the control thread (no calls were in flight), it retires inline, so `unload`
//! of an idle key returns with the library already closed. When the last reference belongs to a
//! calling thread, the version is handed to one background reaper thread instead: a call's hot
//! path never runs `destroy` or `dlclose`.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::log::{self, Level};
use crate::plugin::Plugin;
use crate::stats::{Generation, KeyStats};

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
    pub plugin: Plugin,
    /// Its key.
    pub key: Arc<str>,
    /// Its generation, with the counts to fold into the key's totals.
    pub record: Arc<Generation>,
    /// The registry's ledger.
    pub ledger: Arc<Ledger>,
    /// The key's statistics.
    pub stats: Arc<KeyStats>,
}

impl Retiring {
    /// Destroys and closes the plugin now, on this thread, then checks it is unmapped.
    pub fn finish(self) {
        let Retiring {
            plugin,
            key,
            record,
            ledger,
            stats,
        } = self;
        let generation = record.generation;
        let snapshot = plugin.snapshot_path().to_path_buf();
        let kept = plugin.kept_mapped();
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
        stats.closed(&record, pinned);
        ledger.end(&key);
    }

    /// Retires off the calling thread: hands the version to the reaper thread.
    pub fn hand_off(self) {
        match reaper() {
            Some(reaper) => {
                if let Err(mpsc::SendError(back)) = reaper.send(self) {
                    back.finish();
                }
            }
            // No reaper thread could be started: closing late is better than never.
            None => self.finish(),
        }
    }
}

/// The reaper thread's queue, started on first use.
fn reaper() -> Option<&'static Sender<Retiring>> {
    static REAPER: OnceLock<Option<Sender<Retiring>>> = OnceLock::new();
    REAPER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Retiring>();
            std::thread::Builder::new()
                .name("proxyso-reaper".into())
                .spawn(move || rx.into_iter().for_each(Retiring::finish))
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

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
