//! Call statistics, per generation and per key, counted without a shared write per call.
//!
//! Each generation counts into a few cache-line-sized shards, and readers add them up. The first
//! shards each belong to one live thread at a time (the thread whose `hazard::thread_index` is
//! the shard's number), which counts with plain loads and stores: no locked instruction, which
//! the profile of a short call showed costing more than the rest of the counting. Threads whose
//! number is past them share the others, counting with atomic adds as before; threads on
//! different shards never write the same cache line. Per-key totals are the serving
//! generation, the generations still draining, and what retired generations left behind when
//! they closed.
//!
//! Every call is counted; by default not every call is timed. Reading the clock costs about
//! 10 ns here (a `rdtsc`), twice per call, which is a fifth of a short call. So a call that took
//! at least `ALWAYS_TIMED_NANOS` keeps the next one timed too, and after a shorter one a shard
//! times one call in up to `MAX_WEIGHT`, adding its time once for each call it stands for. While
//! calls take microseconds, every call is timed; while they take less, the total is an estimate
//! and the maximum is that of the calls timed, which can miss a rare slow call among fast ones.
//! A load with exact timing times every call.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::hazard;
use crate::snapshot::Digest;

/// The clock calls are timed with: the TSC where it is usable (a few nanoseconds a read).
fn clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Calls that take at least this long are all timed.
const ALWAYS_TIMED_NANOS: u64 = 2_000;
/// The shortest calls are timed one in this many.
const MAX_WEIGHT: u64 = 64;

/// One shard: a cache line of counters.
#[derive(Debug)]
#[repr(align(64))]
struct Shard {
    entered: AtomicU64,
    exited: AtomicU64,
    failed: AtomicU64,
    nanos: AtomicU64,
    max_nanos: AtomicU64,
    /// Untimed calls to go before the next timed one.
    countdown: AtomicU32,
    /// How many calls the next timed one stands for.
    weight: AtomicU32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            entered: AtomicU64::new(0),
            exited: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
            max_nanos: AtomicU64::new(0),
            countdown: AtomicU32::new(0),
            weight: AtomicU32::new(1),
        }
    }
}

/// Shards per generation owned by one thread each (a power of two); as many again are shared by
/// the threads past them.
fn owned_shards() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
        (cpus * 2).clamp(8, 64).next_power_of_two()
    })
}

/// This thread's shard, and whether it is the only one that writes it.
#[inline]
fn my_shard(owned: usize) -> (usize, bool) {
    match hazard::thread_index() {
        Some(index) if index < owned => (index, true),
        // Spread evenly over the shared shards; a thread whose locals are gone takes the first.
        Some(index) => (owned + (index & (owned - 1)), false),
        None => (owned, false),
    }
}

/// Adds `n` to a counter: a plain load and store on a shard this thread owns, an atomic add on
/// a shared one.
#[inline(always)]
fn add(counter: &AtomicU64, n: u64, owned: bool) {
    if owned {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    } else {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The counts of one generation, or of a key: what `LibraryInfo` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls that returned.
    pub calls: u64,
    /// Of those, the ones that failed.
    pub failed: u64,
    /// Calls inside the plugin right now.
    pub in_flight: u64,
    /// Time spent in calls that returned, in nanoseconds.
    pub total_nanos: u64,
    /// The longest call, in nanoseconds.
    pub max_nanos: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.calls += other.calls;
        self.failed += other.failed;
        self.in_flight += other.in_flight;
        self.total_nanos += other.total_nanos;
        self.max_nanos = self.max_nanos.max(other.max_nanos);
    }
}

/// The call counters of one generation.
#[derive(Debug)]
pub struct CallCounters {
    /// `owned_shards()` owned ones, then as many shared ones.
    shards: Box<[Shard]>,
    /// Time every call, not a sample of the short ones.
    exact: bool,
}

impl Default for CallCounters {
    fn default() -> Self {
        CallCounters::new(false)
    }
}

/// A call being counted; `end` it when the plugin returned, on the same thread.
#[must_use]
pub struct Timing<'a> {
    shard: &'a Shard,
    /// Whether this thread is the only writer of `shard`.
    owned: bool,
    /// The clock when the call began, if this one is timed.
    start: Option<u64>,
    exact: bool,
    /// Ended on the thread that began it: an owned shard has one writer.
    _same_thread: PhantomData<*const ()>,
}

impl CallCounters {
    /// Counters that time every call (`exact`) or a sample of the short ones.
    pub fn new(exact: bool) -> CallCounters {
        CallCounters {
            shards: (0..2 * owned_shards()).map(|_| Shard::default()).collect(),
            exact,
        }
    }

    /// Counts a call as in flight from now.
    #[inline]
    pub fn begin(&self) -> Timing<'_> {
        let (index, owned) = my_shard(self.shards.len() / 2);
        let shard = &self.shards[index];
        add(&shard.entered, 1, owned);
        // Plain loads and stores: two threads that share a shard may both time a call, which
        // only makes the estimate a little less smooth.
        let left = shard.countdown.load(Ordering::Relaxed);
        let start = if left == 0 {
            Some(clock().raw())
        } else {
            shard.countdown.store(left - 1, Ordering::Relaxed);
            None
        };
        Timing {
            shard,
            owned,
            start,
            exact: self.exact,
            _same_thread: PhantomData,
        }
    }

    /// Adds the shards up.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        let mut entered = 0;
        for shard in &*self.shards {
            // Exits first: a call counted as exited is then surely counted as entered.
            counts.calls += shard.exited.load(Ordering::Relaxed);
            counts.failed += shard.failed.load(Ordering::Relaxed);
            counts.total_nanos += shard.nanos.load(Ordering::Relaxed);
            counts.max_nanos = counts
                .max_nanos
                .max(shard.max_nanos.load(Ordering::Relaxed));
            entered += shard.entered.load(Ordering::Relaxed);
        }
        counts.in_flight = entered.saturating_sub(counts.calls);
        counts
    }
}

impl Timing<'_> {
    /// The call returned, failed or not. Returns how long it took when this call was timed.
    #[inline]
    pub fn end(self, failed: bool) -> Option<u64> {
        let shard = self.shard;
        let mut timed = None;
        if let Some(start) = self.start {
            let nanos = clock().delta_as_nanos(start, clock().raw());
            let weight = u64::from(shard.weight.load(Ordering::Relaxed));
            add(&shard.nanos, nanos.saturating_mul(weight), self.owned);
            if nanos > shard.max_nanos.load(Ordering::Relaxed) {
                shard.max_nanos.fetch_max(nanos, Ordering::Relaxed);
            }
            let next = if self.exact {
                1
            } else {
                (ALWAYS_TIMED_NANOS / nanos.max(1))
                    .clamp(1, MAX_WEIGHT)
                    .next_power_of_two()
            };
            // At most MAX_WEIGHT, so it fits.
            let next = next as u32;
            shard.weight.store(next, Ordering::Relaxed);
            shard.countdown.store(next - 1, Ordering::Relaxed);
            timed = Some(nanos);
        }
        if failed {
            add(&shard.failed, 1, self.owned);
        }
        add(&shard.exited, 1, self.owned);
        timed
    }
}

/// What one generation is: its number, digest and load time, and its call counters.
#[derive(Debug)]
pub struct GenerationStats {
    /// Its number under the key.
    pub generation: u64,
    /// The SHA-256 of its file as loaded.
    pub sha256: Digest,
    /// How long loading it took (copy, `dlopen`, checks, `init`), in nanoseconds.
    pub load_nanos: u64,
    /// Its calls.
    pub calls: CallCounters,
    /// How many times its worker process died unasked (isolated loads only).
    pub crashes: AtomicU64,
}

impl GenerationStats {
    /// A generation with no calls yet; `exact` times every call.
    pub fn new(generation: u64, sha256: Digest, load_nanos: u64, exact: bool) -> GenerationStats {
        GenerationStats {
            generation,
            sha256,
            load_nanos,
            calls: CallCounters::new(exact),
            crashes: AtomicU64::new(0),
        }
    }
}

/// What one key's versions did, over its whole life.
#[derive(Debug, Default)]
pub struct KeyStats {
    retired: AtomicU64,
    pinned: AtomicU64,
    /// `destroy` calls (with their `dlclose`) running now.
    destroying: AtomicU64,
    /// `destroy` calls that ran longer than the slow-destroy limit.
    slow_destroys: AtomicU64,
    replacements: AtomicU64,
    rollbacks: AtomicU64,
    /// Worker processes of its isolated versions that died unasked.
    crashes: AtomicU64,
    inner: Mutex<KeyInner>,
}

#[derive(Debug, Default)]
struct KeyInner {
    /// Generations out of service whose calls have not all returned, newest last.
    draining: Vec<Arc<GenerationStats>>,
    /// What closed generations counted.
    closed: Counts,
    last_error: Option<String>,
}

impl KeyStats {
    /// Counts a worker of one of its versions that died unasked.
    pub fn crashed(&self) {
        self.crashes.fetch_add(1, Ordering::Relaxed);
    }

    /// Workers of its versions that died unasked, over its whole life.
    pub fn crashes(&self) -> u64 {
        self.crashes.load(Ordering::Relaxed)
    }

    /// Versions destroyed and closed.
    pub fn retired(&self) -> u64 {
        self.retired.load(Ordering::Relaxed)
    }

    /// Of those, how many stayed mapped after `dlclose` although not kept on purpose.
    pub fn pinned(&self) -> u64 {
        self.pinned.load(Ordering::Relaxed)
    }

    /// `destroy` calls of this key's versions running now.
    pub fn destroys_running(&self) -> u64 {
        self.destroying.load(Ordering::Relaxed)
    }

    /// `destroy` calls of this key's versions that ran longer than the slow-destroy limit
    /// (counted when they pass it, returned or not).
    pub fn slow_destroys(&self) -> u64 {
        self.slow_destroys.load(Ordering::Relaxed)
    }

    /// A version's `destroy` starts.
    pub fn destroy_started(&self) {
        self.destroying.fetch_add(1, Ordering::Relaxed);
    }

    /// A version's `destroy` returned (and its library was closed).
    pub fn destroy_ended(&self) {
        self.destroying.fetch_sub(1, Ordering::Relaxed);
    }

    /// A version's `destroy` ran longer than the slow-destroy limit.
    pub fn slow_destroy(&self) {
        self.slow_destroys.fetch_add(1, Ordering::Relaxed);
    }

    /// Successful replacements.
    pub fn replacements(&self) -> u64 {
        self.replacements.load(Ordering::Relaxed)
    }

    /// Successful rollbacks.
    pub fn rollbacks(&self) -> u64 {
        self.rollbacks.load(Ordering::Relaxed)
    }

    /// Counts a replacement.
    pub fn replaced(&self) {
        self.replacements.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a rollback.
    pub fn rolled_back(&self) {
        self.rollbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// Remembers the last failure (a call's, a replace's or a rollback's); only failures write
    /// here.
    pub fn failed(&self, message: String) {
        self.lock().last_error = Some(message);
    }

    /// The last failure's message.
    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    /// A generation left service; its calls may still be running.
    pub fn draining(&self, generation: Arc<GenerationStats>) {
        self.lock().draining.push(generation);
    }

    /// A generation is destroyed and closed: its counts join the key's closed totals.
    pub fn closed(&self, generation: &Arc<GenerationStats>, pinned: bool) {
        let mut inner = self.lock();
        inner.draining.retain(|g| !Arc::ptr_eq(g, generation));
        let counts = generation.calls.counts();
        inner.closed.add(&counts);
        drop(inner);
        if pinned {
            self.pinned.fetch_add(1, Ordering::Relaxed);
        }
        self.retired.fetch_add(1, Ordering::Relaxed);
    }

    /// The generations still draining, newest first.
    pub fn draining_generations(&self) -> Vec<Arc<GenerationStats>> {
        self.lock().draining.iter().rev().cloned().collect()
    }

    /// One consistent reading: `serving`, then the draining generations newest first, each
    /// with its counts, and the key's totals made of those very counts and the closed ones'.
    pub fn figures(
        &self,
        serving: &Arc<GenerationStats>,
    ) -> (Vec<(Arc<GenerationStats>, Counts)>, Counts) {
        let inner = self.lock();
        let mut totals = inner.closed;
        let generations: Vec<_> = std::iter::once(Arc::clone(serving))
            .chain(inner.draining.iter().rev().cloned())
            .map(|g| {
                let counts = g.calls.counts();
                totals.add(&counts);
                (g, counts)
            })
            .collect();
        (generations, totals)
    }

    /// The key's totals: closed generations, draining ones, and `serving`.
    pub fn totals(&self, serving: Option<&GenerationStats>) -> Counts {
        let inner = self.lock();
        let mut totals = inner.closed;
        for generation in inner.draining.iter().map(|g| &**g).chain(serving) {
            totals.add(&generation.calls.counts());
        }
        totals
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KeyInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_calls_failures_time_and_in_flight() {
        let stats = CallCounters::default();
        let outer = stats.begin();
        assert_eq!(stats.counts().in_flight, 1);
        let inner = stats.begin();
        std::thread::sleep(std::time::Duration::from_millis(5));
        inner.end(true);
        outer.end(false);
        let counts = stats.counts();
        assert_eq!(
            (counts.calls, counts.failed, counts.in_flight),
            (2, 1, 0),
            "{counts:?}"
        );
        assert!(counts.max_nanos >= 4_000_000, "{counts:?}");
        assert!(counts.total_nanos >= 2 * 4_000_000, "{counts:?}");
    }

    #[test]
    fn short_calls_are_sampled_and_long_ones_all_timed() {
        let stats = CallCounters::default();
        for _ in 0..6_400 {
            stats.begin().end(false);
        }
        let counts = stats.counts();
        assert_eq!(counts.calls, 6_400, "every call is counted");
        // Each timed empty call stands for the ones skipped since: the estimate stays close to
        // what timing every call would give (a few tens of nanoseconds each).
        assert!(counts.total_nanos < 6_400 * 2_000, "{counts:?}");

        let slow = CallCounters::default();
        let mut timed = 0;
        for _ in 0..5 {
            let timing = slow.begin();
            timed += u32::from(timing.start.is_some());
            std::thread::sleep(std::time::Duration::from_millis(1));
            timing.end(false);
        }
        assert_eq!(timed, 5, "calls over ALWAYS_TIMED_NANOS are all timed");
        assert!(slow.counts().total_nanos >= 5_000_000);

        let exact = CallCounters::new(true);
        let timed = (0..100)
            .filter(|_| {
                let timing = exact.begin();
                let was = timing.start.is_some();
                timing.end(false);
                was
            })
            .count();
        assert_eq!(timed, 100, "exact timing times every call");
    }

    #[test]
    fn threads_add_up_across_shards() {
        let stats = Arc::new(CallCounters::default());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let stats = Arc::clone(&stats);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        stats.begin().end(false);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(stats.counts().calls, 80_000);
        assert_eq!(stats.counts().in_flight, 0);
    }

    /// Threads one after another, each counting on the shard it owns (the same index, reused
    /// after the last one exited), and more threads at once than there are owned shards: every
    /// call is counted once.
    #[test]
    fn owned_shards_pass_their_counts_on_and_shared_ones_add_up() {
        let stats = Arc::new(CallCounters::default());
        for _ in 0..20 {
            let stats = Arc::clone(&stats);
            std::thread::spawn(move || {
                for _ in 0..1_000 {
                    stats.begin().end(false);
                }
            })
            .join()
            .unwrap();
        }
        assert_eq!(stats.counts().calls, 20_000);
        let many = 3 * owned_shards();
        let barrier = Arc::new(std::sync::Barrier::new(many));
        let threads: Vec<_> = (0..many)
            .map(|_| {
                let stats = Arc::clone(&stats);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    // All alive at once, so that some have no owned shard.
                    barrier.wait();
                    for _ in 0..2_000 {
                        stats.begin().end(true);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let counts = stats.counts();
        let expected = 20_000 + many as u64 * 2_000;
        assert_eq!((counts.calls, counts.in_flight), (expected, 0));
        assert_eq!(counts.failed, many as u64 * 2_000);
    }

    #[test]
    fn key_totals_keep_what_closed_generations_counted() {
        let key = KeyStats::default();
        let old = Arc::new(GenerationStats::new(1, Digest::ready([0; 32]), 5, false));
        old.calls.begin().end(false);
        old.calls.begin().end(true);
        key.draining(Arc::clone(&old));
        let serving = GenerationStats::new(2, Digest::ready([0; 32]), 5, false);
        serving.calls.begin().end(false);
        assert_eq!(key.totals(Some(&serving)).calls, 3);
        assert_eq!(key.draining_generations().len(), 1);
        key.closed(&old, false);
        assert!(key.draining_generations().is_empty());
        let totals = key.totals(Some(&serving));
        assert_eq!((totals.calls, totals.failed), (3, 1));
        assert_eq!(key.retired(), 1);
    }

    #[test]
    fn figures_are_one_reading_of_the_generations_and_the_totals() {
        let key = KeyStats::default();
        let old = Arc::new(GenerationStats::new(1, Digest::ready([0; 32]), 5, false));
        let in_old = old.calls.begin();
        key.draining(Arc::clone(&old));
        let serving = Arc::new(GenerationStats::new(2, Digest::ready([0; 32]), 5, false));
        let in_serving = serving.calls.begin();
        let (generations, totals) = key.figures(&serving);
        let numbers: Vec<u64> = generations.iter().map(|(g, _)| g.generation).collect();
        assert_eq!(numbers, [2, 1], "the serving generation first");
        let in_flight: Vec<u64> = generations.iter().map(|(_, c)| c.in_flight).collect();
        assert_eq!(in_flight, [1, 1]);
        assert_eq!(totals.in_flight, in_flight.iter().sum::<u64>());
        in_old.end(false);
        in_serving.end(false);
    }
}
