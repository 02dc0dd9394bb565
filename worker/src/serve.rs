//! `serve`: the plugin on descriptor 3 loaded here, and served through the region on
//! descriptor 5, one thread a slot, until the host ends this process.

use std::fs::File;
use std::hint::spin_loop;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proxyso_core::host::FixedOutput;
use proxyso_core::isolated::instance::SHUTDOWN;
use proxyso_core::isolated::region::Region;
use proxyso_core::log;
use proxyso_core::plugin::{FixedFailure, LoadOptions, Plugin};
use proxyso_core::protocol::{
    LIBRARY_FD, LOG_FD, REGION_FD, exit, futex, info, log_record, region, spin,
};
use proxyso_core::snapshot::Snapshot;

/// How long a slot's thread spins for the next request at least before it sleeps (longer when
/// the host typically asks again within a millisecond: `protocol::spin`).
const WORKER_SPIN: Duration = Duration::from_micros(50);
/// Each serving thread's stack: what the plugin's methods run on (and what the memory limit
/// leaves room for).
const STACK_BYTES: usize = 8 << 20;

/// The plugin, for the serving threads: set once before any of them starts, taken (for
/// `destroy`) only by the shutdown request, which comes once every call returned.
static mut PLUGIN: Option<Plugin> = None;

pub fn serve(source: &str) -> ! {
    // A panic on a serving thread would end that thread alone, and the call in its slot would
    // wait for ever: the worker ends instead, and its calls get its death.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("proxyso-worker: {info}");
        crate::leave(exit::PANICKED);
    }));
    // SAFETY: descriptor 5 is the region the host handed over (or nothing, which `map` refuses).
    let region_file = unsafe { File::from_raw_fd(REGION_FD) };
    let region = match Region::map(region_file) {
        Ok(region) => Arc::new(region),
        Err(e) => crate::fail(exit::BAD_REGION, &format!("descriptor {REGION_FD}: {e}")),
    };
    forward_log();
    let header = region.header();
    if header.memory_limit > 0 {
        limit_memory(header.memory_limit, region.slots());
    }
    let config_len = usize::try_from(header.config_len)
        .unwrap_or(usize::MAX)
        .min(region.window());
    // SAFETY: the host wrote the configuration into window 0 before it started this process,
    // and nothing writes there until this process answers.
    let config = unsafe { std::slice::from_raw_parts(region.window_ptr(0), config_len) }.to_vec();
    // SAFETY: descriptor 3 is the snapshot the host handed over, read-only.
    let library = unsafe { File::from_raw_fd(LIBRARY_FD) };
    let snapshot = Snapshot::received(library);
    let options = LoadOptions {
        // The plugin's handlers are its own business here: this process is its alone.
        allow_signal_handlers: true,
        ..LoadOptions::config(&config)
    };
    // From here on an exit is the plugin's (a constructor's or init's), not the worker's own.
    region
        .header()
        .state
        .store(region::LOADING, Ordering::Release);
    match Plugin::open_snapshot(&snapshot, Path::new(source), &options, "isolated") {
        Ok(plugin) => {
            let answer = info::encode(&info::Info {
                name: plugin.name().to_owned(),
                version: plugin.version().to_owned(),
                flags: plugin.flags(),
                methods: plugin.method_names().map(str::to_owned).collect(),
            });
            // SAFETY: set before any serving thread starts; read-only until shutdown.
            unsafe { PLUGIN = Some(plugin) };
            // Every serving thread runs before the host hears "ready": a thread that cannot
            // start is this worker's failure to start, not a crash of the plugin's.
            for index in 1..region.slots() {
                let serving = Arc::clone(&region);
                let started = std::thread::Builder::new()
                    .name(format!("slot-{index}"))
                    .stack_size(STACK_BYTES)
                    .spawn(move || serve_slot(&serving, index));
                if let Err(e) = started {
                    let message = format!("cannot start a serving thread: {e}");
                    answer_start(&region, region::FAILED, message.as_bytes());
                    crate::leave(exit::SETUP);
                }
            }
            answer_start(&region, region::READY, &answer);
        }
        Err(e) => {
            answer_start(&region, region::FAILED, e.to_string().as_bytes());
            crate::leave(exit::LOAD_FAILED);
        }
    }
    serve_slot(&region, 0)
}

/// Publishes the start's outcome in the header, with `answer` in window 0.
fn answer_start(region: &Region, state: u32, answer: &[u8]) {
    let len = answer.len().min(region.window());
    // SAFETY: window 0 holds `window` bytes; the host reads it only once `state` moves.
    unsafe { std::ptr::copy_nonoverlapping(answer.as_ptr(), region.window_ptr(0), len) };
    let header = region.header();
    header.answer_len.store(len as u64, Ordering::Release);
    header.state.store(state, Ordering::Release);
    futex::wake(&header.state);
}

/// Serves slot `index` for ever.
fn serve_slot(region: &Region, index: usize) -> ! {
    let slot = region.slot(index);
    // The host counts requests from 0 in a new region; its first may already be there (it
    // may call as soon as the start is answered, before this thread runs).
    let mut last = 0;
    // How long the host typically takes between an answer and its next request.
    let mut typical_gap = 0;
    loop {
        let replied = Instant::now();
        let request = await_request(slot, last, spin::budget(typical_gap, WORKER_SPIN));
        let gap = u64::try_from(replied.elapsed().as_nanos()).unwrap_or(u64::MAX);
        typical_gap = spin::learn(typical_gap, gap);
        last = request;
        serve_one(region, index);
        slot.reply.store(request, Ordering::SeqCst);
        if slot.host_waiting.swap(0, Ordering::SeqCst) != 0 {
            futex::wake(&slot.reply);
        }
    }
}

/// Waits until the host bumps the slot's request past `last`, spinning up to `spin` first;
/// returns the new one.
fn await_request(slot: &region::Slot, last: u32, spin: Duration) -> u32 {
    let spin_until = Instant::now() + spin;
    let mut spins = 0u32;
    loop {
        let request = slot.request.load(Ordering::Acquire);
        if request != last {
            return request;
        }
        spins = spins.wrapping_add(1);
        if spins % 64 == 0 {
            if Instant::now() >= spin_until {
                break;
            }
            // On a machine with no core to spare, the host's caller may need this one.
            std::thread::yield_now();
        }
        spin_loop();
    }
    loop {
        slot.worker_waiting.store(1, Ordering::SeqCst);
        let request = slot.request.load(Ordering::SeqCst);
        if request != last {
            return request;
        }
        futex::wait(&slot.request, last, None);
    }
}

/// Runs the request in slot `index` and writes its result.
fn serve_one(region: &Region, index: usize) {
    let slot = region.slot(index);
    let window = region.window();
    let method = slot.method.load(Ordering::Relaxed);
    if method == SHUTDOWN {
        // SAFETY: the host asks for this only once every call returned (the version is
        // retired), so no other thread uses the plugin; the process exits right after.
        let plugin = unsafe { (*std::ptr::addr_of_mut!(PLUGIN)).take() };
        if let Some(plugin) = plugin {
            plugin.close();
        }
        crate::leave(exit::OK);
    }
    let input_len = usize::try_from(slot.input_len.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
    let output_at = region::output_offset(input_len.min(window));
    let refuse =
        |message: String| write_message(region, index, region::REFUSED, 0, false, &message);
    if input_len >= window || output_at >= window {
        return refuse(format!(
            "an input of {input_len} bytes in a window of {window}"
        ));
    }
    // SAFETY: set before this thread started, taken only by shutdown (see above).
    let Some(plugin) = (unsafe { (*std::ptr::addr_of!(PLUGIN)).as_ref() }) else {
        return refuse("the plugin is closed".into());
    };
    let index_ok = usize::try_from(method)
        .ok()
        .filter(|m| *m < plugin.method_names().count());
    let Some(method) = index_ok else {
        return refuse(format!("no method of index {method}"));
    };
    let mut capacity = window - output_at;
    if slot.fixed.load(Ordering::Relaxed) != 0 {
        let limit = usize::try_from(slot.output_limit.load(Ordering::Relaxed)).unwrap_or(0);
        capacity = capacity.min(limit);
    }
    let data = region.window_ptr(index);
    // SAFETY: the input is the first `input_len` bytes of the window (checked above), which
    // the host does not touch until this call's reply.
    let input = unsafe { std::slice::from_raw_parts(data, input_len) };
    // SAFETY: the output area starts after the input and `capacity` bytes of it are in the
    // window; nothing else uses it during the call.
    let mut output = unsafe { FixedOutput::new(data.add(output_at), capacity) };
    match plugin.call_fixed(method, input, &mut output) {
        Ok(written) => {
            slot.output_len.store(written as u64, Ordering::Relaxed);
            slot.status.store(region::OK, Ordering::Release);
        }
        Err(FixedFailure::TooSmall { required }) => {
            slot.output_len.store(required as u64, Ordering::Relaxed);
            slot.status.store(region::TOO_SMALL, Ordering::Release);
        }
        Err(FixedFailure::Plugin(failure)) => write_message(
            region,
            index,
            region::FAILED_CALL,
            failure.code,
            failure.panicked,
            &failure.message,
        ),
    }
}

/// Writes a failure with `message` into slot `index`.
fn write_message(
    region: &Region,
    index: usize,
    status: u32,
    code: i32,
    panicked: bool,
    message: &str,
) {
    let slot = region.slot(index);
    let window = region.window();
    let input_len = usize::try_from(slot.input_len.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
    let at = region::output_offset(input_len.min(window)).min(window);
    let len = message.len().min(region::MAX_MESSAGE).min(window - at);
    // SAFETY: `len` bytes from `at` are inside the window, which is this thread's for the call.
    unsafe {
        std::ptr::copy_nonoverlapping(message.as_ptr(), region.window_ptr(index).add(at), len)
    };
    slot.message_len.store(len as u64, Ordering::Relaxed);
    slot.code.store(code as u32, Ordering::Relaxed);
    slot.panicked.store(u32::from(panicked), Ordering::Relaxed);
    slot.status.store(status, Ordering::Release);
}

/// Sends every log record (the plugin's lines and the loader's events) to the host.
fn forward_log() {
    // SAFETY: descriptor 6 is the log pipe's write end the host handed over.
    let pipe = Mutex::new(unsafe { File::from_raw_fd(LOG_FD) });
    log::set_sink(Some(Arc::new(move |record: log::Record| {
        let bytes = log_record::encode(record.level as u8, record.from_plugin, &record.message);
        let mut pipe = pipe
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The host gone: nothing to tell.
        let _ = pipe.write_all(&bytes);
    })));
}

/// Caps this process's address space at what it has now, its serving threads' stacks, and
/// `allowance` bytes more: a plugin that needs more fails to allocate, here.
///
/// glibc gives threads that allocate heaps of their own, reserving 64 MiB of address space for
/// each: under a cap those reservations would count against the allowance though nothing is
/// used in them. So every thread allocates from the one main heap, and the cap counts what is
/// used.
fn limit_memory(allowance: u64, slots: usize) {
    // SAFETY: mallopt only sets an allocator parameter; no thread allocates concurrently yet.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    let stacks = (slots as u64) * (STACK_BYTES as u64 + 2 * page);
    let limit = (pages * page)
        .saturating_add(stacks)
        .saturating_add(allowance);
    let rlimit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: setrlimit reads the struct, which lives for the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &rlimit) } != 0 {
        let e = std::io::Error::last_os_error();
        crate::fail(exit::SETUP, &format!("setrlimit(RLIMIT_AS): {e}"));
    }
}
