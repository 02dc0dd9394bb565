//! The one wrapper every JNI entry point runs in: no panic escapes, every error becomes the
//! matching Java exception, and an exception already pending is never thrown over.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use jni::JNIEnv;
use jni::objects::{JObject, JThrowable, JValue};

use proxyso_core::error::Error;

use super::contract::{self, kind};

/// Why an entry point could not return normally.
#[derive(Debug)]
pub enum Failure {
    /// A registry error: becomes the matching `ProxySoException`.
    Core(Error),
    /// A JNI call failed; a Java exception may already be pending.
    Jni(jni::errors::Error),
    /// An argument the Java side could not check: becomes `IllegalArgumentException`.
    IllegalArgument(String),
    /// A handle id that was closed or never existed: becomes `IllegalStateException`.
    HandleClosed(i64),
    /// A bug in the proxy itself: becomes `ProxySoInternalError`.
    Internal(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Core(e)
    }
}

impl From<jni::errors::Error> for Failure {
    fn from(e: jni::errors::Error) -> Self {
        Failure::Jni(e)
    }
}

/// Runs `f`, turning a panic or an error into a Java exception and `default`.
pub fn run<'l, T>(
    env: &mut JNIEnv<'l>,
    default: T,
    f: impl FnOnce(&mut JNIEnv<'l>) -> Result<T, Failure>,
) -> T {
    let failure = match catch_unwind(AssertUnwindSafe(|| f(env))) {
        Ok(Ok(value)) => return value,
        Ok(Err(failure)) => failure,
        Err(payload) => Failure::Internal(format!("panic in libproxy: {}", panic_message(payload))),
    };
    // Throwing must not unwind either; if even that panics, the exception is lost but the
    // JVM survives.
    let _ = catch_unwind(AssertUnwindSafe(|| throw(env, failure)));
    default
}

/// The fields of `NativeBridge.exception(kind, key, path, method, code, message)`.
struct Thrown<'a> {
    kind: i32,
    key: Option<&'a str>,
    path: Option<&'a str>,
    method: Option<&'a str>,
    code: i32,
    message: String,
}

impl<'a> Thrown<'a> {
    fn new(kind: i32, key: Option<&'a str>, message: String) -> Self {
        Thrown {
            kind,
            key,
            path: None,
            method: None,
            code: 0,
            message,
        }
    }
}

fn throw(env: &mut JNIEnv<'_>, failure: Failure) {
    // Never throw over a pending exception: it is the more precise one.
    if env.exception_check().unwrap_or(true) {
        return;
    }
    let message = match &failure {
        Failure::Core(e) => e.to_string(),
        Failure::Jni(e) => format!("JNI call failed: {e}"),
        Failure::HandleClosed(id) => format!("library handle {id:#x} is closed"),
        Failure::IllegalArgument(m) => m.clone(),
        Failure::Internal(m) => m.clone(),
    };
    let thrown = match &failure {
        Failure::Core(e) => describe(e, message),
        Failure::Jni(jni::errors::Error::NullPtr(what) | jni::errors::Error::NullDeref(what)) => {
            let _ = env.throw_new("java/lang/NullPointerException", format!("{what} is null"));
            return;
        }
        Failure::HandleClosed(_) => Thrown::new(kind::HANDLE_CLOSED, None, message),
        Failure::IllegalArgument(_) => Thrown::new(kind::ILLEGAL_ARGUMENT, None, message),
        Failure::Jni(_) | Failure::Internal(_) => Thrown::new(kind::INTERNAL, None, message),
    };
    if build_and_throw(env, &thrown).is_err() && !env.exception_check().unwrap_or(true) {
        // The exception factory itself failed without saying why: fall back to a plain one.
        let _ = env.throw_new("java/lang/RuntimeException", &thrown.message);
    }
}

fn describe(e: &Error, message: String) -> Thrown<'_> {
    match e {
        Error::NoSuchLibrary { key } => Thrown::new(kind::NO_SUCH_LIBRARY, Some(key), message),
        Error::AlreadyLoaded { key } => Thrown::new(kind::LIBRARY_EXISTS, Some(key), message),
        Error::InvalidKey { key, .. } | Error::InvalidOption { key, .. } => {
            Thrown::new(kind::ILLEGAL_ARGUMENT, Some(key), message)
        }
        Error::NoPreviousVersion { key } => {
            Thrown::new(kind::NO_PREVIOUS_VERSION, Some(key), message)
        }
        Error::Load { key, path, .. } => Thrown {
            path: Some(path),
            ..Thrown::new(kind::LOAD, Some(key), message)
        },
        Error::NoSuchMethod { key, method, .. } => Thrown {
            method: Some(method),
            ..Thrown::new(kind::UNKNOWN_METHOD, Some(key), message)
        },
        Error::OutputTooSmall {
            key,
            method,
            required,
            ..
        } => Thrown {
            method: Some(method),
            code: i32::try_from(*required).unwrap_or(i32::MAX),
            ..Thrown::new(kind::OUTPUT_TOO_SMALL, Some(key), message)
        },
        Error::Crashed {
            key,
            method,
            signal,
            exit_status,
            ..
        } => Thrown {
            method: Some(method),
            code: contract::crash_code(*signal, *exit_status),
            ..Thrown::new(kind::PLUGIN_CRASHED, Some(key), message)
        },
        Error::TimedOut {
            key,
            method,
            millis,
            ..
        } => Thrown {
            method: Some(method),
            code: i32::try_from(*millis).unwrap_or(i32::MAX),
            ..Thrown::new(kind::PLUGIN_TIMEOUT, Some(key), message)
        },
        Error::Plugin {
            key,
            method,
            code,
            panicked,
            ..
        } => Thrown {
            method: Some(method),
            code: *code,
            ..Thrown::new(
                if *panicked {
                    kind::PLUGIN_PANIC
                } else {
                    kind::PLUGIN_ERROR
                },
                Some(key),
                message,
            )
        },
    }
}

/// Asks `NativeBridge.exception` for the right exception object and throws it.
fn build_and_throw(env: &mut JNIEnv<'_>, t: &Thrown<'_>) -> Result<(), jni::errors::Error> {
    let key = optional_string(env, t.key)?;
    let path = optional_string(env, t.path)?;
    let method = optional_string(env, t.method)?;
    let message = env.new_string(&t.message)?;
    let exception = env
        .call_static_method(
            "dev/proxyso/NativeBridge",
            "exception",
            "(ILjava/lang/String;Ljava/lang/String;Ljava/lang/String;ILjava/lang/String;)\
             Ljava/lang/Throwable;",
            &[
                JValue::Int(t.kind),
                JValue::Object(&key),
                JValue::Object(&path),
                JValue::Object(&method),
                JValue::Int(t.code),
                JValue::Object(&message),
            ],
        )?
        .l()?;
    env.throw(JThrowable::from(exception))
}

fn optional_string<'l>(
    env: &mut JNIEnv<'l>,
    s: Option<&str>,
) -> Result<JObject<'l>, jni::errors::Error> {
    match s {
        Some(s) => Ok(env.new_string(s)?.into()),
        None => Ok(JObject::null()),
    }
}

/// The text of a panic payload (`&str` or `String`), read without risking a second panic.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    // The payload is moved in so that even its drop happens inside the guard.
    catch_unwind(AssertUnwindSafe(move || {
        if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "(a panic payload that is not a string)".to_owned()
        }
    }))
    .unwrap_or_else(|_| "(the panic message could not be read)".to_owned())
}
