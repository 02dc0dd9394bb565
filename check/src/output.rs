//! Where the report goes and how it reads: one line per check for people, one JSON object for
//! scripts.

use std::io::{self, Write};

use crate::report::{Report, Status};

/// Writes the report as one JSON object on one line.
pub fn json(report: &Report, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer(&mut *out, report)?;
    writeln!(out)
}

/// Writes the report for people: the plugin, one line per check with the facts under it, and
/// a closing verdict.
pub fn human(report: &Report, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{}", report.plugin)?;
    for check in &report.checks {
        let tag = match check.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skipped => "--",
        };
        writeln!(out, "{tag:<5} {:<11} {}", check.name, check.detail)?;
        for (label, value) in &check.facts {
            writeln!(out, "{:<5} {label:<11} {value}", "")?;
        }
    }
    for line in &report.log {
        let from = match (line.from_plugin, line.worker) {
            (true, false) => "plugin",
            (false, false) => "proxy",
            (true, true) => "plugin (worker)",
            (false, true) => "proxy (worker)",
        };
        writeln!(
            out,
            "{:<5} {:<11} {from} {}: {}",
            "", "log", line.level, line.message
        )?;
    }
    writeln!(out, "{}", summary(report))
}

/// The closing line: which checks failed, or that all passed.
fn summary(report: &Report) -> String {
    let named = |status: Status| -> Vec<&str> {
        report
            .checks
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.name.as_str())
            .collect()
    };
    let failed = named(Status::Fail);
    let warned = named(Status::Warn);
    let skipped = named(Status::Skipped).len();
    if failed.is_empty() {
        let run = report.checks.len() - skipped;
        let mut line = format!("result: ok, all {run} checks passed");
        if !warned.is_empty() {
            line.push_str(&format!(" (warning: {})", warned.join(", ")));
        }
        line
    } else {
        let mut line = format!("result: FAIL ({})", failed.join(", "));
        if skipped > 0 {
            line.push_str(&format!("; {skipped} not run"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Check;

    fn report(checks: Vec<Check>) -> Report {
        let mut report = Report {
            plugin: "/p/libx.so".into(),
            ..Report::default()
        };
        for check in checks {
            report.push(check);
        }
        report.finish()
    }

    fn text(report: &Report) -> String {
        let mut out = Vec::new();
        human(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn one_line_per_check_facts_under_it_and_a_verdict() {
        let report = report(vec![
            Check::new("file", Status::Ok, "fine").with_fact("name", "x"),
            Check::new("init", Status::Fail, "init refused"),
            Check::new("call", Status::Skipped, "not made"),
        ]);
        assert_eq!(
            text(&report),
            "/p/libx.so\n\
             ok    file        fine\n\
             \x20     name        x\n\
             FAIL  init        init refused\n\
             --    call        not made\n\
             result: FAIL (init); 1 not run\n"
        );
    }

    #[test]
    fn a_passing_report_says_so_with_its_warnings() {
        let report = report(vec![
            Check::new("file", Status::Ok, ""),
            Check::new("signals", Status::Warn, ""),
        ]);
        assert!(
            text(&report).ends_with("result: ok, all 2 checks passed (warning: signals)\n"),
            "{}",
            text(&report)
        );
    }

    #[test]
    fn json_is_one_object_on_one_line() {
        let report = report(vec![Check::new("file", Status::Fail, "empty")]);
        let mut out = Vec::new();
        json(&report, &mut out).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert_eq!(line.lines().count(), 1);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["ok"], false);
        assert_eq!(value["checks"][0]["status"], "fail");
        assert_eq!(value["plugin"], "/p/libx.so");
    }
}
