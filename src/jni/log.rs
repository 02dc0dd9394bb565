//! Log records on their way to `java.util.logging`.
//!
//! Any thread may log: a plugin from its own threads, the reaper, a calling thread. None of
//! them may be attached to the JVM, so records are queued here and one Java thread takes them
//! (`NativeBridge.drainLog`) and publishes them. Until that thread first asks, records go to
//! standard error as before; the queue is bounded so that a JVM that stops draining never
//! makes logging plugins grow without end.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, Once, PoisonError};
use std::time::{Duration, Instant};

use jni::JNIEnv;
use jni::objects::{JClass, JObject, JValue};
use jni::sys::{jint, jlong};

use super::entry::{Failure, run};
use proxyso_core::log::{self, Level, Notice, Record};

use super::contract;

/// Records kept waiting at most; older ones are dropped first.
const CAPACITY: usize = 4096;

#[derive(Default)]
struct Queue {
    records: VecDeque<Record>,
    /// Records dropped since the last drain.
    dropped: u64,
    /// Notices for the watch listeners (few: one per rollback), delivered after the records.
    notices: Vec<Notice>,
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue {
    records: VecDeque::new(),
    dropped: 0,
    notices: Vec::new(),
});
static READY: Condvar = Condvar::new();

/// The log sink while Java drains: queue, dropping the oldest when full.
fn enqueue(record: Record) {
    let mut queue = QUEUE.lock().unwrap_or_else(PoisonError::into_inner);
    if queue.records.len() >= CAPACITY {
        queue.records.pop_front();
        queue.dropped += 1;
    }
    queue.records.push_back(record);
    drop(queue);
    READY.notify_one();
}

/// The notice sink while Java drains.
fn enqueue_notice(notice: Notice) {
    let mut queue = QUEUE.lock().unwrap_or_else(PoisonError::into_inner);
    // Bounded as the records are: a JVM that stops draining loses the oldest.
    if queue.notices.len() >= CAPACITY {
        queue.notices.remove(0);
    }
    queue.notices.push(notice);
    drop(queue);
    READY.notify_one();
}

/// Takes the waiting notices.
fn take_notices() -> Vec<Notice> {
    std::mem::take(&mut QUEUE.lock().unwrap_or_else(PoisonError::into_inner).notices)
}

/// Waits up to `timeout` for records, then takes them all (a note of any dropped first).
fn take(timeout: Duration) -> Vec<Record> {
    let deadline = Instant::now() + timeout;
    let mut queue = QUEUE.lock().unwrap_or_else(PoisonError::into_inner);
    while queue.records.is_empty() && queue.dropped == 0 && queue.notices.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Vec::new();
        }
        queue = READY
            .wait_timeout(queue, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    let mut batch = Vec::with_capacity(queue.records.len() + 1);
    if queue.dropped > 0 {
        batch.push(Record {
            level: Level::Warn,
            from_plugin: false,
            key: None,
            generation: 0,
            message: format!(
                "{} log records dropped: more than {CAPACITY} were waiting",
                queue.dropped
            ),
        });
        queue.dropped = 0;
    }
    batch.extend(queue.records.drain(..));
    batch
}

/// `NativeBridge.drainLog(long timeoutMillis)`: delivers waiting records to
/// `NativeBridge.logged`, on this thread; returns how many.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_proxyso_NativeBridge_drainLog<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    timeout_millis: jlong,
) -> jint {
    static TO_JAVA: Once = Once::new();
    run(&mut env, 0, |env| {
        TO_JAVA.call_once(|| {
            log::set_sink(Some(Arc::new(enqueue)));
            log::set_notice_sink(Some(Arc::new(enqueue_notice)));
        });
        let timeout = Duration::from_millis(u64::try_from(timeout_millis).unwrap_or(0));
        let batch = take(timeout);
        for record in &batch {
            deliver(env, record)?;
        }
        // After the records: the log line of a rollback comes before its listener hears of it.
        for notice in take_notices() {
            deliver_notice(env, &notice)?;
        }
        Ok(jint::try_from(batch.len()).unwrap_or(jint::MAX))
    })
}

/// Calls `NativeBridge.logged(int level, boolean fromPlugin, String key, long generation,
/// String message)`.
fn deliver(env: &mut JNIEnv<'_>, record: &Record) -> Result<(), Failure> {
    env.with_local_frame(4, |env| -> Result<(), Failure> {
        let key = match &record.key {
            Some(key) => env.new_string(&**key)?.into(),
            None => JObject::null(),
        };
        let message = env.new_string(&record.message)?;
        let called = env.call_static_method(
            "dev/proxyso/NativeBridge",
            "logged",
            "(IZLjava/lang/String;JLjava/lang/String;)V",
            &[
                JValue::Int(level_code(record.level)),
                JValue::Bool(record.from_plugin.into()),
                JValue::Object(&key),
                JValue::Long(i64::try_from(record.generation).unwrap_or(i64::MAX)),
                JValue::Object(&message),
            ],
        );
        if called.is_err() && env.exception_check()? {
            // `logged` promises not to throw; if something still did (an OutOfMemoryError),
            // losing one record is better than losing the rest of the batch.
            env.exception_clear()?;
        }
        Ok(())
    })
}

/// Calls `NativeBridge.rolledBack(String key, long from, long to, String reason)`.
fn deliver_notice(env: &mut JNIEnv<'_>, notice: &Notice) -> Result<(), Failure> {
    let Notice::RolledBack {
        key,
        from,
        to,
        reason,
    } = notice;
    env.with_local_frame(4, |env| -> Result<(), Failure> {
        let key = env.new_string(&**key)?;
        let reason = env.new_string(reason)?;
        let called = env.call_static_method(
            "dev/proxyso/NativeBridge",
            "rolledBack",
            "(Ljava/lang/String;JJLjava/lang/String;)V",
            &[
                JValue::Object(&key),
                JValue::Long(i64::try_from(*from).unwrap_or(i64::MAX)),
                JValue::Long(i64::try_from(*to).unwrap_or(i64::MAX)),
                JValue::Object(&reason),
            ],
        );
        if called.is_err() && env.exception_check()? {
            // `rolledBack` promises not to throw, as `logged` does.
            env.exception_clear()?;
        }
        Ok(())
    })
}

/// The level as `NativeBridge.logged` takes it.
fn level_code(level: Level) -> i32 {
    match level {
        Level::Error => contract::log::ERROR,
        Level::Warn => contract::log::WARN,
        Level::Info => contract::log::INFO,
        Level::Debug => contract::log::DEBUG,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> Record {
        Record {
            level: Level::Info,
            from_plugin: true,
            key: Some("k".into()),
            generation: 1,
            message: n.to_string(),
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_says_so() {
        for n in 0..CAPACITY + 3 {
            enqueue(record(n));
        }
        let batch = take(Duration::ZERO);
        assert_eq!(batch.len(), CAPACITY + 1);
        assert_eq!(batch[0].level, Level::Warn);
        assert!(
            batch[0].message.starts_with("3 log records dropped"),
            "{:?}",
            batch[0]
        );
        assert_eq!(batch[1].message, "3", "the oldest went first");
        assert_eq!(batch[CAPACITY].message, (CAPACITY + 2).to_string());
        assert!(
            take(Duration::from_millis(10)).is_empty(),
            "then it is empty"
        );
    }
}
