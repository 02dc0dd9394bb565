//! Runs the checks in the order of a real load and turns what happened into verdicts.
//!
//! The load itself is the proxy's own `Plugin::open`: the private snapshot copy, the ELF
//! checks, `dlopen(RTLD_NOW | RTLD_LOCAL)`, the descriptor and ABI checks, `init` and the signal
//! guard. It stops at the first failure, so every check after the failed stage is reported as
//! not run; the loader's trace (`symbols`) and a second look at every signal handler after the
//! load (`proxyso_core::signals::Handlers`, the comparison the proxy's guard itself makes) add what a
//! single `LoadError` cannot say.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use proxyso_core::LoadError;
use proxyso_core::plugin::{CallFailure, LoadOptions, Plugin};
use proxyso_core::signals::Handlers;
use proxyso_core::snapshot::SnapshotDir;

use crate::args::{CallRequest, Request};
use crate::exports;
use crate::isolate::{self, Part};
use crate::report::{
    CallError, CallReport, Check, Flags, LogLine, Preview, Report, Status, describe_duration,
};
use crate::symbols::{self, Trace};

/// How the checker's loads are named in the plugin's log lines.
const LABEL: &str = "proxyso-check";

/// The stages of a load, in order; a load error belongs to the stage that failed, and every
/// stage before it passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Reading, copying and checking the file's ELF headers.
    File,
    /// `dlopen`: needed libraries and symbols.
    Link,
    /// The descriptor: ABI version, strings, methods, flags.
    Descriptor,
    /// The plugin's `init`.
    Init,
    /// The signal guard, after `init`.
    Signals,
    /// Every stage passed: the plugin is open.
    Loaded,
}

/// The stage whose failure `error` reports.
fn failed_stage(error: &LoadError) -> Stage {
    match error {
        LoadError::Read(_)
        | LoadError::NotAFile(_)
        | LoadError::NotLoadable(_)
        | LoadError::Digest { .. }
        | LoadError::Snapshot { .. }
        | LoadError::UnsafeSnapshotDir { .. } => Stage::File,
        // Also the rare failure to mark an allowed version RTLD_NODELETE: a dlopen as well.
        // A pre-flight (which the checker never asks for) is a dlopen in a child process.
        // An isolated load's failure in its worker is reported from there as a whole.
        LoadError::Open(_)
        | LoadError::TooManyMappings { .. }
        | LoadError::Preflight(_)
        | LoadError::Isolated(_) => Stage::Link,
        LoadError::NoDescriptor(_)
        | LoadError::AbiMismatch { .. }
        | LoadError::BadDescriptor(_) => Stage::Descriptor,
        LoadError::Init { .. } => Stage::Init,
        LoadError::SignalHandler { .. } => Stage::Signals,
    }
}

/// The checks of a report, in order.
pub fn order(call: bool) -> Vec<&'static str> {
    let mut order = vec!["file", "link", "descriptor", "exports", "init", "signals"];
    if call {
        order.push("call");
    }
    order.push("unload");
    order
}

/// Runs every check `request` asks for and reports them, in this process: the checker's child
/// (`isolate`), which tells its parent where it is as it goes.
pub fn run(request: &Request) -> Report {
    let mut report = Report {
        plugin: request.plugin.display().to_string(),
        ..Report::default()
    };
    let snapshots = SnapshotDir::new(request.snapshot_parent.clone());
    let options = LoadOptions {
        config: &request.config.bytes,
        keep_mapped: request.keep_mapped,
        allow_signal_handlers: request.allow_signal_handlers,
        progress: Some(isolate::on_load_progress),
        ..LoadOptions::default()
    };
    // The plugin's log lines belong in the report, not scattered on standard error.
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    proxyso_core::log::set_sink(Some(Arc::new(move |record: proxyso_core::log::Record| {
        let line = LogLine {
            level: record.level.name().to_owned(),
            from_plugin: record.from_plugin,
            worker: false,
            message: record.message,
        };
        sink.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    })));
    let handlers = Handlers::take();
    let loaded = Plugin::open(&request.plugin, &snapshots, &options, LABEL);
    // What the proxy's guard restored is gone by now; this is what stayed changed.
    let changed = handlers.changed();
    let (reached, error) = match &loaded {
        Ok(_) => (Stage::Loaded, None),
        Err(e) => (failed_stage(e), Some(e)),
    };

    report.push(file_check(&request.plugin, reached, error));

    let trace = (reached > Stage::File).then(|| symbols::trace(&request.plugin));
    if let Some(Ok(trace)) = &trace {
        report.unresolved_symbols = trace.unresolved.clone();
        report.missing_libraries = trace.missing_libraries.clone();
    }
    report.push(link_check(&request.plugin, trace.as_ref(), reached, error));

    let plugin = loaded.as_ref().ok();
    if reached > Stage::Descriptor {
        report.abi_version = Some(proxyso_abi::ABI_VERSION);
    } else if let Some(LoadError::AbiMismatch { found, .. }) = error {
        report.abi_version = Some(*found);
    }
    if let Some(plugin) = plugin {
        report.name = Some(plugin.name().to_owned());
        report.version = Some(plugin.version().to_owned());
        report.methods = plugin.method_names().map(str::to_owned).collect();
        report.flags = Some(Flags::from_bits(plugin.flags()));
    }
    report.push(descriptor_check(&report, reached, error));
    let exports = exports_check(&request.plugin, reached, &mut report);
    report.push(exports);
    report.push(init_check(request, reached, error));

    let kept_mapped = plugin.map(Plugin::kept_mapped);
    let (signals, installed) = signals_check(
        reached,
        error,
        &changed,
        request.allow_signal_handlers,
        kept_mapped,
    );
    report.signal_handlers = installed;
    report.push(signals);
    let so_far = |report: &Report| {
        let mut report = report.clone();
        report.log = log.lock().unwrap_or_else(PoisonError::into_inner).clone();
        isolate::checkpoint(&report);
    };
    so_far(&report);

    if let Some(call) = &request.call {
        let (check, made) = match plugin {
            Some(plugin) => {
                isolate::entering(Part::Call, call.method.clone());
                call_check(plugin, call)
            }
            None => (skipped("call", "not made: the load failed"), None),
        };
        report.call = made;
        report.push(check);
        so_far(&report);
    }

    report.push(match loaded {
        Ok(plugin) => {
            isolate::entering(Part::Unload, None);
            unload_check(plugin, &request.plugin, keep_reason(request, &report), &log)
        }
        Err(_) => skipped("unload", "not checked: the load failed"),
    });
    proxyso_core::log::set_sink(None);
    report.log = std::mem::take(&mut *log.lock().unwrap_or_else(PoisonError::into_inner));
    report.finish()
}

/// "1 byte", "2 bytes".
fn bytes(n: u64) -> String {
    if n == 1 {
        "1 byte".to_owned()
    } else {
        format!("{n} bytes")
    }
}

/// A check that was not run, and why.
pub fn skipped(name: &'static str, why: &str) -> Check {
    Check::new(name, Status::Skipped, why)
}

/// The file: readable, a regular file, a whole ELF shared object for this machine.
pub fn file_check(path: &Path, reached: Stage, error: Option<&LoadError>) -> Check {
    match error {
        Some(e) if reached == Stage::File => {
            Check::new("file", Status::Fail, format!("'{}': {e}", path.display()))
        }
        _ => {
            let size = std::fs::metadata(path)
                .map(|m| format!(" ({})", bytes(m.len())))
                .unwrap_or_default();
            Check::new(
                "file",
                Status::Ok,
                format!("a whole ELF shared object for this machine{size}"),
            )
        }
    }
}

/// Linking: every needed library found and every symbol resolved, from the loader's trace when
/// there is one and from `dlopen` in any case.
pub fn link_check(
    plugin: &Path,
    trace: Option<&Result<Trace, String>>,
    reached: Stage,
    error: Option<&LoadError>,
) -> Check {
    let Some(trace) = trace else {
        return skipped("link", "not checked: the file is not loadable");
    };
    let dlopen_error = match error {
        Some(e @ LoadError::Open(_)) if reached == Stage::Link => Some(e.to_string()),
        _ => None,
    };
    match (trace, dlopen_error) {
        (Ok(trace), _) if !trace.is_clean() => {
            Check::new("link", Status::Fail, describe_trace(plugin, trace))
        }
        (Ok(_), Some(dlopen)) => Check::new("link", Status::Fail, dlopen),
        (Ok(_), None) => Check::new(
            "link",
            Status::Ok,
            "every needed library found and every symbol resolved",
        ),
        (Err(why), Some(dlopen)) => Check::new(
            "link",
            Status::Fail,
            format!("{dlopen} (it may not be the only one: {why})"),
        ),
        (Err(why), None) => Check::new(
            "link",
            Status::Ok,
            format!("dlopen resolved every symbol (RTLD_NOW); no full list: {why}"),
        ),
    }
}

/// "unresolved symbols: a, b (needed by libdep.so); missing libraries: libx.so".
fn describe_trace(plugin: &Path, trace: &Trace) -> String {
    let mut parts = Vec::new();
    // Missing libraries first: they are usually why symbols are unresolved.
    if !trace.missing_libraries.is_empty() {
        parts.push(format!(
            "needed libraries not found: {}",
            trace.missing_libraries.join(", ")
        ));
    }
    if !trace.unresolved.is_empty() {
        let own = plugin.file_name();
        let symbols: Vec<String> = trace
            .unresolved
            .iter()
            .map(|u| {
                // Name the object only when it is not the plugin itself but a library of it.
                if Path::new(&u.object).file_name() == own {
                    u.symbol.clone()
                } else {
                    format!("{} (needed by {})", u.symbol, u.object)
                }
            })
            .collect();
        let noun = if symbols.len() == 1 {
            "unresolved symbol"
        } else {
            "unresolved symbols"
        };
        parts.push(format!("{noun}: {}", symbols.join(", ")));
    }
    parts.extend(trace.missing_versions.iter().cloned());
    parts.join("; ")
}

/// The descriptor: found, ABI version, name, version, methods and flags valid.
fn descriptor_check(report: &Report, reached: Stage, error: Option<&LoadError>) -> Check {
    if reached < Stage::Descriptor {
        return skipped("descriptor", "not checked: the library could not be opened");
    }
    if reached == Stage::Descriptor {
        let detail = error.map(ToString::to_string).unwrap_or_default();
        return Check::new("descriptor", Status::Fail, detail);
    }
    let abi = proxyso_abi::ABI_VERSION;
    match (error, &report.name, &report.version, &report.flags) {
        (None, Some(name), Some(version), Some(flags)) => {
            let mut methods = report.methods.iter();
            let default = methods.next().map(|m| format!("{m} (default)"));
            let methods: Vec<String> = default.into_iter().chain(methods.cloned()).collect();
            Check::new("descriptor", Status::Ok, format!("ABI version {abi}"))
                .with_fact("name", name.clone())
                .with_fact("version", version.clone())
                .with_fact("methods", methods.join(", "))
                .with_fact("flags", flags.describe())
        }
        (Some(LoadError::Init { plugin, .. }), ..) => Check::new(
            "descriptor",
            Status::Ok,
            format!(
                "ABI version {abi}; the plugin is {plugin} (its methods show once init succeeds)"
            ),
        ),
        _ => Check::new(
            "descriptor",
            Status::Ok,
            format!(
                "ABI version {abi} (a refused load shows no name, version or methods: \
                 --allow-signal-handlers loads it)"
            ),
        ),
    }
}

/// Exports: the descriptor alone, or a warning naming what else is exported and the version
/// script that hides it; the `STB_GNU_UNIQUE` symbols are named in any case.
pub fn exports_check(plugin: &Path, reached: Stage, report: &mut Report) -> Check {
    if reached == Stage::File {
        return skipped("exports", "not checked: the file is not loadable");
    }
    let found = match exports::read(plugin) {
        Ok(found) => found,
        Err(why) => return Check::new("exports", Status::Warn, format!("not checked: {why}")),
    };
    report.extra_export_count = found.extra.len();
    report.extra_exports = found.extra.iter().take(exports::SHOWN).cloned().collect();
    report.unique_symbols = found.unique.clone();
    if found.extra.is_empty() {
        return Check::new("exports", Status::Ok, "proxyso_plugin alone");
    }
    let noun = if found.extra.len() == 1 {
        "symbol"
    } else {
        "symbols"
    };
    let mut check = Check::new(
        "exports",
        Status::Warn,
        format!(
            "{} {noun} besides proxyso_plugin: {}",
            found.extra.len(),
            exports::first_few(&found.extra)
        ),
    )
    .with_fact(
        "fix",
        format!(
            "link with -Wl,--version-script=exports.map, exports.map holding: {}",
            exports::VERSION_SCRIPT
        ),
    );
    if !found.unique.is_empty() {
        check = check.with_fact("unique", exports::unique_advice(&found.unique));
    }
    check
}

/// `init` with the config asked for.
fn init_check(request: &Request, reached: Stage, error: Option<&LoadError>) -> Check {
    let config = &request.config.source;
    match (reached, error) {
        (stage, _) if stage < Stage::Init => skipped("init", "not run: the load failed before it"),
        (Stage::Init, Some(e)) => {
            Check::new("init", Status::Fail, format!("{e} (config: {config})"))
        }
        _ => Check::new("init", Status::Ok, format!("succeeded with {config}")),
    }
}

/// Signal handlers: the ones the proxy's guard refused and the ones that stayed changed.
/// Returns the verdict and every signal whose handler the plugin changed.
fn signals_check(
    reached: Stage,
    error: Option<&LoadError>,
    changed: &[String],
    allowed: bool,
    kept_mapped: Option<bool>,
) -> (Check, Vec<String>) {
    let list = |signals: &[String]| signals.join(", ");
    if let Some(LoadError::SignalHandler { signals }) = error {
        let refused: Vec<String> = signals.split(", ").map(str::to_owned).collect();
        let mut detail = format!(
            "it changed the handler of {}: the proxy refuses the load and puts the handlers \
             back (--allow-signal-handlers loads it anyway)",
            list(&refused)
        );
        if !changed.is_empty() {
            detail.push_str(&format!(
                "; {} stayed changed all the same (changed after the guard looked, or not \
                 restorable)",
                list(changed)
            ));
        }
        let others: Vec<String> = changed
            .iter()
            .filter(|s| !refused.contains(s))
            .cloned()
            .collect();
        let mut all = refused;
        all.extend(others);
        return (Check::new("signals", Status::Fail, detail), all);
    }
    let check = match (reached, kept_mapped) {
        _ if changed.is_empty() && reached < Stage::Signals => {
            skipped("signals", "not checked: the load failed before the guard")
        }
        _ if changed.is_empty() => Check::new("signals", Status::Ok, "no signal handler changed"),
        (Stage::Loaded, Some(true)) if allowed => Check::new(
            "signals",
            Status::Warn,
            format!(
                "it changed the handler of {}: allowed by --allow-signal-handlers, and the \
                 version is kept mapped so the handler never points into unmapped code",
                list(changed)
            ),
        ),
        (Stage::Loaded, Some(kept)) => {
            let after_unload = if kept {
                ""
            } else {
                "; once the version is unloaded it points into unmapped code"
            };
            Check::new(
                "signals",
                Status::Fail,
                format!(
                    "it changed the handler of {} after the proxy's guard looked (from a thread \
                     of its own?): the load succeeds, but a plugin must not install signal \
                     handlers{after_unload}",
                    list(changed)
                ),
            )
        }
        _ => Check::new(
            "signals",
            Status::Fail,
            format!(
                "the failed load left the handler of {} changed (after the proxy's guard \
                 looked, or not restorable)",
                list(changed)
            ),
        ),
    };
    (check, changed.to_vec())
}

/// The sample call: the method looked up as the proxy does, called once, timed.
fn call_check(plugin: &Plugin, call: &CallRequest) -> (Check, Option<CallReport>) {
    let Some(index) = plugin.method_index(call.method.as_deref()) else {
        return (no_such_method(call, plugin.method_names()), None);
    };
    let method = plugin
        .method_names()
        .nth(index)
        .unwrap_or_default()
        .to_owned();
    let input = &call.input.bytes;
    let mut out = Vec::new();
    let start = Instant::now();
    let result = plugin.call(index, input, &mut out);
    let took = start.elapsed();
    let mut made = CallReport::new(&method, input.len(), took);
    let check = match result {
        Ok(()) => answered(&method, call, took, &out, &mut made, ""),
        Err(failure) => failed(&method, call, took, failure, &mut made),
    };
    (check, Some(made))
}

/// The call check of a method the plugin does not have, naming the ones it has.
pub fn no_such_method<'a>(call: &CallRequest, methods: impl Iterator<Item = &'a str>) -> Check {
    let methods: Vec<&str> = methods.collect();
    let detail = format!(
        "the plugin has no method '{}'; it has: {}",
        call.method.as_deref().unwrap_or_default(),
        methods.join(", ")
    );
    Check::new("call", Status::Fail, detail)
}

/// "no input", or how much input from where.
fn input_desc(call: &CallRequest) -> String {
    let input = &call.input.bytes;
    if input.is_empty() {
        "no input".to_owned()
    } else {
        format!(
            "{} of input from {}",
            bytes(input.len() as u64),
            call.input.source
        )
    }
}

/// The call check of a call that answered `out` after `took`; `place` says where it ran
/// (" in worker process N", or nothing).
pub fn answered(
    method: &str,
    call: &CallRequest,
    took: Duration,
    out: &[u8],
    made: &mut CallReport,
    place: &str,
) -> Check {
    let preview = Preview::of(out);
    let shown = preview.describe(out.len());
    made.output_len = out.len();
    made.output = Some(preview);
    Check::new(
        "call",
        Status::Ok,
        format!(
            "'{method}' returned {} in {}{place} ({})",
            bytes(out.len() as u64),
            describe_duration(took),
            input_desc(call)
        ),
    )
    .with_fact("output", shown)
}

/// The call check of a call the plugin reported as failed.
pub fn failed(
    method: &str,
    call: &CallRequest,
    took: Duration,
    failure: CallFailure,
    made: &mut CallReport,
) -> Check {
    let how = if failure.panicked {
        "panicked".to_owned()
    } else {
        format!("failed with code {}", failure.code)
    };
    let detail = format!(
        "'{method}' {how}: {} ({}, {})",
        failure.message,
        input_desc(call),
        describe_duration(took)
    );
    made.error = Some(CallError {
        code: failure.code,
        message: failure.message,
        panicked: failure.panicked,
    });
    Check::new("call", Status::Fail, detail)
}

/// Why a loaded version stays mapped on purpose, if it does.
fn keep_reason(request: &Request, report: &Report) -> &'static str {
    if report.flags.is_some_and(|f| f.keep_mapped) {
        "its descriptor sets PROXYSO_FLAG_KEEP_MAPPED"
    } else if request.keep_mapped {
        "--keep-mapped"
    } else {
        "it changed a signal handler, as allowed"
    }
}

/// Unloading: `destroy`, then `dlclose`, then the question the proxy asks after every close
/// (is it still loaded?). An error the proxy logs meanwhile (a C++ exception that escaped
/// `destroy`) fails the check.
fn unload_check(
    plugin: Plugin,
    source: &Path,
    keep_reason: &str,
    log: &Mutex<Vec<LogLine>>,
) -> Check {
    let kept_mapped = plugin.kept_mapped();
    let before = log.lock().unwrap_or_else(PoisonError::into_inner).len();
    let stayed = plugin.close();
    let failed = log.lock().unwrap_or_else(PoisonError::into_inner)[before..]
        .iter()
        .find(|line| !line.from_plugin && line.level == proxyso_core::log::Level::Error.name())
        .map(|line| line.message.clone());
    if let Some(message) = failed {
        Check::new("unload", Status::Fail, message)
    } else if kept_mapped {
        Check::new(
            "unload",
            Status::Ok,
            format!("destroy ran; the library stays mapped on purpose ({keep_reason})"),
        )
    } else if stayed {
        let unique = exports::read(source).map(|e| e.unique).unwrap_or_default();
        let why = if unique.is_empty() {
            "something pins it (a thread-local destructor, a library it loaded with \
             RTLD_NODELETE)"
                .to_owned()
        } else {
            exports::unique_advice(&unique)
        };
        Check::new(
            "unload",
            Status::Fail,
            format!(
                "destroy ran, but the library is still loaded after dlclose: {why}; the proxy \
                 would log it and count it as pinned"
            ),
        )
    } else {
        Check::new(
            "unload",
            Status::Ok,
            "destroy ran and dlclose unloaded the library",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signals(stage: Stage, changed: &[&str], allowed: bool, kept: Option<bool>) -> Check {
        let changed: Vec<String> = changed.iter().map(|s| (*s).to_owned()).collect();
        signals_check(stage, None, &changed, allowed, kept).0
    }

    #[test]
    fn link_falls_back_to_dlopen_without_a_trace() {
        let plugin = Path::new("/p/libx.so");
        let no_loader: Result<Trace, String> = Err("no dynamic loader found".into());
        let open = LoadError::Open("/p/libx.so: undefined symbol: cv_resize".into());
        let check = link_check(plugin, Some(&no_loader), Stage::Link, Some(&open));
        assert_eq!(check.status, Status::Fail);
        assert!(check.detail.contains("cv_resize"), "{}", check.detail);
        assert!(
            check.detail.contains("no dynamic loader found"),
            "{}",
            check.detail
        );

        let check = link_check(plugin, Some(&no_loader), Stage::Loaded, None);
        assert_eq!(check.status, Status::Ok);
        assert!(
            check.detail.contains("no dynamic loader found"),
            "{}",
            check.detail
        );

        let clean: Result<Trace, String> = Ok(Trace::default());
        let check = link_check(plugin, Some(&clean), Stage::Link, Some(&open));
        assert_eq!(check.status, Status::Fail, "dlopen's word counts too");
        assert_eq!(
            link_check(plugin, None, Stage::File, None).status,
            Status::Skipped
        );
    }

    #[test]
    fn trace_names_the_object_only_when_it_is_not_the_plugin() {
        let trace = symbols::parse(
            "undefined symbol: a\t(/p/libx.so)\nundefined symbol: b\t(/lib/libdep.so)\n\
             \tlibgone.so => not found\n",
        );
        assert_eq!(
            describe_trace(Path::new("libx.so"), &trace),
            "needed libraries not found: libgone.so; unresolved symbols: a, b (needed by \
             /lib/libdep.so)"
        );
    }

    #[test]
    fn signal_verdicts() {
        assert_eq!(
            signals(Stage::Loaded, &[], false, Some(false)).status,
            Status::Ok
        );
        assert_eq!(
            signals(Stage::Init, &[], false, None).status,
            Status::Skipped
        );
        // Handlers changed after the guard looked are still a fault of the plugin.
        let check = signals(Stage::Loaded, &["SIGINT"], false, Some(false));
        assert_eq!(check.status, Status::Fail);
        assert!(check.detail.contains("unmapped code"), "{}", check.detail);
        // Allowed and kept mapped: a warning.
        assert_eq!(
            signals(Stage::Loaded, &["SIGSEGV"], true, Some(true)).status,
            Status::Warn
        );
        // Allowed but not kept mapped (nothing guarded changed): the handler would dangle.
        assert_eq!(
            signals(Stage::Loaded, &["SIGINT"], true, Some(false)).status,
            Status::Fail
        );
        assert_eq!(
            signals(Stage::Init, &["SIGINT"], false, None).status,
            Status::Fail
        );

        let refused = LoadError::SignalHandler {
            signals: "SIGSEGV, SIGBUS".into(),
        };
        let (check, all) = signals_check(
            Stage::Signals,
            Some(&refused),
            &["SIGINT".into()],
            false,
            None,
        );
        assert_eq!(check.status, Status::Fail);
        assert_eq!(all, ["SIGSEGV", "SIGBUS", "SIGINT"]);
        assert!(check.detail.contains("SIGINT"), "{}", check.detail);
    }

    #[test]
    fn every_load_error_has_a_stage() {
        assert_eq!(
            failed_stage(&LoadError::NotAFile("a directory")),
            Stage::File
        );
        assert_eq!(failed_stage(&LoadError::Open(String::new())), Stage::Link);
        assert_eq!(
            failed_stage(&LoadError::AbiMismatch {
                expected: 1,
                found: 99
            }),
            Stage::Descriptor
        );
        assert!(Stage::File < Stage::Link && Stage::Signals < Stage::Loaded);
    }
}
