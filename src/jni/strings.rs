//! Reading Java strings and byte arrays into reusable buffers, without allocating.
//!
//! `JNIEnv::get_string` asks the JVM for a fresh copy on every call; on the call hot path the
//! key and the input are instead copied with `Get*Region` into buffers the thread keeps.
//!
//! A Java string is UTF-16 and may hold an unpaired surrogate, which no UTF-8 string can: jni's
//! own conversion replaces it with U+FFFD, so `"k\uD800"` and `"k\uDBFF"` would both become
//! `"k\u{FFFD}"` and name one library. Every string argument is read here instead, and one that is
//! not well-formed UTF-16 is refused (`IllegalArgumentException`, naming the argument and the
//! index), never replaced.

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

/// Reads `s` (the argument named `what`) into `buf` and returns it as text; allocates only for
/// a string whose modified UTF-8 differs from UTF-8 (one with a NUL or a character outside the
/// BMP). A string that is not well-formed UTF-16 is refused.
pub fn read_str<'b>(
    env: &mut JNIEnv<'_>,
    s: &JString<'_>,
    what: &'static str,
    buf: &'b mut Vec<u8>,
) -> Result<Cow<'b, str>, Failure> {
    if s.is_null() {
        return Err(jni::errors::Error::NullPtr(what).into());
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
    // Each UTF-16 unit takes 1 to 3 bytes of modified UTF-8. A JVM that sums the length in an
    // `int` wraps it for a string of over 700 M units; such a string is read as UTF-16, which
    // cannot overflow, rather than into a buffer sized by a wrapped length.
    let (Ok(bytes), Ok(units)) = (usize::try_from(bytes), usize::try_from(chars)) else {
        return read_utf16(env, s, chars, what).map(Cow::Owned);
    };
    if units > (jsize::MAX as usize - 1) / 3 || bytes < units || bytes > 3 * units {
        return read_utf16(env, s, chars, what).map(Cow::Owned);
    }
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
        Err(_) => read_utf16(env, s, chars, what).map(Cow::Owned),
    }
}

/// Reads `s` (the argument named `what`) as a new `String`; see `read_str`.
pub fn read_string(
    env: &mut JNIEnv<'_>,
    s: &JString<'_>,
    what: &'static str,
) -> Result<String, Failure> {
    let mut buf = Vec::new();
    Ok(read_str(env, s, what, &mut buf)?.into_owned())
}

/// Reads the `chars` UTF-16 units of `s` and decodes them strictly.
fn read_utf16(
    env: &mut JNIEnv<'_>,
    s: &JString<'_>,
    chars: jsize,
    what: &'static str,
) -> Result<String, Failure> {
    let raw_env = env.get_raw();
    let get_region = jni_fn!(raw_env, GetStringRegion);
    let len = usize::try_from(chars).unwrap_or(0);
    let mut units: Vec<u16> = Vec::with_capacity(len);
    // SAFETY: `s` is a live, non-null `java.lang.String` of `chars` UTF-16 units, and `units` has
    // room for all of them.
    unsafe { get_region(raw_env, s.as_raw(), 0, chars, units.as_mut_ptr()) };
    // SAFETY: the JVM wrote all `len` units; any bit pattern is a valid `u16`.
    unsafe { units.set_len(len) };
    decode_utf16(&units, what)
}

/// `units` as text, or an `IllegalArgument` naming `what` and the index of the first unpaired
/// surrogate.
pub fn decode_utf16(units: &[u16], what: &str) -> Result<String, Failure> {
    let mut text = String::with_capacity(units.len());
    let mut index = 0;
    for decoded in char::decode_utf16(units.iter().copied()) {
        match decoded {
            Ok(c) => {
                text.push(c);
                index += c.len_utf16();
            }
            Err(e) => {
                return Err(Failure::IllegalArgument(format!(
                    "{what} is not well-formed UTF-16: an unpaired surrogate \\u{:04X} at index \
                     {index}",
                    e.unpaired_surrogate()
                )));
            }
        }
    }
    Ok(text)
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

/// The length of `array`, a live, non-null `byte[]` (raw JNI: no exception check after it,
/// as `GetArrayLength` cannot throw).
pub fn array_length(env: &mut JNIEnv<'_>, array: &JByteArray<'_>) -> Result<usize, Failure> {
    let raw_env = env.get_raw();
    let get_length = jni_fn!(raw_env, GetArrayLength);
    // SAFETY: `array` is a live, non-null local reference to a `byte[]`, as the caller guarantees.
    let len = unsafe { get_length(raw_env, array.as_raw()) };
    Ok(usize::try_from(len).unwrap_or(0))
}

/// A new `byte[]` of `len` zeros (raw JNI: the one failure, an `OutOfMemoryError` left pending,
/// is a null answer, so no exception check follows).
pub fn new_zeroed_byte_array<'l>(
    env: &mut JNIEnv<'l>,
    len: usize,
) -> Result<JByteArray<'l>, Failure> {
    let raw_env = env.get_raw();
    let new_array = jni_fn!(raw_env, NewByteArray);
    let len = jsize::try_from(len)
        .map_err(|_| Failure::Internal(format!("{len} bytes do not fit a Java array")))?;
    // SAFETY: a plain allocation request.
    let array = unsafe { new_array(raw_env, len) };
    if array.is_null() {
        return Err(jni::errors::Error::JavaException.into());
    }
    // SAFETY: a new, live local reference to a `byte[]`.
    Ok(unsafe { JByteArray::from_raw(array) })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(units: &[u16]) -> String {
        match decode_utf16(units, "key") {
            Err(Failure::IllegalArgument(message)) => message,
            other => panic!("{units:?}: {other:?}"),
        }
    }

    #[test]
    fn well_formed_text_is_decoded_whole() {
        let text = "k\0模型🚀";
        let units: Vec<u16> = text.encode_utf16().collect();
        assert_eq!(decode_utf16(&units, "key").unwrap(), text);
    }

    #[test]
    fn unpaired_surrogates_are_refused_with_their_index() {
        let k = u16::from(b'k');
        assert_eq!(
            refusal(&[k, 0xD800]),
            "key is not well-formed UTF-16: an unpaired surrogate \\uD800 at index 1"
        );
        assert!(refusal(&[k, 0xDBFF]).ends_with("\\uDBFF at index 1"));
        // A low surrogate first, a high one followed by a non-surrogate, after a pair.
        assert!(refusal(&[0xDC00, k]).ends_with("\\uDC00 at index 0"));
        assert!(refusal(&[0xD800, k]).ends_with("\\uD800 at index 0"));
        let rocket: Vec<u16> = "🚀".encode_utf16().collect();
        assert!(refusal(&[rocket[0], rocket[1], 0xDFFF]).ends_with("\\uDFFF at index 2"));
    }
}
