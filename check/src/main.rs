//! `proxyso-check`: loads a proxyso plugin exactly as the proxy would, without a JVM, and
//! reports what it found (see `args` for the checks). Exit status: 0 when every check passed,
//! 1 when one failed, 2 for a usage error.
#![deny(missing_docs)]

mod args;
mod exports;
mod in_worker;
mod isolate;
mod output;
mod report;
mod run;
mod symbols;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// Every check passed.
const PASSED: u8 = 0;
/// A check failed.
const FAILED: u8 = 1;
/// The command line could not be used (clap exits with the same status for its own errors).
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == isolate::CHILD_FLAG) {
        return isolate::child_main(&args[1..]);
    }
    let request = match args::Args::parse().into_request() {
        Ok(request) => request,
        Err(message) => {
            eprintln!("proxyso-check: {message}");
            return ExitCode::from(USAGE);
        }
    };
    // The plugin's code runs in a child process (`isolate`), whose standard output is not
    // this one: nothing it prints can land in the report.
    let mut report = isolate::run(&request);
    // With --isolated, the sample call is made in a worker process, from this one.
    in_worker::add_call(&request, &mut report);
    let mut out = std::io::stdout().lock();
    let written = if request.json {
        output::json(&report, &mut out)
    } else {
        output::human(&report, &mut out)
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        eprintln!("proxyso-check: cannot write the report: {e}");
        return ExitCode::from(FAILED);
    }
    ExitCode::from(if report.ok { PASSED } else { FAILED })
}
