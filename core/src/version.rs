//! One loaded version of a key: a plugin with its generation, serving calls until it retires.

use std::sync::Arc;

use crate::error::Error;
use crate::history::Origin;
use crate::host::FixedOutput;
use crate::plugin::{CallFailure, FixedFailure, Plugin};
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
    plugin: Option<Plugin>,
    ledger: Arc<Ledger>,
    key_stats: Arc<KeyStats>,
}

impl Version {
    /// Wraps a freshly opened plugin that is about to go into service.
    pub fn new(
        key: Arc<str>,
        generation_stats: GenerationStats,
        origin: Arc<Origin>,
        plugin: Plugin,
        ledger: Arc<Ledger>,
        key_stats: Arc<KeyStats>,
    ) -> Version {
        plugin.set_generation(generation_stats.generation);
        Version {
            key,
            generation_stats: Arc::new(generation_stats),
            origin,
            plugin: Some(plugin),
            ledger,
            key_stats,
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
    pub fn plugin(&self) -> &Plugin {
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
        timing.end(result.is_err());
        result.map_err(|failure| self.failed(self.plugin_error(index, failure)))
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
        let timing = self.generation_stats.calls.begin();
        let result = plugin.call_fixed(index, input, out);
        timing.end(result.is_err());
        result.map_err(|failure| {
            self.failed(match failure {
                FixedFailure::TooSmall { required } => Error::OutputTooSmall {
                    key: self.key.to_string(),
                    plugin: self.describe(),
                    method: self.method_name(index),
                    required,
                    capacity: out.capacity(),
                },
                FixedFailure::Plugin(failure) => self.plugin_error(index, failure),
            })
        })
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
    fn resolve(&self, method: Option<&str>) -> Result<(&Plugin, usize), Error> {
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
