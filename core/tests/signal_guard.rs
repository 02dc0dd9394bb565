//! A plugin that installs a handler for a signal the JVM relies on fails to load and the handler
//! is restored, unless the load allows it. One test in its own process: it changes handlers.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::mem::MaybeUninit;
use std::ptr;

use common::{call, plugins, registry, same_library};
use proxyso_core::{Error, LoadError, LoadOptions};

fn segv_handler() -> usize {
    let mut action = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one.
    let rc = unsafe { libc::sigaction(libc::SIGSEGV, ptr::null(), action.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: filled in by sigaction.
    unsafe { action.assume_init() }.sa_sigaction
}

#[test]
fn a_plugin_changing_the_segv_handler_is_refused_unless_allowed() {
    let p = plugins();
    let fixture = p.native("libfx_signal.so").to_string_lossy().into_owned();
    let (r, _dir) = registry();
    r.load("m", &p.example_v1().to_string_lossy(), b"").unwrap();
    let before = r.info("m").unwrap();
    let handler = segv_handler();

    let err = r.replace("m", &fixture, b"").unwrap_err();
    assert!(
        matches!(&err, Error::Load { cause: LoadError::SignalHandler { signals }, .. } if signals == "SIGSEGV"),
        "{err}"
    );
    assert!(err.to_string().contains("SIGSEGV"), "{err}");
    assert_eq!(segv_handler(), handler, "the previous handler is back");
    same_library(&before, r.info("m").unwrap());
    assert_eq!(call(&r, "m", None, "x"), "x");
    assert!(r.load("s", &fixture, b"").is_err());
    assert!(r.info("s").is_none());

    let allow = LoadOptions {
        allow_signal_handlers: true,
        ..LoadOptions::default()
    };
    r.load_with("s", &fixture, &allow).unwrap();
    assert_ne!(
        segv_handler(),
        handler,
        "allowed: the plugin's handler stays"
    );
    let info = r.info("s").unwrap();
    assert!(
        info.kept_mapped,
        "a version whose handler stays must never be unmapped"
    );
    assert_eq!(call(&r, "s", None, ""), "signal");
    // Put this process's handler back for the rest of the run.
    // SAFETY: reinstalls the handler read above, with the flags std uses for it.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigaction(libc::SIGSEGV, &action, ptr::null_mut());
    }
}
