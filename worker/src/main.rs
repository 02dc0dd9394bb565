//! `proxyso-worker`: the proxy's child process. See `proxyso_core::protocol` for the protocol.
//! Two modes: the pre-flight `dlopen` of a plugin snapshot, so that a library that crashes the
//! dynamic linker or its own constructors kills this process, not the JVM; and serving an
//! isolated plugin (`serve`), so that a plugin that crashes, aborts, exits or hangs kills this
//! process, not the JVM.

mod serve;

use std::ffi::{CStr, CString, OsString};
use std::fs;

use proxyso_abi as abi;
use proxyso_core::protocol::{LIBRARY_FD, LOG_FD, PREFLIGHT, SERVE, exit};

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mode = args.first().and_then(|a| a.to_str());
    let parent = || {
        args.get(1)
            .and_then(|a| a.to_str())
            .and_then(|p| p.parse().ok())
    };
    match (mode, args.len()) {
        (Some(PREFLIGHT), 2) => preflight(parent()),
        (Some(SERVE), 3) => {
            set_up(parent(), LOG_FD);
            serve::serve(&args[2].to_string_lossy())
        }
        _ => fail(
            exit::USAGE,
            &format!(
                "usage: proxyso-worker {PREFLIGHT} PARENT_PID | {SERVE} PARENT_PID SOURCE (got \
                 {args:?})"
            ),
        ),
    }
}

/// Writes `message` to standard error and leaves with `code`, running nothing of a library
/// that may be loaded (no atexit handler, no destructor).
pub(crate) fn fail(code: i32, message: &str) -> ! {
    eprintln!("proxyso-worker: {message}");
    leave(code)
}

pub(crate) fn leave(code: i32) -> ! {
    // SAFETY: _exit ends the process at once; nothing of this process needs running first.
    unsafe { libc::_exit(code) }
}

/// What both modes do first: die with the host (and check it is not gone already), and close
/// every descriptor above `last`.
fn set_up(parent: Option<libc::pid_t>, last: i32) {
    let Some(parent) = parent else {
        fail(exit::USAGE, "PARENT_PID is not a process id");
    };
    // First: die with the host. Then check the host was not gone before that took effect.
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches no memory.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) } != 0 {
        let e = std::io::Error::last_os_error();
        fail(exit::SETUP, &format!("prctl(PR_SET_PDEATHSIG): {e}"));
    }
    // SAFETY: getppid has no preconditions.
    let actual = unsafe { libc::getppid() };
    if actual != parent {
        fail(
            exit::ORPHANED,
            &format!("the parent is {actual}, not {parent}: the host is gone"),
        );
    }
    close_inherited(last);
}

/// The pre-flight `dlopen` of the library on descriptor 3.
fn preflight(parent: Option<libc::pid_t>) -> ! {
    set_up(parent, LIBRARY_FD);
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a `struct stat` into the buffer, which is large enough.
    let fstat = unsafe { libc::fstat(LIBRARY_FD, stat.as_mut_ptr()) };
    let regular = fstat == 0 && {
        // SAFETY: fstat returned 0, so it filled the buffer.
        let stat = unsafe { stat.assume_init() };
        stat.st_mode & libc::S_IFMT == libc::S_IFREG
    };
    if !regular {
        fail(
            exit::NO_LIBRARY,
            &format!("descriptor {LIBRARY_FD} is not an open regular file"),
        );
    }
    let path = CString::new(format!("/proc/self/fd/{LIBRARY_FD}")).unwrap_or_default();
    // SAFETY: loading the library runs its constructors: that is what this process is for.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        fail(exit::DLOPEN, &last_dl_error());
    }
    let symbol = CStr::from_bytes_with_nul(abi::DESCRIPTOR_SYMBOL).unwrap_or_default();
    // SAFETY: the handle is open; the symbol name is NUL-terminated.
    let descriptor = unsafe { libc::dlsym(handle, symbol.as_ptr()) };
    if descriptor.is_null() {
        fail(
            exit::NO_DESCRIPTOR,
            &format!(
                "symbol '{}' not found or null ({})",
                symbol.to_string_lossy(),
                last_dl_error()
            ),
        );
    }
    // SAFETY: every ABI version starts the descriptor with the u32 version; the symbol is a
    // non-null data address in the loaded library.
    let found = unsafe { std::ptr::read_unaligned(descriptor.cast::<u32>()) };
    if found != abi::ABI_VERSION {
        fail(
            exit::ABI_MISMATCH,
            &format!(
                "ABI version mismatch: the host expects {}, the plugin has {found}",
                abi::ABI_VERSION
            ),
        );
    }
    leave(exit::OK)
}

/// Closes every descriptor above `last`: the host's that were not close-on-exec.
fn close_inherited(last: i32) {
    let first = last as libc::c_uint + 1;
    // SAFETY: close_range only closes descriptors; none above 3 is in use by this process.
    let closed = unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) };
    if closed == 0 {
        return;
    }
    // Before Linux 5.9: close them one by one (collected first: reading the directory uses
    // a descriptor of its own).
    let open: Vec<i32> = fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .filter(|fd| *fd > last)
        .collect();
    for fd in open {
        // SAFETY: as above; a descriptor already closed gives EBADF, which is harmless.
        unsafe { libc::close(fd) };
    }
}

/// `dlerror()`'s message, or a stand-in when it has none.
fn last_dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string valid until the next dl call.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        "no error message".to_owned()
    } else {
        // SAFETY: non-null, NUL-terminated, as above.
        unsafe { CStr::from_ptr(message) }
            .to_string_lossy()
            .into_owned()
    }
}
