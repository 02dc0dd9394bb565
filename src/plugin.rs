//! One loaded plugin library: open, check the descriptor, init, call, destroy and close.
//!
//! This is the host's side of the ABI in `include/proxyso.h`. It knows nothing of keys or
//! versions; `Version` and `Registry` build on it.

use std::ffi::{CStr, c_char, c_void};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Mutex, PoisonError};

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use proxyso_abi as abi;

use crate::error::LoadError;
use crate::host::{ErrorSlot, HostServices, OutputBuf, Reported};
use crate::snapshot::{self, Snapshot};

/// More methods than any real plugin has: a larger count means the descriptor is garbage.
const MAX_METHODS: usize = 4096;

/// A plugin method's failure, as the plugin reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    /// The plugin's code (or 0 when the host itself refused the result).
    pub code: i32,
    /// The plugin's message.
    pub message: String,
    /// True when the plugin reported a caught panic or exception.
    pub panicked: bool,
}

/// One entry of the plugin's method table, checked and copied into the host.
#[derive(Debug)]
struct Method {
    name: String,
    call: abi::MethodFn,
}

/// A plugin library that is open, checked and initialised; dropping it destroys and closes it.
pub struct Plugin {
    name: String,
    version: String,
    methods: Box<[Method]>,
    /// Present when the plugin asked for its calls to be serialised.
    serial: Option<Mutex<()>>,
    context: *mut c_void,
    destroy: Option<abi::DestroyFn>,
    /// Must outlive `context`: the plugin may keep the pointer until `destroy`.
    _host: Box<HostServices>,
    /// The mapped library; `None` once closed. Dropped last.
    library: Option<Library>,
    snapshot_path: PathBuf,
}

// SAFETY: the header requires a plugin's methods to be callable from any thread at once (or
// sets FLAG_SERIALIZE, which `serial` enforces), and its context and `destroy` to be usable
// from any thread; the rest of `Plugin` is plain owned data.
unsafe impl Send for Plugin {}
// SAFETY: as for `Send`: shared access only ever calls methods, which the ABI allows from many
// threads at once (or which `serial` serialises).
unsafe impl Sync for Plugin {}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("snapshot", &self.snapshot_path)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Opens a private snapshot of `source`, checks its descriptor and runs its `init`.
    ///
    /// `label` names the load in the plugin's log lines. On any failure nothing stays open.
    pub fn open(
        source: &Path,
        snapshot_dir: &Path,
        config: &[u8],
        label: &str,
    ) -> Result<Plugin, LoadError> {
        let snapshot = Snapshot::take(source, snapshot_dir)?;
        let shown = source.display().to_string();
        // RTLD_NOW: an unresolved symbol fails here, not as a crash at first call.
        // RTLD_LOCAL: two plugins, or two versions of one, never bind to each other's symbols.
        // SAFETY: loading a library runs its initialisers; running the user's chosen plugin
        // code is the purpose of this function, and the ABI forbids initialisers from touching
        // the host.
        let library = unsafe { Library::open(Some(snapshot.path()), RTLD_NOW | RTLD_LOCAL) }
            .map_err(|e| {
                LoadError::Open(snapshot::mention_source(
                    &e.to_string(),
                    snapshot.path(),
                    &shown,
                ))
            })?;
        let snapshot_path = snapshot.path().to_path_buf();
        // The mapping holds the inode now; the name on disk is no longer needed.
        drop(snapshot);

        // SAFETY: the symbol is looked up as a data address, not called.
        let symbol = unsafe { library.get::<*const abi::Descriptor>(abi::DESCRIPTOR_SYMBOL) }
            .map_err(|e| {
                LoadError::NoDescriptor(snapshot::mention_source(
                    &e.to_string(),
                    &snapshot_path,
                    &shown,
                ))
            })?;
        let descriptor: *const abi::Descriptor = *symbol;
        if descriptor.is_null() {
            return Err(LoadError::BadDescriptor(
                "symbol 'proxyso_plugin' is null".into(),
            ));
        }
        // Version handshake before anything else is read.
        // SAFETY: every ABI version starts the descriptor with the u32 version, so it is
        // readable whatever the plugin's version; the symbol is a non-null data address.
        let found = unsafe { ptr::read_unaligned(descriptor.cast::<u32>()) };
        if found != abi::ABI_VERSION {
            return Err(LoadError::AbiMismatch {
                expected: abi::ABI_VERSION,
                found,
            });
        }
        // SAFETY: the plugin declared ABI version 1, whose descriptor has this layout and must
        // stay valid while the library is loaded; `library` outlives this borrow.
        let desc = unsafe { &*descriptor };
        let checked = check_descriptor(desc)?;

        let host = HostServices::new(format!("{label}: {} {}", checked.name, checked.version));
        let mut context = ptr::null_mut();
        if let Some(init) = desc.init {
            let mut error = ErrorSlot::default();
            // SAFETY: `init` comes from a checked descriptor; every pointer passed is valid for
            // the call (`config` is never null, as the header promises), and `host` lives
            // until after `destroy`.
            let status = unsafe {
                init(
                    host.as_raw(),
                    non_null(config),
                    config.len(),
                    &mut context,
                    error.as_raw(),
                )
            };
            if let Some(failure) = failure(status, error.into_reported()) {
                return Err(LoadError::Init {
                    plugin: format!("{} {}", checked.name, checked.version),
                    code: failure.code,
                    message: failure.message,
                    panicked: failure.panicked,
                });
            }
        }
        Ok(Plugin {
            name: checked.name,
            version: checked.version,
            methods: checked.methods,
            serial: (desc.flags & abi::FLAG_SERIALIZE != 0).then(|| Mutex::new(())),
            context,
            destroy: desc.destroy,
            _host: host,
            library: Some(library),
            snapshot_path,
        })
    }

    /// The plugin's own name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin's own version string.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The method names; the first is the default.
    pub fn method_names(&self) -> impl Iterator<Item = &str> {
        self.methods.iter().map(|m| m.name.as_str())
    }

    /// True when the plugin asked for its calls to be serialised.
    pub fn serialized(&self) -> bool {
        self.serial.is_some()
    }

    /// The private copy that is mapped (deleted from disk, still named in `/proc/self/maps`).
    pub fn snapshot_path(&self) -> &Path {
        &self.snapshot_path
    }

    /// The index of the method called `name`, or of the default method for `None`.
    pub fn method_index(&self, name: Option<&str>) -> Option<usize> {
        match name {
            None => Some(0),
            Some(name) => self.methods.iter().position(|m| m.name == name),
        }
    }

    /// Calls method `index` with `input`; on success `out` holds the output.
    ///
    /// # Panics
    /// If `index` is not a method index of this plugin.
    pub fn call(&self, index: usize, input: &[u8], out: &mut Vec<u8>) -> Result<(), CallFailure> {
        let method = &self.methods[index];
        let _serial = self
            .serial
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner));
        let mut output = OutputBuf::new(out, input.len());
        let mut error = ErrorSlot::default();
        // SAFETY: `call` comes from the checked method table of a library that stays open while
        // `self` lives; the input, output and error pointers are valid for the whole call, and
        // the serialisation the plugin asked for is held.
        let status = unsafe {
            (method.call)(
                self.context,
                non_null(input),
                input.len(),
                output.as_raw(),
                error.as_raw(),
            )
        };
        if let Some(failure) = failure(status, error.into_reported()) {
            out.clear();
            return Err(failure);
        }
        output.finish().map_err(|message| CallFailure {
            code: 0,
            message,
            panicked: false,
        })
    }
}

impl Drop for Plugin {
    /// Runs `destroy`, then closes the library: the unload path's last step.
    fn drop(&mut self) {
        if let Some(destroy) = self.destroy.take() {
            // SAFETY: `destroy` belongs to the still-open library; it runs once, after every
            // call has returned (a `Plugin` is dropped only when no one can call it).
            unsafe { destroy(self.context) };
        }
        // Dropping the handle dlcloses it.
        self.library.take();
    }
}

/// The descriptor's fields, checked and copied.
struct Checked {
    name: String,
    version: String,
    methods: Box<[Method]>,
}

/// Checks every rule the header sets for a version-1 descriptor.
fn check_descriptor(desc: &abi::Descriptor) -> Result<Checked, LoadError> {
    let bad = |msg: String| LoadError::BadDescriptor(msg);
    let unknown = desc.flags & !abi::KNOWN_FLAGS;
    if unknown != 0 {
        return Err(bad(format!("unknown flag bits {unknown:#x}")));
    }
    // SAFETY: the header requires `name` and `version` to be NUL-terminated strings or null.
    let name = unsafe { text(desc.name, "name") }?;
    // SAFETY: as above.
    let version = unsafe { text(desc.version, "version") }?;
    if desc.method_count == 0 || desc.method_count > MAX_METHODS {
        return Err(bad(format!(
            "method_count is {}; it must be between 1 and {MAX_METHODS}",
            desc.method_count
        )));
    }
    if desc.methods.is_null() {
        return Err(bad("field 'methods' is null".into()));
    }
    // SAFETY: `methods` is non-null and the header requires `method_count` entries there.
    let table = unsafe { std::slice::from_raw_parts(desc.methods, desc.method_count) };
    let mut methods = Vec::with_capacity(table.len());
    for (i, entry) in table.iter().enumerate() {
        // SAFETY: the header requires each method name to be a NUL-terminated string.
        let name = unsafe { text(entry.name, &format!("methods[{i}].name")) }?;
        let Some(call) = entry.call else {
            return Err(bad(format!("methods[{i}] ('{name}') has a null function")));
        };
        if methods.iter().any(|m: &Method| m.name == name) {
            return Err(bad(format!("method name '{name}' appears twice")));
        }
        methods.push(Method { name, call });
    }
    Ok(Checked {
        name,
        version,
        methods: methods.into_boxed_slice(),
    })
}

/// Reads a required, non-empty UTF-8 string field of the descriptor.
///
/// # Safety
/// `ptr` must be null or point at a NUL-terminated string.
unsafe fn text(ptr: *const c_char, field: &str) -> Result<String, LoadError> {
    if ptr.is_null() {
        return Err(LoadError::BadDescriptor(format!("field '{field}' is null")));
    }
    // SAFETY: non-null and NUL-terminated, as the caller guarantees.
    let s = unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| LoadError::BadDescriptor(format!("field '{field}' is not valid UTF-8")))?;
    if s.is_empty() {
        return Err(LoadError::BadDescriptor(format!(
            "field '{field}' is empty"
        )));
    }
    Ok(s.to_owned())
}

/// Turns a plugin's status and report into a failure, or `None` for success.
fn failure(status: abi::Status, reported: Reported) -> Option<CallFailure> {
    let message = || {
        reported
            .message
            .clone()
            .unwrap_or_else(|| "(the plugin gave no message)".to_owned())
    };
    match status {
        abi::OK => None,
        abi::ERROR | abi::PANIC => Some(CallFailure {
            code: reported.code,
            message: message(),
            panicked: status == abi::PANIC,
        }),
        other => Some(CallFailure {
            code: reported.code,
            message: format!("returned unknown status {other}: {}", message()),
            panicked: false,
        }),
    }
}

/// A pointer that is never null, as the header promises for input and config, even when empty.
fn non_null(bytes: &[u8]) -> *const u8 {
    static EMPTY: u8 = 0;
    if bytes.is_empty() {
        &EMPTY
    } else {
        bytes.as_ptr()
    }
}
