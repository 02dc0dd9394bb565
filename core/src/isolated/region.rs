//! The shared region of one worker: a sealed memfd both processes map (layout in
//! `protocol::region`).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

use crate::protocol::region::{self, Header, Slot};

/// One mapping of a region: the host's (`create`) or the worker's (`map`).
#[derive(Debug)]
pub struct Region {
    base: NonNull<u8>,
    len: usize,
    slots: usize,
    window: usize,
    file: File,
}

// SAFETY: the mapping is shared memory accessed only through atomics (headers) and raw
// copies into windows a slot's holder owns for the call; the pointer is valid wherever the
// `Region` is.
unsafe impl Send for Region {}
// SAFETY: as for `Send`.
unsafe impl Sync for Region {}

impl Region {
    /// A new region of `slots` windows of `window` bytes (a multiple of the page size), its
    /// header written, sealed so that neither side can change its size.
    pub fn create(slots: usize, window: usize, memory_limit: u64) -> io::Result<Region> {
        let len = region::size(slots, window)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "region too large"))?;
        // SAFETY: memfd_create takes a NUL-terminated name and flags, and returns a new
        // descriptor (close-on-exec: only the worker's dup2 hands it on) or -1.
        let fd = unsafe {
            libc::memfd_create(
                c"proxyso-region".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: just created, owned by nothing else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.set_len(len as u64)?;
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: F_ADD_SEALS on a memfd we own.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let region = Region::mapping(file, len, slots, window)?;
        let header = region.header_mut_ptr();
        // SAFETY: the header page is ours alone until the worker starts; it is zeroed (a new
        // memfd), and every field written is plain data or an atomic at its offset.
        unsafe {
            (*header).magic = region::MAGIC;
            (*header).layout = region::LAYOUT;
            (*header).slots = slots as u32;
            (*header).window = window as u64;
            (*header).memory_limit = memory_limit;
        }
        Ok(region)
    }

    /// Maps the region the host handed over as `file` (the worker's side), checking its header
    /// against its size.
    pub fn map(file: File) -> Result<Region, String> {
        let len = file
            .metadata()
            .map_err(|e| format!("cannot stat the region: {e}"))?
            .len();
        let len = usize::try_from(len).map_err(|_| "the region is too large".to_owned())?;
        if len < region::HEADER_BYTES {
            return Err(format!("the region has {len} bytes, less than its header"));
        }
        let probe = Region::mapping(file, len, 0, 0).map_err(|e| format!("cannot map: {e}"))?;
        let header = probe.header();
        if header.magic != region::MAGIC || header.layout != region::LAYOUT {
            return Err("the region is not one of this layout".into());
        }
        let slots = header.slots as usize;
        let window = usize::try_from(header.window).unwrap_or(usize::MAX);
        if slots == 0 || region::size(slots, window) != Some(len) {
            return Err(format!(
                "the region's header ({slots} slots of {window} bytes) does not match its size \
                 ({len} bytes)"
            ));
        }
        // The same mapping, now with its geometry known.
        let mut region = probe;
        region.slots = slots;
        region.window = window;
        Ok(region)
    }

    fn mapping(file: File, len: usize, slots: usize, window: usize) -> io::Result<Region> {
        // SAFETY: maps `len` bytes of a file we hold shared; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Region {
            base: NonNull::new(base.cast()).ok_or_else(io::Error::last_os_error)?,
            len,
            slots,
            window,
            file,
        })
    }

    /// The memfd (to hand to the worker).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// How many slots it has.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Each slot's window, in bytes.
    pub fn window(&self) -> usize {
        self.window
    }

    fn header_mut_ptr(&self) -> *mut Header {
        self.base.as_ptr().cast()
    }

    /// The header.
    pub fn header(&self) -> &Header {
        // SAFETY: the mapping is at least a header long, page-aligned, and lives as long as
        // `self`; the other side writes only its atomics after start.
        unsafe { &*self.header_mut_ptr() }
    }

    /// Slot `index`'s header.
    ///
    /// # Panics
    /// If `index` is not below `slots()`.
    pub fn slot(&self, index: usize) -> &Slot {
        assert!(index < self.slots, "slot {index} of {}", self.slots);
        let offset = region::HEADER_BYTES + index * region::SLOT_HEADER_BYTES;
        // SAFETY: the slot headers follow the header page inside the mapping (checked by
        // `size`), 64-byte aligned; their fields are atomics, valid for any bit pattern.
        unsafe { &*self.base.as_ptr().add(offset).cast::<Slot>() }
    }

    /// The first byte of slot `index`'s window; `window()` bytes are valid from there.
    ///
    /// # Panics
    /// If `index` is not below `slots()`.
    pub fn window_ptr(&self, index: usize) -> *mut u8 {
        assert!(index < self.slots, "slot {index} of {}", self.slots);
        let offset = region::windows_offset(self.slots) + index * self.window;
        // SAFETY: inside the mapping: `size` is windows_offset + slots * window.
        unsafe { self.base.as_ptr().add(offset) }
    }

    /// Gives back to the kernel the pages of slot `index`'s window from `from` on (they read
    /// as zeros after): a large call's memory is not kept for good.
    pub fn release(&self, index: usize, from: usize) {
        let from = from.next_multiple_of(4096);
        if from >= self.window {
            return;
        }
        let offset = region::windows_offset(self.slots) + index * self.window + from;
        // SAFETY: punches a hole in our own memfd inside slot `index`'s window; the size is
        // kept (FALLOC_FL_KEEP_SIZE), so no mapping of it can fault.
        unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                offset as libc::off_t,
                (self.window - from) as libc::off_t,
            );
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `mapping`; nothing borrows it any more
        // (every borrow is tied to `&self`).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn both_sides_see_the_same_memory_and_its_size_is_sealed() {
        let host = Region::create(2, 4096, 0).unwrap();
        let worker = Region::map(host.file().try_clone().unwrap()).unwrap();
        assert_eq!((worker.slots(), worker.window()), (2, 4096));
        host.slot(1).request.store(7, Ordering::SeqCst);
        assert_eq!(worker.slot(1).request.load(Ordering::SeqCst), 7);
        // SAFETY: both windows are 4096 bytes, slot 1's is not used by anything else here.
        unsafe { *host.window_ptr(1).add(4095) = 9 };
        // SAFETY: as above.
        assert_eq!(unsafe { *worker.window_ptr(1).add(4095) }, 9);
        // The worker cannot shrink (or grow) what the host has mapped.
        assert!(worker.file().set_len(4096).is_err());
        assert!(worker.file().set_len(1 << 30).is_err());
    }

    #[test]
    fn a_region_whose_header_lies_about_its_size_is_refused() {
        let host = Region::create(2, 4096, 0).unwrap();
        let header = host.header_mut_ptr();
        // SAFETY: the header is ours; nothing else reads it during the test.
        unsafe { (*header).slots = 3 };
        let err = Region::map(host.file().try_clone().unwrap()).unwrap_err();
        assert!(err.contains("does not match its size"), "{err}");
        // SAFETY: as above.
        unsafe { (*header).magic = 1 };
        let err = Region::map(host.file().try_clone().unwrap()).unwrap_err();
        assert!(err.contains("not one of this layout"), "{err}");
    }
}
