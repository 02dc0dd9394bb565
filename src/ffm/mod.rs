//! The FFM path: plain C entry points that JDK 22 and later reach through downcall handles
//! (`java/src/java22/.../CallPath.java`) instead of JNI, for calls by handle on `byte[]` and on
//! direct buffers.
//!
//! They take addresses and lengths, not JNI references, so a critical downcall can hand them
//! Java arrays in place. They return a length, or one of the `ffm` codes of the contract:
//!
//! - a failure is kept in a thread-local and the answer is `FAILED`; the Java side then calls
//!   `NativeBridge.ffmThrow()` (JNI), which throws it through `entry::run`, so the exceptions
//!   and their messages are exactly those of the JNI path;
//! - an output larger than the array the caller offered waits in a thread-local buffer
//!   (`SPILLED - n`) for `proxyso_ffm_take`, which copies it into an array of the right size;
//! - in a critical call, a method not known to be short runs nothing and answers `NOT_SHORT`
//!   (see `proxyso_core::brevity`).
//!
//! Each entry point catches panics; none calls back into Java.

mod calls;

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use jni::JNIEnv;
use jni::objects::JClass;

use crate::jni::contract::ffm;
use crate::jni::entry::{Failure, panic_message, run};
use proxyso_core::error::Error;

/// Above this the spill buffer is given back after its output was taken.
const SPILL_KEEP: usize = 4 << 20;

thread_local! {
    /// The failure of this thread's last FFM call, until `ffmThrow` throws it.
    static PENDING: RefCell<Option<Failure>> = const { RefCell::new(None) };
    /// Output that did not fit the caller's array, until `proxyso_ffm_take` (or, for a pinned
    /// JNI call, `NativeBridge.takeSpilled`) copies it.
    static SPILL: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs the body of an entry point: its value, or `FAILED` with the failure kept for `ffmThrow`
/// (a panic included). With `cached`, a stale handle is `STALE`, as `callHandle` answers `null`.
fn guard(cached: bool, f: impl FnOnce() -> Result<i64, Failure>) -> i64 {
    let failure = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => return value,
        Ok(Err(Failure::HandleClosed(_) | Failure::Core(Error::NoSuchLibrary { .. })))
            if cached =>
        {
            return ffm::STALE;
        }
        Ok(Err(failure)) => failure,
        Err(payload) => Failure::Internal(format!("panic in libproxy: {}", panic_message(payload))),
    };
    // Storing cannot fail short of the thread-local being gone (thread exit), and then nobody
    // is left to throw to.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let _ = PENDING.try_with(|pending| *pending.borrow_mut() = Some(failure));
    }));
    ffm::FAILED
}

/// Runs `f` with this thread's spill buffer: output that did not fit the array a call was
/// given (an FFM call's or a pinned JNI call's), until it is taken.
pub(crate) fn with_spill<T>(f: impl FnOnce(&RefCell<Vec<u8>>) -> T) -> T {
    SPILL.with(f)
}

/// Empties the spill buffer once its output was taken, giving back a large one.
pub(crate) fn clear_spill(spill: &mut Vec<u8>) {
    spill.clear();
    if spill.capacity() > SPILL_KEEP {
        *spill = Vec::new();
    }
}

/// The failure a call on a thread that is already inside one meets: a call re-entered the proxy.
pub(crate) fn reentered() -> Failure {
    Failure::Internal("a call re-entered the proxy on one thread".into())
}

/// `proxyso_ffm_take(out, len)`: copies the output this thread's last call spilled (`len` bytes,
/// as its `SPILLED - len` said) into `out`; returns `len`, or `FAILED`.
///
/// # Safety
/// `out` must be valid for writes of `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn proxyso_ffm_take(out: *mut u8, len: i32) -> i64 {
    guard(false, || {
        SPILL.with(|spill| {
            let mut spill = spill.try_borrow_mut().map_err(|_| reentered())?;
            if usize::try_from(len).ok() != Some(spill.len()) {
                return Err(Failure::Internal(format!(
                    "asked for {len} bytes of spilled output, there are {}",
                    spill.len()
                )));
            }
            if !spill.is_empty() {
                // SAFETY: the caller guarantees `len` writable bytes at `out`, which is `spill`'s
                // length (checked above); `spill` is host memory, never the caller's.
                unsafe { std::ptr::copy_nonoverlapping(spill.as_ptr(), out, spill.len()) };
            }
            clear_spill(&mut spill);
            Ok(i64::from(len))
        })
    })
}

/// `NativeBridge.ffmThrow()`: throws the exception of this thread's last failed FFM call.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_ffmThrow<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
) {
    run(&mut env, (), |_| {
        let pending = PENDING.with(|pending| pending.borrow_mut().take());
        Err(pending.unwrap_or_else(|| {
            Failure::Internal("ffmThrow: no FFM call failed on this thread".into())
        }))
    })
}
