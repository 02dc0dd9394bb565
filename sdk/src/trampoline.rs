//! The `extern "C"` entry points behind [`export_plugin!`](crate::export_plugin), and the
//! compile-time checks of its arguments. Not a public API: only the macro names these.
//!
//! Every entry point runs the plugin's code inside `catch_unwind`: since Rust 1.81 a panic that
//! reaches an `extern "C"` boundary aborts the process, which here would be the whole JVM.

use std::any::Any;
use std::ffi::{c_char, c_void};
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::slice;

use crate::{Error, Host, Output, Plugin, abi};

/// The error code recorded with [`abi::PANIC`]; the status, not the code, tells it is a panic.
///
/// A panic in a method or in `init` is caught: the host gets status [`abi::PANIC`], this code,
/// and the panic's message, and Java a `PluginException` whose `isPanic()` is true. The version
/// keeps serving.
///
/// ```standalone_crate
/// use proxyso_sdk::testing::Harness;
/// use proxyso_sdk::{Error, Host, Output, PANIC_CODE, Plugin, abi};
///
/// struct Divide;
///
/// impl Plugin for Divide {
///     fn init(_host: Host, _config: &[u8]) -> Result<Self, Error> {
///         Ok(Divide)
///     }
/// }
///
/// impl Divide {
///     /// 100 divided by the first input byte: a bug, for the input 0.
///     fn divide(&self, input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
///         let divisor = *input.first().ok_or_else(|| Error::msg("empty input"))?;
///         out.write_all(&[100 / divisor])
///     }
/// }
///
/// proxyso_sdk::export_plugin! {
///     plugin: Divide,
///     name: "divide",
///     version: "1.0.0",
///     methods: { "divide" => Divide::divide },
/// }
///
/// // SAFETY: the descriptor was made by `export_plugin!`.
/// let divide = unsafe { Harness::init(&proxyso_plugin, b"") }.unwrap();
/// let panic = divide.call_default(&[0]).unwrap_err();
/// assert_eq!((panic.status, panic.code), (abi::PANIC, PANIC_CODE));
/// assert_eq!(panic.message, "attempt to divide by zero");
/// assert_eq!(divide.call_default(&[4]).unwrap(), [25]); // it serves on
/// ```
pub const PANIC_CODE: i32 = -1;

/// `init` for plugin type `P`: builds the plugin and hands the host a boxed pointer to it.
///
/// # Safety
///
/// Called by the host as `proxyso_plugin.init`: `host` is valid until `destroy` returns,
/// `config` points to `config_len` readable bytes, `context` is writable and `error` is the
/// host's live error slot.
pub unsafe extern "C" fn init<P: Plugin>(
    host: *const abi::Host,
    config: *const u8,
    config_len: usize,
    context: *mut *mut c_void,
    error: *mut abi::Error,
) -> abi::Status {
    let status = run(error, || {
        if host.is_null() || context.is_null() {
            return Err(Error::msg(
                "init called with a null host or context pointer",
            ));
        }
        // SAFETY: the host guarantees `config` points to `config_len` bytes for this call.
        let config =
            unsafe { bytes(config, config_len) }.ok_or_else(|| Error::msg("null config"))?;
        set_quiet_panic_hook();
        // SAFETY: the host keeps `host` valid and thread-safe until `destroy` returns, and the
        // plugin value that may keep the `Host` is dropped inside `destroy`.
        let host = unsafe { Host::from_raw(host) };
        let plugin = Box::new(P::init(host, config)?);
        // SAFETY: `context` is the host's writable out-parameter (checked non-null above).
        unsafe { context.write(Box::into_raw(plugin).cast::<c_void>()) };
        Ok(())
    });
    if status != abi::OK {
        // No `destroy` follows a failed `init`: free the hook now.
        take_panic_hook();
    }
    status
}

/// `destroy` for plugin type `P`: drops the plugin `init` made.
///
/// # Safety
///
/// Called by the host as `proxyso_plugin.destroy`, exactly once, with the context a successful
/// [`init::<P>`](init) returned, after every method call on it has returned.
pub unsafe extern "C" fn destroy<P: Plugin>(context: *mut c_void) {
    if context.is_null() {
        return;
    }
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `context` came from `Box::into_raw` in `init::<P>` and the host gives it back
        // exactly once, when nothing else uses it.
        drop(unsafe { Box::from_raw(context.cast::<P>()) });
    }));
    // `destroy` has no error slot; the panic hook has already printed the message.
    if let Err(payload) = result {
        drop_payload(payload);
    }
    take_panic_hook();
}

/// Frees the panic hook (ours or the plugin's own) while its code is still mapped.
fn take_panic_hook() {
    if let Err(payload) = panic::catch_unwind(|| drop(panic::take_hook())) {
        drop_payload(payload);
    }
}

/// Sets this plugin copy's panic hook to print one line and no backtrace (see the crate docs:
/// a backtrace would leave a mapping of the plugin's file behind after unload).
fn set_quiet_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&'static str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(a panic payload that is not a string)");
        match info.location() {
            Some(at) => eprintln!("proxyso plugin panicked at {at}: {message}"),
            None => eprintln!("proxyso plugin panicked: {message}"),
        }
    }));
}

/// The body of every method trampoline the macro generates: calls `method` on the plugin.
///
/// # Safety
///
/// The arguments are those of a `proxyso_method_fn` call made by the host: `context` is what
/// [`init::<P>`](init) returned and has not been destroyed, `input` points to `input_len`
/// readable bytes, and `output` and `error` are the host's live slots for this call.
pub unsafe fn call_method<P, F>(
    context: *mut c_void,
    input: *const u8,
    input_len: usize,
    output: *mut abi::Output,
    error: *mut abi::Error,
    method: F,
) -> abi::Status
where
    P: Plugin,
    F: FnOnce(&P, &[u8], &mut Output<'_>) -> Result<(), Error>,
{
    run(error, || {
        if context.is_null() || output.is_null() {
            return Err(Error::msg(
                "method called with a null context or output pointer",
            ));
        }
        // SAFETY: `context` is the live `Box<P>` made by `init::<P>`; `P: Sync`, so a shared
        // reference may be used by many calls at once.
        let plugin = unsafe { &*context.cast::<P>() };
        // SAFETY: the host guarantees `input` points to `input_len` bytes for this call.
        let input = unsafe { bytes(input, input_len) }.ok_or_else(|| Error::msg("null input"))?;
        // SAFETY: `output` is the host's slot for this call alone, valid until we return.
        let mut output = unsafe { Output::from_raw(&mut *output) };
        method(plugin, input, &mut output)
    })
}

/// Returns `method` unchanged; passing a closure through it gives the closure the signature of
/// a method (higher-ranked lifetimes included) without annotations.
pub fn method<P, F>(method: F) -> F
where
    P: Plugin,
    F: FnOnce(&P, &[u8], &mut Output<'_>) -> Result<(), Error>,
{
    method
}

/// Runs `body`, turning an `Err` into [`abi::ERROR`] and a panic into [`abi::PANIC`], each
/// recorded in `error`. Nothing unwinds out of it.
fn run(error: *mut abi::Error, body: impl FnOnce() -> Result<(), Error>) -> abi::Status {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => abi::OK,
        Ok(Err(e)) => {
            record(error, e.code(), e.message());
            abi::ERROR
        }
        Err(payload) => {
            let message = panic_message(payload);
            record(error, PANIC_CODE, &message);
            abi::PANIC
        }
    }
}

/// Hands a code and message to the host's error slot, which copies the message.
fn record(error: *mut abi::Error, code: i32, message: &str) {
    if error.is_null() {
        return;
    }
    // SAFETY: `error` is the host's live slot for this call; `set` reads `len` bytes of
    // `message` and copies them before returning.
    unsafe {
        let set = (*error).set;
        set(
            error,
            code,
            message.as_ptr().cast::<c_char>(),
            message.len(),
        );
    }
}

/// The message of a panic, for `panic!("literal")` (`&'static str`) and formatted panics
/// (`String`) alike.
///
/// Looking at the payload and dropping it both run arbitrary code (a payload's `Drop` may
/// panic), so both happen under their own `catch_unwind`.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let message = panic::catch_unwind(AssertUnwindSafe(|| {
        if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic with a payload that is not a string".to_owned()
        }
    }))
    .unwrap_or_else(|nested| {
        drop_payload(nested);
        "panic whose message could not be read".to_owned()
    });
    drop_payload(payload);
    message
}

/// Drops a panic payload, leaking it if its `Drop` panics in turn (as `std` itself does).
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(nested) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        mem::forget(nested);
    }
}

/// A host buffer as a slice; `None` only for a null pointer with a non-zero length.
///
/// # Safety
///
/// Unless null or `len == 0`, `ptr` must point to `len` bytes readable and unchanged for `'a`.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        // The header promises a non-null pointer even then; do not rely on it.
        Some(&[])
    } else if ptr.is_null() {
        None
    } else {
        // SAFETY: non-null with `len` readable bytes, per this function's contract.
        Some(unsafe { slice::from_raw_parts(ptr, len) })
    }
}

/// `s` plus a NUL, checked at compile time: not empty and no interior NUL, as the header
/// demands of names and versions. `N` must be `s.len() + 1`.
pub const fn nul_terminated<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    assert!(N == bytes.len() + 1, "N must be s.len() + 1");
    assert!(
        !bytes.is_empty(),
        "plugin, version and method names must not be empty"
    );
    let mut out = [0u8; N];
    let mut i = 0;
    while i < bytes.len() {
        assert!(
            bytes[i] != 0,
            "plugin, version and method names must not contain NUL"
        );
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Checks at compile time that method names are unique, and returns how many there are.
pub const fn method_count(names: &[&str]) -> usize {
    assert!(!names.is_empty(), "a plugin needs at least one method");
    let mut i = 0;
    while i < names.len() {
        let mut j = i + 1;
        while j < names.len() {
            assert!(!str_eq(names[i], names[j]), "method names must be unique");
            j += 1;
        }
        i += 1;
    }
    names.len()
}

/// Checks at compile time that only flags this ABI version knows are set.
pub const fn flags(flags: u32) -> u32 {
    assert!(flags & !abi::KNOWN_FLAGS == 0, "unknown plugin flags");
    flags
}

/// `a == b` in a const context.
const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
