//! The call hot path allocates nothing in the host once its output buffer is warm.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use common::{plugins, registry};
use proxyso_core::host::FixedOutput;

/// Counts the host's heap allocations (a plugin has its own allocator, not counted).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates every operation to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn warm_calls_allocate_nothing() {
    let p = plugins();
    let (r, _dir) = registry();
    r.load("hot", &p.example_v2().to_string_lossy(), b"")
        .unwrap();
    let input = vec![b'x'; 4096];
    let mut out = Vec::new();
    // Warm up: the output buffer grows once, and arc-swap sets up this thread's debt slots.
    for _ in 0..3 {
        r.call("hot", None, &input, &mut out).unwrap();
    }
    // The load's digest is computed on a thread of its own, which allocates: let it finish.
    assert_ne!(r.info("hot").unwrap().sha256, [0; 32]);
    let handle = r.handle("hot").unwrap();
    let mut fixed = vec![0u8; 8192];
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    assert!(before > 0, "the counter sees the host's allocations");
    for _ in 0..10_000 {
        r.call("hot", None, &input, &mut out).unwrap();
        r.call("hot", Some("len"), &input, &mut out).unwrap();
        handle.call(None, &input, &mut out).unwrap();
        // SAFETY: `fixed` outlives the output and nothing else touches it meanwhile.
        let mut into = unsafe { FixedOutput::new(fixed.as_mut_ptr(), fixed.len()) };
        assert_eq!(handle.call_fixed(None, &input, &mut into).unwrap(), 4099);
    }
    let during = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(during, 0, "{during} host allocations in 40,000 warm calls");
    assert_eq!(
        &out[..],
        &input[..].iter().chain(b",ab").copied().collect::<Vec<_>>()[..]
    );
}
