//! Which methods of a version are short enough to be called in a critical downcall.
//!
//! On JDK 22 and later the JNI layer's FFM path can call a method through a *critical* downcall
//! (`Linker.Option.critical(true)`): no thread-state transition and Java arrays passed in place,
//! but the calling thread holds off every safepoint (garbage collection above all) until the
//! method returns. So only a method known to be short may be called that way, and it is known
//! from what the call statistics measure (`stats`), per method and per input size class (a
//! power of two: an echo that is short at 64 B need not be at 1 MiB): a method is *short* for
//! inputs of a class once `PROMOTE_AFTER` of its timed calls in a row on such inputs took less
//! than the short limit (`short_nanos`, 500 us unless set) each. Until then, and whenever it is not, its calls go through a
//! non-critical downcall.
//!
//! The JNI layer calls the same way on JDK 8 to 21 (`GetPrimitiveArrayCritical` around the call,
//! which holds off the collector as long): only methods known to be short, on inputs large
//! enough for the copies it saves to matter.
//!
//! How long is short is set once for the process (`set_short_nanos`, from the system property
//! `proxyso.criticalMicros`); 0 makes nothing short, so that no call is ever critical.
//!
//! A timed call of the short limit or more sends its class back to learning from zero. The time is
//! wall-clock time, which also counts the thread being descheduled or interrupted; that happens
//! to any call now and then on a busy machine, so one long call alone is not held against the
//! method. Two long timed calls in a row are a strike, and after `MAX_STRIKES` strikes the class
//! is never short again in this version (a first call that builds a cache is not a verdict; a
//! method that is slow now and then is soon out for good). A long critical call is logged, since
//! it held off the collector; the calls after it are not critical until the class is short
//! again.
//! Plugins that ask for their calls to be serialised are never short: a call may wait for the
//! lock as long as another call runs. Nor are plugins that set `PROXYSO_FLAG_LONG_CALLS`: the
//! rule learns from the past, and a method whose time depends on more than the input's size
//! (a lock, I/O, the input's content) can be short a thousand times and then not.
//!
//! The statistics time one call in up to 64 of those that take less than 2 us (every call with
//! `exact_timing`), so a short method that turns slow is found within a few dozen calls, not
//! at once. A new version of a key starts learning again.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::log::{self, Level};

/// The short limit unless set: a call that takes at least this long is not short (500 us: a
/// `memcpy` of 1 MiB takes a third of it here, and a collection delayed as long still waits
/// less than a young collection's own pause usually takes).
pub const DEFAULT_SHORT_NANOS: u64 = 500_000;
/// The short limit; 0: nothing is short.
static SHORT_NANOS: AtomicU64 = AtomicU64::new(DEFAULT_SHORT_NANOS);

/// Sets the short limit for the whole process: calls under `nanos` may become short; 0 turns
/// critical calls off.
pub fn set_short_nanos(nanos: u64) {
    SHORT_NANOS.store(nanos, Ordering::Relaxed);
}

/// The short limit (see `set_short_nanos`).
#[inline]
pub fn short_nanos() -> u64 {
    SHORT_NANOS.load(Ordering::Relaxed)
}

/// Timed calls in a row under the short limit that make a method short.
pub const PROMOTE_AFTER: u32 = 32;
/// Strikes after which a method stays not short for the rest of its version's life.
pub const MAX_STRIKES: u32 = 3;

/// Input size classes: 0 for an empty input, `n` for `2^(n-1)` to `2^n - 1` bytes.
const CLASSES: usize = usize::BITS as usize + 1;

/// The size class of an input of `len` bytes.
fn class(len: usize) -> usize {
    (usize::BITS - len.leading_zeros()) as usize
}

/// One method's standing for one input size class.
#[derive(Debug, Default)]
struct Standing {
    /// Timed short calls in a row, up to `PROMOTE_AFTER`.
    streak: AtomicU32,
    /// Pairs of timed calls in a row of the short limit or more.
    strikes: AtomicU32,
    /// 1 when the last timed call took the short limit or more.
    last_long: AtomicU32,
}

/// The standing of every method of one version, per input size class.
#[derive(Debug)]
pub struct Brevity {
    /// `CLASSES` entries per method.
    methods: Box<[Standing]>,
    /// Set for a plugin whose calls are serialised or that sets `FLAG_LONG_CALLS`: never short.
    never: bool,
}

impl Brevity {
    /// `methods` methods, none short yet; with `never`, none ever.
    pub fn new(methods: usize, never: bool) -> Brevity {
        Brevity {
            methods: (0..methods * CLASSES)
                .map(|_| Standing::default())
                .collect(),
            never,
        }
    }

    /// One method's standing for inputs of `len` bytes.
    fn standing(&self, index: usize, len: usize) -> Option<&Standing> {
        self.methods.get(index.checked_mul(CLASSES)? + class(len))
    }

    /// True when method `index` may be called on `len` bytes in a critical downcall now.
    #[inline]
    pub fn is_short(&self, index: usize, len: usize) -> bool {
        !self.never
            && short_nanos() > 0
            && self.standing(index, len).is_some_and(|m| {
                m.streak.load(Ordering::Relaxed) >= PROMOTE_AFTER
                    && m.strikes.load(Ordering::Relaxed) < MAX_STRIKES
            })
    }

    /// Counts a timed call of method `index` on `len` bytes that took `nanos`; `critical` when
    /// it ran in a critical downcall. `describe` names the method for the log line a critical
    /// strike writes.
    #[inline]
    pub fn record(
        &self,
        index: usize,
        len: usize,
        nanos: u64,
        critical: bool,
        describe: impl FnOnce() -> (std::sync::Arc<str>, u64, String),
    ) {
        let Some(m) = self.standing(index, len) else {
            return;
        };
        if nanos < short_nanos() {
            m.last_long.store(0, Ordering::Relaxed);
            // Plain load and store: two threads racing lose a count, which only delays.
            let streak = m.streak.load(Ordering::Relaxed);
            if streak < PROMOTE_AFTER {
                m.streak.store(streak + 1, Ordering::Relaxed);
            }
            return;
        }
        m.streak.store(0, Ordering::Relaxed);
        let strikes = if m.last_long.swap(1, Ordering::Relaxed) == 0 {
            // One long call: learn again, but no verdict yet.
            m.strikes.load(Ordering::Relaxed)
        } else {
            m.last_long.store(0, Ordering::Relaxed);
            m.strikes.fetch_add(1, Ordering::Relaxed) + 1
        };
        if critical {
            // The first long call after the method was short, which is the one that ran
            // critically: the next go the other way until it is short again.
            let (key, generation, method) = describe();
            log::event(
                Level::Warn,
                &key,
                generation,
                format!(
                    "method '{method}' ran {} us on {len} bytes in a critical call (the Java \
                     arrays in place), which held off the garbage collector as long; its calls \
                     on inputs of this size are not critical{}",
                    nanos / 1000,
                    if strikes >= MAX_STRIKES {
                        " from now on"
                    } else {
                        " until it is short again"
                    }
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> (std::sync::Arc<str>, u64, String) {
        ("k".into(), 1, "m".into())
    }

    #[test]
    fn short_after_a_streak_and_out_after_strikes() {
        let b = Brevity::new(2, false);
        assert!(!b.is_short(0, 64), "unknown at first");
        for _ in 0..PROMOTE_AFTER - 1 {
            b.record(0, 64, 100, false, none);
        }
        assert!(!b.is_short(0, 64));
        b.record(0, 64, 100, false, none);
        assert!(b.is_short(0, 64), "short after {PROMOTE_AFTER} short calls");
        assert!(!b.is_short(1, 64), "per method");
        assert!(!b.is_short(7, 64), "no such method");
        assert!(!b.is_short(0, 1 << 20), "per input size class");
        assert!(b.is_short(0, 100), "64 and 100 bytes are one class");
        // One long call: learning again, no strike.
        b.record(0, 64, DEFAULT_SHORT_NANOS * 10, false, none);
        assert!(!b.is_short(0, 64), "learning again after a long call");
        for _ in 0..PROMOTE_AFTER {
            b.record(0, 64, 100, false, none);
        }
        assert!(b.is_short(0, 64), "one long call is no strike");
        for strike in 1..=MAX_STRIKES {
            b.record(0, 64, DEFAULT_SHORT_NANOS, false, none);
            b.record(0, 64, DEFAULT_SHORT_NANOS, false, none);
            assert!(!b.is_short(0, 64), "strike {strike}");
            for _ in 0..PROMOTE_AFTER {
                b.record(0, 64, 100, false, none);
            }
            assert_eq!(b.is_short(0, 64), strike < MAX_STRIKES, "strike {strike}");
        }
    }

    #[test]
    fn serialised_plugins_are_never_short() {
        let b = Brevity::new(1, true);
        for _ in 0..PROMOTE_AFTER * 2 {
            b.record(0, 64, 10, false, none);
        }
        assert!(!b.is_short(0, 64));
    }
}
