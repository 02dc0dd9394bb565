//! The protocol of `proxyso-worker`, the proxy's child process, defined once for both sides:
//! the worker (`src/main.rs`) and the host that starts it (`libproxy.so`, `src/child.rs` and
//! `src/preflight.rs`).
//!
//! ```text
//! proxyso-worker preflight PARENT_PID      with the library open on descriptor 3
//! ```
//!
//! The worker first arms `PR_SET_PDEATHSIG` (SIGKILL) and checks that its parent is still
//! `PARENT_PID` (if not, the host is gone: it exits with [`exit::ORPHANED`]); it closes every
//! descriptor above 3, then `dlopen`s `/proc/self/fd/3` with `RTLD_NOW | RTLD_LOCAL`, looks up
//! the plugin descriptor and checks its ABI version. It never calls the plugin's `init`, and it
//! leaves with `_exit`, so no destructor of the plugin runs either. It exits 0 when the library
//! loaded and is a plugin of this ABI version, or with one of the [`exit`] codes and a one-line
//! message on standard error. A library whose constructors crash kills it with that signal.
#![deny(missing_docs)]

/// The first argument: the pre-flight `dlopen` of the library on [`LIBRARY_FD`].
pub const PREFLIGHT: &str = "preflight";

/// The descriptor on which the worker receives the library.
pub const LIBRARY_FD: i32 = 3;

/// The worker's exit codes.
pub mod exit {
    /// The library loaded and is a plugin of this ABI version.
    pub const OK: i32 = 0;
    /// The command line is not one the worker knows.
    pub const USAGE: i32 = 2;
    /// The parent named on the command line is not the worker's parent (any more).
    pub const ORPHANED: i32 = 3;
    /// Descriptor 3 is not open on a regular file.
    pub const NO_LIBRARY: i32 = 4;
    /// The worker could not set itself up (`prctl`).
    pub const SETUP: i32 = 5;
    /// `dlopen` failed; standard error holds `dlerror()`.
    pub const DLOPEN: i32 = 10;
    /// The library has no plugin descriptor symbol, or it is null.
    pub const NO_DESCRIPTOR: i32 = 11;
    /// The descriptor's ABI version is not the worker's.
    pub const ABI_MISMATCH: i32 = 12;
    /// The worker itself panicked (Rust's exit code for a panic in `main`).
    pub const PANICKED: i32 = 101;
}

/// What an exit code of the worker means, in words; `None` for a code it never uses.
pub fn describe_exit(code: i32) -> Option<&'static str> {
    Some(match code {
        exit::OK => "the library loaded",
        exit::USAGE => "the worker did not understand its command line",
        exit::ORPHANED => "the worker's parent was not the process that started it",
        exit::NO_LIBRARY => "the worker received no library on descriptor 3",
        exit::SETUP => "the worker could not set itself up",
        exit::DLOPEN => "dlopen failed",
        exit::NO_DESCRIPTOR => "no plugin descriptor",
        exit::ABI_MISMATCH => "ABI version mismatch",
        exit::PANICKED => "the worker panicked",
        _ => return None,
    })
}

/// The arguments (after the program name) of a pre-flight run for parent `parent_pid`.
pub fn preflight_args(parent_pid: u32) -> [String; 2] {
    [PREFLIGHT.to_owned(), parent_pid.to_string()]
}
