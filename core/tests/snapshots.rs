//! The private snapshot as an attacker and an unlucky operator meet it: a name swapped between
//! hashing and mapping, descriptor numbers reused, very long file names.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{DRAIN, call, plugins, registry, scratch_dir};
use proxyso_core::LoadOptions;
use proxyso_core::plugin::Plugin;
use proxyso_core::snapshot::SnapshotDir;
use sha2::{Digest, Sha256};

fn sha256_of(path: &Path) -> [u8; 32] {
    Sha256::digest(std::fs::read(path).unwrap()).into()
}

/// The inode numbers `/proc/self/maps` shows for mappings of `path`.
fn mapped_inodes(path: &Path) -> Vec<u64> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let needle = path.to_string_lossy();
    maps.lines()
        .filter(|line| line.contains(&*needle))
        .map(|line| line.split_whitespace().nth(4).unwrap().parse().unwrap())
        .collect()
}

/// The attack: whoever can rename the snapshot's name between the copy being hashed and
/// `dlopen` (someone owning a directory above it) puts another library there. What is mapped
/// must still be the inode written and hashed, and the digest shown must be its digest.
#[test]
fn what_is_mapped_is_the_descriptor_hashed_even_when_the_name_is_swapped() {
    let p = plugins();
    let work = scratch_dir();
    let snapshots = SnapshotDir::new(work.path().to_path_buf());
    let pinned = sha256_of(&p.example_v1());
    let snapshot = snapshots.take(&p.example_v1(), Some(&pinned)).unwrap();
    let hashed_inode = snapshot.file().metadata().unwrap().ino();

    // The attacker's library, renamed over the snapshot's name right after it was taken.
    let evil = snapshot.path().with_file_name("evil.so");
    std::fs::copy(p.example_v2(), &evil).unwrap();
    std::fs::rename(&evil, snapshot.path()).unwrap();
    assert_ne!(
        std::fs::metadata(snapshot.path()).unwrap().ino(),
        hashed_inode
    );

    let plugin = Plugin::open_snapshot(
        &snapshot,
        &p.example_v1(),
        &LoadOptions::config(b""),
        "swapped",
    )
    .unwrap();
    assert_eq!(
        plugin.version(),
        "1.0.0",
        "the attacker's library was mapped"
    );
    assert_eq!(plugin.sha256(), pinned);
    let mut out = Vec::new();
    let version = plugin.method_index(Some("version")).unwrap();
    plugin.call(version, b"", &mut out).unwrap();
    assert_eq!(out, b"1.0.0");
    // The kernel agrees: every mapping under that name is the hashed inode.
    let inodes = mapped_inodes(snapshot.path());
    assert!(!inodes.is_empty());
    assert!(inodes.iter().all(|&i| i == hashed_inode), "{inodes:?}");
    assert!(
        plugin.loaded_name().starts_with("/proc/self/fd/"),
        "{}",
        plugin.loaded_name().display()
    );
    drop(plugin);
}

/// A copy kept for rollback is linked from the descriptor too: never the swapped-in file. Once
/// the hashed inode has lost its name there is nothing to link, and keeping (so the load) fails.
#[test]
fn a_copy_kept_for_rollback_is_never_the_swapped_in_file() {
    let p = plugins();
    let work = scratch_dir();
    let snapshots = SnapshotDir::new(work.path().to_path_buf());
    let snapshot = snapshots.take(&p.example_v1(), None).unwrap();
    let kept = snapshots.keep(&snapshot).unwrap();
    assert_eq!(
        std::fs::read(kept.path()).unwrap(),
        std::fs::read(p.example_v1()).unwrap()
    );
    drop(kept);

    let evil = snapshot.path().with_file_name("evil.so");
    std::fs::copy(p.example_v2(), &evil).unwrap();
    std::fs::rename(&evil, snapshot.path()).unwrap();
    match snapshots.keep(&snapshot) {
        Ok(kept) => panic!(
            "kept {} bytes of the swapped-in file",
            std::fs::read(kept.path()).unwrap().len()
        ),
        Err(e) => assert!(e.to_string().contains("No such file"), "{e}"),
    }
}

/// glibc matches a name given to `dlopen` against every loaded object's name first. A library
/// that stays loaded after `dlclose` (pinned by an `STB_GNU_UNIQUE` symbol here) keeps the
/// name `/proc/self/fd/N`; if N were closed, the next snapshot would get N and its load would
/// silently return the pinned library.
#[test]
fn a_library_that_stays_loaded_keeps_its_descriptor_number_to_itself() {
    let p = plugins();
    let (r, _dir) = registry();
    let pinned = p.native("libfx_gnu_unique_pinned.so");
    let example = p.example_v1().to_string_lossy().into_owned();
    for round in 0..4 {
        let key = format!("pinned{round}");
        r.load(&key, &pinned.to_string_lossy(), b"").unwrap();
        assert!(r.unload(&key).unwrap());
        assert!(r.await_retired(&key, DRAIN));
        for load in 0..3 {
            let key = format!("example{round}-{load}");
            r.load(&key, &example, b"").unwrap();
            let info = r.info(&key).unwrap();
            assert_eq!(
                (info.name.as_str(), info.version.as_str()),
                ("example", "1.0.0"),
                "round {round}, load {load}: a pinned library came back"
            );
            assert_eq!(call(&r, &key, Some("version"), ""), "1.0.0");
            assert!(r.unload(&key).unwrap());
            assert!(r.await_retired(&key, DRAIN));
        }
    }
}

/// A file name may have 255 bytes; the snapshot's name (and its kept copy's, with a prefix)
/// must not grow with it, nor with the sequence number.
#[test]
fn a_255_byte_file_name_loads_replaces_12_times_and_rolls_back() {
    let p = plugins();
    let (r, _dir) = registry();
    let work = scratch_dir();
    let name = format!("{}.so", "é".repeat(100) + &"x".repeat(52));
    assert_eq!(name.len(), 255);
    let long = work.path().join(&name);
    let path = long.to_string_lossy().into_owned();
    let options = LoadOptions {
        keep_versions: Some(3),
        ..LoadOptions::config(b"")
    };
    std::fs::copy(p.example_v1(), &long).unwrap();
    r.load_with("long", &path, &options).unwrap();
    for replace in 1..=12u64 {
        let source = if replace % 2 == 1 {
            p.example_v2()
        } else {
            p.example_v1()
        };
        std::fs::remove_file(&long).unwrap();
        std::fs::copy(&source, &long).unwrap();
        assert_eq!(
            r.replace_with("long", &path, &options).unwrap(),
            replace + 1
        );
    }
    // Generation 13 is v1 (12 is even); generation 12 was v2.
    assert_eq!(call(&r, "long", Some("version"), ""), "1.0.0");
    let info = r.info("long").unwrap();
    let snapshot_name = info.snapshot_path.file_name().unwrap().len();
    assert!(snapshot_name < 100, "{}", info.snapshot_path.display());
    assert_eq!(r.rollback("long").unwrap(), 14);
    assert_eq!(call(&r, "long", Some("version"), ""), "2.0.0");
    assert_eq!(r.rollback("long").unwrap(), 15);
    assert_eq!(call(&r, "long", Some("version"), ""), "1.0.0");
}
