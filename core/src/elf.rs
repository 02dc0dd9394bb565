//! A look at the ELF headers before `dlopen` sees the file.
//!
//! glibc trusts the program headers: a truncated library whose segments reach past the end of
//! the file is mapped anyway, and the first touch of the missing pages kills the process with
//! SIGBUS from inside `dlopen`. So the host checks what it is about to map (magic, class, byte
//! order, type, machine, and that every header and loadable segment lies inside the file) and
//! refuses with an error instead.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// ELF type of a shared object (and of a position-independent executable).
const ET_DYN: u16 = 3;
/// Program header type of a loadable segment.
const PT_LOAD: u32 = 1;
/// Program header type of the dynamic section.
const PT_DYNAMIC: u32 = 2;
/// Size of an ELF64 file header and of one ELF64 program header.
const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;

/// The ELF machine of this process.
const HOST_MACHINE: u16 = if cfg!(target_arch = "x86_64") {
    62
} else if cfg!(target_arch = "aarch64") {
    183
} else if cfg!(target_arch = "riscv64") {
    243
} else if cfg!(target_arch = "powerpc64") {
    21
} else if cfg!(target_arch = "s390x") {
    22
} else if cfg!(target_arch = "loongarch64") {
    258
} else {
    0
};

/// Checks that `file` is a 64-bit shared object for this machine, whole; returns how many
/// `PT_LOAD` segments it has (0 on a 32-bit host, which leaves the layout to `dlopen`).
///
/// `Err` holds the reason, in words; an I/O error reading the file is a reason too.
pub fn check(file: &File) -> Result<usize, String> {
    let size = file
        .metadata()
        .map_err(|e| format!("cannot read it: {e}"))?
        .len();
    if size == 0 {
        return Err("the file is empty".into());
    }
    let mut ehdr = [0u8; EHDR_SIZE];
    let head = read_at(file, &mut ehdr, 0)?;
    if head < 4 || ehdr[..4] != *b"\x7fELF" {
        let shown = String::from_utf8_lossy(&ehdr[..head.min(16)]).into_owned();
        return Err(format!("not an ELF file (it starts with {shown:?})"));
    }
    if head < EHDR_SIZE {
        return Err(format!("truncated: {size} bytes, less than an ELF header"));
    }
    match (ehdr[4], cfg!(target_pointer_width = "64")) {
        (2, true) | (1, false) => {}
        (1, true) => return Err("a 32-bit ELF file; this process is 64-bit".into()),
        (2, false) => return Err("a 64-bit ELF file; this process is 32-bit".into()),
        (class, _) => return Err(format!("an ELF file of unknown class {class}")),
    }
    if !cfg!(target_pointer_width = "64") {
        // The layout checks below read ELF64 headers; a 32-bit host leaves them to dlopen.
        return Ok(0);
    }
    let little = match ehdr[5] {
        1 => true,
        2 => false,
        other => return Err(format!("an ELF file of unknown byte order {other}")),
    };
    if little != cfg!(target_endian = "little") {
        return Err("an ELF file of the other byte order than this process".into());
    }
    let field = Fields { little };
    let kind = field.u16(&ehdr, 16);
    if kind != ET_DYN {
        let what = match kind {
            1 => "a relocatable object (.o), not a shared object",
            2 => "an executable, not a shared object",
            4 => "a core dump, not a shared object",
            _ => "not a shared object",
        };
        return Err(format!("{what} (ELF type {kind})"));
    }
    let machine = field.u16(&ehdr, 18);
    if HOST_MACHINE != 0 && machine != HOST_MACHINE {
        return Err(format!(
            "built for {} (ELF machine {machine}); this process runs on {}",
            machine_name(machine),
            machine_name(HOST_MACHINE)
        ));
    }
    let phoff = field.u64(&ehdr, 32);
    let phentsize = usize::from(field.u16(&ehdr, 54));
    let phnum = usize::from(field.u16(&ehdr, 56));
    if phentsize != PHDR_SIZE {
        return Err(format!(
            "program headers of {phentsize} bytes, not {PHDR_SIZE}"
        ));
    }
    let table_len = (phnum * PHDR_SIZE) as u64;
    let table_end = phoff.checked_add(table_len).filter(|end| *end <= size);
    let Some(_) = table_end else {
        return Err(format!(
            "truncated: its program headers end past byte {size}, where the file ends"
        ));
    };
    let mut table = vec![0u8; phnum * PHDR_SIZE];
    if read_at(file, &mut table, phoff)? < table.len() {
        return Err("truncated: its program headers could not be read whole".into());
    }
    let mut loads = 0;
    for (i, ph) in table.chunks_exact(PHDR_SIZE).enumerate() {
        let kind = field.u32(ph, 0);
        if kind != PT_LOAD && kind != PT_DYNAMIC {
            continue;
        }
        loads += usize::from(kind == PT_LOAD);
        let offset = field.u64(ph, 8);
        let filesz = field.u64(ph, 32);
        match offset.checked_add(filesz) {
            Some(end) if end <= size => {}
            _ => {
                return Err(format!(
                    "truncated: segment {i} needs bytes up to {}, the file has {size}",
                    offset.saturating_add(filesz)
                ));
            }
        }
    }
    if loads == 0 {
        return Err("no loadable segment".into());
    }
    Ok(loads)
}

/// Reads as much of `buf` as the file has from `offset`; returns how much that was.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> Result<usize, String> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read it: {e}")),
        }
    }
    Ok(done)
}

/// Reads header fields in the file's byte order.
struct Fields {
    little: bool,
}

impl Fields {
    fn u16(&self, b: &[u8], at: usize) -> u16 {
        let raw = [b[at], b[at + 1]];
        if self.little {
            u16::from_le_bytes(raw)
        } else {
            u16::from_be_bytes(raw)
        }
    }

    fn u32(&self, b: &[u8], at: usize) -> u32 {
        let mut raw = [0; 4];
        raw.copy_from_slice(&b[at..at + 4]);
        if self.little {
            u32::from_le_bytes(raw)
        } else {
            u32::from_be_bytes(raw)
        }
    }

    fn u64(&self, b: &[u8], at: usize) -> u64 {
        let mut raw = [0; 8];
        raw.copy_from_slice(&b[at..at + 8]);
        if self.little {
            u64::from_le_bytes(raw)
        } else {
            u64::from_be_bytes(raw)
        }
    }
}

fn machine_name(machine: u16) -> &'static str {
    match machine {
        3 => "x86 (32-bit)",
        8 => "MIPS",
        20 => "PowerPC",
        21 => "PowerPC 64",
        22 => "s390",
        40 => "ARM (32-bit)",
        62 => "x86-64",
        183 => "AArch64",
        243 => "RISC-V",
        258 => "LoongArch",
        _ => "another machine",
    }
}

/// A real shared object for tests: the bytes of the C library this process runs with.
#[cfg(test)]
pub(crate) fn libc_bytes() -> Vec<u8> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let libc = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("libc.so"))
        .unwrap()
        .to_owned();
    std::fs::read(libc).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn check_bytes(bytes: &[u8]) -> Result<usize, String> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        check(&file)
    }

    #[test]
    fn accepts_a_real_shared_object() {
        // glibc has four PT_LOAD segments (r, r-x, r, rw-), a few more on some builds.
        let loads = check_bytes(&libc_bytes()).unwrap();
        assert!((2..=8).contains(&loads), "{loads}");
    }

    #[test]
    fn refuses_empty_text_and_short_files() {
        assert_eq!(check_bytes(b"").unwrap_err(), "the file is empty");
        let err = check_bytes(b"hello, world\n").unwrap_err();
        assert!(
            err.starts_with("not an ELF file (it starts with \"hello"),
            "{err}"
        );
        let err = check_bytes(b"\x7fELF\x02\x01").unwrap_err();
        assert!(err.contains("less than an ELF header"), "{err}");
    }

    #[test]
    fn refuses_a_library_cut_short() {
        let lib = libc_bytes();
        // Cuts inside the loadable segments (the tail of a library holds only section data).
        for len in [100, 4096, 65536] {
            let err = check_bytes(&lib[..len]).unwrap_err();
            assert!(err.starts_with("truncated"), "{len}: {err}");
        }
    }

    #[test]
    fn refuses_other_machines_classes_and_types() {
        let lib = libc_bytes();
        let mut other = lib.clone();
        other[18..20].copy_from_slice(&40u16.to_le_bytes());
        let err = check_bytes(&other).unwrap_err();
        assert!(err.contains("built for ARM (32-bit)"), "{err}");
        let mut class32 = lib.clone();
        class32[4] = 1;
        assert!(check_bytes(&class32).unwrap_err().contains("32-bit"));
        let mut object = lib;
        object[16..18].copy_from_slice(&1u16.to_le_bytes());
        assert!(
            check_bytes(&object)
                .unwrap_err()
                .contains("relocatable object")
        );
    }
}
