//! Log records: the proxy's own events and the lines plugins write through `proxyso_host.log`.
//!
//! Every record names its key and generation. Records go to one process-wide sink: standard
//! error until someone installs another (the JNI layer hands them to `java.util.logging`).

use std::fmt;
use std::sync::{Arc, RwLock};

use proxyso_abi as abi;

/// How serious a record is; the numbers are the header's `PROXYSO_LOG_*` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed.
    Error = 1,
    /// Something is wrong but was handled.
    Warn = 2,
    /// A normal event worth a line (load, replace, unload).
    Info = 3,
    /// Detail (a version retired).
    Debug = 4,
}

impl Level {
    /// The level a plugin asked for; unknown values are `Debug`, the quietest.
    pub fn from_abi(level: i32) -> Level {
        match level {
            abi::LOG_ERROR => Level::Error,
            abi::LOG_WARN => Level::Warn,
            abi::LOG_INFO => Level::Info,
            _ => Level::Debug,
        }
    }

    /// The name standard error shows.
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }
}

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// How serious it is.
    pub level: Level,
    /// True for a line a plugin wrote, false for the proxy's own events.
    pub from_plugin: bool,
    /// The key it is about, if it is about one.
    pub key: Option<Arc<str>>,
    /// The generation it is about; 0 when it is about none.
    pub generation: u64,
    /// The text.
    pub message: String,
}

impl fmt::Display for Record {
    /// The standard error form: `proxyso LEVEL [key#generation] message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "proxyso {} ", self.level.name())?;
        match (&self.key, self.generation) {
            (Some(key), 0) => write!(f, "[{key}] ")?,
            (Some(key), generation) => write!(f, "[{key}#{generation}] ")?,
            (None, _) => {}
        }
        f.write_str(&self.message)
    }
}

/// Something that happened to a key on its own, which the embedding application may act on
/// beyond its log line (the JNI layer tells the key's watch listener).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The key rolled back: generation `from`, an isolated version, crashed within its
    /// probation, and `to` now serves.
    RolledBack {
        /// The key.
        key: Arc<str>,
        /// The generation that crashed.
        from: u64,
        /// The generation that serves now.
        to: u64,
        /// Why, in words.
        reason: String,
    },
}

/// Where notices go.
pub type NoticeSink = Arc<dyn Fn(Notice) + Send + Sync>;

static NOTICES: RwLock<Option<NoticeSink>> = RwLock::new(None);

/// Sends every later notice to `sink` (`None`: nowhere; they are logged anyway).
pub fn set_notice_sink(sink: Option<NoticeSink>) {
    *NOTICES.write().unwrap_or_else(|e| e.into_inner()) = sink;
}

/// Hands one notice to the sink, if there is one.
pub fn notice(notice: Notice) {
    let sink = NOTICES.read().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(sink) = sink {
        sink(notice);
    }
}

/// Where records go.
pub type Sink = Arc<dyn Fn(Record) + Send + Sync>;

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Sends every later record to `sink` instead of standard error (`None`: back to standard error).
pub fn set_sink(sink: Option<Sink>) {
    *SINK.write().unwrap_or_else(|e| e.into_inner()) = sink;
}

/// Emits one record.
pub fn emit(record: Record) {
    let sink = SINK.read().unwrap_or_else(|e| e.into_inner()).clone();
    match sink {
        Some(sink) => sink(record),
        None => eprintln!("{record}"),
    }
}

/// Emits one of the proxy's own events about `key` at `generation` (0: none).
pub fn event(level: Level, key: &Arc<str>, generation: u64, message: impl Into<String>) {
    emit(Record {
        level,
        from_plugin: false,
        key: Some(Arc::clone(key)),
        generation,
        message: message.into(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_error_form_names_key_and_generation() {
        let record = Record {
            level: Level::Warn,
            from_plugin: false,
            key: Some("model".into()),
            generation: 3,
            message: "hello".into(),
        };
        assert_eq!(record.to_string(), "proxyso WARN [model#3] hello");
        let keyless = Record {
            key: None,
            ..record.clone()
        };
        assert_eq!(keyless.to_string(), "proxyso WARN hello");
        let no_generation = Record {
            generation: 0,
            ..record
        };
        assert_eq!(no_generation.to_string(), "proxyso WARN [model] hello");
    }

    #[test]
    fn plugin_levels_map_and_unknown_ones_are_quiet() {
        assert_eq!(Level::from_abi(abi::LOG_ERROR), Level::Error);
        assert_eq!(Level::from_abi(abi::LOG_INFO), Level::Info);
        assert_eq!(Level::from_abi(99), Level::Debug);
        assert_eq!(Level::from_abi(-1), Level::Debug);
    }
}
