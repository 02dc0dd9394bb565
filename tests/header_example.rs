//! include/proxyso.h documents itself: its top comment's example plugin builds with the
//! command it gives (warnings as errors) and serves through the host as the comment says, and
//! every public macro, type, field and function of the header has a `/** ... */` comment.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{DRAIN, call, mapped, registry};
use proxyso_core::{Error, LoadError};

fn header() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/proxyso.h");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The header's top comment (everything before its first `*/`).
fn top_comment(header: &str) -> &str {
    header
        .split_once("*/")
        .expect("the header opens with a comment")
        .0
}

/// The comment's lines without their ` * ` prefix.
fn comment_lines(comment: &str) -> impl Iterator<Item = &str> {
    comment.lines().map(|line| {
        let line = line.strip_prefix(" *").unwrap_or(line);
        line.strip_prefix(' ').unwrap_or(line)
    })
}

/// The code between the top comment's ```` ```c ```` and ```` ``` ```` fences; there must be
/// exactly one such block.
fn example_code(header: &str) -> String {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in comment_lines(top_comment(header)) {
        match (&mut current, line.trim_end()) {
            (None, "```c") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap().join("\n") + "\n"),
            (Some(code), _) => code.push(line),
            (None, _) => {}
        }
    }
    assert!(
        current.is_none(),
        "the example's ```c fence is never closed"
    );
    assert_eq!(
        blocks.len(),
        1,
        "the top comment must hold exactly one ```c example"
    );
    let code = blocks.pop().unwrap();
    assert!(code.contains("PROXYSO_DEFINE_PLUGIN"), "{code}");
    code
}

/// The build command the comment gives, after "Build it as", split into words.
fn build_command(header: &str) -> Vec<String> {
    let mut lines = comment_lines(top_comment(header)).skip_while(|l| !l.contains("Build it as"));
    lines
        .find(|l| l.trim_start().starts_with("cc "))
        .expect("the top comment gives a `cc ...` command after \"Build it as\"")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_header_example_builds_with_its_command_and_serves_as_documented() {
    let header = header();
    let code = example_code(&header);
    let command = build_command(&header);
    assert!(
        command.ends_with(&["-o".into(), "libgreeter.so".into(), "greeter.c".into()])
            && command.windows(2).any(|w| w == ["-I", "include"]),
        "the command builds greeter.c into libgreeter.so against include/: {command:?}"
    );

    // The command runs where it says: greeter.c next to include/proxyso.h.
    let dir = common::scratch_dir();
    std::fs::create_dir(dir.path().join("include")).unwrap();
    std::fs::write(dir.path().join("include/proxyso.h"), &header).unwrap();
    std::fs::write(dir.path().join("greeter.c"), &code).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| command[0].clone());
    let out = Command::new(&cc)
        .args(&command[1..])
        .args(["-Wall", "-Wextra", "-Wpedantic", "-Werror"])
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(
        out.status.success(),
        "the header's example does not build with {command:?} -Wall -Wextra -Wpedantic -Werror:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lib = dir.path().join("libgreeter.so");

    let nm = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .unwrap();
    assert!(nm.status.success(), "nm failed on {}", lib.display());
    let exports: Vec<String> = String::from_utf8(nm.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .collect();
    assert_eq!(
        exports,
        ["proxyso_plugin"],
        "the example exports only its descriptor"
    );

    let (r, _snapshots) = registry();
    let path = lib.to_string_lossy();

    // init refuses an empty configuration with its code and message.
    let err = r.load("greeter", &path, b"").unwrap_err();
    match &err {
        Error::Load {
            cause: LoadError::Init { code, message, .. },
            ..
        } => assert_eq!(
            (*code, message.as_str()),
            (10, "the configuration must be a greeting")
        ),
        other => panic!("expected an init failure, got {other}"),
    }
    assert!(r.info("greeter").is_none());

    r.load("greeter", &path, b"Hello").unwrap();
    let info = r.info("greeter").unwrap();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("greeter", "1.0.0")
    );
    assert_eq!(info.methods, ["greet", "upper"]);
    assert!(!info.serialized);

    assert_eq!(call(&r, "greeter", None, "world"), "Hello, world");
    assert_eq!(call(&r, "greeter", Some("upper"), "abc-xyZ 1"), "ABC-XYZ 1");
    // Inputs far beyond any first output buffer: both ways of growing it.
    let big = "ab".repeat(1 << 19);
    assert_eq!(
        call(&r, "greeter", None, &big),
        format!("Hello, {big}"),
        "greet grows the output through proxyso_output_write"
    );
    assert_eq!(
        call(&r, "greeter", Some("upper"), &big),
        "AB".repeat(1 << 19),
        "upper grows the output through reserve"
    );

    let mut out = Vec::new();
    let err = r.call("greeter", Some("upper"), b"", &mut out).unwrap_err();
    match &err {
        Error::Plugin {
            code,
            message,
            panicked,
            ..
        } => assert_eq!(
            (*code, message.as_str(), *panicked),
            (2, "upper: the input is empty", false)
        ),
        other => panic!("expected a plugin error, got {other}"),
    }
    assert_eq!(call(&r, "greeter", None, "again"), "Hello, again");

    let snapshot = info.snapshot_path;
    assert!(r.unload("greeter").unwrap());
    assert!(r.await_retired("greeter", DRAIN));
    assert!(!mapped(&snapshot), "the example unloads completely");
}

/// What [`undocumented`] found: the items it checked, and those without a doc comment.
#[derive(Debug, Default)]
struct Coverage {
    checked: Vec<String>,
    missing: Vec<String>,
}

/// Checks that every public item of a C header has a `/** ... */` comment right above it
/// (preprocessor conditionals in between are fine): each `#define` of a macro (but the include
/// guard, and only its first definition), each `typedef`, each `static inline` function, and
/// each field of a struct.
fn undocumented(header: &str) -> Coverage {
    let lines: Vec<&str> = header.lines().collect();
    let mut coverage = Coverage::default();
    let mut defined = BTreeSet::new();
    let mut in_comment = false;
    let mut in_struct = false;
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if in_comment {
            in_comment = !line.contains("*/");
            continue;
        }
        if trimmed.starts_with("/*") {
            in_comment = !line.contains("*/");
            continue;
        }
        let item = if let Some(rest) = line.strip_prefix("#define ") {
            let name = rest.split(['(', ' ']).next().unwrap_or_default();
            (name != "PROXYSO_H" && defined.insert(name.to_owned())).then_some(line)
        } else if line.starts_with("typedef ") || line.starts_with("static inline ") {
            in_struct = line.starts_with("typedef struct") && line.ends_with('{');
            Some(line)
        } else if in_struct && line.starts_with('}') {
            in_struct = false;
            None
        } else if in_struct
            && line.starts_with("    ")
            && !line.starts_with("     ")
            && !trimmed.is_empty()
        {
            Some(line)
        } else {
            None
        };
        let Some(item) = item else { continue };
        coverage.checked.push(item.trim().to_owned());
        if !has_doc_comment(&lines[..i]) {
            coverage
                .missing
                .push(format!("line {}: {}", i + 1, item.trim()));
        }
    }
    coverage
}

/// Whether the lines above an item end with a `/** ... */` comment, skipping `#if`, `#ifdef`,
/// `#ifndef`, `#else` and `#endif` lines.
fn has_doc_comment(above: &[&str]) -> bool {
    let mut rest = above
        .iter()
        .rev()
        .map(|l| l.trim())
        .skip_while(|l| ["#if", "#else", "#endif"].iter().any(|p| l.starts_with(p)));
    let Some(last) = rest.next() else {
        return false;
    };
    if !last.ends_with("*/") {
        return false;
    }
    if last.starts_with("/*") {
        return last.starts_with("/**");
    }
    rest.find(|l| l.starts_with("/*"))
        .is_some_and(|opener| opener.starts_with("/**"))
}

#[test]
fn every_public_item_of_the_header_has_a_doc_comment() {
    let coverage = undocumented(&header());
    assert!(
        coverage.missing.is_empty(),
        "include/proxyso.h: items without a /** ... */ comment:\n{}",
        coverage.missing.join("\n")
    );
    // The checker must have seen the header's items, not nothing.
    for expected in [
        "#define PROXYSO_ABI_VERSION 1u",
        "#define PROXYSO_LOG_DEBUG 4",
        "typedef int32_t proxyso_status;",
        "typedef struct proxyso_descriptor {",
        "const proxyso_method *methods;",
        "void *host_data;",
        "#define PROXYSO_DEFINE_PLUGIN extern \"C\" PROXYSO_EXPORT const proxyso_descriptor proxyso_plugin",
    ] {
        assert!(
            coverage.checked.iter().any(|c| c == expected),
            "the checker did not see {expected:?}; it saw {:#?}",
            coverage.checked
        );
    }
    assert!(
        coverage
            .checked
            .iter()
            .any(|c| c.starts_with("static inline proxyso_status proxyso_fail(")),
        "{:#?}",
        coverage.checked
    );
}

#[test]
fn the_doc_comment_checker_finds_what_is_missing() {
    let header = "\
/* A plain comment is not a doc comment. */
#define PROXYSO_PLAIN 1
/** Documented. */
#define PROXYSO_DOCUMENTED 2
#define PROXYSO_BARE 3
/**
 * Documented, over two lines and a conditional.
 */
#ifdef __cplusplus
#define PROXYSO_BOTH 4
#else
#define PROXYSO_BOTH 5
#endif
/** A struct. */
typedef struct s {
    /** A field. */
    int documented;
    int bare;
    void (*f)(int a,
              int b);
} s;
static inline int bare_function(void) { return 0; }
";
    let coverage = undocumented(header);
    assert_eq!(
        coverage.missing,
        [
            "line 2: #define PROXYSO_PLAIN 1",
            "line 5: #define PROXYSO_BARE 3",
            "line 18: int bare;",
            "line 19: void (*f)(int a,",
            "line 22: static inline int bare_function(void) { return 0; }",
        ]
    );
    assert_eq!(coverage.checked.len(), 9, "{:#?}", coverage.checked);
}
