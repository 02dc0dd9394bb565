//! The services the host offers a plugin.

use std::ffi::c_char;

use crate::abi;

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    /// Something failed.
    Error,
    /// Something looks wrong.
    Warn,
    /// Normal operation.
    Info,
    /// Detail for debugging.
    Debug,
}

impl Level {
    /// The `PROXYSO_LOG_*` value of this level.
    ///
    /// ```
    /// use proxyso_sdk::{Level, abi};
    ///
    /// assert_eq!(Level::Warn.as_raw(), abi::LOG_WARN);
    /// ```
    pub const fn as_raw(self) -> i32 {
        match self {
            Level::Error => abi::LOG_ERROR,
            Level::Warn => abi::LOG_WARN,
            Level::Info => abi::LOG_INFO,
            Level::Debug => abi::LOG_DEBUG,
        }
    }
}

/// The host's services, handed to [`Plugin::init`](crate::Plugin::init).
///
/// Usable from any thread, but only until the plugin is destroyed: keep it inside the plugin
/// value (whose `Drop` may still log), never in a `static` or a thread that outlives it.
///
/// The host tags each line with the key and generation of the version that wrote it and hands
/// it to its own log; [`Harness`](crate::testing::Harness) records the lines instead, for
/// tests.
///
/// # Example
///
/// ```standalone_crate
/// use proxyso_sdk::testing::Harness;
/// use proxyso_sdk::{Error, Host, Level, Output, Plugin};
///
/// struct Model {
///     host: Host, // kept in the plugin value: valid until it is dropped
///     weights: Vec<u8>,
/// }
///
/// impl Plugin for Model {
///     fn init(host: Host, config: &[u8]) -> Result<Self, Error> {
///         host.info(&format!("model loaded, {} bytes of weights", config.len()));
///         if config.is_empty() {
///             host.warn("no weights: every score will be 0");
///         }
///         Ok(Model { host, weights: config.to_vec() })
///     }
/// }
///
/// impl Model {
///     fn score(&self, input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
///         self.host.debug(&format!("scoring {} bytes", input.len()));
///         let score: u64 = input
///             .iter()
///             .zip(&self.weights)
///             .map(|(&a, &b)| u64::from(a) * u64::from(b))
///             .sum();
///         out.write_all(score.to_string().as_bytes())
///     }
/// }
///
/// impl Drop for Model {
///     fn drop(&mut self) {
///         self.host.info("model unloaded"); // the last moment the host may be used
///     }
/// }
///
/// proxyso_sdk::export_plugin! {
///     plugin: Model,
///     name: "model",
///     version: "1.0.0",
///     methods: { "score" => Model::score },
/// }
///
/// // SAFETY: the descriptor was made by `export_plugin!`.
/// let model = unsafe { Harness::init(&proxyso_plugin, b"") }.unwrap();
/// assert_eq!(model.call_default(&[1, 2]).unwrap(), b"0");
/// let logs = model.logs();
/// assert!(logs[0].is(Level::Info, "model loaded, 0 bytes of weights"));
/// assert!(logs[1].is(Level::Warn, "no weights: every score will be 0"));
/// assert!(logs[2].is(Level::Debug, "scoring 2 bytes"));
/// assert_eq!(logs.len(), 3);
/// ```
#[derive(Clone, Debug)]
pub struct Host {
    raw: *const abi::Host,
}

// SAFETY: the header makes `proxyso_host` usable from any thread until `destroy` returns, and
// `Host` only reads it.
unsafe impl Send for Host {}
// SAFETY: as for `Send`: the host's `log` may be called from many threads at once.
unsafe impl Sync for Host {}

impl Host {
    /// Wraps the host's service table.
    ///
    /// # Safety
    ///
    /// `raw` must point to a `proxyso_host` that stays valid, and is usable from any thread,
    /// for as long as the returned `Host` (or a clone) is used.
    pub(crate) unsafe fn from_raw(raw: *const abi::Host) -> Self {
        debug_assert!(!raw.is_null());
        Self { raw }
    }

    /// The host's ABI version.
    pub fn abi_version(&self) -> u32 {
        // SAFETY: per `from_raw`, `raw` points to a live `proxyso_host`.
        unsafe { (*self.raw).abi_version }
    }

    /// Writes a log line through the host.
    pub fn log(&self, level: Level, message: &str) {
        // SAFETY: per `from_raw`, `raw` points to a live `proxyso_host`, whose `log` accepts
        // `len` bytes of UTF-8 that it does not keep.
        unsafe {
            ((*self.raw).log)(
                self.raw,
                level.as_raw(),
                message.as_ptr().cast::<c_char>(),
                message.len(),
            );
        }
    }

    /// Logs at [`Level::Error`].
    pub fn error(&self, message: &str) {
        self.log(Level::Error, message);
    }

    /// Logs at [`Level::Warn`].
    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message);
    }

    /// Logs at [`Level::Info`].
    pub fn info(&self, message: &str) {
        self.log(Level::Info, message);
    }

    /// Logs at [`Level::Debug`].
    pub fn debug(&self, message: &str) {
        self.log(Level::Debug, message);
    }
}
