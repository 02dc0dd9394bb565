//! Calling plugins: outputs, plugin errors and panics, methods, serialisation, C++ plugins.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::thread;

use common::{DRAIN, call, mapped, plugins, registry};
use proxyso_core::Error;

fn fixture_registry(key: &str, config: &[u8]) -> (proxyso_core::Registry, tempfile::TempDir) {
    let (r, dir) = registry();
    r.load(key, &plugins().fixture().to_string_lossy(), config)
        .unwrap();
    (r, dir)
}

#[test]
fn a_plugin_error_reaches_the_caller_and_the_plugin_keeps_serving() {
    let (r, _dir) = fixture_registry("f", b"t");
    let mut out = Vec::new();
    let err = r.call("f", Some("fail"), b"boom", &mut out).unwrap_err();
    match &err {
        Error::Plugin {
            code,
            message,
            panicked,
            method,
            key,
            ..
        } => {
            assert_eq!(*code, 42);
            assert_eq!(message, "failed on purpose: boom");
            assert!(!panicked);
            assert_eq!(method, "fail");
            assert_eq!(key, "f");
        }
        other => panic!("expected a plugin error, got {other}"),
    }
    assert!(err.to_string().contains("failed with code 42"), "{err}");
    assert_eq!(call(&r, "f", None, ""), "t");
}

#[test]
fn a_plugin_panic_is_reported_and_the_plugin_keeps_serving() {
    let (r, _dir) = fixture_registry("f", b"t");
    for method in ["panic", "panic-string"] {
        let mut out = Vec::new();
        let err = r.call("f", Some(method), b"", &mut out).unwrap_err();
        let Error::Plugin {
            panicked, message, ..
        } = &err
        else {
            panic!("expected a plugin error, got {err}");
        };
        assert!(panicked, "{err}");
        assert!(message.contains("panicked on purpose"), "{err}");
        assert!(err.to_string().contains("panicked"), "{err}");
        assert_eq!(call(&r, "f", None, ""), "t");
    }
}

#[test]
fn an_unknown_method_names_the_ones_there_are() {
    let (r, _dir) = fixture_registry("f", b"t");
    let mut out = Vec::new();
    let err = r.call("f", Some("nope"), b"", &mut out).unwrap_err();
    assert!(matches!(err, Error::NoSuchMethod { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("'nope'") && text.contains("tag, echo"),
        "{text}"
    );
}

#[test]
fn large_outputs_grow_through_the_host() {
    let (r, _dir) = fixture_registry("f", b"t");
    let n = 8 << 20;
    let mut out = Vec::new();
    r.call("f", Some("big"), n.to_string().as_bytes(), &mut out)
        .unwrap();
    assert_eq!(out.len(), n);
    assert!(out.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    let input = vec![7u8; n];
    r.call("f", Some("echo"), &input, &mut out).unwrap();
    assert_eq!(out, input);
}

#[test]
fn sixty_four_mib_in_and_out() {
    let (r, _dir) = fixture_registry("f", b"t");
    let n = 64 << 20;
    let input: Vec<u8> = (0..n).map(|i| (i % 253) as u8).collect();
    let mut out = Vec::new();
    r.call("f", Some("echo"), &input, &mut out).unwrap();
    assert!(out == input, "64 MiB echoed");
    r.call("f", Some("big"), n.to_string().as_bytes(), &mut out)
        .unwrap();
    assert_eq!(out.len(), n);
    assert!(out.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
}

#[test]
fn an_absurd_output_size_is_refused_as_a_plugin_error() {
    let (r, _dir) = fixture_registry("f", b"t");
    let mut out = Vec::new();
    let err = r
        .call("f", Some("reserve-absurd"), b"", &mut out)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Plugin {
                panicked: false,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(call(&r, "f", None, ""), "t");
}

#[test]
fn empty_input_and_output() {
    let (r, _dir) = fixture_registry("f", b"");
    assert_eq!(call(&r, "f", Some("echo"), ""), "");
    assert_eq!(call(&r, "f", None, ""), "");
}

#[test]
fn a_serialised_plugin_never_runs_two_calls_at_once() {
    let (r, _dir) = registry();
    let path = plugins().native("libfx_serialize.so");
    r.load("s", &path.to_string_lossy(), b"").unwrap();
    assert!(r.info("s").unwrap().serialized);
    let r = Arc::new(r);
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let r = Arc::clone(&r);
            thread::spawn(move || {
                for _ in 0..25 {
                    call(&r, "s", None, "");
                }
            })
        })
        .collect();
    for caller in callers {
        caller.join().unwrap();
    }
    assert_eq!(call(&r, "s", Some("max"), ""), "1");
}

#[test]
fn two_plugins_exporting_the_same_symbols_stay_separate() {
    let (r, _dir) = registry();
    let p = plugins();
    r.load("a", &p.native("libfx_clash_a.so").to_string_lossy(), b"")
        .unwrap();
    r.load("b", &p.native("libfx_clash_b.so").to_string_lossy(), b"")
        .unwrap();
    assert_eq!(call(&r, "a", None, ""), "a");
    assert_eq!(call(&r, "b", None, ""), "b");
}

#[test]
fn the_cpp_example_serves_replaces_and_unmaps() {
    let (r, _dir) = registry();
    let p = plugins();
    let v1 = p.native("libexample_cpp_v1.so");
    let v2 = p.native("libexample_cpp_v2.so");
    r.load("cpp", &v1.to_string_lossy(), b"").unwrap();
    assert_eq!(call(&r, "cpp", None, "x"), "x");
    assert_eq!(call(&r, "cpp", Some("sum"), "1,2,3"), "6");
    let mut out = Vec::new();
    let err = r.call("cpp", Some("sum"), b"1,two", &mut out).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Plugin {
                panicked: false,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("stoll"),
        "the exception's what() reaches the caller: {err}"
    );
    let old = r.info("cpp").unwrap().snapshot_path;
    r.replace("cpp", &v2.to_string_lossy(), b"").unwrap();
    assert_eq!(call(&r, "cpp", None, "x"), "x,ab");
    assert_eq!(call(&r, "cpp", Some("version"), ""), "2.0.0");
    assert!(r.await_retired("cpp", DRAIN));
    assert!(
        !mapped(&old),
        "a C++ plugin built with -fno-gnu-unique unloads"
    );
}
