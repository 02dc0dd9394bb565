//! The README's C plugin example builds, loads and answers as the README says.

mod common;

use std::path::Path;
use std::process::Command;

use common::{call, registry};

#[test]
fn the_readme_c_plugin_builds_and_serves() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let section = readme
        .split("### C\n")
        .nth(1)
        .expect("README has a '### C' section");
    let code = section
        .split("```c\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the C section has a C code block");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("echo.c"), code).unwrap();
    let lib = dir.join("libecho.so");
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args([
            "-O2",
            "-fPIC",
            "-shared",
            "-fvisibility=hidden",
            "-Wall",
            "-Wextra",
            "-Werror",
        ])
        .arg("-I")
        .arg(repo.join("include"))
        .arg("-o")
        .arg(&lib)
        .arg(dir.join("echo.c"))
        .status()
        .unwrap();
    assert!(status.success(), "the README's C example does not compile");
    let (r, _snapshots) = registry();
    r.load("echo", &lib.to_string_lossy(), b"").unwrap();
    assert_eq!(call(&r, "echo", None, "hi"), "hi");
    assert_eq!(r.info("echo").unwrap().name, "echo");
}
