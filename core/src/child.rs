//! Child processes: the one way the proxy starts another process.
//!
//! The JVM is multithreaded, so the proxy never `fork`s (a forked child of a multithreaded
//! process may only call async-signal-safe functions until it `exec`s). It calls
//! `posix_spawn` (glibc: `clone(CLONE_VM | CLONE_VFORK)` and `exec`) directly, because
//! `std::process::Command` can hand a child an extra descriptor only through `pre_exec`, which
//! makes it fork. The child gets:
//!
//! - standard input from `/dev/null`, standard output and error into one pipe whose last
//!   [`TAIL_BYTES`] the parent keeps;
//! - optionally more descriptors, each at the number asked for (a plugin snapshot as 3, for
//!   example);
//! - nothing else: every descriptor the proxy makes is close-on-exec, and those that other code
//!   in the process left inheritable are closed in the child (glibc 2.34 and later);
//! - an empty signal mask, default signal handling, and a process group of its own (so that a
//!   timeout kills whatever it started, too);
//! - the parent's environment.
//!
//! `run` waits with a timeout, draining the pipe all along; a child still running at the
//! deadline is killed (SIGKILL, its whole group) and reaped. `spawn` hands back the running
//! child (`Running`) for a caller that watches it itself. The end is classified the way
//! Chromium's `kill_posix.cc` does: exited with a code, or killed by a signal (by name), and
//! "timed out, killed by us" kept apart.

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How much of the end of the child's output is kept.
pub const TAIL_BYTES: usize = 4096;

/// The descriptor number the extra descriptor gets in the child.
pub const EXTRA_FD: RawFd = 3;

/// The descriptor number a program run through a descriptor (`Command::from_file`) has in the
/// child while it is executed (`/proc/self/fd/4`); the program inherits it.
pub const PROGRAM_FD: RawFd = 4;

/// The longest single wait between checks when no pidfd tells the parent the child ended.
const POLL_SLICE: Duration = Duration::from_millis(5);

/// A child process to run to its end.
#[derive(Debug)]
pub struct Command<'a> {
    program: PathBuf,
    /// The open program, executed as `/proc/self/fd/PROGRAM_FD` rather than by its name.
    program_file: Option<BorrowedFd<'a>>,
    args: Vec<OsString>,
    /// Descriptors handed to the child, with the number each gets there.
    extra: Vec<(BorrowedFd<'a>, RawFd)>,
    timeout: Duration,
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it (not ours).
    Signaled {
        /// The signal number.
        signal: i32,
        /// True when it left a core dump.
        core_dumped: bool,
    },
    /// It was still running at the deadline, so the parent killed it (SIGKILL) and reaped it.
    TimedOut(Duration),
}

/// A child's end, its output's tail, and how long it ran.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How it ended.
    pub end: End,
    /// The last [`TAIL_BYTES`] of its standard output and error.
    pub output: Vec<u8>,
    /// True when it wrote more than what `output` kept.
    pub output_cut: bool,
    /// From the spawn to the reaping.
    pub elapsed: Duration,
}

impl Outcome {
    /// The tail of the output as text, trimmed, with "..." in front when it was cut.
    pub fn output_text(&self) -> String {
        let text = String::from_utf8_lossy(&self.output);
        let text = text.trim();
        if self.output_cut {
            format!("...{text}")
        } else {
            text.to_owned()
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            End::Exited(code) => write!(f, "exited with code {code}"),
            End::Signaled {
                signal,
                core_dumped,
            } => {
                let core = if core_dumped { ", core dumped" } else { "" };
                write!(
                    f,
                    "was killed by {} (signal {signal}{core})",
                    signal_name(signal)
                )
            }
            End::TimedOut(after) => write!(
                f,
                "was still running after {} ms and was killed",
                after.as_millis()
            ),
        }
    }
}

/// The name of signal `signal`, such as "SIGSEGV".
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSTKFLT => "SIGSTKFLT",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGURG => "SIGURG",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGSYS => "SIGSYS",
        other => return format!("signal {other}"),
    };
    name.to_owned()
}

impl<'a> Command<'a> {
    /// Runs `program` (a path; never searched for in `PATH`) with no arguments, no extra
    /// descriptor, and a timeout of 30 seconds.
    pub fn new(program: &Path) -> Command<'a> {
        Command {
            program: program.to_path_buf(),
            program_file: None,
            args: Vec::new(),
            extra: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }

    /// Runs the program open at `file` (`argv[0]` is `name`), executed through the descriptor
    /// (`/proc/self/fd/N` in the child), never by a name that another process could swap
    /// between a check and the start; the program may be deleted from disk already.
    pub fn from_file(file: &'a File, name: &Path) -> Command<'a> {
        Command::from_fd(file.as_fd(), name)
    }

    /// As `from_file`, for a borrowed descriptor.
    pub fn from_fd(program: BorrowedFd<'a>, name: &Path) -> Command<'a> {
        Command {
            program_file: Some(program),
            ..Command::new(name)
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Command<'a> {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Hands the child `fd` as descriptor [`EXTRA_FD`] (3).
    pub fn extra_fd(self, fd: BorrowedFd<'a>) -> Command<'a> {
        self.fd_as(fd, EXTRA_FD)
    }

    /// Hands the child `fd` as descriptor `target`: 3, or above [`PROGRAM_FD`] (0 to 2 are the
    /// standard streams and 4 the program's).
    ///
    /// # Panics
    /// If `target` is one of those, or already given.
    pub fn fd_as(mut self, fd: BorrowedFd<'a>, target: RawFd) -> Command<'a> {
        assert!(
            target == EXTRA_FD || target > PROGRAM_FD,
            "descriptor {target} is taken in the child"
        );
        assert!(
            self.extra.iter().all(|(_, t)| *t != target),
            "descriptor {target} is given twice"
        );
        self.extra.push((fd, target));
        self
    }

    /// Kills the child if it runs longer than `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Command<'a> {
        self.timeout = timeout;
        self
    }

    /// Spawns the child and waits for its end (or kills it at the timeout).
    ///
    /// `Err` only when it could not be started (its `errno`, such as "No such file or
    /// directory") or, after it was, when its end could not be learned.
    pub fn run(&self) -> io::Result<Outcome> {
        let running = self.spawn()?;
        wait(running, self.timeout)
    }

    /// Spawns the child and hands it back running (the timeout does not apply: the caller
    /// watches it).
    ///
    /// `Err` when it could not be started (its `errno`, such as "No such file or directory").
    pub fn spawn(&self) -> io::Result<Running> {
        let program = c_string(self.program.as_os_str())?;
        let mut args = vec![program.clone()];
        for arg in &self.args {
            args.push(c_string(arg)?);
        }
        let env: Vec<CString> = std::env::vars_os()
            .filter_map(|(key, value)| {
                let mut pair = key;
                pair.push("=");
                pair.push(value);
                c_string(&pair).ok()
            })
            .collect();
        let argv = null_terminated(&args);
        let envp = null_terminated(&env);

        let (output_read, output_write) = pipe()?;
        // Numbers 0 to `highest` are the child's targets: a source among them could be
        // overwritten by an earlier action, so such a source is moved above them first.
        let highest = self
            .extra
            .iter()
            .map(|(_, target)| *target)
            .fold(PROGRAM_FD, RawFd::max);
        let output_write = above_targets(output_write.as_fd(), highest)?.unwrap_or(output_write);
        let mut extra_moved = Vec::new();
        let mut extra = Vec::new();
        for (fd, target) in &self.extra {
            match above_targets(*fd, highest)? {
                Some(moved) => {
                    extra.push((moved.as_raw_fd(), *target));
                    extra_moved.push(moved);
                }
                None => extra.push((fd.as_raw_fd(), *target)),
            }
        }
        let program_moved = match self.program_file {
            Some(fd) => above_targets(fd, highest)?,
            None => None,
        };
        let program_fd = program_moved
            .as_ref()
            .map(AsRawFd::as_raw_fd)
            .or(self.program_file.map(|fd| fd.as_raw_fd()));
        let executed = match program_fd {
            Some(_) => c_string(OsStr::new(&format!("/proc/self/fd/{PROGRAM_FD}")))?,
            None => program.clone(),
        };

        let mut actions = FileActions::new()?;
        actions.open(0, c"/dev/null", libc::O_RDONLY)?;
        actions.dup2(output_write.as_raw_fd(), 1)?;
        actions.dup2(output_write.as_raw_fd(), 2)?;
        for (from, to) in extra {
            // dup2 onto another number clears close-on-exec: the child keeps it.
            actions.dup2(from, to)?;
        }
        if let Some(program_fd) = program_fd {
            // The kernel opens the program through this number at exec: it must stay open.
            actions.dup2(program_fd, PROGRAM_FD)?;
        }
        actions.close_from(highest + 1)?;
        let attributes = Attributes::new()?;

        let started = Instant::now();
        let mut pid: libc::pid_t = 0;
        // SAFETY: every pointer is valid for the call: the program and argument strings, the
        // NUL-terminated argv and envp arrays built from them (which outlive the call), and
        // the initialised file actions and attributes.
        let spawned = unsafe {
            libc::posix_spawn(
                &mut pid,
                executed.as_ptr(),
                actions.as_ptr(),
                attributes.as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
            )
        };
        // The parent's copies of what the child received: the pipe's write end must be
        // closed here, or the parent would never see the end of the output.
        drop(output_write);
        drop(extra_moved);
        drop(program_moved);
        if spawned != 0 {
            return Err(io::Error::from_raw_os_error(spawned));
        }
        Ok(Running {
            pid,
            pidfd: pidfd_open(pid),
            output: output_read,
            started,
        })
    }
}

/// A child that was spawned and is not reaped yet: its pid stays its own until it is.
#[derive(Debug)]
pub struct Running {
    /// Its process id (and process group id).
    pub pid: libc::pid_t,
    /// A descriptor that becomes readable when it ends (Linux 5.3 and later), or `None`.
    pub pidfd: Option<OwnedFd>,
    /// The read end of its standard output and error (non-blocking).
    pub output: OwnedFd,
    /// When it was spawned.
    pub started: Instant,
}

impl Running {
    /// Its end, if it has ended (it is reaped then: call this once it says so).
    pub fn try_end(&self) -> io::Result<Option<End>> {
        Ok(try_wait(self.pid)?.map(classify))
    }

    /// Waits for its end and reaps it.
    pub fn wait_end(&self) -> io::Result<End> {
        wait_blocking(self.pid).map(classify)
    }

    /// SIGKILL to it and its process group (it is not reaped, so the ids are still its own).
    pub fn kill(&self) {
        kill_group(self.pid);
    }
}

/// Drains the child's output and waits for its end, killing it at the deadline.
fn wait(running: Running, timeout: Duration) -> io::Result<Outcome> {
    let Running {
        pid,
        pidfd,
        output,
        started,
    } = running;
    let deadline = started + timeout;
    let mut tail = Tail::default();
    let mut output = Some(output);
    loop {
        if let Some(status) = try_wait(pid)? {
            if let Some(fd) = &output {
                tail.drain(fd);
            }
            return Ok(tail.outcome(classify(status), started));
        }
        let now = Instant::now();
        if now >= deadline {
            kill_group(pid);
            let _status = wait_blocking(pid)?;
            if let Some(fd) = &output {
                tail.drain(fd);
            }
            return Ok(tail.outcome(End::TimedOut(timeout), started));
        }
        let mut slice = deadline - now;
        if pidfd.is_none() {
            slice = slice.min(POLL_SLICE);
        }
        let mut fds = Vec::with_capacity(2);
        if let Some(fd) = &output {
            fds.push(pollfd(fd));
        }
        if let Some(fd) = &pidfd {
            fds.push(pollfd(fd));
        }
        let millis = libc::c_int::try_from(slice.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: `fds` holds `fds.len()` initialised pollfd entries.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                kill_group(pid);
                let _ = wait_blocking(pid);
                return Err(e);
            }
            continue;
        }
        if let Some(fd) = &output {
            if fds[0].revents != 0 && !tail.drain(fd) {
                // End of file: every writer (the child, and anything it started) closed it.
                output = None;
            }
        }
    }
}

/// The last [`TAIL_BYTES`] of a child's output.
#[derive(Debug, Default)]
pub struct Tail {
    bytes: Vec<u8>,
    cut: bool,
}

impl Tail {
    /// Reads what the (non-blocking) pipe holds now; false once it reached the end.
    pub fn drain(&mut self, fd: &OwnedFd) -> bool {
        let mut buf = [0u8; 4096];
        // At most 256 KiB a call: a child (or what it started) that writes without end cannot
        // keep the caller here; the pipe stays readable for the next call.
        for _ in 0..64 {
            // SAFETY: reads at most `buf.len()` bytes into `buf` from an open descriptor.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            match n {
                0 => return false,
                n if n > 0 => {
                    self.bytes.extend_from_slice(&buf[..n as usize]);
                    if self.bytes.len() > 2 * TAIL_BYTES {
                        let excess = self.bytes.len() - TAIL_BYTES;
                        self.bytes.drain(..excess);
                        self.cut = true;
                    }
                }
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    // EAGAIN: nothing more for now; any other error: nothing more ever.
                    return e.kind() == io::ErrorKind::WouldBlock;
                }
            }
        }
        true
    }

    /// The tail as text, trimmed, with "..." in front when it was cut.
    pub fn text(&self) -> String {
        let start = self.bytes.len().saturating_sub(TAIL_BYTES);
        let text = String::from_utf8_lossy(&self.bytes[start..]);
        let text = text.trim();
        if self.cut || start > 0 {
            format!("...{text}")
        } else {
            text.to_owned()
        }
    }

    fn outcome(mut self, end: End, started: Instant) -> Outcome {
        if self.bytes.len() > TAIL_BYTES {
            let excess = self.bytes.len() - TAIL_BYTES;
            self.bytes.drain(..excess);
            self.cut = true;
        }
        Outcome {
            end,
            output: self.bytes,
            output_cut: self.cut,
            elapsed: started.elapsed(),
        }
    }
}

fn classify(status: libc::c_int) -> End {
    if libc::WIFSIGNALED(status) {
        End::Signaled {
            signal: libc::WTERMSIG(status),
            core_dumped: libc::WCOREDUMP(status),
        }
    } else {
        End::Exited(libc::WEXITSTATUS(status))
    }
}

/// The child's status if it has ended (and is now reaped).
fn try_wait(pid: libc::pid_t) -> io::Result<Option<libc::c_int>> {
    loop {
        let mut status = 0;
        // SAFETY: waits for our own child only, writing its status into `status`.
        let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        match reaped {
            0 => return Ok(None),
            r if r == pid => return Ok(Some(status)),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

fn wait_blocking(pid: libc::pid_t) -> io::Result<libc::c_int> {
    loop {
        let mut status = 0;
        // SAFETY: as in `try_wait`, without WNOHANG.
        let reaped = unsafe { libc::waitpid(pid, &mut status, 0) };
        if reaped == pid {
            return Ok(status);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// SIGKILL to the child's process group and to the child (not yet reaped, so its pid and
/// group id are still its own).
fn kill_group(pid: libc::pid_t) {
    // SAFETY: kill only sends signals; the child is unreaped, so the ids cannot be reused.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
}

/// A descriptor that becomes readable when the child ends (Linux 5.3 and later), or `None`.
fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; the new
    // descriptor is close-on-exec by definition.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = RawFd::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the descriptor was just created and is owned by nothing else.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn pollfd(fd: &OwnedFd) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
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

/// A close-on-exec copy of `fd` numbered above `highest` when `fd` is one of the child's
/// target numbers (0 to `highest`), else `None` (use `fd` itself).
fn above_targets(fd: BorrowedFd<'_>, highest: RawFd) -> io::Result<Option<OwnedFd>> {
    if fd.as_raw_fd() > highest {
        return Ok(None);
    }
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor from an open one.
    let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, highest + 1) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just created, owned by nothing else.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(copy) }))
}

fn c_string(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} contains a NUL byte"),
        )
    })
}

fn null_terminated(strings: &[CString]) -> Vec<*mut libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr().cast_mut())
        .chain(std::iter::once(ptr::null_mut()))
        .collect()
}

/// `posix_spawn_file_actions_t`, boxed so that it never moves once initialised.
struct FileActions(Box<MaybeUninit<libc::posix_spawn_file_actions_t>>);

impl FileActions {
    fn new() -> io::Result<FileActions> {
        let mut actions = Box::new(MaybeUninit::uninit());
        // SAFETY: initialises the object in place.
        check(unsafe { libc::posix_spawn_file_actions_init(actions.as_mut_ptr()) })?;
        Ok(FileActions(actions))
    }

    fn as_ptr(&self) -> *const libc::posix_spawn_file_actions_t {
        self.0.as_ptr()
    }

    fn open(&mut self, fd: RawFd, path: &std::ffi::CStr, flags: libc::c_int) -> io::Result<()> {
        // SAFETY: the object is initialised; glibc copies the path.
        check(unsafe {
            libc::posix_spawn_file_actions_addopen(self.0.as_mut_ptr(), fd, path.as_ptr(), flags, 0)
        })
    }

    fn dup2(&mut self, from: RawFd, to: RawFd) -> io::Result<()> {
        // SAFETY: the object is initialised.
        check(unsafe { libc::posix_spawn_file_actions_adddup2(self.0.as_mut_ptr(), from, to) })
    }

    /// Closes every descriptor from `low` up in the child, where the C library can (glibc
    /// 2.34 and later; looked up when first needed, so that older ones still load this
    /// library): descriptors that other code in the process left inheritable.
    fn close_from(&mut self, low: RawFd) -> io::Result<()> {
        type AddCloseFrom =
            unsafe extern "C" fn(*mut libc::posix_spawn_file_actions_t, libc::c_int) -> libc::c_int;
        static ADD: OnceLock<Option<AddCloseFrom>> = OnceLock::new();
        let add = ADD.get_or_init(|| {
            // SAFETY: looks a symbol up by its NUL-terminated name; nothing is loaded.
            let symbol = unsafe {
                libc::dlsym(
                    libc::RTLD_DEFAULT,
                    c"posix_spawn_file_actions_addclosefrom_np".as_ptr(),
                )
            };
            // SAFETY: glibc's function of that name has exactly this signature.
            (!symbol.is_null())
                .then(|| unsafe { std::mem::transmute::<*mut libc::c_void, AddCloseFrom>(symbol) })
        });
        match add {
            // SAFETY: the object is initialised.
            Some(add) => check(unsafe { add(self.0.as_mut_ptr(), low) }),
            None => Ok(()),
        }
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe { libc::posix_spawn_file_actions_destroy(self.0.as_mut_ptr()) };
    }
}

/// `posix_spawnattr_t`: an empty signal mask, default handling of every signal, and a
/// process group of the child's own.
struct Attributes(Box<MaybeUninit<libc::posix_spawnattr_t>>);

impl Attributes {
    fn new() -> io::Result<Attributes> {
        let mut attributes = Box::new(MaybeUninit::uninit());
        // SAFETY: initialises the object in place.
        check(unsafe { libc::posix_spawnattr_init(attributes.as_mut_ptr()) })?;
        let attributes = Attributes(attributes);
        let raw = attributes.0.as_ptr().cast_mut();
        let mut empty = MaybeUninit::<libc::sigset_t>::uninit();
        let mut all = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: the sets are initialised by sigemptyset before use; sigaddset of a signal
        // that cannot be caught (SIGKILL, SIGSTOP) only fails, harmlessly. The attribute
        // object is initialised.
        unsafe {
            libc::sigemptyset(empty.as_mut_ptr());
            libc::sigemptyset(all.as_mut_ptr());
            for signal in 1..32 {
                if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                    libc::sigaddset(all.as_mut_ptr(), signal);
                }
            }
            check(libc::posix_spawnattr_setsigmask(raw, empty.as_ptr()))?;
            check(libc::posix_spawnattr_setsigdefault(raw, all.as_ptr()))?;
            check(libc::posix_spawnattr_setpgroup(raw, 0))?;
            let flags = libc::POSIX_SPAWN_SETSIGMASK
                | libc::POSIX_SPAWN_SETSIGDEF
                | libc::POSIX_SPAWN_SETPGROUP;
            check(libc::posix_spawnattr_setflags(raw, flags as libc::c_short))?;
        }
        Ok(attributes)
    }

    fn as_ptr(&self) -> *const libc::posix_spawnattr_t {
        self.0.as_ptr()
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe { libc::posix_spawnattr_destroy(self.0.as_mut_ptr()) };
    }
}

/// An error number returned (not set in errno) by the posix_spawn family.
fn check(code: libc::c_int) -> io::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sh(script: &str) -> Command<'static> {
        Command::new(Path::new("/bin/sh")).arg("-c").arg(script)
    }

    #[test]
    fn reports_the_exit_code_and_the_output() {
        let outcome = sh("echo out; echo err >&2; exit 7").run().unwrap();
        assert_eq!(outcome.end, End::Exited(7));
        assert_eq!(outcome.end.to_string(), "exited with code 7");
        assert_eq!(outcome.output_text(), "out\nerr");
        assert!(!outcome.output_cut);
    }

    #[test]
    fn names_the_signal_that_killed_it() {
        let outcome = sh("echo before; kill -SEGV $$").run().unwrap();
        assert!(
            matches!(
                outcome.end,
                End::Signaled {
                    signal: libc::SIGSEGV,
                    ..
                }
            ),
            "{:?}",
            outcome.end
        );
        let text = outcome.end.to_string();
        assert!(
            text.starts_with("was killed by SIGSEGV (signal 11"),
            "{text}"
        );
        assert_eq!(outcome.output_text(), "before");
        assert_eq!(signal_name(libc::SIGBUS), "SIGBUS");
        assert_eq!(signal_name(40), "signal 40");
    }

    #[test]
    fn kills_and_reaps_a_child_that_overstays_with_what_it_started() {
        // The child starts a grandchild, which holds the output pipe too: both must go.
        let started = Instant::now();
        let outcome = sh("sleep 30 & echo $!; sleep 30")
            .timeout(Duration::from_millis(300))
            .run()
            .unwrap();
        assert_eq!(outcome.end, End::TimedOut(Duration::from_millis(300)));
        assert!(started.elapsed() < Duration::from_secs(10), "{outcome:?}");
        assert!(outcome.end.to_string().contains("300 ms"));
        let grandchild: libc::pid_t = outcome.output_text().parse().unwrap();
        let gone = |pid: libc::pid_t| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Gone, or a zombie waiting for whoever adopted it.
            stat.is_empty()
                || stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone(grandchild) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(gone(grandchild), "the grandchild {grandchild} still runs");
    }

    #[test]
    fn keeps_the_tail_of_a_long_output() {
        let outcome =
            sh("i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; echo last")
                .run()
                .unwrap();
        assert_eq!(outcome.end, End::Exited(0));
        assert!(outcome.output_cut);
        assert!(outcome.output.len() <= TAIL_BYTES);
        let text = outcome.output_text();
        assert!(text.starts_with("..."), "{text}");
        assert!(text.ends_with("line 2999\nlast"), "{text}");
    }

    #[test]
    fn passes_the_extra_descriptor_as_3_and_nothing_else() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"the snapshot").unwrap();
        // What the child has open: 0, 1, 2, 3, and the directory `ls` reads.
        let outcome = sh("cat /proc/self/fd/3; echo; ls /proc/self/fd | tr '\\n' ' '")
            .extra_fd(file.as_fd())
            .run()
            .unwrap();
        assert_eq!(outcome.end, End::Exited(0), "{}", outcome.output_text());
        let text = outcome.output_text();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("the snapshot"));
        let fds: Vec<i32> = lines
            .next()
            .unwrap()
            .split_whitespace()
            .map(|fd| fd.parse().unwrap())
            .collect();
        // `ls` itself opens one more descriptor (4) to read the directory.
        assert_eq!(fds, [0, 1, 2, 3, 4], "the child has other descriptors open");
        // Standard input is /dev/null.
        let outcome = sh("cat").run().unwrap();
        assert_eq!(outcome.end, End::Exited(0));
        assert_eq!(outcome.output_text(), "");
    }

    #[test]
    fn passes_several_descriptors_at_their_numbers_and_hands_back_a_running_child() {
        let mut three = tempfile::tempfile().unwrap();
        three.write_all(b"three").unwrap();
        let mut six = tempfile::tempfile().unwrap();
        six.write_all(b"six").unwrap();
        let command =
            sh("cat /proc/self/fd/3 /proc/self/fd/6; echo; ls /proc/self/fd | tr '\\n' ' '")
                .extra_fd(three.as_fd())
                .fd_as(six.as_fd(), 6);
        let running = command.spawn().unwrap();
        let end = running.wait_end().unwrap();
        assert_eq!(end, End::Exited(0));
        let mut tail = Tail::default();
        tail.drain(&running.output);
        let text = tail.text();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("threesix"));
        let fds: Vec<i32> = lines
            .next()
            .unwrap()
            .split_whitespace()
            .map(|fd| fd.parse().unwrap())
            .collect();
        // `ls` opens one more descriptor (4) to read the directory; 5 was never given.
        assert_eq!(
            fds,
            [0, 1, 2, 3, 4, 6],
            "the child has other descriptors open"
        );
    }

    #[test]
    #[should_panic(expected = "descriptor 4 is taken")]
    fn the_program_descriptor_cannot_be_given() {
        let file = tempfile::tempfile().unwrap();
        let _ = sh("true").fd_as(file.as_fd(), PROGRAM_FD);
    }

    #[test]
    fn passes_a_descriptor_that_already_has_a_low_number() {
        // This process's standard input, which the child's /dev/null replaces as its number 0
        // before descriptor 3 is set up: it must be moved out of the way first.
        // SAFETY: borrows descriptor 0 of this process, open for the whole test.
        let stdin = unsafe { BorrowedFd::borrow_raw(0) };
        let outcome = sh("test -e /proc/self/fd/3").extra_fd(stdin).run().unwrap();
        assert_eq!(outcome.end, End::Exited(0), "{}", outcome.output_text());
    }

    #[test]
    fn a_program_that_cannot_start_is_an_error() {
        let err = Command::new(Path::new("/nonexistent/proxyso-worker"))
            .run()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }
}
