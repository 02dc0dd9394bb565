//! Guards the JVM's signal handlers while plugin code runs at load time.
//!
//! HotSpot turns SIGSEGV into NullPointerException and stack-overflow checks, uses SIGQUIT for
//! thread dumps and SIGUSR2 to suspend threads. A plugin whose constructor or `init` installs
//! its own handler for one of these breaks the JVM quietly, and once the plugin is unloaded the
//! handler points into unmapped code. So the host records these handlers before `dlopen` and
//! compares them after `init`.

use std::mem::MaybeUninit;
use std::ptr;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The signals whose handlers belong to the JVM.
const GUARDED: [(libc::c_int, &str); 9] = [
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGTRAP, "SIGTRAP"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGPIPE, "SIGPIPE"),
    (libc::SIGXFSZ, "SIGXFSZ"),
];

/// Serialises the windows in which plugin code runs at load time, so that a change one plugin
/// makes is never blamed on another loading at the same moment.
static LOADING: Mutex<()> = Mutex::new(());

/// The guarded handlers as they were before a plugin's load, held with the load lock.
pub struct Snapshot {
    saved: Vec<(libc::c_int, &'static str, libc::sigaction)>,
    _loading: MutexGuard<'static, ()>,
}

impl Snapshot {
    /// Takes the load lock and records the guarded handlers.
    pub fn take() -> Snapshot {
        let loading = LOADING.lock().unwrap_or_else(PoisonError::into_inner);
        let saved = GUARDED
            .iter()
            .filter_map(|&(signal, name)| current(signal).map(|action| (signal, name, action)))
            .collect();
        Snapshot {
            saved,
            _loading: loading,
        }
    }

    /// The names of the guarded signals whose handler changed since `take`.
    pub fn changed(&self) -> Vec<&'static str> {
        self.saved
            .iter()
            .filter(|(signal, _, before)| current(*signal).is_some_and(|now| differs(before, &now)))
            .map(|(_, name, _)| *name)
            .collect()
    }

    /// Puts back every handler that changed since `take`; returns the signals it restored.
    pub fn restore(&self) -> Vec<&'static str> {
        let mut restored = Vec::new();
        for (signal, name, before) in &self.saved {
            if current(*signal).is_some_and(|now| differs(before, &now)) {
                // SAFETY: `before` is a handler the process itself had installed for `signal`,
                // read by `sigaction` and unchanged since.
                if unsafe { libc::sigaction(*signal, before, ptr::null_mut()) } == 0 {
                    restored.push(*name);
                }
            }
        }
        restored
    }
}

/// The handler installed for `signal` now.
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

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" fn ignore(_: libc::c_int) {}

    #[test]
    fn sees_and_restores_a_changed_handler() {
        let snapshot = Snapshot::take();
        assert!(snapshot.changed().is_empty());
        // SAFETY: installs a do-nothing handler for SIGXFSZ, which this test restores.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = ignore as *const () as usize;
            assert_eq!(libc::sigaction(libc::SIGXFSZ, &action, ptr::null_mut()), 0);
        }
        assert_eq!(snapshot.changed(), ["SIGXFSZ"]);
        assert_eq!(snapshot.restore(), ["SIGXFSZ"]);
        assert!(snapshot.changed().is_empty());
    }
}
