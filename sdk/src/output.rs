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
///
/// # Example
///
/// The ways to write, from the simplest to the one that copies least:
///
/// ```standalone_crate
/// use std::io::Write;
///
/// use proxyso_sdk::testing::Harness;
/// use proxyso_sdk::{Error, Host, Output, Plugin};
///
/// struct Stats;
///
/// impl Plugin for Stats {
///     fn init(_host: Host, _config: &[u8]) -> Result<Self, Error> {
///         Ok(Stats)
///     }
/// }
///
/// impl Stats {
///     /// "<bytes> <lines>\n" followed by the input, reversed.
///     fn describe(&self, input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
///         let lines = input.iter().filter(|&&b| b == b'\n').count();
///         // Formatting, through `io::Write`; a refused growth is an `io::Error` here.
///         writeln!(out, "{} {lines}", input.len())?;
///         // Bytes written in place into the host's buffer, no copy of the plugin's own.
///         out.append_with(input.len(), |buf| {
///             for (dst, src) in buf.iter_mut().zip(input.iter().rev()) {
///                 *dst = *src;
///             }
///         })?;
///         Ok(())
///     }
///
///     /// The input, whole, with `write_all`.
///     fn echo(&self, input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
///         out.write_all(input)
///     }
/// }
///
/// proxyso_sdk::export_plugin! {
///     plugin: Stats,
///     name: "stats",
///     version: "1.0.0",
///     methods: { "describe" => Stats::describe, "echo" => Stats::echo },
/// }
///
/// // SAFETY: the descriptor was made by `export_plugin!`.
/// let stats = unsafe { Harness::init(&proxyso_plugin, b"") }.unwrap();
/// stats.set_initial_capacity(0); // every byte goes through the host's `reserve`
/// assert_eq!(stats.call("describe", b"ab\ncd").unwrap(), b"5 1\ndc\nba");
///
/// // The host caps the output (Java's largest array); past the cap, writes fail.
/// stats.set_output_limit(4);
/// let refused = stats.call("echo", b"too long").unwrap_err();
/// assert!(refused.message.starts_with("the host refused to grow the output"), "{refused}");
/// ```
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
    /// ```standalone_crate
    /// # use proxyso_sdk::{Error, Host, Output, Plugin, testing::Harness};
    /// # struct P;
    /// # impl Plugin for P {
    /// #     fn init(_: Host, _: &[u8]) -> Result<Self, Error> { Ok(P) }
    /// # }
    /// fn fill(_: &P, _input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
    ///     let written = out.append_with(1024, |buf| {
    ///         buf.fill(b'x');
    ///         buf.len()
    ///     })?;
    ///     assert_eq!((written, out.len()), (1024, 1024));
    ///     Ok(())
    /// }
    /// # proxyso_sdk::export_plugin! {
    /// #     plugin: P, name: "p", version: "1", methods: { "fill" => fill },
    /// # }
    /// # // SAFETY: the descriptor was made by `export_plugin!`.
    /// # let h = unsafe { Harness::init(&proxyso_plugin, b"") }.unwrap();
    /// # assert_eq!(h.call_default(b"").unwrap(), [b'x'; 1024]);
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
    /// [`Output::append_with`] does the same safely, for the price of zeroing the bytes first.
    ///
    /// ```standalone_crate
    /// # use proxyso_sdk::{Error, Host, Output, Plugin, testing::Harness};
    /// # struct P;
    /// # impl Plugin for P {
    /// #     fn init(_: Host, _: &[u8]) -> Result<Self, Error> { Ok(P) }
    /// # }
    /// /// The input with every byte doubled, written straight into the host's buffer.
    /// fn double(_: &P, input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
    ///     let n = input.len().checked_mul(2).ok_or_else(|| Error::msg("input too long"))?;
    ///     let start = out.len();
    ///     out.reserve(start + n)?;
    ///     let spare = &mut out.spare_capacity_mut()[..n];
    ///     for (pair, &b) in spare.chunks_exact_mut(2).zip(input) {
    ///         pair[0].write(b);
    ///         pair[1].write(b);
    ///     }
    ///     // SAFETY: `reserve` made room for `n` more bytes and the loop initialized all of them.
    ///     unsafe { out.set_len(start + n) };
    ///     Ok(())
    /// }
    /// # proxyso_sdk::export_plugin! {
    /// #     plugin: P, name: "p", version: "1", methods: { "double" => double },
    /// # }
    /// # // SAFETY: the descriptor was made by `export_plugin!`.
    /// # let h = unsafe { Harness::init(&proxyso_plugin, b"") }.unwrap();
    /// # h.set_initial_capacity(1);
    /// # assert_eq!(h.call_default(b"ab").unwrap(), b"aabb");
    /// ```
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
