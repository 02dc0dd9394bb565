//! The dlopen traps the design exists to beat, each shown next to the raw behaviour it avoids.

#[path = "../../tests/common/mod.rs"]
mod common;

use libloading::os::unix::{Library, RTLD_LAZY, RTLD_LOCAL, RTLD_NOW};
use proxyso_abi as abi;

use common::{call, plugins, registry};

/// The version string of an open plugin, read straight from its descriptor.
fn raw_version(lib: &Library) -> String {
    // SAFETY: the fixture libraries export a valid version-1 descriptor.
    unsafe {
        let desc: *const abi::Descriptor = *lib.get(abi::DESCRIPTOR_SYMBOL).unwrap();
        std::ffi::CStr::from_ptr((*desc).version)
            .to_string_lossy()
            .into_owned()
    }
}

#[test]
fn dlopen_of_a_path_already_open_returns_the_old_library_but_replace_does_not() {
    let p = plugins();
    let dir = common::scratch_dir();
    let live = dir.path().join("live.so");
    std::fs::copy(p.example_v1(), &live).unwrap();
    // SAFETY: the example plugin's initialisers are harmless.
    let first = unsafe { Library::open(Some(&live), RTLD_NOW | RTLD_LOCAL) }.unwrap();
    // A new file (new inode) at the same path, as a deploy by rename does.
    let staged = dir.path().join("staged.so");
    std::fs::copy(p.example_v2(), &staged).unwrap();
    std::fs::rename(&staged, &live).unwrap();
    // SAFETY: as above.
    let second = unsafe { Library::open(Some(&live), RTLD_NOW | RTLD_LOCAL) }.unwrap();
    assert_eq!(
        raw_version(&second),
        "1.0.0",
        "glibc handed back the old library"
    );
    drop((first, second));

    let (r, _snapshots) = registry();
    std::fs::copy(p.example_v1(), &live).unwrap();
    r.load("m", &live.to_string_lossy(), b"").unwrap();
    std::fs::copy(p.example_v2(), &live).unwrap();
    r.replace("m", &live.to_string_lossy(), b"").unwrap();
    assert_eq!(call(&r, "m", Some("version"), ""), "2.0.0");
}

#[test]
fn rtld_lazy_would_accept_a_missing_symbol_that_the_registry_refuses() {
    let path = plugins().native("libfx_missing_symbol.so");
    // SAFETY: the library is opened and closed without calling into it.
    let lazy = unsafe { Library::open(Some(&path), RTLD_LAZY | RTLD_LOCAL) };
    assert!(
        lazy.is_ok(),
        "RTLD_LAZY defers the missing symbol to call time"
    );
    drop(lazy);
    let (r, _dir) = registry();
    let err = r.load("m", &path.to_string_lossy(), b"").unwrap_err();
    assert!(err.to_string().contains("undefined symbol"), "{err}");
}

#[test]
fn a_cpp_plugin_unloads_only_when_built_with_no_gnu_unique() {
    let (r, _dir) = registry();
    let p = plugins();
    for (name, stays_mapped) in [
        ("libfx_gnu_unique.so", false),
        ("libfx_gnu_unique_pinned.so", true),
    ] {
        let key = name.trim_end_matches(".so");
        r.load(key, &p.native(name).to_string_lossy(), b"").unwrap();
        assert_eq!(call(&r, key, None, ""), "1");
        let snapshot = r.info(key).unwrap().snapshot_path;
        assert!(r.unload(key).unwrap());
        assert!(r.await_retired(key, common::DRAIN));
        assert_eq!(common::mapped(&snapshot), stays_mapped, "{name}");
    }
}

#[test]
fn mapped_sees_the_c_library_and_not_a_made_up_path() {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let libc_line = maps.lines().find(|l| l.contains("libc.so")).unwrap();
    let libc_path = libc_line.split_whitespace().last().unwrap();
    assert!(common::mapped(std::path::Path::new(libc_path)));
    assert!(!common::mapped(std::path::Path::new(
        "/no/such/proxyso-snapshot.so"
    )));
}
