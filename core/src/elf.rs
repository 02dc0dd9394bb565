//! A look at a whole ELF file before `dlopen` sees it.
//!
//! glibc trusts the file: a truncated library whose segments reach past the end of the file is
//! mapped anyway, and the first touch of the missing pages kills the process with SIGBUS from
//! inside `dlopen`; a half-overwritten one (new headers over old contents) sends the dynamic
//! linker through garbage pointers, a SIGSEGV in `ld.so`. So the host reads, before mapping,
//! every part of the file the dynamic linker reads while it loads a library and looks up a
//! symbol, and refuses with an error what would send it outside the file or outside the mapped
//! segments:
//!
//! - the ELF header (magic, class, byte order, type, machine) and the program headers;
//! - every loadable segment's file range, in order, with its file size within its memory size;
//! - every other segment with file contents inside the file, and those the loader reads from
//!   memory (dynamic section, TLS image, notes, `RELRO`) inside a loadable segment;
//! - the dynamic section, ended by `DT_NULL`; its string, symbol, hash, version and relocation
//!   tables and its init/fini arrays inside a loadable segment's file contents; every name it
//!   gives (needed libraries, symbols, versions) inside the string table; every hash chain, and
//!   every relocation's target and symbol, inside the tables and segments;
//! - the section headers, and each section with contents inside the file.
//!
//! This catches every truncated file and the mixed files an in-place overwrite leaves behind,
//! but it is not a proof that `dlopen` survives (a library's constructors run arbitrary code):
//! for that, a load can ask for a pre-flight `dlopen` in a child process (`preflight`).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// ELF type of a shared object (and of a position-independent executable).
const ET_DYN: u16 = 3;
/// Program header types.
const PT_NULL: u32 = 0;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
const PT_TLS: u32 = 7;
const PT_GNU_EH_FRAME: u32 = 0x6474_e550;
const PT_GNU_STACK: u32 = 0x6474_e551;
const PT_GNU_RELRO: u32 = 0x6474_e552;
const PT_GNU_PROPERTY: u32 = 0x6474_e553;
/// Section types with no header or no contents in the file.
const SHT_NULL: u32 = 0;
const SHT_NOBITS: u32 = 8;
/// Section type of a string table.
const SHT_STRTAB: u32 = 3;
/// Section flag: the section is mapped.
const SHF_ALLOC: u64 = 2;
/// Section index escapes.
const SHN_UNDEF: u16 = 0;
const SHN_LORESERVE: u16 = 0xff00;
const SHN_ABS: u16 = 0xfff1;
const SHN_XINDEX: u16 = 0xffff;
/// Symbol type of a thread-local symbol (its value is an offset into the TLS block).
const STT_TLS: u8 = 6;
/// Dynamic section tags.
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_PLTRELSZ: u64 = 2;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_RELA: u64 = 7;
const DT_RELASZ: u64 = 8;
const DT_RELAENT: u64 = 9;
const DT_STRSZ: u64 = 10;
const DT_SYMENT: u64 = 11;
const DT_INIT: u64 = 12;
const DT_FINI: u64 = 13;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_REL: u64 = 17;
const DT_RELSZ: u64 = 18;
const DT_RELENT: u64 = 19;
const DT_PLTREL: u64 = 20;
const DT_JMPREL: u64 = 23;
const DT_INIT_ARRAY: u64 = 25;
const DT_FINI_ARRAY: u64 = 26;
const DT_INIT_ARRAYSZ: u64 = 27;
const DT_FINI_ARRAYSZ: u64 = 28;
const DT_RUNPATH: u64 = 29;
const DT_PREINIT_ARRAY: u64 = 32;
const DT_PREINIT_ARRAYSZ: u64 = 33;
const DT_RELRSZ: u64 = 35;
const DT_RELR: u64 = 36;
const DT_RELRENT: u64 = 37;
const DT_GNU_HASH: u64 = 0x6fff_fef5;
const DT_VERSYM: u64 = 0x6fff_fff0;
const DT_VERDEF: u64 = 0x6fff_fffc;
const DT_VERDEFNUM: u64 = 0x6fff_fffd;
const DT_VERNEED: u64 = 0x6fff_fffe;
const DT_VERNEEDNUM: u64 = 0x6fff_ffff;
/// Sizes of ELF64 structures.
const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const SHDR_SIZE: usize = 64;
const DYN_SIZE: u64 = 16;
const SYM_SIZE: u64 = 24;
const RELA_SIZE: u64 = 24;
const REL_SIZE: u64 = 16;
/// More entries than any real table has: a larger count means garbage, not a big library.
const MAX_ENTRIES: u64 = 1 << 26;

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

/// Checks that `file` is a 64-bit shared object for this machine, whole and consistent; returns
/// how many `PT_LOAD` segments it has (0 on a 32-bit host, which leaves the layout to
/// `dlopen`): what mapping it costs.
///
/// `Err` holds the reason, in words: it starts with "truncated" when something the loader
/// would read lies past the end of the file, with "corrupt" when the file contradicts itself.
/// An I/O error reading the file is a reason too.
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
    let image = Image {
        file,
        size,
        field: Fields { little },
    };
    let field = image.field;
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
    let segments = program_headers(&image, &ehdr)?;
    let layout = Layout::new(&segments)?;
    layout.check_segments(&image, &segments)?;
    let dynamic = segments
        .iter()
        .find(|s| s.kind == PT_DYNAMIC)
        .ok_or("corrupt: no dynamic section (PT_DYNAMIC)")?;
    Dynamic::read(&image, &layout, dynamic)?.check(&image, &layout)?;
    section_headers(&image, &layout, &ehdr)?;
    Ok(layout.loads.len())
}

/// One program header.
#[derive(Debug, Clone, Copy)]
struct Segment {
    index: usize,
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
}

/// Reads the program headers, checking that the table lies inside the file.
fn program_headers(image: &Image<'_>, ehdr: &[u8]) -> Result<Vec<Segment>, String> {
    let field = image.field;
    let phoff = field.u64(ehdr, 32);
    let phentsize = usize::from(field.u16(ehdr, 54));
    let phnum = usize::from(field.u16(ehdr, 56));
    if phentsize != PHDR_SIZE {
        return Err(format!(
            "program headers of {phentsize} bytes, not {PHDR_SIZE}"
        ));
    }
    let table = image
        .read(phoff, (phnum * PHDR_SIZE) as u64)
        .map_err(|e| e.describe("its program headers"))?;
    Ok(table
        .chunks_exact(PHDR_SIZE)
        .enumerate()
        .map(|(index, ph)| Segment {
            index,
            kind: field.u32(ph, 0),
            offset: field.u64(ph, 8),
            vaddr: field.u64(ph, 16),
            filesz: field.u64(ph, 32),
            memsz: field.u64(ph, 40),
        })
        .collect())
}

/// Where the loadable segments put the file in memory: what the loader maps.
struct Layout {
    loads: Vec<Segment>,
}

impl Layout {
    /// Checks the loadable segments: inside the file, in address order, file within memory.
    fn new(segments: &[Segment]) -> Result<Layout, String> {
        let loads: Vec<Segment> = segments
            .iter()
            .filter(|s| s.kind == PT_LOAD)
            .copied()
            .collect();
        if loads.is_empty() {
            return Err("no loadable segment".into());
        }
        let mut previous_end = 0;
        for load in &loads {
            if load.filesz > load.memsz {
                return Err(format!(
                    "corrupt: segment {} has {} bytes in the file but only {} in memory",
                    load.index, load.filesz, load.memsz
                ));
            }
            let Some(end) = load.vaddr.checked_add(load.memsz) else {
                return Err(format!(
                    "corrupt: segment {} wraps around the address space",
                    load.index
                ));
            };
            if load.vaddr < previous_end {
                return Err(format!(
                    "corrupt: loadable segment {} is out of address order or overlaps the one \
                     before",
                    load.index
                ));
            }
            previous_end = end;
        }
        Ok(Layout { loads })
    }

    /// Checks every segment's file range, and that what the loader reads from memory lies in
    /// a loadable segment.
    fn check_segments(&self, image: &Image<'_>, segments: &[Segment]) -> Result<(), String> {
        let mut dynamics = 0;
        for s in segments {
            if s.kind == PT_NULL || s.kind == PT_GNU_STACK {
                continue;
            }
            if s.filesz > 0 {
                image
                    .within(s.offset, s.filesz)
                    .map_err(|e| e.describe(&format!("segment {}", s.index)))?;
            }
            let what = match s.kind {
                PT_DYNAMIC => "the dynamic section",
                PT_INTERP => "the interpreter name",
                PT_NOTE => "a note segment",
                PT_TLS => "the TLS image",
                PT_GNU_EH_FRAME => "the unwind table header",
                PT_GNU_PROPERTY => "the property note",
                PT_GNU_RELRO => "the RELRO range",
                _ => continue,
            };
            if s.kind == PT_DYNAMIC {
                dynamics += 1;
            }
            if s.filesz == 0 && s.kind != PT_GNU_RELRO {
                continue;
            }
            // The loader reads these through the mapping: they must be mapped from the file,
            // at the same place. RELRO only needs to be mapped (it is mprotected).
            let inside = if s.kind == PT_GNU_RELRO {
                self.loads
                    .iter()
                    .any(|l| contains(l.vaddr, l.memsz, s.vaddr, s.memsz))
            } else {
                self.loads.iter().any(|l| {
                    contains(l.vaddr, l.filesz, s.vaddr, s.filesz)
                        && s.offset.wrapping_sub(l.offset) == s.vaddr.wrapping_sub(l.vaddr)
                })
            };
            if !inside {
                return Err(format!(
                    "corrupt: {what} (segment {}) is not inside a loadable segment",
                    s.index
                ));
            }
        }
        if dynamics > 1 {
            return Err(format!("corrupt: {dynamics} dynamic sections (PT_DYNAMIC)"));
        }
        Ok(())
    }

    /// The file offset of `len` bytes at address `addr`, if a loadable segment maps them from
    /// the file.
    fn file_offset(&self, addr: u64, len: u64) -> Option<u64> {
        self.loads
            .iter()
            .find(|l| contains(l.vaddr, l.filesz, addr, len))
            .map(|l| l.offset + (addr - l.vaddr))
    }

    /// True when `len` bytes at `addr` are mapped (from the file or zero-filled).
    fn mapped(&self, addr: u64, len: u64) -> bool {
        self.loads
            .iter()
            .any(|l| contains(l.vaddr, l.memsz, addr, len))
    }

    /// Reads `len` bytes at address `addr` from the file, checking that the loader maps them
    /// from the file. `what` names them for the error.
    fn read(&self, image: &Image<'_>, addr: u64, len: u64, what: &str) -> Result<Vec<u8>, String> {
        let Some(offset) = self.file_offset(addr, len) else {
            return Err(format!(
                "corrupt: {what} ({len} bytes at address {addr:#x}) is not inside a loadable \
                 segment"
            ));
        };
        image.read(offset, len).map_err(|e| e.describe(what))
    }
}

/// True when `[start, start + len)` lies inside `[base, base + size)`.
fn contains(base: u64, size: u64, start: u64, len: u64) -> bool {
    match (base.checked_add(size), start.checked_add(len)) {
        (Some(end), Some(last)) => start >= base && last <= end,
        _ => false,
    }
}

/// The dynamic section's entries that the loader follows.
#[derive(Default)]
struct Dynamic {
    /// Every entry before `DT_NULL`, in order.
    entries: Vec<(u64, u64)>,
}

impl Dynamic {
    fn read(image: &Image<'_>, layout: &Layout, segment: &Segment) -> Result<Dynamic, String> {
        let bytes = layout.read(image, segment.vaddr, segment.filesz, "the dynamic section")?;
        let field = image.field;
        let mut entries = Vec::new();
        for entry in bytes.chunks_exact(DYN_SIZE as usize) {
            let tag = field.u64(entry, 0);
            if tag == DT_NULL {
                return Ok(Dynamic { entries });
            }
            entries.push((tag, field.u64(entry, 8)));
        }
        Err("corrupt: the dynamic section has no DT_NULL end".into())
    }

    /// The value of the first entry with `tag`.
    fn get(&self, tag: u64) -> Option<u64> {
        self.entries
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| *v)
    }

    /// The value of `tag`, which must be present.
    fn need(&self, tag: u64, name: &str) -> Result<u64, String> {
        self.get(tag)
            .ok_or_else(|| format!("corrupt: the dynamic section has no {name}"))
    }

    fn check(&self, image: &Image<'_>, layout: &Layout) -> Result<(), String> {
        let strings = Strings::read(image, layout, self)?;
        for (tag, value) in &self.entries {
            let what = match *tag {
                DT_NEEDED => "a needed library's name (DT_NEEDED)",
                DT_SONAME => "the library's name (DT_SONAME)",
                DT_RPATH => "the search path (DT_RPATH)",
                DT_RUNPATH => "the search path (DT_RUNPATH)",
                _ => continue,
            };
            strings.name(*value, what)?;
        }
        for (tag, name) in [(DT_INIT, "DT_INIT"), (DT_FINI, "DT_FINI")] {
            if let Some(addr) = self.get(tag) {
                if !layout.mapped(addr, 1) {
                    return Err(format!(
                        "corrupt: {name} ({addr:#x}) is not inside a loadable segment"
                    ));
                }
            }
        }
        for (tag, size_tag, name) in [
            (DT_INIT_ARRAY, DT_INIT_ARRAYSZ, "DT_INIT_ARRAY"),
            (DT_FINI_ARRAY, DT_FINI_ARRAYSZ, "DT_FINI_ARRAY"),
            (DT_PREINIT_ARRAY, DT_PREINIT_ARRAYSZ, "DT_PREINIT_ARRAY"),
        ] {
            if let Some(addr) = self.get(tag) {
                let len = self.get(size_tag).unwrap_or(0);
                if !layout.mapped(addr, len) {
                    return Err(format!(
                        "corrupt: {name} ({len} bytes at {addr:#x}) is not inside a loadable \
                         segment"
                    ));
                }
            }
        }
        if let Some(size) = self.get(DT_SYMENT) {
            if size != SYM_SIZE {
                return Err(format!(
                    "corrupt: symbols of {size} bytes (DT_SYMENT), not {SYM_SIZE}"
                ));
            }
        }
        let symtab = self.need(DT_SYMTAB, "symbol table (DT_SYMTAB)")?;
        let mut symbols = match (self.get(DT_GNU_HASH), self.get(DT_HASH)) {
            (Some(addr), _) => gnu_hash(image, layout, addr)?,
            (None, Some(addr)) => sysv_hash(image, layout, addr)?,
            (None, None) => {
                return Err("corrupt: the dynamic section has no symbol hash table".into());
            }
        };
        // Also what DT_HASH counts, when both are there: glibc reads DT_HASH's count too.
        if let (Some(_), Some(addr)) = (self.get(DT_GNU_HASH), self.get(DT_HASH)) {
            symbols = symbols.max(sysv_hash(image, layout, addr)?);
        }
        let relocations = self.relocations(image, layout)?;
        symbols = symbols.max(relocations.most_symbols);
        let table = layout.read(
            image,
            symtab,
            symbols
                .checked_mul(SYM_SIZE)
                .ok_or("corrupt: symbol count")?,
            "the symbol table",
        )?;
        for (i, sym) in table.chunks_exact(SYM_SIZE as usize).enumerate() {
            strings.name(
                u64::from(image.field.u32(sym, 0)),
                &format!("symbol {i}'s name"),
            )?;
            let kind = sym[4] & 0xf;
            let section = image.field.u16(sym, 6);
            let value = image.field.u64(sym, 8);
            let defined = section != SHN_UNDEF && section != SHN_ABS && section < SHN_LORESERVE;
            // `_end`-like symbols sit right after the last byte: a length of 0 is enough.
            if defined && kind != STT_TLS && !layout.mapped(value, 0) {
                return Err(format!(
                    "corrupt: symbol {i} ({value:#x}) is not inside a loadable segment"
                ));
            }
        }
        if let Some(versym) = self.get(DT_VERSYM) {
            layout.read(
                image,
                versym,
                symbols * 2,
                "the symbol versions (DT_VERSYM)",
            )?;
        }
        if let Some(addr) = self.get(DT_VERDEF) {
            let count = self.need(DT_VERDEFNUM, "DT_VERDEFNUM")?;
            versions(image, layout, &strings, addr, count, Versions::Defined)?;
        }
        if let Some(addr) = self.get(DT_VERNEED) {
            let count = self.need(DT_VERNEEDNUM, "DT_VERNEEDNUM")?;
            versions(image, layout, &strings, addr, count, Versions::Needed)?;
        }
        Ok(())
    }

    /// Checks every relocation table: each target mapped, each symbol index counted.
    fn relocations(&self, image: &Image<'_>, layout: &Layout) -> Result<Relocations, String> {
        let mut found = Relocations::default();
        if let Some(addr) = self.get(DT_RELA) {
            let len = self.need(DT_RELASZ, "DT_RELASZ")?;
            if let Some(entry) = self.get(DT_RELAENT) {
                if entry != RELA_SIZE {
                    return Err(format!("corrupt: DT_RELAENT is {entry}, not {RELA_SIZE}"));
                }
            }
            found.table(image, layout, addr, len, RELA_SIZE, "DT_RELA")?;
        }
        if let Some(addr) = self.get(DT_REL) {
            let len = self.need(DT_RELSZ, "DT_RELSZ")?;
            if let Some(entry) = self.get(DT_RELENT) {
                if entry != REL_SIZE {
                    return Err(format!("corrupt: DT_RELENT is {entry}, not {REL_SIZE}"));
                }
            }
            found.table(image, layout, addr, len, REL_SIZE, "DT_REL")?;
        }
        if let Some(addr) = self.get(DT_JMPREL) {
            let len = self.need(DT_PLTRELSZ, "DT_PLTRELSZ")?;
            let entry = match self.get(DT_PLTREL) {
                Some(DT_REL) => REL_SIZE,
                Some(DT_RELA) | None => RELA_SIZE,
                Some(other) => return Err(format!("corrupt: DT_PLTREL is {other}")),
            };
            found.table(image, layout, addr, len, entry, "DT_JMPREL")?;
        }
        if let Some(addr) = self.get(DT_RELR) {
            let len = self.need(DT_RELRSZ, "DT_RELRSZ")?;
            if let Some(entry) = self.get(DT_RELRENT) {
                if entry != 8 {
                    return Err(format!("corrupt: DT_RELRENT is {entry}, not 8"));
                }
            }
            relr(image, layout, addr, len)?;
        }
        Ok(found)
    }
}

/// What the relocation tables ask of the symbol table.
#[derive(Default)]
struct Relocations {
    /// One more than the largest symbol index a relocation names.
    most_symbols: u64,
}

impl Relocations {
    /// Checks one `REL` or `RELA` table of `len` bytes at `addr`.
    fn table(
        &mut self,
        image: &Image<'_>,
        layout: &Layout,
        addr: u64,
        len: u64,
        entry: u64,
        name: &str,
    ) -> Result<(), String> {
        if len % entry != 0 || len / entry > MAX_ENTRIES {
            return Err(format!(
                "corrupt: {name} is {len} bytes, not a plausible number of {entry}-byte entries"
            ));
        }
        let table = layout.read(image, addr, len, &format!("the relocations ({name})"))?;
        for (i, rel) in table.chunks_exact(entry as usize).enumerate() {
            let target = image.field.u64(rel, 0);
            let symbol = image.field.u64(rel, 8) >> 32;
            if !layout.mapped(target, 8) {
                return Err(format!(
                    "corrupt: relocation {i} of {name} writes at {target:#x}, outside every \
                     loadable segment"
                ));
            }
            if symbol >= MAX_ENTRIES {
                return Err(format!(
                    "corrupt: relocation {i} of {name} names symbol {symbol}"
                ));
            }
            self.most_symbols = self.most_symbols.max(symbol + 1);
        }
        Ok(())
    }
}

/// Checks a `DT_RELR` table: every address it relocates is mapped.
fn relr(image: &Image<'_>, layout: &Layout, addr: u64, len: u64) -> Result<(), String> {
    if len % 8 != 0 || len / 8 > MAX_ENTRIES {
        return Err(format!("corrupt: DT_RELR is {len} bytes"));
    }
    let table = layout.read(image, addr, len, "the relocations (DT_RELR)")?;
    let mut next = 0u64;
    for (i, word) in table.chunks_exact(8).enumerate() {
        let word = image.field.u64(word, 0);
        let bad = |at: u64| {
            format!(
                "corrupt: entry {i} of DT_RELR relocates {at:#x}, outside every loadable segment"
            )
        };
        if word & 1 == 0 {
            if !layout.mapped(word, 8) {
                return Err(bad(word));
            }
            next = word.wrapping_add(8);
        } else {
            for bit in 1..64 {
                if word >> bit & 1 == 1 {
                    let at = next.wrapping_add((bit - 1) * 8);
                    if !layout.mapped(at, 8) {
                        return Err(bad(at));
                    }
                }
            }
            next = next.wrapping_add(63 * 8);
        }
    }
    Ok(())
}

/// Checks a `DT_GNU_HASH` table; returns how many symbols it reaches.
fn gnu_hash(image: &Image<'_>, layout: &Layout, addr: u64) -> Result<u64, String> {
    let what = "the symbol hash table (DT_GNU_HASH)";
    let field = image.field;
    let head = layout.read(image, addr, 16, what)?;
    let buckets = u64::from(field.u32(&head, 0));
    let first = u64::from(field.u32(&head, 4));
    let bloom = u64::from(field.u32(&head, 8));
    let shift = field.u32(&head, 12);
    // glibc divides by the bucket count and masks with the bloom size minus one.
    if buckets == 0 || bloom == 0 || !bloom.is_power_of_two() || shift >= 64 {
        return Err(format!(
            "corrupt: {what} has {buckets} buckets, {bloom} bloom words, shift {shift}"
        ));
    }
    if buckets > MAX_ENTRIES || bloom > MAX_ENTRIES || first > MAX_ENTRIES {
        return Err(format!("corrupt: {what} is implausibly large"));
    }
    let buckets_at = addr + 16 + bloom * 8;
    let table = layout.read(image, buckets_at, buckets * 4, what)?;
    let chains_at = buckets_at + buckets * 4;
    let mut symbols = first;
    let mut last = 0;
    for bucket in table.chunks_exact(4) {
        let start = u64::from(field.u32(bucket, 0));
        if start == 0 {
            continue;
        }
        if start < first {
            return Err(format!(
                "corrupt: {what} has a bucket starting at symbol {start}, below {first}"
            ));
        }
        last = last.max(start);
    }
    if last > 0 {
        // Every chain ends where the next begins, so walking on from the last start reaches the
        // end of the last chain; each chain word read is checked on the way.
        let mut index = last;
        loop {
            if index - first > MAX_ENTRIES {
                return Err(format!("corrupt: {what} has an endless chain"));
            }
            let word = layout.read(image, chains_at + (index - first) * 4, 4, what)?;
            if field.u32(&word, 0) & 1 == 1 {
                break;
            }
            index += 1;
        }
        symbols = index + 1;
    }
    Ok(symbols)
}

/// Checks a `DT_HASH` table; returns how many symbols it counts.
fn sysv_hash(image: &Image<'_>, layout: &Layout, addr: u64) -> Result<u64, String> {
    let what = "the symbol hash table (DT_HASH)";
    let field = image.field;
    let head = layout.read(image, addr, 8, what)?;
    let buckets = u64::from(field.u32(&head, 0));
    let chains = u64::from(field.u32(&head, 4));
    if buckets == 0 || buckets > MAX_ENTRIES || chains > MAX_ENTRIES {
        return Err(format!(
            "corrupt: {what} has {buckets} buckets and {chains} chain entries"
        ));
    }
    let table = layout.read(image, addr + 8, (buckets + chains) * 4, what)?;
    for word in table.chunks_exact(4) {
        if u64::from(field.u32(word, 0)) >= chains {
            return Err(format!("corrupt: {what} names a symbol past its {chains}"));
        }
    }
    Ok(chains)
}

/// Which version table.
#[derive(Clone, Copy)]
enum Versions {
    Defined,
    Needed,
}

/// Walks `DT_VERDEF` or `DT_VERNEED` as the loader does: `count` entries linked by offsets,
/// each with its auxiliary entries, every name inside the string table.
fn versions(
    image: &Image<'_>,
    layout: &Layout,
    strings: &Strings,
    addr: u64,
    count: u64,
    kind: Versions,
) -> Result<(), String> {
    let what = match kind {
        Versions::Defined => "the version definitions (DT_VERDEF)",
        Versions::Needed => "the version needs (DT_VERNEED)",
    };
    if count > 0xffff {
        return Err(format!("corrupt: {what} counts {count} entries"));
    }
    let field = image.field;
    let mut at = addr;
    for _ in 0..count {
        // Elf64_Verdef: version, flags, ndx, cnt (u16 each), hash, aux, next (u32 each).
        // Elf64_Verneed: version, cnt (u16 each), file, aux, next (u32 each).
        let (aux_count, aux_offset, next) = match kind {
            Versions::Defined => {
                let e = layout.read(image, at, 20, what)?;
                (field.u16(&e, 6), field.u32(&e, 12), field.u32(&e, 16))
            }
            Versions::Needed => {
                let e = layout.read(image, at, 16, what)?;
                strings.name(u64::from(field.u32(&e, 4)), what)?;
                (field.u16(&e, 2), field.u32(&e, 8), field.u32(&e, 12))
            }
        };
        // Elf64_Verdaux: name, next; Elf64_Vernaux: hash, flags, other, name, next.
        let (len, name_at, next_at) = match kind {
            Versions::Defined => (8, 0, 4),
            Versions::Needed => (16, 8, 12),
        };
        let mut aux = at.wrapping_add(u64::from(aux_offset));
        for _ in 0..aux_count {
            let e = layout.read(image, aux, len, what)?;
            strings.name(u64::from(field.u32(&e, name_at)), what)?;
            let step = field.u32(&e, next_at);
            if step == 0 {
                break;
            }
            aux = aux.wrapping_add(u64::from(step));
        }
        if next == 0 {
            break;
        }
        at = at.wrapping_add(u64::from(next));
    }
    Ok(())
}

/// The dynamic string table, read once.
struct Strings {
    bytes: Vec<u8>,
}

impl Strings {
    fn read(image: &Image<'_>, layout: &Layout, dynamic: &Dynamic) -> Result<Strings, String> {
        let addr = dynamic.need(DT_STRTAB, "string table (DT_STRTAB)")?;
        let len = dynamic.need(DT_STRSZ, "string table size (DT_STRSZ)")?;
        if len == 0 || len > MAX_ENTRIES * 16 {
            return Err(format!("corrupt: a string table of {len} bytes"));
        }
        let bytes = layout.read(image, addr, len, "the string table")?;
        Ok(Strings { bytes })
    }

    /// Checks that a NUL-terminated name starts at `offset`, inside the table.
    fn name(&self, offset: u64, what: &str) -> Result<(), String> {
        let rest = usize::try_from(offset)
            .ok()
            .and_then(|start| self.bytes.get(start..));
        match rest {
            Some(rest) if rest.contains(&0) => Ok(()),
            _ => Err(format!(
                "corrupt: {what} is not a string of the string table (offset {offset} of {})",
                self.bytes.len()
            )),
        }
    }
}

/// Checks the section headers, and that every section with contents lies inside the file.
/// The loader never reads them, but a file cut short loses them first: they are at its end.
fn section_headers(image: &Image<'_>, layout: &Layout, ehdr: &[u8]) -> Result<(), String> {
    let field = image.field;
    let shoff = field.u64(ehdr, 40);
    let shentsize = usize::from(field.u16(ehdr, 58));
    let mut shnum = u64::from(field.u16(ehdr, 60));
    let shstrndx = field.u16(ehdr, 62);
    if shoff == 0 {
        return Ok(());
    }
    if shentsize != SHDR_SIZE {
        return Err(format!(
            "section headers of {shentsize} bytes, not {SHDR_SIZE}"
        ));
    }
    let first = image
        .read(shoff, SHDR_SIZE as u64)
        .map_err(|e| e.describe("its section headers"))?;
    if shnum == 0 {
        // Extended numbering: the count is in the first header's size.
        shnum = field.u64(&first, 32);
    }
    if shnum > MAX_ENTRIES {
        return Err(format!("corrupt: {shnum} section headers"));
    }
    let table = image
        .read(shoff, shnum * SHDR_SIZE as u64)
        .map_err(|e| e.describe("its section headers"))?;
    let names = if shstrndx == SHN_XINDEX {
        u64::from(field.u32(&first, 40))
    } else {
        u64::from(shstrndx)
    };
    if names >= shnum && shstrndx != SHN_UNDEF {
        return Err(format!(
            "corrupt: the section name table is section {names} of {shnum}"
        ));
    }
    for (i, sh) in table.chunks_exact(SHDR_SIZE).enumerate() {
        let kind = field.u32(sh, 4);
        if kind == SHT_NULL || kind == SHT_NOBITS {
            continue;
        }
        let offset = field.u64(sh, 24);
        let len = field.u64(sh, 32);
        image
            .within(offset, len)
            .map_err(|e| e.describe(&format!("section {i}")))?;
        // A section the loader maps lies in a loadable segment, at the same place in memory
        // as in the file: headers that disagree with the program headers are another file's.
        let flags = field.u64(sh, 8);
        let addr = field.u64(sh, 16);
        if flags & SHF_ALLOC != 0 && len > 0 {
            let placed = layout.loads.iter().any(|l| {
                contains(l.offset, l.filesz, offset, len)
                    && offset.wrapping_sub(l.offset) == addr.wrapping_sub(l.vaddr)
            });
            if !placed {
                return Err(format!(
                    "corrupt: section {i} is not where the program headers map it"
                ));
            }
        }
    }
    if shstrndx == SHN_UNDEF {
        return Ok(());
    }
    // The section names: a string table, and every name inside it.
    let at = names as usize * SHDR_SIZE;
    let header = &table[at..at + SHDR_SIZE];
    if field.u32(header, 4) != SHT_STRTAB {
        return Err(format!(
            "corrupt: the section name table (section {names}) is not a string table"
        ));
    }
    let names_len = field.u64(header, 32);
    for (i, sh) in table.chunks_exact(SHDR_SIZE).enumerate().skip(1) {
        let name = u64::from(field.u32(sh, 0));
        if name >= names_len {
            return Err(format!(
                "corrupt: section {i}'s name is at {name}, past the {names_len}-byte name table"
            ));
        }
    }
    Ok(())
}

/// The file being checked, read at offsets, never past its end.
struct Image<'a> {
    file: &'a File,
    size: u64,
    field: Fields,
}

/// Why a range of the file could not be read.
enum Missing {
    /// It ends past the end of the file.
    PastEnd { end: Option<u64>, size: u64 },
    /// Reading failed.
    Io(String),
}

impl Missing {
    fn describe(self, what: &str) -> String {
        match self {
            Missing::PastEnd {
                end: Some(end),
                size,
            } => format!("truncated: {what} needs bytes up to {end}, the file has {size}"),
            Missing::PastEnd { end: None, .. } => {
                format!("corrupt: {what} lies beyond any file size")
            }
            Missing::Io(e) => e,
        }
    }
}

impl Image<'_> {
    /// Checks that `len` bytes at `offset` are inside the file.
    fn within(&self, offset: u64, len: u64) -> Result<(), Missing> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            end => Err(Missing::PastEnd {
                end,
                size: self.size,
            }),
        }
    }

    /// Reads `len` bytes at `offset`, all inside the file.
    fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, Missing> {
        self.within(offset, len)?;
        let len = usize::try_from(len).map_err(|_| Missing::PastEnd {
            end: None,
            size: self.size,
        })?;
        let mut buf = vec![0u8; len];
        let read = read_at(self.file, &mut buf, offset).map_err(Missing::Io)?;
        if read < len {
            // The file shrank while it was being checked.
            return Err(Missing::PastEnd {
                end: Some(offset + len as u64),
                size: offset + read as u64,
            });
        }
        Ok(buf)
    }
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
#[derive(Clone, Copy)]
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

/// The shared objects this process has mapped (the C library, libgcc_s and the like), for tests.
#[cfg(test)]
pub(crate) fn mapped_libraries() -> Vec<std::path::PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mut found: Vec<std::path::PathBuf> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.starts_with('/') && p.contains(".so"))
        .map(Into::into)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The bytes of the one mapped library whose name contains `name`, for tests.
#[cfg(test)]
fn library_bytes(name: &str) -> Vec<u8> {
    let path = mapped_libraries()
        .into_iter()
        .find(|p| p.to_string_lossy().contains(name))
        .unwrap_or_else(|| panic!("no {name} mapped"));
    std::fs::read(path).unwrap()
}

/// A real shared object for tests: the bytes of the C library this process runs with.
#[cfg(test)]
pub(crate) fn libc_bytes() -> Vec<u8> {
    library_bytes("libc.so")
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

    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    fn put_u64(b: &mut [u8], at: usize, value: u64) {
        b[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    /// The file offset of each program header of `kind`.
    fn headers_of(b: &[u8], kind: u32) -> Vec<usize> {
        let phoff = u64_at(b, 32) as usize;
        let phnum = usize::from(u16::from_le_bytes([b[56], b[57]]));
        (0..phnum)
            .map(|i| phoff + i * PHDR_SIZE)
            .filter(|at| u32::from_le_bytes(b[*at..*at + 4].try_into().unwrap()) == kind)
            .collect()
    }

    /// The file offset of the address `addr`, through the loadable segments.
    fn offset_of(b: &[u8], addr: u64) -> usize {
        headers_of(b, PT_LOAD)
            .into_iter()
            .find_map(|ph| {
                let (offset, vaddr, filesz) =
                    (u64_at(b, ph + 8), u64_at(b, ph + 16), u64_at(b, ph + 32));
                (addr >= vaddr && addr < vaddr + filesz).then(|| (offset + addr - vaddr) as usize)
            })
            .unwrap()
    }

    /// The file offset of the dynamic entry with `tag`, and its value.
    fn dynamic_entry(b: &[u8], tag: u64) -> (usize, u64) {
        let ph = headers_of(b, PT_DYNAMIC)[0];
        let start = u64_at(b, ph + 8) as usize;
        (start..)
            .step_by(16)
            .take_while(|at| u64_at(b, *at) != DT_NULL)
            .find(|at| u64_at(b, *at) == tag)
            .map(|at| (at, u64_at(b, at + 8)))
            .unwrap_or_else(|| panic!("no dynamic entry {tag:#x}"))
    }

    #[test]
    fn accepts_every_library_this_process_maps() {
        let libraries = mapped_libraries();
        assert!(libraries.len() >= 2, "{libraries:?}");
        for library in libraries {
            let file = File::open(&library).unwrap();
            let loads = check(&file).unwrap_or_else(|e| panic!("{}: {e}", library.display()));
            // glibc has four PT_LOAD segments (r, r-x, r, rw-); every library has one at least.
            assert!((1..=16).contains(&loads), "{}: {loads}", library.display());
        }
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
    fn refuses_a_library_cut_short_anywhere() {
        let lib = libc_bytes();
        // Cuts inside the loadable segments, and in the tail, which holds only section data
        // and the section headers: what a writer leaves when it pauses at 90 % of the file.
        let cuts = [100, 4096, 65536]
            .into_iter()
            .chain((1..100).map(|pct| lib.len() * pct / 100));
        for len in cuts.chain([lib.len() - 1]) {
            let err = check_bytes(&lib[..len]).unwrap_err();
            assert!(
                err.starts_with("truncated"),
                "{len} of {}: {err}",
                lib.len()
            );
        }
    }

    #[test]
    fn refuses_a_library_half_overwritten_in_place_by_another() {
        // What `open(O_WRONLY)` and a paused writer leave: the new file's first part over the
        // old file, whose tail is still there.
        let old = library_bytes("libgcc_s");
        let new = libc_bytes();
        for (over, under) in [(&new, &old), (&old, &new)] {
            for pct in 1..100 {
                let written = over.len() * pct / 100;
                let mut mixed = under.to_vec();
                if mixed.len() < written {
                    mixed.resize(written, 0);
                }
                mixed[..written].copy_from_slice(&over[..written]);
                assert!(check_bytes(&mixed).is_err(), "{pct} % written was accepted");
            }
        }
    }

    #[test]
    fn refuses_dynamic_tables_outside_the_mapped_file() {
        let lib = libc_bytes();
        for (tag, expected) in [
            (DT_STRTAB, "corrupt: the string table"),
            (DT_SYMTAB, "corrupt: the symbol table"),
            (DT_GNU_HASH, "corrupt: the symbol hash table (DT_GNU_HASH)"),
            (DT_VERSYM, "corrupt: the symbol versions"),
        ] {
            let mut bad = lib.clone();
            let (at, _) = dynamic_entry(&bad, tag);
            put_u64(&mut bad, at + 8, 0x7fff_0000_0000);
            let err = check_bytes(&bad).unwrap_err();
            assert!(err.starts_with(expected), "{tag:#x}: {err}");
            assert!(err.contains("is not inside a loadable segment"), "{err}");
        }
        // A string table longer than the file.
        let mut bad = lib.clone();
        let (at, _) = dynamic_entry(&bad, DT_STRSZ);
        put_u64(&mut bad, at + 8, lib.len() as u64);
        let err = check_bytes(&bad).unwrap_err();
        assert!(err.starts_with("corrupt: the string table"), "{err}");
    }

    #[test]
    fn refuses_what_would_crash_the_dynamic_linker() {
        let lib = libc_bytes();
        // A GNU hash table with no buckets: glibc divides by the bucket count (SIGFPE).
        let mut bad = lib.clone();
        let (_, hash) = dynamic_entry(&bad, DT_GNU_HASH);
        let at = offset_of(&bad, hash);
        bad[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
        let err = check_bytes(&bad).unwrap_err();
        assert!(err.contains("has 0 buckets"), "{err}");

        // A relocation that would write far outside the library.
        let mut bad = lib.clone();
        let (_, rela) = dynamic_entry(&bad, DT_RELA);
        let at = offset_of(&bad, rela);
        put_u64(&mut bad, at, 0x7fff_0000_0000);
        let err = check_bytes(&bad).unwrap_err();
        assert!(
            err.contains("relocation 0 of DT_RELA writes at 0x7fff00000000"),
            "{err}"
        );

        // A needed library's name outside the string table.
        let mut bad = lib.clone();
        let (at, _) = dynamic_entry(&bad, DT_NEEDED);
        put_u64(&mut bad, at + 8, 1 << 40);
        let err = check_bytes(&bad).unwrap_err();
        assert!(err.contains("DT_NEEDED"), "{err}");

        // A dynamic section that stops before its DT_NULL.
        let mut bad = lib.clone();
        let ph = headers_of(&bad, PT_DYNAMIC)[0];
        put_u64(&mut bad, ph + 32, 16);
        let err = check_bytes(&bad).unwrap_err();
        assert_eq!(err, "corrupt: the dynamic section has no DT_NULL end");

        // The dynamic section outside every loadable segment.
        let mut bad = lib;
        put_u64(&mut bad, ph + 16, 0x7fff_0000_0000);
        let err = check_bytes(&bad).unwrap_err();
        assert!(err.contains("the dynamic section (segment"), "{err}");
    }

    #[test]
    fn refuses_section_headers_that_are_not_this_files() {
        let lib = libc_bytes();
        // Section headers moved by half an entry: what the old file's headers look like under
        // the new file's ELF header after an in-place overwrite.
        let mut bad = lib.clone();
        let shoff = u64_at(&bad, 40);
        put_u64(&mut bad, 40, shoff - 32);
        let err = check_bytes(&bad).unwrap_err();
        assert!(
            err.starts_with("corrupt: ") && err.contains("section"),
            "{err}"
        );
        // Section headers past the end.
        let mut bad = lib.clone();
        put_u64(&mut bad, 40, lib.len() as u64 - 64);
        let err = check_bytes(&bad).unwrap_err();
        assert!(err.starts_with("truncated: its section headers"), "{err}");
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
