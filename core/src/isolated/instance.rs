//! One worker process serving one version, seen from the host: its start, its calls through
//! the shared region, and its end, watched by a monitor thread.

use std::fs::File;
use std::hint::spin_loop;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::child::{End, Running, Tail};
use crate::host::FixedOutput;
use crate::log;
use crate::plugin::CallFailure;
use crate::preflight::Worker;
use crate::protocol::{self, futex, info, log_record, region, spin};

use super::region::Region;
use super::spawner;

/// How long a caller spins for the answer at least before it sleeps on the futex (longer for
/// calls that typically answer within a millisecond: `protocol::spin`).
const HOST_SPIN: Duration = Duration::from_micros(20);
/// The longest sleep between checks of the worker's life and the deadline.
const SLICE: Duration = Duration::from_millis(50);
/// What a slot's window keeps resident after a large call; the rest goes back to the kernel.
const RESIDENT: usize = 4 << 20;
/// The method index that asks the worker to run `destroy` and exit.
pub const SHUTDOWN: u32 = u32::MAX;

/// What starting a worker needs; a restart uses the same.
#[derive(Debug)]
pub struct Launch {
    /// The executable.
    pub worker: Worker,
    /// The snapshot's descriptor, reopened read-only for each start.
    pub library: Arc<File>,
    /// The path the user gave, for messages.
    pub source: String,
    /// Handed to `init`.
    pub config: Box<[u8]>,
    /// Slots (and worker threads).
    pub slots: usize,
    /// Each slot's window.
    pub window: usize,
    /// The worker's address-space allowance beyond its start, 0 for none.
    pub memory_limit: u64,
}

/// How a worker ended.
#[derive(Debug, Clone)]
pub struct Death {
    /// Its process id.
    pub pid: i32,
    /// How it ended.
    pub end: End,
    /// The end of what it wrote to standard output and error.
    pub output: String,
    /// Why the host killed it, if it did (a call's timeout, say).
    pub killed_for: Option<String>,
    /// What else a message about it says (restarts held back, say).
    pub note: Option<String>,
    /// True when it ended before its plugin was initialised.
    pub during_start: bool,
    /// True when it ended before it ran plugin code: its exit code is then one of the worker's
    /// own (`protocol::exit`), not the plugin's.
    pub before_plugin_code: bool,
    /// True when the host ended it on purpose (retired, or its start failed): not a crash.
    pub expected: bool,
}

impl Death {
    /// The signal that ended it, 0 if it exited.
    pub fn signal(&self) -> i32 {
        match self.end {
            End::Signaled { signal, .. } => signal,
            End::TimedOut(_) => libc::SIGKILL,
            End::Exited(_) => 0,
        }
    }

    /// Its exit status, -1 if a signal ended it (or no process ran).
    pub fn exit_status(&self) -> i32 {
        match self.end {
            End::Exited(code) => code,
            _ => -1,
        }
    }

    /// "(pid N) was killed by SIGSEGV (signal 11); its output ended with: ..." and the like.
    pub fn describe(&self) -> String {
        let mut text = match &self.killed_for {
            _ if self.pid == 0 => "is not running".to_owned(),
            Some(why) => format!("(pid {}) was killed by proxyso: {why}", self.pid),
            None => format!("(pid {}) {}", self.pid, self.end),
        };
        if let (End::Exited(code), true, None) =
            (self.end, self.before_plugin_code, &self.killed_for)
        {
            if let Some(meaning) = protocol::describe_exit(code).filter(|_| code != 0) {
                text.push_str(&format!(" ({meaning})"));
            }
        }
        if let Some(note) = &self.note {
            text.push_str("; ");
            text.push_str(note);
        }
        if !self.output.is_empty() {
            text.push_str("; its output ended with: ");
            text.push_str(&self.output);
        }
        text
    }
}

/// How a call through a worker failed.
#[derive(Debug, Clone)]
pub enum Fail {
    /// The plugin reported a failure.
    Plugin(CallFailure),
    /// A fixed output buffer was too small: the plugin asked for this many bytes.
    TooSmall {
        /// The size asked for.
        required: usize,
    },
    /// The call could not be made through the region (too large, say).
    Refused(String),
    /// The worker died with the call in it (or before it).
    Dead(Arc<Death>),
    /// The call ran past its deadline; the worker was killed.
    TimedOut {
        /// The timeout.
        after: Duration,
        /// The worker's pid.
        pid: i32,
    },
}

/// Where a call's input comes from.
pub enum Input<'a> {
    /// Bytes the caller holds.
    Bytes(&'a [u8]),
    /// `len` bytes that `fill` writes straight into the slot (from a Java array, say).
    Fill(usize, &'a mut dyn FnMut(&mut [u8])),
}

impl Input<'_> {
    /// The input's length.
    pub fn len(&self) -> usize {
        match self {
            Input::Bytes(bytes) => bytes.len(),
            Input::Fill(len, _) => *len,
        }
    }

    /// True for an empty input.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a call's output goes.
pub enum Out<'a, 'b> {
    /// A buffer that grows to fit.
    Grow(&'a mut Vec<u8>),
    /// A caller-owned buffer that cannot.
    Fixed(&'a mut FixedOutput<'b>),
    /// A function that takes it straight out of the slot (into a Java array, say).
    Take(&'a mut dyn FnMut(&[u8])),
}

/// A running worker.
pub struct Instance {
    pid: i32,
    region: Region,
    /// Free slots.
    free: Mutex<Vec<usize>>,
    /// Signalled when a slot is freed, and when the worker dies.
    freed: Condvar,
    /// The host's own count of requests per slot (the region's copy is not trusted).
    requests: Box<[AtomicU32]>,
    /// How long a call typically takes to answer, nanoseconds: how long callers spin.
    typical: AtomicU64,
    death: OnceLock<Arc<Death>>,
    dead: AtomicBool,
    /// Set once its plugin answered the start.
    serving: AtomicBool,
    /// Set before the host ends it on purpose.
    expected: AtomicBool,
    /// Set when the host kills it.
    doomed: AtomicBool,
    killed_for: Mutex<Option<String>>,
    /// Held while the monitor reaps it, so that a kill never reaches a reused pid.
    reaping: Mutex<bool>,
    running: Running,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("pid", &self.pid)
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

/// What the monitor tells whoever started the worker when it ends.
pub type OnDeath = Arc<dyn Fn(&Death) + Send + Sync>;

/// Where a worker's log records go: its key, and the generation it serves now.
#[derive(Debug, Clone)]
pub struct LogTag {
    /// The key.
    pub key: Arc<str>,
    /// The generation (set again when the version goes into service).
    pub generation: Arc<AtomicU64>,
}

impl Instance {
    /// Starts a worker for `launch` and waits until its plugin is initialised: the plugin's
    /// answer, or why it failed (the worker is gone then).
    pub fn start(
        launch: &Launch,
        tag: LogTag,
        on_death: OnDeath,
    ) -> Result<(Arc<Instance>, info::Info), String> {
        let region = Region::create(launch.slots, launch.window, launch.memory_limit)
            .map_err(|e| format!("cannot create the shared region: {e}"))?;
        if launch.config.len() > region.window() {
            return Err(format!(
                "a configuration of {} bytes is more than an isolated plugin takes ({} bytes)",
                launch.config.len(),
                region.window()
            ));
        }
        // SAFETY: the window holds `window` bytes, more than the configuration; no worker runs
        // yet, so nothing else touches it.
        unsafe {
            std::ptr::copy_nonoverlapping(
                launch.config.as_ptr(),
                region.window_ptr(0),
                launch.config.len(),
            );
        }
        // SAFETY: the header is ours until the worker starts; a plain field written once.
        unsafe {
            let header = std::ptr::from_ref(region.header()).cast_mut();
            (*header).config_len = launch.config.len() as u64;
        }
        let (log_read, log_write) = pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
        // A read-only descriptor of the very inode that was written and hashed.
        let library = File::open(crate::snapshot::fd_path(&launch.library))
            .map_err(|e| format!("cannot reopen the snapshot: {e}"))?;
        let args = protocol::serve_args(std::process::id(), &launch.source);
        let running = spawner::spawn(
            launch.worker.file(),
            launch.worker.path(),
            &args,
            &[
                (library.as_fd(), protocol::LIBRARY_FD),
                (region.file().as_fd(), protocol::REGION_FD),
                (log_write.as_fd(), protocol::LOG_FD),
            ],
        )
        .map_err(|e| {
            format!(
                "cannot start the worker {}: {e}",
                launch.worker.path().display()
            )
        })?;
        drop(log_write);
        drop(library);
        let slots = region.slots();
        let instance = Arc::new(Instance {
            pid: running.pid,
            region,
            free: Mutex::new((0..slots).rev().collect()),
            freed: Condvar::new(),
            requests: (0..slots).map(|_| AtomicU32::new(0)).collect(),
            typical: AtomicU64::new(0),
            death: OnceLock::new(),
            dead: AtomicBool::new(false),
            serving: AtomicBool::new(false),
            expected: AtomicBool::new(false),
            doomed: AtomicBool::new(false),
            killed_for: Mutex::new(None),
            reaping: Mutex::new(false),
            running,
        });
        let watched = Arc::clone(&instance);
        let monitor = std::thread::Builder::new()
            .name(format!("proxyso-worker-{}", instance.pid))
            .spawn(move || watched.monitor(log_read, &tag, &on_death));
        if let Err(e) = monitor {
            instance.end_on_purpose(Some("its monitor thread could not start".into()));
            // Reaped here, since no monitor will.
            let _ = instance.running.wait_end();
            return Err(format!("cannot start a thread to watch the worker: {e}"));
        }
        match instance.await_start() {
            Ok(answer) => {
                instance.serving.store(true, Ordering::SeqCst);
                Ok((instance, answer))
            }
            Err(e) => {
                instance.end_on_purpose(None);
                Err(e)
            }
        }
    }

    /// Waits for the worker's answer to the start (as long as `init` takes: a model may take
    /// minutes to load), or its end.
    fn await_start(&self) -> Result<info::Info, String> {
        let header = self.region.header();
        loop {
            let state = header.state.load(Ordering::Acquire);
            if state == region::READY || state == region::FAILED {
                let len = header.answer_len.load(Ordering::Acquire);
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                if len > self.region.window() {
                    return Err(format!("the worker answered with a length of {len}"));
                }
                // SAFETY: `len` bytes of window 0, checked above; the worker wrote them before
                // it published the state (Release/Acquire).
                let bytes = unsafe { std::slice::from_raw_parts(self.region.window_ptr(0), len) };
                return match state {
                    region::READY => info::decode(bytes)
                        .ok_or_else(|| "the worker's answer is not one of this protocol".into()),
                    _ => Err(text_of(bytes)),
                };
            }
            if let Some(death) = self.death.get() {
                return Err(format!(
                    "the worker process {} while loading the library",
                    death.describe()
                ));
            }
            futex::wait(&header.state, state, Some(SLICE));
        }
    }

    /// Its process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// How it ended, once it has.
    pub fn death(&self) -> Option<&Arc<Death>> {
        self.death.get()
    }

    /// True once it has ended.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// True once it has ended or is being killed: no new call goes to it.
    pub fn is_finished(&self) -> bool {
        self.is_dead() || self.doomed.load(Ordering::Acquire)
    }

    /// Calls method `method` with `input`, its output into `out`; a call running past
    /// `timeout` kills the worker.
    pub fn call(
        &self,
        method: u32,
        name: &str,
        input: Input<'_>,
        out: Out<'_, '_>,
        timeout: Option<Duration>,
    ) -> Result<(), Fail> {
        let window = self.region.window();
        let output_at = region::output_offset(input.len());
        if output_at >= window {
            return Err(Fail::Refused(format!(
                "an input of {} bytes is more than an isolated call takes ({} bytes)",
                input.len(),
                window - 64
            )));
        }
        let index = self.take_slot()?;
        // From here: waiting for a free slot is not the call's time.
        let deadline = timeout.map(|t| Instant::now() + t);
        let slot = self.region.slot(index);
        let data = self.region.window_ptr(index);
        let input_len = input.len();
        match input {
            // SAFETY: the slot is ours until we give it back; `input` fits in its window
            // (checked above), and the worker reads the window only after `request` moves.
            Input::Bytes(bytes) => unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len())
            },
            Input::Fill(len, fill) => {
                // SAFETY: as above; the first `len` bytes of the window are ours to write.
                fill(unsafe { std::slice::from_raw_parts_mut(data, len) })
            }
        }
        let limit = match &out {
            Out::Grow(_) | Out::Take(_) => window - output_at,
            Out::Fixed(fixed) => fixed.capacity().min(window - output_at),
        };
        slot.method.store(method, Ordering::Relaxed);
        slot.fixed
            .store(u32::from(matches!(out, Out::Fixed(_))), Ordering::Relaxed);
        slot.input_len.store(input_len as u64, Ordering::Relaxed);
        slot.output_limit.store(limit as u64, Ordering::Relaxed);
        let request = self.requests[index]
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1);
        slot.request.store(request, Ordering::SeqCst);
        if slot.worker_waiting.swap(0, Ordering::SeqCst) != 0 {
            futex::wake(&slot.request);
        }
        // On failure the slot is not given back: the worker is gone (or being killed), and
        // its thread may still write into the window.
        self.await_reply(index, name, request, deadline, timeout)?;
        let answer = self.read_answer(index, output_at, limit, out);
        // What the call touched: its input, and its output (or message) after it.
        let output_len = usize::try_from(slot.output_len.load(Ordering::Relaxed))
            .unwrap_or(usize::MAX)
            .max(usize::try_from(slot.message_len.load(Ordering::Relaxed)).unwrap_or(usize::MAX));
        if output_at.saturating_add(output_len) > RESIDENT {
            self.region.release(index, RESIDENT);
        }
        self.give_slot(index);
        answer
    }

    /// Reads a finished call's result out of slot `index`.
    fn read_answer(
        &self,
        index: usize,
        output_at: usize,
        limit: usize,
        out: Out<'_, '_>,
    ) -> Result<(), Fail> {
        let slot = self.region.slot(index);
        let room = self.region.window() - output_at;
        // SAFETY: the output area of the slot's window, `room` bytes, is inside the mapping;
        // the worker is done with it (it published `reply`).
        let area = unsafe { self.region.window_ptr(index).add(output_at) };
        let bytes = |len: usize| {
            // SAFETY: `len` is at most `room` (every caller checks), so inside the area.
            unsafe { std::slice::from_raw_parts(area, len) }
        };
        let status = slot.status.load(Ordering::Acquire);
        let length = usize::try_from(slot.output_len.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        match status {
            region::OK if length <= limit => {
                match out {
                    Out::Grow(vec) => {
                        vec.clear();
                        vec.extend_from_slice(bytes(length));
                    }
                    Out::Fixed(fixed) => {
                        if let Err(required) = fixed.fill(bytes(length)) {
                            return Err(Fail::TooSmall { required });
                        }
                    }
                    Out::Take(take) => take(bytes(length)),
                }
                Ok(())
            }
            region::OK => Err(Fail::Refused(format!(
                "the worker reported {length} bytes of output in a buffer of {limit}"
            ))),
            region::TOO_SMALL => match out {
                Out::Fixed(_) => Err(Fail::TooSmall { required: length }),
                Out::Grow(_) | Out::Take(_) => Err(Fail::Refused(format!(
                    "the method asked for {length} bytes of output, more than an isolated call \
                     returns ({limit} bytes)"
                ))),
            },
            region::FAILED_CALL | region::REFUSED => {
                let message_len = usize::try_from(slot.message_len.load(Ordering::Relaxed))
                    .unwrap_or(usize::MAX)
                    .min(room)
                    .min(region::MAX_MESSAGE);
                let message = text_of(bytes(message_len));
                if status == region::REFUSED {
                    return Err(Fail::Refused(message));
                }
                Err(Fail::Plugin(CallFailure {
                    code: slot.code.load(Ordering::Relaxed) as i32,
                    message,
                    panicked: slot.panicked.load(Ordering::Relaxed) != 0,
                }))
            }
            other => Err(Fail::Refused(format!(
                "the worker answered with an unknown status {other}"
            ))),
        }
    }

    /// Waits until slot `index` answers `request`, the worker dies, or the deadline passes
    /// (then the worker is killed).
    fn await_reply(
        &self,
        index: usize,
        name: &str,
        request: u32,
        deadline: Option<Instant>,
        timeout: Option<Duration>,
    ) -> Result<(), Fail> {
        let slot = self.region.slot(index);
        let started = Instant::now();
        let spin_until = started + spin::budget(self.typical.load(Ordering::Relaxed), HOST_SPIN);
        let mut spins = 0u32;
        let answered = || {
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let typical = self.typical.load(Ordering::Relaxed);
            self.typical
                .store(spin::learn(typical, nanos), Ordering::Relaxed);
            Ok(())
        };
        loop {
            if slot.reply.load(Ordering::Acquire) == request {
                return answered();
            }
            spins = spins.wrapping_add(1);
            if spins % 64 == 0 {
                if Instant::now() >= spin_until {
                    break;
                }
                // On a machine with no core to spare, the worker may need this one.
                std::thread::yield_now();
            }
            spin_loop();
        }
        loop {
            slot.host_waiting.store(1, Ordering::SeqCst);
            let seen = slot.reply.load(Ordering::SeqCst);
            if seen == request {
                return answered();
            }
            if let Some(death) = self.death.get() {
                return Err(Fail::Dead(Arc::clone(death)));
            }
            let mut slice = SLICE;
            if let Some(deadline) = deadline {
                let now = Instant::now();
                if now >= deadline {
                    let after = timeout.unwrap_or_default();
                    self.kill(format!(
                        "a call to method '{}' ran longer than its timeout of {} ms",
                        crate::text::shown(name),
                        after.as_millis()
                    ));
                    return Err(Fail::TimedOut {
                        after,
                        pid: self.pid,
                    });
                }
                slice = slice.min(deadline - now);
            }
            futex::wait(&slot.reply, seen, Some(slice));
        }
    }

    fn take_slot(&self) -> Result<usize, Fail> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(death) = self.death.get() {
                return Err(Fail::Dead(Arc::clone(death)));
            }
            if let Some(index) = free.pop() {
                return Ok(index);
            }
            free = self
                .freed
                .wait_timeout(free, SLICE)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn give_slot(&self, index: usize) {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(index);
        self.freed.notify_one();
    }

    /// Kills the worker (SIGKILL, its group) for `why`, unless it is already reaped.
    pub fn kill(&self, why: String) {
        let reaped = self.reaping.lock().unwrap_or_else(PoisonError::into_inner);
        if *reaped {
            return;
        }
        self.killed_for
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(why);
        self.doomed.store(true, Ordering::Release);
        self.running.kill();
    }

    /// Ends the worker on purpose: not a crash.
    fn end_on_purpose(&self, why: Option<String>) {
        self.expected.store(true, Ordering::SeqCst);
        self.kill(why.unwrap_or_else(|| "its version was retired".into()));
    }

    /// Asks the worker to run the plugin's `destroy` and exit, once every call returned;
    /// kills it if it has not within `grace`. Waits for its end.
    pub fn shut_down(&self, grace: Duration) {
        self.expected.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + grace;
        if !self.is_dead() {
            // Every call returned (the version is retired), so a slot is free.
            if let Ok(index) = self.take_slot() {
                let slot = self.region.slot(index);
                slot.method.store(SHUTDOWN, Ordering::Relaxed);
                slot.input_len.store(0, Ordering::Relaxed);
                let request = self.requests[index]
                    .fetch_add(1, Ordering::Relaxed)
                    .wrapping_add(1);
                slot.request.store(request, Ordering::SeqCst);
                if slot.worker_waiting.swap(0, Ordering::SeqCst) != 0 {
                    futex::wake(&slot.request);
                }
            }
        }
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while !self.is_dead() {
            let now = Instant::now();
            if now >= deadline {
                drop(free);
                self.kill(format!(
                    "its version was retired and destroy did not return within {} ms",
                    grace.as_millis()
                ));
                free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
                while !self.is_dead() {
                    free = self
                        .freed
                        .wait_timeout(free, SLICE)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                break;
            }
            free = self
                .freed
                .wait_timeout(free, SLICE.min(deadline - now))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The monitor thread: drains the worker's output and log records until it ends, then
    /// records its death and wakes every waiter.
    fn monitor(self: Arc<Self>, log_read: OwnedFd, tag: &LogTag, on_death: &OnDeath) {
        let mut tail = Tail::default();
        let mut records = Vec::new();
        let mut output_open = true;
        let mut log_open = true;
        // Without a pidfd the end is polled for, and reaped when found.
        let mut polled_end = None;
        loop {
            let mut fds = Vec::with_capacity(3);
            if let Some(pidfd) = &self.running.pidfd {
                fds.push(pollfd(pidfd.as_raw_fd()));
            }
            if output_open {
                fds.push(pollfd(self.running.output.as_raw_fd()));
            }
            if log_open {
                fds.push(pollfd(log_read.as_raw_fd()));
            }
            // Without a pidfd, the end is checked every slice.
            let millis = if self.running.pidfd.is_some() { -1 } else { 50 };
            // SAFETY: `fds` holds `fds.len()` initialised entries.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
            if ready < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break;
            }
            if output_open {
                output_open = tail.drain(&self.running.output);
            }
            if log_open {
                log_open = drain_log(&log_read, &mut records, tag);
            }
            let ended = match &self.running.pidfd {
                Some(_) => fds[0].revents != 0,
                None => {
                    let mut reaped = self.reaping.lock().unwrap_or_else(PoisonError::into_inner);
                    match self.running.try_end() {
                        Ok(None) => false,
                        found => {
                            *reaped = true;
                            polled_end = found.ok().flatten();
                            true
                        }
                    }
                }
            };
            if ended {
                break;
            }
        }
        let end = {
            let mut reaped = self.reaping.lock().unwrap_or_else(PoisonError::into_inner);
            let end = match polled_end {
                Some(end) => Ok(end),
                None if *reaped => Err(io::Error::other("already reaped")),
                // With a pidfd the end is known but not reaped yet.
                None => self.running.wait_end(),
            };
            *reaped = true;
            // An end that cannot be learned is taken for a kill.
            end.unwrap_or(End::Signaled {
                signal: libc::SIGKILL,
                core_dumped: false,
            })
        };
        // What it wrote last, up to its end.
        tail.drain(&self.running.output);
        drain_log(&log_read, &mut records, tag);
        let death = Arc::new(Death {
            pid: self.pid,
            end,
            output: tail.text(),
            killed_for: self
                .killed_for
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            note: None,
            during_start: !self.serving.load(Ordering::SeqCst),
            before_plugin_code: self.region.header().state.load(Ordering::Acquire)
                == region::STARTING,
            expected: self.expected.load(Ordering::SeqCst),
        });
        // Counted (toward the backoff too) before any caller can see it and restart.
        on_death(&death);
        let _ = self.death.set(Arc::clone(&death));
        self.dead.store(true, Ordering::Release);
        // Every waiter re-checks within a slice anyway; these make it at once.
        futex::wake(&self.region.header().state);
        for index in 0..self.region.slots() {
            futex::wake(&self.region.slot(index).reply);
        }
        drop(self.free.lock().unwrap_or_else(PoisonError::into_inner));
        self.freed.notify_all();
    }
}

/// Text from memory the worker may still be writing: copied first, then checked (checking in
/// place and copying after could copy bytes that changed since, and make a `String` that is not
/// UTF-8).
fn text_of(shared: &[u8]) -> String {
    match String::from_utf8(shared.to_vec()) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Reads the log records the pipe holds and emits the whole ones; false at its end.
fn drain_log(fd: &OwnedFd, pending: &mut Vec<u8>, tag: &LogTag) -> bool {
    let mut buf = [0u8; 8192];
    // At most 256 KiB a turn: a worker that writes without end cannot keep the monitor here.
    let mut reads = 0;
    let open = loop {
        reads += 1;
        if reads > 32 {
            break true;
        }
        // SAFETY: reads at most `buf.len()` bytes into `buf` from an open descriptor.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match n {
            0 => break false,
            n if n > 0 => pending.extend_from_slice(&buf[..n as usize]),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break e.kind() == io::ErrorKind::WouldBlock;
            }
        }
    };
    let mut used = 0;
    while let Some((level, from_plugin, message, n)) = log_record::decode(&pending[used..]) {
        used += n;
        log::emit(log::Record {
            level: log::Level::from_abi(i32::from(level)),
            from_plugin,
            key: Some(Arc::clone(&tag.key)),
            generation: tag.generation.load(Ordering::Relaxed),
            message,
        });
    }
    pending.drain(..used);
    open
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// A close-on-exec pipe: (read end, non-blocking; write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: sets a status flag of a descriptor we own.
    if unsafe { libc::fcntl(read.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((read, write))
}
