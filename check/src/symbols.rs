//! Every unresolved symbol and missing library, as `ldd -r` lists them.
//!
//! `dlopen(RTLD_NOW)` stops at the first unresolved symbol and names only that one. The dynamic
//! loader's trace mode resolves everything and reports each failure, without running any of the
//! plugin's code (no constructor runs in trace mode): the system's `ld.so`, run as a child
//! process with `LD_TRACE_LOADED_OBJECTS=1 LD_WARN=yes LD_BIND_NOW=yes` on the plugin, prints a
//! line per needed library (`libfoo.so => not found` for a missing one) and an
//! `undefined symbol: NAME\t(PATH)` line per unresolved symbol.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

/// A symbol the dynamic loader could not resolve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unresolved {
    /// The symbol's name.
    pub symbol: String,
    /// The object that needs it: the plugin or one of its libraries.
    pub object: String,
}

/// What the loader's trace found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Trace {
    /// Symbols no loaded object defines.
    pub unresolved: Vec<Unresolved>,
    /// Needed libraries that were not found.
    pub missing_libraries: Vec<String>,
    /// Symbol versions no library provides, as the loader words them.
    pub missing_versions: Vec<String>,
}

impl Trace {
    /// True when the trace found nothing wrong.
    pub fn is_clean(&self) -> bool {
        self.unresolved.is_empty()
            && self.missing_libraries.is_empty()
            && self.missing_versions.is_empty()
    }
}

/// Runs the system's dynamic loader in trace mode on `plugin`; an error says why no trace could
/// be had (no loader found, or the loader refused the file).
pub fn trace(plugin: &Path) -> Result<Trace, String> {
    // ld.so takes an argument starting with '-' for an option and has no "--".
    let plugin = std::path::absolute(plugin)
        .map_err(|e| format!("cannot make '{}' absolute: {e}", plugin.display()))?;
    let loader = find_loader(&plugin)?;
    let output = Command::new(&loader)
        .arg(&plugin)
        .env("LD_TRACE_LOADED_OBJECTS", "1")
        .env("LD_WARN", "yes")
        .env("LD_BIND_NOW", "yes")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run the dynamic loader {}: {e}", loader.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // "error while loading shared libraries: ...": the loader could not load it at all.
        let why = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(format!(
            "the dynamic loader {} {}: {why}",
            loader.display(),
            output.status
        ));
    }
    // Library lines go to standard output, symbol warnings to standard error.
    Ok(parse(&format!("{stdout}\n{stderr}")))
}

/// Reads the trace's lines; every other line (a library found) is ignored.
pub fn parse(text: &str) -> Trace {
    let mut trace = Trace::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("undefined symbol: ") {
            // "NAME\t(PATH)"; a versioned symbol reads "NAME, version V\t(PATH)".
            let (symbol, object) = match rest.split_once('\t') {
                Some((symbol, object)) => (symbol, object),
                None => (rest, ""),
            };
            let object = object.trim();
            let object = object
                .strip_prefix('(')
                .and_then(|o| o.strip_suffix(')'))
                .unwrap_or(object);
            trace.unresolved.push(Unresolved {
                symbol: symbol.trim().to_owned(),
                object: object.to_owned(),
            });
        } else if let Some(library) = line.strip_suffix("=> not found") {
            trace.missing_libraries.push(library.trim().to_owned());
        } else if line.contains("version `") && line.contains("not found") {
            trace.missing_versions.push(line.to_owned());
        }
    }
    trace
}

/// The dynamic loader this process itself runs under (its `PT_INTERP`), or else the first of
/// the `ldd` script's candidates that accepts the plugin, as `ldd` picks one.
fn find_loader(plugin: &Path) -> Result<PathBuf, String> {
    if let Some(loader) = interpreter(Path::new("/proc/self/exe")).filter(|p| p.is_file()) {
        return Ok(loader);
    }
    let ldd = ldd_script().ok_or(
        "no dynamic loader found: this program has no PT_INTERP and no ldd script is on PATH",
    )?;
    let script = fs::read_to_string(&ldd).map_err(|e| {
        format!(
            "no dynamic loader found: cannot read {}: {e}",
            ldd.display()
        )
    })?;
    rtld_list(&script)
        .into_iter()
        .filter(|rtld| rtld.is_file())
        .find(|rtld| {
            // `ld.so --verify FILE` exits 0 for a dynamic object it can load (what ldd asks).
            Command::new(rtld)
                .arg("--verify")
                .arg(plugin)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .ok_or_else(|| {
            format!(
                "no dynamic loader found: none of the candidates in {} accepts the file",
                ldd.display()
            )
        })
}

/// The `ldd` script on `PATH`.
fn ldd_script() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("ldd"))
        .find(|p| p.is_file())
}

/// The loaders named by the `ldd` script's `RTLDLIST="..."` line.
fn rtld_list(script: &str) -> Vec<PathBuf> {
    script
        .lines()
        .find_map(|l| l.trim().strip_prefix("RTLDLIST="))
        .map(|list| {
            list.trim_matches('"')
                .split_whitespace()
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The program interpreter (`PT_INTERP`) named by a 64-bit little-endian ELF file, the only
/// kind this checker is built as on the machines the proxy supports.
fn interpreter(exe: &Path) -> Option<PathBuf> {
    const PT_INTERP: u32 = 3;
    let bytes = fs::read(exe).ok()?;
    // e_ident: magic, ELFCLASS64, ELFDATA2LSB.
    if bytes.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| {
        let v = u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?);
        usize::try_from(v).ok()
    };
    let phoff = u64_at(0x20)?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    (0..phnum).find_map(|i| {
        let header = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(header)? != PT_INTERP {
            return None;
        }
        let offset = u64_at(header + 0x08)?;
        let size = u64_at(header + 0x20)?;
        let raw = bytes.get(offset..offset.checked_add(size)?)?;
        // The path is NUL-terminated inside the segment.
        let raw = raw.split(|&b| b == 0).next()?;
        Some(PathBuf::from(std::str::from_utf8(raw).ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_symbols_libraries_and_versions() {
        let text = "\tlinux-vdso.so.1 (0x00007f84f3d1d000)\n\
                    \tlibdep.so => not found\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f5bb2304000)\n\
                    undefined symbol: dep\t(/p/libneed.so)\n\
                    undefined symbol: cv_resize\t(/p/libneed.so)\n\
                    /p/libneed.so: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.99' \
                    not found (required by /p/libneed.so)\n";
        let trace = parse(text);
        assert_eq!(
            trace.unresolved,
            [
                Unresolved {
                    symbol: "dep".into(),
                    object: "/p/libneed.so".into()
                },
                Unresolved {
                    symbol: "cv_resize".into(),
                    object: "/p/libneed.so".into()
                },
            ]
        );
        assert_eq!(trace.missing_libraries, ["libdep.so"]);
        assert_eq!(trace.missing_versions.len(), 1);
        assert!(trace.missing_versions[0].contains("GLIBC_2.99"));
        assert!(!trace.is_clean());
        assert!(parse("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n").is_clean());
    }

    #[test]
    fn finds_this_process_loader() {
        let loader = interpreter(Path::new("/proc/self/exe")).expect("a PT_INTERP");
        assert!(loader.is_file(), "{}", loader.display());
        assert!(interpreter(Path::new("/nonexistent")).is_none());
    }

    #[test]
    fn reads_the_ldd_candidates() {
        let script =
            "TEXTDOMAIN=libc\nRTLDLIST=\"/lib/ld-linux.so.2 /lib64/ld-linux-x86-64.so.2\"\n";
        assert_eq!(
            rtld_list(script),
            [
                PathBuf::from("/lib/ld-linux.so.2"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        assert!(rtld_list("echo hi").is_empty());
    }
}
