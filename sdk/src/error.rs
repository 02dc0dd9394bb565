//! The error a plugin returns; the SDK hands its code and message to the host's error slot.

use std::fmt;

/// A plugin failure: a plugin-defined code and a message, both of which reach Java.
///
/// `Error` converts from every [`std::error::Error`], so `?` works on I/O, parsing and UTF-8
/// errors alike (they get [`Error::DEFAULT_CODE`] and their message, including the chain of
/// sources). That blanket conversion is also why `Error` itself does not implement
/// `std::error::Error`, the same trade-off `anyhow::Error` makes.
///
/// A method or [`Plugin::init`](crate::Plugin::init) that returns `Err` fails with status
/// `PROXYSO_ERROR`: Java gets a `PluginException` (from `init`, a `LibraryLoadException`) whose
/// `getCode()` is [`Error::code`] and whose message includes [`Error::message`].
///
/// # Example
///
/// ```
/// use proxyso_sdk::Error;
///
/// /// The codes this plugin documents for its callers.
/// const OUT_OF_RANGE: i32 = 22;
///
/// fn threshold(input: &[u8]) -> Result<f64, Error> {
///     let text = std::str::from_utf8(input)?; // a `Utf8Error` becomes code 1
///     let value: f64 = text.trim().parse()?; // a `ParseFloatError` too
///     if !(0.0..=1.0).contains(&value) {
///         return Err(Error::new(OUT_OF_RANGE, format!("threshold {value} is outside 0..=1")));
///     }
///     Ok(value)
/// }
///
/// assert_eq!(threshold(b" 0.5 "), Ok(0.5));
///
/// let e = threshold(b"2").unwrap_err();
/// assert_eq!((e.code(), e.message()), (OUT_OF_RANGE, "threshold 2 is outside 0..=1"));
/// assert_eq!(e.to_string(), "threshold 2 is outside 0..=1 (code 22)");
///
/// let e = threshold(b"half").unwrap_err();
/// assert_eq!((e.code(), e.message()), (Error::DEFAULT_CODE, "invalid float literal"));
///
/// assert_eq!(Error::msg("no model loaded").code(), Error::DEFAULT_CODE);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    code: i32,
    message: String,
}

impl Error {
    /// The code of errors made by [`Error::msg`], by `?` conversions and by the SDK itself.
    pub const DEFAULT_CODE: i32 = 1;

    /// An error with a plugin-defined code.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// An error with [`Error::DEFAULT_CODE`].
    pub fn msg(message: impl Into<String>) -> Self {
        Self::new(Self::DEFAULT_CODE, message)
    }

    /// The plugin-defined code.
    pub fn code(&self) -> i32 {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Self {
        // Java sees only this string, so keep the causes a `Display` of the outer error hides.
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::msg(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_and_msg_keep_code_and_message() {
        let e = Error::new(42, "boom");
        assert_eq!((e.code(), e.message()), (42, "boom"));
        assert_eq!(e.to_string(), "boom (code 42)");
        assert_eq!(Error::msg("x").code(), Error::DEFAULT_CODE);
    }

    #[test]
    fn question_mark_converts_std_errors_with_their_sources() {
        fn parse(s: &str) -> Result<u64, Error> {
            Ok(s.parse::<u64>()?)
        }
        let e = parse("x").unwrap_err();
        assert_eq!(e.code(), Error::DEFAULT_CODE);
        assert_eq!(e.message(), "invalid digit found in string");

        #[derive(Debug)]
        struct BadConfig(std::num::ParseIntError);
        impl fmt::Display for BadConfig {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bad config")
            }
        }
        impl std::error::Error for BadConfig {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let cause = "x".parse::<u64>().unwrap_err();
        let e = Error::from(BadConfig(cause));
        assert_eq!(e.message(), "bad config: invalid digit found in string");
    }
}
