//! The contract between `dev.proxyso.NativeBridge` and this library, defined once: exception
//! kinds, log levels, load option bits and the layout of the arrays `LibraryInfo` is built from.
//!
//! The Java side is generated from this file (`cargo run --example java_contract`, which the
//! Gradle build runs before compiling Java): `dev.proxyso.NativeContract` holds each constant as
//! `GROUP_NAME`, so the two sides cannot drift apart.

/// Declares each group as a module of constants and lists them all in `TABLE`.
macro_rules! contract {
    ($(
        $(#[doc = $gdoc:literal])*
        $group:ident: $ty:ty {
            $( $(#[doc = $doc:literal])* $name:ident = $value:expr, )*
        }
    )*) => {
        $(
            $(#[doc = $gdoc])*
            #[allow(dead_code)]
            pub mod $group {
                $( $(#[doc = $doc])* pub const $name: $ty = $value; )*
            }
        )*

        /// Every constant: group, name, value and its doc text.
        #[allow(dead_code)]
        pub const TABLE: &[Constant] = &[
            $( $( Constant {
                group: stringify!($group),
                name: stringify!($name),
                value: $value as i64,
                doc: concat!($($doc,)* ""),
            }, )* )*
        ];
    };
}

/// One constant of the contract.
#[allow(dead_code)]
pub struct Constant {
    /// Its group (`kind`, `option`, ...).
    pub group: &'static str,
    /// Its name within the group.
    pub name: &'static str,
    /// Its value.
    pub value: i64,
    /// What it means.
    pub doc: &'static str,
}

contract! {
    /// The exception `NativeBridge.exception(kind, ...)` builds.
    kind: i32 {
        /// `NoSuchLibraryException`.
        NO_SUCH_LIBRARY = 0,
        /// `LibraryExistsException`.
        LIBRARY_EXISTS = 1,
        /// `LibraryLoadException`.
        LOAD = 2,
        /// `PluginException`: the plugin reported an error.
        PLUGIN_ERROR = 3,
        /// `PluginException`: the plugin panicked or threw.
        PLUGIN_PANIC = 4,
        /// `UnknownMethodException`.
        UNKNOWN_METHOD = 5,
        /// `IllegalArgumentException`.
        ILLEGAL_ARGUMENT = 6,
        /// `ProxySoInternalError`: a bug in the proxy itself.
        INTERNAL = 7,
        /// `IllegalStateException`: a closed handle.
        HANDLE_CLOSED = 8,
        /// `OutputTooSmallException`.
        OUTPUT_TOO_SMALL = 9,
        /// `NoPreviousVersionException`.
        NO_PREVIOUS_VERSION = 10,
        /// `PluginCrashedException`: the worker of an isolated plugin died (or none could
        /// start); the code is the signal shifted left by 16, or'ed with the exit status plus
        /// one (see `crash_code`).
        PLUGIN_CRASHED = 11,
        /// `PluginTimeoutException`: an isolated call ran past its timeout; the code is the
        /// timeout in milliseconds.
        PLUGIN_TIMEOUT = 12,
    }

    /// The level of a log record handed to `NativeBridge.logged`.
    log: i32 {
        /// `SEVERE`.
        ERROR = 1,
        /// `WARNING`.
        WARN = 2,
        /// `INFO`.
        INFO = 3,
        /// `FINE`.
        DEBUG = 4,
    }

    /// Bits of the `options` argument of `NativeBridge.load` and `replace`.
    option: i32 {
        /// `LoadOptions.keepMapped`.
        KEEP_MAPPED = 1,
        /// `LoadOptions.allowSignalHandlers`.
        ALLOW_SIGNAL_HANDLERS = 2,
        /// `LoadOptions.exactTiming`.
        EXACT_TIMING = 4,
        /// `LoadOptions.preflight`: `dlopen` the copy in a child process first.
        PREFLIGHT = 8,
        /// `LoadOptions.isolated`: serve the plugin from a worker process of its own.
        ISOLATED = 16,
        /// `LoadOptions.rollbackOnCrash`: a crash within the probation rolls the key back.
        ROLLBACK_ON_CRASH = 32,
    }

    /// The `keepVersions` argument of `load` and `replace` when the options leave it unset.
    keep_versions: i32 {
        /// Load: the default; replace: what the key keeps now.
        UNCHANGED = -1,
    }

    /// Where each limit of an isolated load stands in the `limits` argument of `load` and
    /// `replace`.
    limits: usize {
        /// `LoadOptions.callTimeout`, nanoseconds; 0 for none.
        CALL_TIMEOUT_NANOS = 0,
        /// `LoadOptions.memoryLimit`, bytes; 0 for none.
        MEMORY_LIMIT = 1,
        /// `LoadOptions.probation`, nanoseconds.
        PROBATION_NANOS = 2,
        /// The array's length.
        LEN = 3,
    }

    /// Which way a `byte[]` call by handle goes, by its input's length (`ExchangeCalls` in Java,
    /// `calls` here).
    byte_calls: usize {
        /// From this many bytes on, a call of a method known to be short pins the arrays
        /// (`NativeBridge.callHandle`, see `pinned`): below it the exchange buffers' two extra
        /// copies cost less than pinning two arrays and making one.
        PIN_FROM = 1024,
        /// The largest input that goes through the exchange buffers.
        EXCHANGE_MAX = 4 << 20,
    }

    /// What the FFM entry points (`proxyso_ffm_call`, `proxyso_ffm_call_direct`) return instead
    /// of an output length, which is 0 or more.
    ffm: i64 {
        /// With the `CACHED` flag: the handle went stale (closed, or its key unloaded).
        STALE = -1,
        /// The call failed; `NativeBridge.ffmThrow()` throws its exception on this thread.
        FAILED = -2,
        /// With the `CRITICAL` flag: the method is not known to be short, so nothing ran; call
        /// again without the flag, through a non-critical downcall.
        NOT_SHORT = -3,
        /// The output of `n` bytes did not fit the array given and waits, on this thread, for
        /// `proxyso_ffm_take`: returned as `SPILLED - n`.
        SPILLED = -4,
    }

    /// Bits of the `flags` argument of the FFM entry points.
    ffm_flag: i32 {
        /// The call is a critical downcall: run the method only if it is known to be short.
        CRITICAL = 1,
        /// For `HandleCache`: a stale handle answers `STALE` rather than an exception.
        CACHED = 2,
    }

    /// Where each of a key's totals stands in `LibraryInfo`'s `keyStats` array.
    key_stats: usize {
        /// Calls that returned.
        CALLS = 0,
        /// Of those, failed.
        FAILED = 1,
        /// Calls running now.
        IN_FLIGHT = 2,
        /// Time in the plugin, nanoseconds.
        TOTAL_NANOS = 3,
        /// The longest call, nanoseconds.
        MAX_NANOS = 4,
        /// Successful replacements.
        REPLACEMENTS = 5,
        /// Successful rollbacks.
        ROLLBACKS = 6,
        /// `destroy` hooks running now.
        DESTROYS_RUNNING = 7,
        /// `destroy` hooks that ran past the slow-destroy limit.
        SLOW_DESTROYS = 8,
        /// Worker processes of isolated versions that died unasked.
        CRASHES = 9,
        /// Not a total: 1 when the serving version is isolated, else 0.
        ISOLATED = 10,
        /// Not a total: the pid of the serving version's worker, 0 if none.
        WORKER_PID = 11,
        /// The array's length.
        LEN = 12,
    }

    /// Where each figure of one generation stands in its stride of `LibraryInfo`'s
    /// `generations` array.
    generation_stats: usize {
        /// Its generation.
        GENERATION = 0,
        /// Calls that returned.
        CALLS = 1,
        /// Of those, failed.
        FAILED = 2,
        /// Calls running now.
        IN_FLIGHT = 3,
        /// Time in the plugin, nanoseconds.
        TOTAL_NANOS = 4,
        /// The longest call, nanoseconds.
        MAX_NANOS = 5,
        /// How long loading it took, nanoseconds.
        LOAD_NANOS = 6,
        /// Times its worker process died unasked.
        CRASHES = 7,
        /// The stride.
        LEN = 8,
    }
}

/// The `code` of a `PLUGIN_CRASHED` exception: `signal << 16 | (exit_status + 1)`, so that
/// both fit (a signal up to 64, an exit status from -1 to 255).
#[allow(dead_code)]
pub fn crash_code(signal: i32, exit_status: i32) -> i32 {
    (signal.clamp(0, 0x7fff) << 16) | (exit_status.clamp(-1, 0xfffe) + 1)
}

/// The Java source of `dev.proxyso.NativeContract`.
#[allow(dead_code)]
pub fn java_source() -> String {
    let mut java = String::from(
        "package dev.proxyso;\n\n\
         /**\n * The contract between {@link NativeBridge} and libproxy.so, generated from the \
         Rust side\n * ({@code src/jni/contract.rs}) by the build: do not edit.\n */\n\
         final class NativeContract {\n",
    );
    for c in TABLE {
        let name = format!("{}_{}", c.group.to_uppercase(), c.name);
        java.push_str(&format!(
            "    /** {} */\n    static final int {name} = {};\n",
            javadoc(c.doc.trim()),
            c.value
        ));
    }
    java.push_str("\n    private NativeContract() {\n    }\n}\n");
    java
}

/// Rust doc text as javadoc: `code` becomes {@code code}.
fn javadoc(doc: &str) -> String {
    let mut out = String::new();
    for (i, part) in doc.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("{{@code {part}}}"));
        } else {
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_unique_within_a_group() {
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                if a.group == b.group {
                    assert_ne!(a.name, b.name);
                    assert_ne!(
                        a.value, b.value,
                        "{}::{} and {}::{}",
                        a.group, a.name, b.group, b.name
                    );
                }
            }
            assert!(
                !a.doc.trim().is_empty(),
                "{}::{} has no doc",
                a.group,
                a.name
            );
        }
    }

    #[test]
    fn a_crash_code_holds_the_signal_and_the_exit_status() {
        let decode = |code: i32| (code >> 16, (code & 0xffff) - 1);
        assert_eq!(decode(crash_code(11, -1)), (11, -1));
        assert_eq!(decode(crash_code(0, 3)), (0, 3));
        assert_eq!(decode(crash_code(0, 255)), (0, 255));
        assert_eq!(decode(crash_code(64, -1)), (64, -1));
    }

    #[test]
    fn option_bits_are_single_bits() {
        for c in TABLE.iter().filter(|c| c.group == "option") {
            assert_eq!(c.value.count_ones(), 1, "{}", c.name);
        }
    }

    #[test]
    fn the_java_source_names_every_constant() {
        let java = java_source();
        assert!(java.contains("static final int KIND_NO_SUCH_LIBRARY = 0;"));
        assert!(java.contains("static final int KEY_STATS_LEN = 12;"));
        assert_eq!(java.matches("static final int").count(), TABLE.len());
    }
}
