//! The proxy's one error type: every failure a caller can see, with what it names.

use std::io;

/// Everything that can go wrong in a registry operation.
///
/// Each variant names what was wrong (key, path, method, cause) so that its `Display` text can be
/// handed to a Java exception unchanged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No library is loaded under the key.
    #[error("no library is loaded under key '{key}'")]
    NoSuchLibrary {
        /// The key asked for.
        key: String,
    },
    /// `load` of a key that already holds a library.
    #[error("a library is already loaded under key '{key}' (use replace to load a new version)")]
    AlreadyLoaded {
        /// The key asked for.
        key: String,
    },
    /// The key itself is unusable.
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Opening, checking or initialising a plugin failed; nothing changed.
    #[error("cannot load '{path}' under key '{key}': {cause}")]
    Load {
        /// The key the library was meant for.
        key: String,
        /// The source path as given.
        path: String,
        /// What failed.
        cause: LoadError,
    },
    /// An option of a load or replace is out of range.
    #[error("invalid option for key '{key}': {reason}")]
    InvalidOption {
        /// The key the load was for.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `rollback` of a key that keeps no previous version.
    #[error(
        "library '{key}' has no previous version to roll back to (none kept: each replace keeps \
         the version it replaces, up to keepVersions)"
    )]
    NoPreviousVersion {
        /// The key asked for.
        key: String,
    },
    /// The plugin has no method of that name.
    #[error("library '{key}' ({plugin}) has no method '{method}'; it has: {available}")]
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
        "method '{method}' of library '{key}' ({plugin}) needs an output buffer of at least \
         {required} bytes; this one has {capacity}"
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
    #[error("method '{method}' of library '{key}' ({plugin}) {}: {message}", outcome(.panicked, .code))]
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
    #[error("cannot write the private snapshot in {dir}: {source}")]
    Snapshot {
        /// The snapshot directory.
        dir: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The pre-flight `dlopen` in a child process failed (or could not run): the file was not
    /// opened in this process.
    #[error("pre-flight dlopen in a child process failed: {0}")]
    Preflight(String),
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
    /// Loading or `init` changed a signal handler the JVM relies on; it was restored.
    #[error(
        "it changed the JVM's handler of {signals} (restored; a load may allow this with \
         allowSignalHandlers)"
    )]
    SignalHandler {
        /// The signals, comma-separated.
        signals: String,
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
