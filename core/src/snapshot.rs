//! Private snapshots: the copy of a plugin file that is actually `dlopen`ed.
//!
//! Loading from the user's path directly has two traps. glibc keys loaded objects by name and
//! by inode, so opening a path that is already open hands back the old handle and the new
//! version silently never loads; and a file overwritten in place (`cp new.so live.so`) changes
//! the pages of the code that is mapped and running. So every load copies the file, read once
//! through one descriptor, into an owner-only directory under a name no other load in this
//! process has used, and deletes the name once the copy is mapped: the mapping keeps the inode
//! alive, nothing is left on disk, and no later change to the source can reach mapped code.
//!
//! What is mapped is the very descriptor that was written and hashed: `dlopen` gets
//! `/proc/self/fd/N` (see `Snapshot::fd_path`), never the copy's name, which someone able to
//! rename directories above it could point at another file. The directory is checked too, as
//! `ssh` checks a user's files (`check_chain`): it and every directory above it must be owned by
//! root or by this process's user and not writable by anyone else, unless sticky.
//!
//! The private directory is made once per registry rather than per load: on ext4 a `mkdir` and
//! `rmdir` cost as much as copying a small library. A process that dies without cleaning up
//! (`kill -9`, a crash) leaves its directory behind; the next process to make one below the same
//! parent removes it (`remove_stale`), telling dead from live by a lock each live process holds.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use sha2::{Digest as _, Sha256};

use crate::elf;
use crate::error::LoadError;
use crate::log;

/// The file name prefix of kept copies (see `SnapshotDir::keep`).
const KEPT_PREFIX: &str = "kept-";

/// The name prefix of private directories; `tempfile` adds [`DIR_RANDOM`] letters and digits.
const DIR_PREFIX: &str = "proxyso-";

/// How many random characters follow [`DIR_PREFIX`].
const DIR_RANDOM: usize = 6;

/// The lock file in a private directory: locked (`flock`) by its process while it lives.
const LOCK_NAME: &str = ".lock";

/// The lock file's name until it is locked; renamed (linked) to [`LOCK_NAME`] only then, so a
/// `.lock` that can be locked always means its process is gone.
const LOCK_NEW: &str = ".lock-new";

/// The most bytes of the source's file name a snapshot's name keeps: with the pid, the sequence
/// number and [`KEPT_PREFIX`] a name stays under 100 bytes, far below the 255 a file system
/// allows, whatever the source is called.
const STEM_MAX: usize = 64;

/// Tells snapshot names apart for the life of the process, so no two can ever match by name.
static SEQUENCE: AtomicU64 = AtomicU64::new(1);

/// Where a registry writes its snapshots: an owner-only directory below a parent, made on the
/// first load and removed (with anything left in it) when this is dropped.
#[derive(Debug)]
pub struct SnapshotDir {
    state: Mutex<DirState>,
}

#[derive(Debug)]
struct DirState {
    parent: PathBuf,
    private: Option<Private>,
    /// True once stale directories below `parent` were looked for.
    swept: bool,
}

/// A private directory and the lock that marks it as in use.
#[derive(Debug)]
struct Private {
    /// Removed with everything in it on drop; declared first, so dropped before the lock.
    dir: tempfile::TempDir,
    /// `.lock`, held locked for as long as this process uses the directory.
    _lock: File,
}

impl SnapshotDir {
    /// Snapshots will go into a new private directory below `parent`.
    pub fn new(parent: PathBuf) -> SnapshotDir {
        SnapshotDir {
            state: Mutex::new(DirState {
                parent,
                private: None,
                swept: false,
            }),
        }
    }

    /// Later snapshots go below `parent` (the current private directory is dropped).
    pub fn set_parent(&self, parent: PathBuf) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.parent != parent {
            *state = DirState {
                parent,
                private: None,
                swept: false,
            };
        }
    }

    /// Removes the kept copies and then the private directory, if no load holds it: for
    /// process exit, where this registry is never dropped. Never waits.
    pub fn remove_if_idle(&self) {
        if let Ok(state) = self.state.try_lock() {
            if let Some(private) = &state.private {
                let path = private.dir.path();
                for entry in fs::read_dir(path).into_iter().flatten().flatten() {
                    let name = entry.file_name();
                    if name.to_string_lossy().starts_with(KEPT_PREFIX) || name == LOCK_NAME {
                        let _ = fs::remove_file(entry.path());
                    }
                }
                let _ = fs::remove_dir(path);
            }
        }
    }

    /// The private directory, if one was made.
    #[cfg(test)]
    fn private_path(&self) -> Option<PathBuf> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.private.as_ref().map(|p| p.dir.path().to_path_buf())
    }

    /// Copies `source` into the private directory and checks the copy: its SHA-256 against
    /// `expected`, if given, and its ELF headers.
    pub fn take(&self, source: &Path, expected: Option<&[u8; 32]>) -> Result<Snapshot, LoadError> {
        // Read through one open descriptor: what is checked is what is copied. O_NONBLOCK so
        // that opening a FIFO returns at once (to be refused below) instead of waiting for a
        // writer; it changes nothing for regular files.
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(source)
            .map_err(LoadError::Read)?;
        let meta = file.metadata().map_err(LoadError::Read)?;
        if meta.is_dir() {
            return Err(LoadError::NotAFile("a directory"));
        }
        if !meta.is_file() {
            return Err(LoadError::NotAFile("a device, pipe or socket"));
        }
        let (path, mut copy) = self.create(&snapshot_name(source))?;
        // Both checked after copying, through the descriptor written: what is checked is what
        // will be mapped.
        match expected {
            Some(expected) => {
                let found = copy_hashing(&mut file, &mut copy).map_err(|e| {
                    // A copy cut short (disk full, a read error) is never left behind.
                    let _ = fs::remove_file(&path);
                    self.error(e)
                })?;
                if *expected != found {
                    let _ = fs::remove_file(&path);
                    return Err(LoadError::Digest {
                        expected: hex(expected),
                        found: hex(&found),
                    });
                }
            }
            None => {
                if let Err(e) = io::copy(&mut file, &mut copy) {
                    let _ = fs::remove_file(&path);
                    return Err(self.error(e));
                }
            }
        }
        let file = Arc::new(copy);
        let digest = match expected {
            Some(expected) => Digest::ready(*expected),
            // Nothing to check before dlopen: the kernel copied (copy_file_range), and the
            // digest, which only `info` reads, is computed on another thread meanwhile.
            None => Digest::pending(Arc::clone(&file)),
        };
        let mut snapshot = Snapshot {
            path,
            file,
            digest,
            load_segments: 0,
            named: true,
        };
        snapshot.load_segments = elf::check(&snapshot.file).map_err(LoadError::NotLoadable)?;
        Ok(snapshot)
    }

    /// Gives `snapshot`'s file a second name that outlives it, so that the very bytes that were
    /// loaded can be loaded again later (rollback) whatever happens to the source path.
    ///
    /// A hard link of the snapshot's descriptor (not of its name): no copy, the kept name is
    /// the inode that was hashed and mapped, and it sits in the same owner-only directory.
    /// While the version is mapped the kept name is that mapping's inode, so like the snapshot
    /// itself it must never be written to; only this process's user can reach it.
    pub fn keep(&self, snapshot: &Snapshot) -> Result<KeptCopy, LoadError> {
        let name = snapshot
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = snapshot.path.with_file_name(format!("{KEPT_PREFIX}{name}"));
        link_descriptor(&snapshot.file, &path).map_err(|e| self.error(e))?;
        Ok(KeptCopy {
            path,
            digest: snapshot.digest.clone(),
        })
    }

    /// Creates `name` in the private directory, making the directory first if need be (or
    /// again, if something like a tmp cleaner removed it), once the parent passed
    /// `check_chain`.
    fn create(&self, name: &str) -> Result<(PathBuf, File), LoadError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Checked at every load, not once: a few `stat`s, and a directory made unsafe later
        // (chmod, chown) is refused from then on.
        let parent = check_chain(&state.parent)?;
        for attempt in 0..2 {
            if state.private.is_none() || attempt > 0 {
                if !state.swept {
                    state.swept = true;
                    remove_stale(&parent);
                }
                let private = Private::make(&parent).map_err(|e| snapshot_error(&parent, e))?;
                state.private = Some(private);
            }
            let Some(private) = &state.private else {
                continue;
            };
            let path = private.dir.path().join(name);
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
            {
                Ok(file) => return Ok((path, file)),
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt == 0 => continue,
                Err(e) => return Err(snapshot_error(&state.parent, e)),
            }
        }
        Err(snapshot_error(
            &state.parent,
            io::Error::other("the private directory vanished twice"),
        ))
    }

    fn error(&self, e: io::Error) -> LoadError {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        snapshot_error(&state.parent, e)
    }
}

impl Private {
    /// Makes a new owner-only directory below `parent` and locks it.
    fn make(parent: &Path) -> io::Result<Private> {
        // Owner-only: no other user may swap a copy between writing and dlopen.
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .rand_bytes(DIR_RANDOM)
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)?;
        // Locked under a name no sweeper looks at, and only then given the name it looks for:
        // a sweeper can never find `.lock` unlocked in a directory whose process lives.
        let fresh = dir.path().join(LOCK_NEW);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&fresh)?;
        if !try_lock(&lock)? {
            return Err(io::Error::other(format!(
                "{} is locked by someone else",
                fresh.display()
            )));
        }
        // For whoever looks: which process the directory belongs to.
        writeln!(lock, "{}", std::process::id())?;
        fs::hard_link(&fresh, dir.path().join(LOCK_NAME))?;
        fs::remove_file(&fresh)?;
        Ok(Private { dir, _lock: lock })
    }
}

/// Takes `file`'s `flock` without waiting; false when another open file (of this process or
/// another) holds it. Released when the last descriptor of this open file closes, which the
/// kernel does for a process that dies however it dies.
fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: `flock` on a descriptor `file` owns, valid for the call; touches no memory.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// This process's effective user id.
fn euid() -> u32 {
    // SAFETY: `geteuid` takes nothing, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

/// Checks the directory snapshots go below the way `ssh` (StrictModes) checks a user's files:
/// it and every directory above it must be owned by root or by this process's user, and not
/// writable by group or others unless sticky (as `/tmp` is, where no one may rename another
/// user's entries). Otherwise someone else could move the private directory aside and put one
/// of theirs in its place. Returns the directory with symbolic links resolved: the one checked.
pub fn check_chain(dir: &Path) -> Result<PathBuf, LoadError> {
    let real = fs::canonicalize(dir).map_err(|e| snapshot_error(dir, e))?;
    let me = euid();
    let refuse = |reason: String| LoadError::UnsafeSnapshotDir {
        dir: dir.display().to_string(),
        reason,
    };
    for each in real.ancestors() {
        let meta = fs::metadata(each).map_err(|e| snapshot_error(dir, e))?;
        let shown = each.display();
        if !meta.is_dir() {
            return Err(refuse(format!("{shown} is not a directory")));
        }
        let (uid, mode) = (meta.uid(), meta.mode() & 0o7777);
        if uid != 0 && uid != me {
            return Err(refuse(format!(
                "{shown} is owned by uid {uid}, neither root nor this process's user (uid {me})"
            )));
        }
        let writers = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "group and others",
            (true, false) => "its group",
            (false, true) => "others",
            (false, false) => continue,
        };
        if mode & 0o1000 == 0 {
            return Err(refuse(format!(
                "{shown} is writable by {writers} (mode {mode:04o}) and not sticky"
            )));
        }
    }
    Ok(real)
}

/// Removes the private directories below `parent` that processes of this user left when they
/// died without cleaning up (`kill -9`, a crash), with the snapshots and kept copies in them.
///
/// Touches only directories named as `Private::make` names them, owned by this user, whose
/// `.lock` (owned by this user) can be locked, which means no process holds it: every live
/// process keeps its own locked. Inside, it removes only files named as this module names them,
/// so a directory holding anything else stays. Returns how many directories it removed.
pub fn remove_stale(parent: &Path) -> usize {
    let me = euid();
    let (mut dirs, mut files, mut bytes) = (0, 0, 0);
    for entry in fs::read_dir(parent).into_iter().flatten().flatten() {
        let name = entry.file_name();
        if !is_private_name(name.as_bytes()) {
            continue;
        }
        let dir = entry.path();
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() && meta.uid() == me => {}
            _ => continue,
        }
        let lock = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(dir.join(LOCK_NAME));
        let Ok(lock) = lock else { continue };
        match lock.metadata() {
            Ok(meta) if meta.is_file() && meta.uid() == me => {}
            _ => continue,
        }
        if !try_lock(&lock).unwrap_or(false) {
            continue;
        }
        // Ours now: its process is gone, and another sweeper finds it locked.
        for inner in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let inner_name = inner.file_name();
            let ours = inner_name == LOCK_NAME
                || inner_name == LOCK_NEW
                || is_snapshot_name(inner_name.as_bytes());
            let Ok(meta) = fs::symlink_metadata(inner.path()) else {
                continue;
            };
            if ours && meta.is_file() && fs::remove_file(inner.path()).is_ok() {
                files += 1;
                bytes += meta.len();
            }
        }
        if fs::remove_dir(&dir).is_ok() {
            dirs += 1;
        }
    }
    if dirs > 0 {
        log::emit(log::Record {
            level: log::Level::Info,
            from_plugin: false,
            key: None,
            generation: 0,
            message: format!(
                "removed {dirs} snapshot director{} left below {} by processes that died \
                 ({files} files, {bytes} bytes)",
                if dirs == 1 { "y" } else { "ies" },
                parent.display()
            ),
        });
    }
    dirs
}

/// True for `proxyso-` and [`DIR_RANDOM`] letters or digits: a name `Private::make` gives.
fn is_private_name(name: &[u8]) -> bool {
    name.strip_prefix(DIR_PREFIX.as_bytes())
        .is_some_and(|rest| rest.len() == DIR_RANDOM && rest.iter().all(u8::is_ascii_alphanumeric))
}

/// True for `PID-SEQ-STEM` and `kept-PID-SEQ-STEM`: a name `snapshot_name` or `keep` gives.
fn is_snapshot_name(name: &[u8]) -> bool {
    let name = name.strip_prefix(KEPT_PREFIX.as_bytes()).unwrap_or(name);
    let mut parts = name.splitn(3, |&b| b == b'-');
    let number = |part: Option<&[u8]>| {
        part.is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit))
    };
    number(parts.next()) && number(parts.next()) && parts.next().is_some_and(|s| !s.is_empty())
}

/// A new snapshot's file name: `PID-SEQ-STEM`, where STEM is the source's file name with every
/// byte other than a letter, digit, `.`, `_`, `+` or `-` replaced by `_`, and cut in the middle
/// to [`STEM_MAX`] bytes. Short whatever the source is called, and unique in the process.
fn snapshot_name(source: &Path) -> String {
    let base = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin.so".to_owned());
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // All ASCII now, so any byte index is a character boundary. The end is kept too: it
    // usually tells versions apart (`-1.2.3.so`).
    let stem = if clean.len() > STEM_MAX {
        let tail = STEM_MAX / 3;
        let head = STEM_MAX - tail - 1;
        format!("{}~{}", &clean[..head], &clean[clean.len() - tail..])
    } else {
        clean
    };
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!("{}-{seq}-{stem}", std::process::id())
}

/// The name under which `file`'s descriptor opens the very file it is open on, whatever has
/// become of the file's name since: `/proc/self/fd/N`.
pub fn fd_path(file: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// Gives the file open on `file` the name `to`: `linkat` of `/proc/self/fd/N`, following the
/// link, so the new name is the descriptor's inode even if its old name now means another file.
fn link_descriptor(file: &File, to: &Path) -> io::Result<()> {
    let from = std::ffi::CString::new(fd_path(file).as_os_str().as_bytes())?;
    let to = std::ffi::CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both are NUL-terminated paths that live for the call.
    let linked = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if linked == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn snapshot_error(dir: &Path, source: io::Error) -> LoadError {
    LoadError::Snapshot {
        dir: dir.display().to_string(),
        source,
    }
}

/// Copies `from` into `to` through one buffer, hashing what passes; returns the SHA-256.
///
/// The buffer is on the stack, so that the short-lived hashing thread allocates nothing.
fn copy_hashing(from: &mut impl Read, to: &mut impl Write) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
    }
    to.flush()?;
    Ok(hasher.finalize().into())
}

/// Lowercase hex, as `sha256sum` prints a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The SHA-256 of a snapshot: known at once, or being computed on another thread.
#[derive(Debug, Clone)]
pub struct Digest(Arc<OnceLock<[u8; 32]>>);

impl Digest {
    /// A digest known already.
    pub fn ready(digest: [u8; 32]) -> Digest {
        Digest(Arc::new(OnceLock::from(digest)))
    }

    /// Hashes the snapshot open on `file` (from its start, whatever its offset) on a thread of
    /// its own, so that loads never queue behind each other's digests (here, if no thread can
    /// be started). Read through the descriptor that was written, so the digest is of the bytes
    /// mapped, and readable after the name is deleted.
    fn pending(file: Arc<File>) -> Digest {
        let cell = Arc::new(OnceLock::new());
        let fill = Arc::clone(&cell);
        let reader = Arc::clone(&file);
        let started = std::thread::Builder::new()
            .name("proxyso-sha256".into())
            .stack_size(256 << 10)
            .spawn(move || {
                // Always set, even if hashing panicked: `get` must never wait forever.
                let digest = std::panic::catch_unwind(move || hash(&reader));
                let _ = fill.set(digest.unwrap_or([0; 32]));
            });
        if started.is_err() {
            let _ = cell.set(hash(&file));
        }
        Digest(cell)
    }

    /// The digest, waiting for it if it is still being computed.
    pub fn get(&self) -> [u8; 32] {
        *self.0.wait()
    }
}

/// Hashes a whole file through positional reads, leaving its offset alone. Reading a private
/// file through an open descriptor does not fail in practice; if it does, the digest shows as
/// zeros rather than leaving `info` waiting.
fn hash(file: &File) -> [u8; 32] {
    let mut reader = ReadAt { file, at: 0 };
    copy_hashing(&mut reader, &mut io::sink()).unwrap_or([0; 32])
}

/// Reads a file from `at` on with `pread`, so that sharing its descriptor shares no offset.
struct ReadAt<'a> {
    file: &'a File,
    at: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// A private copy of a plugin file, open: its name is deleted on drop, its descriptor closed
/// when the last holder of it lets go (see `Snapshot::descriptor`).
#[derive(Debug)]
pub struct Snapshot {
    path: PathBuf,
    /// The descriptor the copy was written and hashed through.
    file: Arc<File>,
    digest: Digest,
    /// Its `PT_LOAD` segments: what mapping it costs, for `mappings::BUDGET`.
    load_segments: usize,
    /// True when `path` is this process's to delete (false for one `received`).
    named: bool,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if self.named {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Snapshot {
    /// A snapshot another process took, checked and handed over as `file` (a worker's
    /// descriptor 3): it goes by `/proc/self/fd/N`, nothing is deleted when it is dropped, and
    /// its digest is not known here (all zeros).
    pub fn received(file: File) -> Snapshot {
        let path = fd_path(&file);
        Snapshot {
            path,
            file: Arc::new(file),
            digest: Digest::ready([0; 32]),
            load_segments: 0,
            named: false,
        }
    }

    /// Where the copy lives until it is dropped; the name stays in `/proc/self/maps` after.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The descriptor the copy was written and hashed through (read-write; read it with
    /// positional reads, or through `fd_path`, which opens it anew at offset 0).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The descriptor, shared: whoever maps the snapshot through `fd_path` holds it for as long
    /// as the library may stay loaded, since glibc would hand that library back to a later
    /// `dlopen` of the same `/proc/self/fd/N` once N is reused.
    pub fn descriptor(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }

    /// `/proc/self/fd/N` of the descriptor: the name to `dlopen`, which maps exactly the bytes
    /// written and hashed, whatever `path` names by then.
    pub fn fd_path(&self) -> PathBuf {
        fd_path(&self.file)
    }

    /// The SHA-256 of the bytes copied.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// How many `PT_LOAD` segments its ELF headers declare.
    pub fn load_segments(&self) -> usize {
        self.load_segments
    }
}

/// A kept name for a loaded version's snapshot (see `SnapshotDir::keep`); removed on drop.
#[derive(Debug)]
pub struct KeptCopy {
    path: PathBuf,
    digest: Digest,
}

impl Drop for KeptCopy {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

impl KeptCopy {
    /// Where the kept bytes are.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Their SHA-256.
    pub fn sha256(&self) -> [u8; 32] {
        self.digest.get()
    }
}

/// Puts the user's file in a message in place of a snapshot's name (`path` or `fd_path`).
pub fn mention_source(message: &str, snapshot: &Path, source: &str) -> String {
    message.replace(&*snapshot.to_string_lossy(), source)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot directory below a fresh temporary parent, and a source holding `bytes`.
    fn setup(bytes: &[u8]) -> (tempfile::TempDir, SnapshotDir, PathBuf) {
        let work = tempfile::tempdir().unwrap();
        let source = work.path().join("lib.so");
        fs::write(&source, bytes).unwrap();
        let dir = SnapshotDir::new(work.path().to_path_buf());
        (work, dir, source)
    }

    #[test]
    fn refuses_what_is_not_a_shared_object() {
        let (_work, dir, source) = setup(b"plain text");
        let err = dir.take(&source, None).unwrap_err();
        assert!(matches!(err, LoadError::NotLoadable(_)), "{err}");
    }

    #[test]
    fn copies_bytes_into_an_owner_only_directory_and_cleans_up() {
        let (_work, dir, source) = setup(&elf::libc_bytes());
        let snap = dir.take(&source, None).unwrap();
        assert_eq!(fs::read(snap.path()).unwrap(), elf::libc_bytes());
        let private = snap.path().parent().unwrap().to_path_buf();
        assert_eq!(dir.private_path().as_deref(), Some(&*private));
        let mode = fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let copy = snap.path().to_path_buf();
        drop(snap);
        assert!(!copy.exists(), "the copy is deleted with its snapshot");
        drop(dir);
        assert!(!private.exists(), "the directory is deleted with its owner");
    }

    #[test]
    fn hashes_what_it_copies_and_refuses_another_digest() {
        let bytes = elf::libc_bytes();
        let (_work, dir, source) = setup(&bytes);
        let expected: [u8; 32] = Sha256::digest(&bytes).into();
        let snap = dir.take(&source, Some(&expected)).unwrap();
        assert_eq!(snap.digest().get(), expected);
        let unchecked = dir.take(&source, None).unwrap();
        let digest = unchecked.digest().clone();
        drop(unchecked);
        assert_eq!(
            digest.get(),
            expected,
            "hashed beside, even once the copy is gone"
        );
        drop(snap);
        let mut wrong = expected;
        wrong[0] ^= 1;
        let err = dir.take(&source, Some(&wrong)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&hex(&wrong)) && text.contains(&hex(&expected)),
            "{text}"
        );
        let left: Vec<_> = fs::read_dir(dir.private_path().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [LOCK_NAME], "the refused copy is gone");
    }

    #[test]
    fn a_kept_copy_outlives_its_snapshot_and_goes_at_exit() {
        let (_work, dir, source) = setup(&elf::libc_bytes());
        let snap = dir.take(&source, None).unwrap();
        let kept = dir.keep(&snap).unwrap();
        let sha = snap.digest().get();
        drop(snap);
        assert_eq!(fs::read(kept.path()).unwrap(), elf::libc_bytes());
        assert_eq!(kept.sha256(), sha);
        let path = kept.path().to_path_buf();
        drop(kept);
        assert!(!path.exists(), "dropped with its owner");

        let snap = dir.take(&source, None).unwrap();
        let kept = dir.keep(&snap).unwrap();
        drop(snap);
        let private = dir.private_path().unwrap();
        dir.remove_if_idle();
        assert!(
            !kept.path().exists() && !private.exists(),
            "exit removes kept copies"
        );
        std::mem::forget(kept);
    }

    #[test]
    fn every_snapshot_of_one_path_has_a_new_name() {
        let (_work, dir, source) = setup(&elf::libc_bytes());
        let a = dir.take(&source, None).unwrap();
        let b = dir.take(&source, None).unwrap();
        assert_ne!(a.path(), b.path());
        assert_ne!(a.path().file_name(), b.path().file_name());
    }

    #[test]
    fn a_private_directory_removed_behind_its_back_is_made_again() {
        let (_work, dir, source) = setup(&elf::libc_bytes());
        drop(dir.take(&source, None).unwrap());
        let first = dir.private_path().unwrap();
        fs::remove_dir_all(&first).unwrap();
        let snap = dir.take(&source, None).unwrap();
        assert!(snap.path().exists());
        assert_ne!(dir.private_path().unwrap(), first);
    }

    #[test]
    fn refuses_directories_and_missing_files() {
        let (work, dir, _source) = setup(b"");
        let err = dir.take(work.path(), None).unwrap_err();
        assert!(matches!(err, LoadError::NotAFile("a directory")), "{err}");
        let err = dir.take(&work.path().join("absent.so"), None).unwrap_err();
        assert!(err.to_string().contains("No such file"), "{err}");
    }

    #[test]
    fn refuses_a_fifo_without_waiting_for_a_writer() {
        let (work, dir, _source) = setup(b"");
        let fifo = work.path().join("pipe.so");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let err = dir.take(&fifo, None).unwrap_err();
        assert!(matches!(err, LoadError::NotAFile(_)), "{err}");
    }

    #[test]
    fn names_the_snapshot_directory_when_it_cannot_write() {
        let (work, _dir, source) = setup(&elf::libc_bytes());
        let dir = SnapshotDir::new(work.path().join("no-such-dir"));
        let err = dir.take(&source, None).unwrap_err();
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }

    /// A directory below `parent` as a process that died left it: `.lock` unlocked, a kept
    /// copy inside.
    fn left_by_a_dead_process(parent: &Path) -> PathBuf {
        let Private { dir, _lock } = Private::make(parent).unwrap();
        drop(_lock);
        let dir = dir.keep();
        fs::write(dir.join("4242-7-kept-lib.so"), b"snapshot").unwrap();
        fs::write(dir.join("kept-4242-8-lib.so"), b"kept").unwrap();
        dir
    }

    fn chown_to_nobody(path: &Path) {
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        let rc = unsafe { libc::chown(c_path.as_ptr(), 65534, 65534) };
        assert_eq!(
            rc,
            0,
            "the tests run as root: {}",
            io::Error::last_os_error()
        );
    }

    #[test]
    fn the_first_snapshot_removes_directories_of_dead_processes_only() {
        let (work, dir, source) = setup(&elf::libc_bytes());
        let dead = left_by_a_dead_process(work.path());
        let live = Private::make(work.path()).unwrap();
        // Look alike, but not ours to remove.
        let unlocked_foreign = left_by_a_dead_process(work.path());
        fs::write(unlocked_foreign.join("notes.txt"), b"someone's").unwrap();
        let other_user = left_by_a_dead_process(work.path());
        chown_to_nobody(&other_user);
        let other_name = work.path().join("proxyso-abc");
        fs::rename(left_by_a_dead_process(work.path()), &other_name).unwrap();
        let no_lock = left_by_a_dead_process(work.path());
        fs::remove_file(no_lock.join(LOCK_NAME)).unwrap();

        let snap = dir.take(&source, None).unwrap();
        assert!(!dead.exists(), "the dead process's directory is removed");
        assert!(live.dir.path().join(LOCK_NAME).exists(), "a live one stays");
        assert!(unlocked_foreign.join("notes.txt").exists());
        assert!(
            !unlocked_foreign.join(LOCK_NAME).exists(),
            "its own files go"
        );
        assert!(other_user.join(LOCK_NAME).exists(), "another user's stays");
        assert!(other_name.join(LOCK_NAME).exists(), "another name stays");
        assert!(
            no_lock.join("kept-4242-8-lib.so").exists(),
            "no lock: stays"
        );
        assert!(snap.path().exists());

        // Only the first snapshot looks.
        let later = left_by_a_dead_process(work.path());
        drop(dir.take(&source, None).unwrap());
        assert!(later.exists());
        assert_eq!(remove_stale(work.path()), 1, "and then it goes");
        assert!(!later.exists());
        assert_eq!(remove_stale(work.path()), 0);
        assert!(live.dir.path().exists());
        assert!(dir.private_path().unwrap().exists(), "ours is locked too");
    }

    #[test]
    fn a_directory_others_could_change_is_refused_and_named() {
        let work = tempfile::tempdir().unwrap();
        let source = work.path().join("lib.so");
        fs::write(&source, elf::libc_bytes()).unwrap();
        let refused = |dir: &Path| {
            let err = SnapshotDir::new(dir.to_path_buf())
                .take(&source, None)
                .unwrap_err();
            assert!(matches!(err, LoadError::UnsafeSnapshotDir { .. }), "{err}");
            let text = err.to_string();
            assert!(text.contains(&*dir.to_string_lossy()), "{text}");
            text
        };
        let mode = |path: &Path, mode: u32| {
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap()
        };

        let shared = work.path().join("shared");
        fs::create_dir(&shared).unwrap();
        mode(&shared, 0o777);
        let text = refused(&shared);
        assert!(
            text.contains("writable by group and others (mode 0777) and not sticky"),
            "{text}"
        );
        // A safe directory below an unsafe one is no better: the one above is named.
        let below = shared.join("mine");
        fs::create_dir(&below).unwrap();
        mode(&below, 0o700);
        let text = refused(&below);
        assert!(
            text.contains(&format!("{} is writable", shared.display())),
            "{text}"
        );
        mode(&shared, 0o770);
        assert!(refused(&shared).contains("writable by its group (mode 0770)"));
        // Sticky, as /tmp is: no one may rename another user's entries.
        mode(&shared, 0o1777);
        let dir = SnapshotDir::new(below.clone());
        assert!(dir.take(&source, None).is_ok());
        assert!(dir.private_path().unwrap().starts_with(&below));

        let theirs = work.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        chown_to_nobody(&theirs);
        let text = refused(&theirs);
        assert!(text.contains("owned by uid 65534"), "{text}");

        // Checked where a symbolic link leads.
        let link = work.path().join("link");
        std::os::unix::fs::symlink(&theirs, &link).unwrap();
        let text = refused(&link);
        assert!(text.contains(&*theirs.to_string_lossy()), "{text}");
        // Nothing was made in any refused directory.
        assert_eq!(fs::read_dir(&theirs).unwrap().count(), 0);
    }

    #[test]
    fn snapshot_names_stay_short_and_plain() {
        let long = format!("{}-1.2.3.so", "ä b".repeat(80));
        let name = snapshot_name(Path::new(&long));
        assert!(name.len() < 100, "{name}");
        assert!(is_snapshot_name(name.as_bytes()), "{name}");
        assert!(name.ends_with("-1.2.3.so"), "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+-~".contains(&b)),
            "{name}"
        );
        assert!(!is_snapshot_name(b"notes.txt"));
        assert!(!is_snapshot_name(b"12-x-lib.so"));
        assert!(is_private_name(b"proxyso-a1B2c3"));
        assert!(!is_private_name(b"proxyso-a1B2c"));
        assert!(!is_private_name(b"proxyso-a1B2c3.d"));
    }
}
