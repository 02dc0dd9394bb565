//! The pre-flight load: the snapshot `dlopen`ed in a child process before this process opens
//! it.
//!
//! `elf::check` refuses files that would send the dynamic linker outside the file, but no check
//! of the bytes can prove that loading them is safe: a library's constructors run arbitrary
//! code, and a file that is corrupt in a way the checks do not model can still crash `ld.so`.
//! Inside the JVM either kills the process. So a load can first have `proxyso-worker` (see its
//! crate for the protocol) `dlopen` the very snapshot, received as descriptor 3, in a
//! short-lived child process started by `child`: if that child crashes, exits with an error or
//! hangs, the load fails with what happened to it and the JVM never opens the file. The child
//! never runs the plugin's `init`. It costs a process start and a second `dlopen`: a few
//! milliseconds per load.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::protocol as worker;

use crate::child::{self, End};
use crate::error::LoadError;
use crate::snapshot::{self, Snapshot};

/// The `proxyso-worker` executable, open: every pre-flight runs these bytes through the
/// descriptor (`child::Command::from_file`), never the name, which another user could swap in
/// a shared directory once a tmp cleaner removed ours, and which may be deleted at once.
#[derive(Debug, Clone)]
pub struct Worker {
    path: PathBuf,
    file: Arc<File>,
}

impl Worker {
    /// Opens the executable at `path` (read-only, close-on-exec) and checks that it is a
    /// regular file its owner may execute.
    pub fn open(path: &Path) -> Result<Worker, String> {
        let shown = path.display();
        let file = File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot read {shown}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("{shown} is not a regular file"));
        }
        if meta.permissions().mode() & 0o100 == 0 {
            return Err(format!("{shown} is not executable by its owner"));
        }
        Ok(Worker {
            path: path.to_path_buf(),
            file: Arc::new(file),
        })
    }

    /// Where it was opened from (it may be deleted since).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open executable.
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// The longest a pre-flight may take before its child is killed and the load fails.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// What the worker calls the library in its messages.
const WORKER_LIBRARY_PATH: &str = "/proc/self/fd/3";

/// Has `worker` `dlopen` `snapshot` (the copy of `source`) in a child process; `Ok` when the
/// library loaded there and declares this ABI version.
///
/// With no worker the load fails too: a pre-flight that was asked for is never skipped.
pub fn check(worker: Option<&Worker>, snapshot: &Snapshot, source: &Path) -> Result<(), LoadError> {
    let Some(worker) = worker else {
        return Err(LoadError::Preflight(
            "no proxyso-worker executable is configured (the system property proxyso.worker \
             names it)"
                .into(),
        ));
    };
    // A read-only descriptor of the very inode that was written and hashed (reopened through
    // `/proc/self/fd`, never by name): the child maps exactly these bytes, and cannot write
    // them through what it inherits.
    let library = File::open(snapshot.fd_path()).map_err(LoadError::Read)?;
    let [mode, parent] = worker::preflight_args(std::process::id());
    let outcome = child::Command::from_file(&worker.file, &worker.path)
        .arg(mode)
        .arg(parent)
        .extra_fd(library.as_fd())
        .timeout(TIMEOUT)
        .run()
        .map_err(|e| {
            LoadError::Preflight(format!(
                "cannot start the worker {}: {e}",
                worker.path.display()
            ))
        })?;
    let shown = source.display().to_string();
    let output = snapshot::mention_source(
        &outcome.output_text(),
        Path::new(WORKER_LIBRARY_PATH),
        &shown,
    );
    let output = if output.is_empty() {
        String::new()
    } else {
        format!("; its output ended with: {output}")
    };
    match outcome.end {
        End::Exited(worker::exit::OK) => Ok(()),
        End::Exited(code) => Err(LoadError::Preflight(format!(
            "the child exited with code {code} ({}){output}",
            worker::describe_exit(code).unwrap_or("an unknown code")
        ))),
        end @ End::Signaled { .. } => Err(LoadError::Preflight(format!(
            "the child {end} while loading the library{output}"
        ))),
        end @ End::TimedOut(_) => Err(LoadError::Preflight(format!(
            "the child {end} while loading the library{output}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_worker_receives_the_library_where_it_looks_for_it() {
        assert_eq!(crate::protocol::LIBRARY_FD, crate::child::EXTRA_FD);
        assert_eq!(
            super::WORKER_LIBRARY_PATH,
            format!("/proc/self/fd/{}", crate::protocol::LIBRARY_FD)
        );
    }
}
