//! Reading Java strings and byte arrays into reusable buffers, without allocating.
//!
//! `JNIEnv::get_string` asks the JVM for a fresh copy on every call; on the call hot path the
//! key and the input are instead copied with `Get*Region` into buffers the thread keeps.

use std::borrow::Cow;
use std::ffi::c_char;

use jni::JNIEnv;
use jni::objects::{JByteArray, JString};
use jni::sys::{jbyteArray, jsize};

use super::entry::Failure;

/// Looks up one function of the JNI function table, which every real JVM fills in.
macro_rules! jni_fn {
    ($env:expr, $name:ident) => {{
        // SAFETY: `$env` is the valid `JNIEnv` pointer of the current thread, whose function
        // table lives as long as the JVM.
        let table = unsafe { &**$env };
        table.$name.ok_or_else(|| {
            Failure::Internal(concat!("the JVM's JNI table lacks ", stringify!($name)).into())
        })?
    }};
}

/// Reads `s` into `buf` and returns it as text; allocates only for a string whose modified
/// UTF-8 differs from UTF-8 (one with a NUL or a character outside the BMP).
pub fn read_str<'b>(
    env: &mut JNIEnv<'_>,
    s: &JString<'_>,
    buf: &'b mut Vec<u8>,
) -> Result<Cow<'b, str>, Failure> {
    if s.is_null() {
        return Err(jni::errors::Error::NullPtr("a string argument").into());
    }
    let raw_env = env.get_raw();
    let get_length = jni_fn!(raw_env, GetStringLength);
    let get_utf_length = jni_fn!(raw_env, GetStringUTFLength);
    let get_utf_region = jni_fn!(raw_env, GetStringUTFRegion);
    // SAFETY: `s` is a live, non-null local reference to a `java.lang.String`.
    let (chars, bytes): (jsize, jsize) = unsafe {
        (
            get_length(raw_env, s.as_raw()),
            get_utf_length(raw_env, s.as_raw()),
        )
    };
    let bytes = usize::try_from(bytes).unwrap_or(0);
    buf.clear();
    // One more byte: some JVMs write a terminating NUL after the region.
    buf.reserve(bytes + 1);
    // SAFETY: the region [0, chars) is the whole string; its modified UTF-8 form is `bytes`
    // long, and `buf` has room for it and a NUL.
    unsafe {
        get_utf_region(
            raw_env,
            s.as_raw(),
            0,
            chars,
            buf.as_mut_ptr().cast::<c_char>(),
        )
    };
    // No exception check: the region is the whole string, so it cannot be out of bounds.
    // SAFETY: the JVM wrote `bytes` bytes; any byte value is a valid `u8`.
    unsafe { buf.set_len(bytes) };
    match std::str::from_utf8(buf) {
        Ok(text) => Ok(Cow::Borrowed(text)),
        Err(_) => Ok(Cow::Owned(env.get_string(s)?.into())),
    }
}

/// Copies the whole of `array` into `buf`.
///
/// Raw JNI, no exception check: reading exactly the array's own length cannot throw.
pub fn read_bytes(
    env: &mut JNIEnv<'_>,
    array: &JByteArray<'_>,
    buf: &mut Vec<u8>,
) -> Result<(), Failure> {
    if array.is_null() {
        return Err(jni::errors::Error::NullPtr("the input array").into());
    }
    let raw_env = env.get_raw();
    let get_length = jni_fn!(raw_env, GetArrayLength);
    let get_region = jni_fn!(raw_env, GetByteArrayRegion);
    // SAFETY: `array` is a live, non-null local reference to a `byte[]`.
    let len = unsafe { get_length(raw_env, array.as_raw()) };
    let n = usize::try_from(len).unwrap_or(0);
    buf.clear();
    buf.reserve(n);
    // SAFETY: `array` is a live `byte[]` of `len` elements and `buf` has room for all of them.
    unsafe { get_region(raw_env, array.as_raw(), 0, len, buf.as_mut_ptr().cast()) };
    // SAFETY: the JVM wrote all `n` bytes.
    unsafe { buf.set_len(n) };
    Ok(())
}

/// A new `byte[]` holding `bytes`.
///
/// Raw JNI: `NewByteArray` reports its one failure (an `OutOfMemoryError`, left pending) by
/// returning null, and filling exactly the new array's length cannot throw.
pub fn new_byte_array(env: &mut JNIEnv<'_>, bytes: &[u8]) -> Result<jbyteArray, Failure> {
    let raw_env = env.get_raw();
    let new_array = jni_fn!(raw_env, NewByteArray);
    let set_region = jni_fn!(raw_env, SetByteArrayRegion);
    let len = jsize::try_from(bytes.len())
        .map_err(|_| Failure::Internal(format!("{} bytes do not fit a Java array", bytes.len())))?;
    // SAFETY: a plain allocation request.
    let array = unsafe { new_array(raw_env, len) };
    if array.is_null() {
        return Err(jni::errors::Error::JavaException.into());
    }
    // SAFETY: `array` is a new `byte[]` of `len` elements and `bytes` holds `len` bytes.
    unsafe { set_region(raw_env, array, 0, len, bytes.as_ptr().cast()) };
    Ok(array)
}
