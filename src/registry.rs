//! The registry: string keys to the version that serves each, and the call hot path.
//!
//! Readers never lock. The key map is copy-on-write behind an `ArcSwap`, and each key's current
//! version sits in its own `ArcSwapOption`; a call loads both (arc-swap's thread-local debt
//! slots, no shared write), calls the plugin, and lets go. Writers (load, replace, unload) build
//! the new version completely before anyone can see it, then swap it in with one store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption, Guard};

use crate::error::Error;
use crate::host::FixedOutput;
use crate::plugin::{LoadOptions, Plugin};
use crate::retire::{Ledger, RetireStats};
use crate::snapshot::SnapshotDir;
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
}

/// One key's place in the registry.
#[derive(Debug)]
struct Slot {
    key: Arc<str>,
    /// The serving version; `None` once the key is unloaded.
    current: ArcSwapOption<Version>,
    /// The last generation handed out; its lock serialises swaps on this key.
    generation: Mutex<u64>,
    stats: Arc<RetireStats>,
}

impl Slot {
    /// The serving version, held for the length of a call.
    fn current(&self) -> Result<Current, Error> {
        let version = self.current.load();
        if version.is_none() {
            return Err(Error::NoSuchLibrary {
                key: self.key.to_string(),
            });
        }
        Ok(Current(version))
    }
}

type Slots = HashMap<Arc<str>, Arc<Slot>>;

/// A key resolved once. Every call reaches the version serving the key at that moment, so a
/// handle follows replacements; once the key is unloaded its calls fail with `NoSuchLibrary`
/// (loading the key again makes a new library, which the handle does not follow).
#[derive(Debug, Clone)]
pub struct Handle {
    slot: Arc<Slot>,
}

impl Handle {
    /// The key it was resolved from.
    pub fn key(&self) -> &str {
        &self.slot.key
    }

    /// Calls `method` (the default for `None`); on success `out` holds the output.
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

    /// A handle to a key that was never loaded, for tests of what holds handles.
    #[cfg(test)]
    pub(crate) fn detached(key: &str) -> Handle {
        Handle {
            slot: Arc::new(Slot {
                key: key.into(),
                current: ArcSwapOption::empty(),
                generation: Mutex::new(0),
                stats: Arc::default(),
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
            slots: ArcSwap::default(),
            writers: Mutex::new(()),
            ledger: Arc::default(),
            snapshots: SnapshotDir::new(snapshot_dir),
        }
    }

    /// Changes where later loads write their private snapshots.
    pub fn set_snapshot_dir(&self, dir: PathBuf) {
        self.snapshots.set_parent(dir);
    }

    /// Removes the snapshot directory at process exit (a static registry is never dropped).
    pub fn clean_up_at_exit(&self) {
        self.snapshots.remove_if_idle();
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
        if self.slots.load().contains_key(key) {
            return Err(Error::AlreadyLoaded { key: key.into() });
        }
        let plugin = self.open(key, path, options)?;
        let writers = lock(&self.writers);
        let slots = self.slots.load();
        if slots.contains_key(key) {
            drop(writers);
            // Lost a race with another load of the same key: close ours, it never served.
            drop(plugin);
            return Err(Error::AlreadyLoaded { key: key.into() });
        }
        let key: Arc<str> = key.into();
        let stats = Arc::<RetireStats>::default();
        let version = Version::new(
            Arc::clone(&key),
            1,
            path.into(),
            plugin,
            Arc::clone(&self.ledger),
            Arc::clone(&stats),
        );
        let slot = Slot {
            key: Arc::clone(&key),
            current: ArcSwapOption::from_pointee(version),
            generation: Mutex::new(1),
            stats,
        };
        let mut next = Slots::clone(&slots);
        next.insert(key, Arc::new(slot));
        self.slots.store(Arc::new(next));
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
    /// destroyed and closed after the last of them returns.
    pub fn replace_with(
        &self,
        key: &str,
        path: &str,
        options: &LoadOptions<'_>,
    ) -> Result<u64, Error> {
        check_key(key)?;
        let slot = self.slot(key)?;
        let plugin = self.open(key, path, options)?;
        let mut generation = lock(&slot.generation);
        if slot.current.load().is_none() {
            drop(generation);
            // Unloaded while we were loading: ours never served.
            drop(plugin);
            return Err(Error::NoSuchLibrary { key: key.into() });
        }
        *generation += 1;
        let version = Version::new(
            Arc::clone(&slot.key),
            *generation,
            path.into(),
            plugin,
            Arc::clone(&self.ledger),
            Arc::clone(&slot.stats),
        );
        let old = slot.current.swap(Some(Arc::new(version)));
        let new_generation = *generation;
        drop(generation);
        if let Some(old) = old {
            self.retire(old);
        }
        Ok(new_generation)
    }

    /// Removes `key`; false if it was not loaded.
    ///
    /// Calls already running finish on the version they started in; it is destroyed and
    /// closed after the last of them returns (at once when none is running).
    pub fn unload(&self, key: &str) -> Result<bool, Error> {
        check_key(key)?;
        let slot = {
            let _writers = lock(&self.writers);
            let slots = self.slots.load();
            let Some(slot) = slots.get(key).cloned() else {
                return Ok(false);
            };
            let mut next = Slots::clone(&slots);
            next.remove(key);
            self.slots.store(Arc::new(next));
            slot
        };
        let old = {
            let _generation = lock(&slot.generation);
            slot.current.swap(None)
        };
        if let Some(old) = old {
            self.retire(old);
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

    /// What is loaded under `key`, if anything.
    pub fn info(&self, key: &str) -> Option<LibraryInfo> {
        let slot = self.slot(key).ok()?;
        let version = slot.current.load_full()?;
        let plugin = version.plugin();
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
        })
    }

    /// The loaded keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.slots.load().keys().map(|k| k.to_string()).collect();
        keys.sort_unstable();
        keys
    }

    /// Waits until every version of `key` that left service is destroyed and closed.
    pub fn await_retired(&self, key: &str, timeout: Duration) -> bool {
        self.ledger.await_closed(key, timeout)
    }

    /// Versions of `key` that left service and are not closed yet.
    pub fn retiring(&self, key: &str) -> usize {
        self.ledger.retiring(key)
    }

    /// Resolves `key` once, for calls that skip the key lookup: see `Handle`.
    pub fn handle(&self, key: &str) -> Result<Handle, Error> {
        Ok(Handle {
            slot: self.slot(key)?,
        })
    }

    /// The serving version of `key`, held for the length of a call.
    fn current(&self, key: &str) -> Result<Current, Error> {
        match self.slots.load().get(key) {
            Some(slot) => slot.current(),
            None => Err(Error::NoSuchLibrary { key: key.into() }),
        }
    }

    fn slot(&self, key: &str) -> Result<Arc<Slot>, Error> {
        self.slots
            .load()
            .get(key)
            .cloned()
            .ok_or_else(|| Error::NoSuchLibrary { key: key.into() })
    }

    fn open(&self, key: &str, path: &str, options: &LoadOptions<'_>) -> Result<Plugin, Error> {
        Plugin::open(Path::new(path), &self.snapshots, options, key).map_err(|cause| Error::Load {
            key: key.into(),
            path: path.into(),
            cause,
        })
    }

    /// Takes a version that just left service out of the registry's hands.
    fn retire(&self, old: Arc<Version>) {
        self.ledger.begin(old.key());
        match Arc::try_unwrap(old) {
            // No call is in it: close it now, on this control thread.
            Ok(version) => version.retire(),
            // Calls are in flight: the last of them hands it to the reaper.
            Err(shared) => drop(shared),
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        for key in self.keys() {
            let _ = self.unload(&key);
        }
    }
}

/// A version held for the length of a call; never `None` inside.
struct Current(Guard<Option<Arc<Version>>>);

impl std::ops::Deref for Current {
    type Target = Version;

    fn deref(&self) -> &Version {
        self.0
            .as_deref()
            .expect("Registry::current returns only versions that are present")
    }
}

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
        key: key.chars().take(64).collect(),
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
