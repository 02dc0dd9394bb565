//! What the plugin exports, read from its dynamic symbol table without running any of its code.
//!
//! The host needs one symbol, `proxyso_plugin`. Anything else a plugin exports can bind another
//! library's references to the plugin's copy (or the other way round), and C++ built with
//! `-fvisibility=hidden` alone still exports every template instantiated from libstdc++'s
//! headers, which keep default visibility. Among them, an `STB_GNU_UNIQUE` symbol (g++'s
//! binding for an inline function's or a template's static, such as the digit table of
//! `std::to_string`) makes glibc never unload the library: `dlclose` succeeds and does nothing.
//! Names are shown demangled (`cpp_demangle`, the demangler of gimli-rs, so that the checker
//! needs no `c++filt` on the machine).

use std::path::Path;

use object::elf;
use object::{Object, ObjectSymbol, SymbolFlags, SymbolSection};

/// The one symbol a plugin must export.
pub const DESCRIPTOR: &str = "proxyso_plugin";

/// The linker version script that exports the descriptor alone.
pub const VERSION_SCRIPT: &str = "{ global: proxyso_plugin; local: *; };";

/// How many of the extra exports a report names.
pub const SHOWN: usize = 5;

/// The plugin's exports, besides the descriptor.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Exports {
    /// Every defined, exported symbol other than `proxyso_plugin`, demangled, in table order
    /// (names that demangle alike counted once).
    pub extra: Vec<String>,
    /// The `STB_GNU_UNIQUE` ones among them, demangled.
    pub unique: Vec<String>,
}

/// Reads the dynamic symbol table of the ELF file at `path`; an error says why it could not.
pub fn read(path: &Path) -> Result<Exports, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let file = object::File::parse(&*bytes).map_err(|e| format!("cannot read its symbols: {e}"))?;
    let mut exports = Exports::default();
    for symbol in file.dynamic_symbols() {
        // Undefined ones are imports; absolute ones are the linker's (version names).
        if !matches!(symbol.section(), SymbolSection::Section(_)) {
            continue;
        }
        let SymbolFlags::Elf { st_info, st_other } = symbol.flags() else {
            continue;
        };
        let binding = st_info >> 4;
        let visibility = st_other & 0x3;
        let exported = matches!(
            binding,
            elf::STB_GLOBAL | elf::STB_WEAK | elf::STB_GNU_UNIQUE
        ) && matches!(visibility, elf::STV_DEFAULT | elf::STV_PROTECTED);
        let Ok(name) = symbol.name() else { continue };
        if !exported || name == DESCRIPTOR || name.is_empty() {
            continue;
        }
        let shown = demangle(name);
        // A constructor's or destructor's variants (C1, C2) read the same: named once.
        if exports.extra.contains(&shown) {
            continue;
        }
        if binding == elf::STB_GNU_UNIQUE {
            exports.unique.push(shown.clone());
        }
        exports.extra.push(shown);
    }
    Ok(exports)
}

/// A C++ symbol demangled; any other name as it is.
pub fn demangle(name: &str) -> String {
    cpp_demangle::Symbol::new(name)
        .ok()
        .and_then(|symbol| {
            // As c++filt shows them: no return type in front of a template's name.
            let options = cpp_demangle::DemangleOptions::new().no_return_type();
            symbol.demangle_with_options(&options).ok()
        })
        .unwrap_or_else(|| name.to_owned())
}

/// "a, b, c and 12 more" for the first [`SHOWN`] of `names`.
pub fn first_few(names: &[String]) -> String {
    let mut shown = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        shown.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    shown
}

/// The sentence that names the `STB_GNU_UNIQUE` symbols and the fix.
pub fn unique_advice(unique: &[String]) -> String {
    let (noun, verb) = if unique.len() == 1 {
        ("symbol", "makes")
    } else {
        ("symbols", "make")
    };
    format!(
        "its STB_GNU_UNIQUE {noun} {} {verb} glibc keep it loaded for good: build with \
         -fno-gnu-unique",
        unique.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangles_cpp_names_and_leaves_others() {
        assert_eq!(
            demangle("_ZZNSt8__detail18__to_chars_10_implImEEvPcjT_E8__digits"),
            "std::__detail::__to_chars_10_impl<unsigned long>(char*, unsigned int, unsigned \
             long)::__digits"
        );
        assert_eq!(demangle("fx_clash_tag"), "fx_clash_tag");
    }

    #[test]
    fn names_the_first_few() {
        let names: Vec<String> = (0..7).map(|i| format!("s{i}")).collect();
        assert_eq!(first_few(&names[..2]), "s0, s1");
        assert_eq!(first_few(&names), "s0, s1, s2, s3, s4 and 2 more");
    }

    #[test]
    fn this_test_binary_is_no_shared_object_but_has_symbols_to_read() {
        // An executable reads as well; a missing file is named as such.
        assert!(read(Path::new("/proc/self/exe")).is_ok());
        let err = read(Path::new("/nonexistent/lib.so")).unwrap_err();
        assert!(err.contains("cannot read it"), "{err}");
    }
}
