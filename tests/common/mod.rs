//! Shared by the integration tests: builds the example and fixture plugins once per test binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use proxyso_core::{LibraryInfo, Registry};

/// Where the built plugins are.
pub struct Plugins {
    /// Rust example plugins and the Rust fixture (cargo's output directory).
    pub cargo_dir: PathBuf,
    /// C fixtures and the C++ example.
    pub native_dir: PathBuf,
}

impl Plugins {
    pub fn example_v1(&self) -> PathBuf {
        self.cargo_dir.join("libexample_v1.so")
    }
    pub fn example_v2(&self) -> PathBuf {
        self.cargo_dir.join("libexample_v2.so")
    }
    pub fn fixture(&self) -> PathBuf {
        self.cargo_dir.join("libfixture.so")
    }
    pub fn native(&self, name: &str) -> PathBuf {
        self.native_dir.join(name)
    }
    /// The `proxyso-worker` executable, built with the plugins.
    pub fn worker(&self) -> PathBuf {
        self.cargo_dir.join("proxyso-worker")
    }
}

/// The workspace root: the package itself, or the one above a member that shares this module
/// (`check/`).
fn repo() -> &'static Path {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("tests/fixtures/build.sh").is_file())
        .unwrap_or(manifest)
}

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

/// Builds every plugin the tests use (once per process) and says where they are: optimised
/// when this code is (benchmarks), with debug assertions when it has them (tests).
pub fn plugins() -> &'static Plugins {
    static PLUGINS: OnceLock<Plugins> = OnceLock::new();
    PLUGINS.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let target = tmp
            .parent()
            .expect("CARGO_TARGET_TMPDIR is inside the target dir");
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let release = !cfg!(debug_assertions);
        let mut build = Command::new(cargo);
        build
            .current_dir(repo())
            .args(["build", "--quiet", "-p", "example-v1", "-p", "example-v2"])
            .args([
                "-p",
                "proxyso-fixture",
                "-p",
                "proxyso-worker",
                "--target-dir",
            ])
            .arg(target);
        if release {
            build.arg("--release");
        }
        run(&mut build);
        let native_dir = tmp.join("native-plugins");
        run(Command::new("bash")
            .arg(repo().join("tests/fixtures/build.sh"))
            .arg(&native_dir));
        run(Command::new("bash")
            .arg(repo().join("plugin-example/cpp/build.sh"))
            .arg(&native_dir));
        Plugins {
            cargo_dir: target.join(if release { "release" } else { "debug" }),
            native_dir,
        }
    })
}

/// A scratch directory under cargo's target directory, so that nothing (not even what a child
/// process that crashes on purpose leaves) lands in the system's temporary directory.
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// A registry with its own snapshot directory.
pub fn registry() -> (Registry, tempfile::TempDir) {
    let dir = scratch_dir();
    (Registry::new(dir.path().to_path_buf()), dir)
}

/// Calls and returns the output as text, panicking on error.
pub fn call(registry: &Registry, key: &str, method: Option<&str>, input: &str) -> String {
    let mut out = Vec::new();
    registry
        .call(key, method, input.as_bytes(), &mut out)
        .unwrap_or_else(|e| panic!("call {key}/{method:?} failed: {e}"));
    String::from_utf8(out).unwrap()
}

/// Generous bound for a drain that should take milliseconds.
pub const DRAIN: Duration = Duration::from_secs(10);

/// True when any mapping in `/proc/self/maps` names the path: the proof that a version is gone.
///
/// Snapshots are deleted right after `dlopen`, so the kernel shows them as `path (deleted)`;
/// a substring match covers both forms.
pub fn mapped(path: &Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    let needle = path.to_string_lossy();
    maps.lines().any(|line| line.contains(&*needle))
}

/// Overwrites `dest` in place (same inode), as `cp new.so live.so` does.
pub fn overwrite_in_place(dest: &Path, source: &Path) {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(dest).unwrap().ino();
    let bytes = std::fs::read(source).unwrap();
    std::fs::write(dest, bytes).unwrap();
    assert_eq!(
        std::fs::metadata(dest).unwrap().ino(),
        inode,
        "must keep the inode"
    );
}

/// Asserts that what serves a key is as it was (`last_error` aside, which records the failure
/// that left it so); returns that last error.
pub fn same_library(before: &LibraryInfo, after: LibraryInfo) -> Option<String> {
    let last_error = after.last_error.clone();
    let after = LibraryInfo {
        last_error: before.last_error.clone(),
        ..after
    };
    assert_eq!(&after, before, "the serving version is untouched");
    last_error
}
