//! What a version serves through: a plugin loaded in this process, or one served by a worker
//! process of its own (an isolated load).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::LoadError;
use crate::host::{FixedOutput, SpillOutput, Written};
use crate::isolated::{Fail, Input, Isolation, Out, Remote};
use crate::plugin::{FixedFailure, LoadOptions, Plugin};
use crate::snapshot::{Digest, KeptCopy, SnapshotDir};

/// A loaded plugin, here or in a worker.
#[derive(Debug)]
pub enum Loaded {
    /// Mapped into this process.
    InProcess(Plugin),
    /// Served by a worker process.
    Isolated(IsolatedPlugin),
}

/// A plugin served by worker processes, and the snapshot they load.
#[derive(Debug)]
pub struct IsolatedPlugin {
    /// Declared first: the worker ends before the snapshot's name goes.
    remote: Remote,
    snapshot_path: PathBuf,
    /// Holds the snapshot's name (and descriptor) for restarts.
    _snapshot: crate::snapshot::Snapshot,
    digest: Digest,
    kept_copy: Option<KeptCopy>,
    serialized: bool,
}

impl IsolatedPlugin {
    /// The worker side of it.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }
}

impl Loaded {
    /// Opens `source` as `generation` of `key`: in this process, or, when the options ask for
    /// isolation, in a worker process started with `options.worker`.
    pub fn open(
        source: &Path,
        snapshots: &SnapshotDir,
        options: &LoadOptions<'_>,
        key: Arc<str>,
        generation: u64,
    ) -> Result<Loaded, LoadError> {
        let Some(isolation) = options.isolation else {
            return Plugin::open_as(source, snapshots, options, key, generation)
                .map(Loaded::InProcess);
        };
        let Some(worker) = options.worker else {
            return Err(LoadError::Isolated(
                "no proxyso-worker executable is configured (the system property proxyso.worker \
                 names it)"
                    .into(),
            ));
        };
        let snapshot = snapshots.take(source, options.sha256.as_ref())?;
        let kept_copy = if options.keep_copy {
            Some(snapshots.keep(&snapshot)?)
        } else {
            None
        };
        let remote = Remote::start(
            worker,
            snapshot.descriptor(),
            &source.display().to_string(),
            options.config,
            isolation,
            key,
            generation,
        )
        .map_err(LoadError::Isolated)?;
        let serialized = remote.info().flags & proxyso_abi::FLAG_SERIALIZE != 0;
        Ok(Loaded::Isolated(IsolatedPlugin {
            remote,
            snapshot_path: snapshot.path().to_path_buf(),
            digest: snapshot.digest().clone(),
            _snapshot: snapshot,
            kept_copy,
            serialized,
        }))
    }

    /// The isolated plugin, if this is one.
    pub fn isolated(&self) -> Option<&IsolatedPlugin> {
        match self {
            Loaded::Isolated(isolated) => Some(isolated),
            Loaded::InProcess(_) => None,
        }
    }

    /// How it was isolated, if it was.
    pub fn isolation(&self) -> Option<Isolation> {
        self.isolated().map(|i| i.remote.isolation())
    }

    /// The pid of the worker serving now; 0 in process (or while none runs).
    pub fn worker_pid(&self) -> i32 {
        self.isolated().map_or(0, |i| i.remote.worker_pid())
    }

    /// The SHA-256 of the file as loaded, perhaps still being computed.
    pub fn digest(&self) -> &Digest {
        match self {
            Loaded::InProcess(plugin) => plugin.digest(),
            Loaded::Isolated(isolated) => &isolated.digest,
        }
    }

    /// Takes the second name of the loaded bytes, if the options asked for one.
    pub fn take_kept_copy(&mut self) -> Option<KeptCopy> {
        match self {
            Loaded::InProcess(plugin) => plugin.take_kept_copy(),
            Loaded::Isolated(isolated) => isolated.kept_copy.take(),
        }
    }

    /// Tags the plugin's later log lines with `generation`.
    pub fn set_generation(&self, generation: u64) {
        match self {
            Loaded::InProcess(plugin) => plugin.set_generation(generation),
            Loaded::Isolated(isolated) => isolated.remote.set_generation(generation),
        }
    }

    /// The descriptor's `PROXYSO_FLAG_*` bits.
    pub fn flags(&self) -> u32 {
        match self {
            Loaded::InProcess(plugin) => plugin.flags(),
            Loaded::Isolated(isolated) => isolated.remote.info().flags,
        }
    }

    /// The plugin's own name.
    pub fn name(&self) -> &str {
        match self {
            Loaded::InProcess(plugin) => plugin.name(),
            Loaded::Isolated(isolated) => &isolated.remote.info().name,
        }
    }

    /// The plugin's own version string.
    pub fn version(&self) -> &str {
        match self {
            Loaded::InProcess(plugin) => plugin.version(),
            Loaded::Isolated(isolated) => &isolated.remote.info().version,
        }
    }

    /// The method names; the first is the default.
    pub fn method_names(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Loaded::InProcess(plugin) => Box::new(plugin.method_names()),
            Loaded::Isolated(isolated) => {
                Box::new(isolated.remote.info().methods.iter().map(String::as_str))
            }
        }
    }

    /// The index of the method called `name`, or of the default method for `None`.
    pub fn method_index(&self, name: Option<&str>) -> Option<usize> {
        match self {
            Loaded::InProcess(plugin) => plugin.method_index(name),
            Loaded::Isolated(isolated) => match name {
                None => Some(0),
                Some(name) => isolated
                    .remote
                    .info()
                    .methods
                    .iter()
                    .position(|m| m == name),
            },
        }
    }

    /// True when the plugin asked for its calls to be serialised.
    pub fn serialized(&self) -> bool {
        match self {
            Loaded::InProcess(plugin) => plugin.serialized(),
            Loaded::Isolated(isolated) => isolated.serialized,
        }
    }

    /// True when closing it will leave it mapped on purpose (never for an isolated one: this
    /// process never maps it).
    pub fn kept_mapped(&self) -> bool {
        match self {
            Loaded::InProcess(plugin) => plugin.kept_mapped(),
            Loaded::Isolated(_) => false,
        }
    }

    /// The private copy that is loaded.
    pub fn snapshot_path(&self) -> &Path {
        match self {
            Loaded::InProcess(plugin) => plugin.snapshot_path(),
            Loaded::Isolated(isolated) => &isolated.snapshot_path,
        }
    }

    /// Calls method `index` with `input`; on success `out` holds the output.
    pub fn call(&self, index: usize, input: &[u8], out: &mut Vec<u8>) -> Result<(), Fail> {
        match self {
            Loaded::InProcess(plugin) => plugin.call(index, input, out).map_err(Fail::Plugin),
            Loaded::Isolated(isolated) => {
                isolated
                    .remote
                    .call(index, Input::Bytes(input), Out::Grow(out))
            }
        }
    }

    /// Calls method `index` on `len` bytes that `fill` writes, handing the output to `take`: in
    /// a worker, straight into and out of its slot, so that a caller whose bytes live elsewhere
    /// (a Java array) copies each once; in this process, through buffers of this call.
    pub fn call_staged(
        &self,
        index: usize,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]),
        take: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Fail> {
        match self {
            Loaded::InProcess(plugin) => {
                let mut input = vec![0; len];
                fill(&mut input);
                let mut output = Vec::new();
                plugin
                    .call(index, &input, &mut output)
                    .map_err(Fail::Plugin)?;
                take(&output);
                Ok(())
            }
            Loaded::Isolated(isolated) => {
                isolated
                    .remote
                    .call(index, Input::Fill(len, fill), Out::Take(take))
            }
        }
    }

    /// Calls method `index` with `input`, its output in place in `out` or spilled (see
    /// `SpillOutput`).
    pub fn call_spill(
        &self,
        index: usize,
        input: &[u8],
        out: SpillOutput<'_>,
    ) -> Result<Written, Fail> {
        match self {
            Loaded::InProcess(plugin) => plugin.call_spill(index, input, out).map_err(Fail::Plugin),
            Loaded::Isolated(isolated) => {
                let mut out = Some(out);
                let mut written = Written::InPlace(0);
                let mut take = |answer: &[u8]| {
                    if let Some(out) = out.take() {
                        written = out.fill(answer);
                    }
                };
                isolated
                    .remote
                    .call(index, Input::Bytes(input), Out::Take(&mut take))?;
                Ok(written)
            }
        }
    }

    /// Calls method `index` with `input`, writing into `out`; returns how many bytes.
    pub fn call_fixed(
        &self,
        index: usize,
        input: &[u8],
        out: &mut FixedOutput<'_>,
    ) -> Result<usize, Fail> {
        match self {
            Loaded::InProcess(plugin) => {
                plugin
                    .call_fixed(index, input, out)
                    .map_err(|failure| match failure {
                        FixedFailure::TooSmall { required } => Fail::TooSmall { required },
                        FixedFailure::Plugin(failure) => Fail::Plugin(failure),
                    })
            }
            Loaded::Isolated(isolated) => {
                isolated.remote.call_fixed(index, input, out)?;
                out.written().map_err(Fail::Refused)
            }
        }
    }

    /// Destroys and closes it (in a worker: runs `destroy` there and ends the worker); true
    /// when the library stays loaded in this process.
    pub fn close(self) -> bool {
        match self {
            Loaded::InProcess(plugin) => plugin.close(),
            Loaded::Isolated(isolated) => {
                isolated.remote.close();
                false
            }
        }
    }
}

/// Crash-containment limits a load asks for, checked: `Err` names the bad one.
pub fn check_isolation(isolation: &Isolation) -> Result<(), String> {
    if isolation.call_timeout == Some(std::time::Duration::ZERO) {
        return Err("callTimeout must be positive".into());
    }
    if isolation.memory_limit == Some(0) {
        return Err("memoryLimit must be positive".into());
    }
    if isolation.probation.is_zero() && isolation.rollback_on_crash {
        return Err("probation must be positive when rollbackOnCrash is set".into());
    }
    Ok(())
}
