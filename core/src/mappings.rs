//! The process's memory mappings, counted from `/proc/self/maps`: the budget that refuses a load
//! before the process runs out of them.
//!
//! The kernel allows a process `vm.max_map_count` mappings (65,530 by default). Every loaded
//! plugin version costs about five (one per `PT_LOAD` segment, RELRO splitting the writable one,
//! its `.bss`), so about 13,000 keys use them all up: `dlopen` then fails cleanly, but the JVM's
//! next `mmap` (a thread stack, heap growth, JIT code) fails too, and the JVM aborts. `MapBudget`
//! refuses a load while a reserve for the JVM would still be left.

use std::fs::{self, File};
use std::io::{self, Read};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::LoadError;

/// Where the kernel publishes the per-process limit.
pub const LIMIT_FILE: &str = "/proc/sys/vm/max_map_count";
/// One line per mapping of this process.
const MAPS_FILE: &str = "/proc/self/maps";

/// Mappings counted for a new version beyond its `PT_LOAD` segments: RELRO splits the writable
/// segment in two, a `.bss` larger than the file adds an anonymous mapping, and the plugin's
/// `init` or a library it needs that is not loaded yet may map a few more.
pub const MARGIN: usize = 8;

/// A measured count is reused, without reading `/proc/self/maps` again, for this long...
const FRESH: Duration = Duration::from_secs(1);
/// ...and only while what is admitted on it stays this fraction of the limit below the line.
const SLACK_DIVISOR: usize = 16;

/// The default reserve: a quarter of the limit (16,382 of 65,530).
///
/// What the JVM maps grows with the service, not with plugins: two mappings per thread (stack
/// and guard), every `malloc` of 128 KiB or more (direct `ByteBuffer`s among them), glibc's
/// arenas, heap regions committed and uncommitted, code cache and metaspace. A JVM starts with
/// a few hundred (216 in the tests' child JVM); a quarter leaves room for some eight thousand
/// more threads or large buffers, and still lets plugins use three quarters (about 11,000 keys
/// at the 4.2 mappings an example plugin's version was measured to add).
pub fn default_reserve(limit: usize) -> usize {
    limit / 4
}

/// How many mappings a version with `load_segments` `PT_LOAD` segments is counted as needing.
pub fn needed(load_segments: usize) -> usize {
    load_segments + MARGIN
}

/// The figures a load is admitted or refused on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    /// `vm.max_map_count`.
    pub limit: usize,
    /// The process's mappings now.
    pub current: usize,
    /// Kept free for the JVM.
    pub reserve: usize,
    /// What the new version is counted as needing.
    pub needed: usize,
}

impl Figures {
    /// True when the new version fits with the reserve still free.
    pub fn fits(&self) -> bool {
        self.current
            .saturating_add(self.needed)
            .saturating_add(self.reserve)
            <= self.limit
    }

    /// The refusal, with every figure.
    fn refusal(&self) -> LoadError {
        LoadError::TooManyMappings {
            limit: self.limit,
            current: self.current,
            reserve: self.reserve,
            needed: self.needed,
        }
    }
}

/// The last count read, and what was admitted on it since.
#[derive(Debug, Clone, Copy)]
struct Measured {
    at: Instant,
    limit: usize,
    count: usize,
    admitted: usize,
}

impl Measured {
    /// True when `needed` more can be admitted on this count without reading it again: it is
    /// recent, and the estimate stays clear of the line by a slack of the limit.
    fn covers(&self, now: Instant, needed: usize, reserve: usize) -> bool {
        now.saturating_duration_since(self.at) < FRESH
            && Figures {
                limit: self.limit,
                current: self.count + self.admitted + self.limit / SLACK_DIVISOR,
                reserve,
                needed,
            }
            .fits()
    }
}

#[derive(Debug)]
struct BudgetState {
    /// The reserve set by `proxyso.mapReserve`; `None` for `default_reserve`.
    reserve: Option<usize>,
    last: Option<Measured>,
}

/// Admits or refuses new versions by the process's mapping count (see the module's text).
#[derive(Debug)]
pub struct MapBudget {
    state: Mutex<BudgetState>,
}

/// The process's one budget: every load, replace and rollback asks it.
pub static BUDGET: MapBudget = MapBudget::new();

impl MapBudget {
    /// A budget with the default reserve.
    pub const fn new() -> MapBudget {
        MapBudget {
            state: Mutex::new(BudgetState {
                reserve: None,
                last: None,
            }),
        }
    }

    /// Sets the reserve, in mappings; `None` goes back to a quarter of the limit.
    pub fn set_reserve(&self, reserve: Option<usize>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.reserve = reserve;
        state.last = None;
    }

    /// Admits a version with `load_segments` `PT_LOAD` segments, or refuses it when it would
    /// leave less than the reserve free. Where `/proc` cannot be read, every load is admitted.
    ///
    /// Reading `/proc/self/maps` is not cheap (0.3 ms with a thousand mappings, 80 ms with
    /// 40,000, measured on this project's machine), so a count is reused for a second while the
    /// process is far from the line; near it, every load counts again.
    pub fn admit(&self, load_segments: usize) -> Result<(), LoadError> {
        let needed = needed(load_segments);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let state = &mut *state;
        let now = Instant::now();
        if let Some(last) = &mut state.last {
            let reserve = state.reserve.unwrap_or_else(|| default_reserve(last.limit));
            if last.covers(now, needed, reserve) {
                last.admitted += needed;
                return Ok(());
            }
        }
        let (Ok(limit), Ok(count)) = (read_limit(), count_mappings()) else {
            state.last = None;
            return Ok(());
        };
        let figures = Figures {
            limit,
            current: count,
            reserve: state.reserve.unwrap_or_else(|| default_reserve(limit)),
            needed,
        };
        if !figures.fits() {
            state.last = None;
            return Err(figures.refusal());
        }
        state.last = Some(Measured {
            at: now,
            limit,
            count,
            admitted: needed,
        });
        Ok(())
    }
}

impl Default for MapBudget {
    fn default() -> Self {
        MapBudget::new()
    }
}

/// `vm.max_map_count`.
pub fn read_limit() -> io::Result<usize> {
    let text = fs::read_to_string(LIMIT_FILE)?;
    text.trim()
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{LIMIT_FILE}: {e}")))
}

/// How many mappings this process has now: the lines of `/proc/self/maps`, counted in a buffer
/// on the stack.
pub fn count_mappings() -> io::Result<usize> {
    let mut file = File::open(MAPS_FILE)?;
    let mut buf = [0u8; 16 * 1024];
    let mut lines = 0;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(lines),
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_and_the_new_version_must_both_fit() {
        let at = |current, reserve, needed| Figures {
            limit: 65_530,
            current,
            reserve,
            needed,
        };
        assert_eq!(default_reserve(65_530), 16_382);
        assert_eq!(needed(4), 12);
        // 49,136 + 12 + 16,382 = 65,530: exactly at the limit still fits.
        assert!(at(49_136, 16_382, 12).fits());
        assert!(!at(49_137, 16_382, 12).fits());
        // No reserve: only the kernel's limit counts.
        assert!(at(65_518, 0, 12).fits());
        assert!(!at(65_519, 0, 12).fits());
        // Figures past usize do not wrap into a pass.
        assert!(!at(usize::MAX, 1, 1).fits());
        assert!(!at(1, usize::MAX, 1).fits());
    }

    #[test]
    fn a_count_is_reused_only_while_recent_and_far_from_the_line() {
        let at = Instant::now();
        let last = Measured {
            at,
            limit: 65_530,
            count: 1_000,
            admitted: 0,
        };
        assert!(last.covers(at, 12, 16_382));
        assert!(!last.covers(at + FRESH, 12, 16_382));
        // Within the slack (a sixteenth, 4,095) of the line: count again.
        assert!(!last.covers(at, 12, 65_530 - 1_000 - 4_095 - 11));
        assert!(last.covers(at, 12, 65_530 - 1_000 - 4_095 - 12));
        let busy = Measured {
            admitted: 45_000,
            ..last
        };
        assert!(!busy.covers(at, 12, 16_382));
    }

    #[test]
    fn refuses_with_every_figure_and_admits_again_with_room() {
        let count = count_mappings().unwrap();
        let limit = read_limit().unwrap();
        assert!(count > 10 && count < limit, "{count} of {limit}");
        let budget = MapBudget::new();
        budget.admit(4).unwrap();
        // A reserve past what is left: other test threads may come and go meanwhile.
        budget.set_reserve(Some(limit - count + 100));
        let err = budget.admit(4).unwrap_err();
        let LoadError::TooManyMappings {
            limit: l,
            current,
            reserve,
            needed: n,
        } = err
        else {
            panic!("{err}");
        };
        assert_eq!((l, reserve, n), (limit, limit - count + 100, 12));
        assert!(current.abs_diff(count) < 100, "{current} vs {count}");
        let text = err.to_string();
        for part in [
            format!("{current}"),
            format!("{limit}"),
            format!("{reserve}"),
            "vm.max_map_count".to_owned(),
            "proxyso.mapReserve".to_owned(),
        ] {
            assert!(text.contains(&part), "{part} not in {text}");
        }
        budget.set_reserve(Some(0));
        budget.admit(4).unwrap();
    }

    #[test]
    fn counts_every_line_of_the_maps_file() {
        let lines = fs::read_to_string(MAPS_FILE).unwrap().lines().count();
        let counted = count_mappings().unwrap();
        assert!(counted.abs_diff(lines) < 20, "{counted} vs {lines}");
    }
}
