//! Text that error messages quote: keys, method names and paths, cut to a bounded length.
//!
//! A key or path can be as long as a caller likes (a 1 MiB key reaches `call` and `info`), and a
//! message that quotes it whole is as long, in logs and in every exception. Every message quotes
//! such text through `shown`; the Java side's `Text.shown` cuts the same way.

use std::borrow::Cow;

/// The most bytes of UTF-8 a message quotes of one key, method name or path.
pub const MAX_SHOWN: usize = 256;

/// `text` as a message quotes it: whole up to `MAX_SHOWN` bytes of UTF-8, otherwise its first
/// characters that fit, followed by `…(N bytes)` with the whole length.
pub fn shown(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_SHOWN {
        return Cow::Borrowed(text);
    }
    let mut end = MAX_SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…({} bytes)", &text[..end], text.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_shown_whole() {
        assert_eq!(shown("model"), "model");
        let edge = "k".repeat(MAX_SHOWN);
        assert_eq!(shown(&edge), edge);
    }

    #[test]
    fn long_text_is_cut_with_its_length() {
        let key = "k".repeat(1 << 20);
        let cut = shown(&key);
        assert_eq!(cut, format!("{}…(1048576 bytes)", "k".repeat(MAX_SHOWN)));
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        // "ü" is 2 bytes: an odd prefix puts a character across the limit.
        let key = format!("a{}", "ü".repeat(MAX_SHOWN));
        let cut = shown(&key);
        let kept = cut.split('…').next().unwrap();
        assert_eq!(kept.len(), MAX_SHOWN - 1);
        assert!(cut.ends_with(&format!("…({} bytes)", key.len())));
    }
}
