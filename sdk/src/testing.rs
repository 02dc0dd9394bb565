//! A minimal in-process host, for unit-testing a plugin without the JVM or `libproxy.so`.
//!
//! [`Harness`] plays the host's part of the header on a descriptor linked into the test
//! binary: it runs `init`, calls methods by name with a `Vec`-backed output buffer whose
//! `reserve` honours a size limit, records log lines, and runs `destroy` when dropped.
//!
//! ```standalone_crate
//! # use proxyso_sdk::{Error, Host, Output, Plugin};
//! # struct Echo;
//! # impl Plugin for Echo {
//! #     fn init(_: Host, _: &[u8]) -> Result<Self, Error> { Ok(Echo) }
//! # }
//! # impl Echo {
//! #     fn echo(&self, input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
//! #         out.write_all(input)
//! #     }
//! # }
//! # proxyso_sdk::export_plugin! {
//! #     plugin: Echo, name: "echo", version: "1", methods: { "echo" => Echo::echo },
//! # }
//! use proxyso_sdk::testing::Harness;
//!
//! // SAFETY: `proxyso_plugin` was made by `export_plugin!`.
//! let harness = unsafe { Harness::init(&proxyso_plugin, b"") }.unwrap();
//! assert_eq!(harness.call("echo", b"hi").unwrap(), b"hi");
//! ```

use std::cell::Cell;
use std::ffi::{CStr, c_char, c_void};
use std::fmt;
use std::ptr;
use std::slice;
use std::sync::{Mutex, PoisonError};

use crate::{Level, abi};

/// How a call or `init` failed: the status and what the plugin recorded with `error->set`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// [`abi::ERROR`], [`abi::PANIC`] or whatever else the plugin returned.
    pub status: abi::Status,
    /// The recorded code (0 if the plugin recorded nothing).
    pub code: i32,
    /// The recorded message (empty if the plugin recorded nothing).
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "status {}, code {}: {}",
            self.status, self.code, self.message
        )
    }
}

/// A log line the plugin wrote through the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// The raw `PROXYSO_LOG_*` level.
    pub level: i32,
    /// The message.
    pub message: String,
}

impl LogLine {
    /// Whether this line has the given level and message.
    pub fn is(&self, level: Level, message: &str) -> bool {
        self.level == level.as_raw() && self.message == message
    }
}

/// An initialized plugin, destroyed when the harness is dropped.
///
/// Calls are made one at a time from the thread that owns the harness (it is neither `Send`
/// nor `Sync`), which satisfies `PROXYSO_FLAG_SERIALIZE` too.
///
/// # Example
///
/// In a plugin crate, the tests use the `proxyso_plugin` static that
/// [`export_plugin!`](crate::export_plugin) defined, `crate::proxyso_plugin` from a
/// `#[cfg(test)] mod tests`:
///
/// ```standalone_crate
/// use proxyso_sdk::testing::{Failure, Harness};
/// use proxyso_sdk::{Error, Host, Level, Output, PANIC_CODE, Plugin, abi};
///
/// struct Repeat {
///     times: usize,
/// }
///
/// impl Plugin for Repeat {
///     fn init(host: Host, config: &[u8]) -> Result<Self, Error> {
///         let times = std::str::from_utf8(config)?.parse()?;
///         host.info(&format!("repeating {times} times"));
///         Ok(Repeat { times })
///     }
/// }
///
/// impl Repeat {
///     fn repeat(&self, input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
///         if input.is_empty() {
///             return Err(Error::new(3, "nothing to repeat"));
///         }
///         for _ in 0..self.times {
///             out.write_all(input)?;
///         }
///         Ok(())
///     }
///
///     fn crash(&self, _input: &[u8], _out: &mut Output<'_>) -> Result<(), Error> {
///         panic!("crashed on purpose");
///     }
/// }
///
/// proxyso_sdk::export_plugin! {
///     plugin: Repeat,
///     name: "repeat",
///     version: "2.1.0",
///     methods: { "repeat" => Repeat::repeat, "crash" => Repeat::crash },
/// }
///
/// // #[test]
/// fn repeats_and_reports_errors() {
///     // SAFETY: the descriptor was made by `export_plugin!`.
///     let repeat = unsafe { Harness::init(&proxyso_plugin, b"3") }.unwrap();
///     assert_eq!((repeat.name(), repeat.version()), ("repeat", "2.1.0"));
///     assert!(repeat.logs()[0].is(Level::Info, "repeating 3 times"));
///
///     // Start small, so that the plugin has to grow the output through the host.
///     repeat.set_initial_capacity(1);
///     assert_eq!(repeat.call_default(b"ab").unwrap(), b"ababab");
///
///     // An `Err` and a panic, as the host sees them.
///     let error = repeat.call("repeat", b"").unwrap_err();
///     assert_eq!(
///         error,
///         Failure { status: abi::ERROR, code: 3, message: "nothing to repeat".into() }
///     );
///     let panic = repeat.call("crash", b"").unwrap_err();
///     assert_eq!((panic.status, panic.code), (abi::PANIC, PANIC_CODE));
///     assert_eq!(panic.message, "crashed on purpose");
///
///     // The host's output limit, lowered: the plugin's write fails, it does not overrun.
///     repeat.set_output_limit(5);
///     let refused = repeat.call("repeat", b"ab").unwrap_err();
///     assert_eq!((refused.status, refused.code), (abi::ERROR, Error::DEFAULT_CODE));
///
///     // The plugin is dropped (`destroy`) with the harness.
/// }
/// # repeats_and_reports_errors();
/// ```
pub struct Harness {
    plugin: &'static abi::Descriptor,
    context: *mut c_void,
    // From `Box::into_raw`, freed in `Drop`: the plugin keeps a pointer to it, and a raw owner
    // (unlike a `Box` being moved around) never invalidates that pointer.
    host: *mut HostState,
    initial_capacity: Cell<usize>,
    output_limit: Cell<usize>,
}

/// The host's service table and what its `log` recorded. `#[repr(C)]` with `raw` first, so a
/// `*const abi::Host` the plugin hands back is also a pointer to the whole state.
#[repr(C)]
struct HostState {
    raw: abi::Host,
    logs: Mutex<Vec<LogLine>>,
}

impl Harness {
    /// The output capacity a call starts with unless changed by [`Harness::set_initial_capacity`].
    pub const DEFAULT_INITIAL_CAPACITY: usize = 64;

    /// Checks the descriptor like the host does, then runs its `init` with `config`.
    ///
    /// Panics if the descriptor breaks the header's rules (wrong ABI version, unknown flags, no
    /// name, version or methods, a method without a name or function).
    ///
    /// # Safety
    ///
    /// `plugin` must be a descriptor that obeys `include/proxyso.h` beyond what can be checked:
    /// every pointer in it valid, every function sound to call as the header describes. One
    /// made by [`export_plugin!`](crate::export_plugin) does.
    pub unsafe fn init(plugin: &'static abi::Descriptor, config: &[u8]) -> Result<Self, Failure> {
        assert_eq!(
            plugin.abi_version,
            abi::ABI_VERSION,
            "descriptor ABI version"
        );
        assert_eq!(
            plugin.flags & !abi::KNOWN_FLAGS,
            0,
            "unknown descriptor flags"
        );
        // SAFETY: the caller vouches for the descriptor's pointers.
        unsafe {
            assert!(!c_str(plugin.name).is_empty(), "descriptor has no name");
            assert!(
                !c_str(plugin.version).is_empty(),
                "descriptor has no version"
            );
            assert!(plugin.method_count > 0, "descriptor has no methods");
            for method in methods(plugin) {
                assert!(!c_str(method.name).is_empty(), "method without a name");
                assert!(method.call.is_some(), "method without a function");
            }
        }
        let mut harness = Self {
            plugin,
            context: ptr::null_mut(),
            host: Box::into_raw(Box::new(HostState {
                raw: abi::Host {
                    abi_version: abi::ABI_VERSION,
                    reserved: 0,
                    log: host_log,
                    host_data: ptr::null_mut(),
                },
                logs: Mutex::new(Vec::new()),
            })),
            initial_capacity: Cell::new(Self::DEFAULT_INITIAL_CAPACITY),
            output_limit: Cell::new(usize::MAX),
        };
        let Some(init) = plugin.init else {
            return Ok(harness);
        };
        let mut context = ptr::null_mut();
        let mut recorded = None;
        let mut error = error_slot(&mut recorded);
        // The whole state, not just its `raw` field, so that `host_log` may reach `logs`.
        let host = harness.host.cast_const().cast::<abi::Host>();
        // SAFETY: the caller vouches for `init`; every pointer passed is valid for the call, and
        // `host` stays valid until the harness is dropped, after `destroy`.
        let status = unsafe {
            init(
                host,
                config.as_ptr(),
                config.len(),
                &mut context,
                &mut error,
            )
        };
        if status != abi::OK {
            // `Drop` must not call `destroy` after a failed `init`.
            harness.plugin = &NO_DESTROY;
            return Err(failure(status, recorded));
        }
        harness.context = context;
        Ok(harness)
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        // SAFETY: checked non-null in `init`; the descriptor is static.
        unsafe { c_str(self.plugin.name) }
    }

    /// The plugin's version.
    pub fn version(&self) -> &str {
        // SAFETY: checked non-null in `init`; the descriptor is static.
        unsafe { c_str(self.plugin.version) }
    }

    /// Sets the capacity each call's output starts with (to exercise `reserve`).
    pub fn set_initial_capacity(&self, capacity: usize) {
        self.initial_capacity.set(capacity);
    }

    /// Makes `reserve` refuse anything above `limit` bytes, as the host does.
    pub fn set_output_limit(&self, limit: usize) {
        self.output_limit.set(limit);
    }

    /// Calls the default (first) method.
    pub fn call_default(&self, input: &[u8]) -> Result<Vec<u8>, Failure> {
        // SAFETY: `init` checked that there is at least one method.
        let first = unsafe { c_str(methods(self.plugin)[0].name) };
        self.call(first, input)
    }

    /// Calls a method by name and returns its output.
    ///
    /// Panics if there is no such method, or if the plugin broke the output rules (a length
    /// beyond the capacity, or a moved `data` pointer).
    pub fn call(&self, method: &str, input: &[u8]) -> Result<Vec<u8>, Failure> {
        // SAFETY: `init` checked every entry's name and function.
        let call = unsafe { methods(self.plugin) }
            .iter()
            // SAFETY: as above.
            .find(|m| unsafe { c_str(m.name) } == method)
            .and_then(|m| m.call)
            .unwrap_or_else(|| panic!("no method {method:?} in plugin {:?}", self.name()));

        let mut state = OutputState {
            buf: vec![0; self.initial_capacity.get()],
            limit: self.output_limit.get(),
        };
        let mut output = abi::Output {
            data: state.buf.as_mut_ptr(),
            len: 0,
            capacity: state.buf.len(),
            reserve: output_reserve,
            host_data: (&raw mut state).cast::<c_void>(),
        };
        let mut recorded = None;
        let mut error = error_slot(&mut recorded);
        // SAFETY: the caller of `init` vouched for the method; the context is live (not yet
        // destroyed) and every pointer is valid for the call. A non-empty slice's pointer is
        // never null, and an empty one's is dangling but non-null, as the header promises.
        let status = unsafe {
            call(
                self.context,
                input.as_ptr(),
                input.len(),
                &mut output,
                &mut error,
            )
        };
        if status != abi::OK {
            return Err(failure(status, recorded));
        }
        assert!(
            output.len <= output.capacity,
            "plugin set len beyond capacity"
        );
        assert_eq!(
            output.data,
            state.buf.as_mut_ptr(),
            "plugin moved output.data"
        );
        state.buf.truncate(output.len);
        Ok(state.buf)
    }

    /// The log lines written so far.
    pub fn logs(&self) -> Vec<LogLine> {
        // SAFETY: `host` lives until `Drop`; only shared references to it are ever made.
        let host = unsafe { &*self.host };
        host.logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(destroy) = self.plugin.destroy {
            // SAFETY: `init` succeeded (a failed one swaps in `NO_DESTROY`), no call is running
            // since calls borrow the harness, and this runs once.
            unsafe { destroy(self.context) };
        }
        // SAFETY: from `Box::into_raw` in `init`; the plugin may use it no more after `destroy`.
        drop(unsafe { Box::from_raw(self.host) });
    }
}

impl fmt::Debug for Harness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("name", &self.name())
            .field("version", &self.version())
            .finish_non_exhaustive()
    }
}

/// Stands in for the descriptor after a failed `init`, so that `Drop` finds no `destroy`.
static NO_DESTROY: abi::Descriptor = abi::Descriptor {
    abi_version: abi::ABI_VERSION,
    flags: 0,
    name: c"(init failed)".as_ptr(),
    version: c"(init failed)".as_ptr(),
    init: None,
    destroy: None,
    method_count: 0,
    methods: ptr::null(),
};

/// The `Vec` behind one call's output, and the most `reserve` may grow it to.
struct OutputState {
    /// Always fully initialized (zeroed when grown), so reading `len` bytes is sound even if
    /// the plugin lies about what it wrote.
    buf: Vec<u8>,
    limit: usize,
}

/// `proxyso_output.reserve` of the harness.
///
/// # Safety
///
/// `this` must be an output slot made by [`Harness::call`], during that call.
unsafe extern "C" fn output_reserve(this: *mut abi::Output, capacity: usize) -> abi::Status {
    // SAFETY: per the contract, `this` is live and its `host_data` is the call's `OutputState`,
    // which nothing else touches while the plugin runs.
    let (output, state) = unsafe { (&mut *this, &mut *(*this).host_data.cast::<OutputState>()) };
    if capacity <= output.capacity {
        return abi::OK;
    }
    if capacity > state.limit
        || state
            .buf
            .try_reserve_exact(capacity - state.buf.len())
            .is_err()
    {
        return abi::ERROR;
    }
    state.buf.resize(capacity, 0);
    output.data = state.buf.as_mut_ptr();
    output.capacity = capacity;
    abi::OK
}

/// An error slot whose `set` records into `recorded`.
fn error_slot(recorded: &mut Option<(i32, String)>) -> abi::Error {
    abi::Error {
        set: error_set,
        host_data: ptr::from_mut(recorded).cast::<c_void>(),
    }
}

/// `proxyso_error.set` of the harness.
///
/// # Safety
///
/// `this` must be a slot made by [`error_slot`] whose `recorded` is still live, and `message`
/// must point to `len` readable bytes.
unsafe extern "C" fn error_set(
    this: *mut abi::Error,
    code: i32,
    message: *const c_char,
    len: usize,
) {
    // SAFETY: per the contract.
    let recorded = unsafe { &mut *(*this).host_data.cast::<Option<(i32, String)>>() };
    // SAFETY: per the contract; the message is copied, as the header promises.
    let message = unsafe { lossy(message, len) };
    *recorded = Some((code, message));
}

/// `proxyso_host.log` of the harness.
///
/// # Safety
///
/// `this` must be the `raw` field of a live [`HostState`], and `message` must point to `len`
/// readable bytes.
unsafe extern "C" fn host_log(
    this: *const abi::Host,
    level: i32,
    message: *const c_char,
    len: usize,
) {
    // SAFETY: `raw` is the first field of the `#[repr(C)]` `HostState`, so the pointers coincide.
    let state = unsafe { &*this.cast::<HostState>() };
    // SAFETY: per the contract.
    let message = unsafe { lossy(message, len) };
    let line = LogLine { level, message };
    state
        .logs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(line);
}

/// Builds a [`Failure`] from a status and what `error->set` recorded.
fn failure(status: abi::Status, recorded: Option<(i32, String)>) -> Failure {
    let (code, message) = recorded.unwrap_or_default();
    Failure {
        status,
        code,
        message,
    }
}

/// Copies `len` bytes of possibly invalid UTF-8.
///
/// # Safety
///
/// Unless null or `len == 0`, `ptr` must point to `len` readable bytes.
unsafe fn lossy(ptr: *const c_char, len: usize) -> String {
    if len == 0 || ptr.is_null() {
        return String::new();
    }
    // SAFETY: per the contract.
    let bytes = unsafe { slice::from_raw_parts(ptr.cast::<u8>(), len) };
    String::from_utf8_lossy(bytes).into_owned()
}

/// A descriptor string as `&str`.
///
/// Panics if it is null or not UTF-8.
///
/// # Safety
///
/// Unless null, `ptr` must point to a NUL-terminated string that lives and stays unchanged
/// for `'a`.
unsafe fn c_str<'a>(ptr: *const c_char) -> &'a str {
    assert!(!ptr.is_null(), "null string in the descriptor");
    // SAFETY: per the contract.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .expect("descriptor string is not UTF-8")
}

/// The descriptor's method table.
///
/// # Safety
///
/// `methods` must point to `method_count` entries (or be anything when the count is 0).
unsafe fn methods(plugin: &'static abi::Descriptor) -> &'static [abi::Method] {
    if plugin.method_count == 0 {
        return &[];
    }
    assert!(!plugin.methods.is_null(), "null method table");
    // SAFETY: per the contract; the table is static.
    unsafe { slice::from_raw_parts(plugin.methods, plugin.method_count) }
}
