//! What a check found: one verdict per check and the facts behind them, for people and scripts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::symbols::Unresolved;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It passed.
    Ok,
    /// It passed, with something worth knowing (allowed by an option).
    Warn,
    /// It failed: the exit status is 1.
    Fail,
    /// It was not run, because an earlier stage of the load failed.
    Skipped,
}

/// One check and its verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// `file`, `link`, `descriptor`, `exports`, `init`, `signals`, `call` or `unload`.
    pub name: String,
    /// The verdict.
    pub status: Status,
    /// What was found, in a sentence that names what was wrong.
    pub detail: String,
    /// Extra lines the human report prints under the check (the JSON report has the same facts
    /// as fields of its own).
    #[serde(skip)]
    pub facts: Vec<(String, String)>,
}

impl Check {
    /// A check with this verdict and no extra lines.
    pub fn new(name: &str, status: Status, detail: impl Into<String>) -> Check {
        Check {
            name: name.to_owned(),
            status,
            detail: detail.into(),
            facts: Vec::new(),
        }
    }

    /// The same check with an extra line under it.
    pub fn with_fact(mut self, label: &str, value: impl Into<String>) -> Check {
        self.facts.push((label.to_owned(), value.into()));
        self
    }
}

/// The descriptor's flag bits, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    /// The raw `PROXYSO_FLAG_*` bits.
    pub bits: u32,
    /// `PROXYSO_FLAG_SERIALIZE`: the host never runs two calls of a version at once.
    pub serialize: bool,
    /// `PROXYSO_FLAG_KEEP_MAPPED`: retired versions stay mapped for the life of the process.
    pub keep_mapped: bool,
    /// `PROXYSO_FLAG_LONG_CALLS`: methods are never called in a critical downcall (JDK 22+).
    #[serde(default)]
    pub long_calls: bool,
}

impl Flags {
    /// Decodes the descriptor's bits.
    pub fn from_bits(bits: u32) -> Flags {
        Flags {
            bits,
            serialize: bits & proxyso_abi::FLAG_SERIALIZE != 0,
            keep_mapped: bits & proxyso_abi::FLAG_KEEP_MAPPED != 0,
            long_calls: bits & proxyso_abi::FLAG_LONG_CALLS != 0,
        }
    }

    /// "serialize, keep-mapped", or "none".
    pub fn describe(self) -> String {
        let names: Vec<&str> = [
            (self.serialize, "serialize"),
            (self.keep_mapped, "keep-mapped"),
            (self.long_calls, "long-calls"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    }
}

/// How a sample call's bytes are shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    /// `text` (valid UTF-8) or `hex` (bytes as two-digit hex, space-separated).
    pub encoding: String,
    /// The text, or the hex digits, up to the limit.
    pub data: String,
    /// True when `data` shows only the start of the output.
    pub truncated: bool,
}

/// How many characters of text output a preview shows.
pub const TEXT_LIMIT: usize = 200;
/// How many bytes of binary output a preview shows.
pub const HEX_LIMIT: usize = 64;

impl Preview {
    /// Shows `bytes` as text when they are valid UTF-8, else as hex; long output is cut.
    pub fn of(bytes: &[u8]) -> Preview {
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                let cut = text.char_indices().nth(TEXT_LIMIT).map(|(at, _)| at);
                Preview {
                    encoding: "text".to_owned(),
                    data: text[..cut.unwrap_or(text.len())].to_owned(),
                    truncated: cut.is_some(),
                }
            }
            Err(_) => {
                let shown = &bytes[..bytes.len().min(HEX_LIMIT)];
                let hex: Vec<String> = shown.iter().map(|b| format!("{b:02x}")).collect();
                Preview {
                    encoding: "hex".to_owned(),
                    data: hex.join(" "),
                    truncated: shown.len() < bytes.len(),
                }
            }
        }
    }

    /// One line for people: the text quoted and escaped, or the hex marked as such, saying
    /// what part of `total` bytes it shows.
    pub fn describe(&self, total: usize) -> String {
        match (self.encoding.as_str(), self.truncated) {
            ("text", false) => format!("{:?}", self.data),
            ("text", true) => format!(
                "{:?}... (the first {TEXT_LIMIT} characters of {total} bytes)",
                self.data
            ),
            (_, false) => format!("hex {}", self.data),
            (_, true) => format!(
                "hex {} ... (the first {HEX_LIMIT} of {total} bytes)",
                self.data
            ),
        }
    }
}

/// A plugin's report of a failed call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallError {
    /// The plugin's code (0 when the host refused what the plugin returned).
    pub code: i32,
    /// The plugin's message.
    pub message: String,
    /// True when the plugin reported a caught panic or exception.
    pub panicked: bool,
}

/// The sample call, made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallReport {
    /// The method called.
    pub method: String,
    /// How many bytes of input it was given.
    pub input_len: usize,
    /// How long the call took, in milliseconds.
    pub duration_ms: f64,
    /// How many bytes of output it returned (0 when it failed).
    pub output_len: usize,
    /// The output, or its start; `None` when the call failed.
    pub output: Option<Preview>,
    /// The plugin's error, when the call failed.
    pub error: Option<CallError>,
    /// True when the call was made in a worker process (`--isolated`).
    pub isolated: bool,
    /// The worker process's id, with `--isolated` (once one was started).
    pub worker_pid: Option<i32>,
    /// How the worker ended during the call (a crash, or a kill at the timeout), with
    /// `--isolated`.
    pub crash: Option<WorkerEnd>,
}

impl CallReport {
    /// A call of `method` with `input_len` bytes that took `took`, its outcome still unknown.
    pub fn new(method: &str, input_len: usize, took: Duration) -> CallReport {
        CallReport {
            method: method.to_owned(),
            input_len,
            duration_ms: took.as_secs_f64() * 1e3,
            output_len: 0,
            output: None,
            error: None,
            isolated: false,
            worker_pid: None,
            crash: None,
        }
    }
}

/// How an isolated sample call's worker process ended (`--isolated`): what the proxy's
/// `PluginCrashedException` and `PluginTimeoutException` would say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerEnd {
    /// Its process id.
    pub pid: i32,
    /// The signal that ended it ("SIGSEGV"), if one did.
    pub signal: Option<String>,
    /// That signal's number, 0 if it exited (`PluginCrashedException.getSignal()`).
    pub signal_number: i32,
    /// Its exit status, -1 if a signal ended it (`PluginCrashedException.getExitStatus()`).
    pub exit_status: i32,
    /// True when the signal left a core dump.
    pub core_dumped: bool,
    /// True when the call ran past `--timeout` and the checker killed the worker.
    pub timed_out: bool,
    /// Why the checker killed it, when it did.
    pub killed_for: Option<String>,
    /// The last lines it wrote to standard output and error.
    pub output: String,
}

/// Everything a check found: the JSON report is this object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// The plugin path as given.
    pub plugin: String,
    /// True when no check failed: the exit status is 0.
    pub ok: bool,
    /// The checks, in the order of a load.
    pub checks: Vec<Check>,
    /// The plugin's ABI version, once its descriptor was read.
    pub abi_version: Option<u32>,
    /// The plugin's own name.
    pub name: Option<String>,
    /// The plugin's own version.
    pub version: Option<String>,
    /// The method names, the default first.
    pub methods: Vec<String>,
    /// The descriptor's flags.
    pub flags: Option<Flags>,
    /// Symbols left unresolved (from the loader's trace).
    pub unresolved_symbols: Vec<Unresolved>,
    /// Needed libraries that were not found (from the loader's trace).
    pub missing_libraries: Vec<String>,
    /// Signals whose handler the plugin changed.
    pub signal_handlers: Vec<String>,
    /// How many symbols the library exports besides `proxyso_plugin`.
    pub extra_export_count: usize,
    /// The first of them (at most `exports::SHOWN`), demangled.
    pub extra_exports: Vec<String>,
    /// Its `STB_GNU_UNIQUE` symbols, demangled: glibc never unloads a library that has one.
    pub unique_symbols: Vec<String>,
    /// The sample call, when one was made.
    pub call: Option<CallReport>,
    /// What the plugin and the proxy logged during the check, in order.
    pub log: Vec<LogLine>,
    /// How plugin code ended the checker's child process, when it did (the check it died in
    /// is a `FAIL`).
    pub died: Option<Died>,
    /// The `proxyso-worker` executable that made the sample call, with `--isolated`.
    pub worker: Option<String>,
}

/// How plugin code ended the checker's child process (see `isolate`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Died {
    /// The check it died in.
    pub check: String,
    /// The signal that killed it ("SIGSEGV"), if one did.
    pub signal: Option<String>,
    /// True when that signal left a core dump.
    pub core_dumped: bool,
    /// The exit code, if it exited.
    pub exit_code: Option<i32>,
    /// True when it ran past `--timeout` and the checker killed it.
    pub timed_out: bool,
    /// The last line it printed, if any (glibc's abort message, for example).
    pub last_output: Option<String>,
}

/// One log record from the check: a plugin's `host->log` line or one of the proxy's events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLine {
    /// `ERROR`, `WARN`, `INFO` or `DEBUG`.
    pub level: String,
    /// True for the plugin's own line.
    pub from_plugin: bool,
    /// True for a line from the worker process of `--isolated` (its load of the plugin, the
    /// call, `destroy`), or from the proxy about it.
    pub worker: bool,
    /// The text.
    pub message: String,
}

impl Report {
    /// Adds a check's verdict.
    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// Sets `ok` from the verdicts; call once every check is in.
    pub fn finish(mut self) -> Report {
        self.ok = self.checks.iter().all(|c| c.status != Status::Fail);
        self
    }
}

/// A duration for people: microseconds, milliseconds or seconds, whichever reads best.
pub fn describe_duration(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.1} µs")
    } else if micros < 1e6 {
        format!("{:.2} ms", micros / 1e3)
    } else {
        format!("{:.2} s", micros / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_text_and_hex_and_cuts_long_output() {
        let short = Preview::of(b"hello\n");
        assert_eq!((short.encoding.as_str(), short.truncated), ("text", false));
        assert_eq!(short.describe(6), r#""hello\n""#);

        let long = "é".repeat(TEXT_LIMIT + 10);
        let cut = Preview::of(long.as_bytes());
        assert!(cut.truncated);
        assert_eq!(cut.data.chars().count(), TEXT_LIMIT);
        assert!(
            cut.describe(long.len())
                .contains(&format!("of {} bytes", long.len()))
        );

        let binary: Vec<u8> = (0..=255).collect();
        let hex = Preview::of(&binary);
        assert_eq!(hex.encoding, "hex");
        assert!(hex.data.starts_with("00 01 02"));
        assert_eq!(hex.data.split(' ').count(), HEX_LIMIT);
        assert!(hex.describe(256).ends_with("(the first 64 of 256 bytes)"));
        assert_eq!(Preview::of(&[0xff, 0x00]).describe(2), "hex ff 00");
    }

    #[test]
    fn decodes_flags() {
        assert_eq!(Flags::from_bits(0).describe(), "none");
        let both = Flags::from_bits(proxyso_abi::FLAG_SERIALIZE | proxyso_abi::FLAG_KEEP_MAPPED);
        assert!(both.serialize && both.keep_mapped);
        assert_eq!(both.describe(), "serialize, keep-mapped");
    }

    #[test]
    fn ok_only_without_a_failure() {
        let mut report = Report::default();
        report.push(Check::new("file", Status::Ok, ""));
        report.push(Check::new("signals", Status::Warn, ""));
        report.push(Check::new("call", Status::Skipped, ""));
        let report = report.finish();
        assert!(report.ok);
        let mut failed = report.clone();
        failed.push(Check::new("init", Status::Fail, ""));
        assert!(!failed.finish().ok);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(describe_duration(Duration::from_nanos(12_300)), "12.3 µs");
        assert_eq!(describe_duration(Duration::from_micros(4_560)), "4.56 ms");
        assert_eq!(describe_duration(Duration::from_millis(2_500)), "2.50 s");
    }
}
