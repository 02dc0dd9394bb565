//! proxyso's core: load, call, hot-replace and unload native plugin libraries, without JNI.
//!
//! `libproxy.so` (the `proxyso` crate) is a thin JNI layer over this crate; the checker
//! (`proxyso-check`) loads plugins through it too, and any other process can. It is tested
//! without a JVM:
//!
//! - `registry`: keys to versions, and the call hot path (`Registry::call`);
//! - `version`: one loaded version of a key, retired when its last call returns;
//! - `retire`: the unload path (drain, destroy, `dlclose`, off the hot path);
//! - `hazard`: how a call holds a version (and a handle) without a locked instruction;
//! - `history`: previous versions kept for rollback; `stats`: call counters, per generation;
//! - `brevity`: which methods are short enough for a critical downcall (JDK 22+);
//! - `log`: the proxy's events and the plugins' log lines, tagged with key and generation;
//! - `plugin` and `host`: the host's side of the plugin ABI in `include/proxyso.h`;
//! - `landing`: the C++ frame every call into plugin code goes through, which catches a C++
//!   exception the plugin lets escape;
//! - `signals`: keeps every signal handler as it was while plugin code loads;
//! - `snapshot` and `elf`: the private, checked copy of a plugin file that is actually mapped;
//! - `preflight` and `child`: that copy `dlopen`ed in a child process first, when a load asks;
//! - `isolated`: a plugin served by a worker process of its own (`protocol` is the seam), and
//!   `loaded`: either kind of plugin, as a version holds it;
//! - `mappings`: refuses a load that would leave the process short of memory mappings;
//! - `text`: cuts keys, method names and paths that messages quote.
#![deny(missing_docs)]

pub mod brevity;
pub mod child;
pub mod elf;
pub mod error;
pub mod hazard;
pub mod history;
pub mod host;
pub mod isolated;
pub mod landing;
pub mod loaded;
pub mod log;
pub mod mappings;
pub mod plugin;
pub mod preflight;
pub mod protocol;
pub mod registry;
pub mod retire;
pub mod signals;
pub mod snapshot;
pub mod stats;
pub mod text;
pub mod version;

pub use error::{Error, LoadError};
pub use plugin::LoadOptions;
pub use registry::{LibraryHandle, LibraryInfo, Registry};
