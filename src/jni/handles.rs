//! Library handles as Java sees them: a `long` id that indexes a table and carries a
//! generation, so a closed or forged id gives an exception, never a use-after-free.
//!
//! Lookups are lock-free and write nothing shared: the table grows in fixed chunks that are never
//! moved or freed, an entry's generation is read twice around the load of its handle (a closed
//! entry's generation has moved on, so a reused entry is never mistaken for the old one), and
//! the handle itself sits in a `hazard::Shared`, which a call holds through a slot of its own
//! thread with plain loads and stores (no locked instruction). Opening and closing take one
//! mutex.

use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use proxyso_core::hazard::{Held, Shared};
use proxyso_core::registry::LibraryHandle;

/// Entries per chunk.
const CHUNK: usize = 1024;
/// Chunks at most: room for four million open handles.
const MAX_CHUNKS: usize = 4096;

/// An open handle: the resolved key and the method its calls use by default.
#[derive(Debug)]
pub struct HandleEntry {
    /// The key, resolved.
    pub handle: LibraryHandle,
    /// The method (`None`: the plugin's default method).
    pub method: Option<Box<str>>,
}

struct Entry {
    /// Moves on each time the entry is closed; an id is valid while it matches.
    generation: AtomicU32,
    opened: Shared<HandleEntry>,
}

type Chunk = [Entry; CHUNK];

/// The table behind every Java `LibraryHandle`.
pub struct HandleTable {
    chunks: [AtomicPtr<Chunk>; MAX_CHUNKS],
    allocator: Mutex<Allocator>,
}

#[derive(Default)]
struct Allocator {
    next: usize,
    free: Vec<u32>,
}

impl HandleTable {
    /// An empty table.
    pub const fn new() -> HandleTable {
        HandleTable {
            chunks: [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_CHUNKS],
            allocator: Mutex::new(Allocator {
                next: 0,
                free: Vec::new(),
            }),
        }
    }

    /// Stores `opened` and returns its id; `None` when the table is full.
    pub fn open(&self, opened: HandleEntry) -> Option<i64> {
        let mut allocator = self
            .allocator
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let index = match allocator.free.pop() {
            Some(index) => index as usize,
            None => {
                let index = allocator.next;
                if index >= CHUNK * MAX_CHUNKS {
                    return None;
                }
                if index % CHUNK == 0 {
                    let chunk: Box<Chunk> = Box::new(std::array::from_fn(|_| Entry {
                        generation: AtomicU32::new(1),
                        opened: Shared::default(),
                    }));
                    // Never freed: lookups may hold references into it at any time.
                    self.chunks[index / CHUNK].store(Box::into_raw(chunk), Ordering::Release);
                }
                allocator.next += 1;
                index
            }
        };
        let entry = self.entry(index)?;
        entry.opened.store(Some(Arc::new(opened)));
        let generation = entry.generation.load(Ordering::SeqCst);
        Some((i64::from(generation) << 32) | index as i64)
    }

    /// The handle behind `id`, held for the length of a call; `None` if closed or unknown.
    #[inline]
    pub fn get(&self, id: i64) -> Option<Held<HandleEntry>> {
        let (generation, index) = split(id);
        let entry = self.entry(index)?;
        if entry.generation.load(Ordering::SeqCst) != generation {
            return None;
        }
        let opened = entry.opened.load()?;
        // Closed (and perhaps reused) between the two reads: what was loaded is not ours.
        if entry.generation.load(Ordering::SeqCst) != generation {
            return None;
        }
        Some(opened)
    }

    /// Closes `id`; a closed or unknown id is ignored.
    pub fn close(&self, id: i64) {
        let (generation, index) = split(id);
        let mut allocator = self
            .allocator
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = self.entry(index) else {
            return;
        };
        if entry.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        // Invalidate the id first, then let go of the handle, then allow reuse.
        entry
            .generation
            .store(generation.wrapping_add(1).max(1), Ordering::SeqCst);
        entry.opened.store(None);
        allocator.free.push(index as u32);
    }

    #[inline]
    fn entry(&self, index: usize) -> Option<&Entry> {
        let chunk = self.chunks.get(index / CHUNK)?.load(Ordering::Acquire);
        // SAFETY: a non-null chunk pointer comes from `Box::into_raw` in `open` and is never
        // freed or moved, so it stays valid for as long as `self`.
        let chunk = unsafe { chunk.as_ref() }?;
        chunk.get(index % CHUNK)
    }
}

/// An id's generation and index.
fn split(id: i64) -> (u32, usize) {
    ((id >> 32) as u32, (id & 0xffff_ffff) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_stop_working_when_closed_even_after_reuse() {
        let table = HandleTable::new();
        let fake = || HandleEntry {
            handle: fake_handle(),
            method: None,
        };
        let a = table.open(fake()).unwrap();
        assert!(table.get(a).is_some());
        table.close(a);
        assert!(table.get(a).is_none(), "closed");
        let b = table.open(fake()).unwrap();
        assert_eq!(a & 0xffff_ffff, b & 0xffff_ffff, "the entry is reused");
        assert_ne!(a, b, "under a new generation");
        assert!(table.get(a).is_none(), "the old id stays dead");
        assert!(table.get(b).is_some());
        table.close(a);
        assert!(table.get(b).is_some(), "closing a dead id does nothing");
        assert!(table.get(0).is_none());
        assert!(table.get(i64::MAX).is_none());
        assert!(table.get(-1).is_none());
    }

    #[test]
    fn grows_past_one_chunk() {
        let table = HandleTable::new();
        let ids: Vec<i64> = (0..CHUNK * 2 + 3)
            .map(|_| {
                table
                    .open(HandleEntry {
                        handle: fake_handle(),
                        method: Some("m".into()),
                    })
                    .unwrap()
            })
            .collect();
        assert!(ids.iter().all(|id| table.get(*id).is_some()));
        for id in &ids {
            table.close(*id);
        }
        assert!(ids.iter().all(|id| table.get(*id).is_none()));
    }

    fn fake_handle() -> LibraryHandle {
        LibraryHandle::detached("k")
    }
}
