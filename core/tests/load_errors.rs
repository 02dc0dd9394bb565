//! Every bad library fails with an error naming what was wrong and leaves what is loaded alone.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::fs;
use std::path::Path;

use common::{call, plugins, registry, same_library};
use proxyso_core::{Error, LoadError, Registry};

/// Replaces "m" (serving example v1) with `path`; asserts the failure and that v1 still serves.
fn failed_replace(r: &Registry, path: &Path, config: &[u8]) -> (LoadError, String) {
    let before = r.info("m").unwrap();
    let err = r.replace("m", &path.to_string_lossy(), config).unwrap_err();
    let text = err.to_string();
    let Error::Load {
        key,
        path: shown,
        cause,
    } = err
    else {
        panic!("expected a load error, got {text}");
    };
    assert_eq!(key, "m");
    assert_eq!(shown, path.to_string_lossy());
    assert!(
        text.contains(&*path.to_string_lossy()),
        "names the path: {text}"
    );
    let last_error = same_library(&before, r.info("m").unwrap());
    assert_eq!(
        last_error.as_deref(),
        Some(&*text),
        "the last error is this one"
    );
    assert_eq!(call(r, "m", None, "still"), "still");
    // The failed load must not change what a fresh load of the same key does either.
    assert!(matches!(
        r.load("m", &plugins().example_v1().to_string_lossy(), b""),
        Err(Error::AlreadyLoaded { .. })
    ));
    (cause, text)
}

fn serving_v1() -> (Registry, tempfile::TempDir) {
    let (r, dir) = registry();
    r.load("m", &plugins().example_v1().to_string_lossy(), b"")
        .unwrap();
    (r, dir)
}

#[test]
fn missing_file() {
    let (r, dir) = serving_v1();
    let (cause, text) = failed_replace(&r, &dir.path().join("absent.so"), b"");
    assert!(matches!(cause, LoadError::Read(_)), "{text}");
    assert!(text.contains("No such file"), "{text}");
}

#[test]
fn a_directory() {
    let (r, dir) = serving_v1();
    let (cause, text) = failed_replace(&r, dir.path(), b"");
    assert!(matches!(cause, LoadError::NotAFile(_)), "{text}");
    assert!(text.contains("directory"), "{text}");
}

#[test]
fn an_empty_file_and_a_text_file_are_not_elf() {
    let (r, dir) = serving_v1();
    let empty = dir.path().join("empty.so");
    fs::write(&empty, b"").unwrap();
    let (cause, text) = failed_replace(&r, &empty, b"");
    assert!(matches!(cause, LoadError::NotLoadable(_)), "{text}");
    assert!(text.contains("the file is empty"), "{text}");
    let text_file = dir.path().join("notes.so");
    fs::write(&text_file, "this is not a shared object\n".repeat(100)).unwrap();
    let (cause, text) = failed_replace(&r, &text_file, b"");
    assert!(matches!(cause, LoadError::NotLoadable(_)), "{text}");
    assert!(
        text.contains("not an ELF file (it starts with \"this is"),
        "{text}"
    );
    assert!(text.contains("notes.so"), "{text}");
}

#[test]
fn a_truncated_elf_is_refused_before_dlopen_could_crash_on_it() {
    let (r, dir) = serving_v1();
    let bytes = fs::read(plugins().example_v2()).unwrap();
    let cut = dir.path().join("cut.so");
    // Cut inside the loadable segments: glibc would map past the end and die of SIGBUS.
    for len in [64, 1000, 64 << 10] {
        fs::write(&cut, &bytes[..len]).unwrap();
        let (cause, text) = failed_replace(&r, &cut, b"");
        assert!(matches!(cause, LoadError::NotLoadable(_)), "{text}");
        assert!(text.contains("truncated"), "{text}");
    }
}

#[test]
fn an_elf_for_another_machine() {
    let (r, dir) = serving_v1();
    let mut bytes = fs::read(plugins().example_v2()).unwrap();
    // e_machine = EM_AARCH64 on x86-64 hosts, EM_X86_64 elsewhere.
    let other: u16 = if cfg!(target_arch = "x86_64") {
        183
    } else {
        62
    };
    bytes[18..20].copy_from_slice(&other.to_le_bytes());
    let foreign = dir.path().join("foreign.so");
    fs::write(&foreign, bytes).unwrap();
    let (cause, text) = failed_replace(&r, &foreign, b"");
    assert!(matches!(cause, LoadError::NotLoadable(_)), "{text}");
    assert!(text.contains("built for"), "{text}");
}

#[test]
fn no_descriptor() {
    let (r, _dir) = serving_v1();
    let (cause, text) = failed_replace(&r, &plugins().native("libfx_no_descriptor.so"), b"");
    assert!(matches!(cause, LoadError::NoDescriptor(_)), "{text}");
    assert!(text.contains("proxyso_plugin"), "{text}");
}

#[test]
fn abi_mismatch_names_both_versions() {
    let (r, _dir) = serving_v1();
    let (cause, text) = failed_replace(&r, &plugins().native("libfx_abi_mismatch.so"), b"");
    assert!(
        matches!(
            cause,
            LoadError::AbiMismatch {
                expected: 1,
                found: 99
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("expects 1") && text.contains("has 99"),
        "{text}"
    );
}

#[test]
fn a_missing_symbol_fails_the_load_not_the_call() {
    let (r, _dir) = serving_v1();
    let (cause, text) = failed_replace(&r, &plugins().native("libfx_missing_symbol.so"), b"");
    assert!(matches!(cause, LoadError::Open(_)), "{text}");
    assert!(
        text.contains("proxyso_fixture_undefined_function"),
        "{text}"
    );
}

#[test]
fn bad_descriptors() {
    let (r, _dir) = serving_v1();
    let (cause, text) = failed_replace(&r, &plugins().native("libfx_null_name.so"), b"");
    assert!(matches!(cause, LoadError::BadDescriptor(_)), "{text}");
    assert!(text.contains("'name' is null"), "{text}");
    let (cause, text) = failed_replace(&r, &plugins().native("libfx_no_methods.so"), b"");
    assert!(matches!(cause, LoadError::BadDescriptor(_)), "{text}");
    assert!(text.contains("method_count is 0"), "{text}");
}

#[test]
fn init_failure_and_init_panic() {
    let (r, _dir) = serving_v1();
    let fixture = plugins().fixture();
    let (cause, text) = failed_replace(&r, &fixture, b"fail-init");
    assert!(
        matches!(
            cause,
            LoadError::Init {
                code: 7,
                panicked: false,
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("init refused: fail-init"), "{text}");
    let (cause, text) = failed_replace(&r, &fixture, b"panic-init");
    assert!(
        matches!(cause, LoadError::Init { panicked: true, .. }),
        "{text}"
    );
    assert!(text.contains("init panicked on purpose"), "{text}");
}

#[test]
fn a_failed_first_load_leaves_the_key_free() {
    let (r, dir) = registry();
    let err = r
        .load("k", &dir.path().join("absent.so").to_string_lossy(), b"")
        .unwrap_err();
    assert!(matches!(err, Error::Load { .. }), "{err}");
    assert!(r.info("k").is_none());
    assert_eq!(
        r.load("k", &plugins().example_v1().to_string_lossy(), b"")
            .unwrap(),
        1
    );
}

#[test]
fn invalid_keys() {
    let (r, _dir) = registry();
    let v1 = plugins().example_v1().to_string_lossy().into_owned();
    for key in ["", "line\nbreak"] {
        let err = r.load(key, &v1, b"").unwrap_err();
        assert!(matches!(err, Error::InvalidKey { .. }), "{err}");
    }
    assert!(r.keys().is_empty());
    assert_eq!(r.load("模型/ü", &v1, b"").unwrap(), 1);
    assert_eq!(call(&r, "模型/ü", None, "ok"), "ok");
}

#[test]
fn an_unwritable_snapshot_directory_is_named() {
    let dir = common::scratch_dir();
    let r = Registry::new(dir.path().join("missing"));
    let err = r
        .load("k", &plugins().example_v1().to_string_lossy(), b"")
        .unwrap_err();
    assert!(err.to_string().contains("snapshot"), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
}
