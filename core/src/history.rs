//! Rollback: the previous versions a key keeps, as the very bytes that served.
//!
//! A version loaded with rollback in mind keeps a second name for its private snapshot (a hard
//! link, see `SnapshotDir::keep`), with the config and options it was loaded with. When a
//! replacement takes it out of service it goes on the key's history; rollback loads it again
//! from there, never from its source path, which may have been overwritten since.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::snapshot::KeptCopy;

/// The most previous versions a key may keep.
pub const MAX_KEEP: usize = 64;

/// Previous versions a key keeps unless told otherwise.
pub const DEFAULT_KEEP: usize = 1;

/// Where a version came from, and what loading it again takes.
#[derive(Debug)]
pub struct Origin {
    /// The path it was first loaded from, as given.
    pub source: String,
    /// The generation it first served as.
    pub generation: u64,
    /// The loaded bytes under a kept name; `None` when its key kept no previous versions.
    pub copy: Option<KeptCopy>,
    /// The config its `init` received.
    pub config: Box<[u8]>,
    /// Loaded with `keep_mapped`.
    pub keep_mapped: bool,
    /// Loaded with `allow_signal_handlers`.
    pub allow_signal_handlers: bool,
    /// Loaded with `exact_timing`.
    pub exact_timing: bool,
    /// Loaded isolated, with these limits, through this worker executable.
    pub isolation: Option<(crate::isolated::Isolation, crate::preflight::Worker)>,
}

/// One key's previous versions, the most recent first.
#[derive(Debug)]
pub struct History {
    keep: usize,
    previous: VecDeque<Arc<Origin>>,
}

impl Default for History {
    fn default() -> Self {
        History::new(DEFAULT_KEEP)
    }
}

impl History {
    /// Keeps up to `keep` previous versions.
    pub fn new(keep: usize) -> History {
        History {
            keep,
            previous: VecDeque::new(),
        }
    }

    /// How many previous versions are kept.
    pub fn keep(&self) -> usize {
        self.keep
    }

    /// Keeps up to `keep` from now on, forgetting the oldest beyond it.
    pub fn set_keep(&mut self, keep: usize) {
        self.keep = keep;
        self.previous.truncate(keep);
    }

    /// A version left service to a replacement: it becomes the one rollback restores.
    pub fn push(&mut self, origin: Arc<Origin>) {
        if self.keep > 0 && origin.copy.is_some() {
            self.previous.push_front(origin);
            self.previous.truncate(self.keep);
        }
    }

    /// Takes the most recent previous version, for a rollback.
    pub fn pop(&mut self) -> Option<Arc<Origin>> {
        self.previous.pop_front()
    }

    /// Puts back a version whose rollback failed.
    pub fn restore(&mut self, origin: Arc<Origin>) {
        self.previous.push_front(origin);
        self.previous.truncate(self.keep.max(1));
    }

    /// The previous versions, the most recent first.
    pub fn previous(&self) -> impl Iterator<Item = &Arc<Origin>> {
        self.previous.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(generation: u64, kept: bool) -> Arc<Origin> {
        let dir = tempfile::tempdir().unwrap();
        let copy = kept.then(|| {
            let snapshots = crate::snapshot::SnapshotDir::new(dir.path().into());
            let source = dir.path().join("lib.so");
            std::fs::write(&source, crate::elf::libc_bytes()).unwrap();
            let snapshot = snapshots.take(&source, None).unwrap();
            let kept = snapshots.keep(&snapshot).unwrap();
            // The directory must outlive the copy for the test's length only.
            std::mem::forget(snapshots);
            kept
        });
        std::mem::forget(dir);
        Arc::new(Origin {
            source: format!("/v{generation}.so"),
            generation,
            copy,
            config: Box::default(),
            keep_mapped: false,
            allow_signal_handlers: false,
            exact_timing: false,
            isolation: None,
        })
    }

    fn generations(history: &History) -> Vec<u64> {
        history.previous().map(|o| o.generation).collect()
    }

    #[test]
    fn keeps_the_most_recent_up_to_its_depth() {
        let mut history = History::new(2);
        for generation in 1..=4 {
            history.push(origin(generation, true));
        }
        assert_eq!(generations(&history), [4, 3]);
        assert_eq!(history.pop().unwrap().generation, 4);
        assert_eq!(generations(&history), [3]);
        history.set_keep(0);
        assert!(history.pop().is_none());
    }

    #[test]
    fn keeps_nothing_without_a_kept_copy_or_at_depth_zero() {
        let mut history = History::new(1);
        history.push(origin(1, false));
        assert!(history.pop().is_none());
        let mut none = History::new(0);
        none.push(origin(2, true));
        assert!(none.pop().is_none());
    }
}
