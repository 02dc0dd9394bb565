//! What the process has mapped, read from `/proc/self/maps`: the proof that a version is gone.

use std::fs;
use std::io;
use std::path::Path;

/// True when any mapping of this process names `path`.
///
/// Snapshots are deleted right after `dlopen`, so the kernel shows them as `path (deleted)`;
/// a substring match covers both forms.
pub fn is_mapped(path: &Path) -> io::Result<bool> {
    let maps = fs::read_to_string("/proc/self/maps")?;
    let needle = path.to_string_lossy();
    Ok(maps.lines().any(|line| line.contains(&*needle)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_the_c_library_and_not_a_made_up_path() {
        let maps = fs::read_to_string("/proc/self/maps").unwrap();
        let libc_line = maps.lines().find(|l| l.contains("libc.so")).unwrap();
        let libc_path = libc_line.split_whitespace().last().unwrap();
        assert!(is_mapped(Path::new(libc_path)).unwrap());
        assert!(!is_mapped(Path::new("/no/such/proxyso-snapshot.so")).unwrap());
    }
}
