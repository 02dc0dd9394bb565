//! `--isolated`: the sample call made in a worker process, as the proxy serves a key loaded with
//! `isolated(true)`.
//!
//! The child (`isolate`) makes every other check and no call. Then this process, which never
//! maps plugin code, opens the plugin with the core's own `Loaded::open` and an `isolation`:
//! a `proxyso-worker` loads and initialises it again from a private snapshot, and the call goes
//! through the shared region as a Java caller's would. A crash or an `exit` in the worker, or a
//! call that runs past `--timeout` (the worker is then killed), is the call check's `FAIL`,
//! naming the signal or exit status and the last lines the worker wrote; the checker goes on
//! and the report says what the proxy would have thrown.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use proxyso_core::LoadError;
use proxyso_core::child::{End, signal_name};
use proxyso_core::isolated::{Death, Fail, Isolation};
use proxyso_core::loaded::Loaded;
use proxyso_core::plugin::LoadOptions;
use proxyso_core::preflight::Worker;
use proxyso_core::snapshot::SnapshotDir;

use crate::args::{CallRequest, Request};
use crate::report::{CallReport, Check, LogLine, Report, Status, WorkerEnd, describe_duration};
use crate::run;

/// How the worker's loads are named in its log lines.
const LABEL: &str = "proxyso-check (isolated)";
/// How many of the worker's last output lines the text report shows.
const OUTPUT_LINES: usize = 5;
/// How long to wait for the end of a worker killed at the timeout (its monitor reaps it).
const REAP_WAIT: Duration = Duration::from_secs(5);

/// Adds the call check made in a worker to `report` (the child's checks), when `--isolated`
/// asked for it: made when the child's load succeeded, not run when it failed.
pub fn add_call(request: &Request, report: &mut Report) {
    let (Some(call), Some(worker)) = (&request.call, &request.worker) else {
        return;
    };
    report.worker = Some(worker.path().display().to_string());
    // The child died before the call would have been made: it is already marked not run.
    if report.checks.iter().any(|c| c.name == "call") {
        return;
    }
    let check = if report.name.is_none() {
        run::skipped("call", "not made: the load failed")
    } else {
        let (check, made, log) = call_in_worker(request, worker, call);
        report.call = made;
        report.log.extend(log);
        check
    };
    report.push(check);
    let order = run::order(true);
    report
        .checks
        .sort_by_key(|c| order.iter().position(|o| *o == c.name.as_str()));
    *report = std::mem::take(report).finish();
}

/// Loads the plugin in a worker, makes the call there, and ends the worker; the verdict, what
/// was made, and what was logged meanwhile.
fn call_in_worker(
    request: &Request,
    worker: &Worker,
    call: &CallRequest,
) -> (Check, Option<CallReport>, Vec<LogLine>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    proxyso_core::log::set_sink(Some(Arc::new(move |record: proxyso_core::log::Record| {
        let line = LogLine {
            level: record.level.name().to_owned(),
            from_plugin: record.from_plugin,
            worker: true,
            message: record.message,
        };
        sink.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    })));
    let (check, made) = match open(request, worker) {
        Ok((loaded, snapshots)) => {
            let made = call_loaded(&loaded, worker, call);
            // `destroy` in the worker, and its end; then the snapshot directory goes.
            loaded.close();
            drop(snapshots);
            made
        }
        Err(check) => (check, None),
    };
    proxyso_core::log::set_sink(None);
    let log = std::mem::take(&mut *log.lock().unwrap_or_else(PoisonError::into_inner));
    (check, made, log)
}

/// The plugin loaded in a worker, within `--timeout`, or the call check saying why not.
fn open(request: &Request, worker: &Worker) -> Result<(Loaded, SnapshotDir), Check> {
    let isolation = Isolation {
        call_timeout: Some(request.timeout),
        ..Isolation::default()
    };
    let source: PathBuf = request.plugin.clone();
    let parent = request.snapshot_parent.clone();
    let config = request.config.bytes.clone();
    let worker_owned = worker.clone();
    let (send, receive) = mpsc::channel();
    // On a thread of its own: a start that never ends (an `init` that hangs only in the
    // worker) ends with this process, which the worker does not outlive.
    let started = std::thread::Builder::new()
        .name("isolated-load".into())
        .spawn(move || {
            let snapshots = SnapshotDir::new(parent);
            let options = LoadOptions {
                isolation: Some(isolation),
                worker: Some(&worker_owned),
                ..LoadOptions::config(&config)
            };
            let opened = Loaded::open(&source, &snapshots, &options, Arc::from(LABEL), 1);
            let _ = send.send(opened.map(|loaded| (loaded, snapshots)));
        });
    if let Err(e) = started {
        return Err(fail(format!(
            "cannot start a thread for the isolated load: {e}"
        )));
    }
    match receive.recv_timeout(request.timeout) {
        Ok(Ok(opened)) => Ok(opened),
        Ok(Err(e)) => Err(fail(load_failure(&e))),
        Err(_) => Err(fail(format!(
            "the worker process ({}) did not finish loading the plugin within {} s \
             (--timeout); it ends with the checker",
            worker.path().display(),
            request.timeout.as_secs()
        ))),
    }
}

/// Why the worker could not load the plugin.
fn load_failure(error: &LoadError) -> String {
    format!("cannot load the plugin in a worker process: {error}")
}

fn fail(detail: String) -> Check {
    Check::new("call", Status::Fail, detail)
}

/// The call made through `loaded`, timed, and what it came to.
fn call_loaded(
    loaded: &Loaded,
    worker: &Worker,
    call: &CallRequest,
) -> (Check, Option<CallReport>) {
    let Some(index) = loaded.method_index(call.method.as_deref()) else {
        return (run::no_such_method(call, loaded.method_names()), None);
    };
    let method = loaded
        .method_names()
        .nth(index)
        .unwrap_or_default()
        .to_owned();
    let pid = loaded.worker_pid();
    let input = &call.input.bytes;
    let mut out = Vec::new();
    let start = Instant::now();
    let result = loaded.call(index, input, &mut out);
    let took = start.elapsed();
    let mut made = CallReport::new(&method, input.len(), took);
    made.isolated = true;
    made.worker_pid = Some(pid);
    let worker_fact = format!("pid {pid}, {}", worker.path().display());
    // What the worker wrote last, when it died: shown under the worker line.
    let mut output = String::new();
    let check = match result {
        Ok(()) => run::answered(
            &method,
            call,
            took,
            &out,
            &mut made,
            &format!(" in its worker process (pid {pid})"),
        ),
        Err(Fail::Plugin(failure)) => run::failed(&method, call, took, failure, &mut made),
        Err(Fail::TooSmall { required }) => fail(format!(
            "'{method}' asked for an output buffer of {required} bytes"
        )),
        Err(Fail::Refused(why)) => fail(format!("'{method}' could not be made: {why}")),
        Err(Fail::Dead(death)) => {
            made.crash = Some(worker_end(&death, false));
            output.clone_from(&death.output);
            crashed(&method, &death, took)
        }
        Err(Fail::TimedOut { after, pid }) => {
            let death = loaded
                .isolated()
                .and_then(|isolated| isolated.remote().await_death(REAP_WAIT));
            let check = fail(format!(
                "'{method}' ran longer than the timeout of {} (--timeout), so its worker \
                 process (pid {pid}) was killed: in the proxy the call throws \
                 PluginTimeoutException, the JVM lives on, and the next call starts a new \
                 worker",
                describe_duration(after)
            ));
            let mut end = death.as_deref().map_or_else(
                || WorkerEnd {
                    pid,
                    signal: Some(signal_name(libc::SIGKILL)),
                    signal_number: libc::SIGKILL,
                    exit_status: -1,
                    ..WorkerEnd::default()
                },
                |death| worker_end(death, true),
            );
            end.timed_out = true;
            output.clone_from(&end.output);
            made.crash = Some(end);
            check
        }
    };
    let check = with_output(check.with_fact("worker", worker_fact), &output);
    (check, Some(made))
}

/// The call check of a call whose worker died with it.
fn crashed(method: &str, death: &Death, took: Duration) -> Check {
    let throws = "in the proxy the call throws PluginCrashedException, the JVM lives on, and \
                  the next call starts a new worker";
    let detail = if death.pid == 0 {
        format!(
            "'{method}' found no worker: it {}: {throws}",
            death.describe()
        )
    } else {
        let how = match death.end {
            End::Exited(_) => "ended",
            _ => "crashed",
        };
        let why = death
            .killed_for
            .as_ref()
            .map(|why| format!(" ({why})"))
            .unwrap_or_default();
        format!(
            "'{method}' {how} its worker process (pid {}), which {}{why} after {}: {throws}",
            death.pid,
            death.end,
            describe_duration(took)
        )
    };
    fail(detail)
}

/// The last lines the worker wrote, each a fact under the check.
fn with_output(mut check: Check, output: &str) -> Check {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    for line in &lines[lines.len().saturating_sub(OUTPUT_LINES)..] {
        check = check.with_fact("printed", line.trim_end().to_owned());
    }
    check
}

/// What the report says of a worker's end.
fn worker_end(death: &Death, timed_out: bool) -> WorkerEnd {
    let (signal, core_dumped) = match death.end {
        End::Signaled {
            signal,
            core_dumped,
        } => (Some(signal_name(signal)), core_dumped),
        End::TimedOut(_) => (Some(signal_name(libc::SIGKILL)), false),
        End::Exited(_) => (None, false),
    };
    WorkerEnd {
        pid: death.pid,
        signal,
        signal_number: death.signal(),
        exit_status: death.exit_status(),
        core_dumped,
        timed_out,
        killed_for: death.killed_for.clone(),
        output: death.output.clone(),
    }
}
