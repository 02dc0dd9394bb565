//! The call hot path as Java reaches it: by key, by handle, and into direct buffers.
//!
//! Each calling thread keeps its key, method, input and output buffers from call to call, so a
//! warm call allocates nothing but the `byte[]` it returns (and nothing at all into a direct
//! `ByteBuffer`). Handles skip the key: no string crosses JNI, no map is searched.
//!
//! A `byte[]` call of less than `PIN_FROM` bytes goes through the thread's exchange buffers
//! (`callExchange`): Java copies the input into a direct view of native memory the thread keeps,
//! native code calls the plugin on it, and Java copies the output out of a direct view of the
//! thread's output buffer. Native code then calls no JNI function at all on a successful call;
//! each JNI function is a transition into the VM with a full barrier, and the four a `byte[]`
//! call needs otherwise (`GetArrayLength`, `GetByteArrayRegion`, `NewByteArray`,
//! `SetByteArrayRegion`) were a third of a 64 B call in the profile. A larger one goes through
//! `callHandle`, which pins the arrays for a method known to be short (`pinned`): one copy
//! instead of three, which matters more than those transitions from 1 KiB on; to an isolated
//! plugin, it copies straight into and out of the worker's slot (`staged`).

use std::borrow::Cow;
use std::cell::RefCell;

use jni::JNIEnv;
use jni::objects::{JByteArray, JByteBuffer, JClass, JString};
use jni::sys::{jboolean, jbyteArray, jint, jlong};

use super::contract::byte_calls::{EXCHANGE_MAX, PIN_FROM};
use super::entry::{Failure, run};
use super::handles::HandleEntry;
use super::pinned::{self, OutputGuess};
use super::staged;
use super::strings::{array_length, new_byte_array, read_bytes, read_str, read_string};
use super::{HANDLES, registry};
use proxyso_core::error::Error;
use proxyso_core::hazard::Held;
use proxyso_core::host::FixedOutput;

/// Buffers a calling thread reuses from call to call.
#[derive(Default)]
pub(super) struct Scratch {
    key: Vec<u8>,
    /// The method name's UTF-8 bytes.
    pub(super) method: Vec<u8>,
    input: Vec<u8>,
    output: Vec<u8>,
    /// The exchange input: Java writes a call's input here through a direct view of it (handed
    /// out by `exchangeInput`, valid until the next `exchangeInput` or the thread's end).
    /// Zeroed when allocated, so every byte a call reads is initialised whatever Java wrote.
    exchange: Box<[u8]>,
    /// The address and capacity of `output` when Java last got a view of it
    /// (`exchangeOutput`); an exchange call whose output is elsewhere tells Java to get a new one.
    output_view: (usize, usize),
    /// `output` holds an exchange call's output that Java has not copied yet: not trimmed.
    output_lent: bool,
    /// The output array's size for the next pinned call.
    guess: OutputGuess,
}

/// Above this a scratch buffer is given back after the call instead of kept for the next.
const SCRATCH_KEEP: usize = 4 << 20;
/// The bit of `callExchange`'s answer that says the output is not where Java's view of it is.
const OUTPUT_MOVED: jlong = 1 << 62;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// A failure on the call hot path, boxed: a call's result is then two words, which stay in
/// registers, where a `Result` carrying a 112-byte `Failure` was copied from frame to frame
/// through the stack (with stalled loads, in the profile of a 64 B call).
pub(super) type Boxed = Box<Failure>;

/// Boxes a failure, out of the hot path's way.
#[cold]
#[inline(never)]
pub(super) fn boxed(failure: impl Into<Failure>) -> Boxed {
    Box::new(failure.into())
}

/// Runs `f` with this thread's scratch buffers, trimming oversized ones afterwards.
#[inline]
pub(super) fn with_scratch<T, E: From<Failure>>(
    f: impl FnOnce(&mut Scratch) -> Result<T, E>,
) -> Result<T, E> {
    SCRATCH.with(|scratch| {
        let Ok(mut scratch) = scratch.try_borrow_mut() else {
            return Err(
                Failure::Internal("a call re-entered the proxy on one thread".into()).into(),
            );
        };
        scratch.output_lent = false;
        let result = f(&mut scratch);
        if scratch.input.capacity() > SCRATCH_KEEP {
            scratch.input = Vec::new();
        }
        if !scratch.output_lent && scratch.output.capacity() > SCRATCH_KEEP {
            scratch.output = Vec::new();
        }
        result
    })
}

/// A nullable method name.
fn method_arg<'b>(
    env: &mut JNIEnv<'_>,
    method: &JString<'_>,
    buf: &'b mut Vec<u8>,
) -> Result<Option<Cow<'b, str>>, Failure> {
    if method.is_null() {
        Ok(None)
    } else {
        read_str(env, method, "method", buf).map(Some)
    }
}

/// The method a call through `opened` names: `method`, or for `null` the handle's own.
#[inline]
pub(super) fn handle_method<'b>(
    env: &mut JNIEnv<'_>,
    method: &JString<'_>,
    buf: &'b mut Vec<u8>,
    opened: &'b HandleEntry,
) -> Result<Option<Cow<'b, str>>, Boxed> {
    Ok(match method_arg(env, method, buf).map_err(boxed)? {
        Some(name) => Some(name),
        None => opened.method.as_deref().map(Cow::Borrowed),
    })
}

/// The open handle behind `id`, held for the length of a call.
#[inline]
pub(super) fn opened(id: jlong) -> Result<Held<HandleEntry>, Boxed> {
    HANDLES
        .get(id)
        .ok_or_else(|| boxed(Failure::HandleClosed(id)))
}

/// `NativeBridge.call(String key, String method, byte[] input)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_call<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    key: JString<'l>,
    method: JString<'l>,
    input: JByteArray<'l>,
) -> jbyteArray {
    run(&mut env, std::ptr::null_mut(), |env| {
        with_scratch(|s| {
            let key = read_str(env, &key, "key", &mut s.key)?;
            let method = method_arg(env, &method, &mut s.method)?;
            read_bytes(env, &input, &mut s.input)?;
            registry().call(&key, method.as_deref(), &s.input, &mut s.output)?;
            new_byte_array(env, &s.output)
        })
    })
}

/// `NativeBridge.open(String key, String method)`: a handle id.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_open<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    key: JString<'l>,
    method: JString<'l>,
) -> jlong {
    run(&mut env, 0, |env| {
        let key = read_string(env, &key, "key")?;
        let method: Option<Box<str>> = if method.is_null() {
            None
        } else {
            Some(read_string(env, &method, "method")?.into())
        };
        let handle = registry().handle(&key)?;
        handle.check_method(method.as_deref())?;
        HANDLES
            .open(HandleEntry { handle, method })
            .ok_or_else(|| Failure::Internal("too many library handles are open".into()))
    })
}

/// `NativeBridge.close(long handle)`: a closed or unknown id is ignored.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_close<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    run(&mut env, (), |_| {
        HANDLES.close(handle);
        Ok(())
    })
}

/// With `cached`, a handle that went stale (its id closed, or its key unloaded) is an answer, not
/// an error: `None`, which `HandleCache` takes as "open the key again". Any other failure stays
/// an error.
pub(super) fn stale_as_none<T>(
    cached: jboolean,
    result: Result<T, Boxed>,
) -> Result<Option<T>, Failure> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(failure) => stale_or_error(cached, *failure).map(|()| None),
    }
}

/// `Ok` for a stale handle when `cached`, else the failure.
#[cold]
fn stale_or_error(cached: jboolean, failure: Failure) -> Result<(), Failure> {
    match failure {
        Failure::HandleClosed(_) | Failure::Core(Error::NoSuchLibrary { .. }) if cached != 0 => {
            Ok(())
        }
        failure => Err(failure),
    }
}

/// `NativeBridge.callHandle(long handle, String method, byte[] input, boolean cached)`: no key
/// lookup; the arrays pinned from `PIN_FROM` bytes on for a method known to be short (see
/// `pinned`); with `cached`, `null` for a stale handle (see `stale_as_none`).
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_callHandle<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    method: JString<'l>,
    input: JByteArray<'l>,
    cached: jboolean,
) -> jbyteArray {
    run(&mut env, std::ptr::null_mut(), |env| {
        let output = with_scratch(|s| call_handle(env, s, handle, &method, &input));
        Ok(stale_as_none(cached, output)?.unwrap_or(std::ptr::null_mut()))
    })
}

/// The body of `callHandle`.
#[inline]
fn call_handle(
    env: &mut JNIEnv<'_>,
    s: &mut Scratch,
    handle: jlong,
    method: &JString<'_>,
    input: &JByteArray<'_>,
) -> Result<jbyteArray, Boxed> {
    let opened = opened(handle)?;
    let method = handle_method(env, method, &mut s.method, &opened)?;
    if input.is_null() {
        return Err(boxed(jni::errors::Error::NullPtr("the input array")));
    }
    let len = array_length(env, input).map_err(boxed)?;
    if len >= PIN_FROM {
        if opened.handle.is_isolated() {
            return staged::call(env, &opened.handle, method.as_deref(), input, len).map_err(boxed);
        }
        let target = (handle, &opened.handle);
        if let Some(output) =
            pinned::call(env, &mut s.guess, target, method.as_deref(), input, len).map_err(boxed)?
        {
            return Ok(output);
        }
    }
    read_bytes(env, input, &mut s.input).map_err(boxed)?;
    opened
        .handle
        .call(method.as_deref(), &s.input, &mut s.output)
        .map_err(boxed)?;
    new_byte_array(env, &s.output).map_err(boxed)
}

/// `NativeBridge.exchangeInput(int minCapacity)`: a direct view of this thread's exchange input,
/// at least `minCapacity` (at most `EXCHANGE_MAX`) bytes. A larger one replaces the last; any
/// view handed out before is then dangling, which the Java side never uses again.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_exchangeInput<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    min_capacity: jint,
) -> jni::sys::jobject {
    run(&mut env, std::ptr::null_mut(), |env| {
        let wanted = usize::try_from(min_capacity)
            .ok()
            .filter(|n| *n <= EXCHANGE_MAX)
            .ok_or_else(|| {
                Failure::IllegalArgument(format!(
                    "exchange capacity {min_capacity} is not between 0 and {EXCHANGE_MAX}"
                ))
            })?;
        with_scratch(|s| {
            if s.exchange.len() < wanted || s.exchange.is_empty() {
                let size = wanted.max(4096).next_power_of_two().min(EXCHANGE_MAX);
                s.exchange = vec![0u8; size].into_boxed_slice();
            }
            // SAFETY: the block stays allocated until a larger one replaces it or the thread
            // ends; the Java side drops this view first (see `ExchangeCalls`), and only this
            // thread uses it.
            let view =
                unsafe { env.new_direct_byte_buffer(s.exchange.as_mut_ptr(), s.exchange.len()) }?;
            Ok(view.into_raw())
        })
    })
}

/// `NativeBridge.exchangeOutput()`: a direct view of this thread's output buffer as the last
/// exchange call left it (its whole capacity), valid until an exchange call answers that the
/// output moved, `exchangeRelease`, or the thread's end.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_exchangeOutput<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
) -> jni::sys::jobject {
    run(&mut env, std::ptr::null_mut(), |env| {
        with_scratch(|s| {
            // Kept for the caller to copy from: the view is taken to read the last output.
            s.output_lent = true;
            if s.output.capacity() == 0 {
                s.output.reserve(64);
            }
            let (data, capacity) = (s.output.as_mut_ptr(), s.output.capacity());
            // SAFETY: the buffer stays where it is until a later call on this thread grows or
            // trims it, which that call reports (`OUTPUT_MOVED`) before Java reads again.
            let view = unsafe { env.new_direct_byte_buffer(data, capacity) }?;
            s.output_view = (data as usize, capacity);
            Ok(view.into_raw())
        })
    })
}

/// `NativeBridge.exchangeRelease()`: gives back an oversized output buffer once Java copied it;
/// the next exchange call answers that the output moved.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_exchangeRelease<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
) {
    run(&mut env, (), |_| {
        with_scratch(|s| {
            // Java dropped its view: the next exchange call must say so even if the buffer it
            // grows lands where this one was.
            s.output_view = (0, 0);
            Ok(())
        })
    })
}

/// `NativeBridge.callExchange(long handle, String method, int inLength, boolean cached)`: calls
/// through a handle on the first `inLength` bytes of the exchange input; answers the output's
/// length (in the output buffer), with `OUTPUT_MOVED` set when Java's view of that buffer is
/// out of date, or with `cached` -1 for a stale handle (see `stale_as_none`).
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_callExchange<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    method: JString<'l>,
    in_length: jint,
    cached: jboolean,
) -> jlong {
    run(&mut env, 0, |env| {
        let answer = with_scratch(|s| call_exchange(env, s, handle, &method, in_length));
        Ok(stale_as_none(cached, answer)?.unwrap_or(-1))
    })
}

/// The body of `callExchange`.
#[inline]
fn call_exchange(
    env: &mut JNIEnv<'_>,
    s: &mut Scratch,
    handle: jlong,
    method: &JString<'_>,
    in_length: jint,
) -> Result<jlong, Boxed> {
    let Some(in_length) = usize::try_from(in_length)
        .ok()
        .filter(|n| *n <= s.exchange.len())
    else {
        return Err(boxed(Failure::IllegalArgument(format!(
            "exchange input length {in_length} exceeds the exchange buffer's {} bytes",
            s.exchange.len()
        ))));
    };
    let opened = opened(handle)?;
    let method = handle_method(env, method, &mut s.method, &opened)?;
    opened
        .handle
        .call(method.as_deref(), &s.exchange[..in_length], &mut s.output)
        .map_err(boxed)?;
    s.output_lent = true;
    let moved = (s.output.as_ptr() as usize, s.output.capacity()) != s.output_view;
    // At most `host::MAX_OUTPUT` bytes, so it fits below the flag.
    let length = s.output.len() as jlong;
    Ok(if moved { length | OUTPUT_MOVED } else { length })
}

/// `NativeBridge.callDirect(long handle, String method, ByteBuffer in, int inOffset,
/// int inLength, ByteBuffer out, int outOffset, int outLength, boolean cached)`: zero-copy;
/// returns how many bytes the plugin wrote at `out + outOffset`, or with `cached` -1 for a stale
/// handle (see `stale_as_none`).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // the JNI signature
pub extern "system" fn Java_dev_proxyso_NativeBridge_callDirect<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    method: JString<'l>,
    input: JByteBuffer<'l>,
    in_offset: jint,
    in_length: jint,
    output: JByteBuffer<'l>,
    out_offset: jint,
    out_length: jint,
    cached: jboolean,
) -> jint {
    run(&mut env, 0, |env| {
        let written = call_direct(
            env,
            handle,
            &method,
            (&input, in_offset, in_length),
            (&output, out_offset, out_length),
        );
        Ok(stale_as_none(cached, written)?.unwrap_or(-1))
    })
}

/// A region of a direct buffer: the buffer, an offset and a length, unchecked.
type Region<'a, 'l> = (&'a JByteBuffer<'l>, jint, jint);

/// The body of `callDirect`.
fn call_direct(
    env: &mut JNIEnv<'_>,
    handle: jlong,
    method: &JString<'_>,
    (input, in_offset, in_length): Region<'_, '_>,
    (output, out_offset, out_length): Region<'_, '_>,
) -> Result<jint, Boxed> {
    let opened = opened(handle)?;
    let mut method_buf = Vec::new();
    let method = match method_arg(env, method, &mut method_buf).map_err(boxed)? {
        Some(name) => Some(name),
        None => opened.method.as_deref().map(Cow::Borrowed),
    };
    let (in_ptr, in_len) = direct_region(env, input, in_offset, in_length).map_err(boxed)?;
    let (out_ptr, out_len) = direct_region(env, output, out_offset, out_length).map_err(boxed)?;
    let (in_start, out_start) = (in_ptr as usize, out_ptr as usize);
    if in_len > 0 && out_len > 0 && in_start < out_start + out_len && out_start < in_start + in_len
    {
        return Err(boxed(Failure::IllegalArgument(
            "the input and output buffer regions overlap".into(),
        )));
    }
    // SAFETY: `direct_region` checked that the region lies inside the direct buffer, whose
    // memory lives as long as the buffer object this call holds a reference to; the Java
    // API documents that the caller must not touch the buffers during the call.
    let input = unsafe { std::slice::from_raw_parts(in_ptr, in_len) };
    // SAFETY: as above, for the output region, which nothing else writes meanwhile.
    let mut out = unsafe { FixedOutput::new(out_ptr, out_len) };
    let written = opened
        .handle
        .call_fixed(method.as_deref(), input, &mut out)
        .map_err(boxed)?;
    jint::try_from(written).map_err(|_| boxed(Failure::Internal("output length overflow".into())))
}

/// The address and length of `length` bytes at `offset` in a direct buffer, checked.
fn direct_region(
    env: &mut JNIEnv<'_>,
    buffer: &JByteBuffer<'_>,
    offset: jint,
    length: jint,
) -> Result<(*mut u8, usize), Failure> {
    let address = env.get_direct_buffer_address(buffer)?;
    let capacity = env.get_direct_buffer_capacity(buffer)?;
    let (Ok(offset), Ok(length)) = (usize::try_from(offset), usize::try_from(length)) else {
        return Err(Failure::IllegalArgument(format!(
            "negative buffer region {offset}+{length}"
        )));
    };
    if offset.checked_add(length).is_none_or(|end| end > capacity) {
        return Err(Failure::IllegalArgument(format!(
            "buffer region {offset}+{length} exceeds its capacity {capacity}"
        )));
    }
    // SAFETY: `offset` is within the buffer's capacity (checked above).
    Ok((unsafe { address.add(offset) }, length))
}
