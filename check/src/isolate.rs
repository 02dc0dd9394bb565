//! The plugin's code runs in a child process, so that a plugin that crashes or aborts is a
//! `FAIL` line in the report, not a dead checker.
//!
//! The checker re-executes itself (`/proc/self/exe`) with the hidden first argument
//! [`CHILD_FLAG`], spawned by the proxy's own `proxyso_core::child` (`posix_spawn`, never
//! `fork`; a process group of its own; killed at the `--timeout`). The two talk through one
//! anonymous file, the child's descriptor 3: the parent writes the request on its first line;
//! the child appends one JSON event per line as it goes: each part of the check that is about
//! to run plugin code (`dlopen` and its constructors, the descriptor, `init`, the call,
//! `destroy` and `dlclose`), the checks decided so far, and at the end the whole report. A file,
//! not a pipe: the parent reads it once the child has ended, and a child that dies leaves
//! every line it wrote. When the child ends without its report, the parent reports the checks
//! it had passed, a `FAIL` for the part it died in (naming the signal, or the exit code, or the
//! timeout), and the rest as not run.
//!
//! What the plugin prints (the child's standard output and error, their last 4 KiB) is copied
//! to the checker's standard error, never into the report.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use proxyso_core::child::{self, End, Outcome};
use proxyso_core::plugin::LoadProgress;
use serde::{Deserialize, Serialize};

use crate::args::{CallRequest, Payload, Request};
use crate::report::{Check, Died, Report, Status};
use crate::run::{self, Stage};

/// The first argument that makes `proxyso-check` the child that runs the plugin's code.
pub const CHILD_FLAG: &str = "--internal-plugin-child";

/// Exit status of a child that could not read its request or write its report.
const CHILD_BROKEN: u8 = 3;

/// What the parent hands the child besides the plugin path and the snapshot directory (which
/// go as arguments, any bytes allowed).
#[derive(Debug, Serialize, Deserialize)]
struct ChildRequest {
    config: Payload,
    call: Option<CallRequest>,
    allow_signal_handlers: bool,
    keep_mapped: bool,
}

/// A part of the check during which plugin code runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Part {
    /// Before the load: the child's own start (no plugin code has run).
    Start,
    /// `dlopen`: the constructors of the library and of the libraries it needs.
    Dlopen,
    /// Reading the descriptor.
    Descriptor,
    /// `init`.
    Init,
    /// The sample call.
    Call,
    /// `destroy` and `dlclose`.
    Unload,
}

impl Part {
    /// The check a death during this part fails.
    fn check(self) -> &'static str {
        match self {
            Part::Start => "file",
            Part::Dlopen => "link",
            Part::Descriptor => "descriptor",
            Part::Init => "init",
            Part::Call => "call",
            Part::Unload => "unload",
        }
    }
}

/// A report with the facts the JSON report leaves out, as the child sends it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Wire {
    report: Report,
    facts: Vec<Vec<(String, String)>>,
}

impl Wire {
    fn of(report: &Report) -> Wire {
        Wire {
            facts: report.checks.iter().map(|c| c.facts.clone()).collect(),
            report: report.clone(),
        }
    }

    fn into_report(self) -> Report {
        let mut report = self.report;
        for (check, facts) in report.checks.iter_mut().zip(self.facts) {
            check.facts = facts;
        }
        report
    }
}

/// One line the child writes.
#[derive(Debug, Serialize, Deserialize)]
pub enum Event {
    /// Plugin code is about to run in `part`; `what` names it (the plugin, the method).
    Entering {
        /// The part.
        part: Part,
        /// "name version" for `init`, the method for a call.
        what: Option<String>,
    },
    /// Every check decided so far.
    Checks(Wire),
    /// The whole report: the child is done.
    Done(Wire),
}

/// The channel to the parent, in the child.
static CHANNEL: OnceLock<Mutex<File>> = OnceLock::new();

/// Writes one event for the parent (nothing outside the child).
pub fn send(event: &Event) {
    let Some(channel) = CHANNEL.get() else { return };
    let mut line = serde_json::to_vec(event).unwrap_or_default();
    line.push(b'\n');
    let mut channel = channel.lock().unwrap_or_else(PoisonError::into_inner);
    // One write per line: a child killed mid-way leaves whole lines and at most a torn last
    // one, which the parent skips.
    let _ = channel.write_all(&line);
}

/// Tells the parent plugin code is about to run in `part`.
pub fn entering(part: Part, what: Option<String>) {
    send(&Event::Entering { part, what });
}

/// The core's progress hook: the parts of a load that run plugin code.
pub fn on_load_progress(progress: LoadProgress<'_>) {
    match progress {
        LoadProgress::Dlopen => entering(Part::Dlopen, None),
        LoadProgress::Descriptor => entering(Part::Descriptor, None),
        LoadProgress::Init { plugin } => entering(Part::Init, Some(plugin.to_owned())),
    }
}

/// Sends the checks decided so far.
pub fn checkpoint(report: &Report) {
    send(&Event::Checks(Wire::of(report)));
}

/// The child: reads its request from descriptor 3, runs every check, and writes its events
/// there. `args` are the ones after [`CHILD_FLAG`]: the plugin and the snapshot directory.
pub fn child_main(args: &[OsString]) -> ExitCode {
    let [plugin, snapshot_parent] = args else {
        eprintln!("proxyso-check: {CHILD_FLAG} is for the checker's own use");
        return ExitCode::from(CHILD_BROKEN);
    };
    // SAFETY: descriptor 3 is the channel file the parent handed this process at spawn
    // (`child::EXTRA_FD`); nothing else in the process owns or closes it.
    let mut channel = unsafe { File::from_raw_fd(child::EXTRA_FD) };
    let request = match read_request(&mut channel) {
        Ok(request) => request,
        Err(e) => {
            eprintln!("proxyso-check: cannot read the request from the parent: {e}");
            return ExitCode::from(CHILD_BROKEN);
        }
    };
    let request = Request {
        plugin: PathBuf::from(plugin),
        config: request.config,
        call: request.call,
        allow_signal_handlers: request.allow_signal_handlers,
        keep_mapped: request.keep_mapped,
        snapshot_parent: PathBuf::from(snapshot_parent),
        json: false,
        timeout: Duration::ZERO,
        worker: None,
    };
    let _ = CHANNEL.set(Mutex::new(channel));
    let report = run::run(&request);
    send(&Event::Done(Wire::of(&report)));
    ExitCode::SUCCESS
}

/// The first line of the channel: the request.
fn read_request(channel: &mut File) -> io::Result<ChildRequest> {
    // The file offset is shared with the parent, which left it after the request.
    channel.seek(SeekFrom::Start(0))?;
    let mut line = Vec::new();
    BufReader::new(&mut *channel).read_until(b'\n', &mut line)?;
    // What this process writes goes after the request, whatever the reader buffered.
    channel.seek(SeekFrom::End(0))?;
    serde_json::from_slice(&line).map_err(io::Error::other)
}

/// The parent: runs every check in a child process and reports them, or what killed it.
pub fn run(request: &Request) -> Report {
    match spawn(request) {
        Ok((outcome, events)) => {
            let printed = outcome.output_text();
            if !printed.is_empty() {
                eprintln!("{printed}");
            }
            let report = report_from(request, &outcome, events);
            if report.died.is_some() {
                // The private snapshot directory of a child that died stays behind; its lock
                // is free now, so the proxy's own sweep removes it.
                proxyso_core::snapshot::remove_stale(&request.snapshot_parent);
            }
            report
        }
        Err(e) => {
            let mut report = Report {
                plugin: request.plugin.display().to_string(),
                ..Report::default()
            };
            report.push(Check::new(
                "file",
                Status::Fail,
                format!("cannot run the plugin's code in a child process: {e}"),
            ));
            report.finish()
        }
    }
}

/// Runs the child to its end; returns how it ended and the events it wrote.
fn spawn(request: &Request) -> io::Result<(Outcome, Vec<Event>)> {
    let mut channel = tempfile::tempfile()?;
    let mut line = serde_json::to_vec(&ChildRequest {
        config: request.config.clone(),
        // With --isolated the sample call is made in a worker (`in_worker`), not here.
        call: request.call.clone().filter(|_| request.worker.is_none()),
        allow_signal_handlers: request.allow_signal_handlers,
        keep_mapped: request.keep_mapped,
    })
    .map_err(io::Error::other)?;
    line.push(b'\n');
    channel.write_all(&line)?;
    let exe = std::env::current_exe()?;
    let outcome = child::Command::new(&exe)
        .arg(CHILD_FLAG)
        .arg(&request.plugin)
        .arg(&request.snapshot_parent)
        .extra_fd(channel.as_fd())
        .timeout(request.timeout)
        .run()?;
    channel.seek(SeekFrom::Start(0))?;
    let mut text = Vec::new();
    channel.read_to_end(&mut text)?;
    let events = text
        .split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect();
    Ok((outcome, events))
}

/// The report the child sent, or the one its events and its end tell.
fn report_from(request: &Request, outcome: &Outcome, events: Vec<Event>) -> Report {
    let mut entered = None;
    let mut checks = None;
    for event in events {
        match event {
            Event::Done(wire) if outcome.end == End::Exited(0) => return wire.into_report(),
            Event::Done(_) => {}
            Event::Entering { part, what } => entered = Some((part, what)),
            Event::Checks(wire) => checks = Some(wire.into_report()),
        }
    }
    died(request, outcome, entered, checks)
}

/// The report of a child that ended without its report: the checks it passed, a `FAIL` for
/// the part it died in, and the rest not run.
fn died(
    request: &Request,
    outcome: &Outcome,
    entered: Option<(Part, Option<String>)>,
    checks: Option<Report>,
) -> Report {
    let plugin = &request.plugin;
    // No part entered: it died before any plugin code ran (the checker's own fault).
    let (part, what) = entered.unwrap_or((Part::Start, None));
    let mut report = match checks {
        Some(report) => report,
        None => before_load_died(plugin, part, what.as_deref()),
    };
    let how = match outcome.end {
        End::Exited(code) => format!("ended the process with exit code {code}"),
        end => end.to_string(),
    };
    let during = match (part, what.as_deref()) {
        (Part::Start, _) => "the checker's child process, before the load began,".to_owned(),
        (Part::Dlopen, _) => {
            "dlopen (the constructors of the library or of a library it needs)".to_owned()
        }
        (Part::Descriptor, _) => "reading the descriptor".to_owned(),
        (Part::Init, Some(plugin)) => format!("init of plugin {plugin}"),
        (Part::Init, None) => "init".to_owned(),
        (Part::Call, Some(method)) => format!("the call of '{method}'"),
        (Part::Call, None) => "the call of the default method".to_owned(),
        (Part::Unload, _) => "unloading (destroy, then dlclose)".to_owned(),
    };
    let last_output = String::from_utf8_lossy(&outcome.output)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned());
    let mut fail = Check::new(
        part.check(),
        Status::Fail,
        format!(
            "{during} {how}: plugin code that does this in the proxy takes the JVM down with \
             it"
        ),
    );
    if let Some(line) = &last_output {
        fail = fail.with_fact("printed", line.clone());
    }
    report.died = Some(match outcome.end {
        End::Exited(code) => Died {
            exit_code: Some(code),
            ..Died::default()
        },
        End::Signaled {
            signal,
            core_dumped,
        } => Died {
            signal: Some(child::signal_name(signal)),
            core_dumped,
            ..Died::default()
        },
        End::TimedOut(_) => Died {
            timed_out: true,
            ..Died::default()
        },
    });
    if let Some(died) = &mut report.died {
        died.check = part.check().to_owned();
        died.last_output = last_output;
    }
    // Replace any verdict the child had for that check (none, as it died in it) and mark
    // what comes after it as not run.
    let order = run::order(request.call.is_some());
    let at = order.iter().position(|c| *c == part.check()).unwrap_or(0);
    report.checks.retain(|c| {
        order
            .iter()
            .position(|o| *o == c.name.as_str())
            .is_some_and(|i| i < at || c.name == "exports")
    });
    report.push(fail);
    for name in &order[at + 1..] {
        if !report.checks.iter().any(|c| c.name == *name) {
            report.push(Check::new(
                name,
                Status::Skipped,
                "not run: plugin code killed the check before it",
            ));
        }
    }
    report
        .checks
        .sort_by_key(|c| order.iter().position(|o| *o == c.name.as_str()));
    report.finish()
}

/// The checks a child that died while loading had passed, told by where it died: the load
/// reached `part`.
fn before_load_died(plugin: &Path, part: Part, what: Option<&str>) -> Report {
    let mut report = Report {
        plugin: plugin.display().to_string(),
        ..Report::default()
    };
    let reached = match part {
        Part::Start => return report,
        Part::Dlopen => Stage::Link,
        Part::Descriptor => Stage::Descriptor,
        _ => Stage::Init,
    };
    report.push(run::file_check(plugin, reached, None));
    if reached > Stage::Link {
        let trace = crate::symbols::trace(plugin);
        report.push(run::link_check(plugin, Some(&trace), reached, None));
    }
    if reached > Stage::Descriptor {
        report.abi_version = Some(proxyso_abi::ABI_VERSION);
        let plugin = what.unwrap_or("unnamed");
        report.push(Check::new(
            "descriptor",
            Status::Ok,
            format!(
                "ABI version {}; the plugin is {plugin} (its methods show once init succeeds)",
                proxyso_abi::ABI_VERSION
            ),
        ));
    }
    let exports = run::exports_check(plugin, reached, &mut report);
    report.push(exports);
    report
}
