//! The protocol of `proxyso-worker`, the proxy's child process, defined once for both sides:
//! the worker (`worker/src/main.rs`) and the host that starts it (`child`, `preflight` and
//! `isolated`).
//!
//! ```text
//! proxyso-worker preflight PARENT_PID   library on descriptor 3
//! proxyso-worker serve PARENT_PID SOURCE  library on 3, region on 5, log pipe on 6
//! ```
//!
//! Either way the worker first arms `PR_SET_PDEATHSIG` (SIGKILL) and checks that its parent is
//! still `PARENT_PID` (if not, the host is gone: it exits with [`exit::ORPHANED`]), and closes
//! every descriptor it was not given.
//!
//! `preflight`: it `dlopen`s `/proc/self/fd/3` with `RTLD_NOW | RTLD_LOCAL`, looks up the
//! plugin descriptor and checks its ABI version. It never calls the plugin's `init`, and it
//! leaves with `_exit`, so no destructor of the plugin runs either. It exits 0 when the library
//! loaded and is a plugin of this ABI version, or with one of the [`exit`] codes and a one-line
//! message on standard error. A library whose constructors crash kills it with that signal.
//!
//! `serve`: it loads the plugin as the proxy does in process (`Plugin::open_snapshot`), with
//! the configuration the host left in the [`region`], answers with the plugin's name, version,
//! flags and methods (or why it failed) in the region, then serves calls through the region's
//! slots, one thread a slot, until the host ends it (SIGKILL) or goes away. Its plugin's log
//! lines, and its own, go to the log pipe as [`log_record`]s.
#![deny(missing_docs)]

use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

/// The first argument: the pre-flight `dlopen` of the library on [`LIBRARY_FD`].
pub const PREFLIGHT: &str = "preflight";

/// The first argument: serve the plugin on [`LIBRARY_FD`] through the region on
/// [`REGION_FD`].
pub const SERVE: &str = "serve";

/// The descriptor on which the worker receives the library.
pub const LIBRARY_FD: i32 = 3;

/// The descriptor on which a serving worker receives its shared region (a sealed memfd).
pub const REGION_FD: i32 = 5;

/// The descriptor on which a serving worker writes its log records (a pipe).
pub const LOG_FD: i32 = 6;

/// The worker's exit codes.
pub mod exit {
    /// The library loaded and is a plugin of this ABI version.
    pub const OK: i32 = 0;
    /// The command line is not one the worker knows.
    pub const USAGE: i32 = 2;
    /// The parent named on the command line is not the worker's parent (any more).
    pub const ORPHANED: i32 = 3;
    /// Descriptor 3 is not open on a regular file.
    pub const NO_LIBRARY: i32 = 4;
    /// The worker could not set itself up (`prctl`).
    pub const SETUP: i32 = 5;
    /// `dlopen` failed; standard error holds `dlerror()`.
    pub const DLOPEN: i32 = 10;
    /// The library has no plugin descriptor symbol, or it is null.
    pub const NO_DESCRIPTOR: i32 = 11;
    /// The descriptor's ABI version is not the worker's.
    pub const ABI_MISMATCH: i32 = 12;
    /// The region on descriptor 5 is not one this worker can serve through.
    pub const BAD_REGION: i32 = 13;
    /// The plugin failed to load or initialise; the region holds why.
    pub const LOAD_FAILED: i32 = 14;
    /// The worker itself panicked (Rust's exit code for a panic in `main`).
    pub const PANICKED: i32 = 101;
}

/// What an exit code of the worker means, in words; `None` for a code it never uses.
pub fn describe_exit(code: i32) -> Option<&'static str> {
    Some(match code {
        exit::OK => "the library loaded",
        exit::USAGE => "the worker did not understand its command line",
        exit::ORPHANED => "the worker's parent was not the process that started it",
        exit::NO_LIBRARY => "the worker received no library on descriptor 3",
        exit::SETUP => "the worker could not set itself up",
        exit::DLOPEN => "dlopen failed",
        exit::NO_DESCRIPTOR => "no plugin descriptor",
        exit::ABI_MISMATCH => "ABI version mismatch",
        exit::BAD_REGION => "the worker received no usable shared region",
        exit::LOAD_FAILED => "the plugin failed to load",
        exit::PANICKED => "the worker panicked",
        _ => return None,
    })
}

/// The arguments (after the program name) of a pre-flight run for parent `parent_pid`.
pub fn preflight_args(parent_pid: u32) -> [String; 2] {
    [PREFLIGHT.to_owned(), parent_pid.to_string()]
}

/// The arguments (after the program name) of a serving worker for parent `parent_pid`;
/// `source` is the path the user gave, which messages name.
pub fn serve_args(parent_pid: u32, source: &str) -> [String; 3] {
    [SERVE.to_owned(), parent_pid.to_string(), source.to_owned()]
}

/// The memory both processes map: a header, then per slot a header and a data window.
///
/// The host creates it (a memfd, sealed against shrinking and growing, so the worker can never
/// make the host's mapping fault), writes the header and the configuration, and starts the
/// worker. Everything the worker writes is read by the host as untrusted: every length is
/// checked against the window before it is used.
///
/// A call in slot `i`: the host writes the input at the start of the slot's window, the method
/// and lengths in its header, then bumps `request` (and wakes the worker's thread if it sleeps);
/// the worker writes the output (or the error message) at
/// [`output_offset`](region::output_offset) of the window, the result in the header, then sets
/// `reply` to `request` (and wakes the host's thread if it sleeps). Each side spins a little before it sleeps on the futex word it waits for, and
/// announces its sleep in a `*_waiting` word the other side reads after publishing, so that a
/// wake-up is a system call only when someone sleeps.
pub mod region {
    use super::*;

    /// The first 8 bytes of a region, "proxyso1".
    pub const MAGIC: u64 = u64::from_le_bytes(*b"proxyso1");
    /// The layout's version: a worker of another layout refuses the region.
    pub const LAYOUT: u32 = 1;
    /// The header's size: one page.
    pub const HEADER_BYTES: usize = 4096;
    /// Each slot's header: two cache lines, one a side writes.
    pub const SLOT_HEADER_BYTES: usize = 128;
    /// The longest error message a worker writes.
    pub const MAX_MESSAGE: usize = 64 * 1024;

    /// `Header::state` while the worker loads the plugin.
    pub const STARTING: u32 = 0;
    /// `Header::state` once the plugin is initialised and the slots are served; the answer
    /// ([`super::info`]) is in slot 0's window.
    pub const READY: u32 = 1;
    /// `Header::state` when the load failed; the message is in slot 0's window.
    pub const FAILED: u32 = 2;
    /// `Header::state` once the worker set itself up and runs plugin code (`dlopen`, `init`):
    /// from here an exit code is the plugin's, not one of the worker's own.
    pub const LOADING: u32 = 3;

    /// `Slot::status`: the method succeeded; the output is `output_len` bytes.
    pub const OK: u32 = 0;
    /// `Slot::status`: the method failed: `code`, `panicked`, and a message.
    pub const FAILED_CALL: u32 = 1;
    /// `Slot::status`: the method asked for `output_len` bytes of output, more than it may
    /// have (the caller's capacity, or the window).
    pub const TOO_SMALL: u32 = 2;
    /// `Slot::status`: the worker refused the request (for example an unknown method index);
    /// the message says why.
    pub const REFUSED: u32 = 3;

    /// The region's first page.
    #[repr(C)]
    #[derive(Debug)]
    pub struct Header {
        /// [`MAGIC`].
        pub magic: u64,
        /// [`LAYOUT`].
        pub layout: u32,
        /// How many slots follow.
        pub slots: u32,
        /// Each slot's data window, in bytes (a multiple of the page size).
        pub window: u64,
        /// The configuration's length; the bytes are in slot 0's window until `state` leaves
        /// [`STARTING`].
        pub config_len: u64,
        /// The address-space limit the worker sets on itself once it has mapped the region,
        /// in bytes beyond what it uses at that point; 0 for none.
        pub memory_limit: u64,
        /// [`STARTING`], [`LOADING`], [`READY`] or [`FAILED`]; a futex word the host waits on.
        pub state: AtomicU32,
        /// The length of the answer ([`READY`]) or message ([`FAILED`]) in slot 0's window.
        pub answer_len: AtomicU64,
    }

    /// One slot's header.
    #[repr(C, align(64))]
    #[derive(Debug)]
    pub struct Slot {
        // The host's line.
        /// Bumped by the host for each call; a futex word the worker's thread waits on.
        pub request: AtomicU32,
        /// Set by the worker's thread before it sleeps on `request`.
        pub worker_waiting: AtomicU32,
        /// The method's index in the plugin's table.
        pub method: AtomicU32,
        /// Nonzero when the output may not exceed `output_limit` (a caller-owned buffer).
        pub fixed: AtomicU32,
        /// The input's length, at the start of the window.
        pub input_len: AtomicU64,
        /// For a fixed call, the caller's capacity.
        pub output_limit: AtomicU64,
        _host_pad: [u8; 32],
        // The worker's line.
        /// Set to `request` by the worker when the call is done; a futex word the host waits on.
        pub reply: AtomicU32,
        /// Set by the host's thread before it sleeps on `reply`.
        pub host_waiting: AtomicU32,
        /// [`OK`], [`FAILED_CALL`], [`TOO_SMALL`] or [`REFUSED`].
        pub status: AtomicU32,
        /// The plugin's error code.
        pub code: AtomicU32,
        /// Nonzero when the plugin reported a caught panic or exception.
        pub panicked: AtomicU32,
        _worker_pad4: u32,
        /// The output's length (or the size asked for, for [`TOO_SMALL`]).
        pub output_len: AtomicU64,
        /// The error message's length, at [`output_offset`].
        pub message_len: AtomicU64,
        _worker_pad: [u8; 24],
    }

    const _: () = assert!(std::mem::size_of::<Header>() <= HEADER_BYTES);
    const _: () = assert!(std::mem::size_of::<Slot>() == SLOT_HEADER_BYTES);

    /// Where the slot headers end and the first window starts: page-aligned.
    pub fn windows_offset(slots: usize) -> usize {
        (HEADER_BYTES + slots * SLOT_HEADER_BYTES).next_multiple_of(4096)
    }

    /// The whole region's size; `None` if it overflows.
    pub fn size(slots: usize, window: usize) -> Option<usize> {
        slots
            .checked_mul(window)?
            .checked_add(windows_offset(slots))
    }

    /// Where in a window the output (or an error message) starts: after the input, aligned.
    pub fn output_offset(input_len: usize) -> usize {
        input_len.next_multiple_of(64)
    }
}

/// The worker's answer once the plugin is initialised: its name, version, flags and methods.
pub mod info {
    /// What the worker reports of the plugin it serves.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Info {
        /// The plugin's name.
        pub name: String,
        /// The plugin's version string.
        pub version: String,
        /// The descriptor's flags.
        pub flags: u32,
        /// The method names; the first is the default.
        pub methods: Vec<String>,
    }

    /// The answer as bytes: flags, then each string as a little-endian u32 length and UTF-8.
    pub fn encode(info: &Info) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&info.flags.to_le_bytes());
        let count = u32::try_from(info.methods.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        for text in [&info.name, &info.version].into_iter().chain(&info.methods) {
            let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out
    }

    /// Reads an answer back; `None` when the bytes are not one (the worker is not trusted).
    pub fn decode(mut bytes: &[u8]) -> Option<Info> {
        fn u32_of(bytes: &mut &[u8]) -> Option<u32> {
            let (head, rest) = bytes.split_first_chunk::<4>()?;
            *bytes = rest;
            Some(u32::from_le_bytes(*head))
        }
        fn text_of(bytes: &mut &[u8]) -> Option<String> {
            let len = usize::try_from(u32_of(bytes)?).ok()?;
            if len > bytes.len() {
                return None;
            }
            let (head, rest) = bytes.split_at(len);
            *bytes = rest;
            String::from_utf8(head.to_vec()).ok()
        }
        let flags = u32_of(&mut bytes)?;
        let count = usize::try_from(u32_of(&mut bytes)?).ok()?;
        // Each method takes at least its 4-byte length: a count beyond that is garbage.
        if count == 0 || count > bytes.len() / 4 {
            return None;
        }
        let name = text_of(&mut bytes)?;
        let version = text_of(&mut bytes)?;
        let methods = (0..count)
            .map(|_| text_of(&mut bytes))
            .collect::<Option<Vec<_>>>()?;
        bytes.is_empty().then_some(Info {
            name,
            version,
            flags,
            methods,
        })
    }
}

/// A log record on the log pipe: level (1 byte), from the plugin (1 byte), length (u32, little
/// endian), then that many bytes of UTF-8 text.
pub mod log_record {
    /// The header's size.
    pub const HEADER: usize = 6;
    /// The longest text a record carries; a longer one is cut.
    pub const MAX_TEXT: usize = 16 * 1024;

    /// One record as bytes.
    pub fn encode(level: u8, from_plugin: bool, text: &str) -> Vec<u8> {
        let mut end = text.len().min(MAX_TEXT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let text = &text.as_bytes()[..end];
        let mut out = Vec::with_capacity(HEADER + text.len());
        out.push(level);
        out.push(u8::from(from_plugin));
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text);
        out
    }

    /// The first whole record in `bytes`: (level, from plugin, text, bytes used); `None` while
    /// it is incomplete. A length beyond [`MAX_TEXT`] is read as [`MAX_TEXT`] bytes of text
    /// and a fresh record after (the worker is not trusted).
    pub fn decode(bytes: &[u8]) -> Option<(u8, bool, String, usize)> {
        let header = bytes.get(..HEADER)?;
        let len = u32::from_le_bytes([header[2], header[3], header[4], header[5]]) as usize;
        let len = len.min(MAX_TEXT);
        let text = bytes.get(HEADER..HEADER + len)?;
        Some((
            header[0],
            header[1] != 0,
            String::from_utf8_lossy(text).into_owned(),
            HEADER + len,
        ))
    }
}

/// How long each side spins for the other before it sleeps: a little longer than the wait
/// usually is, when that is short enough to be worth a core, so that back-to-back calls, and
/// calls of up to a millisecond, cost no wake-up (on an idle machine a wake-up costs tens of
/// microseconds); otherwise briefly. Spinning yields the core now and then.
pub mod spin {
    use std::time::Duration;

    /// The longest wait worth spinning for.
    pub const MAX: Duration = Duration::from_millis(1);

    /// The spin for a wait that typically takes `typical_nanos`, at least `least`.
    pub fn budget(typical_nanos: u64, least: Duration) -> Duration {
        let typical = Duration::from_nanos(typical_nanos);
        if typical > MAX {
            return least;
        }
        (typical + typical / 4).clamp(least, MAX)
    }

    /// The typical wait after one more of `observed_nanos`: a moving average.
    pub fn learn(typical_nanos: u64, observed_nanos: u64) -> u64 {
        (typical_nanos.saturating_mul(7) / 8).saturating_add(observed_nanos / 8)
    }
}

/// Futex waits and wakes on a word both processes map (not `FUTEX_PRIVATE_FLAG`).
pub mod futex {
    use super::*;

    /// Sleeps while `word` holds `expected`, at most `timeout` (`None`: until woken). Returns
    /// at once if it holds something else; spurious returns happen: re-check after.
    pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
        let spec = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        let spec_ptr = spec
            .as_ref()
            .map_or(std::ptr::null(), |s| s as *const libc::timespec);
        // SAFETY: FUTEX_WAIT reads the aligned u32 behind `word`, which lives for the call,
        // and the timespec, if any, which lives for the call too.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                spec_ptr,
            );
        }
    }

    /// Wakes every thread sleeping on `word`, in either process.
    pub fn wake(word: &AtomicU32) {
        // SAFETY: FUTEX_WAKE only uses the address of `word` as a key.
        unsafe {
            libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_round_trips_and_garbage_is_refused() {
        let answer = info::Info {
            name: "model".into(),
            version: "1.2.3".into(),
            flags: 1,
            methods: vec!["infer".into(), "warm".into()],
        };
        let bytes = info::encode(&answer);
        assert_eq!(info::decode(&bytes), Some(answer));
        for cut in 0..bytes.len() {
            assert_eq!(info::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(info::decode(&longer), None);
        let mut huge = bytes;
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(info::decode(&huge), None);
    }

    #[test]
    fn log_records_round_trip_and_are_bounded() {
        let bytes = log_record::encode(2, true, "hello");
        assert_eq!(
            log_record::decode(&bytes),
            Some((2, true, "hello".to_owned(), bytes.len()))
        );
        assert_eq!(log_record::decode(&bytes[..bytes.len() - 1]), None);
        let long = "é".repeat(log_record::MAX_TEXT);
        let bytes = log_record::encode(1, false, &long);
        let (_, _, text, used) = log_record::decode(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert!(text.len() <= log_record::MAX_TEXT && long.starts_with(&text));
    }

    #[test]
    fn spinning_follows_short_waits_and_gives_up_on_long_ones() {
        let least = Duration::from_micros(20);
        assert_eq!(spin::budget(0, least), least);
        assert_eq!(spin::budget(400_000, least), Duration::from_micros(500));
        assert_eq!(spin::budget(900_000, least), spin::MAX);
        assert_eq!(spin::budget(50_000_000, least), least);
        let mut typical = 0;
        for _ in 0..64 {
            typical = spin::learn(typical, 300_000);
        }
        assert!((290_000..=300_000).contains(&typical), "{typical}");
    }

    #[test]
    fn the_region_layout_is_page_aligned() {
        assert_eq!(region::windows_offset(1) % 4096, 0);
        assert_eq!(region::windows_offset(31), 8192);
        assert_eq!(region::size(2, 4096), Some(4096 + 4096 + 8192));
        assert_eq!(region::size(usize::MAX, 4096), None);
        assert_eq!(region::output_offset(0), 0);
        assert_eq!(region::output_offset(1), 64);
    }
}
