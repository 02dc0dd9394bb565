//! plugin-example/cpp/CMakeLists.txt builds the same plugins as build.sh: they load, serve,
//! replace and unmap; they export exactly what build.sh's export and no `STB_GNU_UNIQUE`
//! symbol; they compile with build.sh's flags; and the SDK comes from the cache variable
//! `PROXYSO_SDK_DIR`.
//!
//! The C++ SDK's CMake package (sdk/cpp): installed into a prefix, it builds a plugin in a
//! directory outside the tree with `find_package(proxyso)` and `proxyso_add_plugin`; the
//! result exports only the descriptor, has no `STB_GNU_UNIQUE` symbol, loads, and reports its
//! exceptions with their codes and messages; and it builds with `-Werror -Wall -Wextra
//! -pedantic`.
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
fn a_missing_sdk_fails_the_configure_and_names_the_cache_variable() {
    let scratch = common::scratch_dir();
    let empty = scratch.path().join("no-sdk-here");
    std::fs::create_dir(&empty).unwrap();
    let out = configure(
        &example_dir(),
        &scratch.path().join("build"),
        &[format!("-DPROXYSO_SDK_DIR={}", empty.display())],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "configured without the SDK");
    assert!(
        stderr.contains("proxyso's C++ SDK not found in PROXYSO_SDK_DIR"),
        "{stderr}"
    );
}

#[test]
fn the_example_vendored_with_add_subdirectory_builds_and_loads() {
    // The example and proxyso's include/ and sdk/cpp/ copied into another tree, where the SDK
    // is not at the example's default ../../sdk/cpp: only PROXYSO_SDK_DIR can find it.
    let scratch = common::scratch_dir();
    let root = scratch.path().join("app");
    let vendored = root.join("third_party/proxyso-example");
    let proxyso = root.join("third_party/proxyso");
    std::fs::create_dir_all(&vendored).unwrap();
    std::fs::create_dir_all(proxyso.join("include")).unwrap();
    std::fs::create_dir_all(proxyso.join("sdk/cpp/cmake")).unwrap();
    for file in ["CMakeLists.txt", "example.cpp"] {
        std::fs::copy(example_dir().join(file), vendored.join(file)).unwrap();
    }
    for file in [
        "include/proxyso.h",
        "sdk/cpp/CMakeLists.txt",
        "sdk/cpp/proxyso.hpp",
        "sdk/cpp/cmake/proxysoConfig.cmake",
        "sdk/cpp/cmake/proxysoPlugin.cmake",
        "sdk/cpp/cmake/proxyso-exports.map",
    ] {
        std::fs::copy(repo().join(file), proxyso.join(file)).unwrap();
    }
    assert!(!vendored.join("../../sdk/cpp").exists());
    std::fs::write(
        root.join("CMakeLists.txt"),
        r#"cmake_minimum_required(VERSION 3.14)
project(app LANGUAGES CXX)
set(PROXYSO_SDK_DIR "${CMAKE_CURRENT_SOURCE_DIR}/third_party/proxyso/sdk/cpp"
    CACHE PATH "proxyso's sdk/cpp directory")
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

/// The consumer project's CMakeLists.txt: what a team outside proxyso's tree writes.
const CONSUMER_CMAKE: &str = r#"cmake_minimum_required(VERSION 3.14)
project(consumer LANGUAGES CXX)
find_package(proxyso 1 CONFIG REQUIRED)
proxyso_add_plugin(consumer SOURCES consumer.cpp)
"#;

/// The consumer plugin, written with the SDK: every input type, both macros' features (a flag,
/// a method under another name), the output's write / reserve / resize, the host's log, and
/// the three kinds of exception. `std::to_string` instantiates the libstdc++ template whose
/// static digit table becomes an `STB_GNU_UNIQUE` symbol without `-fno-gnu-unique`.
const CONSUMER_CPP: &str = r#"#include <proxyso.hpp>

#include <cctype>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

class Consumer {
public:
    Consumer(proxyso::host host, proxyso::bytes config) : host_(host), prefix_(config.str()) {
        if (prefix_ == "refuse") {
            throw proxyso::error(77, "consumer: the configuration \"refuse\" is refused");
        }
        host_.info("consumer ready");
    }
    Consumer(const Consumer &) = delete;
    Consumer &operator=(const Consumer &) = delete;
    ~Consumer() { host_.info("consumer gone"); }

    // In place: reserve, fill data(), resize.
    void upper(std::string_view input, proxyso::output &out) const {
        out.reserve(input.size());
        for (std::size_t i = 0; i < input.size(); ++i) {
            out.data()[i] = static_cast<std::uint8_t>(
                std::toupper(static_cast<unsigned char>(input[i])));
        }
        out.resize(input.size());
    }

    void length(proxyso::bytes input, proxyso::output &out) const {
        out.write(prefix_);
        out.write(std::to_string(input.size()));
    }

    // Far more than the host's first buffer: write() grows it.
    void repeat(std::string input, proxyso::output &out) {
        ++calls_;
        for (int i = 0; i < 10000; ++i) {
            out.write(input);
        }
    }

    void fail(std::string_view input, proxyso::output &out) const {
        out.write("partial");
        throw proxyso::error(42, "fail: " + std::string(input));
    }

    void runtime(std::string_view, proxyso::output &) const noexcept(false) {
        throw std::runtime_error("a std::runtime_error from the consumer");
    }

    void unknown(std::string_view, proxyso::output &) const { throw 7; }

private:
    proxyso::host host_;
    std::string prefix_;
    long calls_ = 0;
};

}  // namespace

PROXYSO_PLUGIN_FLAGS(Consumer, PROXYSO_FLAG_SERIALIZE, "consumer", "3.1.4",
                     PROXYSO_METHOD(Consumer, upper),
                     PROXYSO_METHOD(Consumer, length),
                     PROXYSO_METHOD(Consumer, repeat),
                     PROXYSO_METHOD(Consumer, fail),
                     PROXYSO_METHOD_NAMED("std-error", Consumer, runtime),
                     PROXYSO_METHOD(Consumer, unknown));
"#;

/// Installs sdk/cpp into `<scratch>/prefix` as its header says, and returns the prefix.
fn install_sdk(scratch: &Path) -> PathBuf {
    let build = scratch.join("sdk-build");
    let prefix = scratch.join("prefix");
    run(cmake()
        .arg("-S")
        .arg(repo().join("sdk/cpp"))
        .arg("-B")
        .arg(&build));
    run(cmake()
        .arg("--install")
        .arg(&build)
        .arg("--prefix")
        .arg(&prefix));
    for file in [
        "include/proxyso.h",
        "include/proxyso.hpp",
        "lib/cmake/proxyso/proxysoConfig.cmake",
        "lib/cmake/proxyso/proxysoConfigVersion.cmake",
    ] {
        assert!(prefix.join(file).is_file(), "the install made no {file}");
    }
    prefix
}

/// Writes the consumer project into `<scratch>/consumer` (under CARGO_TARGET_TMPDIR, outside
/// the source tree), builds it against the installed package, and returns libconsumer.so.
fn build_consumer(scratch: &Path, extra: &[String]) -> PathBuf {
    let prefix = install_sdk(scratch);
    let source = scratch.join("consumer");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("CMakeLists.txt"), CONSUMER_CMAKE).unwrap();
    std::fs::write(source.join("consumer.cpp"), CONSUMER_CPP).unwrap();
    let build = scratch.join("consumer-build");
    let mut args = vec![format!("-DCMAKE_PREFIX_PATH={}", prefix.display())];
    args.extend_from_slice(extra);
    cmake_build(&source, &build, &args);
    let lib = build.join("libconsumer.so");
    assert!(
        lib.is_file(),
        "the consumer build made no {}",
        lib.display()
    );
    lib
}

#[test]
fn the_installed_package_builds_a_plugin_that_exports_only_the_descriptor_and_reports_exceptions() {
    let scratch = common::scratch_dir();
    let lib = build_consumer(scratch.path(), &[]);

    let out = run(Command::new("readelf").args(["--dyn-syms", "-W"]).arg(&lib));
    let unique: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|line| line.split_whitespace().nth(4) == Some("UNIQUE"))
        .map(str::to_owned)
        .collect();
    assert!(
        unique.is_empty(),
        "STB_GNU_UNIQUE symbols keep glibc from ever unloading the plugin:\n{}",
        unique.join("\n")
    );
    assert!(unique_symbols(&lib).is_empty());
    assert_eq!(
        exported(&lib),
        BTreeSet::from([("D".to_owned(), "proxyso_plugin".to_owned())]),
        "{} must export proxyso_plugin and nothing else",
        lib.display()
    );

    let (r, _snapshots) = registry();
    let path = lib.to_string_lossy();

    // The constructor's proxyso::error fails the load with its code and message.
    let err = r.load("refused", &path, b"refuse").unwrap_err();
    assert!(
        matches!(
            &err,
            proxyso_core::Error::Load {
                cause: proxyso_core::LoadError::Init { code: 77, panicked: false, message, .. },
                ..
            } if message == "consumer: the configuration \"refuse\" is refused"
        ),
        "{err}"
    );
    assert!(r.info("refused").is_none(), "a refused load stays unloaded");

    r.load("consumer", &path, b"len=").unwrap();
    let info = r.info("consumer").unwrap();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("consumer", "3.1.4")
    );
    assert_eq!(
        info.methods,
        ["upper", "length", "repeat", "fail", "std-error", "unknown"]
    );
    assert!(
        info.serialized,
        "PROXYSO_FLAG_SERIALIZE reaches the descriptor"
    );

    assert_eq!(call(&r, "consumer", None, "Hello, world"), "HELLO, WORLD");
    assert_eq!(call(&r, "consumer", Some("length"), "abcd"), "len=4");
    assert_eq!(
        call(&r, "consumer", Some("repeat"), "xyz"),
        "xyz".repeat(10000)
    );

    let mut out = Vec::new();
    let err = r
        .call("consumer", Some("fail"), b"on purpose", &mut out)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            proxyso_core::Error::Plugin { code: 42, panicked: false, message, method, .. }
                if message == "fail: on purpose" && method == "fail"
        ),
        "a proxyso::error reaches the caller with its code and message: {err}"
    );

    let err = r
        .call("consumer", Some("std-error"), b"", &mut out)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            proxyso_core::Error::Plugin { code: 1, panicked: false, message, .. }
                if message == "a std::runtime_error from the consumer"
        ),
        "a std::exception reaches the caller with the default code and its what(): {err}"
    );

    let err = r
        .call("consumer", Some("unknown"), b"", &mut out)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            proxyso_core::Error::Plugin { code: -1, panicked: true, message, .. }
                if message == "unknown C++ exception"
        ),
        "anything else is reported as a panic: {err}"
    );

    // It serves on after every failure, and unloads.
    assert_eq!(call(&r, "consumer", Some("length"), ""), "len=0");
    let snapshot = r.info("consumer").unwrap().snapshot_path;
    assert!(r.unload("consumer").unwrap());
    assert!(r.await_retired("consumer", DRAIN));
    assert!(
        !mapped(&snapshot),
        "the consumer plugin stayed mapped after it was unloaded"
    );
}

#[test]
fn a_plugin_with_the_sdk_builds_with_werror_wall_wextra_pedantic() {
    let scratch = common::scratch_dir();
    let flags = "-Werror -Wall -Wextra -pedantic";
    let lib = build_consumer(
        scratch.path(),
        &[
            format!("-DCMAKE_CXX_FLAGS={flags}"),
            "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON".to_owned(),
        ],
    );
    // The flags were used, and proxyso's headers were not hidden from them as system headers.
    let commands =
        std::fs::read_to_string(scratch.path().join("consumer-build/compile_commands.json"))
            .unwrap();
    assert!(commands.contains(flags), "{commands}");
    assert!(
        !commands.contains("-isystem"),
        "proxyso's headers must be checked with the plugin's warnings: {commands}"
    );
    let (r, _snapshots) = registry();
    r.load("pedantic", &lib.to_string_lossy(), b"").unwrap();
    assert_eq!(call(&r, "pedantic", None, "ok"), "OK");
}

#[test]
fn the_plugin_macro_refuses_duplicate_method_names_and_unknown_flags_at_compile_time() {
    let scratch = common::scratch_dir();
    let plugin = |flags: &str, methods: &str| {
        format!(
            "#include <proxyso.hpp>\n\
             struct P {{\n\
                 void a(std::string_view, proxyso::output &) const {{}}\n\
                 void b(std::string_view, proxyso::output &) const {{}}\n\
             }};\n\
             PROXYSO_PLUGIN_FLAGS(P, {flags}, \"p\", \"1\", {methods});\n"
        )
    };
    let compile = |name: &str, source: String| {
        let file = scratch.path().join(name);
        std::fs::write(&file, source).unwrap();
        Command::new(std::env::var("CXX").unwrap_or_else(|_| "g++".into()))
            .args(["-std=c++17", "-fsyntax-only", "-I"])
            .arg(repo().join("include"))
            .arg("-I")
            .arg(repo().join("sdk/cpp"))
            .arg(&file)
            .output()
            .unwrap()
    };
    let ok = compile(
        "ok.cpp",
        plugin(
            "PROXYSO_FLAG_SERIALIZE | PROXYSO_FLAG_KEEP_MAPPED",
            "PROXYSO_METHOD(P, a), PROXYSO_METHOD_NAMED(\"c\", P, a), PROXYSO_METHOD(P, b)",
        ),
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    for (name, flags, methods, expected) in [
        (
            "dup.cpp",
            "0",
            "PROXYSO_METHOD(P, a), PROXYSO_METHOD_NAMED(\"a\", P, b)",
            "two proxyso methods have the same name",
        ),
        (
            "empty.cpp",
            "0",
            "PROXYSO_METHOD_NAMED(\"\", P, a)",
            "every proxyso method needs a non-empty name",
        ),
        (
            "flags.cpp",
            "0x4u",
            "PROXYSO_METHOD(P, a)",
            "unknown flag bits",
        ),
    ] {
        let out = compile(name, plugin(flags, methods));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} compiled");
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
}
