//! Criterion benchmarks of the pure Rust core: the call path (by key, by handle, into a fixed
//! buffer) for several payload sizes, a replacement, and the landing pad's own cost (one
//! plugin method called directly and through the C++ frame that catches escaping exceptions).
//! No JVM: this is the proxy's own cost.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::ffi::c_void;
use std::hint::black_box;
use std::ptr;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use proxyso_abi as abi;
use proxyso_core::host::{ErrorSlot, FixedOutput, HostServices, OutputBuf};
use proxyso_core::landing;

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

/// A C++ plugin's default method (`libfx_throws.so`'s "echo", which does next to nothing) with
/// no input, called straight through its function pointer and through the landing pad, in the
/// same run: the difference is the pad's cost.
fn landing_pad(c: &mut Criterion) {
    let p = common::plugins();
    // SAFETY: the fixture has no initialisers of its own; it is closed at the end of this
    // function, after its `destroy`.
    let library = unsafe { libloading::Library::new(p.native("libfx_throws.so")) }.unwrap();
    // SAFETY: looked up as a data address; the fixture's descriptor is static and checked by
    // the proxy's own tests.
    let descriptor = unsafe { library.get::<*const abi::Descriptor>(abi::DESCRIPTOR_SYMBOL) }
        .map(|symbol| *symbol)
        .unwrap();
    // SAFETY: the fixture exports a valid version-1 descriptor that lives as long as `library`.
    let descriptor = unsafe { &*descriptor };
    // SAFETY: `methods` holds `method_count` (5) entries; the first is "echo".
    let call = unsafe { (*descriptor.methods).call }.unwrap();
    let host = HostServices::new("bench".into(), 0);
    let mut context: *mut c_void = ptr::null_mut();
    let mut error = ErrorSlot::default();
    let config = [0u8; 1];
    // SAFETY: what the header requires of `init`; `host` outlives `destroy` below.
    let status = unsafe {
        (descriptor.init.unwrap())(
            host.as_raw(),
            config.as_ptr(),
            0,
            &mut context,
            error.as_raw(),
        )
    };
    assert_eq!(status, abi::OK);
    let mut out = Vec::new();
    let mut group = c.benchmark_group("plugin method");
    group.bench_function("direct", |b| {
        b.iter(|| direct(call, context, &mut out));
    });
    group.bench_function("through the landing pad", |b| {
        b.iter(|| padded(call, context, &mut out));
    });
    group.finish();
    // SAFETY: no call runs any more; the context is the one `init` returned.
    unsafe { (descriptor.destroy.unwrap())(context) };
    drop(library);
}

/// The (empty) input of the calls below; the header wants a non-null pointer.
static EMPTY: [u8; 1] = [0];

/// One call of `call` straight through its pointer. Not inlined, like `padded`: each runs in a
/// frame of its own, and the two differ only in how they call.
#[inline(never)]
fn direct(
    call: abi::MethodFn,
    context: *mut c_void,
    out: &mut Vec<u8>,
) -> (abi::Status, Result<(), String>) {
    let mut output = OutputBuf::new(out, 0);
    let mut error = ErrorSlot::default();
    // SAFETY: a method call as the header requires it: the context its `init` returned, a
    // readable empty input, the host's live output and error structs.
    let status = unsafe { call(context, EMPTY.as_ptr(), 0, output.as_raw(), error.as_raw()) };
    (status, output.finish())
}

/// One call of `call` through the landing pad.
#[inline(never)]
fn padded(
    call: abi::MethodFn,
    context: *mut c_void,
    out: &mut Vec<u8>,
) -> (Result<abi::Status, landing::Thrown>, Result<(), String>) {
    let mut output = OutputBuf::new(out, 0);
    let mut error = ErrorSlot::default();
    // SAFETY: as in `direct`.
    let status = unsafe {
        landing::method(
            call,
            context,
            EMPTY.as_ptr(),
            0,
            output.as_raw(),
            error.as_raw(),
        )
    };
    (status, output.finish())
}

criterion_group!(benches, calls, replace, landing_pad);
criterion_main!(benches);
