//! A Rust plugin that panicked still unloads completely, even with `RUST_BACKTRACE=full` set:
//! nothing the panic machinery touches (hook, backtrace, thread handle) pins the library.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{DRAIN, call, mapped, plugins, registry};

#[test]
fn a_version_that_panicked_leaves_nothing_mapped() {
    // SAFETY: this test binary has this one test, so no other thread reads the environment.
    unsafe { std::env::set_var("RUST_BACKTRACE", "full") };
    let (r, _dir) = registry();
    r.load("p", &plugins().fixture().to_string_lossy(), b"t")
        .unwrap();
    let snapshot = r.info("p").unwrap().snapshot_path;
    let mut out = Vec::new();
    assert!(r.call("p", Some("panic"), b"", &mut out).is_err());
    assert_eq!(call(&r, "p", None, ""), "t");
    assert!(r.unload("p").unwrap());
    assert!(r.await_retired("p", DRAIN));
    assert!(
        !mapped(&snapshot),
        "a mapping of the panicked version stayed behind"
    );
}
