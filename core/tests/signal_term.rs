//! A plugin that takes over SIGTERM (in its constructor) and SIGINT (in `init`) -- signals the
//! JVM's shutdown runs on, which the old guard did not watch -- fails to load naming both, and
//! both handlers are back. One test in its own process: it changes handlers.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::mem::MaybeUninit;
use std::ptr;

use common::{call, plugins, registry, same_library};
use proxyso_core::{Error, LoadError, LoadOptions};

fn handler(signal: libc::c_int) -> libc::sigaction {
    let mut action = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one.
    let rc = unsafe { libc::sigaction(signal, ptr::null(), action.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: filled in by sigaction.
    unsafe { action.assume_init() }
}

#[test]
fn a_plugin_taking_sigterm_and_sigint_is_refused_unless_allowed() {
    let p = plugins();
    let fixture = p
        .native("libfx_signal_term.so")
        .to_string_lossy()
        .into_owned();
    let (r, _dir) = registry();
    r.load("m", &p.example_v1().to_string_lossy(), b"").unwrap();
    let before = r.info("m").unwrap();
    let term = handler(libc::SIGTERM).sa_sigaction;
    let int = handler(libc::SIGINT).sa_sigaction;

    let err = r.replace("m", &fixture, b"").unwrap_err();
    assert!(
        matches!(&err, Error::Load { cause: LoadError::SignalHandler { signals }, .. }
            if signals == "SIGINT, SIGTERM"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("SIGTERM") && text.contains("SIGINT"),
        "{text}"
    );
    assert_eq!(handler(libc::SIGTERM).sa_sigaction, term, "SIGTERM is back");
    assert_eq!(handler(libc::SIGINT).sa_sigaction, int, "SIGINT is back");
    same_library(&before, r.info("m").unwrap());
    assert_eq!(call(&r, "m", None, "x"), "x");
    assert!(r.load("s", &fixture, b"").is_err());
    assert!(r.info("s").is_none());
    assert_eq!(handler(libc::SIGTERM).sa_sigaction, term);

    let allow = LoadOptions {
        allow_signal_handlers: true,
        ..LoadOptions::default()
    };
    r.load_with("s", &fixture, &allow).unwrap();
    assert_ne!(handler(libc::SIGTERM).sa_sigaction, term, "allowed: kept");
    assert_ne!(handler(libc::SIGINT).sa_sigaction, int, "allowed: kept");
    assert!(r.info("s").unwrap().kept_mapped);
    assert_eq!(call(&r, "s", None, ""), "signal-term");
    // Put this process's handlers back for the rest of the run.
    for (signal, old) in [(libc::SIGTERM, term), (libc::SIGINT, int)] {
        // SAFETY: reinstalls the handler read above.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = old;
            libc::sigaction(signal, &action, ptr::null_mut());
        }
    }
}
