//! Holding a shared object for the length of a call without a locked instruction: hazard slots
//! with asymmetric fences.
//!
//! A [`Shared`] is an `Option<Arc<T>>` that readers load and writers swap, like
//! `arc_swap::ArcSwapOption`. arc-swap's load takes a thread-local debt slot with an atomic
//! exchange and gives it back with a compare-and-swap: two locked instructions per load, which
//! the profile of a 64 B call by handle showed among its costliest steps (each is a full barrier
//! that waits for the store buffer). Here a reader pays plain loads and stores:
//!
//! ```text
//! reader (each call)                       writer (replace, unload, close)
//!   p = src.load                             old = src.swap(new)
//!   my_slot.store(p)            (S)          heavy fence: membarrier()     (F_h)
//!   light fence: compiler only  (F_l)        for every slot: slot.load     (R)
//!   src.load == p ? else retry  (L)          none holds old -> free it; else defer it
//!   ... use *p ...
//!   my_slot.store(null)
//! ```
//!
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` runs a full memory barrier on every CPU that
//! runs a thread of this process, so the pair behaves as if both sides had a full fence: either
//! the writer's scan (R) sees the reader's slot (S), or the reader's second load (L) sees the
//! writer's swap and the reader retries, never using `old`. That is the store-buffering (Dekker)
//! argument: with a full fence between each side's store and its load, the two loads cannot both
//! miss the other side's store. Where `membarrier` is not available (another OS, or a seccomp
//! filter) both fences are full `SeqCst` fences, which is still one barrier per load instead of
//! two locked instructions.
//!
//! A version that is still held when it is swapped out is handed to the reclaimer thread, which
//! frees it the moment its last holder lets go: the holder's release checks its thread's `poked`
//! flag, which the reclaimer sets (with the same fence pairing: store, heavy fence, load on the
//! reclaimer's side; store, light fence, load on the reader's) before it decides a slot still
//! holds the object. So either the reclaimer sees the slot empty, or the reader sees the poke and
//! wakes it. A timed re-check, every `POLL` at first and less often while nothing changes, is
//! only a safety net.
//!
//! Each thread owns a record of `SLOTS` slots (claimed on its first use, given back when it
//! exits, never freed), so a thread may hold a few objects at once (a handle entry and a
//! version; a plugin that calls back into the proxy holds more). The last slot only bridges a
//! load into a strong count (`load_full`); a thread that runs out of slots, or whose thread-locals
//! are gone, holds a strong count instead, as `Arc` would.

use std::any::Any;
use std::collections::HashSet;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

/// Slots per thread; the last one is the transfer slot of `load_full`.
const SLOTS: usize = 8;
const TRANSFER: usize = SLOTS - 1;
/// Every slot but the transfer slot, free.
const ALL_FREE: u8 = (1 << TRANSFER) - 1;
/// The reclaimer re-checks what it waits for at least this often, poked or not (in the unit
/// tests, rarely enough that a test sees whether the poke woke it).
const POLL: Duration = if cfg!(test) {
    Duration::from_secs(5)
} else {
    Duration::from_millis(20)
};

/// One thread's slots.
#[repr(align(64))]
struct Record {
    slots: [AtomicPtr<()>; SLOTS],
    /// Bit `i` set: slot `i` is free. Read and written only by the owning thread, so plain
    /// loads and stores; a new owner sees the last one's through `taken`'s release and acquire.
    free: AtomicU8,
    /// Set by the reclaimer when this record holds something it waits for.
    poked: AtomicBool,
    /// Owned by a live thread (or by the fallback lock).
    taken: AtomicBool,
    /// Its number, from 0, in the order records were made; stable for its life.
    index: usize,
    /// The record made before it; immutable once published.
    next: *const Record,
}

// SAFETY: `next` only ever points at another leaked, immutable-but-for-atomics `Record`; every
// other field is atomic or immutable.
unsafe impl Sync for Record {}
// SAFETY: as for `Sync`.
unsafe impl Send for Record {}

/// The newest record; records are never freed, so a walk from here is always safe.
static RECORDS: AtomicPtr<Record> = AtomicPtr::new(ptr::null_mut());
static RECORD_COUNT: AtomicUsize = AtomicUsize::new(0);

fn records() -> impl Iterator<Item = &'static Record> {
    let mut next = RECORDS.load(Ordering::Acquire).cast_const();
    std::iter::from_fn(move || {
        // SAFETY: records are leaked boxes, published with release, never freed.
        let record = unsafe { next.as_ref() }?;
        next = record.next;
        Some(record)
    })
}

/// A free record, or a new one; taken.
fn claim() -> &'static Record {
    for record in records() {
        if !record.taken.load(Ordering::Relaxed)
            && record
                .taken
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return record;
        }
    }
    let record = Box::into_raw(Box::new(Record {
        slots: [const { AtomicPtr::new(ptr::null_mut()) }; SLOTS],
        free: AtomicU8::new(ALL_FREE),
        poked: AtomicBool::new(false),
        taken: AtomicBool::new(true),
        index: RECORD_COUNT.fetch_add(1, Ordering::Relaxed),
        next: ptr::null(),
    }));
    let mut head = RECORDS.load(Ordering::Relaxed);
    loop {
        // SAFETY: `record` is ours alone until the exchange below publishes it.
        unsafe { (*record).next = head };
        match RECORDS.compare_exchange_weak(head, record, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => break,
            Err(now) => head = now,
        }
    }
    // SAFETY: leaked on purpose: scans may read it at any time, for the life of the process.
    unsafe { &*record }
}

/// This thread's claim on a record, given back when the thread exits.
struct Local(&'static Record);

impl Drop for Local {
    fn drop(&mut self) {
        // A guard forgotten on purpose keeps its slot; every other slot is empty by now.
        self.0.free.store(ALL_FREE, Ordering::Relaxed);
        self.0.taken.store(false, Ordering::Release);
    }
}

thread_local! {
    static LOCAL: Local = Local(claim());
}

/// This thread's record, or `None` while its thread-locals are being torn down.
#[inline]
fn local() -> Option<&'static Record> {
    LOCAL.try_with(|local| local.0).ok()
}

/// A small number that no other live thread has at the same time (the number of this
/// thread's record), or `None` while its thread-locals are being torn down. Numbers are handed
/// out from 0, and reused after a thread exits.
#[inline]
pub fn thread_index() -> Option<usize> {
    local().map(|record| record.index)
}

/// The record and lock of threads that cannot use their own: `load_full` after the thread's
/// locals were torn down.
fn fallback() -> &'static (Mutex<()>, &'static Record) {
    static FALLBACK: OnceLock<(Mutex<()>, &'static Record)> = OnceLock::new();
    FALLBACK.get_or_init(|| (Mutex::new(()), claim()))
}

/// True when the heavy fence is `membarrier`, so that the light one may be a compiler fence.
/// Decided once, before any reader or writer uses either, and the same for both.
#[inline]
fn asymmetric() -> bool {
    static MODE: OnceLock<bool> = OnceLock::new();
    *MODE.get_or_init(register_membarrier)
}

#[cfg(target_os = "linux")]
fn register_membarrier() -> bool {
    // From linux/membarrier.h.
    const QUERY: libc::c_int = 0;
    const PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
    const REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;
    // SAFETY: membarrier with these commands takes no pointers and changes no memory.
    let supported = unsafe { libc::syscall(libc::SYS_membarrier, QUERY, 0, 0) };
    if supported < 0 || supported & libc::c_long::from(PRIVATE_EXPEDITED) == 0 {
        return false;
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_membarrier, REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn register_membarrier() -> bool {
    false
}

/// The readers' side of the fence pair.
#[inline(always)]
fn light_fence(asymmetric: bool) {
    if asymmetric {
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The writers' side: a full barrier on every thread of the process that runs now.
fn heavy_fence() {
    #[cfg(target_os = "linux")]
    if asymmetric() {
        const PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
        // SAFETY: takes no pointers and changes no memory.
        let done = unsafe { libc::syscall(libc::SYS_membarrier, PRIVATE_EXPEDITED, 0, 0) };
        // Registered, so it cannot fail; if it ever did, readers would be unprotected.
        assert!(done == 0, "membarrier failed after registration");
        return;
    }
    fence(Ordering::SeqCst);
}

/// Empties slot `index` of `record` (this thread's), and wakes the reclaimer if it poked the
/// record: it may be waiting for what the slot held.
#[inline]
fn clear(record: &Record, index: usize, asymmetric: bool) {
    record.slots[index].store(ptr::null_mut(), Ordering::Release);
    light_fence(asymmetric);
    if record.poked.load(Ordering::Relaxed) {
        record.poked.store(false, Ordering::Relaxed);
        wake_reclaimer();
    }
}

/// Whether any slot of any thread holds `target`, after a heavy fence.
fn is_held(target: *const ()) -> bool {
    heavy_fence();
    records().any(|record| {
        record
            .slots
            .iter()
            .any(|slot| slot.load(Ordering::Acquire).cast_const() == target)
    })
}

/// An `Option<Arc<T>>` that readers hold without a locked instruction; see the module docs.
pub struct Shared<T: Send + Sync + 'static> {
    /// From `Arc::into_raw`; this owns one strong count of it.
    ptr: AtomicPtr<T>,
    _owns: PhantomData<Option<Arc<T>>>,
}

impl<T: Send + Sync + 'static> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("ptr", &self.ptr.load(Ordering::Relaxed))
            .finish()
    }
}

impl<T: Send + Sync + 'static> Default for Shared<T> {
    fn default() -> Self {
        Shared::new(None)
    }
}

impl<T: Send + Sync + 'static> Shared<T> {
    /// Holds `value`.
    pub fn new(value: Option<Arc<T>>) -> Shared<T> {
        Shared {
            ptr: AtomicPtr::new(into_raw(value)),
            _owns: PhantomData,
        }
    }

    /// Whether it holds a value now (which may change the next moment).
    pub fn is_some(&self) -> bool {
        !self.ptr.load(Ordering::Acquire).is_null()
    }

    /// The value, held for as long as the guard lives: no locked instruction, no count.
    #[inline]
    pub fn load(&self) -> Option<Held<T>> {
        let Some(record) = local() else {
            return self.load_full().map(Held::owned);
        };
        let free = record.free.load(Ordering::Relaxed);
        if free == 0 {
            return self.load_full().map(Held::owned);
        }
        let index = free.trailing_zeros() as usize;
        let slot = &record.slots[index];
        let asymmetric = asymmetric();
        let mut p = self.ptr.load(Ordering::Acquire);
        loop {
            let value = NonNull::new(p)?;
            slot.store(p.cast(), Ordering::Release);
            light_fence(asymmetric);
            let again = self.ptr.load(Ordering::Acquire);
            if again == p {
                record.free.store(free & !(1 << index), Ordering::Relaxed);
                return Some(Held {
                    ptr: value,
                    hold: Hold::Slot { record, index },
                    _not_send: PhantomData,
                });
            }
            // Swapped meanwhile: what was loaded may be gone already. The reclaimer may have seen
            // it in the slot and be waiting for it.
            clear(record, index, asymmetric);
            p = again;
        }
    }

    /// The value with a strong count of its own.
    pub fn load_full(&self) -> Option<Arc<T>> {
        match local() {
            Some(record) => self.load_counted(record),
            None => {
                let (lock, record) = fallback();
                let _lock = lock.lock().unwrap_or_else(PoisonError::into_inner);
                self.load_counted(record)
            }
        }
    }

    /// Loads the value into the transfer slot of `record` (this thread's, or the fallback one
    /// under its lock), takes a strong count under its protection, and empties it.
    fn load_counted(&self, record: &Record) -> Option<Arc<T>> {
        let slot = &record.slots[TRANSFER];
        let asymmetric = asymmetric();
        let mut p = self.ptr.load(Ordering::Acquire);
        let counted = loop {
            if p.is_null() {
                break None;
            }
            slot.store(p.cast(), Ordering::Release);
            light_fence(asymmetric);
            let again = self.ptr.load(Ordering::Acquire);
            if again == p {
                // SAFETY: `p` came from `Arc::into_raw`, and the slot keeps it alive: no writer
                // frees what a slot holds after its heavy fence.
                break Some(unsafe {
                    Arc::increment_strong_count(p);
                    Arc::from_raw(p)
                });
            }
            p = again;
        };
        clear(record, TRANSFER, asymmetric);
        counted
    }

    /// Puts `value` in and returns what was there, which readers may still hold.
    pub fn swap(&self, value: Option<Arc<T>>) -> Option<Unlinked<T>> {
        let old = self.ptr.swap(into_raw(value), Ordering::AcqRel);
        NonNull::new(old).map(|ptr| Unlinked { ptr })
    }

    /// Puts `value` in; what was there is freed once no reader holds it.
    pub fn store(&self, value: Option<Arc<T>>) {
        drop(self.swap(value));
    }
}

impl<T: Send + Sync + 'static> Drop for Shared<T> {
    fn drop(&mut self) {
        // A reader may still hold the value through a slot: it goes the way a swapped-out one
        // does.
        drop(self.swap(None));
    }
}

fn into_raw<T>(value: Option<Arc<T>>) -> *mut T {
    value.map_or(ptr::null_mut(), |v| Arc::into_raw(v).cast_mut())
}

/// A value held by a reader; see [`Shared::load`]. It stays on the thread that loaded it.
pub struct Held<T: Send + Sync + 'static> {
    ptr: NonNull<T>,
    hold: Hold,
    _not_send: PhantomData<*const T>,
}

enum Hold {
    /// Protected by slot `index` of `record`, this thread's.
    Slot {
        record: &'static Record,
        index: usize,
    },
    /// Owns one strong count.
    Counted,
}

impl<T: Send + Sync + 'static> Held<T> {
    fn owned(value: Arc<T>) -> Held<T> {
        Held {
            // SAFETY: `Arc::into_raw` never returns null.
            ptr: unsafe { NonNull::new_unchecked(Arc::into_raw(value).cast_mut()) },
            hold: Hold::Counted,
            _not_send: PhantomData,
        }
    }
}

impl<T: Send + Sync + 'static> std::ops::Deref for Held<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: held by a slot (no writer frees it meanwhile) or by a strong count.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: Send + Sync + 'static> Drop for Held<T> {
    #[inline]
    fn drop(&mut self) {
        match self.hold {
            Hold::Slot { record, index } => {
                clear(record, index, asymmetric());
                let free = record.free.load(Ordering::Relaxed);
                record.free.store(free | (1 << index), Ordering::Relaxed);
            }
            // SAFETY: the count this guard owns, from `Arc::into_raw`.
            Hold::Counted => drop(unsafe { Arc::from_raw(self.ptr.as_ptr()) }),
        }
    }
}

/// A value swapped out of a [`Shared`]: this owns its strong count, but readers may still hold
/// it through their slots. Dropped, it is handed to the reclaimer, which lets go of the count
/// once no slot holds it.
pub struct Unlinked<T: Send + Sync + 'static> {
    ptr: NonNull<T>,
}

// SAFETY: it owns a strong count of an `Arc<T>` with `T: Send + Sync`, as `Arc<T>` would.
unsafe impl<T: Send + Sync + 'static> Send for Unlinked<T> {}

impl<T: Send + Sync + 'static> Unlinked<T> {
    /// The value, if no reader holds it now (none can start to: it is no longer shared).
    pub fn into_unheld(self) -> Result<Arc<T>, Unlinked<T>> {
        if is_held(self.ptr.as_ptr().cast_const().cast()) {
            return Err(self);
        }
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: the strong count this owns, from `Arc::into_raw`; `this` is not dropped.
        Ok(unsafe { Arc::from_raw(this.ptr.as_ptr()) })
    }
}

impl<T: Send + Sync + 'static> std::ops::Deref for Unlinked<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this owns a strong count.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: Send + Sync + 'static> Drop for Unlinked<T> {
    fn drop(&mut self) {
        // SAFETY: the strong count this owns, from `Arc::into_raw`; it is moved into the
        // reclaimer and dropped there once no slot holds the pointer.
        let value: Arc<T> = unsafe { Arc::from_raw(self.ptr.as_ptr()) };
        defer(self.ptr.as_ptr().cast_const().cast(), Box::new(value));
    }
}

/// What the reclaimer waits to drop, by the address readers' slots would hold.
struct Reclaim {
    pending: Vec<(usize, Box<dyn Any + Send>)>,
    /// Something changed: a deferral or a poke.
    woken: bool,
    running: bool,
}

static RECLAIM: Mutex<Reclaim> = Mutex::new(Reclaim {
    pending: Vec::new(),
    woken: false,
    running: false,
});
static RECLAIM_WAKE: Condvar = Condvar::new();

fn lock_reclaim() -> MutexGuard<'static, Reclaim> {
    RECLAIM.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Drops `value` once no slot holds `target`: now, if none does.
fn defer(target: *const (), value: Box<dyn Any + Send>) {
    if !is_held(target) {
        drop(value);
        return;
    }
    let mut reclaim = lock_reclaim();
    reclaim.pending.push((target as usize, value));
    reclaim.woken = true;
    start_reclaimer(reclaim);
}

/// A holder of something the reclaimer waits for let go.
#[cold]
fn wake_reclaimer() {
    let mut reclaim = lock_reclaim();
    reclaim.woken = true;
    start_reclaimer(reclaim);
}

fn start_reclaimer(mut reclaim: MutexGuard<'static, Reclaim>) {
    if reclaim.running || reclaim.pending.is_empty() {
        RECLAIM_WAKE.notify_all();
        return;
    }
    reclaim.running = true;
    drop(reclaim);
    let spawned = std::thread::Builder::new()
        .name("proxyso-reclaim".into())
        .spawn(reclaimer);
    if spawned.is_err() {
        // Tried again on the next deferral or poke; until then the values stay pending,
        // which only delays their release.
        lock_reclaim().running = false;
    }
}

/// The reclaimer: drops pending values as their last holders let go; ends when none is left.
fn reclaimer() {
    // A call that holds a version for minutes costs two membarriers per round: back off.
    let mut poll = POLL;
    loop {
        let batch = {
            let mut reclaim = lock_reclaim();
            if !reclaim.woken && !reclaim.pending.is_empty() {
                reclaim = RECLAIM_WAKE
                    .wait_timeout(reclaim, poll)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            poll = if reclaim.woken {
                POLL
            } else {
                (poll * 2).min(POLL.max(Duration::from_secs(1)))
            };
            reclaim.woken = false;
            if reclaim.pending.is_empty() {
                reclaim.running = false;
                return;
            }
            std::mem::take(&mut reclaim.pending)
        };
        let targets: HashSet<usize> = batch.iter().map(|(target, _)| *target).collect();
        // Every target left its `Shared` before it was deferred, and a swap is followed by a
        // heavy fence before anyone scans (`defer`'s `is_held`), so no new slot can come to
        // hold a target: the holders only go. The interleavings that matter, for one holder H
        // of target T, with P the poke store and C the holder's clearing store:
        // - H clears before the first fence: the first scan may still see T (its store not
        //   visible yet) and poke; the second scan, after a full barrier on H's CPU, sees the
        //   slot empty. T is freed; H may see the stale poke later and wake us for nothing.
        // - H clears between the scans: P, heavy fence, then H's C, light fence, poke load:
        //   the store-buffering pair (P, fence, load slot) / (C, fence, load poke) cannot
        //   miss both ways, so either the second scan sees the slot empty or H sees the poke
        //   and sets `woken`, and the next round looks again without waiting.
        // - H clears after the second scan: it sees the poke (set before the second fence)
        //   and wakes us.
        // A holder that was not poked because the first scan missed its slot cleared it
        // before that scan's fence completed, so the second scan sees it empty.
        heavy_fence();
        for record in records() {
            if record
                .slots
                .iter()
                .any(|slot| targets.contains(&(slot.load(Ordering::Acquire) as usize)))
            {
                record.poked.store(true, Ordering::Relaxed);
            }
        }
        heavy_fence();
        let held: HashSet<usize> = records()
            .flat_map(|record| record.slots.iter())
            .map(|slot| slot.load(Ordering::Acquire) as usize)
            .filter(|p| targets.contains(p))
            .collect();
        let (still, free): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|(target, _)| held.contains(target));
        // Outside the lock: dropping a version may hand it to its reaper.
        drop(free);
        if !still.is_empty() {
            lock_reclaim().pending.extend(still);
        }
    }
}

/// Values waiting for their last holder to let go.
pub fn pending() -> usize {
    lock_reclaim().pending.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::time::Instant;

    /// Counts its drops, and knows whether it was dropped: reading it after that is the bug.
    struct Tracked {
        alive: AtomicBool,
        drops: Arc<AtomicU64>,
    }

    impl Tracked {
        fn new(drops: &Arc<AtomicU64>) -> Arc<Tracked> {
            Arc::new(Tracked {
                alive: AtomicBool::new(true),
                drops: Arc::clone(drops),
            })
        }
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.alive.store(false, Ordering::SeqCst);
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn wait_for(mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    #[test]
    fn a_held_value_outlives_its_swap_and_goes_when_let_go() {
        let drops = Arc::new(AtomicU64::new(0));
        let shared = Shared::new(Some(Tracked::new(&drops)));
        let held = shared.load().unwrap();
        let unlinked = shared.swap(Some(Tracked::new(&drops))).unwrap();
        let unlinked = unlinked.into_unheld().err().expect("held by this thread");
        drop(unlinked);
        assert_eq!(drops.load(Ordering::SeqCst), 0, "still held");
        assert!(held.alive.load(Ordering::SeqCst));
        drop(held);
        assert!(
            wait_for(|| drops.load(Ordering::SeqCst) == 1),
            "freed after"
        );
        // Not held: freed at once.
        let unheld = shared.swap(None).unwrap().into_unheld();
        assert!(unheld.is_ok());
        drop(unheld);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        assert!(shared.load().is_none());
    }

    #[test]
    fn a_value_held_on_another_thread_waits_for_it() {
        let drops = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared::new(Some(Tracked::new(&drops))));
        let (loaded_tx, loaded_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let reader = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                let held = shared.load().unwrap();
                loaded_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                assert!(held.alive.load(Ordering::SeqCst));
            })
        };
        loaded_rx.recv().unwrap();
        shared.store(None);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(drops.load(Ordering::SeqCst), 0, "the reader holds it");
        go_tx.send(()).unwrap();
        reader.join().unwrap();
        let started = Instant::now();
        assert!(wait_for(|| drops.load(Ordering::SeqCst) == 1));
        assert!(
            started.elapsed() < POLL / 2,
            "the reader's release woke the reclaimer"
        );
    }

    #[test]
    fn more_holds_than_slots_fall_back_to_counts() {
        let drops = Arc::new(AtomicU64::new(0));
        let shared = Shared::new(Some(Tracked::new(&drops)));
        let held: Vec<_> = (0..3 * SLOTS).map(|_| shared.load().unwrap()).collect();
        shared.store(None);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        assert!(held.iter().all(|h| h.alive.load(Ordering::SeqCst)));
        drop(held);
        assert!(wait_for(|| drops.load(Ordering::SeqCst) == 1));
        // Every slot is free again.
        let again = Shared::new(Some(Tracked::new(&drops)));
        let h = again.load().unwrap();
        assert!(matches!(h.hold, Hold::Slot { .. }));
    }

    /// A value that marks itself dropped in a table its readers keep, so that a reader can check
    /// after holding it a while that it was not dropped meanwhile without reading its memory
    /// (which the allocator may have handed to the next value).
    struct Numbered {
        number: usize,
        dropped: Arc<Vec<AtomicBool>>,
    }

    impl Drop for Numbered {
        fn drop(&mut self) {
            let was = self.dropped[self.number].swap(true, Ordering::SeqCst);
            assert!(!was, "value {} dropped twice", self.number);
        }
    }

    /// Readers on several threads load values, hold them a while (spinning, yielding), and
    /// check that none was dropped meanwhile, while a writer swaps in new ones as fast as it
    /// can: no value is ever freed while a slot or a count holds it, and each is freed once.
    #[test]
    fn stress_no_value_is_freed_while_held() {
        let most = 2_000_000;
        let dropped: Arc<Vec<AtomicBool>> =
            Arc::new((0..=most).map(|_| AtomicBool::new(false)).collect());
        let numbered = |number| {
            Arc::new(Numbered {
                number,
                dropped: Arc::clone(&dropped),
            })
        };
        let shared = Arc::new(Shared::new(Some(numbered(0))));
        let stop = Arc::new(AtomicBool::new(false));
        let total_reads = Arc::new(AtomicU64::new(0));
        let swapped = Arc::new(AtomicU64::new(0));
        let readers: Vec<_> = (0..3)
            .map(|i| {
                let shared = Arc::clone(&shared);
                let stop = Arc::clone(&stop);
                let total_reads = Arc::clone(&total_reads);
                let swapped = Arc::clone(&swapped);
                let dropped = Arc::clone(&dropped);
                std::thread::spawn(move || {
                    let mut reads = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let a = shared.load().unwrap();
                        let b = shared.load_full().unwrap();
                        let (a_number, b_number) = (a.number, b.number);
                        if i == 0 {
                            // Hold until the writer surely swapped both out.
                            let seen = swapped.load(Ordering::SeqCst);
                            while swapped.load(Ordering::SeqCst) < seen + 2
                                && !stop.load(Ordering::Relaxed)
                            {
                                std::thread::yield_now();
                            }
                        } else {
                            for _ in 0..2_000 {
                                std::hint::spin_loop();
                            }
                        }
                        assert!(
                            !dropped[a_number].load(Ordering::SeqCst),
                            "value {a_number} was dropped while a slot held it"
                        );
                        assert!(
                            !dropped[b_number].load(Ordering::SeqCst),
                            "value {b_number} was dropped while counted"
                        );
                        drop((a, b));
                        reads += 1;
                        total_reads.fetch_add(1, Ordering::Relaxed);
                    }
                    reads
                })
            })
            .collect();
        // Swap until the readers have done plenty of reads among the swaps.
        let mut swaps = 0;
        while swaps < most && (swaps < 20_000 || total_reads.load(Ordering::Relaxed) < 200_000) {
            swaps += 1;
            shared.store(Some(numbered(swaps)));
            swapped.fetch_add(1, Ordering::SeqCst);
        }
        stop.store(true, Ordering::Relaxed);
        let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(reads > 0);
        let all_but_last = || dropped[..swaps].iter().all(|d| d.load(Ordering::SeqCst));
        assert!(wait_for(all_but_last), "every swapped-out value is freed");
        assert!(!dropped[swaps].load(Ordering::SeqCst));
        shared.store(None);
        assert!(wait_for(|| dropped[swaps].load(Ordering::SeqCst)));
        assert!(wait_for(|| pending() == 0));
    }

    #[test]
    fn thread_indexes_are_distinct_among_live_threads() {
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let indexes: Vec<usize> = (0..4)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let index = thread_index().unwrap();
                    barrier.wait();
                    index
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let distinct: HashSet<_> = indexes.iter().collect();
        assert_eq!(distinct.len(), 4, "{indexes:?}");
    }
}
