//! plugin-example/cpp/CMakeLists.txt builds the same plugins as build.sh: they load, serve,
//! replace and unmap; they export exactly what build.sh's export and no `STB_GNU_UNIQUE`
//! symbol; they compile with build.sh's flags; and the include directory comes from the cache
//! variable `PROXYSO_INCLUDE_DIR`, as the file's vendoring instructions say.
//!
//! cmake is required, not optional: without it every test here fails and says how to install it
//! (`bash .ci/install` does, as CI runs it).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{DRAIN, call, mapped, plugins, registry};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn example_dir() -> PathBuf {
    repo().join("plugin-example/cpp")
}

/// Runs `cmd` and returns its output, panicking with what it printed if it fails.
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A `cmake` command; fails the test, saying how to get cmake, when there is none.
fn cmake() -> Command {
    let found = Command::new("cmake")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        found,
        "cmake is required to test plugin-example/cpp/CMakeLists.txt and was not found on PATH: \
         install it with `sudo apt-get install cmake` (Debian/Ubuntu), or run `bash .ci/install`, \
         which CI runs and which installs it"
    );
    Command::new("cmake")
}

/// Configures `source` into `build` (with `args`), as the file's header says, without building.
fn configure(source: &Path, build: &Path, args: &[String]) -> Command {
    let mut cmd = cmake();
    cmd.arg("-S")
        .arg(source)
        .arg("-B")
        .arg(build)
        // The compiler build.sh uses, so that the two builds can be compared.
        .arg(format!(
            "-DCMAKE_CXX_COMPILER={}",
            std::env::var("CXX").unwrap_or_else(|_| "g++".into())
        ))
        .args(args);
    cmd
}

/// Configures and builds `source` into `build`.
fn cmake_build(source: &Path, build: &Path, args: &[String]) {
    run(&mut configure(source, build, args));
    run(cmake().arg("--build").arg(build).args(["--parallel", "2"]));
}

/// The example built with CMake, as its header says, into a fresh scratch directory (one per
/// test: other `cargo test` processes may be running this test at the same moment).
fn build_example() -> (tempfile::TempDir, PathBuf) {
    let scratch = common::scratch_dir();
    let build = scratch.path().join("build");
    cmake_build(
        &example_dir(),
        &build,
        &["-DCMAKE_EXPORT_COMPILE_COMMANDS=ON".to_owned()],
    );
    (scratch, build)
}

fn lib(dir: &Path, version: u32) -> PathBuf {
    let path = dir.join(format!("libexample_cpp_v{version}.so"));
    assert!(path.is_file(), "the CMake build made no {}", path.display());
    path
}

/// `nm -D --defined-only`: the (type, name) of every symbol the library exports.
fn exported(lib: &Path) -> BTreeSet<(String, String)> {
    let out = run(Command::new("nm").args(["-D", "--defined-only"]).arg(lib));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().rev();
            let name = fields.next()?;
            let kind = fields.next()?;
            Some((kind.to_owned(), name.to_owned()))
        })
        .collect()
}

/// Every symbol, of every symbol table, whose binding is `STB_GNU_UNIQUE` (`readelf -s`).
fn unique_symbols(lib: &Path) -> Vec<String> {
    let out = run(Command::new("readelf").args(["-s", "-W"]).arg(lib));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        // Num: Value Size Type Bind Vis Ndx Name
        .filter(|line| line.split_whitespace().nth(4) == Some("UNIQUE"))
        .map(str::to_owned)
        .collect()
}

/// The libraries it needs (`DT_NEEDED`), in order.
fn needed(lib: &Path) -> Vec<String> {
    let out = run(Command::new("readelf").arg("-d").arg(lib));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| line.split('[').nth(1)?.split(']').next().map(str::to_owned))
        .collect()
}

#[test]
fn the_cmake_build_loads_serves_replaces_and_unmaps() {
    let (_scratch, dir) = build_example();
    let (v1, v2) = (lib(&dir, 1), lib(&dir, 2));
    let (r, _snapshots) = registry();
    r.load("cpp", &v1.to_string_lossy(), b"config").unwrap();
    let info = r.info("cpp").unwrap();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("example-cpp", "1.0.0")
    );
    assert_eq!(info.methods, ["echo", "version", "sum"]);
    assert_eq!(call(&r, "cpp", None, "x"), "x");
    assert_eq!(call(&r, "cpp", Some("sum"), "1,2,3"), "6");
    // A C++ exception inside the plugin reaches the caller as an error, and it serves on.
    let mut out = Vec::new();
    let err = r.call("cpp", Some("sum"), b"1,two", &mut out).unwrap_err();
    assert!(
        matches!(
            err,
            proxyso_core::Error::Plugin {
                code: 2,
                panicked: false,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(call(&r, "cpp", Some("version"), ""), "1.0.0");

    let old = r.info("cpp").unwrap().snapshot_path;
    r.replace("cpp", &v2.to_string_lossy(), b"").unwrap();
    assert_eq!(call(&r, "cpp", None, "x"), "x,ab");
    assert_eq!(call(&r, "cpp", Some("version"), ""), "2.0.0");
    assert!(r.await_retired("cpp", DRAIN));
    assert!(
        !mapped(&old),
        "the CMake-built v1 stayed mapped after it retired (built without -fno-gnu-unique?)"
    );
    assert!(r.unload("cpp").unwrap());
}

#[test]
fn the_cmake_build_has_build_sh_flags_and_exports_and_no_unique_symbol() {
    let (_scratch, dir) = build_example();

    // The compile flags, from the build's compile_commands.json: one entry per translation
    // unit, each starting with its "directory" key.
    let commands = std::fs::read_to_string(dir.join("compile_commands.json")).unwrap();
    let entries: Vec<&str> = commands.split("\"directory\"").skip(1).collect();
    assert_eq!(entries.len(), 2, "one compile per version:\n{commands}");
    for version in [1, 2] {
        let define = format!("-DEXAMPLE_VERSION={version}");
        let entry = entries
            .iter()
            .find(|e| e.contains(&define))
            .unwrap_or_else(|| panic!("no compile with {define}:\n{commands}"));
        assert!(entry.contains("example.cpp"), "{entry}");
        let flags: BTreeSet<&str> = entry.split([' ', '"']).collect();
        for flag in [
            "-std=c++17",
            "-O2",
            "-fPIC",
            "-fvisibility=hidden",
            "-fno-gnu-unique",
            "-Wall",
            "-Wextra",
            "-Werror",
        ] {
            assert!(
                flags.contains(flag),
                "v{version} compiles without {flag}: {entry}"
            );
        }
    }

    // What the libraries export and need, against build.sh's builds of the same source.
    let descriptor = BTreeSet::from([("D".to_owned(), "proxyso_plugin".to_owned())]);
    for version in [1, 2] {
        let cmake_lib = lib(&dir, version);
        let script_lib = plugins().native(&format!("libexample_cpp_v{version}.so"));
        let exports = exported(&cmake_lib);
        assert_eq!(
            exports,
            exported(&script_lib),
            "{} and build.sh's {} export different symbols",
            cmake_lib.display(),
            script_lib.display()
        );
        assert_eq!(
            exports,
            descriptor,
            "{} must export proxyso_plugin and nothing else",
            cmake_lib.display()
        );
        let unique = unique_symbols(&cmake_lib);
        assert!(
            unique.is_empty(),
            "{} has STB_GNU_UNIQUE symbols, which keep glibc from ever unloading it:\n{}",
            cmake_lib.display(),
            unique.join("\n")
        );
        assert_eq!(
            needed(&cmake_lib),
            needed(&script_lib),
            "{} and build.sh's {} need different libraries",
            cmake_lib.display(),
            script_lib.display()
        );
    }
}

#[test]
fn a_missing_header_fails_the_configure_and_names_the_cache_variable() {
    let scratch = common::scratch_dir();
    let empty = scratch.path().join("no-header-here");
    std::fs::create_dir(&empty).unwrap();
    let out = configure(
        &example_dir(),
        &scratch.path().join("build"),
        &[format!("-DPROXYSO_INCLUDE_DIR={}", empty.display())],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "configured without proxyso.h");
    assert!(
        stderr.contains("proxyso.h not found in PROXYSO_INCLUDE_DIR"),
        "{stderr}"
    );
}

#[test]
fn the_example_vendored_with_add_subdirectory_builds_and_loads() {
    // The layout of the file's vendoring instructions; the header is not at the default
    // ../../include of the vendored directory, so only PROXYSO_INCLUDE_DIR can find it.
    let scratch = common::scratch_dir();
    let root = scratch.path().join("app");
    let vendored = root.join("third_party/proxyso-example");
    let include = root.join("third_party/proxyso/include");
    std::fs::create_dir_all(&vendored).unwrap();
    std::fs::create_dir_all(&include).unwrap();
    for file in ["CMakeLists.txt", "example.cpp", "exports.map"] {
        std::fs::copy(example_dir().join(file), vendored.join(file)).unwrap();
    }
    std::fs::copy(repo().join("include/proxyso.h"), include.join("proxyso.h")).unwrap();
    assert!(!vendored.join("../../include/proxyso.h").exists());
    std::fs::write(
        root.join("CMakeLists.txt"),
        r#"cmake_minimum_required(VERSION 3.13)
project(app LANGUAGES CXX)
set(PROXYSO_INCLUDE_DIR "${CMAKE_CURRENT_SOURCE_DIR}/third_party/proxyso/include"
    CACHE PATH "Directory that holds proxyso.h")
add_subdirectory(third_party/proxyso-example)
"#,
    )
    .unwrap();
    let build = scratch.path().join("build");
    cmake_build(&root, &build, &[]);

    let built = build.join("third_party/proxyso-example");
    let (r, _snapshots) = registry();
    r.load("vendored", &lib(&built, 1).to_string_lossy(), b"")
        .unwrap();
    assert_eq!(call(&r, "vendored", Some("version"), ""), "1.0.0");
    r.replace("vendored", &lib(&built, 2).to_string_lossy(), b"")
        .unwrap();
    assert_eq!(call(&r, "vendored", None, "x"), "x,ab");
}
