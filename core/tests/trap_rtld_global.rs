//! RTLD_GLOBAL lets one library's symbols capture another's calls: shown here in a process of
//! its own, since a library opened RTLD_GLOBAL stays in the global scope.

#[path = "../../tests/common/mod.rs"]
mod common;

use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};

use common::{call, plugins, registry};

#[test]
fn a_global_library_captures_the_calls_of_a_local_one() {
    let p = plugins();
    let (r, _dir) = registry();
    r.load(
        "b-before",
        &p.native("libfx_clash_b.so").to_string_lossy(),
        b"",
    )
    .unwrap();
    assert_eq!(call(&r, "b-before", None, ""), "b");
    // SAFETY: the fixture's initialisers are harmless; the handle stays open for the test.
    let global =
        unsafe { Library::open(Some(p.native("libfx_clash_a.so")), RTLD_NOW | RTLD_GLOBAL) }
            .unwrap();
    r.load(
        "b-after",
        &p.native("libfx_clash_b.so").to_string_lossy(),
        b"",
    )
    .unwrap();
    // b's own exported fx_clash_tag is interposed by a's, now in the global scope: the clash
    // RTLD_LOCAL protects every plugin from as long as no library is loaded RTLD_GLOBAL.
    assert_eq!(call(&r, "b-after", None, ""), "a");
    // A version loaded before keeps its own binding (RTLD_NOW bound it at load).
    assert_eq!(call(&r, "b-before", None, ""), "b");
    drop(global);
}
