//! Runs the built `proxyso-check` against real plugins (the examples, the proxy's fixtures and
//! two of its own) and checks its report and exit status.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// One run of the checker.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The verdict tag (`ok`, `warn`, `FAIL`, `--`) and detail of the check called `name`.
    fn verdict(&self, name: &str) -> (&str, &str) {
        self.stdout
            .lines()
            .find_map(|line| {
                let (tag, rest) = line.split_once(' ')?;
                let (check, detail) = rest.trim_start().split_once(' ')?;
                (["ok", "warn", "FAIL", "--"].contains(&tag) && check == name)
                    .then(|| (tag, detail.trim_start()))
            })
            .unwrap_or_else(|| panic!("no '{name}' check in:\n{}", self.stdout))
    }

    /// Asserts the check called `name` has verdict `tag` and a detail naming every one of
    /// `needles`.
    fn expect(&self, name: &str, tag: &str, needles: &[&str]) {
        let (found, detail) = self.verdict(name);
        assert_eq!(found, tag, "check '{name}':\n{}", self.stdout);
        for needle in needles {
            assert!(
                detail.contains(needle),
                "check '{name}' should name {needle:?}:\n{}",
                self.stdout
            );
        }
    }

    /// The value of the fact line `label` (printed under a check, with no verdict).
    fn fact(&self, label: &str) -> &str {
        self.stdout
            .lines()
            .filter(|line| line.starts_with("      "))
            .find_map(|line| {
                let (found, value) = line.trim_start().split_once(' ')?;
                (found == label).then(|| value.trim_start())
            })
            .unwrap_or_else(|| panic!("no '{label}' line in:\n{}", self.stdout))
    }

    /// The JSON report (the run must have had `--json`).
    fn json(&self) -> Value {
        assert_eq!(self.stdout.lines().count(), 1, "one line:\n{}", self.stdout);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }

    fn exits_with(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "exit status\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs the checker with `args`, its snapshots in a scratch directory that must be left empty.
fn check<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Run {
    let snapshots = common::scratch_dir();
    let output = Command::new(env!("CARGO_BIN_EXE_proxyso-check"))
        .args(args)
        .arg("--snapshot-dir")
        .arg(snapshots.path())
        .output()
        .expect("run proxyso-check");
    let left: Vec<_> = std::fs::read_dir(snapshots.path()).unwrap().collect();
    assert!(left.is_empty(), "snapshots left behind: {left:?}");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 report"),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the checker on `plugin` with `args` after it.
fn check_plugin(plugin: &Path, args: &[&str]) -> Run {
    let mut all = vec![plugin.as_os_str()];
    all.extend(args.iter().map(OsStr::new));
    check(all)
}

fn native(name: &str) -> PathBuf {
    common::plugins().native(name)
}

/// This crate's own fixture plugins (tests/fixtures), built once: `libcheck_odd.so`, and
/// `libcheck_needs_dep.so` with the library it needs deleted after linking.
fn own_plugins() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let src = here.join("tests/fixtures");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("check-plugins");
        std::fs::create_dir_all(&dir).unwrap();
        let cc = |out: &str, source: &str, extra: &[&str]| {
            let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
            let status = Command::new(&cc)
                .args(["-O2", "-fPIC", "-shared", "-Wall", "-Werror", "-I"])
                .arg(here.join("../include"))
                .arg("-o")
                .arg(dir.join(out))
                .arg(src.join(source))
                .args(extra)
                .status()
                .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
            assert!(status.success(), "{cc} {source} failed: {status}");
        };
        cc("libcheck_odd.so", "odd.c", &[]);
        cc("libcheck_crash.so", "crash.c", &[]);
        // C++ built with the README's C line: -fvisibility=hidden alone, no version script.
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".to_owned());
        let status = Command::new(&cxx)
            .args([
                "-std=c++17",
                "-O2",
                "-fPIC",
                "-shared",
                "-fvisibility=hidden",
                "-I",
            ])
            .arg(here.join("../include"))
            .arg("-o")
            .arg(dir.join("libcheck_cpp_exports.so"))
            .arg(src.join("cpp_exports.cpp"))
            .status()
            .unwrap_or_else(|e| panic!("cannot run {cxx}: {e}"));
        assert!(status.success(), "{cxx} cpp_exports.cpp failed: {status}");
        cc("libcheck_dep.so", "dep.c", &[]);
        let lib_dir = format!("-L{}", dir.display());
        cc(
            "libcheck_needs_dep.so",
            "needs_dep.c",
            &[&lib_dir, "-lcheck_dep"],
        );
        std::fs::remove_file(dir.join("libcheck_dep.so")).unwrap();
        dir
    })
}

#[test]
fn a_good_plugin_passes_every_check_and_shows_its_call() {
    let run = check_plugin(
        &common::plugins().example_v1(),
        &["--call", "--input-text", "hello"],
    );
    run.exits_with(0);
    for name in [
        "file",
        "link",
        "descriptor",
        "exports",
        "init",
        "signals",
        "call",
        "unload",
    ] {
        run.expect(name, "ok", &[]);
    }
    run.expect("descriptor", "ok", &["ABI version 1"]);
    assert_eq!(run.fact("name"), "example");
    assert_eq!(run.fact("version"), "1.0.0");
    assert_eq!(run.fact("methods"), "echo (default), version, len");
    assert_eq!(run.fact("flags"), "none");
    run.expect(
        "call",
        "ok",
        &["'echo' returned 5 bytes", "from the text \"hello\""],
    );
    assert_eq!(run.fact("output"), "\"hello\"");
    run.expect("unload", "ok", &["dlclose unloaded"]);
    // What the plugin logged through the host, in the report rather than on standard error.
    assert!(
        run.stdout
            .contains("log         plugin INFO: example 1.0.0 loaded with 0 bytes of config\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("plugin INFO: example 1.0.0 unloading"),
        "{}",
        run.stdout
    );
    assert!(!run.stderr.contains("loaded with"), "{}", run.stderr);
    assert!(
        run.stdout.ends_with("result: ok, all 8 checks passed\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_json_report_has_every_fact_for_scripts() {
    let run = check_plugin(
        &native("libexample_cpp_v1.so"),
        &["--json", "--call", "sum", "--input-text", "1,2,3"],
    );
    run.exits_with(0);
    let report = run.json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["abi_version"], 1);
    assert_eq!(report["name"], "example-cpp");
    assert_eq!(
        report["methods"],
        serde_json::json!(["echo", "version", "sum"])
    );
    assert_eq!(report["flags"]["serialize"], false);
    assert_eq!(report["unresolved_symbols"], serde_json::json!([]));
    let call = &report["call"];
    assert_eq!(call["method"], "sum");
    assert_eq!(
        call["output"],
        serde_json::json!({"encoding": "text", "data": "6", "truncated": false})
    );
    assert!(call["duration_ms"].as_f64().unwrap() >= 0.0);
    let first_log = &report["log"][0];
    assert_eq!(first_log["level"], "INFO", "{report}");
    assert_eq!(first_log["from_plugin"], true, "{report}");
    let statuses: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok"; 8]);
    assert_eq!(report["extra_export_count"], 0);
}

#[test]
fn descriptor_flags_are_decoded() {
    let run = check_plugin(&native("libfx_serialize.so"), &[]);
    run.exits_with(0);
    assert_eq!(run.fact("flags"), "serialize");

    let run = check_plugin(&native("libfx_pthread_key_flagged.so"), &["--json"]);
    run.exits_with(0);
    let report = run.json();
    assert_eq!(report["flags"]["keep_mapped"], true);
    assert_eq!(report["flags"]["serialize"], false);
    let unload = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "unload")
        .expect("an unload check");
    assert!(
        unload["detail"]
            .as_str()
            .unwrap()
            .contains("PROXYSO_FLAG_KEEP_MAPPED"),
        "{unload}"
    );
}

#[test]
fn an_unresolved_symbol_is_named() {
    let plugin = native("libfx_missing_symbol.so");
    let run = check_plugin(&plugin, &[]);
    run.exits_with(1);
    run.expect("file", "ok", &[]);
    run.expect(
        "link",
        "FAIL",
        &["unresolved symbol: proxyso_fixture_undefined_function"],
    );
    run.expect("descriptor", "--", &[]);
    assert!(run.stdout.contains("result: FAIL (link)"), "{}", run.stdout);

    let report = check_plugin(&plugin, &["--json"]).exits_with(1).json();
    assert_eq!(
        report["unresolved_symbols"][0]["symbol"],
        "proxyso_fixture_undefined_function"
    );
}

#[test]
fn a_missing_library_is_named() {
    let run = check_plugin(&own_plugins().join("libcheck_needs_dep.so"), &[]);
    run.exits_with(1);
    run.expect(
        "link",
        "FAIL",
        &[
            "needed libraries not found: libcheck_dep.so",
            "check_dep_value",
        ],
    );
}

#[test]
fn a_guarded_signal_handler_fails_the_load() {
    let run = check_plugin(&native("libfx_signal.so"), &["--call"]);
    run.exits_with(1);
    run.expect("init", "ok", &[]);
    run.expect("signals", "FAIL", &["SIGSEGV", "--allow-signal-handlers"]);
    run.expect("call", "--", &["the load failed"]);
    run.expect("unload", "--", &[]);
}

#[test]
fn allowed_signal_handlers_load_and_are_still_listed() {
    let plugin = native("libfx_signal.so");
    let run = check_plugin(&plugin, &["--allow-signal-handlers", "--call"]);
    run.exits_with(0);
    run.expect("signals", "warn", &["SIGSEGV", "kept mapped"]);
    assert_eq!(run.fact("output"), "\"signal\"");
    run.expect("unload", "ok", &["stays mapped on purpose"]);

    let report = check_plugin(&plugin, &["--allow-signal-handlers", "--json"])
        .exits_with(0)
        .json();
    assert_eq!(report["signal_handlers"], serde_json::json!(["SIGSEGV"]));
}

#[test]
fn a_handler_of_any_signal_fails_the_load() {
    // SIGUSR1: nothing the JVM itself uses, guarded all the same.
    let plugin = own_plugins().join("libcheck_odd.so");
    let run = check_plugin(&plugin, &["--config-text", "sigusr1"]);
    run.exits_with(1);
    run.expect(
        "signals",
        "FAIL",
        &["SIGUSR1", "refuses the load", "--allow-signal-handlers"],
    );
    // The same plugin without the handler passes: the config is what made it fail.
    check_plugin(&plugin, &[]).exits_with(0);
}

#[test]
fn a_failing_init_names_the_plugin_error() {
    let fixture = common::plugins().fixture();
    let run = check_plugin(&fixture, &["--config-text", "fail-init", "--call"]);
    run.exits_with(1);
    run.expect("descriptor", "ok", &["fixture 1"]);
    run.expect(
        "init",
        "FAIL",
        &[
            "failed with code 7",
            "init refused: fail-init",
            "the text \"fail-init\"",
        ],
    );
    run.expect("call", "--", &[]);

    // The same config from a file.
    let scratch = common::scratch_dir();
    let config = scratch.path().join("config.bin");
    std::fs::write(&config, "fail-init").unwrap();
    let config = config.to_str().unwrap();
    check_plugin(&fixture, &["--config", config])
        .exits_with(1)
        .expect("init", "FAIL", &["init refused: fail-init", "config.bin"]);

    check_plugin(&fixture, &["--config-text", "panic-init"])
        .exits_with(1)
        .expect("init", "FAIL", &["panicked", "init panicked on purpose"]);
    // Any other config is a tag, and init succeeds with it.
    check_plugin(&fixture, &["--config-text", "blue", "--call"])
        .exits_with(0)
        .expect("init", "ok", &["the text \"blue\""]);
}

#[test]
fn a_missing_path_is_named() {
    let run = check(["/nonexistent/dir/libmissing.so"]);
    run.exits_with(1);
    run.expect(
        "file",
        "FAIL",
        &[
            "'/nonexistent/dir/libmissing.so'",
            "cannot read the file",
            "No such file",
        ],
    );
    for later in ["link", "descriptor", "exports", "init", "signals", "unload"] {
        run.expect(later, "--", &[]);
    }
    assert!(
        run.stdout.contains("result: FAIL (file); 6 not run"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_file_that_is_not_a_shared_object_is_refused() {
    let scratch = common::scratch_dir();
    let text = scratch.path().join("notes.txt");
    std::fs::write(&text, "just some text\n").unwrap();
    check_plugin(&text, &[]).exits_with(1).expect(
        "file",
        "FAIL",
        &["notes.txt", "not an ELF file"],
    );

    let empty = scratch.path().join("empty.so");
    std::fs::write(&empty, "").unwrap();
    check_plugin(&empty, &[])
        .exits_with(1)
        .expect("file", "FAIL", &["empty.so", "empty"]);

    check_plugin(scratch.path(), &[])
        .exits_with(1)
        .expect("file", "FAIL", &["a directory"]);
}

#[test]
fn an_unknown_method_is_named_with_the_ones_there_are() {
    let run = check_plugin(&common::plugins().fixture(), &["--call", "nope"]);
    run.exits_with(1);
    run.expect("call", "FAIL", &["no method 'nope'", "tag, echo, fail"]);
    // Everything else was fine.
    run.expect("init", "ok", &[]);
    run.expect("unload", "ok", &[]);
    assert!(
        run.stdout.contains("result: FAIL (call)\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_failing_call_reports_the_plugin_error() {
    let fixture = common::plugins().fixture();
    check_plugin(&fixture, &["--call", "fail", "--input-text", "x"])
        .exits_with(1)
        .expect(
            "call",
            "FAIL",
            &["'fail' failed with code 42", "failed on purpose: x"],
        );
    let report = check_plugin(&fixture, &["--call", "panic", "--json"])
        .exits_with(1)
        .json();
    assert_eq!(report["call"]["error"]["panicked"], true);
    assert_eq!(report["call"]["output"], Value::Null);
}

#[test]
fn binary_output_is_shown_in_hex_and_long_output_is_cut() {
    let fixture = common::plugins().fixture();
    let run = check_plugin(&fixture, &["--call", "big", "--input-text", "1000"]);
    run.exits_with(0);
    run.expect("call", "ok", &["returned 1000 bytes"]);
    let output = run.fact("output");
    assert!(output.starts_with("hex 00 01 02 03"), "{output}");
    assert!(output.ends_with("(the first 64 of 1000 bytes)"), "{output}");

    let scratch = common::scratch_dir();
    let input = scratch.path().join("input.txt");
    std::fs::write(&input, "a".repeat(300)).unwrap();
    let run = check_plugin(
        &fixture,
        &["--call", "echo", "--input", input.to_str().unwrap()],
    );
    run.exits_with(0);
    assert_eq!(
        run.fact("output"),
        format!(
            "\"{}\"... (the first 200 characters of 300 bytes)",
            "a".repeat(200)
        )
    );
}

#[test]
fn a_library_that_stays_loaded_after_dlclose_fails_unload() {
    check_plugin(&native("libfx_gnu_unique_pinned.so"), &[])
        .exits_with(1)
        .expect(
            "unload",
            "FAIL",
            &["still loaded after dlclose", "STB_GNU_UNIQUE"],
        );
    // Built with -fno-gnu-unique, the same source unloads.
    check_plugin(&native("libfx_gnu_unique.so"), &[])
        .exits_with(0)
        .expect("unload", "ok", &["dlclose unloaded"]);
}

/// The digit table of `std::to_string`, as g++ 12's libstdc++ instantiates it.
const DIGITS: &str = "std::__detail::__to_chars_10_impl<unsigned long>(char*, unsigned int, \
                      unsigned long)::__digits";

#[test]
fn a_gnu_unique_symbol_is_named_demangled_with_the_flag_that_fixes_it() {
    let plugin = own_plugins().join("libcheck_cpp_exports.so");
    let run = check_plugin(&plugin, &["--call", "--input-text", "12345"]);
    run.exits_with(1);
    run.expect("call", "ok", &["returned 1 byte"]);
    run.expect(
        "unload",
        "FAIL",
        &[
            "still loaded after dlclose",
            &format!("its STB_GNU_UNIQUE symbol {DIGITS} makes glibc keep it loaded"),
            "build with -fno-gnu-unique",
        ],
    );
    assert!(
        run.fact("unique").contains("build with -fno-gnu-unique"),
        "{}",
        run.stdout
    );

    let report = check_plugin(&plugin, &["--json"]).exits_with(1).json();
    assert_eq!(report["unique_symbols"], serde_json::json!([DIGITS]));
}

#[test]
fn extra_exports_are_a_warning_with_their_count_names_and_the_version_script() {
    let plugin = own_plugins().join("libcheck_cpp_exports.so");
    let run = check_plugin(&plugin, &[]);
    // Count the variants of a destructor once: ~vector() (C1 and C2), _M_realloc_insert, the
    // digit table.
    run.expect(
        "exports",
        "warn",
        &[
            "3 symbols besides proxyso_plugin: ",
            "std::vector<std::__cxx11::basic_string<char",
            ">::~vector()",
            DIGITS,
        ],
    );
    assert_eq!(
        run.fact("fix"),
        "link with -Wl,--version-script=exports.map, exports.map holding: \
         { global: proxyso_plugin; local: *; };"
    );
    let report = check_plugin(&plugin, &["--json"]).json();
    assert_eq!(report["extra_export_count"], 3);
    assert_eq!(report["extra_exports"].as_array().unwrap().len(), 3);
    let exports = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "exports")
        .expect("an exports check");
    assert_eq!(exports["status"], "warn");

    // The C fixture exports one function besides the descriptor; a warning does not fail.
    let run = check_plugin(&native("libfx_clash_a.so"), &[]);
    run.exits_with(0);
    run.expect(
        "exports",
        "warn",
        &["1 symbol besides proxyso_plugin: fx_clash_tag"],
    );
    assert!(
        run.stdout
            .ends_with("result: ok, all 7 checks passed (warning: exports)\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn what_a_plugin_prints_never_reaches_the_report() {
    let run = check_plugin(
        &own_plugins().join("libcheck_odd.so"),
        &["--config-text", "print", "--json"],
    );
    run.exits_with(0);
    assert_eq!(run.json()["name"], "check-odd");
    assert!(run.stderr.contains("noise from init"), "{}", run.stderr);
}

#[test]
fn usage_errors_exit_with_2() {
    let plugin = common::plugins().fixture();
    let plugin = plugin.to_str().unwrap();
    let no_args: [&str; 0] = [];
    check(no_args).exits_with(2);
    let run = check([plugin, "--input-text", "x"]);
    run.exits_with(2);
    assert!(run.stderr.contains("--call"), "{}", run.stderr);
    check([plugin, "--config", "a", "--config-text", "b"]).exits_with(2);
    let run = check([plugin, "--config", "/nonexistent/config.bin"]);
    run.exits_with(2);
    assert!(
        run.stderr
            .contains("cannot read the config file '/nonexistent/config.bin'"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn a_cpp_exception_escaping_the_plugin_is_a_fail_line_not_a_crash() {
    let throws = native("libfx_throws.so");
    let run = check_plugin(&throws, &["--config-text", "init-throws", "--call"]);
    run.exits_with(1);
    run.expect(
        "init",
        "FAIL",
        &[
            "init of plugin fx-throws 1 panicked: C++ exception: init boom",
            "the text \"init-throws\"",
        ],
    );
    run.expect("call", "--", &[]);
    run.expect("unload", "--", &[]);

    let run = check_plugin(&throws, &["--call", "throw", "--input-text", "x"]);
    run.exits_with(1);
    run.expect("init", "ok", &[]);
    run.expect("call", "FAIL", &["'throw' panicked: C++ exception: boom"]);
    // The version that threw still unloads completely.
    run.expect("unload", "ok", &["dlclose unloaded the library"]);

    // One that escapes destroy fails the unload check; the library is closed all the same.
    let run = check_plugin(&throws, &["--config-text", "destroy-throws"]);
    run.exits_with(1);
    run.expect("init", "ok", &[]);
    run.expect(
        "unload",
        "FAIL",
        &["destroy of plugin fx-throws 1 failed: C++ exception: destroy boom"],
    );

    let report = check_plugin(&throws, &["--call", "throw-int", "--json"])
        .exits_with(1)
        .json();
    assert_eq!(report["call"]["error"]["panicked"], true);
    assert_eq!(report["call"]["error"]["code"], 0);
    assert_eq!(
        report["call"]["error"]["message"],
        "C++ exception: unknown C++ exception (of type int)"
    );
}

/// The statuses of the JSON report's checks, by name.
fn statuses(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_method_that_aborts_is_a_fail_line_after_the_checks_that_passed() {
    let crash = own_plugins().join("libcheck_crash.so");
    let run = check_plugin(&crash, &["--call", "abort"]);
    run.exits_with(1);
    for name in ["file", "link", "descriptor", "exports", "init", "signals"] {
        run.expect(name, "ok", &[]);
    }
    assert_eq!(run.fact("methods"), "ok (default), abort, hang");
    run.expect(
        "call",
        "FAIL",
        &["the call of 'abort' was killed by SIGABRT (signal 6"],
    );
    run.expect("unload", "--", &[]);
    assert!(
        run.stdout.ends_with("result: FAIL (call); 1 not run\n"),
        "{}",
        run.stdout
    );

    let report = check_plugin(&crash, &["--call", "abort", "--json"])
        .exits_with(1)
        .json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["died"]["check"], "call");
    assert_eq!(report["died"]["signal"], "SIGABRT");
    assert_eq!(report["name"], "check-crash");
    let expected: Vec<(String, String)> = [
        ("file", "ok"),
        ("link", "ok"),
        ("descriptor", "ok"),
        ("exports", "ok"),
        ("init", "ok"),
        ("signals", "ok"),
        ("call", "fail"),
        ("unload", "skipped"),
    ]
    .iter()
    .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
    .collect();
    assert_eq!(statuses(&report), expected);
}

#[test]
fn an_init_that_segfaults_is_a_fail_line_after_the_checks_that_passed() {
    let crash = own_plugins().join("libcheck_crash.so");
    let run = check_plugin(&crash, &["--config-text", "segv", "--call"]);
    run.exits_with(1);
    for name in ["file", "link", "exports"] {
        run.expect(name, "ok", &[]);
    }
    run.expect("descriptor", "ok", &["ABI version 1", "check-crash 1"]);
    run.expect(
        "init",
        "FAIL",
        &["init of plugin check-crash 1 was killed by SIGSEGV (signal 11"],
    );
    for name in ["signals", "call", "unload"] {
        run.expect(name, "--", &[]);
    }

    let report = check_plugin(&crash, &["--json", "--config-text", "segv"])
        .exits_with(1)
        .json();
    assert_eq!(report["died"]["check"], "init");
    assert_eq!(report["died"]["signal"], "SIGSEGV");
    let expected: Vec<(String, String)> = [
        ("file", "ok"),
        ("link", "ok"),
        ("descriptor", "ok"),
        ("exports", "ok"),
        ("init", "fail"),
        ("signals", "skipped"),
        ("unload", "skipped"),
    ]
    .iter()
    .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
    .collect();
    assert_eq!(statuses(&report), expected);

    // A constructor that crashes fails the link (dlopen runs it).
    let run = check_plugin(&native("libfx_ctor_segv.so"), &[]);
    run.exits_with(1);
    run.expect("file", "ok", &[]);
    run.expect("link", "FAIL", &["dlopen", "SIGSEGV"]);
    run.expect("descriptor", "--", &[]);
}

#[test]
fn plugin_code_that_runs_past_the_timeout_is_killed_and_fails_its_check() {
    let crash = own_plugins().join("libcheck_crash.so");
    let run = check_plugin(&crash, &["--call", "hang", "--timeout", "1"]);
    run.exits_with(1);
    run.expect("init", "ok", &[]);
    run.expect(
        "call",
        "FAIL",
        &["the call of 'hang' was still running after 1000 ms and was killed"],
    );
    run.expect("unload", "--", &[]);
}

#[test]
fn a_destroy_that_segfaults_fails_unload_after_the_call() {
    let crash = own_plugins().join("libcheck_crash.so");
    let run = check_plugin(&crash, &["--config-text", "destroy-segv", "--call"]);
    run.exits_with(1);
    run.expect("call", "ok", &["'ok' returned 4 bytes"]);
    assert_eq!(run.fact("output"), "\"fine\"");
    run.expect("unload", "FAIL", &["destroy", "SIGSEGV"]);
}

#[test]
fn options_work_before_and_after_the_plugin() {
    let plugin = common::plugins().example_v1();
    for args in [
        vec![
            plugin.as_os_str(),
            OsStr::new("--json"),
            OsStr::new("--call"),
            OsStr::new("len"),
            OsStr::new("--input-text"),
            OsStr::new("abc"),
        ],
        vec![
            OsStr::new("--json"),
            OsStr::new("--call"),
            OsStr::new("len"),
            OsStr::new("--input-text"),
            OsStr::new("abc"),
            plugin.as_os_str(),
        ],
        vec![
            OsStr::new("--input-text"),
            OsStr::new("abc"),
            OsStr::new("--json"),
            plugin.as_os_str(),
            OsStr::new("--call=len"),
        ],
    ] {
        let report = check(&args).exits_with(0).json();
        assert_eq!(report["call"]["method"], "len", "{args:?}");
        assert_eq!(report["call"]["input_len"], 3, "{args:?}");
    }
    // `--call PLUGIN.so`: the path is the plugin, the default method is called.
    let report = check([
        OsStr::new("--json"),
        OsStr::new("--call"),
        plugin.as_os_str(),
    ])
    .exits_with(0)
    .json();
    assert_eq!(report["call"]["method"], "echo");
}

/// The JSON report of `--isolated --call METHOD` on the crash fixture, and the run.
fn isolated_crash(method: &str, extra: &[&str]) -> (Run, Value) {
    let crash = native("libfx_crash.so");
    let mut args = vec!["--isolated", "--call", method];
    args.extend(extra);
    let text = check_plugin(&crash, &args);
    args.push("--json");
    let json = check_plugin(&crash, &args).json();
    (text, json)
}

/// True while process `pid` exists and is not a zombie.
fn alive(pid: i64) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    !stat.is_empty() && !state.starts_with('Z')
}

#[test]
fn an_isolated_call_answers_from_a_worker_process() {
    let (run, report) = isolated_crash("pid", &[]);
    run.exits_with(0);
    for name in ["file", "link", "descriptor", "init", "signals", "unload"] {
        run.expect(name, "ok", &[]);
    }
    run.expect(
        "call",
        "ok",
        &["'pid' returned", "in its worker process (pid "],
    );
    assert!(
        run.fact("worker").ends_with("/proxyso-worker"),
        "{}",
        run.stdout
    );
    let call = &report["call"];
    assert_eq!(call["isolated"], true, "{report}");
    assert!(call["crash"].is_null(), "{report}");
    // The plugin answers its own pid: the worker's, which the report names.
    let answered: i64 = call["output"]["data"].as_str().unwrap().parse().unwrap();
    assert_eq!(call["worker_pid"].as_i64(), Some(answered), "{report}");
    assert!(
        report["worker"]
            .as_str()
            .unwrap()
            .ends_with("proxyso-worker"),
        "{report}"
    );
    // The worker ended with its call: none is left behind.
    assert!(!alive(answered), "worker {answered} outlived the checker");

    // A good plugin passes every check, its call made in a worker.
    let run = check_plugin(
        &common::plugins().example_v1(),
        &["--isolated", "--call", "--input-text", "hello"],
    );
    run.exits_with(0);
    run.expect(
        "call",
        "ok",
        &["'echo' returned 5 bytes in", "worker process"],
    );
    assert_eq!(run.fact("output"), "\"hello\"");
    // The plugin logs from both loads, the worker's marked as such.
    for line in [
        "log         plugin INFO: example 1.0.0 loaded with 0 bytes of config\n",
        "log         plugin (worker) INFO: example 1.0.0 loaded with 0 bytes of config\n",
        "log         plugin (worker) INFO: example 1.0.0 unloading\n",
    ] {
        assert!(run.stdout.contains(line), "{line}:\n{}", run.stdout);
    }
    assert!(
        run.stdout.ends_with("result: ok, all 8 checks passed\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_isolated_call_that_segfaults_is_a_fail_line_naming_the_signal_and_output() {
    let (run, report) = isolated_crash("segv", &[]);
    run.exits_with(1);
    // The load in the checker's child made no call: every check before it passed.
    for name in ["file", "link", "descriptor", "init", "signals", "unload"] {
        run.expect(name, "ok", &[]);
    }
    run.expect(
        "call",
        "FAIL",
        &[
            "'segv' crashed its worker process",
            "was killed by SIGSEGV (signal 11)",
            "PluginCrashedException",
        ],
    );
    assert_eq!(
        run.fact("printed"),
        "fx-crash: about to write through a null pointer"
    );
    assert!(
        report["died"].is_null(),
        "the checker's child lives: {report}"
    );
    let crash = &report["call"]["crash"];
    assert_eq!(crash["signal"], "SIGSEGV", "{report}");
    assert_eq!(crash["signal_number"], 11, "{report}");
    assert_eq!(crash["exit_status"], -1, "{report}");
    assert_eq!(crash["timed_out"], false, "{report}");
    assert!(
        crash["output"]
            .as_str()
            .unwrap()
            .contains("about to write through a null pointer"),
        "{report}"
    );
    assert_eq!(crash["pid"], report["call"]["worker_pid"], "{report}");
    assert!(report["call"]["error"].is_null(), "{report}");
}

#[test]
fn an_isolated_call_that_exits_names_the_exit_status() {
    let (run, report) = isolated_crash("exit", &[]);
    run.exits_with(1);
    run.expect(
        "call",
        "FAIL",
        &["'exit' ended its worker process", "exited with code 3"],
    );
    let crash = &report["call"]["crash"];
    assert!(crash["signal"].is_null(), "{report}");
    assert_eq!(crash["signal_number"], 0, "{report}");
    assert_eq!(crash["exit_status"], 3, "{report}");
}

#[test]
fn an_isolated_call_past_the_timeout_kills_its_worker() {
    let start = std::time::Instant::now();
    let (run, report) = isolated_crash("spin", &["--timeout", "1"]);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    run.exits_with(1);
    run.expect("init", "ok", &[]);
    run.expect(
        "call",
        "FAIL",
        &[
            "'spin' ran longer than the timeout of 1.00 s",
            "was killed",
            "PluginTimeoutException",
        ],
    );
    let crash = &report["call"]["crash"];
    assert_eq!(crash["timed_out"], true, "{report}");
    assert_eq!(crash["signal"], "SIGKILL", "{report}");
    assert!(
        crash["killed_for"]
            .as_str()
            .unwrap()
            .contains("ran longer than its timeout of 1000 ms"),
        "{report}"
    );
    let pid = crash["pid"].as_i64().unwrap();
    assert!(pid > 0 && !alive(pid), "{report}");
}

#[test]
fn isolated_needs_a_worker_and_a_call() {
    let crash = native("libfx_crash.so");
    let crash = crash.to_str().unwrap();
    // A checker with no worker beside it.
    let dir = common::scratch_dir();
    let lone = dir.path().join("proxyso-check");
    std::fs::copy(env!("CARGO_BIN_EXE_proxyso-check"), &lone).unwrap();
    let output = Command::new(&lone)
        .args([crash, "--isolated", "--call", "echo"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--isolated needs the proxyso-worker executable")
            && stderr.contains(&*dir.path().join("proxyso-worker").to_string_lossy())
            && stderr.contains("--worker PATH"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
    // The same checker, the worker named.
    let worker = common::plugins().worker();
    let output = Command::new(&lone)
        .args([crash, "--isolated", "--call", "echo", "--input-text", "x"])
        .arg("--worker")
        .arg(&worker)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("in its worker process"));

    let run = check([
        crash,
        "--isolated",
        "--call",
        "--worker",
        "/nonexistent/worker",
    ]);
    run.exits_with(2);
    assert!(
        run.stderr
            .contains("--worker: cannot open /nonexistent/worker"),
        "{}",
        run.stderr
    );
    let run = check([crash, "--isolated"]);
    run.exits_with(2);
    assert!(run.stderr.contains("--call"), "{}", run.stderr);
    check([crash, "--worker", "/bin/true", "--call"]).exits_with(2);
}
