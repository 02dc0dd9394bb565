//! The JNI layer: `dev.proxyso.NativeBridge`'s native methods, each a thin shim over `Registry`.
//!
//! Every entry point goes through `entry::run`, which catches panics and turns every error
//! into the matching Java exception; none of them holds state of its own.

mod calls;
pub(crate) mod contract;
pub(crate) mod entry;
pub(crate) mod handles;
mod log;
mod pinned;
mod staged;
mod strings;

use std::env;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use jni::JNIEnv;
use jni::objects::{JByteArray, JClass, JLongArray, JObject, JString, JValue};
use jni::sys::{jboolean, jint, jlong, jobject, jobjectArray};

use contract::{generation_stats, key_stats, option};
use entry::{Failure, run};
use handles::HandleTable;
use proxyso_core::isolated::Isolation;
use proxyso_core::plugin::LoadOptions;
use proxyso_core::preflight::Worker;
use proxyso_core::registry::{LibraryInfo, Registry};
use proxyso_core::snapshot::hex;
use strings::read_string;

/// The process's one registry, behind every Java `ProxySo` call.
pub(crate) fn registry() -> &'static Registry {
    REGISTRY.get_or_init(|| {
        // SAFETY: registers a function of this library, which the JVM never unloads, to run at
        // exit; it touches only the registry's snapshot directory and never blocks.
        unsafe { libc::atexit(clean_up_at_exit) };
        Registry::new(env::temp_dir())
    })
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// The open `LibraryHandle`s.
pub(crate) static HANDLES: HandleTable = HandleTable::new();

/// Removes the (empty) snapshot directory when the JVM exits.
extern "C" fn clean_up_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        if let Some(registry) = REGISTRY.get() {
            registry.clean_up_at_exit();
        }
    });
}

/// `NativeBridge.configure(String snapshotDir)`; also reads the system properties
/// `proxyso.mapReserve` (see `map_reserve`) and `proxyso.criticalMicros` (`critical_nanos`).
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_configure<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    snapshot_dir: JString<'l>,
) {
    run(&mut env, (), |env| {
        let dir = read_string(env, &snapshot_dir, "snapshotDir")?;
        let reserve = map_reserve(env)?;
        let critical = critical_nanos(env)?;
        registry().set_snapshot_dir(PathBuf::from(dir));
        proxyso_core::mappings::BUDGET.set_reserve(reserve);
        if let Some(nanos) = critical {
            proxyso_core::brevity::set_short_nanos(nanos);
        }
        Ok(())
    })
}

/// The system property that sets how many memory mappings loads leave free for the JVM.
const MAP_RESERVE_PROPERTY: &str = "proxyso.mapReserve";
/// The system property that sets how long a call may take and still be short enough to run
/// critically (see `proxyso_core::brevity`), in microseconds; 0 for never.
const CRITICAL_MICROS_PROPERTY: &str = "proxyso.criticalMicros";

/// A system property's value, or `None` when it is not set.
fn property(env: &mut JNIEnv<'_>, name: &'static str) -> Result<Option<String>, Failure> {
    let java_name = env.new_string(name)?;
    let value = env
        .call_static_method(
            "java/lang/System",
            "getProperty",
            "(Ljava/lang/String;)Ljava/lang/String;",
            &[JValue::Object(&java_name)],
        )?
        .l()?;
    if value.is_null() {
        return Ok(None);
    }
    read_string(env, &JString::from(value), name).map(Some)
}

/// `proxyso.mapReserve`: a number of mappings, or `None` (unset) for a quarter of the limit.
fn map_reserve(env: &mut JNIEnv<'_>) -> Result<Option<usize>, Failure> {
    property(env, MAP_RESERVE_PROPERTY)?
        .map(|text| parse_whole(MAP_RESERVE_PROPERTY, &text, "memory mappings"))
        .transpose()
}

/// `proxyso.criticalMicros` in nanoseconds, or `None` (unset) for the default.
fn critical_nanos(env: &mut JNIEnv<'_>) -> Result<Option<u64>, Failure> {
    property(env, CRITICAL_MICROS_PROPERTY)?
        .map(|text| {
            let micros: u64 = parse_whole(CRITICAL_MICROS_PROPERTY, &text, "microseconds")?;
            micros.checked_mul(1000).ok_or_else(|| {
                Failure::IllegalArgument(format!(
                    "{CRITICAL_MICROS_PROPERTY} is too large: {micros} microseconds"
                ))
            })
        })
        .transpose()
}

/// The value of property `name`: a whole number of `unit`, 0 or more.
fn parse_whole<T: std::str::FromStr>(
    name: &'static str,
    text: &str,
    unit: &str,
) -> Result<T, Failure> {
    text.trim().parse().map_err(|_| {
        Failure::IllegalArgument(format!(
            "{name} must be a whole number of {unit} (0 or more), not '{}'",
            proxyso_core::text::shown(text)
        ))
    })
}

/// The `proxyso-worker` executable that pre-flight loads run, open, set by
/// `NativeBridge.setWorker`.
static WORKER: RwLock<Option<Arc<Worker>>> = RwLock::new(None);

/// `NativeBridge.setWorker(String path)`: opens the executable, which the caller may delete
/// at once (pre-flights run the open file); `null` for none. A path that is not an executable
/// file is an `IllegalArgumentException` naming it.
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
            let path = PathBuf::from(read_string(env, &path, "path")?);
            Some(Arc::new(
                Worker::open(&path).map_err(Failure::IllegalArgument)?,
            ))
        };
        *WORKER.write().unwrap_or_else(PoisonError::into_inner) = worker;
        Ok(())
    })
}

/// `NativeBridge.load(String key, String path, byte[] config, int options, byte[] sha256,
/// int keepVersions, long[] limits)`: generation 1.
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
    limits: JLongArray<'l>,
) -> jlong {
    open_version(
        &mut env,
        (
            &key,
            &path,
            &config,
            options,
            &sha256,
            keep_versions,
            &limits,
        ),
        Registry::load_with,
    )
}

/// `NativeBridge.replace(String key, String path, byte[] config, int options, byte[] sha256,
/// int keepVersions, long[] limits)`: the new generation.
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
    limits: JLongArray<'l>,
) -> jlong {
    open_version(
        &mut env,
        (
            &key,
            &path,
            &config,
            options,
            &sha256,
            keep_versions,
            &limits,
        ),
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
        let key = read_string(env, &key, "key")?;
        Ok(count(registry().rollback(&key)?))
    })
}

/// The arguments `load` and `replace` share: key, path, config, option bits, the expected
/// SHA-256, how many previous versions to keep, and an isolated load's limits.
type OpenArgs<'a, 'l> = (
    &'a JString<'l>,
    &'a JString<'l>,
    &'a JByteArray<'l>,
    jint,
    &'a JByteArray<'l>,
    jint,
    &'a JLongArray<'l>,
);

/// `load` and `replace` alike: read the arguments, run `op`, return the generation.
fn open_version<'l>(
    env: &mut JNIEnv<'l>,
    (key, path, config, options, sha256, keep_versions, limits): OpenArgs<'_, 'l>,
    op: fn(&Registry, &str, &str, &LoadOptions<'_>) -> Result<u64, proxyso_core::Error>,
) -> jlong {
    run(env, 0, |env| {
        let key = read_string(env, key, "key")?;
        let path = read_string(env, path, "path")?;
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
            contract::keep_versions::UNCHANGED => None,
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
        let isolation = if options & option::ISOLATED != 0 {
            Some(isolation(env, limits, options)?)
        } else {
            None
        };
        let options = LoadOptions {
            config: &config,
            keep_mapped: options & option::KEEP_MAPPED != 0,
            allow_signal_handlers: options & option::ALLOW_SIGNAL_HANDLERS != 0,
            sha256,
            keep_versions,
            keep_copy: false,
            exact_timing: options & option::EXACT_TIMING != 0,
            preflight: options & option::PREFLIGHT != 0,
            worker: worker.as_deref(),
            isolation,
            progress: None,
        };
        Ok(count(op(registry(), &key, &path, &options)?))
    })
}

/// An isolated load's limits from `limits`: call timeout (ns, 0 for none), memory limit
/// (bytes, 0 for none) and probation (ns), as `contract::limits` places them.
fn isolation(
    env: &mut JNIEnv<'_>,
    limits: &JLongArray<'_>,
    options: jint,
) -> Result<Isolation, Failure> {
    if limits.is_null() {
        return Err(Failure::IllegalArgument(
            "an isolated load needs its limits".into(),
        ));
    }
    let mut values = [0i64; contract::limits::LEN];
    if env.get_array_length(limits)? as usize != values.len() {
        return Err(Failure::IllegalArgument(format!(
            "an isolated load's limits are {} numbers",
            values.len()
        )));
    }
    env.get_long_array_region(limits, 0, &mut values)?;
    let positive = |v: i64| u64::try_from(v).ok().filter(|v| *v > 0);
    Ok(Isolation {
        call_timeout: positive(values[contract::limits::CALL_TIMEOUT_NANOS])
            .map(Duration::from_nanos),
        memory_limit: positive(values[contract::limits::MEMORY_LIMIT]),
        rollback_on_crash: options & option::ROLLBACK_ON_CRASH != 0,
        probation: Duration::from_nanos(
            positive(values[contract::limits::PROBATION_NANOS]).unwrap_or(0),
        ),
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
        let key = read_string(env, &key, "key")?;
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
        let key = read_string(env, &key, "key")?;
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

/// `NativeBridge.isLoaded(String key)`: one map lookup, for existence checks that need nothing
/// of `info`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_isLoaded<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    key: JString<'l>,
) -> jboolean {
    run(&mut env, 0, |env| {
        let key = read_string(env, &key, "key")?;
        Ok(jboolean::from(registry().is_loaded(&key)))
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
        let key = read_string(env, &key, "key")?;
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
        let mut totals = [0; key_stats::LEN];
        totals[key_stats::CALLS] = t.calls;
        totals[key_stats::FAILED] = t.failed;
        totals[key_stats::IN_FLIGHT] = t.in_flight;
        totals[key_stats::TOTAL_NANOS] = t.total_nanos;
        totals[key_stats::MAX_NANOS] = t.max_nanos;
        totals[key_stats::REPLACEMENTS] = info.replacements;
        totals[key_stats::ROLLBACKS] = info.rollbacks;
        totals[key_stats::DESTROYS_RUNNING] = info.destroys_running;
        totals[key_stats::SLOW_DESTROYS] = info.slow_destroys;
        totals[key_stats::CRASHES] = info.crashes;
        totals[key_stats::ISOLATED] = u64::from(info.isolated);
        totals[key_stats::WORKER_PID] = u64::try_from(info.worker_pid).unwrap_or(0);
        let totals = long_array(env, &totals)?;
        let last_error = match &info.last_error {
            Some(message) => env.new_string(message)?.into(),
            None => JObject::null(),
        };
        let per_generation: Vec<u64> = info
            .generations
            .iter()
            .flat_map(|g| {
                let c = &g.counts;
                let mut figures = [0; generation_stats::LEN];
                figures[generation_stats::GENERATION] = g.generation;
                figures[generation_stats::CALLS] = c.calls;
                figures[generation_stats::FAILED] = c.failed;
                figures[generation_stats::IN_FLIGHT] = c.in_flight;
                figures[generation_stats::TOTAL_NANOS] = c.total_nanos;
                figures[generation_stats::MAX_NANOS] = c.max_nanos;
                figures[generation_stats::LOAD_NANOS] = g.load_nanos;
                figures[generation_stats::CRASHES] = g.crashes;
                figures
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
    use super::*;

    #[test]
    fn numeric_properties_are_whole_numbers() {
        let reserve = |text| parse_whole::<usize>(MAP_RESERVE_PROPERTY, text, "memory mappings");
        assert_eq!(reserve("16000").unwrap(), 16_000);
        assert_eq!(reserve(" 0 ").unwrap(), 0);
        let micros = |text| parse_whole::<u64>(CRITICAL_MICROS_PROPERTY, text, "microseconds");
        assert_eq!(micros("250").unwrap(), 250);
        for bad in ["", "-1", "25%", "1e3"] {
            match reserve(bad) {
                Err(Failure::IllegalArgument(m)) => assert_eq!(
                    m,
                    format!(
                        "proxyso.mapReserve must be a whole number of memory mappings (0 or \
                         more), not '{bad}'"
                    )
                ),
                other => panic!("{bad:?}: {other:?}"),
            }
            match micros(bad) {
                Err(Failure::IllegalArgument(m)) => {
                    assert!(m.starts_with("proxyso.criticalMicros must be"), "{m}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
