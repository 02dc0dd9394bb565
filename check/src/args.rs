//! The command line, and the request it stands for once its files are read.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use proxyso_core::preflight::Worker;

/// Loads a proxyso plugin exactly as the proxy would, without a JVM, and reports what it found.
///
/// Checks, in the order of a real load: the file (a whole ELF shared object for this machine),
/// linking (every needed library and every symbol, as `ldd -r` lists them), the descriptor (ABI
/// version, name, version, methods, flags), the exports (nothing but `proxyso_plugin`; every
/// STB_GNU_UNIQUE symbol named), `init` with the given config, the signal handlers plugin code
/// installed, an optional sample call, and unloading (`destroy`, then `dlclose` really unmaps
/// it). The plugin's code runs in a child process: a crash or abort there fails the check it
/// was in, naming the signal. Options may come before or after the plugin. Exit status: 0 when
/// every check passed, 1 when one failed, 2 for a usage error.
#[derive(Debug, Parser)]
#[command(
    name = "proxyso-check",
    version,
    override_usage = "proxyso-check [OPTIONS] PLUGIN.so [OPTIONS]"
)]
pub struct Args {
    /// The plugin library to check. Options may come before or after it.
    #[arg(value_name = "PLUGIN.so")]
    pub plugin: Option<PathBuf>,

    /// Hand `init` the contents of FILE as its config ("-" reads standard input).
    #[arg(long, value_name = "FILE", conflicts_with = "config_text")]
    pub config: Option<PathBuf>,

    /// Hand `init` TEXT as its config (default: an empty config).
    #[arg(long, value_name = "TEXT")]
    pub config_text: Option<String>,

    /// Make a sample call of METHOD, or of the default method when none is named. In
    /// `--call PLUGIN.so` with no other path, the path is the plugin (the default method is
    /// called).
    #[arg(long, value_name = "METHOD")]
    pub call: Option<Option<String>>,

    /// The sample call's input: the contents of FILE ("-" reads standard input).
    #[arg(
        long,
        value_name = "FILE",
        requires = "call",
        conflicts_with = "input_text"
    )]
    pub input: Option<PathBuf>,

    /// The sample call's input: TEXT as UTF-8 (default: empty).
    #[arg(long, value_name = "TEXT", requires = "call")]
    pub input_text: Option<String>,

    /// Load the plugin even if it changes a signal handler the JVM relies on, as the Java
    /// option allowSignalHandlers(true) does (the version is then kept mapped).
    #[arg(long)]
    pub allow_signal_handlers: bool,

    /// Load with RTLD_NODELETE, as the Java option keepMapped(true) does.
    #[arg(long)]
    pub keep_mapped: bool,

    /// Where the private snapshot copy is written (default: the temporary directory). It must
    /// allow executable mappings (not `noexec`).
    #[arg(long, value_name = "DIR")]
    pub snapshot_dir: Option<PathBuf>,

    /// Kill the plugin's code (it runs in a child process) after SECONDS; the check it was in
    /// fails. With --isolated, also the sample call's timeout in its worker (and the longest
    /// the worker may take to load the plugin).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,

    /// Make the sample call in a worker process, as the proxy serves a key loaded with
    /// isolated(true): the plugin is loaded and initialised again in a `proxyso-worker`, and
    /// the call's answer, or the crash (signal or exit status, and what the worker wrote last)
    /// or the timeout, is reported. The other checks are made as without it.
    #[arg(long, requires = "call")]
    pub isolated: bool,

    /// The `proxyso-worker` executable for --isolated (default: the one next to
    /// proxyso-check).
    #[arg(long, value_name = "PATH", requires = "isolated")]
    pub worker: Option<PathBuf>,

    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
}

/// Bytes handed to the plugin, and where they came from (for the report).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Payload {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Where they came from: "an empty config", "config.txt", "the text \"abc\"", ...
    pub source: String,
}

/// The sample call asked for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallRequest {
    /// The method named, or `None` for the default method.
    pub method: Option<String>,
    /// The input.
    pub input: Payload,
}

/// Everything a check needs, its files read.
#[derive(Debug)]
pub struct Request {
    /// The plugin as given.
    pub plugin: PathBuf,
    /// The config handed to `init`.
    pub config: Payload,
    /// The sample call, if one was asked for.
    pub call: Option<CallRequest>,
    /// See [`Args::allow_signal_handlers`].
    pub allow_signal_handlers: bool,
    /// See [`Args::keep_mapped`].
    pub keep_mapped: bool,
    /// Where the snapshot directory is made.
    pub snapshot_parent: PathBuf,
    /// Print JSON.
    pub json: bool,
    /// How long the plugin's code may run, all of it.
    pub timeout: Duration,
    /// The worker that makes the sample call, with `--isolated`.
    pub worker: Option<Worker>,
}

impl Args {
    /// Reads the config and input files; an error is a usage error, naming the file and cause.
    pub fn into_request(self) -> Result<Request, String> {
        if self.config.as_deref() == Some(Path::new("-"))
            && self.input.as_deref() == Some(Path::new("-"))
        {
            return Err("--config and --input cannot both read standard input".to_owned());
        }
        let (plugin, call) = match (self.plugin, self.call) {
            (Some(plugin), call) => (plugin, call),
            // `--call PLUGIN.so`: the only path there is was taken for the method.
            (None, Some(Some(path))) => (PathBuf::from(path), Some(None)),
            (None, _) => return Err("no plugin given: proxyso-check [OPTIONS] PLUGIN.so".into()),
        };
        let config = payload(self.config, self.config_text, "config", "an empty config")?;
        let call = match call {
            None => None,
            Some(method) => Some(CallRequest {
                method,
                input: payload(self.input, self.input_text, "input", "an empty input")?,
            }),
        };
        let worker = if self.isolated {
            Some(find_worker(self.worker.as_deref())?)
        } else {
            None
        };
        Ok(Request {
            plugin,
            config,
            call,
            allow_signal_handlers: self.allow_signal_handlers,
            keep_mapped: self.keep_mapped,
            snapshot_parent: self.snapshot_dir.unwrap_or_else(std::env::temp_dir),
            json: self.json,
            timeout: Duration::from_secs(self.timeout),
            worker,
        })
    }
}

/// The name of the worker executable, as cargo builds it beside the checker.
pub const WORKER_NAME: &str = "proxyso-worker";

/// The worker executable for `--isolated`: `given`, or the one next to this executable.
fn find_worker(given: Option<&Path>) -> Result<Worker, String> {
    if let Some(path) = given {
        return Worker::open(path).map_err(|e| format!("--worker: {e}"));
    }
    let exe = std::env::current_exe()
        .map_err(|e| format!("--isolated: cannot tell where proxyso-check is: {e}"))?;
    let beside = exe.with_file_name(WORKER_NAME);
    if !beside.exists() {
        return Err(format!(
            "--isolated needs the {WORKER_NAME} executable, and there is none next to \
             proxyso-check ({} does not exist): build it (cargo build -p proxyso-worker) or \
             name it with --worker PATH",
            beside.display()
        ));
    }
    Worker::open(&beside).map_err(|e| format!("--isolated: {e}"))
}

/// The bytes of `file` or `text` (clap lets at most one through), or an empty payload.
fn payload(
    file: Option<PathBuf>,
    text: Option<String>,
    what: &str,
    empty: &str,
) -> Result<Payload, String> {
    if let Some(text) = text {
        return Ok(Payload {
            source: format!("the text {text:?}"),
            bytes: text.into_bytes(),
        });
    }
    let Some(file) = file else {
        return Ok(Payload {
            bytes: Vec::new(),
            source: empty.to_owned(),
        });
    };
    let bytes = if file == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read the {what} from standard input: {e}"))?;
        bytes
    } else {
        std::fs::read(&file)
            .map_err(|e| format!("cannot read the {what} file '{}': {e}", file.display()))?
    };
    Ok(Payload {
        bytes,
        source: if file == Path::new("-") {
            "standard input".to_owned()
        } else {
            format!("'{}'", file.display())
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("proxyso-check").chain(args.iter().copied()))
    }

    #[test]
    fn call_takes_an_optional_method() {
        assert_eq!(parse(&["p.so"]).unwrap().call, None);
        assert_eq!(parse(&["p.so", "--call"]).unwrap().call, Some(None));
        assert_eq!(
            parse(&["p.so", "--call", "sum"]).unwrap().call,
            Some(Some("sum".to_owned()))
        );
        assert_eq!(
            parse(&["--call=sum", "p.so"]).unwrap().call,
            Some(Some("sum".to_owned()))
        );
        // The next option is not taken for a method name.
        let args = parse(&["p.so", "--call", "--input-text", "x"]).unwrap();
        assert_eq!(args.call, Some(None));
    }

    #[test]
    fn input_needs_a_call_and_sources_exclude_each_other() {
        assert!(parse(&["p.so", "--input-text", "x"]).is_err());
        assert!(parse(&["p.so", "--config", "f", "--config-text", "x"]).is_err());
        assert!(parse(&["p.so", "--call", "--input", "f", "--input-text", "x"]).is_err());
    }

    #[test]
    fn options_go_before_or_after_the_plugin() {
        let request = |args: &[&str]| parse(args).unwrap().into_request().unwrap();
        for args in [
            &["p.so", "--json", "--call", "sum", "--keep-mapped"][..],
            &["--json", "--call", "sum", "p.so", "--keep-mapped"],
            &["--keep-mapped", "--call=sum", "--json", "p.so"],
        ] {
            let request = request(args);
            assert_eq!(request.plugin, PathBuf::from("p.so"), "{args:?}");
            assert_eq!(request.call.unwrap().method.as_deref(), Some("sum"));
            assert!(request.json && request.keep_mapped, "{args:?}");
        }
        // The path right after --call: the plugin, with a call of the default method.
        let request = request(&["--json", "--call", "p.so", "--input-text", "x"]);
        assert_eq!(request.plugin, PathBuf::from("p.so"));
        assert_eq!(request.call.unwrap().method, None);
        let err = parse(&[]).unwrap().into_request().unwrap_err();
        assert!(err.contains("no plugin given"), "{err}");
        assert!(parse(&["--json"]).unwrap().into_request().is_err());
    }

    #[test]
    fn request_reads_text_and_names_a_missing_file() {
        let request = parse(&["p.so", "--config-text", "tag", "--call", "echo"])
            .unwrap()
            .into_request()
            .unwrap();
        assert_eq!(request.config.bytes, b"tag");
        let call = request.call.unwrap();
        assert_eq!(call.method.as_deref(), Some("echo"));
        assert_eq!(call.input.source, "an empty input");

        let err = parse(&["p.so", "--config", "/nonexistent/config.bin"])
            .unwrap()
            .into_request()
            .unwrap_err();
        assert!(err.contains("/nonexistent/config.bin"), "{err}");
    }

    #[test]
    fn stdin_is_read_once_at_most() {
        let err = parse(&["p.so", "--config", "-", "--call", "--input", "-"])
            .unwrap()
            .into_request()
            .unwrap_err();
        assert!(err.contains("standard input"), "{err}");
    }
}
