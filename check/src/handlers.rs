//! Which signal handlers a load left changed, over every signal.
//!
//! The proxy's own guard (`proxyso_core::signals`) watches only the signals the JVM relies on, restores
//! them and names them in `LoadError::SignalHandler`; it cannot be reused around
//! `Plugin::open`, which takes the guard's load lock itself (a second `Snapshot::take` on the
//! same thread would deadlock). So the checker records every handler before the load and
//! compares after it: that finds the handlers the proxy let through too (a plugin must install
//! none, and one left behind points into unmapped code once the version is unloaded).

use std::mem::MaybeUninit;
use std::ptr;

/// The handlers of every signal as they were at [`Handlers::take`].
pub struct Handlers {
    saved: Vec<(libc::c_int, libc::sigaction)>,
}

impl Handlers {
    /// Records the handler of every signal that has one to read.
    pub fn take() -> Handlers {
        let saved = (1..=libc::SIGRTMAX())
            .filter_map(|signal| current(signal).map(|action| (signal, action)))
            .collect();
        Handlers { saved }
    }

    /// The names of the signals whose handler changed since [`Handlers::take`], in signal
    /// order.
    pub fn changed(&self) -> Vec<String> {
        self.saved
            .iter()
            .filter(|(signal, before)| current(*signal).is_some_and(|now| differs(before, &now)))
            .map(|(signal, _)| name(*signal))
            .collect()
    }
}

/// The handler installed for `signal` now; `None` for a signal that has none to read (glibc
/// refuses its two internal real-time signals).
fn current(signal: libc::c_int) -> Option<libc::sigaction> {
    let mut action = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `action`.
    let rc = unsafe { libc::sigaction(signal, ptr::null(), action.as_mut_ptr()) };
    // SAFETY: sigaction filled it in (and it was zeroed before in any case).
    (rc == 0).then(|| unsafe { action.assume_init() })
}

/// glibc's `SA_RESTORER`: added by glibc itself to every action it installs, so it says nothing
/// about who installed one (the same rule as the proxy's guard).
const SA_RESTORER: libc::c_int = 0x0400_0000;

/// Whether two actions differ in what runs or how (the mask is not compared).
fn differs(a: &libc::sigaction, b: &libc::sigaction) -> bool {
    a.sa_sigaction != b.sa_sigaction || (a.sa_flags ^ b.sa_flags) & !SA_RESTORER != 0
}

/// The conventional name of `signal`, spelled as the proxy spells the ones it guards.
fn name(signal: libc::c_int) -> String {
    const NAMES: [(libc::c_int, &str); 30] = [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGTRAP, "SIGTRAP"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGCHLD, "SIGCHLD"),
        (libc::SIGCONT, "SIGCONT"),
        (libc::SIGSTOP, "SIGSTOP"),
        (libc::SIGTSTP, "SIGTSTP"),
        (libc::SIGTTIN, "SIGTTIN"),
        (libc::SIGTTOU, "SIGTTOU"),
        (libc::SIGURG, "SIGURG"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGXFSZ, "SIGXFSZ"),
        (libc::SIGVTALRM, "SIGVTALRM"),
        (libc::SIGPROF, "SIGPROF"),
        (libc::SIGWINCH, "SIGWINCH"),
        (libc::SIGIO, "SIGIO"),
        (libc::SIGPWR, "SIGPWR"),
        (libc::SIGSYS, "SIGSYS"),
    ];
    if let Some((_, name)) = NAMES.iter().find(|(number, _)| *number == signal) {
        return (*name).to_owned();
    }
    let rtmin = libc::SIGRTMIN();
    if signal >= rtmin && signal <= libc::SIGRTMAX() {
        return format!("SIGRTMIN+{}", signal - rtmin);
    }
    format!("signal {signal}")
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" fn ignore(_: libc::c_int) {}

    /// Installs `ignore` for `signal` and returns what was there.
    fn install(signal: libc::c_int) -> libc::sigaction {
        let mut old = MaybeUninit::<libc::sigaction>::zeroed();
        // SAFETY: installs a do-nothing handler; the caller puts the old one back.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = ignore as *const () as usize;
            assert_eq!(libc::sigaction(signal, &action, old.as_mut_ptr()), 0);
            old.assume_init()
        }
    }

    #[test]
    fn sees_a_changed_handler_of_any_signal() {
        let handlers = Handlers::take();
        assert!(handlers.changed().is_empty());
        // SIGWINCH and a real-time signal: neither is among the signals the proxy guards, and
        // no other test in this binary touches them.
        let rt = libc::SIGRTMIN() + 3;
        let old_winch = install(libc::SIGWINCH);
        let old_rt = install(rt);
        let changed = handlers.changed();
        // SAFETY: puts back the handlers read above.
        unsafe {
            libc::sigaction(libc::SIGWINCH, &old_winch, ptr::null_mut());
            libc::sigaction(rt, &old_rt, ptr::null_mut());
        }
        assert_eq!(changed, ["SIGWINCH", "SIGRTMIN+3"]);
        assert!(handlers.changed().is_empty());
    }

    #[test]
    fn names_signals_as_the_proxy_does() {
        assert_eq!(name(libc::SIGSEGV), "SIGSEGV");
        assert_eq!(name(libc::SIGXFSZ), "SIGXFSZ");
        assert_eq!(name(libc::SIGRTMIN()), "SIGRTMIN+0");
    }
}
