//! proxyso: load, call, hot-replace and unload native plugin libraries inside a running JVM.
//!
//! The JVM loads this crate once as `libproxy.so`. Behind a thin JNI layer (`jni`) sits a pure
//! Rust core that is tested without a JVM:
//!
//! - `registry`: keys to versions, and the call hot path (`Registry::call`);
//! - `version`: one loaded version of a key, retired when its last call returns;
//! - `retire`: the unload path (drain, destroy, `dlclose`, off the hot path);
//! - `history`: previous versions kept for rollback; `stats`: call counters, per generation;
//! - `log`: the proxy's events and the plugins' log lines, tagged with key and generation;
//! - `plugin` and `host`: the host's side of the plugin ABI in `include/proxyso.h`;
//! - `signals`: keeps the JVM's signal handlers the JVM's while plugin code loads;
//! - `snapshot` and `elf`: the private, checked copy of a plugin file that is actually mapped;
//! - `preflight` and `child`: that copy `dlopen`ed in a child process first, when a load asks.
#![deny(missing_docs)]

pub mod child;
pub mod elf;
pub mod error;
pub mod history;
pub mod host;
mod jni;
pub mod log;
pub mod maps;
pub mod plugin;
pub mod preflight;
pub mod registry;
pub mod retire;
pub mod signals;
pub mod snapshot;
pub mod stats;
pub mod version;

pub use error::{Error, LoadError};
pub use plugin::LoadOptions;
pub use registry::{Handle, LibraryInfo, Registry};
