//! One loaded version of a key: a plugin with its generation, serving calls until it retires.

use std::sync::Arc;

use crate::brevity::Brevity;
use crate::error::Error;
use crate::history::Origin;
use crate::host::{FixedOutput, SpillOutput, Written};
use crate::isolated::Fail;
use crate::loaded::Loaded;
use crate::plugin::CallFailure;
use crate::retire::{Ledger, Retiring};
use crate::stats::{GenerationStats, KeyStats};

/// A plugin serving one key at one generation.
///
/// Callers hold it through an `Arc` for the length of a call. When the last holder lets go
/// after it left service, it retires: inline on a control thread (`Version::retire`), through
/// the reaper from anywhere else (`Drop`).
#[derive(Debug)]
pub struct Version {
    key: Arc<str>,
    /// Its number, digest, load time and call counters.
    generation_stats: Arc<GenerationStats>,
    /// Where it came from, and what loading it again takes (rollback).
    origin: Arc<Origin>,
    /// `None` only once retirement has taken it.
    plugin: Option<Loaded>,
    ledger: Arc<Ledger>,
    key_stats: Arc<KeyStats>,
    /// Which methods are short enough for a critical downcall, from their timed calls.
    brevity: Brevity,
}

impl Version {
    /// Wraps a freshly opened plugin that is about to go into service.
    pub fn new(
        key: Arc<str>,
        generation_stats: GenerationStats,
        origin: Arc<Origin>,
        plugin: Loaded,
        ledger: Arc<Ledger>,
        key_stats: Arc<KeyStats>,
    ) -> Version {
        plugin.set_generation(generation_stats.generation);
        // Serialised calls may wait for each other; long calls say so; an isolated call waits
        // for another process, which may die or be descheduled.
        let never_short = plugin.serialized()
            || plugin.flags() & proxyso_abi::FLAG_LONG_CALLS != 0
            || plugin.isolated().is_some();
        let brevity = Brevity::new(plugin.method_names().count(), never_short);
        Version {
            key,
            generation_stats: Arc::new(generation_stats),
            origin,
            plugin: Some(plugin),
            ledger,
            key_stats,
            brevity,
        }
    }

    /// The key it serves.
    pub fn key(&self) -> &Arc<str> {
        &self.key
    }

    /// Its generation under the key (1 for the first load, larger after each replace).
    pub fn generation(&self) -> u64 {
        self.generation_stats.generation
    }

    /// The path it was loaded from, as given.
    pub fn source(&self) -> &str {
        &self.origin.source
    }

    /// Its number, digest, load time and call counters.
    pub fn generation_stats(&self) -> &Arc<GenerationStats> {
        &self.generation_stats
    }

    /// Where it came from, and what loading it again takes.
    pub fn origin(&self) -> &Arc<Origin> {
        &self.origin
    }

    /// The plugin.
    pub fn plugin(&self) -> &Loaded {
        self.plugin
            .as_ref()
            .expect("a version keeps its plugin until it is dropped")
    }

    /// Calls `method` (the default for `None`); on success `out` holds the output.
    #[inline]
    pub fn call(&self, method: Option<&str>, input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let (plugin, index) = self.resolve(method)?;
        let timing = self.generation_stats.calls.begin();
        let result = plugin.call(index, input, out);
        self.timed(index, input.len(), timing.end(result.is_err()), false);
        result.map_err(|fail| self.failed(self.fail_error(index, fail, 0)))
    }

    /// Calls `method` (the default for `None`) on `len` bytes that `fill` writes, handing the
    /// output to `take` (see `Loaded::call_staged`).
    pub fn call_staged(
        &self,
        method: Option<&str>,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]),
        take: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Error> {
        let (plugin, index) = self.resolve(method)?;
        let timing = self.generation_stats.calls.begin();
        let result = plugin.call_staged(index, len, fill, take);
        self.timed(index, len, timing.end(result.is_err()), false);
        result.map_err(|fail| self.failed(self.fail_error(index, fail, 0)))
    }

    /// True when its plugin runs in a worker process.
    pub fn is_isolated(&self) -> bool {
        self.plugin().isolated().is_some()
    }

    /// Calls `method` (the default for `None`) writing into `out`, which cannot grow; returns
    /// how many bytes were written.
    pub fn call_fixed(
        &self,
        method: Option<&str>,
        input: &[u8],
        out: &mut FixedOutput<'_>,
    ) -> Result<usize, Error> {
        let (plugin, index) = self.resolve(method)?;
        self.fixed(plugin, index, input, out, false)
    }

    /// `call_fixed` for a critical downcall when `critical` is set: `Ok(None)`, without calling
    /// anything, when the method is not known to be short (see `brevity`).
    pub fn call_fixed_short(
        &self,
        method: Option<&str>,
        input: &[u8],
        out: &mut FixedOutput<'_>,
        critical: bool,
    ) -> Result<Option<usize>, Error> {
        let (plugin, index) = self.resolve(method)?;
        if critical && !self.brevity.is_short(index, input.len()) {
            return Ok(None);
        }
        self.fixed(plugin, index, input, out, critical).map(Some)
    }

    /// True when `method` (the default for `None`) is known to be short on inputs of `len` bytes
    /// now, so that a call may hold off the garbage collector for its length (see `brevity`).
    #[inline]
    pub fn is_short(&self, method: Option<&str>, len: usize) -> bool {
        self.resolve(method)
            .is_ok_and(|(_, index)| self.brevity.is_short(index, len))
    }

    /// Calls `method` (the default for `None`) writing into `out` (see `SpillOutput`). With
    /// `critical`, for a critical downcall: `Ok(None)`, without calling anything, when the method
    /// is not known to be short (see `brevity`).
    pub fn call_spill(
        &self,
        method: Option<&str>,
        input: &[u8],
        out: SpillOutput<'_>,
        critical: bool,
    ) -> Result<Option<Written>, Error> {
        let (plugin, index) = self.resolve(method)?;
        if critical && !self.brevity.is_short(index, input.len()) {
            return Ok(None);
        }
        let timing = self.generation_stats.calls.begin();
        let result = plugin.call_spill(index, input, out);
        self.timed(index, input.len(), timing.end(result.is_err()), critical);
        result
            .map(Some)
            .map_err(|fail| self.failed(self.fail_error(index, fail, 0)))
    }

    /// The body of `call_fixed` once the method is resolved.
    fn fixed(
        &self,
        plugin: &Loaded,
        index: usize,
        input: &[u8],
        out: &mut FixedOutput<'_>,
        critical: bool,
    ) -> Result<usize, Error> {
        let timing = self.generation_stats.calls.begin();
        let result = plugin.call_fixed(index, input, out);
        self.timed(index, input.len(), timing.end(result.is_err()), critical);
        result.map_err(|fail| self.failed(self.fail_error(index, fail, out.capacity())))
    }

    /// The error a failed call of method `index` gives (`capacity`: a fixed buffer's).
    #[cold]
    fn fail_error(&self, index: usize, fail: Fail, capacity: usize) -> Error {
        match fail {
            Fail::Plugin(failure) => self.plugin_error(index, failure),
            Fail::TooSmall { required } => Error::OutputTooSmall {
                key: self.key.to_string(),
                plugin: self.describe(),
                method: self.method_name(index),
                required,
                capacity,
            },
            Fail::Refused(message) => self.plugin_error(
                index,
                CallFailure {
                    code: 0,
                    message,
                    panicked: false,
                },
            ),
            Fail::Dead(death) => Error::Crashed {
                key: self.key.to_string(),
                plugin: self.describe(),
                method: self.method_name(index),
                signal: death.signal(),
                exit_status: death.exit_status(),
                detail: death.describe(),
            },
            Fail::TimedOut { after, pid } => Error::TimedOut {
                key: self.key.to_string(),
                plugin: self.describe(),
                method: self.method_name(index),
                millis: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                pid,
            },
        }
    }

    /// Counts a call the statistics timed (`nanos`) towards its method's brevity.
    #[inline]
    fn timed(&self, index: usize, len: usize, nanos: Option<u64>, critical: bool) {
        if let Some(nanos) = nanos {
            self.brevity.record(index, len, nanos, critical, || {
                (
                    Arc::clone(&self.key),
                    self.generation(),
                    self.method_name(index),
                )
            });
        }
    }

    /// Remembers a failed call as the key's last error, and passes it on.
    #[cold]
    fn failed(&self, error: Error) -> Error {
        self.key_stats.failed(error.to_string());
        error
    }

    /// Checks that `method` exists in this version (the default always does).
    pub fn check_method(&self, method: Option<&str>) -> Result<(), Error> {
        self.resolve(method).map(|_| ())
    }

    /// The plugin and the index of `method` (the default for `None`).
    #[inline]
    fn resolve(&self, method: Option<&str>) -> Result<(&Loaded, usize), Error> {
        let plugin = self.plugin();
        match plugin.method_index(method) {
            Some(index) => Ok((plugin, index)),
            None => Err(Error::NoSuchMethod {
                key: self.key.to_string(),
                plugin: self.describe(),
                method: method.unwrap_or_default().to_owned(),
                available: plugin.method_names().collect::<Vec<_>>().join(", "),
            }),
        }
    }

    fn method_name(&self, index: usize) -> String {
        let name = self.plugin().method_names().nth(index);
        name.unwrap_or_default().to_owned()
    }

    fn plugin_error(&self, index: usize, failure: CallFailure) -> Error {
        Error::Plugin {
            key: self.key.to_string(),
            plugin: self.describe(),
            method: self.method_name(index),
            code: failure.code,
            message: failure.message,
            panicked: failure.panicked,
        }
    }

    /// "name version (generation N)", for messages.
    fn describe(&self) -> String {
        let plugin = self.plugin();
        format!(
            "{} {}, generation {}",
            plugin.name(),
            plugin.version(),
            self.generation_stats.generation
        )
    }

    /// Retires on this thread: destroy and close now. For control threads only.
    pub fn retire(mut self) {
        if let Some(retiring) = self.take() {
            retiring.finish();
        }
    }

    fn take(&mut self) -> Option<Retiring> {
        self.plugin.take().map(|plugin| Retiring {
            plugin,
            key: Arc::clone(&self.key),
            generation_stats: Arc::clone(&self.generation_stats),
            ledger: Arc::clone(&self.ledger),
            key_stats: Arc::clone(&self.key_stats),
        })
    }
}

impl Drop for Version {
    /// The last holder was not a control thread (or did not retire it): use the reaper.
    fn drop(&mut self) {
        if let Some(retiring) = self.take() {
            retiring.hand_off();
        }
    }
}
