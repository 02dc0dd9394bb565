//! Write a proxyso plugin in safe Rust: implement [`Plugin`], write methods as ordinary
//! functions, and export them with one [`export_plugin!`] invocation.
//!
//! The macro builds the `proxyso_plugin` descriptor of `include/proxyso.h` at compile time
//! (checking that names are non-empty, NUL-free and unique) and wraps every entry point so
//! that an `Err` reaches Java as a `PluginException` with its code and message, and a panic is
//! caught and reported instead of aborting the JVM. Output goes straight into the host's
//! buffer through [`Output`]; the plugin never frees host memory, nor the host plugin memory.
//!
//! # Example
//!
//! A plugin is a crate built as a `cdylib`, which is what the host loads:
//!
//! ```toml
//! [package]
//! name = "greeter"
//! version = "1.0.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"] # `cargo test` still runs its `#[cfg(test)]` unit tests
//!
//! [dependencies]
//! proxyso-sdk = { path = "../proxyso/sdk" } # where your checkout of proxyso is
//! ```
//!
//! and its `src/lib.rs` (`cargo build --release` makes `target/release/libgreeter.so`):
//!
//! ```standalone_crate
//! use std::io::Write;
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! use proxyso_sdk::{Error, Host, Output, Plugin};
//!
//! /// One value per loaded version, shared by every calling thread.
//! pub struct Greeter {
//!     host: Host,
//!     greeting: String,
//!     calls: AtomicU64,
//! }
//!
//! impl Plugin for Greeter {
//!     fn init(host: Host, config: &[u8]) -> Result<Self, Error> {
//!         let greeting = std::str::from_utf8(config)?.trim().to_owned();
//!         if greeting.is_empty() {
//!             return Err(Error::new(10, "config must be a greeting"));
//!         }
//!         host.info("greeter ready");
//!         Ok(Greeter { host, greeting, calls: AtomicU64::new(0) })
//!     }
//! }
//!
//! impl Greeter {
//!     fn greet(&self, input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
//!         self.calls.fetch_add(1, Ordering::Relaxed);
//!         out.write_all(self.greeting.as_bytes())?;
//!         out.write_all(b", ")?;
//!         out.write_all(input)
//!     }
//!
//!     fn calls(&self, _input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
//!         write!(out, "{}", self.calls.load(Ordering::Relaxed))?;
//!         Ok(())
//!     }
//! }
//!
//! impl Drop for Greeter {
//!     // Runs in `destroy`, after the last call: the place to stop threads and free resources.
//!     fn drop(&mut self) {
//!         self.host.info("greeter unloading");
//!     }
//! }
//!
//! proxyso_sdk::export_plugin! {
//!     plugin: Greeter,
//!     name: "greeter",
//!     version: env!("CARGO_PKG_VERSION"),
//!     methods: {
//!         "greet" => Greeter::greet, // the first method is the default one
//!         "calls" => Greeter::calls,
//!     },
//! }
//!
//! // The plugin can be tested without the JVM (in its `#[cfg(test)]` module, say):
//! use proxyso_sdk::testing::Harness;
//! // SAFETY: the descriptor was made by `export_plugin!`.
//! let greeter = unsafe { Harness::init(&proxyso_plugin, b"Hello") }.unwrap();
//! assert_eq!(greeter.call_default(b"world").unwrap(), b"Hello, world");
//! assert_eq!(greeter.call("calls", b"").unwrap(), b"1");
//!
//! // SAFETY: as above.
//! let refused = unsafe { Harness::init(&proxyso_plugin, b"") }.unwrap_err();
//! assert_eq!((refused.code, refused.message.as_str()), (10, "config must be a greeting"));
//! ```
//!
//! From Java:
//!
//! ```java
//! ProxySo.load("greeter", "/opt/plugins/libgreeter.so", "Hello".getBytes(UTF_8));
//! String answer = ProxySo.call("greeter", "world");        // "Hello, world"
//! String calls = ProxySo.call("greeter", "calls", "");     // "1"
//! ```
//!
//! # Errors and panics
//!
//! A method returns `Result<(), Error>`. [`Error::new`] carries a code of your choosing;
//! `?` converts any [`std::error::Error`] with [`Error::DEFAULT_CODE`]. A panic is caught and
//! reported to the host as a panic (status `PROXYSO_PANIC`, code [`PANIC_CODE`]) with its
//! message; the version keeps serving, so a method must leave the plugin's shared state
//! consistent even if it panics midway (a poisoned `Mutex` will tell the next caller).
//!
//! Before `init`, the SDK sets the plugin's panic hook (each `cdylib` has its own copy of
//! `std`, hence its own hook, so the host's and other plugins' are untouched) to one that
//! prints one line, location and message, to stderr (the message also reaches Java). It never
//! prints a backtrace: the host maps a private copy of the plugin that it deletes at once, so
//! std could not name the plugin's frames anyway, and symbolizing means mapping the plugin's
//! file and caching that mapping in a `static` no `dlclose` frees. `destroy` takes the hook
//! back out, so nothing of it outlives the version. A plugin may still set its own hook in
//! `init`.
//!
//! # Threads
//!
//! Methods run on many JVM threads at once, hence `Plugin: Sync`. Set
//! `flags: proxyso_sdk::abi::FLAG_SERIALIZE` in [`export_plugin!`] to have the host run at most
//! one call of the version at a time instead. `init` and the plugin's `Drop` never overlap a
//! method call.
//!
//! # What a plugin must not do
//!
//! The host unloads (`dlclose`s) a version right after dropping it, to replace it with a new
//! one, many times in the life of the JVM. So nothing of the plugin may outlive its `Drop`:
//!
//! - **Leave threads running.** Stop and join every thread the plugin started, in `Drop`.
//!   A thread still running after the unload executes unmapped code.
//! - **Use `thread_local!` with a type that has a destructor, or `std::thread::current()`.**
//!   The first use on a thread registers a destructor for that thread's exit, and the calling
//!   threads are JVM threads that outlive the unload. With a `thread_local!` destructor glibc
//!   keeps the library loaded until every such thread has exited, so in practice each
//!   replaced version leaks. `std::thread::current()` on a thread Rust did not start (every
//!   JVM thread) registers a `pthread_key` destructor instead, which crashes the JVM when the
//!   thread exits after the unload (both seen with glibc 2.36 and Rust 1.95). Thread-locals
//!   without destructors (`const`-initialized `Cell<u64>` and the like) are fine. This SDK
//!   registers none, and a panic caught by it registers none either.
//! - **Create `pthread_key`s with destructors, register `atexit` handlers, or install signal
//!   handlers**: all of them point into the plugin's code after it is gone.
//! - **Keep the [`Host`] anywhere but in the plugin value** (a `static` or a detached thread):
//!   it is valid only until the plugin is dropped.
//! - **Store anything in `static`s expecting it to be freed**: statics of a `dlclose`d library
//!   are not dropped, so a `static` holding heap memory leaks on every replacement.
//!
//! Build the plugin as a `cdylib`, and never with `panic = "abort"`: it turns every panic into
//! the end of the JVM, since `catch_unwind` then has nothing to catch.
#![deny(missing_docs)]

pub use proxyso_abi as abi;

mod error;
mod host;
mod output;
pub mod testing;
mod trampoline;

pub use error::Error;
pub use host::{Host, Level};
pub use output::Output;
pub use trampoline::PANIC_CODE;

/// Not a public API: what [`export_plugin!`] expands to. May change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::trampoline::{
        call_method, destroy, flags, init, method, method_count, nul_terminated,
    };
}

/// A plugin: the value `init` builds from the configuration, shared by every method call of
/// one loaded version and dropped when the version is unloaded.
///
/// Methods are inherent functions with the signature
/// `fn(&self, input: &[u8], out: &mut Output<'_>) -> Result<(), Error>`, listed in
/// [`export_plugin!`]. Implement `Drop` to release what the plugin holds (see the crate docs
/// for what must not outlive it).
///
/// Every method call gets `&self`, from many threads at once, hence `Sync`: state that calls
/// change needs atomics or a lock. The host never runs `init` or the plugin's `Drop` alongside
/// a method call of the same version.
///
/// # Example
///
/// ```standalone_crate
/// use std::collections::VecDeque;
/// use std::sync::Mutex;
///
/// use proxyso_sdk::testing::Harness;
/// use proxyso_sdk::{Error, Host, Output, Plugin};
///
/// /// Remembers the last inputs; how many is its configuration.
/// struct Recent {
///     capacity: usize,
///     items: Mutex<VecDeque<Vec<u8>>>,
/// }
///
/// impl Plugin for Recent {
///     fn init(host: Host, config: &[u8]) -> Result<Self, Error> {
///         // `?` turns UTF-8 and parse errors into errors with `Error::DEFAULT_CODE`.
///         let capacity: usize = std::str::from_utf8(config)?.trim().parse()?;
///         if capacity == 0 {
///             return Err(Error::new(2, "keep at least one input"));
///         }
///         host.debug(&format!("keeping the last {capacity} inputs"));
///         Ok(Recent { capacity, items: Mutex::new(VecDeque::with_capacity(capacity)) })
///     }
/// }
///
/// impl Recent {
///     fn lock(&self) -> Result<std::sync::MutexGuard<'_, VecDeque<Vec<u8>>>, Error> {
///         self.items.lock().map_err(|_| Error::msg("a call panicked while holding the lock"))
///     }
///
///     /// Remembers the input, forgetting the oldest when full.
///     fn push(&self, input: &[u8], _out: &mut Output<'_>) -> Result<(), Error> {
///         let mut items = self.lock()?;
///         if items.len() == self.capacity {
///             items.pop_front();
///         }
///         items.push_back(input.to_vec());
///         Ok(())
///     }
///
///     /// The remembered inputs, oldest first, one a line.
///     fn list(&self, _input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
///         for item in self.lock()?.iter() {
///             out.write_all(item)?;
///             out.write_all(b"\n")?;
///         }
///         Ok(())
///     }
/// }
///
/// proxyso_sdk::export_plugin! {
///     plugin: Recent,
///     name: "recent",
///     version: "1.0.0",
///     methods: { "push" => Recent::push, "list" => Recent::list },
/// }
///
/// // SAFETY: the descriptor was made by `export_plugin!`.
/// let recent = unsafe { Harness::init(&proxyso_plugin, b"2") }.unwrap();
/// for input in [&b"a"[..], b"b", b"c"] {
///     recent.call("push", input).unwrap();
/// }
/// assert_eq!(recent.call("list", b"").unwrap(), b"b\nc\n");
///
/// // A configuration `init` refuses fails the load, with the error's code and message.
/// // SAFETY: as above.
/// let refused = unsafe { Harness::init(&proxyso_plugin, b"0") }.unwrap_err();
/// assert_eq!((refused.code, refused.message.as_str()), (2, "keep at least one input"));
/// // SAFETY: as above.
/// let refused = unsafe { Harness::init(&proxyso_plugin, b"two") }.unwrap_err();
/// assert_eq!(refused.code, Error::DEFAULT_CODE);
/// assert_eq!(refused.message, "invalid digit found in string");
/// ```
pub trait Plugin: Sized + Send + Sync + 'static {
    /// Builds the plugin from the configuration bytes given to `ProxySo.load`.
    ///
    /// `host` may be kept in the plugin, for logging from methods or from `Drop`. An `Err`
    /// fails the load with the error's code and message.
    fn init(host: Host, config: &[u8]) -> Result<Self, Error>;
}

/// Exports a [`Plugin`] as the `proxyso_plugin` descriptor of a `cdylib`.
///
/// ```text
/// proxyso_sdk::export_plugin! {
///     plugin: MyPlugin,                            // a type implementing Plugin
///     name: "example",                             // a &'static str constant expression
///     version: "1.0.0",                            // ditto, e.g. env!("CARGO_PKG_VERSION")
///     flags: proxyso_sdk::abi::FLAG_SERIALIZE,     // optional, u32 bits; default 0
///     methods: {
///         "echo" => MyPlugin::echo,                // the first method is the default one
///         "version" => MyPlugin::version,
///     },
/// }
/// ```
///
/// Each method is any expression of a type implementing
/// `FnOnce(&MyPlugin, &[u8], &mut Output<'_>) -> Result<(), Error>`, usually a path to a
/// function. Use the macro once per crate, at module level. Empty names, names containing NUL,
/// duplicate method names and unknown flags are compile-time errors.
///
/// It defines `pub static proxyso_plugin: proxyso_sdk::abi::Descriptor`, the exported
/// descriptor, which tests hand to [`Harness::init`](testing::Harness::init).
///
/// A method may also be a closure; `flags` sets descriptor flags:
///
/// ```standalone_crate
/// use std::sync::Mutex;
///
/// use proxyso_sdk::{Error, Host, Output, Plugin, abi};
///
/// struct Counter(Mutex<u64>);
///
/// impl Plugin for Counter {
///     fn init(_host: Host, _config: &[u8]) -> Result<Self, Error> {
///         Ok(Counter(Mutex::new(0)))
///     }
/// }
///
/// proxyso_sdk::export_plugin! {
///     plugin: Counter,
///     name: "counter",
///     version: "0.1",
///     flags: abi::FLAG_SERIALIZE,
///     methods: {
///         "next" => |counter: &Counter, _input, out: &mut Output<'_>| {
///             let mut n = counter.0.lock().map_err(|_| Error::msg("poisoned"))?;
///             *n += 1;
///             out.write_all(n.to_string().as_bytes())
///         },
///     },
/// }
///
/// assert_eq!(proxyso_plugin.flags, abi::FLAG_SERIALIZE);
/// assert_eq!(proxyso_plugin.method_count, 1);
/// ```
///
/// A mistake in the names stops the build:
///
/// ```compile_fail
/// # use proxyso_sdk::{Error, Host, Output, Plugin};
/// # struct P;
/// # impl Plugin for P {
/// #     fn init(_: Host, _: &[u8]) -> Result<Self, Error> { Ok(P) }
/// # }
/// # fn m(_: &P, _: &[u8], _: &mut Output<'_>) -> Result<(), Error> { Ok(()) }
/// proxyso_sdk::export_plugin! {
///     plugin: P, name: "p", version: "1",
///     methods: { "m" => m, "m" => m }, // duplicate method name
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_plugin {
    (
        plugin: $plugin:ty,
        name: $name:expr,
        version: $version:expr,
        $(flags: $flags:expr,)?
        methods: { $($method_name:expr => $method:expr),+ $(,)? } $(,)?
    ) => {
        /// The proxyso plugin descriptor, the one symbol the host looks up.
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        pub static proxyso_plugin: $crate::abi::Descriptor = {
            const NAMES: &[&str] = &[$($method_name),+];
            static METHODS: [$crate::abi::Method; NAMES.len()] = [$(
                $crate::abi::Method {
                    name: $crate::__proxyso_c_str!($method_name),
                    call: {
                        unsafe extern "C" fn __proxyso_method(
                            context: *mut ::core::ffi::c_void,
                            input: *const u8,
                            input_len: usize,
                            output: *mut $crate::abi::Output,
                            error: *mut $crate::abi::Error,
                        ) -> $crate::abi::Status {
                            // Outside the `unsafe` block, so that the caller's expression
                            // gets no unsafe powers; `method` gives a closure its signature.
                            let method = $crate::__private::method::<$plugin, _>($method);
                            // SAFETY: the host calls every method with the arguments of a
                            // `proxyso_method_fn` call, which is what `call_method` requires.
                            unsafe {
                                $crate::__private::call_method::<$plugin, _>(
                                    context, input, input_len, output, error, method,
                                )
                            }
                        }
                        ::core::option::Option::Some(__proxyso_method)
                    },
                }
            ),+];
            $crate::abi::Descriptor {
                abi_version: $crate::abi::ABI_VERSION,
                flags: $crate::__private::flags(0 $(| $flags)?),
                name: $crate::__proxyso_c_str!($name),
                version: $crate::__proxyso_c_str!($version),
                init: ::core::option::Option::Some($crate::__private::init::<$plugin>),
                destroy: ::core::option::Option::Some($crate::__private::destroy::<$plugin>),
                method_count: $crate::__private::method_count(NAMES),
                methods: METHODS.as_ptr(),
            }
        };
    };
}

/// Not a public API: a `&'static str` constant expression as a pointer to a static,
/// NUL-terminated, checked copy of it.
#[doc(hidden)]
#[macro_export]
macro_rules! __proxyso_c_str {
    ($s:expr) => {{
        const S: &str = $s;
        static C: [u8; S.len() + 1] = $crate::__private::nul_terminated(S);
        C.as_ptr().cast::<::core::ffi::c_char>()
    }};
}

#[cfg(test)]
mod tests;
