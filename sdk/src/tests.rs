//! Drives the trampolines the way the host does, through [`testing::Harness`] (a `Vec`-backed
//! output and error slot) and, for the misuse cases, directly.

use std::ffi::{CStr, c_void};
use std::io::Write;
use std::ptr;
use std::sync::Mutex;

use crate::testing::{Failure, Harness};
use crate::{Error, Host, Level, Output, PANIC_CODE, Plugin, abi};

/// Tags of the plugins dropped so far; tests use distinct tags since they run in parallel.
static DROPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn drops_of(tag: &str) -> usize {
    DROPPED.lock().unwrap().iter().filter(|t| *t == tag).count()
}

struct TestPlugin {
    host: Host,
    tag: String,
}

impl Plugin for TestPlugin {
    fn init(host: Host, config: &[u8]) -> Result<Self, Error> {
        let tag = String::from_utf8_lossy(config).into_owned();
        match tag.as_str() {
            "fail" => Err(Error::new(7, "init refused")),
            "panic" => panic!("init panicked"),
            _ => {
                host.info(&format!("init {tag}"));
                Ok(TestPlugin { host, tag })
            }
        }
    }
}

impl Drop for TestPlugin {
    fn drop(&mut self) {
        self.host.debug("drop");
        DROPPED.lock().unwrap().push(self.tag.clone());
    }
}

impl TestPlugin {
    fn echo(&self, input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
        out.write_all(input)
    }

    fn tag(&self, _input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
        out.write_all(self.tag.as_bytes())
    }

    /// Many small writes through `io::Write`, to exercise geometric growth.
    fn count_to(&self, input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
        let n: u32 = std::str::from_utf8(input)?.parse()?;
        for i in 0..n {
            write!(out, "{i},")?;
        }
        Ok(())
    }

    fn big(&self, input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
        let n: usize = std::str::from_utf8(input)?.parse()?;
        out.append_with(n, |buf| {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (i % 251) as u8;
            }
        })
    }

    /// Writes through `spare_capacity_mut` and `set_len`, as a hand-written encoder would.
    fn spare(&self, input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
        out.reserve(out.len() + input.len())?;
        let spare = out.spare_capacity_mut();
        for (dst, src) in spare.iter_mut().zip(input) {
            dst.write(src.to_ascii_uppercase());
        }
        let len = out.len() + input.len();
        // SAFETY: the loop initialized `input.len()` bytes past `len`, within the capacity
        // reserved above.
        unsafe { out.set_len(len) };
        Ok(())
    }

    fn absurd(&self, _input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
        out.reserve(usize::MAX / 2)
    }

    fn fail(&self, input: &[u8], _out: &mut Output<'_>) -> Result<(), Error> {
        Err(Error::new(
            42,
            format!("failed: {}", String::from_utf8_lossy(input)),
        ))
    }

    fn panic_str(&self, _input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
        out.write_all(b"partial")?;
        panic!("static message");
    }

    fn panic_string(&self, input: &[u8], _out: &mut Output<'_>) -> Result<(), Error> {
        panic!("formatted {}", String::from_utf8_lossy(input));
    }

    fn panic_any(&self, _input: &[u8], _out: &mut Output<'_>) -> Result<(), Error> {
        std::panic::panic_any(5_u8);
    }
}

crate::export_plugin! {
    plugin: TestPlugin,
    name: "test",
    version: "1.2.3",
    methods: {
        "echo" => TestPlugin::echo,
        "tag" => TestPlugin::tag,
        "count-to" => TestPlugin::count_to,
        "big" => TestPlugin::big,
        "spare" => TestPlugin::spare,
        "absurd" => TestPlugin::absurd,
        "fail" => TestPlugin::fail,
        "panic-str" => TestPlugin::panic_str,
        "panic-string" => TestPlugin::panic_string,
        "panic-any" => TestPlugin::panic_any,
        "closure" => |p: &TestPlugin, _: &[u8], out: &mut Output<'_>| out.write_all(p.tag.as_bytes()),
    },
}

fn load(tag: &str) -> Harness {
    // SAFETY: the descriptor was made by `export_plugin!`.
    unsafe { Harness::init(&proxyso_plugin, tag.as_bytes()) }.unwrap()
}

fn c(ptr: *const std::ffi::c_char) -> &'static str {
    // SAFETY: descriptor strings are static and NUL-terminated.
    unsafe { CStr::from_ptr(ptr) }.to_str().unwrap()
}

#[test]
fn descriptor_is_what_the_header_expects() {
    let d = &proxyso_plugin;
    assert_eq!(d.abi_version, abi::ABI_VERSION);
    assert_eq!(d.flags, 0);
    assert_eq!((c(d.name), c(d.version)), ("test", "1.2.3"));
    assert!(d.init.is_some() && d.destroy.is_some());
    assert_eq!(d.method_count, 11);
    // SAFETY: `methods` points to `method_count` static entries.
    let methods = unsafe { std::slice::from_raw_parts(d.methods, d.method_count) };
    assert_eq!(c(methods[0].name), "echo");
    assert_eq!(c(methods[10].name), "closure");
}

#[test]
fn output_is_written_and_the_default_method_is_first() {
    let h = load("out");
    assert_eq!(h.call_default(b"hello").unwrap(), b"hello");
    assert_eq!(h.call("echo", b"").unwrap(), b"");
    assert_eq!(h.call("tag", b"").unwrap(), b"out");
    assert_eq!(h.call("closure", b"").unwrap(), b"out");
    assert_eq!(h.call("spare", b"abc").unwrap(), b"ABC");
}

#[test]
fn output_grows_through_reserve() {
    let h = load("grow");
    h.set_initial_capacity(0);
    let input: Vec<u8> = (0..=255).cycle().take(10_000).collect();
    assert_eq!(h.call("echo", &input).unwrap(), input);
    assert_eq!(h.call("spare", b"xyz").unwrap(), b"XYZ");

    h.set_initial_capacity(1);
    let expected: String = (0..1000).map(|i| format!("{i},")).collect();
    assert_eq!(h.call("count-to", b"1000").unwrap(), expected.as_bytes());

    let big = h.call("big", b"100000").unwrap();
    assert_eq!(big.len(), 100_000);
    assert!(big.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
}

#[test]
fn growth_falls_back_to_the_exact_size_under_the_limit() {
    let h = load("limit");
    h.set_initial_capacity(60);
    // Doubling would ask for 120 bytes; the host allows 100, which is enough.
    h.set_output_limit(100);
    assert_eq!(h.call("big", b"100").unwrap().len(), 100);
}

#[test]
fn a_refused_reserve_is_an_error_naming_the_size() {
    let h = load("refused");
    h.set_output_limit(1000);
    let f = h.call("big", b"1001").unwrap_err();
    assert_eq!((f.status, f.code), (abi::ERROR, Error::DEFAULT_CODE));
    assert!(f.message.contains("1001 bytes"), "{f}");

    let f = h.call("absurd", b"").unwrap_err();
    assert_eq!(f.status, abi::ERROR);
    assert!(
        f.message.contains(&format!("{} bytes", usize::MAX / 2)),
        "{f}"
    );

    // The same error through `io::Write` and `?` keeps its message.
    let f = h.call("count-to", b"10000").unwrap_err();
    assert!(
        f.message.contains("the host refused to grow the output"),
        "{f}"
    );
}

#[test]
fn err_becomes_error_with_code_and_message() {
    let h = load("err");
    let f = h.call("fail", b"input").unwrap_err();
    let expected = Failure {
        status: abi::ERROR,
        code: 42,
        message: "failed: input".into(),
    };
    assert_eq!(f, expected);

    let f = h.call("count-to", b"x").unwrap_err();
    assert_eq!((f.status, f.code), (abi::ERROR, Error::DEFAULT_CODE));
    assert_eq!(f.message, "invalid digit found in string");
}

#[test]
fn panics_become_panic_with_their_message() {
    let h = load("panicking");
    let f = h.call("panic-str", b"").unwrap_err();
    let expected = Failure {
        status: abi::PANIC,
        code: PANIC_CODE,
        message: "static message".into(),
    };
    assert_eq!(f, expected);

    let f = h.call("panic-string", b"abc").unwrap_err();
    assert_eq!(
        (f.status, f.message.as_str()),
        (abi::PANIC, "formatted abc")
    );

    let f = h.call("panic-any", b"").unwrap_err();
    assert_eq!(f.status, abi::PANIC);
    assert_eq!(f.message, "panic with a payload that is not a string");

    // The version keeps serving after a panic.
    assert_eq!(h.call("echo", b"still here").unwrap(), b"still here");
}

#[test]
fn init_failure_is_reported_and_nothing_is_dropped() {
    // SAFETY: the descriptor was made by `export_plugin!`.
    let f = unsafe { Harness::init(&proxyso_plugin, b"fail") }.unwrap_err();
    assert_eq!(
        f,
        Failure {
            status: abi::ERROR,
            code: 7,
            message: "init refused".into()
        }
    );
    assert_eq!(drops_of("fail"), 0);

    // SAFETY: as above.
    let f = unsafe { Harness::init(&proxyso_plugin, b"panic") }.unwrap_err();
    assert_eq!(
        (f.status, f.code, f.message.as_str()),
        (abi::PANIC, PANIC_CODE, "init panicked")
    );
    assert_eq!(drops_of("panic"), 0);
}

#[test]
fn destroy_drops_the_plugin_exactly_once_and_the_host_is_usable_until_then() {
    let h = load("drop-once");
    assert_eq!(h.call("tag", b"").unwrap(), b"drop-once");
    let logs = h.logs();
    assert!(logs[0].is(Level::Info, "init drop-once"), "{logs:?}");
    assert_eq!(drops_of("drop-once"), 0);
    drop(h);
    assert_eq!(drops_of("drop-once"), 1);
}

/// An error slot that records into `recorded`.
unsafe extern "C" fn record_error(
    this: *mut abi::Error,
    code: i32,
    message: *const std::ffi::c_char,
    len: usize,
) {
    // SAFETY: `host_data` is the test's `Option<(i32, String)>`; `message` has `len` bytes.
    unsafe {
        let recorded = &mut *(*this).host_data.cast::<Option<(i32, String)>>();
        let bytes = std::slice::from_raw_parts(message.cast::<u8>(), len);
        *recorded = Some((code, String::from_utf8_lossy(bytes).into_owned()));
    }
}

unsafe extern "C" fn refuse(_: *mut abi::Output, _: usize) -> abi::Status {
    abi::ERROR
}

#[test]
fn misuse_by_the_host_is_an_error_not_undefined_behaviour() {
    let echo = proxyso_plugin_method(0);
    let mut recorded: Option<(i32, String)> = None;
    let mut error = abi::Error {
        set: record_error,
        host_data: (&raw mut recorded).cast::<c_void>(),
    };
    let mut output = abi::Output {
        data: ptr::null_mut(),
        len: 0,
        capacity: 0,
        reserve: refuse,
        host_data: ptr::null_mut(),
    };

    // SAFETY: every pointer is valid or null; the trampoline checks the null ones.
    let status = unsafe { echo(ptr::null_mut(), ptr::null(), 0, &mut output, &mut error) };
    assert_eq!(status, abi::ERROR);
    assert!(recorded.take().unwrap().1.contains("null context"));

    // A null input with length 0 is an empty input; with a capacity-0, null `data` output.
    let host = abi::Host {
        abi_version: abi::ABI_VERSION,
        reserved: 0,
        log: ignore_log,
        host_data: ptr::null_mut(),
    };
    let mut context = ptr::null_mut();
    // SAFETY: all pointers are valid, and `host` outlives the `destroy` below. A null error
    // slot is skipped.
    let status = unsafe {
        crate::__private::init::<TestPlugin>(&host, b"x".as_ptr(), 1, &mut context, ptr::null_mut())
    };
    assert_eq!(status, abi::OK);
    // SAFETY: as above; `context` is live until `destroy`.
    let status = unsafe { echo(context, ptr::null(), 0, &mut output, &mut error) };
    assert_eq!((status, output.len), (abi::OK, 0));
    // SAFETY: as above.
    let status = unsafe { echo(context, ptr::null(), 3, &mut output, &mut error) };
    assert_eq!(status, abi::ERROR);
    assert!(recorded.take().unwrap().1.contains("null input"));
    // SAFETY: as above; a null error slot is skipped.
    let status = unsafe { echo(context, b"x".as_ptr(), 1, &mut output, ptr::null_mut()) };
    assert_eq!(status, abi::ERROR, "the host refused to reserve");

    // SAFETY: `context` came from `init` and no call is running; a null one is ignored.
    unsafe {
        crate::__private::destroy::<TestPlugin>(context);
        crate::__private::destroy::<TestPlugin>(ptr::null_mut());
    }
}

fn proxyso_plugin_method(i: usize) -> abi::MethodFn {
    assert!(i < proxyso_plugin.method_count);
    // SAFETY: `i` is within the static method table.
    unsafe { (*proxyso_plugin.methods.add(i)).call.unwrap() }
}

unsafe extern "C" fn ignore_log(_: *const abi::Host, _: i32, _: *const std::ffi::c_char, _: usize) {
}

#[test]
fn compile_time_checks_reject_bad_names() {
    use crate::__private::{flags, method_count, nul_terminated};
    assert_eq!(nul_terminated::<4>("abc"), *b"abc\0");
    assert_eq!(method_count(&["a", "b", "ab"]), 3);
    assert_eq!(flags(abi::FLAG_SERIALIZE), abi::FLAG_SERIALIZE);
    for bad in [
        std::panic::catch_unwind(|| nul_terminated::<1>("")).is_err(),
        std::panic::catch_unwind(|| nul_terminated::<4>("a\0b")).is_err(),
        std::panic::catch_unwind(|| method_count(&["a", "b", "a"])).is_err(),
        std::panic::catch_unwind(|| method_count(&[])).is_err(),
        std::panic::catch_unwind(|| flags(0x8000)).is_err(),
    ] {
        assert!(bad);
    }
}
