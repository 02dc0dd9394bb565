//! The proxyso plugin ABI, version 1: a `#[repr(C)]` mirror of `include/proxyso.h`.
//!
//! The header is the contract and documents every rule (threading, lifetimes, who frees what);
//! these types must match it field for field. Both the host (`libproxy.so`) and the Rust SDK
//! use them, so neither can drift from the other; `tests/abi_layout.rs` checks every size,
//! alignment and offset against the C compiler's view of the header.
//!
//! Each item names its C counterpart: [`Descriptor`] is `proxyso_descriptor`, [`OK`] is
//! `PROXYSO_OK`, and so on. To write a plugin in Rust, use the `proxyso-sdk` crate instead:
//! its `export_plugin!` builds the descriptor, and nothing of this crate needs touching by hand.
#![deny(missing_docs)]
#![no_std]

use core::ffi::{c_char, c_void};

/// The ABI version these types describe; the host refuses any other value.
pub const ABI_VERSION: u32 = 1;

/// Name of the one symbol every plugin exports, NUL-terminated.
pub const DESCRIPTOR_SYMBOL: &[u8] = b"proxyso_plugin\0";

/// Result of every plugin entry point.
pub type Status = i32;
/// The call succeeded.
pub const OK: Status = 0;
/// The call failed; the error slot holds the plugin's code and message.
pub const ERROR: Status = 1;
/// The plugin caught a panic or an exception; the error slot holds what it said.
pub const PANIC: Status = 2;

/// Descriptor flag: the host must not run two method calls of one version at once.
pub const FLAG_SERIALIZE: u32 = 0x1;
/// Descriptor flag: once retired, keep this version mapped for the life of the process
/// (`RTLD_NODELETE`); `destroy` still runs.
pub const FLAG_KEEP_MAPPED: u32 = 0x2;
/// Descriptor flag: methods may run long or block, so the host never calls them in a critical
/// downcall (one that holds off the JVM's garbage collector; JDK 22+).
pub const FLAG_LONG_CALLS: u32 = 0x4;
/// Every flag this ABI version knows; other bits make a load fail.
pub const KNOWN_FLAGS: u32 = FLAG_SERIALIZE | FLAG_KEEP_MAPPED | FLAG_LONG_CALLS;

/// Log level: error.
pub const LOG_ERROR: i32 = 1;
/// Log level: warning.
pub const LOG_WARN: i32 = 2;
/// Log level: information.
pub const LOG_INFO: i32 = 3;
/// Log level: debug.
pub const LOG_DEBUG: i32 = 4;

/// Host-owned output buffer of one call (`proxyso_output`).
#[repr(C)]
#[derive(Debug)]
pub struct Output {
    /// Start of the writable buffer.
    pub data: *mut u8,
    /// Bytes of output written so far; set by the plugin, at most `capacity`.
    pub len: usize,
    /// Writable bytes at `data`.
    pub capacity: usize,
    /// Grows the buffer to at least the given capacity, keeping the first `len` bytes.
    pub reserve: unsafe extern "C" fn(this: *mut Output, capacity: usize) -> Status,
    /// Host bookkeeping.
    pub host_data: *mut c_void,
}

/// Host-owned error slot of one call (`proxyso_error`).
#[repr(C)]
#[derive(Debug)]
pub struct Error {
    /// Records a plugin-defined code and a UTF-8 message of `len` bytes; the host copies it.
    pub set: unsafe extern "C" fn(this: *mut Error, code: i32, message: *const c_char, len: usize),
    /// Host bookkeeping.
    pub host_data: *mut c_void,
}

/// Services the host offers to `init` (`proxyso_host`).
#[repr(C)]
#[derive(Debug)]
pub struct Host {
    /// The host's ABI version.
    pub abi_version: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// Writes a log line (UTF-8, `len` bytes) at one of the `LOG_*` levels.
    pub log:
        unsafe extern "C" fn(this: *const Host, level: i32, message: *const c_char, len: usize),
    /// Host bookkeeping.
    pub host_data: *mut c_void,
}

/// A method of the plugin (`proxyso_method_fn`).
pub type MethodFn = unsafe extern "C" fn(
    context: *mut c_void,
    input: *const u8,
    input_len: usize,
    output: *mut Output,
    error: *mut Error,
) -> Status;

/// The optional `init` entry point.
pub type InitFn = unsafe extern "C" fn(
    host: *const Host,
    config: *const u8,
    config_len: usize,
    context: *mut *mut c_void,
    error: *mut Error,
) -> Status;

/// The optional `destroy` entry point.
pub type DestroyFn = unsafe extern "C" fn(context: *mut c_void);

/// One entry of the method table (`proxyso_method`).
#[repr(C)]
#[derive(Debug)]
pub struct Method {
    /// NUL-terminated UTF-8 name, unique within the plugin, not empty.
    pub name: *const c_char,
    /// The function; never null (the host checks).
    pub call: Option<MethodFn>,
}

/// The descriptor a plugin exports under [`DESCRIPTOR_SYMBOL`] (`proxyso_descriptor`).
#[repr(C)]
#[derive(Debug)]
pub struct Descriptor {
    /// [`ABI_VERSION`]; the only field read before it is checked.
    pub abi_version: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// The plugin's name (NUL-terminated UTF-8, not empty).
    pub name: *const c_char,
    /// The plugin's version string (NUL-terminated UTF-8, not empty).
    pub version: *const c_char,
    /// Optional: builds the context from the configuration bytes.
    pub init: Option<InitFn>,
    /// Optional: frees the context after the last call returned.
    pub destroy: Option<DestroyFn>,
    /// Number of entries in `methods`; at least 1.
    pub method_count: usize,
    /// The methods; the first is the default one.
    pub methods: *const Method,
}

// SAFETY: a descriptor and its method table are immutable static data of the plugin (the header
// requires them to stay unchanged while the library is loaded), so sharing them between threads
// cannot race.
unsafe impl Sync for Descriptor {}
// SAFETY: as for `Descriptor`: method entries are immutable static data.
unsafe impl Sync for Method {}
