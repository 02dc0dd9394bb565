//! Private snapshots: the copy of a plugin file that is actually `dlopen`ed.
//!
//! Loading from the user's path directly has two traps. glibc keys loaded objects by name and
//! by inode, so opening a path that is already open hands back the old handle and the new
//! version silently never loads; and a file overwritten in place (`cp new.so live.so`) changes
//! the pages of the code that is mapped and running. So every load copies the file, read once
//! through one descriptor, into a fresh owner-only directory under a name no other load in this
//! process has used, opens that copy, and deletes it at once: the mapping keeps the inode alive,
//! nothing is left on disk, and no later change to the source can reach mapped code.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::elf;
use crate::error::LoadError;

/// Tells snapshot names apart for the life of the process, so no two can ever match by name.
static SEQUENCE: AtomicU64 = AtomicU64::new(1);

/// A private copy of a plugin file; the copy and its directory are deleted on drop.
#[derive(Debug)]
pub struct Snapshot {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Snapshot {
    /// Copies `source` into a new owner-only directory below `dir`.
    pub fn take(source: &Path, dir: &Path) -> Result<Snapshot, LoadError> {
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
        let snapshot_error = |source| LoadError::Snapshot {
            dir: dir.display().to_string(),
            source,
        };
        // Owner-only: no other user may swap the copy between writing and dlopen.
        let private = tempfile::Builder::new()
            .prefix("proxyso-")
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(dir)
            .map_err(snapshot_error)?;
        let base = source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin.so".to_owned());
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let path = private
            .path()
            .join(format!("{}-{seq}-{base}", std::process::id()));
        let mut copy = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(snapshot_error)?;
        io::copy(&mut file, &mut copy).map_err(snapshot_error)?;
        // Checked after copying: what is checked is what will be mapped.
        elf::check(&copy).map_err(LoadError::NotLoadable)?;
        Ok(Snapshot {
            path,
            _dir: private,
        })
    }

    /// Where the copy lives until it is dropped; the name stays in `/proc/self/maps` after.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes a stale snapshot name from a message so that it names the user's file instead.
pub fn mention_source(message: &str, snapshot: &Path, source: &str) -> String {
    message.replace(&*snapshot.to_string_lossy(), source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_shared_object() {
        let work = tempfile::tempdir().unwrap();
        let source = work.path().join("notes.so");
        fs::write(&source, b"plain text").unwrap();
        let err = Snapshot::take(&source, work.path()).unwrap_err();
        assert!(matches!(err, LoadError::NotLoadable(_)), "{err}");
    }

    #[test]
    fn copies_bytes_into_an_owner_only_directory_and_cleans_up() {
        let work = tempfile::tempdir().unwrap();
        let source = work.path().join("lib.so");
        fs::write(&source, elf::libc_bytes()).unwrap();
        let snap = Snapshot::take(&source, work.path()).unwrap();
        assert_eq!(fs::read(snap.path()).unwrap(), elf::libc_bytes());
        let dir = snap.path().parent().unwrap().to_path_buf();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        drop(snap);
        assert!(!dir.exists());
    }

    #[test]
    fn every_snapshot_of_one_path_has_a_new_name() {
        let work = tempfile::tempdir().unwrap();
        let source = work.path().join("lib.so");
        fs::write(&source, elf::libc_bytes()).unwrap();
        let a = Snapshot::take(&source, work.path()).unwrap();
        let b = Snapshot::take(&source, work.path()).unwrap();
        assert_ne!(a.path(), b.path());
        assert_ne!(a.path().file_name(), b.path().file_name());
    }

    #[test]
    fn refuses_directories_and_missing_files() {
        let work = tempfile::tempdir().unwrap();
        let err = Snapshot::take(work.path(), work.path()).unwrap_err();
        assert!(matches!(err, LoadError::NotAFile("a directory")), "{err}");
        let err = Snapshot::take(&work.path().join("absent.so"), work.path()).unwrap_err();
        assert!(err.to_string().contains("No such file"), "{err}");
    }

    #[test]
    fn refuses_a_fifo_without_waiting_for_a_writer() {
        let work = tempfile::tempdir().unwrap();
        let fifo = work.path().join("pipe.so");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let err = Snapshot::take(&fifo, work.path()).unwrap_err();
        assert!(matches!(err, LoadError::NotAFile(_)), "{err}");
    }

    #[test]
    fn names_the_snapshot_directory_when_it_cannot_write() {
        let work = tempfile::tempdir().unwrap();
        let source = work.path().join("lib.so");
        fs::write(&source, b"x").unwrap();
        let missing = work.path().join("no-such-dir");
        let err = Snapshot::take(&source, &missing).unwrap_err();
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }
}
