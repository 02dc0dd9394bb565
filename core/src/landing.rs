//! The landing pad: every call into plugin code (a method, `init`, `destroy`) goes through a
//! small C++ frame (`native/landing.cpp`) that catches a C++ exception the plugin lets escape.
//!
//! Rust cannot catch a foreign exception: one that reaches `catch_unwind` aborts the process,
//! and with it the JVM. The C++ frame catches `const std::exception&` (copying `what()`, cut at
//! [`TEXT_CAPACITY`] bytes, into a host buffer) and `...`, and reports it here; the caller turns
//! it into an ordinary failure (a `PluginException`, a failed load, a log line). The plugin ABI
//! is unchanged, and a plugin should still catch its own exceptions.
//!
//! The shim's functions are declared `"C-unwind"`: the one thing it lets through is
//! `abi::__forced_unwind` (`pthread_cancel` or `pthread_exit` on the calling thread), which
//! must not be swallowed (libstdc++ would abort) and is not an error to report but the end of
//! the thread. It unwinds through the host's frames, running their destructors, up to the first
//! `catch_unwind`, which cannot catch it either and aborts: a plugin that cancels or exits the
//! thread that called it still ends the process, as it always did.

use std::ffi::c_void;
use std::fmt;
use std::mem::MaybeUninit;
use std::ptr;

use proxyso_abi as abi;

/// The most bytes of an exception's text the host keeps; the rest is cut.
pub const TEXT_CAPACITY: usize = 1024;

/// `proxyso_landing.caught`: nothing escaped.
const NOTHING: i32 = 0;
/// `proxyso_landing.caught`: a `std::exception`; the text is its `what()`.
const STD_EXCEPTION: i32 = 1;
/// `proxyso_landing.caught`: anything else; the text says what the runtime knows of its type.
const OTHER: i32 = 2;

/// `struct proxyso_landing` of `native/landing.cpp`, followed by the buffer its `text` points
/// at. Lives on the caller's stack; only the header is written on the normal path.
#[repr(C)]
struct Landing {
    caught: i32,
    truncated: i32,
    len: usize,
    capacity: usize,
    text: *mut u8,
    buffer: [MaybeUninit<u8>; TEXT_CAPACITY],
}

impl Landing {
    /// An empty landing; `as_raw` points its text at its own buffer.
    #[inline(always)]
    fn new() -> Landing {
        Landing {
            caught: NOTHING,
            truncated: 0,
            len: 0,
            capacity: TEXT_CAPACITY,
            text: ptr::null_mut(),
            buffer: [MaybeUninit::uninit(); TEXT_CAPACITY],
        }
    }

    /// The struct to pass to the shim; valid while `self` stays where it is.
    #[inline(always)]
    fn as_raw(&mut self) -> *mut Landing {
        self.text = self.buffer.as_mut_ptr().cast();
        self
    }

    /// What was caught, if anything was.
    #[inline(always)]
    fn caught(&self) -> Option<Thrown> {
        if self.caught == NOTHING {
            None
        } else {
            Some(self.thrown())
        }
    }

    #[cold]
    #[inline(never)]
    fn thrown(&self) -> Thrown {
        debug_assert!(
            matches!(self.caught, STD_EXCEPTION | OTHER),
            "{}",
            self.caught
        );
        let len = self.len.min(TEXT_CAPACITY);
        // SAFETY: the shim wrote `len` bytes (at most `capacity`) at the start of `buffer`
        // before it set `caught`; `u8` has no invalid values.
        let bytes = unsafe { std::slice::from_raw_parts(self.buffer.as_ptr().cast::<u8>(), len) };
        Thrown {
            std_exception: self.caught == STD_EXCEPTION,
            what: String::from_utf8_lossy(bytes).into_owned(),
            truncated: self.truncated != 0,
        }
    }
}

/// A C++ exception that escaped plugin code and was caught by the landing pad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thrown {
    /// True for a `std::exception`, whose `what()` is `what`.
    pub std_exception: bool,
    /// `what()`, or for anything else "unknown C++ exception" and the type's name if known.
    pub what: String,
    /// True when `what` was cut at [`TEXT_CAPACITY`] bytes.
    pub truncated: bool,
}

impl fmt::Display for Thrown {
    /// `C++ exception: <what>`, with `...` after a text that was cut.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "C++ exception: {}", self.what)?;
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

// Defined in native/landing.cpp; each calls its first argument with the others and catches what
// it throws (see the module docs for the one thing it lets through).
unsafe extern "C-unwind" {
    fn proxyso_landing_method(
        call: abi::MethodFn,
        context: *mut c_void,
        input: *const u8,
        input_len: usize,
        output: *mut abi::Output,
        error: *mut abi::Error,
        landing: *mut Landing,
    ) -> abi::Status;

    fn proxyso_landing_init(
        init: abi::InitFn,
        host: *const abi::Host,
        config: *const u8,
        config_len: usize,
        context: *mut *mut c_void,
        error: *mut abi::Error,
        landing: *mut Landing,
    ) -> abi::Status;

    fn proxyso_landing_destroy(
        destroy: abi::DestroyFn,
        context: *mut c_void,
        landing: *mut Landing,
    );
}

/// Calls a plugin method through the landing pad: its status, or the exception it let escape.
///
/// # Safety
/// As for calling `call` directly: the arguments must be what the header requires of a method
/// call (a context from the same library's `init`, `input_len` readable bytes at `input`, and
/// the host's live output and error structs).
#[inline(always)]
pub unsafe fn method(
    call: abi::MethodFn,
    context: *mut c_void,
    input: *const u8,
    input_len: usize,
    output: *mut abi::Output,
    error: *mut abi::Error,
) -> Result<abi::Status, Thrown> {
    let mut landing = Landing::new();
    // SAFETY: the caller vouches for the method's arguments; `landing` is live for the call.
    let status = unsafe {
        proxyso_landing_method(
            call,
            context,
            input,
            input_len,
            output,
            error,
            landing.as_raw(),
        )
    };
    match landing.caught() {
        None => Ok(status),
        Some(thrown) => Err(thrown),
    }
}

/// Calls a plugin's `init` through the landing pad: its status, or the exception it let escape.
///
/// # Safety
/// As for calling `init` directly: the arguments must be what the header requires of `init`.
pub unsafe fn init(
    init: abi::InitFn,
    host: *const abi::Host,
    config: *const u8,
    config_len: usize,
    context: *mut *mut c_void,
    error: *mut abi::Error,
) -> Result<abi::Status, Thrown> {
    let mut landing = Landing::new();
    // SAFETY: the caller vouches for init's arguments; `landing` is live for the call.
    let status = unsafe {
        proxyso_landing_init(
            init,
            host,
            config,
            config_len,
            context,
            error,
            landing.as_raw(),
        )
    };
    match landing.caught() {
        None => Ok(status),
        Some(thrown) => Err(thrown),
    }
}

/// Calls a plugin's `destroy` through the landing pad: the exception it let escape, if any.
///
/// # Safety
/// As for calling `destroy` directly: `context` is what the same library's `init` returned,
/// and no call into the version runs or will run.
pub unsafe fn destroy(destroy: abi::DestroyFn, context: *mut c_void) -> Result<(), Thrown> {
    let mut landing = Landing::new();
    // SAFETY: the caller vouches for destroy's argument; `landing` is live for the call.
    unsafe { proxyso_landing_destroy(destroy, context, landing.as_raw()) };
    match landing.caught() {
        None => Ok(()),
        Some(thrown) => Err(thrown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::host::{ErrorSlot, OutputBuf};

    unsafe extern "C" fn answers(
        _context: *mut c_void,
        _input: *const u8,
        input_len: usize,
        _output: *mut abi::Output,
        _error: *mut abi::Error,
    ) -> abi::Status {
        // Any status passes through unchanged, even one the ABI does not define.
        input_len as abi::Status
    }

    #[test]
    fn a_call_that_returns_passes_its_status_through() {
        let mut out = Vec::new();
        let mut output = OutputBuf::new(&mut out, 0);
        let mut error = ErrorSlot::default();
        for status in [abi::OK, abi::ERROR, abi::PANIC, 77] {
            let input = vec![0u8; status as usize];
            // SAFETY: `answers` reads none of its pointers; the structs are live.
            let landed = unsafe {
                method(
                    answers,
                    ptr::null_mut(),
                    input.as_ptr(),
                    input.len(),
                    output.as_raw(),
                    error.as_raw(),
                )
            };
            assert_eq!(landed, Ok(status));
        }
    }

    #[test]
    fn the_text_is_shown_cut_when_it_was() {
        let thrown = Thrown {
            std_exception: true,
            what: "boom".into(),
            truncated: false,
        };
        assert_eq!(thrown.to_string(), "C++ exception: boom");
        let cut = Thrown {
            truncated: true,
            ..thrown
        };
        assert_eq!(cut.to_string(), "C++ exception: boom...");
    }
}
