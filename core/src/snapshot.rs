//! Private snapshots: the copy of a plugin file that is actually `dlopen`ed.
//!
//! Loading from the user's path directly has two traps. glibc keys loaded objects by name and
//! by inode, so opening a path that is already open hands back the old handle and the new
//! version silently never loads; and a file overwritten in place (`cp new.so live.so`) changes
//! the pages of the code that is mapped and running. So every load copies the file, read once
//! through one descriptor, into an owner-only directory under a name no other load in this
//! process has used, opens that copy, and deletes it at once: the mapping keeps the inode alive,
//! nothing is left on disk, and no later change to the source can reach mapped code.
//!
//! The directory is made once per registry rather than per load: on ext4 a `mkdir` and `rmdir`
//! cost as much as copying a small library.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use sha2::{Digest as _, Sha256};

use crate::elf;
use crate::error::LoadError;

/// The file name prefix of kept copies (see `SnapshotDir::keep`).
const KEPT_PREFIX: &str = "kept-";

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
    private: Option<tempfile::TempDir>,
}

impl SnapshotDir {
    /// Snapshots will go into a new private directory below `parent`.
    pub fn new(parent: PathBuf) -> SnapshotDir {
        SnapshotDir {
            state: Mutex::new(DirState {
                parent,
                private: None,
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
            };
        }
    }

    /// Removes the kept copies and then the private directory, if no load holds it: for
    /// process exit, where this registry is never dropped. Never waits.
    pub fn remove_if_idle(&self) {
        if let Ok(state) = self.state.try_lock() {
            if let Some(private) = &state.private {
                for entry in fs::read_dir(private.path()).into_iter().flatten().flatten() {
                    if entry.file_name().to_string_lossy().starts_with(KEPT_PREFIX) {
                        let _ = fs::remove_file(entry.path());
                    }
                }
                let _ = fs::remove_dir(private.path());
            }
        }
    }

    /// The private directory, if one was made.
    #[cfg(test)]
    fn private_path(&self) -> Option<PathBuf> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.private.as_ref().map(|d| d.path().to_path_buf())
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
        let base = source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin.so".to_owned());
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{seq}-{base}", std::process::id());
        let (path, mut copy) = self.create(&name)?;
        // Both checked after copying: what is checked is what will be mapped.
        let digest = match expected {
            Some(expected) => {
                let found = copy_hashing(&mut file, &mut copy).map_err(|e| self.error(e))?;
                if *expected != found {
                    let _ = fs::remove_file(&path);
                    return Err(LoadError::Digest {
                        expected: hex(expected),
                        found: hex(&found),
                    });
                }
                Digest::ready(found)
            }
            None => {
                // Nothing to check before dlopen: the kernel copies (copy_file_range), and the
                // digest, which only `info` reads, is computed on another thread meanwhile.
                let copied = io::copy(&mut file, &mut copy);
                let reader = copied.and_then(|_| fs::File::open(&path));
                match reader {
                    Ok(reader) => Digest::pending(reader, &path),
                    Err(e) => {
                        let _ = fs::remove_file(&path);
                        return Err(self.error(e));
                    }
                }
            }
        };
        let mut snapshot = Snapshot {
            path,
            digest,
            load_segments: 0,
        };
        snapshot.load_segments = elf::check(&copy).map_err(LoadError::NotLoadable)?;
        Ok(snapshot)
    }

    /// Gives `snapshot`'s file a second name that outlives it, so that the very bytes that were
    /// loaded can be loaded again later (rollback) whatever happens to the source path.
    ///
    /// A hard link: no copy, and the kept name sits in the same owner-only directory. While the
    /// version is mapped the kept name is that mapping's inode, so like the snapshot itself it
    /// must never be written to; only this process's user can reach it.
    pub fn keep(&self, snapshot: &Snapshot) -> Result<KeptCopy, LoadError> {
        let name = snapshot
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = snapshot.path.with_file_name(format!("{KEPT_PREFIX}{name}"));
        fs::hard_link(&snapshot.path, &path).map_err(|e| self.error(e))?;
        Ok(KeptCopy {
            path,
            digest: snapshot.digest.clone(),
        })
    }

    /// Creates `name` in the private directory, making the directory first if need be (or
    /// again, if something like a tmp cleaner removed it).
    fn create(&self, name: &str) -> Result<(PathBuf, fs::File), LoadError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for attempt in 0..2 {
            if state.private.is_none() || attempt > 0 {
                // Owner-only: no other user may swap a copy between writing and dlopen.
                let private = tempfile::Builder::new()
                    .prefix("proxyso-")
                    .permissions(fs::Permissions::from_mode(0o700))
                    .tempdir_in(&state.parent)
                    .map_err(|e| snapshot_error(&state.parent, e))?;
                state.private = Some(private);
            }
            let Some(private) = &state.private else {
                continue;
            };
            let path = private.path().join(name);
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
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

    /// Hashes the file at `path` through `reader` on a thread of its own, so that loads never
    /// queue behind each other's digests (here, if no thread can be started). The descriptor
    /// keeps the file readable after its name is deleted.
    fn pending(reader: fs::File, path: &Path) -> Digest {
        let cell = Arc::new(OnceLock::new());
        let fill = Arc::clone(&cell);
        let started = std::thread::Builder::new()
            .name("proxyso-sha256".into())
            .stack_size(256 << 10)
            .spawn(move || {
                // Always set, even if hashing panicked: `get` must never wait forever.
                let digest = std::panic::catch_unwind(move || hash(reader));
                let _ = fill.set(digest.unwrap_or([0; 32]));
            });
        if started.is_err() {
            let _ = cell.set(fs::File::open(path).map_or([0; 32], hash));
        }
        Digest(cell)
    }

    /// The digest, waiting for it if it is still being computed.
    pub fn get(&self) -> [u8; 32] {
        *self.0.wait()
    }
}

/// Hashes a whole file. Reading a private file through an open descriptor does not fail in
/// practice; if it does, the digest shows as zeros rather than leaving `info` waiting.
fn hash(mut reader: fs::File) -> [u8; 32] {
    copy_hashing(&mut reader, &mut io::sink()).unwrap_or([0; 32])
}

/// A private copy of a plugin file; deleted on drop (a mapping of it lives on).
#[derive(Debug)]
pub struct Snapshot {
    path: PathBuf,
    digest: Digest,
    /// Its `PT_LOAD` segments: what mapping it costs, for `mappings::BUDGET`.
    load_segments: usize,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

impl Snapshot {
    /// Where the copy lives until it is dropped; the name stays in `/proc/self/maps` after.
    pub fn path(&self) -> &Path {
        &self.path
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

/// Removes a stale snapshot name from a message so that it names the user's file instead.
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
        assert_eq!(
            fs::read_dir(dir.private_path().unwrap()).unwrap().count(),
            0,
            "the refused copy is gone"
        );
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
        fs::remove_dir(&first).unwrap();
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
}
