//! The short limit is one setting for the whole process (`brevity::set_short_nanos`, from the
//! JVM's `proxyso.criticalMicros`): a test binary of its own, so that no other test sees it
//! change.

use std::sync::Arc;

use proxyso_core::brevity::{self, Brevity, DEFAULT_SHORT_NANOS, PROMOTE_AFTER};

fn named() -> (Arc<str>, u64, String) {
    ("k".into(), 1, "m".into())
}

#[test]
fn the_short_limit_decides_and_zero_turns_critical_calls_off() {
    assert_eq!(brevity::short_nanos(), DEFAULT_SHORT_NANOS);
    let b = Brevity::new(1, false);
    for _ in 0..PROMOTE_AFTER {
        b.record(0, 4096, 100_000, false, named);
    }
    assert!(
        b.is_short(0, 4096),
        "100 us calls are short under the default 500 us"
    );

    brevity::set_short_nanos(0);
    assert!(!b.is_short(0, 4096), "a limit of 0: nothing is short");

    brevity::set_short_nanos(50_000);
    assert!(b.is_short(0, 4096), "the standing learnt is kept");
    b.record(0, 4096, 100_000, false, named);
    assert!(!b.is_short(0, 4096), "100 us is long under a 50 us limit");
    for _ in 0..PROMOTE_AFTER {
        b.record(0, 4096, 10_000, false, named);
    }
    assert!(b.is_short(0, 4096), "10 us calls are short under it");
    brevity::set_short_nanos(DEFAULT_SHORT_NANOS);
}
