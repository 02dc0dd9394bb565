//! Safe access to the host-owned output buffer of one call.

use std::io;
use std::mem::MaybeUninit;
use std::ptr;
use std::slice;

use crate::{Error, abi};

/// The host-owned buffer a method writes its result into.
///
/// The bytes go straight into memory the host allocated, so nothing is copied between the
/// plugin's allocator and the host's. The buffer grows only through the host's `reserve`, which
/// may refuse (the host caps what it hands to Java); a refusal is an [`Error`] like any other.
///
/// `Output` implements [`io::Write`], so `write!(out, "{n}")?` works.
#[derive(Debug)]
pub struct Output<'a> {
    raw: &'a mut abi::Output,
}

impl<'a> Output<'a> {
    /// Wraps the host's output slot.
    ///
    /// # Safety
    ///
    /// `raw` must be a live output slot as the header describes it: `data` points to `capacity`
    /// writable bytes of which the first `len` are initialized, `len <= capacity`, and `reserve`
    /// keeps that true. The slot must stay valid for `'a`.
    pub(crate) unsafe fn from_raw(raw: &'a mut abi::Output) -> Self {
        debug_assert!(raw.len <= raw.capacity, "host handed out len > capacity");
        Self { raw }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.raw.len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.raw.len == 0
    }

    /// Bytes the buffer can hold without asking the host for more.
    pub fn capacity(&self) -> usize {
        self.raw.capacity
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        if self.raw.len == 0 {
            // `data` may be null when the host starts with capacity 0.
            return &[];
        }
        // SAFETY: per `from_raw`, `data` points to at least `len` initialized bytes that only
        // this `Output` touches until the method returns.
        unsafe { slice::from_raw_parts(self.raw.data, self.raw.len) }
    }

    /// Asks the host to grow the buffer to at least `total_capacity` bytes (not additional
    /// bytes, unlike `Vec::reserve`); the bytes written so far are kept.
    ///
    /// Returns at once if the buffer is already that large. Fails when the host refuses.
    pub fn reserve(&mut self, total_capacity: usize) -> Result<(), Error> {
        if total_capacity <= self.raw.capacity {
            return Ok(());
        }
        let reserve = self.raw.reserve;
        let this: *mut abi::Output = self.raw;
        // SAFETY: `this` is the live slot the host handed to this call (see `from_raw`), and
        // `reserve` is the host's own function for it.
        let status = unsafe { reserve(this, total_capacity) };
        if status != abi::OK {
            return Err(Error::msg(format!(
                "the host refused to grow the output to {total_capacity} bytes \
                 ({} written, capacity {})",
                self.raw.len, self.raw.capacity
            )));
        }
        // Everything below relies on the capacity, so do not take a buggy host's word for it.
        if self.raw.capacity < total_capacity || self.raw.data.is_null() {
            return Err(Error::msg(format!(
                "the host accepted to grow the output to {total_capacity} bytes but gave {}",
                self.raw.capacity
            )));
        }
        Ok(())
    }

    /// Makes room for `additional` more bytes, growing geometrically so that many small
    /// writes stay linear, but falling back to the exact size if the host refuses the
    /// doubled one (it may be just under the host's limit).
    fn reserve_additional(&mut self, additional: usize) -> Result<(), Error> {
        let spare = self.raw.capacity - self.raw.len;
        if additional <= spare {
            return Ok(());
        }
        let required = self.raw.len.checked_add(additional).ok_or_else(|| {
            Error::msg(format!(
                "output of {} + {additional} bytes does not fit in memory",
                self.raw.len
            ))
        })?;
        let doubled = self.raw.capacity.saturating_mul(2);
        if doubled > required && self.reserve(doubled).is_ok() {
            return Ok(());
        }
        self.reserve(required)
    }

    /// Appends `bytes`, growing the buffer through the host as needed.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.reserve_additional(bytes.len())?;
        // SAFETY: `reserve_additional` made `capacity - len >= bytes.len()`, so the
        // destination lies inside the host's buffer, which cannot overlap the plugin's `bytes`.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), self.raw.data.add(self.raw.len), bytes.len());
        }
        self.raw.len += bytes.len();
        Ok(())
    }

    /// Appends exactly `n` bytes that `fill` writes in place, with no intermediate buffer.
    ///
    /// `fill` gets `n` zeroed bytes at the end of the output; they count as written only once
    /// it returns (if it panics, the output keeps its previous length).
    ///
    /// ```no_run
    /// # fn f(out: &mut proxyso_sdk::Output<'_>) -> Result<(), proxyso_sdk::Error> {
    /// out.append_with(1024, |buf| buf.fill(b'x'))?;
    /// # Ok(()) }
    /// ```
    pub fn append_with<R>(
        &mut self,
        n: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, Error> {
        if n == 0 {
            return Ok(fill(&mut []));
        }
        self.reserve_additional(n)?;
        let spare = &mut self.spare_capacity_mut()[..n];
        spare.fill(MaybeUninit::new(0));
        // SAFETY: every byte of `spare` was just initialized, and `MaybeUninit<u8>` has the
        // layout of `u8`.
        let buf = unsafe { &mut *(ptr::from_mut(spare) as *mut [u8]) };
        let result = fill(buf);
        self.raw.len += n;
        Ok(result)
    }

    /// The unwritten part of the buffer, for writing in place without zeroing it first.
    ///
    /// Call [`Output::reserve`] first to get enough room, write, then [`Output::set_len`].
    pub fn spare_capacity_mut(&mut self) -> &mut [MaybeUninit<u8>] {
        let spare = self.raw.capacity - self.raw.len;
        if spare == 0 {
            // `data` may be null when the host starts with capacity 0.
            return &mut [];
        }
        // SAFETY: per `from_raw`, `data` points to `capacity` writable bytes owned by this call;
        // the range past `len` is in bounds and `MaybeUninit` makes no claim on its contents.
        unsafe {
            slice::from_raw_parts_mut(
                self.raw.data.add(self.raw.len).cast::<MaybeUninit<u8>>(),
                spare,
            )
        }
    }

    /// Sets the number of bytes written, for use after [`Output::spare_capacity_mut`].
    ///
    /// # Safety
    ///
    /// `new_len` must be at most [`Output::capacity`], and the first `new_len` bytes of the
    /// buffer must be initialized.
    pub unsafe fn set_len(&mut self, new_len: usize) {
        debug_assert!(new_len <= self.raw.capacity, "set_len beyond capacity");
        self.raw.len = new_len;
    }
}

impl io::Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)
            .map(|()| buf.len())
            .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e.message().to_owned()))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write(buf).map(drop)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
