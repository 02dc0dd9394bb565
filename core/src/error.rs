//! The proxy's one error type: every failure a caller can see, with what it names.

use std::io;

use crate::text::shown;

/// Everything that can go wrong in a registry operation.
///
/// Each variant names what was wrong (key, path, method, cause) so that its `Display` text can be
/// handed to a Java exception unchanged. Keys, paths and method names are quoted through
/// `text::shown`, which cuts a huge one to its start and its length; the fields keep them whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No library is loaded under the key.
    #[error("no library is loaded under key '{}'", shown(.key))]
    NoSuchLibrary {
        /// The key asked for.
        key: String,
    },
    /// `load` of a key that already holds a library.
    #[error(
        "a library is already loaded under key '{}' (use replace to load a new version)",
        shown(.key)
    )]
    AlreadyLoaded {
        /// The key asked for.
        key: String,
    },
    /// The key itself is unusable.
    #[error("invalid key {:?}: {reason}", shown(.key))]
    InvalidKey {
        /// The key as given.
        key: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Opening, checking or initialising a plugin failed; nothing changed.
    #[error("cannot load '{}' under key '{}': {cause}", shown(.path), shown(.key))]
    Load {
        /// The key the library was meant for.
        key: String,
        /// The source path as given.
        path: String,
        /// What failed.
        cause: LoadError,
    },
    /// An option of a load or replace is out of range.
    #[error("invalid option for key '{}': {reason}", shown(.key))]
    InvalidOption {
        /// The key the load was for.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `rollback` of a key that keeps no previous version.
    #[error(
        "library '{}' has no previous version to roll back to (none kept: each replace keeps \
         the version it replaces, up to keepVersions)",
        shown(.key)
    )]
    NoPreviousVersion {
        /// The key asked for.
        key: String,
    },
    /// The plugin has no method of that name.
    #[error(
        "library '{}' ({plugin}) has no method '{}'; it has: {}",
        shown(.key),
        shown(.method),
        shown(.available)
    )]
    NoSuchMethod {
        /// The key called.
        key: String,
        /// The plugin's own name and version.
        plugin: String,
        /// The method asked for.
        method: String,
        /// The plugin's method names, comma-separated.
        available: String,
    },
    /// A caller-owned output buffer was too small for what the method writes.
    #[error(
        "method '{}' of library '{}' ({plugin}) needs an output buffer of at least \
         {required} bytes; this one has {capacity}",
        shown(.method),
        shown(.key)
    )]
    OutputTooSmall {
        /// The key called.
        key: String,
        /// The plugin's own name and version.
        plugin: String,
        /// The method called.
        method: String,
        /// The least capacity the method asked for.
        required: usize,
        /// The buffer's capacity.
        capacity: usize,
    },
    /// A plugin method reported a failure or caught a panic of its own.
    #[error(
        "method '{}' of library '{}' ({plugin}) {}: {message}",
        shown(.method),
        shown(.key),
        outcome(.panicked, .code)
    )]
    Plugin {
        /// The key called.
        key: String,
        /// The plugin's own name and version.
        plugin: String,
        /// The method called.
        method: String,
        /// The plugin's error code.
        code: i32,
        /// The plugin's message.
        message: String,
        /// True when the plugin reported a caught panic or exception.
        panicked: bool,
    },
    /// An isolated plugin's worker process died with the call in it, or none could be started.
    #[error(
        "method '{}' of library '{}' ({plugin}) failed: its worker process {detail}",
        shown(.method),
        shown(.key)
    )]
    Crashed {
        /// The key called.
        key: String,
        /// The plugin's own name and version.
        plugin: String,
        /// The method called.
        method: String,
        /// The signal that ended the worker; 0 if it exited (or none ran).
        signal: i32,
        /// The worker's exit status; -1 if a signal ended it (or none ran).
        exit_status: i32,
        /// What happened to it, with the end of its output.
        detail: String,
    },
    /// An isolated call ran past the load's call timeout; its worker was killed.
    #[error(
        "method '{}' of library '{}' ({plugin}) did not return within {millis} ms: its worker \
         process (pid {pid}) was killed, and the next call starts a new one",
        shown(.method),
        shown(.key)
    )]
    TimedOut {
        /// The key called.
        key: String,
        /// The plugin's own name and version.
        plugin: String,
        /// The method called.
        method: String,
        /// The timeout, in milliseconds.
        millis: u64,
        /// The worker that was killed.
        pid: i32,
    },
}

/// Why a library could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The source file could not be opened or read.
    #[error("cannot read the file: {0}")]
    Read(#[source] io::Error),
    /// The source path is not a regular file.
    #[error("not a regular file ({0})")]
    NotAFile(&'static str),
    /// The file is not a whole shared object for this machine (checked before `dlopen`).
    #[error("not a loadable shared object: {0}")]
    NotLoadable(String),
    /// The file's SHA-256 is not the one the caller expected.
    #[error("SHA-256 mismatch: expected {expected}, the file has {found}")]
    Digest {
        /// The digest asked for, hex.
        expected: String,
        /// The digest of the bytes read, hex.
        found: String,
    },
    /// The private snapshot could not be written.
    #[error("cannot write the private snapshot in {}: {source}", shown(.dir))]
    Snapshot {
        /// The snapshot directory.
        dir: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The snapshot directory, or one above it, could be changed by another user (see
    /// `snapshot::check_chain`); nothing was written there.
    #[error(
        "refusing the snapshot directory {dir}: {reason}, so another user could swap the \
         private copies made below it (use a directory that only root or this user can change)"
    )]
    UnsafeSnapshotDir {
        /// The snapshot directory as configured.
        dir: String,
        /// Which directory fails the check, and how.
        reason: String,
    },
    /// The pre-flight `dlopen` in a child process failed (or could not run): the file was not
    /// opened in this process.
    #[error("pre-flight dlopen in a child process failed: {0}")]
    Preflight(String),
    /// An isolated load failed in (or before starting) its worker process.
    #[error("in its worker process: {0}")]
    Isolated(String),
    /// `dlopen` refused the file.
    #[error("dlopen failed: {0}")]
    Open(String),
    /// The library does not export the descriptor.
    #[error("no plugin descriptor: symbol 'proxyso_plugin' not found ({0})")]
    NoDescriptor(String),
    /// The descriptor's ABI version is not ours.
    #[error("ABI version mismatch: the host expects {expected}, the plugin has {found}")]
    AbiMismatch {
        /// The host's ABI version.
        expected: u32,
        /// The plugin's.
        found: u32,
    },
    /// The descriptor breaks a rule of the header.
    #[error("invalid plugin descriptor: {0}")]
    BadDescriptor(String),
    /// Loading or `init` changed the handler of a signal (any signal); it was restored.
    #[error(
        "it changed the handler of {signals} (restored; a load may allow this with \
         allowSignalHandlers)"
    )]
    SignalHandler {
        /// The signals, comma-separated.
        signals: String,
    },
    /// Mapping the version would leave the JVM less than its reserve of memory mappings.
    #[error(
        "too many memory mappings: this process has {current} and the kernel allows {limit} \
         (vm.max_map_count); a new version needs about {needed} more, and {reserve} are kept in \
         reserve for the JVM (proxyso.mapReserve). Unload libraries, or raise the limit: \
         sysctl -w vm.max_map_count=N"
    )]
    TooManyMappings {
        /// `vm.max_map_count`.
        limit: usize,
        /// The process's mappings when the load was refused.
        current: usize,
        /// The mappings kept free for the JVM.
        reserve: usize,
        /// The mappings the new version was counted as needing.
        needed: usize,
    },
    /// The plugin's `init` reported failure.
    #[error("init of plugin {plugin} {}: {message}", outcome(.panicked, .code))]
    Init {
        /// The plugin's own name and version.
        plugin: String,
        /// The plugin's error code.
        code: i32,
        /// The plugin's message.
        message: String,
        /// True when the plugin reported a caught panic.
        panicked: bool,
    },
}

/// How a plugin call ended, for messages: "panicked" or "failed with code N".
fn outcome(panicked: &bool, code: &i32) -> String {
    if *panicked {
        "panicked".to_owned()
    } else {
        format!("failed with code {code}")
    }
}
