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
