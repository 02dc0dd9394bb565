//! Calls by handle through FFM: `byte[]` in place (the output in an array the caller sized, or
//! spilled), and direct buffers.

use std::ptr::NonNull;

use super::{SPILL, guard, reentered};
use crate::jni::HANDLES;
use crate::jni::contract::{ffm, ffm_flag};
use crate::jni::entry::Failure;
use proxyso_core::host::{FixedOutput, SpillOutput, Written};

/// `method_len` bytes of UTF-8 at `method`, or `None` for a negative length (the handle's own
/// method).
///
/// # Safety
/// For a length of 0 or more, `method` must point at that many readable bytes.
unsafe fn method_arg<'a>(method: *const u8, method_len: i32) -> Result<Option<&'a str>, Failure> {
    let Ok(len) = usize::try_from(method_len) else {
        return Ok(None);
    };
    // SAFETY: as the caller guarantees.
    let bytes = unsafe { bytes(method, len) };
    std::str::from_utf8(bytes)
        .map(Some)
        .map_err(|e| Failure::IllegalArgument(format!("the method name is not UTF-8: {e}")))
}

/// `len` bytes at `data` (which may be null when `len` is 0).
///
/// # Safety
/// `data` must point at `len` readable bytes that nothing writes during the call.
unsafe fn bytes<'a>(data: *const u8, len: usize) -> &'a [u8] {
    if len == 0 || data.is_null() {
        &[]
    } else {
        // SAFETY: as the caller guarantees.
        unsafe { std::slice::from_raw_parts(data, len) }
    }
}

/// A length from Java, which is never negative.
fn length(len: i32, what: &str) -> Result<usize, Failure> {
    usize::try_from(len)
        .map_err(|_| Failure::IllegalArgument(format!("negative {what} length {len}")))
}

/// `proxyso_ffm_call(handle, method, methodLen, in, inLen, out, outLen, flags)`: calls the
/// method (the handle's own for a negative `methodLen`) on `inLen` bytes at `in`; the output goes
/// to `out` when it fits `outLen` bytes (returns its length), else it is spilled (returns
/// `SPILLED - n`, see `proxyso_ffm_take`). Flags: `CRITICAL` (a method not known to be short
/// answers `NOT_SHORT` and runs nothing), `CACHED` (a stale handle answers `STALE`).
///
/// # Safety
/// `method` must point at `methodLen` readable bytes (when that is 0 or more), `in` at `inLen`
/// readable bytes, `out` at `outLen` writable bytes, none of them written by anything else
/// during the call (Java arrays in a critical downcall, or native memory).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // the downcall's signature
pub unsafe extern "C" fn proxyso_ffm_call(
    handle: i64,
    method: *const u8,
    method_len: i32,
    input: *const u8,
    input_len: i32,
    output: *mut u8,
    output_len: i32,
    flags: i32,
) -> i64 {
    guard(flags & ffm_flag::CACHED != 0, || {
        let opened = HANDLES.get(handle).ok_or(Failure::HandleClosed(handle))?;
        // SAFETY: the caller guarantees `method_len` readable bytes at `method`.
        let method = unsafe { method_arg(method, method_len) }?.or(opened.method.as_deref());
        // SAFETY: the caller guarantees `input_len` readable bytes at `input`.
        let input = unsafe { bytes(input, length(input_len, "input")?) };
        let (output, capacity) = in_place(output, length(output_len, "output")?);
        let critical = flags & ffm_flag::CRITICAL != 0;
        SPILL.with(|spill| {
            let mut spill = spill.try_borrow_mut().map_err(|_| reentered())?;
            // SAFETY: the caller guarantees `capacity` writable bytes at `output` that nothing
            // else touches during the call (a dangling pointer comes with capacity 0).
            let out = unsafe { SpillOutput::new(output, capacity, &mut spill) };
            let written = opened.handle.call_spill(method, input, out, critical)?;
            Ok(match written {
                None => ffm::NOT_SHORT,
                Some(Written::InPlace(n)) => count(n)?,
                Some(Written::Spilled(n)) => ffm::SPILLED - count(n)?,
            })
        })
    })
}

/// `proxyso_ffm_call_direct(handle, method, methodLen, in, inLen, out, outLen, flags)`: calls the
/// method on direct buffers' memory, without copying: returns how many bytes it wrote at `out`.
/// An output that does not fit is `OutputTooSmallException`, as on the JNI path; flags as for
/// `proxyso_ffm_call`.
///
/// # Safety
/// As for `proxyso_ffm_call`; `in` and `out` are a direct buffer's memory.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // the downcall's signature
pub unsafe extern "C" fn proxyso_ffm_call_direct(
    handle: i64,
    method: *const u8,
    method_len: i32,
    input: *const u8,
    input_len: i32,
    output: *mut u8,
    output_len: i32,
    flags: i32,
) -> i64 {
    guard(flags & ffm_flag::CACHED != 0, || {
        let opened = HANDLES.get(handle).ok_or(Failure::HandleClosed(handle))?;
        // SAFETY: the caller guarantees `method_len` readable bytes at `method`.
        let method = unsafe { method_arg(method, method_len) }?.or(opened.method.as_deref());
        let (in_len, out_len) = (length(input_len, "input")?, length(output_len, "output")?);
        let (in_start, out_start) = (input as usize, output as usize);
        if in_len > 0
            && out_len > 0
            && in_start < out_start + out_len
            && out_start < in_start + in_len
        {
            return Err(Failure::IllegalArgument(
                "the input and output buffer regions overlap".into(),
            ));
        }
        // SAFETY: the caller guarantees `in_len` readable bytes at `input`, not written during
        // the call (the output region does not overlap it: checked above).
        let input = unsafe { bytes(input, in_len) };
        let (output, out_len) = in_place(output, out_len);
        // SAFETY: the caller guarantees `out_len` writable bytes at `output` that nothing else
        // touches during the call (a dangling pointer comes with length 0).
        let mut out = unsafe { FixedOutput::new(output, out_len) };
        let critical = flags & ffm_flag::CRITICAL != 0;
        match opened
            .handle
            .call_fixed_short(method, input, &mut out, critical)?
        {
            None => Ok(ffm::NOT_SHORT),
            Some(n) => count(n),
        }
    })
}

/// The output region to hand the plugin: a null pointer (nothing to write into) becomes a
/// dangling, non-null one of length 0, as the ABI wants a non-null `data`.
fn in_place(output: *mut u8, len: usize) -> (*mut u8, usize) {
    if output.is_null() {
        (NonNull::<u8>::dangling().as_ptr(), 0)
    } else {
        (output, len)
    }
}

/// An output length as the answer; never above `MAX_OUTPUT`, so it fits.
fn count(n: usize) -> Result<i64, Failure> {
    i64::try_from(n).map_err(|_| Failure::Internal("output length overflow".into()))
}
