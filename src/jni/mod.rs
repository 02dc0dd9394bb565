//! The JNI layer: `dev.proxyso.NativeBridge`'s native methods, each a thin shim over `Registry`.
//!
//! Every entry point goes through `entry::run`, which catches panics and turns every error
//! into the matching Java exception; none of them holds state of its own.

mod calls;
mod entry;
mod handles;
mod strings;

use std::env;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use jni::JNIEnv;
use jni::objects::{JByteArray, JClass, JObject, JString, JValue};
use jni::sys::{jboolean, jint, jlong, jobject, jobjectArray};

use crate::plugin::LoadOptions;
use crate::registry::{LibraryInfo, Registry};
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

/// `NativeBridge.load(String key, String path, byte[] config, int options)`: generation 1.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_load<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    key: JString<'l>,
    path: JString<'l>,
    config: JByteArray<'l>,
    options: jint,
) -> jlong {
    open_version(
        &mut env,
        (&key, &path, &config, options),
        Registry::load_with,
    )
}

/// `NativeBridge.replace(String key, String path, byte[] config, int options)`: the new
/// generation.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_replace<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    key: JString<'l>,
    path: JString<'l>,
    config: JByteArray<'l>,
    options: jint,
) -> jlong {
    open_version(
        &mut env,
        (&key, &path, &config, options),
        Registry::replace_with,
    )
}

/// `NativeBridge.OPTION_KEEP_MAPPED`.
const OPTION_KEEP_MAPPED: jint = 1;
/// `NativeBridge.OPTION_ALLOW_SIGNAL_HANDLERS`.
const OPTION_ALLOW_SIGNAL_HANDLERS: jint = 2;

/// The arguments `load` and `replace` share: key, path, config and option bits.
type OpenArgs<'a, 'l> = (&'a JString<'l>, &'a JString<'l>, &'a JByteArray<'l>, jint);

/// `load` and `replace` alike: read the arguments, run `op`, return the generation.
fn open_version<'l>(
    env: &mut JNIEnv<'l>,
    (key, path, config, options): OpenArgs<'_, 'l>,
    op: fn(&Registry, &str, &str, &LoadOptions<'_>) -> Result<u64, crate::Error>,
) -> jlong {
    run(env, 0, |env| {
        let key: String = env.get_string(key)?.into();
        let path: String = env.get_string(path)?.into();
        let config = env.convert_byte_array(config)?;
        let options = LoadOptions {
            config: &config,
            keep_mapped: options & OPTION_KEEP_MAPPED != 0,
            allow_signal_handlers: options & OPTION_ALLOW_SIGNAL_HANDLERS != 0,
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

/// Builds a `dev.proxyso.LibraryInfo`.
fn library_info<'l>(env: &mut JNIEnv<'l>, info: &LibraryInfo) -> Result<JObject<'l>, Failure> {
    env.with_local_frame_returning_local(16, |env| -> Result<JObject<'_>, Failure> {
        let key = env.new_string(&info.key)?;
        let path = env.new_string(&info.path)?;
        let snapshot = env.new_string(info.snapshot_path.to_string_lossy())?;
        let name = env.new_string(&info.name)?;
        let version = env.new_string(&info.version)?;
        let methods = string_array(env, &info.methods)?;
        let object = env.new_object(
            "dev/proxyso/LibraryInfo",
            "(Ljava/lang/String;JLjava/lang/String;Ljava/lang/String;Ljava/lang/String;\
             Ljava/lang/String;[Ljava/lang/String;ZZJJ)V",
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
            ],
        )?;
        Ok(object)
    })
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
