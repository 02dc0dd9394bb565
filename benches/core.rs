//! Criterion benchmarks of the pure Rust core: the call path (by key, by handle, into a fixed
//! buffer) for several payload sizes, and a replacement. No JVM: this is the proxy's own cost.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use proxyso_core::host::FixedOutput;

const SIZES: [usize; 5] = [0, 64, 4 << 10, 64 << 10, 1 << 20];

fn calls(c: &mut Criterion) {
    let p = common::plugins();
    let (r, _dir) = common::registry();
    r.load("echo", &p.example_v1().to_string_lossy(), b"")
        .unwrap();
    let handle = r.handle("echo").unwrap();
    let mut group = c.benchmark_group("call");
    for size in SIZES {
        let input = vec![0x5a; size];
        let mut out = Vec::new();
        let mut fixed = vec![0u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("by key", size), &input, |b, input| {
            b.iter(|| r.call(black_box("echo"), None, input, &mut out).unwrap());
        });
        group.bench_with_input(BenchmarkId::new("by handle", size), &input, |b, input| {
            b.iter(|| handle.call(None, input, &mut out).unwrap());
        });
        group.bench_with_input(
            BenchmarkId::new("into a buffer", size),
            &input,
            |b, input| {
                b.iter(|| {
                    // SAFETY: `fixed` outlives the output and nothing else touches it meanwhile.
                    let mut into = unsafe { FixedOutput::new(fixed.as_mut_ptr(), fixed.len()) };
                    handle.call_fixed(None, input, &mut into).unwrap()
                });
            },
        );
    }
    group.finish();
}

fn replace(c: &mut Criterion) {
    let p = common::plugins();
    let (r, _dir) = common::registry();
    let v1 = p.example_v1().to_string_lossy().into_owned();
    let v2 = p.example_v2().to_string_lossy().into_owned();
    r.load("swap", &v1, b"").unwrap();
    let mut next = 0u64;
    c.bench_function("replace (no calls in flight)", |b| {
        b.iter(|| {
            next += 1;
            let path = if next % 2 == 0 { &v1 } else { &v2 };
            r.replace("swap", path, b"").unwrap()
        });
    });
}

criterion_group!(benches, calls, replace);
criterion_main!(benches);
