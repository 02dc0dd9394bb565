//! `byte[]` calls with the Java arrays pinned, the JNI counterpart of a critical downcall (JDK 8
//! to 21, and wherever FFM does not serve), for inputs of `byte_calls::PIN_FROM` bytes or more.
//!
//! For a method known to be short on inputs of that size (`proxyso_core::brevity`),
//! `GetPrimitiveArrayCritical` hands the plugin the input array in place and a new output array
//! of the size the thread's last call of the same handle and method answered, so the bytes are
//! copied once (the plugin's write), where the other ways copy them three times. An array pinned
//! this way holds off the garbage collector until it is released, as a critical downcall does,
//! so the same rule decides; the caller calls a method not known to be short the other way.
//!
//! The output array is made by `NewByteArray`, which zeroes it with the C library's `memset`
//! (fast string stores, which need not read the new memory first), not in Java, whose compiled
//! code zeroes a new array with vector stores: 100 ns more at 4 KiB, in the benchmark.
//!
//! Between pinning and releasing nothing calls a JNI function (JNI forbids it; the test suite
//! runs with `-Xcheck:jni`).

use std::ptr::{self, NonNull};

use jni::JNIEnv;
use jni::objects::JByteArray;
use jni::sys::{self, JNI_ABORT, jbyteArray, jint, jlong};

use super::entry::Failure;
use super::strings::{new_byte_array, new_zeroed_byte_array};
use crate::ffm::{clear_spill, reentered, with_spill};
use proxyso_core::host::{SpillOutput, Written};
use proxyso_core::registry::LibraryHandle;

/// The largest output guessed from the input's size, for a first call.
const FIRST_GUESS_MAX: usize = 64 << 10;

/// The size of a pinned call's output array: what the thread's last pinned call of the same
/// handle and method answered, else the input's size up to `FIRST_GUESS_MAX`.
#[derive(Default)]
pub(super) struct OutputGuess {
    handle: jlong,
    method: Option<Box<str>>,
    /// `None` before the first call.
    length: Option<usize>,
}

impl OutputGuess {
    fn guess(&self, handle: jlong, method: Option<&str>, input_len: usize) -> usize {
        match self.length {
            Some(length) if handle == self.handle && method == self.method.as_deref() => length,
            _ => input_len.min(FIRST_GUESS_MAX),
        }
    }

    fn answered(&mut self, handle: jlong, method: Option<&str>, length: usize) {
        if handle != self.handle || method != self.method.as_deref() {
            self.handle = handle;
            self.method = method.map(Box::from);
        }
        self.length = Some(length);
    }
}

/// A Java array pinned by `GetPrimitiveArrayCritical`, released when dropped, also when a panic
/// unwinds through the call: a pin left behind would hold off the collector for good.
struct Pinned {
    env: *mut sys::JNIEnv,
    array: sys::jarray,
    data: NonNull<u8>,
    /// `JNI_ABORT` for an array only read (no copy back where the JVM made a copy), else 0.
    mode: jint,
}

impl Pinned {
    /// Pins `array`; `None` when the JVM could not (an exception may then be pending).
    ///
    /// # Safety
    /// `env` must be the calling thread's live `JNIEnv` and `array` a live local reference to a
    /// primitive array, and no JNI function may be called on this thread while the pin lives.
    unsafe fn new(env: *mut sys::JNIEnv, array: sys::jarray, read_only: bool) -> Option<Pinned> {
        // SAFETY: `env` is a live JNIEnv (the caller guarantees), whose function table the JVM
        // keeps for the thread's life.
        let get = unsafe { (**env).GetPrimitiveArrayCritical }?;
        // SAFETY: a live env and array reference, as the caller guarantees; a null `isCopy` is
        // allowed.
        let data = unsafe { get(env, array, ptr::null_mut()) };
        Some(Pinned {
            env,
            array,
            data: NonNull::new(data.cast::<u8>())?,
            mode: if read_only { JNI_ABORT } else { 0 },
        })
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: `env`, `array` and `data` are those of a successful `GetPrimitiveArrayCritical`
        // on this thread that was not released yet; releasing is the one JNI call allowed now.
        unsafe {
            if let Some(release) = (**self.env).ReleasePrimitiveArrayCritical {
                release(self.env, self.array, self.data.as_ptr().cast(), self.mode);
            }
        }
    }
}

/// Calls `method` through `handle` (id `id`) on `input` (`in_len` bytes) with the arrays pinned:
/// the output as a new array, or `None`, having run nothing, when the method is not known to be
/// short on inputs of that size (the caller then calls it the way that does not pin).
pub(super) fn call(
    env: &mut JNIEnv<'_>,
    guess: &mut OutputGuess,
    (id, handle): (jlong, &LibraryHandle),
    method: Option<&str>,
    input: &JByteArray<'_>,
    in_len: usize,
) -> Result<Option<jbyteArray>, Failure> {
    if !handle.is_short(method, in_len) {
        return Ok(None);
    }
    let out_len = guess.guess(id, method, in_len);
    let output = new_zeroed_byte_array(env, out_len)?;
    let raw = env.get_raw();
    // SAFETY: `raw` is this thread's JNIEnv and `input` a live local reference to a byte array;
    // nothing below calls a JNI function until both pins are dropped.
    let Some(pinned_in) = (unsafe { Pinned::new(raw, input.as_raw(), true) }) else {
        return could_not_pin(env);
    };
    // SAFETY: as above, for the output array just made.
    let Some(pinned_out) = (unsafe { Pinned::new(raw, output.as_raw(), false) }) else {
        drop(pinned_in);
        return could_not_pin(env);
    };
    // SAFETY: `in_len` is the input array's length, and the pinned array stays where it is,
    // unwritten (the output is another array), until `pinned_in` is dropped after the call.
    let bytes = unsafe { std::slice::from_raw_parts(pinned_in.data.as_ptr(), in_len) };
    let written = with_spill(|spill| -> Result<Option<Written>, Failure> {
        let mut spill = spill.try_borrow_mut().map_err(|_| reentered())?;
        // SAFETY: the `out_len` bytes of the pinned output array, which nothing else touches
        // until `pinned_out` is dropped, after the call.
        let out = unsafe { SpillOutput::new(pinned_out.data.as_ptr(), out_len, &mut spill) };
        Ok(handle.call_spill(method, bytes, out, true)?)
    });
    drop(pinned_out);
    drop(pinned_in);
    let answer = match written? {
        // Not short any more (a replacement came in between): nothing ran.
        None => return Ok(None),
        Some(Written::InPlace(n)) if n == out_len => {
            guess.answered(id, method, n);
            return Ok(Some(output.into_raw()));
        }
        Some(Written::InPlace(n)) => {
            // Shorter than guessed: copied into an array of its size.
            let whole = env.convert_byte_array(&output)?;
            (n, new_byte_array(env, &whole[..n])?)
        }
        Some(Written::Spilled(n)) => with_spill(|spill| -> Result<_, Failure> {
            let mut spill = spill.try_borrow_mut().map_err(|_| reentered())?;
            let array = new_byte_array(env, &spill)?;
            clear_spill(&mut spill);
            Ok((n, array))
        })?,
    };
    env.delete_local_ref(output)?;
    guess.answered(id, method, answer.0);
    Ok(Some(answer.1))
}

/// When the JVM could not pin an array: a pending exception (out of memory) is cleared and the
/// call goes the way that does not pin, which reports it if it persists.
#[cold]
fn could_not_pin(env: &mut JNIEnv<'_>) -> Result<Option<jbyteArray>, Failure> {
    env.exception_clear()?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guess_is_the_last_output_of_the_same_handle_and_method() {
        let mut guess = OutputGuess::default();
        assert_eq!(
            guess.guess(1, None, 4096),
            4096,
            "the input's size at first"
        );
        assert_eq!(
            guess.guess(1, None, 1 << 20),
            FIRST_GUESS_MAX,
            "at most 64 KiB"
        );
        guess.answered(1, None, 10);
        assert_eq!(guess.guess(1, None, 4096), 10);
        assert_eq!(guess.guess(2, None, 4096), 4096, "another handle");
        assert_eq!(guess.guess(1, Some("m"), 4096), 4096, "another method");
        guess.answered(1, Some("m"), 7);
        assert_eq!(guess.guess(1, Some("m"), 2048), 7);
        assert_eq!(guess.guess(1, None, 2048), 2048, "the last call's only");
    }
}
