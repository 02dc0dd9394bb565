//! The registry: string keys to the version that serves each, and the call hot path.
//!
//! Readers never lock. The key map is copy-on-write behind an `ArcSwap`, and each key's current
//! version sits in its own `hazard::Shared`: a call holds it through a slot of its own thread
//! (plain loads and stores, no locked instruction), calls the plugin, and lets go. Writers
//! (load, replace, unload) build the new version completely before anyone can see it, then swap
//! it in with one store; the version swapped out retires once no slot holds it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::error::Error;
use crate::hazard::{Held, Shared, Unlinked};
use crate::history::{self, History, Origin};
use crate::host::{FixedOutput, SpillOutput, Written};
use crate::loaded::{self, Loaded};
use crate::log::{self, Level};
use crate::plugin::LoadOptions;
use crate::retire::Ledger;
use crate::snapshot::{self, SnapshotDir};
use crate::stats::{Counts, GenerationStats, KeyStats};
use crate::version::Version;

/// The longest key accepted, in UTF-8 bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// What `info` tells about a loaded key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryInfo {
    /// The key.
    pub key: String,
    /// The serving version's generation.
    pub generation: u64,
    /// The path it was loaded from, as given.
    pub path: String,
    /// The private copy that is mapped.
    pub snapshot_path: PathBuf,
    /// The plugin's own name.
    pub name: String,
    /// The plugin's own version string.
    pub version: String,
    /// Its method names, the default first.
    pub methods: Vec<String>,
    /// True when the plugin asked for its calls to be serialised.
    pub serialized: bool,
    /// True when this version stays mapped after it retires (by option or plugin flag).
    pub kept_mapped: bool,
    /// Versions of this key destroyed and closed so far.
    pub retired_versions: u64,
    /// Of those, how many stayed mapped after `dlclose` although not kept on purpose.
    pub pinned_versions: u64,
    /// `destroy` calls of retired versions of this key running now.
    pub destroys_running: u64,
    /// `destroy` calls of this key's versions that ran longer than the slow-destroy limit
    /// (`retire::slow_destroy_limit`), counted when they pass it.
    pub slow_destroys: u64,
    /// The SHA-256 of the serving version's file, as loaded.
    pub sha256: [u8; 32],
    /// Calls over every generation the key has had.
    pub totals: Counts,
    /// Successful replacements.
    pub replacements: u64,
    /// Successful rollbacks.
    pub rollbacks: u64,
    /// The message of the last failed call, replace or rollback, whichever came last.
    pub last_error: Option<String>,
    /// The serving generation, then the ones still draining, newest first.
    pub generations: Vec<GenerationInfo>,
    /// How many previous versions the key keeps for rollback.
    pub keep_versions: usize,
    /// The previous versions kept, the one rollback restores first.
    pub previous: Vec<PreviousVersion>,
    /// True when the serving version runs in a worker process.
    pub isolated: bool,
    /// The pid of the worker serving it now; 0 in process (or while none runs).
    pub worker_pid: i32,
    /// Worker processes of the key's isolated versions that died unasked, over its life.
    pub crashes: u64,
}

/// One generation's figures in `LibraryInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationInfo {
    /// Its number.
    pub generation: u64,
    /// The SHA-256 of its file, as loaded.
    pub sha256: [u8; 32],
    /// How long loading it took, in nanoseconds.
    pub load_nanos: u64,
    /// Its calls.
    pub counts: Counts,
    /// How many times its worker process died unasked (isolated only).
    pub crashes: u64,
}

/// A previous version kept for rollback, in `LibraryInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousVersion {
    /// The generation it served as.
    pub generation: u64,
    /// Its source path, as given.
    pub path: String,
    /// The SHA-256 of its kept bytes.
    pub sha256: [u8; 32],
}

/// One key's place in the registry.
#[derive(Debug)]
struct Slot {
    key: Arc<str>,
    /// The serving version; `None` once the key is unloaded.
    current: Shared<Version>,
    /// The last generation handed out; its lock serialises swaps on this key.
    generation: Mutex<u64>,
    stats: Arc<KeyStats>,
    /// Previous versions kept for rollback.
    history: Mutex<History>,
}

impl Slot {
    /// The serving version, held for the length of a call.
    #[inline]
    fn current(&self) -> Result<Current, Error> {
        match self.current.load() {
            Some(version) => Ok(version),
            None => Err(Error::NoSuchLibrary {
                key: self.key.to_string(),
            }),
        }
    }
}

type Slots = HashMap<Arc<str>, Arc<Slot>>;

/// A key resolved once. Every call reaches the version serving the key at that moment, so a
/// handle follows replacements; once the key is unloaded its calls fail with `NoSuchLibrary`
/// (loading the key again makes a new library, which the handle does not follow).
#[derive(Debug, Clone)]
pub struct LibraryHandle {
    slot: Arc<Slot>,
}

impl LibraryHandle {
    /// The key it was resolved from.
    pub fn key(&self) -> &str {
        &self.slot.key
    }

    /// Calls `method` (the default for `None`); on success `out` holds the output.
    #[inline]
    pub fn call(&self, method: Option<&str>, input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.slot.current()?.call(method, input, out)
    }

    /// Calls `method` writing into a caller-owned buffer; returns how many bytes were written.
    pub fn call_fixed(
        &self,
        method: Option<&str>,
        input: &[u8],
        out: &mut FixedOutput<'_>,
    ) -> Result<usize, Error> {
        self.slot.current()?.call_fixed(method, input, out)
    }

    /// `call_fixed`, for a critical downcall when `critical` is set: `Ok(None)`, without calling
    /// anything, when the method is not known to be short (see `brevity`).
    pub fn call_fixed_short(
        &self,
        method: Option<&str>,
        input: &[u8],
        out: &mut FixedOutput<'_>,
        critical: bool,
    ) -> Result<Option<usize>, Error> {
        self.slot
            .current()?
            .call_fixed_short(method, input, out, critical)
    }

    /// Calls `method` on `len` bytes that `fill` writes, handing the output to `take` (see
    /// `Loaded::call_staged`): for a caller whose bytes live elsewhere, whose isolated calls then
    /// copy each once on this side.
    pub fn call_staged(
        &self,
        method: Option<&str>,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]),
        take: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Error> {
        self.slot.current()?.call_staged(method, len, fill, take)
    }

    /// True when the version serving now runs its plugin in a worker process; false when the
    /// key is unloaded.
    pub fn is_isolated(&self) -> bool {
        self.slot
            .current()
            .is_ok_and(|version| version.is_isolated())
    }

    /// True when `method` of the version serving now is known to be short on inputs of `len`
    /// bytes (see `Version::is_short`); false when the key is unloaded.
    #[inline]
    pub fn is_short(&self, method: Option<&str>, len: usize) -> bool {
        self.slot
            .current()
            .is_ok_and(|version| version.is_short(method, len))
    }

    /// Calls `method` writing into `out`, in place or spilled (see `SpillOutput`); for a
    /// critical downcall when `critical` is set: `Ok(None)`, without calling anything, when the
    /// method is not known to be short (see `brevity`).
    pub fn call_spill(
        &self,
        method: Option<&str>,
        input: &[u8],
        out: SpillOutput<'_>,
        critical: bool,
    ) -> Result<Option<Written>, Error> {
        self.slot
            .current()?
            .call_spill(method, input, out, critical)
    }

    /// A handle to a key that was never loaded: every call fails with `NoSuchLibrary`. For
    /// tests of what holds handles.
    pub fn detached(key: &str) -> LibraryHandle {
        LibraryHandle {
            slot: Arc::new(Slot {
                key: key.into(),
                current: Shared::default(),
                generation: Mutex::new(0),
                stats: Arc::default(),
                history: Mutex::default(),
            }),
        }
    }

    /// Checks that the serving version has `method`.
    pub fn check_method(&self, method: Option<&str>) -> Result<(), Error> {
        self.slot.current()?.check_method(method)
    }
}

/// Keys to loaded plugin versions.
#[derive(Debug)]
pub struct Registry {
    /// Shared with the threads that roll an isolated version back after a crash.
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    slots: ArcSwap<Slots>,
    /// Serialises changes to the key map (not calls, not replaces).
    writers: Mutex<()>,
    ledger: Arc<Ledger>,
    snapshots: SnapshotDir,
}

impl Registry {
    /// An empty registry that writes its private snapshots below `snapshot_dir`.
    pub fn new(snapshot_dir: PathBuf) -> Registry {
        Registry {
            inner: Arc::new(Inner {
                slots: ArcSwap::default(),
                writers: Mutex::new(()),
                ledger: Arc::default(),
                snapshots: SnapshotDir::new(snapshot_dir),
            }),
        }
    }

    /// Changes where later loads write their private snapshots.
    pub fn set_snapshot_dir(&self, dir: PathBuf) {
        self.inner.snapshots.set_parent(dir);
    }

    /// Removes the snapshot directory at process exit (a static registry is never dropped).
    pub fn clean_up_at_exit(&self) {
        self.inner.snapshots.remove_if_idle();
    }

    /// Loads the plugin at `path` under a new `key` with default options; returns 1.
    pub fn load(&self, key: &str, path: &str, config: &[u8]) -> Result<u64, Error> {
        self.load_with(key, path, &LoadOptions::config(config))
    }

    /// Loads the plugin at `path` under a new `key`; returns its generation, 1.
    pub fn load_with(
        &self,
        key: &str,
        path: &str,
        options: &LoadOptions<'_>,
    ) -> Result<u64, Error> {
        check_key(key)?;
        let keep = check_keep(key, options.keep_versions)?.unwrap_or(history::DEFAULT_KEEP);
        check_isolation(key, options)?;
        if self.inner.slots.load().contains_key(key) {
            return Err(Error::AlreadyLoaded { key: key.into() });
        }
        let key: Arc<str> = key.into();
        let (mut plugin, load_nanos) = self
            .open(&key, Path::new(path), options, keep, 1)
            .map_err(|e| loudly(&key, e))?;
        let writers = lock(&self.inner.writers);
        let slots = self.inner.slots.load();
        if slots.contains_key(&key) {
            drop(writers);
            // Lost a race with another load of the same key: close ours, it never served.
            drop(plugin);
            return Err(Error::AlreadyLoaded {
                key: key.to_string(),
            });
        }
        let stats = Arc::<KeyStats>::default();
        let origin = origin(path, 1, options, &mut plugin);
        let version = self.version(&key, 1, plugin, load_nanos, origin, &stats);
        log::event(Level::Info, &key, 1, describe_load("loaded", &version));
        let slot = Slot {
            key: Arc::clone(&key),
            current: Shared::new(Some(Arc::new(version))),
            generation: Mutex::new(1),
            stats,
            history: Mutex::new(History::new(keep)),
        };
        let mut next = Slots::clone(&slots);
        next.insert(key, Arc::new(slot));
        self.inner.slots.store(Arc::new(next));
        Ok(1)
    }

    /// Replaces `key` with the plugin at `path` with default options; see `replace_with`.
    pub fn replace(&self, key: &str, path: &str, config: &[u8]) -> Result<u64, Error> {
        self.replace_with(key, path, &LoadOptions::config(config))
    }

    /// Loads a new version of `key` from `path` and swaps it in; returns its generation.
    ///
    /// The old version keeps serving until the new one is fully loaded and initialised, and
    /// entirely if anything fails. Calls already in the old version finish there; it is
    /// destroyed and closed after the last of them returns. It is kept for `rollback` if the
    /// key keeps previous versions.
    pub fn replace_with(
        &self,
        key: &str,
        path: &str,
        options: &LoadOptions<'_>,
    ) -> Result<u64, Error> {
        check_key(key)?;
        let asked_keep = check_keep(key, options.keep_versions)?;
        check_isolation(key, options)?;
        let slot = self.slot(key)?;
        let keep = asked_keep.unwrap_or_else(|| lock(&slot.history).keep());
        let next = *lock(&slot.generation) + 1;
        let opened = self.open(&slot.key, Path::new(path), options, keep, next);
        let (plugin, load_nanos) = opened.map_err(|e| {
            slot.stats.failed(e.to_string());
            loudly(&slot.key, e)
        })?;
        self.swap_in(
            &slot,
            plugin,
            load_nanos,
            Swap::Replace {
                path,
                options,
                keep,
            },
        )
    }

    /// Swaps the most recent previous version of `key` back in; returns its new generation.
    ///
    /// It is loaded again from the bytes kept when it served (never from its source path,
    /// which may have changed since), with the config and options it had. Drains like
    /// `replace`; the version rolled back from is not kept, so a second rollback goes one
    /// step further back. If loading fails, nothing changes.
    pub fn rollback(&self, key: &str) -> Result<u64, Error> {
        self.rollback_from(key, None)
    }

    /// `rollback`; with `only_from`, only while that generation still serves (checked again
    /// at the swap: a replace meanwhile wins, and the previous version stays kept).
    fn rollback_from(&self, key: &str, only_from: Option<u64>) -> Result<u64, Error> {
        check_key(key)?;
        let slot = self.slot(key)?;
        let Some(origin) = lock(&slot.history).pop() else {
            return Err(Error::NoPreviousVersion { key: key.into() });
        };
        let Some(copy) = &origin.copy else {
            return Err(Error::NoPreviousVersion { key: key.into() });
        };
        let options = LoadOptions {
            config: &origin.config,
            keep_mapped: origin.keep_mapped,
            allow_signal_handlers: origin.allow_signal_handlers,
            // What was kept must still be what served.
            sha256: Some(copy.sha256()),
            keep_versions: None,
            keep_copy: false,
            exact_timing: origin.exact_timing,
            isolation: origin.isolation.as_ref().map(|(isolation, _)| *isolation),
            worker: origin.isolation.as_ref().map(|(_, worker)| worker),
            // The very bytes that served before: nothing to try first.
            ..LoadOptions::default()
        };
        let next = *lock(&slot.generation) + 1;
        let (plugin, load_nanos) = match self.open_plugin(&slot.key, copy.path(), &options, next) {
            Ok(opened) => opened,
            Err(cause) => {
                let error = loudly(
                    &slot.key,
                    Error::Load {
                        key: key.into(),
                        path: format!(
                            "{} (the copy kept of generation {})",
                            origin.source, origin.generation
                        ),
                        cause,
                    },
                );
                slot.stats.failed(error.to_string());
                lock(&slot.history).restore(origin);
                return Err(error);
            }
        };
        self.swap_in(
            &slot,
            plugin,
            load_nanos,
            Swap::Rollback { origin, only_from },
        )
    }

    /// Puts a freshly opened plugin into service as the next generation of `slot`'s key and
    /// retires the version it replaces: the one swap behind `replace` and `rollback`.
    ///
    /// If the key was unloaded while the plugin was opening, the plugin never serves and the
    /// answer is `NoSuchLibrary`.
    fn swap_in(
        &self,
        slot: &Slot,
        mut plugin: Loaded,
        load_nanos: u64,
        swap: Swap<'_, '_>,
    ) -> Result<u64, Error> {
        let mut generation = lock(&slot.generation);
        if !slot.current.is_some() {
            drop(generation);
            // Unloaded while we were loading: ours never served.
            drop(plugin);
            return Err(Error::NoSuchLibrary {
                key: slot.key.to_string(),
            });
        }
        if let Swap::Rollback {
            origin,
            only_from: Some(from),
        } = &swap
        {
            let serving = slot.current.load_full().map(|v| v.generation());
            if serving != Some(*from) {
                drop(generation);
                drop(plugin);
                lock(&slot.history).restore(Arc::clone(origin));
                return Err(Error::InvalidOption {
                    key: slot.key.to_string(),
                    reason: format!(
                        "no rollback from generation {from}: generation {} serves now",
                        serving.unwrap_or(0)
                    ),
                });
            }
        }
        *generation += 1;
        let new_generation = *generation;
        let origin = match &swap {
            Swap::Replace { path, options, .. } => {
                origin(path, new_generation, options, &mut plugin)
            }
            Swap::Rollback { origin, .. } => Arc::clone(origin),
        };
        let version = self.version(
            &slot.key,
            new_generation,
            plugin,
            load_nanos,
            origin,
            &slot.stats,
        );
        let message = match &swap {
            Swap::Replace { .. } => describe_load("replaced by", &version),
            Swap::Rollback { origin, .. } => format!(
                "rolled back to the version of generation {} ({}, sha256 {})",
                origin.generation,
                origin.source,
                snapshot::hex(&version.generation_stats().sha256.get())
            ),
        };
        // Counted as retiring before anyone can see the new version, so that `await_retired`
        // after a call answered by it never misses the old one.
        self.inner.ledger.begin(&slot.key);
        let old = slot.current.swap(Some(Arc::new(version)));
        match swap {
            Swap::Replace { keep, .. } => {
                let mut history = lock(&slot.history);
                history.set_keep(keep);
                if let Some(old) = &old {
                    history.push(Arc::clone(old.origin()));
                }
                slot.stats.replaced();
            }
            // The version rolled back from is not kept.
            Swap::Rollback { .. } => slot.stats.rolled_back(),
        }
        drop(generation);
        log::event(Level::Info, &slot.key, new_generation, message);
        if let Some(old) = old {
            self.retire(slot, old);
        }
        Ok(new_generation)
    }

    /// Removes `key`; false if it was not loaded.
    ///
    /// Calls already running finish on the version they started in; it is destroyed and
    /// closed after the last of them returns (at once when none is running).
    pub fn unload(&self, key: &str) -> Result<bool, Error> {
        check_key(key)?;
        let (slot, old) = {
            let _writers = lock(&self.inner.writers);
            let slots = self.inner.slots.load();
            let Some(slot) = slots.get(key).cloned() else {
                return Ok(false);
            };
            let mut next = Slots::clone(&slots);
            next.remove(key);
            self.inner.slots.store(Arc::new(next));
            // Emptied before the writers' lock goes: otherwise a load of the key could finish
            // while a handle to this slot still reached the old version.
            let old = {
                let _generation = lock(&slot.generation);
                if slot.current.is_some() {
                    // Counted before anyone can see the key gone (see `swap_in`).
                    self.inner.ledger.begin(&slot.key);
                }
                slot.current.swap(None)
            };
            (slot, old)
        };
        // Its kept copies go with it.
        lock(&slot.history).set_keep(0);
        if let Some(old) = old {
            log::event(Level::Info, &slot.key, old.generation(), "unloaded");
            self.retire(&slot, old);
        }
        Ok(true)
    }

    /// Calls `method` (the default for `None`) of the version serving `key`: the hot path.
    ///
    /// On success `out` holds the output. No lock is taken and nothing is allocated but what
    /// the plugin writes into `out` (and error messages).
    pub fn call(
        &self,
        key: &str,
        method: Option<&str>,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let version = self.current(key)?;
        version.call(method, input, out)
    }

    /// What is loaded under `key`, if anything, with its figures.
    pub fn info(&self, key: &str) -> Option<LibraryInfo> {
        let slot = self.slot(key).ok()?;
        let version = slot.current.load_full()?;
        let plugin = version.plugin();
        let generation_stats = version.generation_stats();
        // Read once: a call that begins meanwhile is in both the generation's figures and the
        // key's totals, or in neither.
        let (figures, totals) = slot.stats.figures(generation_stats);
        let generations = figures
            .into_iter()
            .map(|(g, counts)| GenerationInfo {
                generation: g.generation,
                sha256: g.sha256.get(),
                load_nanos: g.load_nanos,
                counts,
                crashes: g.crashes.load(Ordering::Relaxed),
            })
            .collect();
        let (keep_versions, previous) = {
            let history = lock(&slot.history);
            let previous = history
                .previous()
                .filter_map(|o| {
                    Some(PreviousVersion {
                        generation: o.generation,
                        path: o.source.clone(),
                        sha256: o.copy.as_ref()?.sha256(),
                    })
                })
                .collect();
            (history.keep(), previous)
        };
        Some(LibraryInfo {
            key: key.to_owned(),
            generation: version.generation(),
            path: version.source().to_owned(),
            snapshot_path: plugin.snapshot_path().to_path_buf(),
            name: plugin.name().to_owned(),
            version: plugin.version().to_owned(),
            methods: plugin.method_names().map(str::to_owned).collect(),
            serialized: plugin.serialized(),
            kept_mapped: plugin.kept_mapped(),
            retired_versions: slot.stats.retired(),
            pinned_versions: slot.stats.pinned(),
            destroys_running: slot.stats.destroys_running(),
            slow_destroys: slot.stats.slow_destroys(),
            sha256: generation_stats.sha256.get(),
            totals,
            replacements: slot.stats.replacements(),
            rollbacks: slot.stats.rollbacks(),
            last_error: slot.stats.last_error(),
            generations,
            keep_versions,
            previous,
            isolated: plugin.isolated().is_some(),
            worker_pid: plugin.worker_pid(),
            crashes: slot.stats.crashes(),
        })
    }

    /// True when a library is loaded under `key`: one map lookup.
    pub fn is_loaded(&self, key: &str) -> bool {
        self.inner.slots.load().contains_key(key)
    }

    /// The loaded keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .inner
            .slots
            .load()
            .keys()
            .map(|k| k.to_string())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Waits until every version of `key` that left service is destroyed and closed.
    pub fn await_retired(&self, key: &str, timeout: Duration) -> bool {
        self.inner.ledger.await_closed(key, timeout)
    }

    /// Versions of `key` that left service and are not closed yet.
    pub fn retiring(&self, key: &str) -> usize {
        self.inner.ledger.retiring(key)
    }

    /// Resolves `key` once, for calls that skip the key lookup: see `LibraryHandle`.
    pub fn handle(&self, key: &str) -> Result<LibraryHandle, Error> {
        Ok(LibraryHandle {
            slot: self.slot(key)?,
        })
    }

    /// The serving version of `key`, held for the length of a call.
    fn current(&self, key: &str) -> Result<Current, Error> {
        match self.inner.slots.load().get(key) {
            Some(slot) => slot.current(),
            None => Err(Error::NoSuchLibrary { key: key.into() }),
        }
    }

    fn slot(&self, key: &str) -> Result<Arc<Slot>, Error> {
        self.inner
            .slots
            .load()
            .get(key)
            .cloned()
            .ok_or_else(|| Error::NoSuchLibrary { key: key.into() })
    }

    /// Opens `path` for `key`, keeping a copy for rollback when the key keeps versions.
    fn open(
        &self,
        key: &Arc<str>,
        path: &Path,
        options: &LoadOptions<'_>,
        keep: usize,
        generation: u64,
    ) -> Result<(Loaded, u64), Error> {
        let options = LoadOptions {
            keep_copy: keep > 0,
            ..*options
        };
        self.open_plugin(key, path, &options, generation)
            .map_err(|cause| Error::Load {
                key: key.to_string(),
                path: path.display().to_string(),
                cause,
            })
    }

    /// Opens a plugin as `generation` of `key`; also returns how long that took.
    fn open_plugin(
        &self,
        key: &Arc<str>,
        path: &Path,
        options: &LoadOptions<'_>,
        generation: u64,
    ) -> Result<(Loaded, u64), crate::LoadError> {
        let started = Instant::now();
        let plugin = Loaded::open(
            path,
            &self.inner.snapshots,
            options,
            Arc::clone(key),
            generation,
        )?;
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Ok((plugin, nanos))
    }

    /// Wraps a freshly opened plugin as `generation` of `key`.
    fn version(
        &self,
        key: &Arc<str>,
        generation: u64,
        plugin: Loaded,
        load_nanos: u64,
        origin: Arc<Origin>,
        stats: &Arc<KeyStats>,
    ) -> Version {
        let generation_stats = GenerationStats::new(
            generation,
            plugin.digest().clone(),
            load_nanos,
            origin.exact_timing,
        );
        let version = Version::new(
            Arc::clone(key),
            generation_stats,
            origin,
            plugin,
            Arc::clone(&self.inner.ledger),
            Arc::clone(stats),
        );
        if let Some(isolated) = version.plugin().isolated() {
            // A first load has nothing to roll back to: no probation.
            isolated
                .remote()
                .in_service(self.crash_hook(key, &version, stats), generation > 1);
        }
        version
    }

    /// What a worker's death does for `version` of `key`: counted for the generation and the
    /// key; within the version's probation, with `rollback_on_crash`, the key rolls back, on a
    /// thread of its own (the worker's monitor must not wait for a load).
    fn crash_hook(
        &self,
        key: &Arc<str>,
        version: &Version,
        stats: &Arc<KeyStats>,
    ) -> crate::isolated::CrashHook {
        let inner = Arc::downgrade(&self.inner);
        let key = Arc::clone(key);
        let generation_stats = Arc::clone(version.generation_stats());
        let key_stats = Arc::clone(stats);
        // One rollback a version, however many times its workers die meanwhile.
        let rolling = std::sync::atomic::AtomicBool::new(false);
        Box::new(move |_death, in_probation| {
            generation_stats.crashes.fetch_add(1, Ordering::Relaxed);
            key_stats.crashed();
            if !in_probation || rolling.swap(true, Ordering::AcqRel) {
                return;
            }
            let inner = inner.clone();
            let rolled = Arc::clone(&key);
            let generation = generation_stats.generation;
            let spawned = std::thread::Builder::new()
                .name("proxyso-rollback".into())
                .spawn(move || {
                    if let Some(inner) = inner.upgrade() {
                        Registry { inner }.roll_back_crashed(&rolled, generation);
                    }
                });
            if let Err(e) = spawned {
                log::event(
                    Level::Error,
                    &key,
                    generation,
                    format!("cannot start a thread to roll back after a crash: {e}"),
                );
            }
        })
    }

    /// Rolls `key` back from `generation`, which crashed within its probation, if it still
    /// serves and a previous version is kept; otherwise its next call restarts its worker.
    fn roll_back_crashed(&self, key: &Arc<str>, generation: u64) {
        let serving = self
            .slot(key)
            .ok()
            .and_then(|slot| slot.current.load_full())
            .map(|version| version.generation());
        if serving != Some(generation) {
            return;
        }
        match self.rollback_from(key, Some(generation)) {
            Ok(now) => {
                let reason = format!(
                    "rolled back from generation {generation}, whose worker crashed within its \
                     probation"
                );
                log::event(Level::Warn, key, now, reason.clone());
                log::notice(log::Notice::RolledBack {
                    key: Arc::clone(key),
                    from: generation,
                    to: now,
                    reason,
                });
            }
            Err(Error::NoPreviousVersion { .. }) => log::event(
                Level::Warn,
                key,
                generation,
                "crashed within its probation, but no previous version is kept to roll back \
                 to: the next call starts a new worker",
            ),
            Err(e) => log::event(
                Level::Error,
                key,
                generation,
                format!("rollback after a crash within the probation failed: {e}"),
            ),
        }
    }

    /// Takes a version that just left service out of the registry's hands.
    /// The ledger counts it already: `swap_in` and `unload` begin its retirement before the
    /// swap that takes it out of service.
    fn retire(&self, slot: &Slot, old: Unlinked<Version>) {
        slot.stats.draining(Arc::clone(old.generation_stats()));
        match old.into_unheld().map(Arc::try_unwrap) {
            // No call is in it: close it now, on this control thread.
            Ok(Ok(version)) => version.retire(),
            // Held by a strong count (`info`, or a thread out of slots): the last holder hands
            // it to the reaper.
            Ok(Err(counted)) => drop(counted),
            // Calls are in flight: the hazard reclaimer lets go of it once the last of them
            // returned, and the reaper closes it.
            Err(held) => drop(held),
        }
    }
}

/// "loaded PATH (NAME VERSION) in N ms", for the log (the digest may still be computing).
fn describe_load(what: &str, version: &Version) -> String {
    let plugin = version.plugin();
    format!(
        "{what} {} ({} {}) in {:.2} ms",
        version.source(),
        plugin.name(),
        plugin.version(),
        version.generation_stats().load_nanos as f64 / 1e6
    )
}

/// Where `plugin`, loaded from `path` with `options` as `generation`, came from; takes its kept
/// copy, if the options asked for one.
fn origin(
    path: &str,
    generation: u64,
    options: &LoadOptions<'_>,
    plugin: &mut Loaded,
) -> Arc<Origin> {
    Arc::new(Origin {
        source: path.to_owned(),
        generation,
        copy: plugin.take_kept_copy(),
        config: options.config.into(),
        keep_mapped: options.keep_mapped,
        allow_signal_handlers: options.allow_signal_handlers,
        exact_timing: options.exact_timing,
        isolation: options
            .isolation
            .and_then(|isolation| Some((isolation, options.worker?.clone()))),
    })
}

/// What a swap does besides swapping.
enum Swap<'a, 'o> {
    /// A new version from `path`; the old one is kept for rollback (`keep` versions at most).
    Replace {
        path: &'a str,
        options: &'a LoadOptions<'o>,
        keep: usize,
    },
    /// A previous version again, from its kept copy; the version rolled back from is dropped.
    /// With `only_from`, only while that generation serves.
    Rollback {
        origin: Arc<Origin>,
        only_from: Option<u64>,
    },
}

/// Logs a failed load, replace or rollback, and passes the error on.
fn loudly(key: &Arc<str>, error: Error) -> Error {
    log::event(Level::Warn, key, 0, error.to_string());
    error
}

/// Checks the isolation limits a load asks for.
fn check_isolation(key: &str, options: &LoadOptions<'_>) -> Result<(), Error> {
    match &options.isolation {
        Some(isolation) => {
            loaded::check_isolation(isolation).map_err(|reason| Error::InvalidOption {
                key: key.into(),
                reason,
            })
        }
        None => Ok(()),
    }
}

/// Checks a `keep_versions` option against `history::MAX_KEEP`.
fn check_keep(key: &str, keep: Option<usize>) -> Result<Option<usize>, Error> {
    match keep {
        Some(n) if n > history::MAX_KEEP => Err(Error::InvalidOption {
            key: key.into(),
            reason: format!(
                "keepVersions {n} is more than the {} previous versions a key may keep",
                history::MAX_KEEP
            ),
        }),
        keep => Ok(keep),
    }
}

impl Drop for Registry {
    /// Unloads every key, when this is the last holder of the registry (a rollback thread
    /// may hold it a moment longer, and then does this).
    fn drop(&mut self) {
        if Arc::strong_count(&self.inner) > 1 {
            return;
        }
        for key in self.keys() {
            let _ = self.unload(&key);
        }
    }
}

/// A version held for the length of a call.
type Current = Held<Version>;

/// Refuses keys that cannot name a library: empty, over-long, or with control characters.
fn check_key(key: &str) -> Result<(), Error> {
    let reason = if key.is_empty() {
        "it is empty"
    } else if key.len() > MAX_KEY_LEN {
        "it is longer than 1024 bytes"
    } else if key.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(Error::InvalidKey {
        key: key.into(),
        reason,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        assert!(check_key("model").is_ok());
        assert!(check_key("模型-ü").is_ok());
        for bad in ["", "a\nb", "nul\0"] {
            let err = check_key(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidKey { .. }), "{bad:?}: {err}");
        }
        let long = "k".repeat(MAX_KEY_LEN + 1);
        assert!(check_key(&long).unwrap_err().to_string().contains("longer"));
    }

    #[test]
    fn messages_quote_a_huge_key_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(dir.path().into());
        let key = "k".repeat(1 << 20);
        let mut out = Vec::new();
        let errors = [
            registry.call(&key, None, b"", &mut out).unwrap_err(),
            registry.load(&key, "/x.so", b"").unwrap_err(),
            registry.replace(&key, "/x.so", b"").unwrap_err(),
            registry.rollback(&key).unwrap_err(),
            registry.unload(&key).unwrap_err(),
            registry.handle(&key).unwrap_err(),
            registry.load("m", &key, b"").unwrap_err(),
        ];
        for err in errors {
            let text = err.to_string();
            assert!(text.len() < 600, "{} bytes: {}", text.len(), &text[..600]);
            assert!(text.contains("…(1048576 bytes)"), "{text}");
        }
        // The error itself keeps the key whole, for the exception's getKey().
        let err = registry.handle(&key).unwrap_err();
        assert!(matches!(err, Error::NoSuchLibrary { key: k } if k.len() == 1 << 20));
    }

    #[test]
    fn unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(dir.path().into());
        let mut out = Vec::new();
        let err = registry.call("ghost", None, b"", &mut out).unwrap_err();
        assert_eq!(err.to_string(), "no library is loaded under key 'ghost'");
        assert!(matches!(
            registry.replace("ghost", "/x.so", b""),
            Err(Error::NoSuchLibrary { .. })
        ));
        assert!(!registry.unload("ghost").unwrap());
        assert!(registry.info("ghost").is_none());
        assert!(!registry.is_loaded("ghost"));
        assert!(registry.keys().is_empty());
    }

    #[test]
    fn a_failed_load_names_key_path_and_cause() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(dir.path().into());
        let err = registry.load("m", "/no/such/lib.so", b"").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("'/no/such/lib.so'"), "{text}");
        assert!(text.contains("'m'"), "{text}");
        assert!(text.contains("No such file"), "{text}");
        assert!(registry.keys().is_empty());
    }
}
