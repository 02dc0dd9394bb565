//! `byte[]` calls of `byte_calls::PIN_FROM` bytes or more to an isolated plugin: the input is
//! copied from the Java array straight into the worker's slot (`GetByteArrayRegion`) and the
//! output from the slot straight into a new array (`NewByteArray`, `SetByteArrayRegion`), one
//! copy each way on this side where going through this thread's buffers makes two. Nothing is
//! pinned: the call may run as long as the worker takes.

use jni::JNIEnv;
use jni::objects::JByteArray;
use jni::sys::{jbyteArray, jsize};

use super::entry::Failure;
use super::strings::new_byte_array;
use proxyso_core::registry::LibraryHandle;

/// Calls `method` through `handle` on `input` (`len` bytes, its whole length); the output as a
/// new array.
pub(super) fn call(
    env: &mut JNIEnv<'_>,
    handle: &LibraryHandle,
    method: Option<&str>,
    input: &JByteArray<'_>,
    len: usize,
) -> Result<jbyteArray, Failure> {
    let raw = env.get_raw();
    // SAFETY: `raw` is this thread's JNIEnv, whose function table lives as long as the JVM.
    let get_region = unsafe { (**raw).GetByteArrayRegion }
        .ok_or_else(|| Failure::Internal("the JVM's JNI table lacks GetByteArrayRegion".into()))?;
    let count = jsize::try_from(len)
        .map_err(|_| Failure::Internal(format!("{len} bytes do not fit a Java array")))?;
    let array = input.as_raw();
    let mut fill = |into: &mut [u8]| {
        // SAFETY: `array` is a live `byte[]` of `len` elements (its length, read by the caller)
        // and `into` holds `len` bytes; reading the whole array cannot throw.
        unsafe { get_region(raw, array, 0, count, into.as_mut_ptr().cast()) };
    };
    let mut output = Err(Failure::Internal(
        "an isolated call returned no output".into(),
    ));
    let mut take = |bytes: &[u8]| output = new_byte_array(env, bytes);
    handle.call_staged(method, len, &mut fill, &mut take)?;
    output
}
