//! What the host hands a plugin: the output buffer, the error slot and the log, all host-owned.
//!
//! Each callback is an `extern "C"` function the plugin calls through a pointer in an ABI struct;
//! none lets a panic out, and none frees or keeps memory that belongs to the plugin.

use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::{ptr, slice};

use proxyso_abi as abi;

use crate::log;

/// The largest output the host accepts: the largest array Java can allocate on every VM.
pub const MAX_OUTPUT: usize = i32::MAX as usize - 8;

/// A call's output buffer, backed by a host `Vec` that the plugin grows through `reserve`.
///
/// The `Vec` keeps length 0 while the plugin writes into its spare capacity; `finish` sets the
/// length the plugin reported once the call has returned.
pub struct OutputBuf<'a> {
    raw: abi::Output,
    _vec: std::marker::PhantomData<&'a mut Vec<u8>>,
}

impl<'a> OutputBuf<'a> {
    /// Lends `vec` (emptied) to one call, with at least `hint` bytes ready (capped at 1 MiB).
    pub fn new(vec: &'a mut Vec<u8>, hint: usize) -> OutputBuf<'a> {
        vec.clear();
        // A failed reservation only means the plugin will ask through `reserve` itself.
        let _ = vec.try_reserve(hint.min(1 << 20));
        OutputBuf {
            raw: abi::Output {
                data: vec.as_mut_ptr(),
                len: 0,
                capacity: vec.capacity(),
                reserve: output_reserve,
                host_data: ptr::from_mut(vec).cast(),
            },
            _vec: std::marker::PhantomData,
        }
    }

    /// The ABI struct to pass to the plugin.
    pub fn as_raw(&mut self) -> *mut abi::Output {
        &mut self.raw
    }

    /// Ends the call: sets the `Vec`'s length to what the plugin reported, if that is sane.
    pub fn finish(self) -> Result<(), String> {
        let raw = &self.raw;
        // SAFETY: `host_data` is the `&'a mut Vec<u8>` given to `new`, still borrowed by `self`.
        let vec = unsafe { &mut *raw.host_data.cast::<Vec<u8>>() };
        if raw.data != vec.as_mut_ptr() || raw.capacity != vec.capacity() {
            return Err("the plugin changed the output buffer's data or capacity".to_owned());
        }
        if raw.len > vec.capacity() {
            return Err(format!(
                "the plugin reported {} bytes of output in a buffer of {}",
                raw.len,
                vec.capacity()
            ));
        }
        // SAFETY: the plugin wrote `len` bytes at `data`, inside the capacity (checked above);
        // any byte value is a valid `u8`.
        unsafe { vec.set_len(raw.len) };
        Ok(())
    }
}

/// `proxyso_output.reserve`: grows the host `Vec` behind the buffer, keeping the written bytes.
unsafe extern "C" fn output_reserve(this: *mut abi::Output, capacity: usize) -> abi::Status {
    let grow = AssertUnwindSafe(|| {
        if this.is_null() {
            return abi::ERROR;
        }
        // SAFETY: the plugin passes back the `abi::Output` the host gave it for this call.
        let out = unsafe { &mut *this };
        // SAFETY: `host_data` is the `Vec` lent to `OutputBuf::new` for the duration of the call.
        let vec = unsafe { &mut *out.host_data.cast::<Vec<u8>>() };
        if out.data != vec.as_mut_ptr() || out.len > vec.capacity() || capacity > MAX_OUTPUT {
            return abi::ERROR;
        }
        if capacity <= vec.capacity() {
            return abi::OK;
        }
        // SAFETY: the first `out.len` bytes were written by the plugin (checked to be within
        // the capacity); making them the Vec's length lets the reallocation keep them.
        unsafe { vec.set_len(out.len) };
        let grown = vec.try_reserve(capacity - out.len);
        // SAFETY: length 0 is always valid; the Vec stays "empty" while the plugin writes.
        unsafe { vec.set_len(0) };
        if grown.is_err() {
            return abi::ERROR;
        }
        out.data = vec.as_mut_ptr();
        out.capacity = vec.capacity();
        abi::OK
    });
    catch_unwind(grow).unwrap_or(abi::ERROR)
}

/// A call's output buffer over memory the caller owns and cannot grow (a direct `ByteBuffer`).
///
/// `reserve` beyond the capacity is refused, and the smallest refused request is kept so the
/// caller can say how large the buffer must be at least (a plugin that asks for double first and
/// then for the exact size, as the Rust SDK does, is refused both times).
pub struct FixedOutput<'a> {
    raw: abi::Output,
    /// The smallest capacity the plugin asked for and was refused; 0 if none.
    wanted: usize,
    _buf: std::marker::PhantomData<&'a mut [u8]>,
}

impl<'a> FixedOutput<'a> {
    /// Lends `len` bytes at `data` to one call.
    ///
    /// # Safety
    /// `data` must be valid for writes of `len` bytes for `'a`, and nothing else may access
    /// that memory meanwhile.
    pub unsafe fn new(data: *mut u8, len: usize) -> FixedOutput<'a> {
        FixedOutput {
            raw: abi::Output {
                data,
                len: 0,
                capacity: len,
                reserve: fixed_reserve,
                host_data: ptr::null_mut(),
            },
            wanted: 0,
            _buf: std::marker::PhantomData,
        }
    }

    /// The ABI struct to pass to the plugin; valid while `self` stays where it is.
    pub fn as_raw(&mut self) -> *mut abi::Output {
        // Pointed at here, not at construction: `self` may have moved since.
        self.raw.host_data = ptr::from_mut(&mut self.wanted).cast();
        &mut self.raw
    }

    /// How many bytes the buffer holds.
    pub fn capacity(&self) -> usize {
        self.raw.capacity
    }

    /// The smallest capacity the plugin was refused, if it asked for more than there is.
    pub fn wanted(&self) -> Option<usize> {
        (self.wanted > self.raw.capacity).then_some(self.wanted)
    }

    /// Writes `bytes` as the whole output (for output made elsewhere, such as in a worker
    /// process); `Err` with their length, recorded as wanted, when they do not fit.
    pub fn fill(&mut self, bytes: &[u8]) -> Result<usize, usize> {
        if bytes.len() > self.raw.capacity {
            self.wanted = bytes.len();
            return Err(bytes.len());
        }
        // SAFETY: `data` is valid for `capacity` bytes of writes (see `new`), more than
        // `bytes.len()`; `bytes` is not that memory (the caller's buffer is lent to us alone).
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), self.raw.data, bytes.len()) };
        self.raw.len = bytes.len();
        Ok(bytes.len())
    }

    /// After the call: how many bytes the plugin wrote, if that is sane.
    pub fn written(&self) -> Result<usize, String> {
        if self.raw.len > self.raw.capacity {
            return Err(format!(
                "the plugin reported {} bytes of output in a buffer of {}",
                self.raw.len, self.raw.capacity
            ));
        }
        Ok(self.raw.len)
    }
}

/// `proxyso_output.reserve` for a fixed buffer: grants what fits, records what does not.
unsafe extern "C" fn fixed_reserve(this: *mut abi::Output, capacity: usize) -> abi::Status {
    if this.is_null() {
        return abi::ERROR;
    }
    // SAFETY: the plugin passes back the `abi::Output` the host gave it for this call, whose
    // `host_data` points at the `wanted` field of its live `FixedOutput`.
    let (out, wanted) = unsafe { (&*this, &mut *(*this).host_data.cast::<usize>()) };
    if capacity <= out.capacity {
        return abi::OK;
    }
    *wanted = if *wanted == 0 {
        capacity
    } else {
        (*wanted).min(capacity)
    };
    abi::ERROR
}

/// A call's output buffer that starts in memory the caller owns (a Java array in place, on the
/// FFM path) and moves to a host `Vec` when the plugin asks for more room than it has.
///
/// The plugin writes in place when the caller's guess was large enough; otherwise `reserve`
/// copies what was written so far into the `Vec` and the call goes on there, so the method runs
/// once whatever the guess.
pub struct SpillOutput<'a> {
    raw: abi::Output,
    spill: Spill,
    _borrows: std::marker::PhantomData<(&'a mut [u8], &'a mut Vec<u8>)>,
}

/// What `SpillOutput`'s `reserve` reads through `host_data`.
struct Spill {
    /// The caller's buffer.
    first: *mut u8,
    /// The `Vec` the output moves to.
    vec: *mut Vec<u8>,
}

/// Where a `SpillOutput` call left its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// This many bytes, in the caller's buffer.
    InPlace(usize),
    /// This many bytes, in the `Vec` (the caller's buffer was too small).
    Spilled(usize),
}

impl<'a> SpillOutput<'a> {
    /// Lends `len` bytes at `data` to one call, and `spill` (emptied) for more.
    ///
    /// # Safety
    /// `data` must be non-null and valid for writes of `len` bytes for `'a`, and nothing else
    /// may access that memory meanwhile.
    pub unsafe fn new(data: *mut u8, len: usize, spill: &'a mut Vec<u8>) -> SpillOutput<'a> {
        spill.clear();
        SpillOutput {
            raw: abi::Output {
                data,
                len: 0,
                capacity: len,
                reserve: spill_reserve,
                host_data: ptr::null_mut(),
            },
            spill: Spill {
                first: data,
                vec: spill,
            },
            _borrows: std::marker::PhantomData,
        }
    }

    /// The ABI struct to pass to the plugin; valid while `self` stays where it is.
    pub fn as_raw(&mut self) -> *mut abi::Output {
        self.raw.host_data = ptr::from_mut(&mut self.spill).cast();
        &mut self.raw
    }

    /// Writes `bytes` as the whole output, made elsewhere (in a worker process): in place when
    /// they fit, else into the `Vec`.
    pub fn fill(self, bytes: &[u8]) -> Written {
        if bytes.len() <= self.raw.capacity {
            // SAFETY: `first` is valid for `capacity` bytes of writes (see `new`), at least
            // `bytes.len()`; `bytes` is not that memory (lent to this call alone).
            unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), self.spill.first, bytes.len()) };
            return Written::InPlace(bytes.len());
        }
        // SAFETY: `vec` is the `&'a mut Vec<u8>` given to `new`, still borrowed by `self`.
        let vec = unsafe { &mut *self.spill.vec };
        vec.clear();
        vec.extend_from_slice(bytes);
        Written::Spilled(bytes.len())
    }

    /// Ends the call: where the output is and how long, if what the plugin left is sane.
    pub fn finish(self) -> Result<Written, String> {
        let raw = &self.raw;
        if raw.len > raw.capacity {
            return Err(format!(
                "the plugin reported {} bytes of output in a buffer of {}",
                raw.len, raw.capacity
            ));
        }
        if raw.data == self.spill.first {
            return Ok(Written::InPlace(raw.len));
        }
        // SAFETY: `vec` is the `&'a mut Vec<u8>` given to `new`, still borrowed by `self`.
        let vec = unsafe { &mut *self.spill.vec };
        if raw.data != vec.as_mut_ptr() || raw.capacity != vec.capacity() {
            return Err("the plugin changed the output buffer's data or capacity".to_owned());
        }
        // SAFETY: the plugin wrote `len` bytes at `data`, the Vec's buffer, inside its capacity
        // (checked above); any byte value is a valid `u8`.
        unsafe { vec.set_len(raw.len) };
        Ok(Written::Spilled(raw.len))
    }
}

/// `proxyso_output.reserve` of a `SpillOutput`: moves the output into the `Vec`, or grows it.
unsafe extern "C" fn spill_reserve(this: *mut abi::Output, capacity: usize) -> abi::Status {
    let grow = AssertUnwindSafe(|| {
        if this.is_null() {
            return abi::ERROR;
        }
        // SAFETY: the plugin passes back the `abi::Output` the host gave it for this call, whose
        // `host_data` points at the `Spill` of its live `SpillOutput`.
        let (out, spill) = unsafe { (&mut *this, &*(*this).host_data.cast::<Spill>()) };
        // SAFETY: `vec` is the `Vec` lent to `SpillOutput::new` for the duration of the call.
        let vec = unsafe { &mut *spill.vec };
        if out.len > out.capacity || capacity > MAX_OUTPUT {
            return abi::ERROR;
        }
        if capacity <= out.capacity {
            return abi::OK;
        }
        if out.data == spill.first {
            // Leaving the caller's buffer: the Vec takes what was written so far.
            if vec.try_reserve(capacity).is_err() {
                return abi::ERROR;
            }
            // SAFETY: the first `len` bytes at `data` were written by the plugin, inside the
            // caller's buffer (checked above); the Vec has room for `capacity >= len` bytes and
            // is a different allocation.
            unsafe { ptr::copy_nonoverlapping(out.data, vec.as_mut_ptr(), out.len) };
        } else {
            if out.data != vec.as_mut_ptr() {
                return abi::ERROR;
            }
            // SAFETY: as in `output_reserve`: the written bytes become the length so that the
            // reallocation keeps them, then the Vec is "empty" again while the plugin writes.
            unsafe { vec.set_len(out.len) };
            let grown = vec.try_reserve(capacity - out.len);
            // SAFETY: length 0 is always valid.
            unsafe { vec.set_len(0) };
            if grown.is_err() {
                return abi::ERROR;
            }
        }
        out.data = vec.as_mut_ptr();
        out.capacity = vec.capacity();
        abi::OK
    });
    catch_unwind(grow).unwrap_or(abi::ERROR)
}

/// What a plugin reported through `proxyso_error.set`.
#[derive(Debug, Default)]
pub struct Reported {
    /// The plugin's code.
    pub code: i32,
    /// The plugin's message, if it gave one.
    pub message: Option<String>,
}

/// A call's error slot; lives on the caller's stack, so a call allocates nothing for it.
pub struct ErrorSlot {
    raw: abi::Error,
    reported: Reported,
}

impl Default for ErrorSlot {
    fn default() -> Self {
        ErrorSlot {
            raw: abi::Error {
                set: error_set,
                host_data: ptr::null_mut(),
            },
            reported: Reported::default(),
        }
    }
}

impl ErrorSlot {
    /// The ABI struct to pass to the plugin; valid while `self` stays where it is.
    pub fn as_raw(&mut self) -> *mut abi::Error {
        // Pointed at here, not at construction: the slot may have moved since.
        self.raw.host_data = ptr::from_mut(&mut self.reported).cast();
        &mut self.raw
    }

    /// What the plugin recorded.
    pub fn into_reported(self) -> Reported {
        self.reported
    }
}

/// `proxyso_error.set`: copies the plugin's code and message into the host.
unsafe extern "C" fn error_set(
    this: *mut abi::Error,
    code: i32,
    message: *const c_char,
    len: usize,
) {
    let record = AssertUnwindSafe(|| {
        if this.is_null() {
            return;
        }
        // SAFETY: the plugin passes back the `abi::Error` the host gave it for this call, whose
        // `host_data` points at the boxed `Reported` of its `ErrorSlot`.
        let reported = unsafe { &mut *(*this).host_data.cast::<Reported>() };
        reported.code = code;
        // SAFETY: the header requires `message` to point at `len` readable bytes.
        reported.message = Some(unsafe { lossy(message, len) });
    });
    let _ = catch_unwind(record);
}

/// The `proxyso_host` a version's `init` receives, at an address that stays put.
///
/// It lives as long as its version, and for a version kept mapped ([`HostServices::outlive`])
/// as long as the process: the header recommends keeping mapped exactly for plugins whose
/// threads outlive `destroy`, and such a thread may still call `host->log`. Lines logged after
/// `destroy` returned are dropped.
pub struct HostServices {
    /// Allocated by `new`, freed by `Drop` unless `outlive` was called.
    shared: ptr::NonNull<Shared>,
    /// Set by `outlive`: the allocation is never freed.
    kept: bool,
}

/// What `abi::Host::host_data` points at, and the struct itself.
struct Shared {
    raw: abi::Host,
    /// Read by `host_log` through `raw.host_data`, which points here.
    tag: LogTag,
}

/// What a plugin's log lines are tagged with.
struct LogTag {
    key: Arc<str>,
    /// Set again when the version goes into service, in case another replace took the number
    /// it was loaded with.
    generation: AtomicU64,
    /// Set once `destroy` returned: later lines are dropped.
    closed: AtomicBool,
}

// SAFETY: `shared` is owned by this handle (or leaked on purpose); everything behind it is
// either immutable after `new` or atomic, so it may be used and dropped from any thread.
unsafe impl Send for HostServices {}
// SAFETY: as for `Send`: shared access only reads immutable fields and atomics.
unsafe impl Sync for HostServices {}

impl HostServices {
    /// Host services whose log lines name `key` and `generation`.
    pub fn new(key: Arc<str>, generation: u64) -> HostServices {
        let shared = Box::into_raw(Box::new(Shared {
            raw: abi::Host {
                abi_version: abi::ABI_VERSION,
                reserved: 0,
                log: host_log,
                host_data: ptr::null_mut(),
            },
            tag: LogTag {
                key,
                generation: AtomicU64::new(generation),
                closed: AtomicBool::new(false),
            },
        }));
        // SAFETY: `shared` was just allocated and is not shared yet; `host_data` points at its
        // own tag, which lives exactly as long as it.
        unsafe { (*shared).raw.host_data = ptr::addr_of_mut!((*shared).tag).cast::<c_void>() };
        HostServices {
            // SAFETY: `Box::into_raw` never returns null.
            shared: unsafe { ptr::NonNull::new_unchecked(shared) },
            kept: false,
        }
    }

    fn shared(&self) -> &Shared {
        // SAFETY: `shared` stays allocated at least as long as `self`.
        unsafe { self.shared.as_ref() }
    }

    /// The ABI struct to pass to `init`.
    pub fn as_raw(&self) -> *const abi::Host {
        &self.shared().raw
    }

    /// Tags later log lines with `generation`.
    pub fn set_generation(&self, generation: u64) {
        self.shared()
            .tag
            .generation
            .store(generation, Ordering::Relaxed);
    }

    /// Emits one of the proxy's own events about this version, tagged as its log lines are.
    pub fn event(&self, level: log::Level, message: String) {
        let tag = &self.shared().tag;
        let generation = tag.generation.load(Ordering::Relaxed);
        log::event(level, &tag.key, generation, message);
    }

    /// For a version kept mapped whose `destroy` returned: drops its later log lines, and keeps
    /// the struct valid for the life of the process, for the threads the plugin left running.
    pub fn outlive(&mut self) {
        self.shared().tag.closed.store(true, Ordering::Release);
        self.kept = true;
    }
}

impl Drop for HostServices {
    fn drop(&mut self) {
        if !self.kept {
            // SAFETY: allocated by `Box::new` in `new`, not leaked, and freed only here.
            drop(unsafe { Box::from_raw(self.shared.as_ptr()) });
        }
    }
}

/// `proxyso_host.log`: hands one line to the log sink, tagged with key and generation.
unsafe extern "C" fn host_log(
    this: *const abi::Host,
    level: i32,
    message: *const c_char,
    len: usize,
) {
    let write = AssertUnwindSafe(|| {
        if this.is_null() {
            return;
        }
        // SAFETY: `this` is the `abi::Host` of live host services (kept for good once their
        // version is kept mapped); its `host_data` is their tag, which lives as long as they do.
        let tag = unsafe { &*(*this).host_data.cast::<LogTag>() };
        if tag.closed.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: the header requires `message` to point at `len` readable bytes.
        let text = unsafe { lossy(message, len) };
        log::emit(log::Record {
            level: log::Level::from_abi(level),
            from_plugin: true,
            key: Some(Arc::clone(&tag.key)),
            generation: tag.generation.load(Ordering::Relaxed),
            message: text,
        });
    });
    let _ = catch_unwind(write);
}

/// Copies `len` bytes at `ptr` into a `String`, replacing invalid UTF-8.
///
/// # Safety
/// `ptr` must point at `len` readable bytes, or be null (read as empty).
unsafe fn lossy(ptr: *const c_char, len: usize) -> String {
    if ptr.is_null() || len == 0 {
        return String::new();
    }
    // SAFETY: guaranteed by the caller.
    let bytes = unsafe { slice::from_raw_parts(ptr.cast::<u8>(), len) };
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(out: *mut abi::Output, bytes: &[u8]) -> abi::Status {
        // SAFETY: `out` is a live OutputBuf's raw struct in these tests.
        unsafe {
            let o = &mut *out;
            if o.capacity - o.len < bytes.len() {
                let status = (o.reserve)(out, o.len + bytes.len());
                if status != abi::OK {
                    return status;
                }
            }
            ptr::copy_nonoverlapping(bytes.as_ptr(), o.data.add(o.len), bytes.len());
            o.len += bytes.len();
        }
        abi::OK
    }

    #[test]
    fn reserve_keeps_what_was_written() {
        let mut vec = Vec::new();
        let mut buf = OutputBuf::new(&mut vec, 0);
        let raw = buf.as_raw();
        let mut expected = Vec::new();
        for i in 0..2000u32 {
            let chunk = i.to_le_bytes();
            assert_eq!(write(raw, &chunk), abi::OK);
            expected.extend_from_slice(&chunk);
        }
        buf.finish().unwrap();
        assert_eq!(vec, expected);
    }

    #[test]
    fn reserve_refuses_absurd_sizes_and_keeps_the_buffer() {
        let mut vec = Vec::new();
        let mut buf = OutputBuf::new(&mut vec, 16);
        let raw = buf.as_raw();
        assert_eq!(write(raw, b"abc"), abi::OK);
        // SAFETY: `raw` is live; reserve is the host's own callback.
        let status = unsafe { ((*raw).reserve)(raw, usize::MAX / 2) };
        assert_eq!(status, abi::ERROR);
        // SAFETY: as above.
        let status = unsafe { ((*raw).reserve)(raw, MAX_OUTPUT + 1) };
        assert_eq!(status, abi::ERROR);
        buf.finish().unwrap();
        assert_eq!(vec, b"abc");
    }

    #[test]
    fn finish_refuses_a_length_beyond_capacity() {
        let mut vec = Vec::new();
        let mut buf = OutputBuf::new(&mut vec, 8);
        // SAFETY: the raw struct is live; this simulates a buggy plugin.
        unsafe { (*buf.as_raw()).len = usize::MAX };
        let err = buf.finish().unwrap_err();
        assert!(err.contains("bytes of output"), "{err}");
        assert!(vec.is_empty());
    }

    #[test]
    fn a_fixed_buffer_grants_what_fits_and_records_what_does_not() {
        let mut memory = [0u8; 8];
        // SAFETY: `memory` outlives the output and nothing else touches it.
        let mut out = unsafe { FixedOutput::new(memory.as_mut_ptr(), memory.len()) };
        let raw = out.as_raw();
        assert_eq!(write(raw, b"12345"), abi::OK);
        assert_eq!(write(raw, b"6789"), abi::ERROR);
        assert_eq!(out.wanted(), Some(9));
        // SAFETY: `raw` is live; reserve is the host's own callback.
        assert_eq!(unsafe { ((*raw).reserve)(raw, 64) }, abi::ERROR);
        assert_eq!(
            out.wanted(),
            Some(9),
            "the smallest refusal says what would do"
        );
        assert_eq!(out.written(), Ok(5));
        assert_eq!(&memory[..5], b"12345");
    }

    #[test]
    fn host_services_kept_for_good_drop_later_lines() {
        use std::sync::Mutex;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        log::set_sink(Some(Arc::new(move |record: log::Record| {
            if record.key.as_deref() == Some("host-test") {
                sink.lock().unwrap().push(record.message);
            }
        })));
        let mut services = HostServices::new("host-test".into(), 3);
        let raw = services.as_raw();
        let say = |text: &str| {
            // SAFETY: `raw` is the services' struct, valid for the rest of this test (kept for
            // good below), and `text` is readable.
            unsafe { ((*raw).log)(raw, abi::LOG_INFO, text.as_ptr().cast(), text.len()) }
        };
        say("before");
        services.outlive();
        drop(services);
        // Still valid after the handle is gone; the line is dropped.
        say("after");
        log::set_sink(None);
        assert_eq!(*seen.lock().unwrap(), ["before"]);
    }

    #[test]
    fn error_slot_copies_code_and_message() {
        let mut slot = ErrorSlot::default();
        let raw = slot.as_raw();
        let msg = b"bad \xffinput";
        // SAFETY: `raw` is the slot's live struct and `msg` is readable.
        unsafe { ((*raw).set)(raw, 42, msg.as_ptr().cast(), msg.len()) };
        let reported = slot.into_reported();
        assert_eq!(reported.code, 42);
        assert_eq!(reported.message.as_deref(), Some("bad \u{fffd}input"));
    }
}
