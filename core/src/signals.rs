//! Guards the process's signal handlers while plugin code runs at load time.
//!
//! HotSpot turns SIGSEGV into NullPointerException and stack-overflow checks, uses SIGQUIT for
//! thread dumps and SIGUSR2 to suspend threads, and runs its shutdown (hooks, exit code 143) on
//! SIGTERM, SIGINT and SIGHUP. The application may own others. A plugin whose constructor or
//! `init` installs its own handler for any of them breaks the JVM quietly, and once the plugin
//! is unloaded the handler points into unmapped code. So the host records the handler of every
//! signal before `dlopen` and compares them after `init`; the checker (`proxyso-check`) uses the
//! same [`Handlers`] to see what stayed changed after a load.

use std::mem::MaybeUninit;
use std::ptr;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Serialises the windows in which plugin code runs at load time, so that a change one plugin
/// makes is never blamed on another loading at the same moment.
static LOADING: Mutex<()> = Mutex::new(());

/// The handler of every signal as it was at [`Handlers::take`]: every signal from 1 to
/// `SIGRTMAX` but SIGKILL and SIGSTOP (whose action cannot change) and those `sigaction`
/// refuses (glibc keeps its two internal real-time signals to itself).
pub struct Handlers {
    saved: Vec<(libc::c_int, libc::sigaction)>,
}

impl Handlers {
    /// Records the handler of every signal that has one to read.
    pub fn take() -> Handlers {
        let saved = (1..=libc::SIGRTMAX())
            .filter(|&signal| signal != libc::SIGKILL && signal != libc::SIGSTOP)
            .filter_map(|signal| current(signal).map(|action| (signal, action)))
            .collect();
        Handlers { saved }
    }

    /// How many signals are watched.
    pub fn len(&self) -> usize {
        self.saved.len()
    }

    /// True when no signal could be read (never on Linux).
    pub fn is_empty(&self) -> bool {
        self.saved.is_empty()
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

    /// Puts back every handler that changed since [`Handlers::take`]; returns the names of the
    /// signals it restored, in signal order.
    pub fn restore(&self) -> Vec<String> {
        let mut restored = Vec::new();
        for (signal, before) in &self.saved {
            if current(*signal).is_some_and(|now| differs(before, &now)) {
                // SAFETY: `before` is a handler the process itself had installed for `signal`,
                // read by `sigaction` and unchanged since.
                if unsafe { libc::sigaction(*signal, before, ptr::null_mut()) } == 0 {
                    restored.push(name(*signal));
                }
            }
        }
        restored
    }
}

/// The handlers as they were before a plugin's load, held with the load lock.
pub struct LoadGuard {
    handlers: Handlers,
    _loading: MutexGuard<'static, ()>,
}

impl LoadGuard {
    /// Takes the load lock and records the handler of every signal.
    pub fn take() -> LoadGuard {
        let loading = LOADING.lock().unwrap_or_else(PoisonError::into_inner);
        LoadGuard {
            handlers: Handlers::take(),
            _loading: loading,
        }
    }

    /// The names of the signals whose handler changed since `take`, in signal order.
    pub fn changed(&self) -> Vec<String> {
        self.handlers.changed()
    }

    /// Puts back every handler that changed since `take`; returns the signals it restored.
    pub fn restore(&self) -> Vec<String> {
        self.handlers.restore()
    }
}

/// The handler installed for `signal` now; `None` for a signal that has none to read.
fn current(signal: libc::c_int) -> Option<libc::sigaction> {
    let mut action = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `action`.
    let rc = unsafe { libc::sigaction(signal, ptr::null(), action.as_mut_ptr()) };
    // SAFETY: sigaction filled it in (and it was zeroed before in any case).
    (rc == 0).then(|| unsafe { action.assume_init() })
}

/// glibc's `SA_RESTORER`: added by glibc itself to every action it installs, so it says
/// nothing about who installed one.
const SA_RESTORER: libc::c_int = 0x0400_0000;

/// Whether two actions differ in what runs or how (the mask is not compared).
fn differs(a: &libc::sigaction, b: &libc::sigaction) -> bool {
    a.sa_sigaction != b.sa_sigaction || (a.sa_flags ^ b.sa_flags) & !SA_RESTORER != 0
}

/// The conventional name of `signal`: `SIGTERM`, `SIGRTMIN+3`, or `signal N` for one that has
/// none.
pub fn name(signal: libc::c_int) -> String {
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
    fn watches_every_signal_but_the_unchangeable() {
        let handlers = Handlers::take();
        let watched: Vec<libc::c_int> = handlers.saved.iter().map(|(s, _)| *s).collect();
        for signal in [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGSEGV,
            libc::SIGUSR1,
            libc::SIGCHLD,
            libc::SIGRTMIN(),
            libc::SIGRTMAX(),
        ] {
            assert!(watched.contains(&signal), "{} is not watched", name(signal));
        }
        assert!(!watched.contains(&libc::SIGKILL));
        assert!(!watched.contains(&libc::SIGSTOP));
        // glibc's internal signals (32 and 33) refuse sigaction; everything else is there.
        assert!(
            handlers.len() >= libc::SIGRTMAX() as usize - 4,
            "{watched:?}"
        );
    }

    /// The process-changing tests in one, so that they never see each other's handlers.
    #[test]
    fn sees_and_restores_changed_handlers_of_any_signal() {
        let snapshot = LoadGuard::take();
        assert!(snapshot.changed().is_empty());
        let rt = libc::SIGRTMIN() + 3;
        let old: Vec<(libc::c_int, libc::sigaction)> =
            [libc::SIGINT, libc::SIGXFSZ, libc::SIGTERM, rt]
                .into_iter()
                .map(|signal| (signal, install(signal)))
                .collect();
        assert_eq!(
            snapshot.changed(),
            ["SIGINT", "SIGTERM", "SIGXFSZ", "SIGRTMIN+3"]
        );
        assert_eq!(
            snapshot.restore(),
            ["SIGINT", "SIGTERM", "SIGXFSZ", "SIGRTMIN+3"]
        );
        assert!(snapshot.changed().is_empty());
        for (signal, before) in old {
            let now = current(signal).unwrap();
            assert!(!differs(&before, &now), "{} is back", name(signal));
        }
    }

    #[test]
    fn names_signals() {
        assert_eq!(name(libc::SIGSEGV), "SIGSEGV");
        assert_eq!(name(libc::SIGTERM), "SIGTERM");
        assert_eq!(name(libc::SIGRTMIN()), "SIGRTMIN+0");
        assert_eq!(name(0), "signal 0");
    }
}
