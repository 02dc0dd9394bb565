//! Handles (a key resolved once) and calls into caller-owned buffers.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{call, plugins, registry};
use proxyso_core::Error;
use proxyso_core::host::FixedOutput;

#[test]
fn a_handle_follows_replacements_and_fails_after_unload() {
    let p = plugins();
    let (r, _dir) = registry();
    let (v1, v2) = (
        p.example_v1().to_string_lossy().into_owned(),
        p.example_v2().to_string_lossy().into_owned(),
    );
    r.load("h", &v1, b"").unwrap();
    let handle = r.handle("h").unwrap();
    assert_eq!(handle.key(), "h");
    let mut out = Vec::new();
    handle.call(None, b"x", &mut out).unwrap();
    assert_eq!(out, b"x");
    r.replace("h", &v2, b"").unwrap();
    handle.call(None, b"x", &mut out).unwrap();
    assert_eq!(out, b"x,ab", "the handle reaches the new version");
    handle.call(Some("version"), b"", &mut out).unwrap();
    assert_eq!(out, b"2.0.0");

    assert!(r.unload("h").unwrap());
    let err = handle.call(None, b"x", &mut out).unwrap_err();
    assert!(matches!(err, Error::NoSuchLibrary { .. }), "{err}");
    // Loading the key again makes a new library; the old handle does not follow it.
    r.load("h", &v1, b"").unwrap();
    assert!(handle.call(None, b"x", &mut out).is_err());
    assert_eq!(call(&r, "h", None, "x"), "x");
    assert!(matches!(r.handle("nope"), Err(Error::NoSuchLibrary { .. })));
}

#[test]
fn a_handle_checks_method_names() {
    let p = plugins();
    let (r, _dir) = registry();
    r.load("h", &p.example_v1().to_string_lossy(), b"").unwrap();
    let handle = r.handle("h").unwrap();
    handle.check_method(None).unwrap();
    handle.check_method(Some("len")).unwrap();
    let err = handle.check_method(Some("nope")).unwrap_err();
    assert!(matches!(err, Error::NoSuchMethod { .. }), "{err}");
}

#[test]
fn calls_into_a_fixed_buffer_report_what_they_needed() {
    let p = plugins();
    let (r, _dir) = registry();
    r.load("h", &p.example_v2().to_string_lossy(), b"").unwrap();
    let handle = r.handle("h").unwrap();
    let input = vec![7u8; 1000];

    let mut memory = vec![0u8; 1003];
    // SAFETY: `memory` outlives the output and nothing else touches it meanwhile.
    let mut out = unsafe { FixedOutput::new(memory.as_mut_ptr(), memory.len()) };
    assert_eq!(handle.call_fixed(None, &input, &mut out).unwrap(), 1003);
    assert_eq!(&memory[..1000], &input[..]);
    assert_eq!(&memory[1000..], b",ab");

    let mut small = vec![0u8; 1000];
    // SAFETY: as above.
    let mut out = unsafe { FixedOutput::new(small.as_mut_ptr(), small.len()) };
    let err = handle.call_fixed(None, &input, &mut out).unwrap_err();
    match &err {
        Error::OutputTooSmall {
            required, capacity, ..
        } => assert_eq!((*required, *capacity), (1003, 1000)),
        other => panic!("expected OutputTooSmall, got {other}"),
    }
    assert!(err.to_string().contains("at least 1003 bytes"), "{err}");
    // The version keeps serving.
    assert_eq!(call(&r, "h", None, "y"), "y,ab");
}
