//! One loaded plugin library: open, check the descriptor, init, call, destroy and close.
//!
//! This is the host's side of the ABI in `include/proxyso.h`. It knows nothing of keys or
//! versions; `Version` and `Registry` build on it.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Arc, Mutex, PoisonError};

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use proxyso_abi as abi;

use crate::error::LoadError;
use crate::host::{
    ErrorSlot, FixedOutput, HostServices, OutputBuf, Reported, SpillOutput, Written,
};
use crate::landing::{self, Thrown};
use crate::log;
use crate::preflight;
use crate::signals;
use crate::snapshot::{self, Digest, KeptCopy, Snapshot, SnapshotDir};

/// More methods than any real plugin has: a larger count means the descriptor is garbage.
const MAX_METHODS: usize = 4096;

/// A plugin method's failure, as the plugin reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    /// The plugin's code (or 0 when the host itself refused the result).
    pub code: i32,
    /// The plugin's message.
    pub message: String,
    /// True when the plugin reported a caught panic or exception, or let a C++ exception
    /// escape (then `message` is `C++ exception: <what>`).
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
    /// Must outlive `context`: the plugin may keep the pointer until `destroy` (and, kept
    /// mapped, for good: see `close_now`).
    _host: HostServices,
    /// The mapped library and the descriptor it was mapped through. Dropped last.
    mapped: Mapped,
    snapshot_path: PathBuf,
    /// The descriptor's `PROXYSO_FLAG_*` bits.
    flags: u32,
    /// The SHA-256 of the file as loaded.
    digest: Digest,
    /// The loaded bytes under a second name, when the options asked for one.
    kept_copy: Option<KeptCopy>,
}

/// How to load a plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions<'a> {
    /// The configuration bytes handed to `init`.
    pub config: &'a [u8],
    /// Keep every retired version mapped for the life of the process (`RTLD_NODELETE`).
    pub keep_mapped: bool,
    /// Let the plugin change the JVM's signal handlers (logged, and the version kept mapped)
    /// instead of failing the load.
    pub allow_signal_handlers: bool,
    /// The SHA-256 the file must have; anything else fails the load.
    pub sha256: Option<[u8; 32]>,
    /// How many previous versions the key keeps for rollback (`None`: load 1, replace as
    /// before). Read by the registry.
    pub keep_versions: Option<usize>,
    /// Keep a second name for the loaded bytes (`Plugin::take_kept_copy`), for rollback.
    pub keep_copy: bool,
    /// Time every call for the statistics, not a sample of calls shorter than 2 us. Read by
    /// the registry.
    pub exact_timing: bool,
    /// `dlopen` the snapshot in a child process (`worker`) before this process opens it; see
    /// `preflight`.
    pub preflight: bool,
    /// The `proxyso-worker` executable a pre-flight runs; without one, a pre-flight fails.
    pub worker: Option<&'a preflight::Worker>,
    /// Serve the plugin from a worker process of its own (`worker` is the executable), with
    /// these limits, instead of loading it into this process. Read by `Loaded::open`.
    pub isolation: Option<crate::isolated::Isolation>,
    /// Told just before each part of the load that runs plugin code, so that a process that
    /// dies there knows where (`proxyso-check` runs loads in a child process that reports its
    /// progress to the parent).
    pub progress: Option<fn(LoadProgress<'_>)>,
}

/// The part of a load that is about to run plugin code (see `LoadOptions::progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadProgress<'a> {
    /// `dlopen`: the library's constructors, and those of the libraries it needs, run.
    Dlopen,
    /// The descriptor is read (a bad pointer in it faults here).
    Descriptor,
    /// The descriptor passed its checks and `init` runs; `plugin` is its "name version".
    Init {
        /// "name version".
        plugin: &'a str,
    },
}

impl<'a> LoadOptions<'a> {
    /// Default options with this configuration.
    pub fn config(config: &'a [u8]) -> LoadOptions<'a> {
        LoadOptions {
            config,
            ..LoadOptions::default()
        }
    }
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
    /// `label` names the load in the plugin's log lines. On any failure nothing stays open and
    /// the JVM's signal handlers are as they were.
    pub fn open(
        source: &Path,
        snapshots: &SnapshotDir,
        options: &LoadOptions<'_>,
        label: &str,
    ) -> Result<Plugin, LoadError> {
        Plugin::open_as(source, snapshots, options, label.into(), 0)
    }

    /// As `open`, for the version that will serve `key` at `generation`: the plugin's log lines
    /// name both.
    pub fn open_as(
        source: &Path,
        snapshots: &SnapshotDir,
        options: &LoadOptions<'_>,
        key: Arc<str>,
        generation: u64,
    ) -> Result<Plugin, LoadError> {
        let snapshot = snapshots.take(source, options.sha256.as_ref())?;
        // Refused before anything is mapped, while the JVM still has its reserve of mappings.
        crate::mappings::BUDGET.admit(snapshot.load_segments())?;
        if options.preflight {
            preflight::check(options.worker, &snapshot, source)?;
        }
        let kept_copy = if options.keep_copy {
            Some(snapshots.keep(&snapshot)?)
        } else {
            None
        };
        let mut plugin = Plugin::open_guarded(&snapshot, source, options, &key, generation)?;
        plugin.kept_copy = kept_copy;
        Ok(plugin)
    }

    /// Opens a snapshot already taken (`SnapshotDir::take`) of `source`, as `open` does; no copy
    /// is kept. What is mapped is the snapshot's descriptor, whatever its name means by now.
    pub fn open_snapshot(
        snapshot: &Snapshot,
        source: &Path,
        options: &LoadOptions<'_>,
        label: &str,
    ) -> Result<Plugin, LoadError> {
        Plugin::open_guarded(snapshot, source, options, &label.into(), 0)
    }

    /// Opens `snapshot` with the JVM's signal handlers guarded: what plugin code changed is put
    /// back, and the load fails, unless the options allow it.
    fn open_guarded(
        snapshot: &Snapshot,
        source: &Path,
        options: &LoadOptions<'_>,
        key: &Arc<str>,
        generation: u64,
    ) -> Result<Plugin, LoadError> {
        let shown = source.display().to_string();
        let signals = signals::LoadGuard::take();
        let opened = open_snapshot(snapshot, &shown, options, key, generation);
        let changed = signals.changed();
        if changed.is_empty() {
            return opened;
        }
        let changed = changed.join(", ");
        match opened {
            Ok(mut plugin) if options.allow_signal_handlers => match plugin.keep_mapped() {
                Ok(()) => {
                    log::event(
                        log::Level::Warn,
                        key,
                        generation,
                        format!(
                            "plugin {} {} changed the handler of {changed}; kept, as the load \
                             allows, and the version is kept mapped so the handler never \
                             points into unmapped code",
                            plugin.name, plugin.version
                        ),
                    );
                    Ok(plugin)
                }
                // It could not be kept mapped: its handler must not outlive it.
                Err(e) => {
                    signals.restore();
                    drop(plugin);
                    Err(LoadError::Open(e))
                }
            },
            Ok(plugin) => {
                signals.restore();
                // Closed with the JVM's handlers back in place.
                drop(plugin);
                Err(LoadError::SignalHandler { signals: changed })
            }
            Err(e) => {
                signals.restore();
                Err(e)
            }
        }
    }

    /// Keeps this version mapped for the life of the process once it is closed.
    fn keep_mapped(&mut self) -> Result<(), String> {
        self.mapped.keep_mapped()
    }

    /// The SHA-256 of the file as loaded (waiting for it, the first time just after a load).
    pub fn sha256(&self) -> [u8; 32] {
        self.digest.get()
    }

    /// The SHA-256 of the file as loaded, perhaps still being computed.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Takes the second name of the loaded bytes, if the options asked for one.
    pub fn take_kept_copy(&mut self) -> Option<KeptCopy> {
        self.kept_copy.take()
    }

    /// Tags the plugin's later log lines with `generation` (the one it went into service as).
    pub fn set_generation(&self, generation: u64) {
        self._host.set_generation(generation);
    }

    /// The descriptor's `PROXYSO_FLAG_*` bits, as the plugin declared them.
    pub fn flags(&self) -> u32 {
        self.flags
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

    /// True when closing it will leave it mapped on purpose (`RTLD_NODELETE`).
    pub fn kept_mapped(&self) -> bool {
        self.mapped.nodelete
    }

    /// The private copy that is mapped (deleted from disk, still named in `/proc/self/maps`).
    pub fn snapshot_path(&self) -> &Path {
        &self.snapshot_path
    }

    /// The name the dynamic linker knows the library by: `/proc/self/fd/N` of its snapshot's
    /// descriptor (see `Snapshot::fd_path`). `dlerror` and `dladdr` show this name.
    pub fn loaded_name(&self) -> &Path {
        &self.mapped.name
    }

    /// Runs `destroy` and closes the library, as dropping it does; true when the library is
    /// still loaded after `dlclose`: kept mapped on purpose, or pinned by something (see
    /// `still_loaded`). Asked before the descriptor it was mapped through is let go, so the
    /// answer is about this library and nothing that reuses the descriptor's number.
    pub fn close(mut self) -> bool {
        self.close_now()
    }

    /// `destroy`, then `dlclose`; see `close`. Does nothing the second time.
    fn close_now(&mut self) -> bool {
        if let Some(destroy) = self.destroy.take() {
            // SAFETY: `destroy` belongs to the still-open library; it runs once, after every
            // call has returned (a `Plugin` is closed only when no one can call it).
            let destroyed = unsafe { landing::destroy(destroy, self.context) };
            if let Err(thrown) = destroyed {
                // Retirement goes on: the version is out of service and no call can reach it.
                self._host.event(
                    log::Level::Error,
                    format!(
                        "destroy of plugin {} {} failed: {thrown}; the version is retired and \
                         its library closed anyway",
                        self.name, self.version
                    ),
                );
            }
        }
        let stayed = self.mapped.close();
        if stayed {
            // Still mapped, kept on purpose or pinned (a thread-local destructor, an
            // STB_GNU_UNIQUE symbol): a thread the plugin left running, or a destructor that
            // runs at a thread's exit, may still call `host->log`. The host struct stays valid
            // for good and drops their lines; it is freed only with code that cannot call it.
            self._host.outlive();
        }
        stayed
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
        let mut output = OutputBuf::new(out, input.len());
        if let Err(failure) = self.call_raw(index, input, output.as_raw()) {
            out.clear();
            return Err(failure);
        }
        output.finish().map_err(CallFailure::host)
    }

    /// Calls method `index` with `input`, writing into `out`, which cannot grow; returns how
    /// many bytes the plugin wrote.
    ///
    /// # Panics
    /// If `index` is not a method index of this plugin.
    pub fn call_fixed(
        &self,
        index: usize,
        input: &[u8],
        out: &mut FixedOutput<'_>,
    ) -> Result<usize, FixedFailure> {
        if let Err(failure) = self.call_raw(index, input, out.as_raw()) {
            return Err(match out.wanted() {
                Some(required) => FixedFailure::TooSmall { required },
                None => FixedFailure::Plugin(failure),
            });
        }
        out.written()
            .map_err(|message| FixedFailure::Plugin(CallFailure::host(message)))
    }

    /// Calls method `index` with `input`, writing into `out`: in place while the caller's
    /// buffer is large enough, else in its spill `Vec` (see `SpillOutput`).
    ///
    /// # Panics
    /// If `index` is not a method index of this plugin.
    pub fn call_spill(
        &self,
        index: usize,
        input: &[u8],
        mut out: SpillOutput<'_>,
    ) -> Result<Written, CallFailure> {
        self.call_raw(index, input, out.as_raw())?;
        out.finish().map_err(CallFailure::host)
    }

    /// Runs method `index` on `output`, holding the serialisation the plugin asked for.
    fn call_raw(
        &self,
        index: usize,
        input: &[u8],
        output: *mut abi::Output,
    ) -> Result<(), CallFailure> {
        let method = &self.methods[index];
        let _serial = self
            .serial
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner));
        let mut error = ErrorSlot::default();
        // SAFETY: `call` comes from the checked method table of a library that stays open while
        // `self` lives; the input, output and error pointers are valid for the whole call, and
        // the serialisation the plugin asked for is held.
        let landed = unsafe {
            landing::method(
                method.call,
                self.context,
                non_null(input),
                input.len(),
                output,
                error.as_raw(),
            )
        };
        match failure(landed, error.into_reported()) {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

/// How a call into a fixed output buffer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixedFailure {
    /// The plugin asked for at least `required` bytes of output, more than the buffer has.
    TooSmall {
        /// The smallest capacity the plugin asked for and was refused.
        required: usize,
    },
    /// The plugin failed for another reason.
    Plugin(CallFailure),
}

impl CallFailure {
    /// A failure the host found in what the plugin returned.
    fn host(message: String) -> CallFailure {
        CallFailure {
            code: 0,
            message,
            panicked: false,
        }
    }

    /// A C++ exception that escaped the plugin, caught by the landing pad.
    #[cold]
    fn thrown(thrown: Thrown) -> CallFailure {
        CallFailure {
            code: 0,
            message: thrown.to_string(),
            panicked: true,
        }
    }
}

impl Drop for Plugin {
    /// Runs `destroy`, then closes the library: the unload path's last step.
    fn drop(&mut self) {
        self.close_now();
    }
}

/// A library mapped through the descriptor of its snapshot, by the name `/proc/self/fd/N`.
///
/// glibc first matches a name given to `dlopen` against the name of every loaded object, so if
/// N were closed while the library stayed loaded, a later snapshot given descriptor N would get
/// this old library back. So the descriptor stays open as long as the library may be mapped:
/// it is let go after a `dlclose` that unloaded the library, and leaked on purpose, for the life
/// of the process, when the library stays loaded (kept mapped with `RTLD_NODELETE`, or pinned),
/// which costs one descriptor per such library.
struct Mapped {
    /// `None` once closed.
    library: Option<Library>,
    /// The name it was opened under: `/proc/self/fd/N`.
    name: PathBuf,
    /// Descriptor N (shared with the snapshot until that is dropped); `None` once let go.
    descriptor: Option<Arc<File>>,
    /// True when closing it leaves it mapped on purpose (`RTLD_NODELETE`).
    nodelete: bool,
    /// What `close` found: still loaded after `dlclose`.
    stayed: bool,
}

impl Mapped {
    /// Maps `snapshot` through its descriptor.
    ///
    /// # Safety
    /// As for `dlopen`: the library's initialisers run.
    unsafe fn open(snapshot: &Snapshot, flags: c_int) -> Result<Mapped, libloading::Error> {
        let name = snapshot.fd_path();
        // SAFETY: as the caller guarantees.
        let library = unsafe { Library::open(Some(&name), flags) }?;
        Ok(Mapped {
            library: Some(library),
            name,
            descriptor: Some(snapshot.descriptor()),
            nodelete: flags & libc::RTLD_NODELETE != 0,
            stayed: false,
        })
    }

    /// The open library.
    ///
    /// # Panics
    /// Once closed; only `close` and drops close it.
    fn library(&self) -> &Library {
        self.library.as_ref().expect("the library is open")
    }

    /// Keeps the library mapped for the life of the process once it is closed.
    fn keep_mapped(&mut self) -> Result<(), String> {
        if self.nodelete {
            return Ok(());
        }
        // Opening the loaded object again by the name it was opened under, with RTLD_NOLOAD,
        // touches no file; the RTLD_NODELETE it adds sticks after this extra handle is closed.
        // SAFETY: the library is already loaded, so no initialiser runs.
        let again = unsafe {
            Library::open(
                Some(&self.name),
                RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
            )
        };
        again.map_err(|e| format!("cannot mark the library RTLD_NODELETE: {e}"))?;
        self.nodelete = true;
        Ok(())
    }

    /// `dlclose`s the library; true when it is still loaded after. Does nothing the second
    /// time but answer again.
    fn close(&mut self) -> bool {
        if let Some(library) = self.library.take() {
            drop(library);
            // Asked while descriptor N is still ours, so the name means this library only.
            self.stayed = self.nodelete || still_loaded(&self.name);
            if let Some(descriptor) = self.descriptor.take() {
                if self.stayed {
                    // Leaked on purpose: see the type's documentation.
                    std::mem::forget(descriptor);
                }
            }
        }
        self.stayed
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        self.close();
    }
}

/// True when the dynamic linker still has the library opened under `name` loaded: after
/// `dlclose` that means something pins it (a thread-local destructor, an `STB_GNU_UNIQUE`
/// symbol). `name` must be the one it was opened under (`Plugin::loaded_name`), and its
/// descriptor still open: glibc matches the name first, then the file it opens.
///
/// Asks glibc by name with `RTLD_NOLOAD`, which maps nothing: far cheaper than reading
/// `/proc/self/maps`, which in a JVM runs to thousands of lines.
pub fn still_loaded(name: &Path) -> bool {
    // SAFETY: RTLD_NOLOAD never loads anything, so no initialiser runs; the extra reference a
    // hit takes is dropped (dlclosed) at once.
    unsafe { Library::open(Some(name), RTLD_NOW | libc::RTLD_NOLOAD) }.is_ok()
}

/// Opens the snapshot, checks the descriptor and runs `init`: the part of a load during which
/// plugin code runs and the signal guard watches.
fn open_snapshot(
    snapshot: &Snapshot,
    shown: &str,
    options: &LoadOptions<'_>,
    key: &Arc<str>,
    generation: u64,
) -> Result<Plugin, LoadError> {
    let mut flags = RTLD_NOW | RTLD_LOCAL;
    if options.keep_mapped {
        flags |= libc::RTLD_NODELETE;
    }
    let progress = |stage: LoadProgress<'_>| {
        if let Some(progress) = options.progress {
            progress(stage);
        }
    };
    progress(LoadProgress::Dlopen);
    // RTLD_NOW: an unresolved symbol fails here, not as a crash at first call.
    // RTLD_LOCAL: two plugins, or two versions of one, never bind to each other's symbols.
    // Mapped through the descriptor that was written and hashed, never by the copy's name.
    // SAFETY: loading a library runs its initialisers; running the user's chosen plugin code is
    // the purpose of this function, and the signal guard around it undoes what the ABI forbids.
    let mapped = unsafe { Mapped::open(snapshot, flags) }
        .map_err(|e| LoadError::Open(mention_source(&e.to_string(), snapshot, shown)))?;
    let snapshot_path = snapshot.path().to_path_buf();
    progress(LoadProgress::Descriptor);

    // SAFETY: the symbol is looked up as a data address, not called.
    let symbol = unsafe {
        mapped
            .library()
            .get::<*const abi::Descriptor>(abi::DESCRIPTOR_SYMBOL)
    }
    .map_err(|e| LoadError::NoDescriptor(mention_source(&e.to_string(), snapshot, shown)))?;
    let descriptor: *const abi::Descriptor = *symbol;
    if descriptor.is_null() {
        return Err(LoadError::BadDescriptor(
            "symbol 'proxyso_plugin' is null".into(),
        ));
    }
    // Version handshake before anything else is read.
    // SAFETY: every ABI version starts the descriptor with the u32 version, so it is readable
    // whatever the plugin's version; the symbol is a non-null data address.
    let found = unsafe { ptr::read_unaligned(descriptor.cast::<u32>()) };
    if found != abi::ABI_VERSION {
        return Err(LoadError::AbiMismatch {
            expected: abi::ABI_VERSION,
            found,
        });
    }
    // SAFETY: the plugin declared ABI version 1, whose descriptor has this layout and must stay
    // valid while the library is loaded; `library` outlives this borrow.
    let desc = unsafe { &*descriptor };
    let checked = check_descriptor(desc)?;

    let host = HostServices::new(Arc::clone(key), generation);
    let mut plugin = Plugin {
        name: checked.name,
        version: checked.version,
        methods: checked.methods,
        serial: (desc.flags & abi::FLAG_SERIALIZE != 0).then(|| Mutex::new(())),
        context: ptr::null_mut(),
        // Set once `init` succeeded: a failed `init` is not followed by `destroy`.
        destroy: None,
        _host: host,
        mapped,
        snapshot_path,
        flags: desc.flags,
        digest: snapshot.digest().clone(),
        kept_copy: None,
    };
    if let Some(init) = desc.init {
        progress(LoadProgress::Init {
            plugin: &format!("{} {}", plugin.name, plugin.version),
        });
        let mut error = ErrorSlot::default();
        // SAFETY: `init` comes from a checked descriptor; every pointer passed is valid for the
        // call (`config` is never null, as the header promises), and the host services live
        // in `plugin` until after `destroy`.
        let landed = unsafe {
            landing::init(
                init,
                plugin._host.as_raw(),
                non_null(options.config),
                options.config.len(),
                &mut plugin.context,
                error.as_raw(),
            )
        };
        if let Some(failure) = failure(landed, error.into_reported()) {
            return Err(LoadError::Init {
                plugin: format!("{} {}", plugin.name, plugin.version),
                code: failure.code,
                message: failure.message,
                panicked: failure.panicked,
            });
        }
    }
    plugin.destroy = desc.destroy;
    if desc.flags & abi::FLAG_KEEP_MAPPED != 0 {
        plugin.keep_mapped().map_err(LoadError::Open)?;
    }
    Ok(plugin)
}

/// `message` with the user's path in place of the snapshot's names.
fn mention_source(message: &str, snapshot: &Snapshot, shown: &str) -> String {
    let message = snapshot::mention_source(message, &snapshot.fd_path(), shown);
    snapshot::mention_source(&message, snapshot.path(), shown)
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

/// Turns a plugin's status and report, or the C++ exception it let escape, into a failure, or
/// `None` for success.
///
/// An escaped exception counts as a caught panic (`panicked`, code 0) whose message is
/// `C++ exception: <what>`; what the plugin may have recorded before it threw is dropped.
fn failure(landed: Result<abi::Status, Thrown>, reported: Reported) -> Option<CallFailure> {
    let status = match landed {
        Ok(abi::OK) => return None,
        Ok(status) => status,
        Err(thrown) => return Some(CallFailure::thrown(thrown)),
    };
    let message = reported
        .message
        .unwrap_or_else(|| "(the plugin gave no message)".to_owned());
    Some(match status {
        abi::ERROR | abi::PANIC => CallFailure {
            code: reported.code,
            message,
            panicked: status == abi::PANIC,
        },
        other => CallFailure {
            code: reported.code,
            message: format!("returned unknown status {other}: {message}"),
            panicked: false,
        },
    })
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
