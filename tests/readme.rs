//! The docs hold: the plugins doc's C example builds, loads and answers as it says, and every
//! relative link in README.md and docs/ leads to a file that exists.

mod common;

use std::path::Path;
use std::process::Command;

use common::{call, registry};

#[test]
fn the_docs_c_plugin_builds_and_serves() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(repo.join("docs/plugins.md")).unwrap();
    let section = doc
        .split("### C\n")
        .nth(1)
        .expect("docs/plugins.md has a '### C' section");
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
    assert!(status.success(), "the docs' C example does not compile");
    let (r, _snapshots) = registry();
    r.load("echo", &lib.to_string_lossy(), b"").unwrap();
    assert_eq!(call(&r, "echo", None, "hi"), "hi");
    assert_eq!(r.info("echo").unwrap().name, "echo");
}

/// The targets of the Markdown links `[text](target)` in `text`.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            targets.push(rest[..end].trim().to_owned());
            rest = &rest[end..];
        }
    }
    targets
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![repo.join("README.md")];
    for entry in std::fs::read_dir(repo.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let mut checked = 0;
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for target in link_targets(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
                || target.starts_with('#')
            {
                continue;
            }
            let path = target.split('#').next().unwrap_or_default();
            checked += 1;
            if !file.parent().unwrap().join(path).exists() {
                broken.push(format!("{}: {target}", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "links to nothing: {broken:#?}");
    assert!(
        checked >= 10,
        "only {checked} relative links found: is the parser broken?"
    );
    assert!(
        std::fs::read_to_string(repo.join("README.md"))
            .unwrap()
            .lines()
            .count()
            <= 250,
        "README.md is the front page: 250 lines at most"
    );
}

#[test]
fn the_link_parser_finds_targets() {
    assert_eq!(
        link_targets("see [a](docs/a.md) and [`b`](../b.rs#x), not [c] (d)"),
        ["docs/a.md", "../b.rs#x"]
    );
}
