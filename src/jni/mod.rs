//! The JNI layer: `dev.proxyso.NativeBridge`'s native methods, each a thin shim over `Registry`.
//!
//! Every entry point goes through `entry::run`, which catches panics and turns every error
//! into the matching Java exception; none of them holds state of its own.

mod calls;
mod entry;
mod handles;
mod log;
mod strings;

use std::env;
use std::path::PathBuf;
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Duration;

use jni::JNIEnv;
use jni::objects::{JByteArray, JClass, JObject, JString, JValue};
use jni::sys::{jboolean, jint, jlong, jobject, jobjectArray};

use crate::plugin::LoadOptions;
use crate::registry::{LibraryInfo, Registry};
use crate::snapshot::hex;
use entry::{Failure, run};
use handles::Handles;

/// The process's one registry, behind every Java `ProxySo` call.
fn registry() -> &'static Registry {
    REGISTRY.get_or_init(|| {
        // SAFETY: registers a function of this library, which the JVM never unloads, to run at
        // exit; it touches only the registry's snapshot directory and never blocks.
        unsafe { libc::atexit(clean_up_at_exit) };
        Registry::new(env::temp_dir())
    })
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// The open `LibraryHandle`s.
static HANDLES: Handles = Handles::new();

/// Removes the (empty) snapshot directory when the JVM exits.
extern "C" fn clean_up_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        if let Some(registry) = REGISTRY.get() {
            registry.clean_up_at_exit();
        }
    });
}

/// `NativeBridge.configure(String snapshotDir)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_configure<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    snapshot_dir: JString<'l>,
) {
    run(&mut env, (), |env| {
        let dir: String = env.get_string(&snapshot_dir)?.into();
        registry().set_snapshot_dir(PathBuf::from(dir));
        Ok(())
    })
}

/// The `proxyso-worker` executable that pre-flight loads run, set by `NativeBridge.setWorker`.
static WORKER: RwLock<Option<PathBuf>> = RwLock::new(None);

/// `NativeBridge.setWorker(String path)`: `null` for none.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_setWorker<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    path: JString<'l>,
) {
    run(&mut env, (), |env| {
        let worker = if path.is_null() {
            None
        } else {
            let path: String = env.get_string(&path)?.into();
            Some(PathBuf::from(path))
        };
        *WORKER.write().unwrap_or_else(PoisonError::into_inner) = worker;
        Ok(())
    })
}

/// `NativeBridge.load(String key, String path, byte[] config, int options, byte[] sha256,
/// int keepVersions)`: generation 1.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // the JNI signature
pub extern "system" fn Java_dev_proxyso_NativeBridge_load<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    key: JString<'l>,
    path: JString<'l>,
    config: JByteArray<'l>,
    options: jint,
    sha256: JByteArray<'l>,
    keep_versions: jint,
) -> jlong {
    open_version(
        &mut env,
        (&key, &path, &config, options, &sha256, keep_versions),
        Registry::load_with,
    )
}

/// `NativeBridge.replace(String key, String path, byte[] config, int options, byte[] sha256,
/// int keepVersions)`: the new generation.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // the JNI signature
pub extern "system" fn Java_dev_proxyso_NativeBridge_replace<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    key: JString<'l>,
    path: JString<'l>,
    config: JByteArray<'l>,
    options: jint,
    sha256: JByteArray<'l>,
    keep_versions: jint,
) -> jlong {
    open_version(
        &mut env,
        (&key, &path, &config, options, &sha256, keep_versions),
        Registry::replace_with,
    )
}

/// `NativeBridge.rollback(String key)`: the new generation.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_rollback<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    key: JString<'l>,
) -> jlong {
    run(&mut env, 0, |env| {
        let key: String = env.get_string(&key)?.into();
        Ok(count(registry().rollback(&key)?))
    })
}

/// `NativeBridge.OPTION_KEEP_MAPPED`.
const OPTION_KEEP_MAPPED: jint = 1;
/// `NativeBridge.OPTION_ALLOW_SIGNAL_HANDLERS`.
const OPTION_ALLOW_SIGNAL_HANDLERS: jint = 2;
/// `NativeBridge.OPTION_EXACT_TIMING`.
const OPTION_EXACT_TIMING: jint = 4;
/// `NativeBridge.OPTION_PREFLIGHT`.
const OPTION_PREFLIGHT: jint = 8;

/// The arguments `load` and `replace` share: key, path, config, option bits, the expected
/// SHA-256 and how many previous versions to keep.
type OpenArgs<'a, 'l> = (
    &'a JString<'l>,
    &'a JString<'l>,
    &'a JByteArray<'l>,
    jint,
    &'a JByteArray<'l>,
    jint,
);

/// `load` and `replace` alike: read the arguments, run `op`, return the generation.
fn open_version<'l>(
    env: &mut JNIEnv<'l>,
    (key, path, config, options, sha256, keep_versions): OpenArgs<'_, 'l>,
    op: fn(&Registry, &str, &str, &LoadOptions<'_>) -> Result<u64, crate::Error>,
) -> jlong {
    run(env, 0, |env| {
        let key: String = env.get_string(key)?.into();
        let path: String = env.get_string(path)?.into();
        let config = env.convert_byte_array(config)?;
        let sha256 = if sha256.is_null() {
            None
        } else {
            let bytes = env.convert_byte_array(sha256)?;
            Some(<[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                Failure::IllegalArgument(format!(
                    "a SHA-256 digest is 32 bytes, not {}",
                    bytes.len()
                ))
            })?)
        };
        let keep_versions = match keep_versions {
            -1 => None,
            n => Some(usize::try_from(n).map_err(|_| {
                Failure::IllegalArgument(format!(
                    "keepVersions must be 0 or more (or -1 for unchanged), not {n}"
                ))
            })?),
        };
        let worker = WORKER
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let options = LoadOptions {
            config: &config,
            keep_mapped: options & OPTION_KEEP_MAPPED != 0,
            allow_signal_handlers: options & OPTION_ALLOW_SIGNAL_HANDLERS != 0,
            sha256,
            keep_versions,
            keep_copy: false,
            exact_timing: options & OPTION_EXACT_TIMING != 0,
            preflight: options & OPTION_PREFLIGHT != 0,
            worker: worker.as_deref(),
        };
        Ok(count(op(registry(), &key, &path, &options)?))
    })
}

/// `NativeBridge.unload(String key)`: false if the key was not loaded.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_unload<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    key: JString<'l>,
) -> jboolean {
    run(&mut env, 0, |env| {
        let key: String = env.get_string(&key)?.into();
        Ok(registry().unload(&key)?.into())
    })
}

/// `NativeBridge.info(String key)`: a `LibraryInfo`, or null when the key is not loaded.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_info<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    key: JString<'l>,
) -> jobject {
    run(&mut env, std::ptr::null_mut(), |env| {
        let key: String = env.get_string(&key)?.into();
        match registry().info(&key) {
            Some(info) => Ok(library_info(env, &info)?.into_raw()),
            None => Ok(std::ptr::null_mut()),
        }
    })
}

/// `NativeBridge.keys()`: the loaded keys, sorted.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_keys<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
) -> jobjectArray {
    run(&mut env, std::ptr::null_mut(), |env| {
        Ok(string_array(env, &registry().keys())?.into_raw())
    })
}

/// `NativeBridge.awaitRetired(String key, long timeoutMillis)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_awaitRetired<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    key: JString<'l>,
    timeout_millis: jlong,
) -> jboolean {
    run(&mut env, 0, |env| {
        let key: String = env.get_string(&key)?.into();
        let timeout = Duration::from_millis(u64::try_from(timeout_millis).unwrap_or(0));
        Ok(registry().await_retired(&key, timeout).into())
    })
}

/// A generation or a count as a Java `long`, saturating (counts of events never reach 2^63).
fn count(n: u64) -> jlong {
    jlong::try_from(n).unwrap_or(jlong::MAX)
}

/// The JNI signature of `LibraryInfo`'s constructor.
const LIBRARY_INFO_INIT: &str = "(Ljava/lang/String;JLjava/lang/String;Ljava/lang/String;\
     Ljava/lang/String;Ljava/lang/String;[Ljava/lang/String;ZZJJLjava/lang/String;[J\
     Ljava/lang/String;[J[Ljava/lang/String;I[J[Ljava/lang/String;[Ljava/lang/String;)V";

/// Builds a `dev.proxyso.LibraryInfo`.
fn library_info<'l>(env: &mut JNIEnv<'l>, info: &LibraryInfo) -> Result<JObject<'l>, Failure> {
    env.with_local_frame_returning_local(32, |env| -> Result<JObject<'_>, Failure> {
        let key = env.new_string(&info.key)?;
        let path = env.new_string(&info.path)?;
        let snapshot = env.new_string(info.snapshot_path.to_string_lossy())?;
        let name = env.new_string(&info.name)?;
        let version = env.new_string(&info.version)?;
        let methods = string_array(env, &info.methods)?;
        let sha256 = env.new_string(hex(&info.sha256))?;
        let t = &info.totals;
        let totals = long_array(
            env,
            &[
                t.calls,
                t.failed,
                t.in_flight,
                t.total_nanos,
                t.max_nanos,
                info.replacements,
                info.rollbacks,
            ],
        )?;
        let last_error = match &info.last_error {
            Some(message) => env.new_string(message)?.into(),
            None => JObject::null(),
        };
        let per_generation: Vec<u64> = info
            .generations
            .iter()
            .flat_map(|g| {
                let c = &g.counts;
                [
                    g.generation,
                    c.calls,
                    c.failed,
                    c.in_flight,
                    c.total_nanos,
                    c.max_nanos,
                    g.load_nanos,
                ]
            })
            .collect();
        let generations = long_array(env, &per_generation)?;
        let generation_digests: Vec<String> =
            info.generations.iter().map(|g| hex(&g.sha256)).collect();
        let generation_digests = string_array(env, &generation_digests)?;
        let previous: Vec<u64> = info.previous.iter().map(|p| p.generation).collect();
        let previous = long_array(env, &previous)?;
        let previous_paths: Vec<String> = info.previous.iter().map(|p| p.path.clone()).collect();
        let previous_paths = string_array(env, &previous_paths)?;
        let previous_digests: Vec<String> = info.previous.iter().map(|p| hex(&p.sha256)).collect();
        let previous_digests = string_array(env, &previous_digests)?;
        let object = env.new_object(
            "dev/proxyso/LibraryInfo",
            LIBRARY_INFO_INIT,
            &[
                JValue::Object(&key),
                JValue::Long(count(info.generation)),
                JValue::Object(&path),
                JValue::Object(&snapshot),
                JValue::Object(&name),
                JValue::Object(&version),
                JValue::Object(&methods),
                JValue::Bool(info.serialized.into()),
                JValue::Bool(info.kept_mapped.into()),
                JValue::Long(count(info.retired_versions)),
                JValue::Long(count(info.pinned_versions)),
                JValue::Object(&sha256),
                JValue::Object(&totals),
                JValue::Object(&last_error),
                JValue::Object(&generations),
                JValue::Object(&generation_digests),
                JValue::Int(i32::try_from(info.keep_versions).unwrap_or(i32::MAX)),
                JValue::Object(&previous),
                JValue::Object(&previous_paths),
                JValue::Object(&previous_digests),
            ],
        )?;
        Ok(object)
    })
}

/// Builds a `long[]` of counts, each saturating.
fn long_array<'l>(env: &mut JNIEnv<'l>, items: &[u64]) -> Result<JObject<'l>, Failure> {
    let len = i32::try_from(items.len())
        .map_err(|_| Failure::Internal(format!("{} longs do not fit a Java array", items.len())))?;
    let array = env.new_long_array(len)?;
    let longs: Vec<jlong> = items.iter().map(|&n| count(n)).collect();
    env.set_long_array_region(&array, 0, &longs)?;
    Ok(array.into())
}

/// Builds a `String[]`, releasing each element's local reference as it goes.
fn string_array<'l>(
    env: &mut JNIEnv<'l>,
    items: &[String],
) -> Result<jni::objects::JObjectArray<'l>, Failure> {
    let len = i32::try_from(items.len()).map_err(|_| {
        Failure::Internal(format!("{} strings do not fit a Java array", items.len()))
    })?;
    let array = env.new_object_array(len, "java/lang/String", JObject::null())?;
    for (i, item) in (0..len).zip(items) {
        let s = env.new_string(item)?;
        env.set_object_array_element(&array, i, &s)?;
        env.delete_local_ref(s)?;
    }
    Ok(array)
}

#[cfg(test)]
mod tests {
    /// The option bits are defined in `NativeBridge.java` and here: they must agree.
    #[test]
    fn the_option_bits_match_native_bridge() {
        let java = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/java/src/main/java/dev/proxyso/NativeBridge.java"
        ))
        .unwrap();
        let java_value = |name: &str| -> i32 {
            let declaration = format!("static final int {name} = ");
            let at = java
                .find(&declaration)
                .unwrap_or_else(|| panic!("no {name}"))
                + declaration.len();
            java[at..]
                .split(';')
                .next()
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        for (name, value) in [
            ("OPTION_KEEP_MAPPED", super::OPTION_KEEP_MAPPED),
            (
                "OPTION_ALLOW_SIGNAL_HANDLERS",
                super::OPTION_ALLOW_SIGNAL_HANDLERS,
            ),
            ("OPTION_EXACT_TIMING", super::OPTION_EXACT_TIMING),
            ("OPTION_PREFLIGHT", super::OPTION_PREFLIGHT),
        ] {
            assert_eq!(java_value(name), value, "{name}");
        }
    }
}
