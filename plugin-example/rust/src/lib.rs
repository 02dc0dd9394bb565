//! The example proxyso plugin: a tiny echo "algorithm", written the way a plugin should be.
//!
//! One source builds two versions for the hot-replace demo: `example-v1` (1.0.0) and, with
//! the `v2` feature, `example-v2` (2.0.0), whose `echo` appends `,ab` to its input.
//!
//! Methods (the first is the default):
//! - `echo`: the input (v2: followed by `,ab`);
//! - `version`: the plugin's version string;
//! - `len`: the input's length in bytes, as decimal text.
#![deny(missing_docs)]

use std::io::Write;

use proxyso_sdk::{Error, Host, Output, Plugin};

/// This build's version, as reported to the host and by the `version` method.
const VERSION: &str = if cfg!(feature = "v2") {
    "2.0.0"
} else {
    "1.0.0"
};

/// What `echo` appends to its input: the visible difference between the versions.
const ECHO_SUFFIX: &[u8] = if cfg!(feature = "v2") { b",ab" } else { b"" };

/// The plugin's state. There is none to speak of beyond the host handle; a real algorithm
/// would keep its model or tables here, built once in `init` and shared by every call.
pub struct Example {
    host: Host,
}

impl Plugin for Example {
    fn init(host: Host, config: &[u8]) -> Result<Self, Error> {
        host.info(&format!(
            "example {VERSION} loaded with {} bytes of config",
            config.len()
        ));
        Ok(Example { host })
    }
}

impl Example {
    /// Returns the input unchanged (v2: followed by `,ab`).
    fn echo(&self, input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
        // One reservation for the whole result instead of growing twice.
        out.reserve(input.len() + ECHO_SUFFIX.len())?;
        out.write_all(input)?;
        out.write_all(ECHO_SUFFIX)
    }

    /// Returns the version string.
    fn version(&self, _input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
        out.write_all(VERSION.as_bytes())
    }

    /// Returns the input's length in bytes, as decimal text.
    fn input_len(&self, input: &[u8], out: &mut Output<'_>) -> Result<(), Error> {
        write!(out, "{}", input.len())?;
        Ok(())
    }
}

impl Drop for Example {
    // Runs once, after the last call of this version returned; a plugin that started threads
    // would stop and join them here.
    fn drop(&mut self) {
        self.host.info(&format!("example {VERSION} unloading"));
    }
}

proxyso_sdk::export_plugin! {
    plugin: Example,
    name: "example",
    version: VERSION,
    methods: {
        "echo" => Example::echo,
        "version" => Example::version,
        "len" => Example::input_len,
    },
}

#[cfg(test)]
mod tests {
    use proxyso_sdk::testing::Harness;

    use super::*;

    fn load() -> Harness {
        // SAFETY: the descriptor was made by `export_plugin!`.
        unsafe { Harness::init(&proxyso_plugin, b"") }.unwrap()
    }

    #[test]
    fn echo_is_the_default_method() {
        let h = load();
        assert_eq!((h.name(), h.version()), ("example", VERSION));
        let expected: &[u8] = if cfg!(feature = "v2") {
            b"hello,ab"
        } else {
            b"hello"
        };
        assert_eq!(h.call_default(b"hello").unwrap(), expected);
    }

    #[test]
    fn version_and_len() {
        let h = load();
        assert_eq!(h.call("version", b"").unwrap(), VERSION.as_bytes());
        assert_eq!(h.call("len", b"hello").unwrap(), b"5");
        assert_eq!(h.call("len", b"").unwrap(), b"0");
    }
}
