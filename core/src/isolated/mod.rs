//! Isolated plugins: a version served by a worker process of its own, so that its crash, abort,
//! `exit` or hang costs the caller an error, never the host process.
//!
//! The host takes its private snapshot as for any load, then starts `proxyso-worker serve`
//! (from the one spawning thread, `spawner`) with the snapshot, a shared region (`region`, a
//! sealed memfd) and a log pipe. The worker loads the plugin as the host would and answers with
//! its descriptor; calls then go through the region's slots, one copy each way (`instance`).
//! A monitor thread per worker drains its output and log records and learns its end through a
//! pidfd. When a worker dies, every call in it fails with its death ([`Fail::Dead`]), and the
//! next call starts a fresh worker for the same snapshot and configuration, unless workers of
//! this version died [`BACKOFF_CRASHES`] times within [`BACKOFF_WINDOW`]: then calls fail at
//! once until that window has passed since the oldest of them.

pub mod instance;
pub mod region;
pub mod spawner;

use std::collections::VecDeque;
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::host::FixedOutput;
use crate::log;
use crate::preflight::Worker;
use crate::protocol::info::Info;

pub use instance::{Death, Fail, Input, Instance, Launch, LogTag, OnDeath, Out};

/// Crashes within [`BACKOFF_WINDOW`] after which restarts are held back.
pub const BACKOFF_CRASHES: usize = 3;
/// See [`BACKOFF_CRASHES`].
pub const BACKOFF_WINDOW: Duration = Duration::from_secs(10);
/// How long a retired version's worker may take to run `destroy` before it is killed.
pub const DESTROY_GRACE: Duration = Duration::from_secs(5);
/// Each slot's window: the most an isolated call takes in and gives back, together.
pub const WINDOW: usize = 256 << 20;

/// How a load asks to be isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Isolation {
    /// A call running longer is stopped by killing its worker.
    pub call_timeout: Option<Duration>,
    /// The worker's address-space allowance beyond what it has once started, in bytes.
    pub memory_limit: Option<u64>,
    /// A crash within `probation` of going into service rolls the key back.
    pub rollback_on_crash: bool,
    /// See `rollback_on_crash`.
    pub probation: Duration,
}

impl Default for Isolation {
    fn default() -> Isolation {
        Isolation {
            call_timeout: None,
            memory_limit: None,
            rollback_on_crash: false,
            probation: Duration::from_secs(60),
        }
    }
}

/// What a worker's death makes the version's owner do: count it, and perhaps roll back.
pub type CrashHook = Box<dyn Fn(&Death, bool) + Send + Sync>;

/// What the monitor's death callback shares with the version.
struct Shared {
    key: Arc<str>,
    generation: Arc<AtomicU64>,
    /// "name version" of the plugin, once its first worker answered.
    describe: OnceLock<String>,
    isolation: Isolation,
    /// When recent deaths happened, oldest first (at most `BACKOFF_CRASHES`).
    deaths: Mutex<VecDeque<Instant>>,
    /// When the version went into service.
    in_service: Mutex<Option<Instant>>,
    hook: Mutex<Option<CrashHook>>,
}

impl Shared {
    fn died(&self, death: &Death) {
        // A worker that ended before its plugin answered is its starter's to report: a load
        // fails, a restart counts itself (`failed_restart`).
        if death.expected || death.during_start {
            return;
        }
        self.crashed(Instant::now());
        log::event(
            log::Level::Warn,
            &self.key,
            self.generation.load(Ordering::Relaxed),
            format!(
                "the worker process of plugin {} {}; the next call starts a new one",
                self.describe(),
                death.describe()
            ),
        );
        let in_probation = self.isolation.rollback_on_crash
            && self
                .in_service
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some_and(|since| since.elapsed() < self.isolation.probation);
        if let Some(hook) = &*self.hook.lock().unwrap_or_else(PoisonError::into_inner) {
            hook(death, in_probation);
        }
    }

    fn describe(&self) -> &str {
        self.describe.get().map_or("(starting)", String::as_str)
    }

    fn crashed(&self, at: Instant) {
        let mut deaths = self.deaths.lock().unwrap_or_else(PoisonError::into_inner);
        deaths.push_back(at);
        while deaths.len() > BACKOFF_CRASHES {
            deaths.pop_front();
        }
    }

    /// How long restarts are still held back, if they are.
    fn held_back(&self) -> Option<Duration> {
        let deaths = self.deaths.lock().unwrap_or_else(PoisonError::into_inner);
        if deaths.len() < BACKOFF_CRASHES {
            return None;
        }
        let until = *deaths.front()? + BACKOFF_WINDOW;
        until.checked_duration_since(Instant::now())
    }
}

/// A version served by worker processes: the one running now, and what starting another
/// takes.
pub struct Remote {
    info: Info,
    launch: Launch,
    shared: Arc<Shared>,
    current: ArcSwapOption<Instance>,
    /// Serialises restarts.
    restarting: Mutex<()>,
    /// Held around each call of a plugin that asked for its calls to be serialised, so that
    /// waiting for another call is not counted against the call timeout.
    serial: Option<Mutex<()>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("plugin", &self.shared.describe)
            .field("pid", &self.worker_pid())
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Starts the first worker for the snapshot behind `library`; the plugin's descriptor, or
    /// why it could not be loaded.
    pub fn start(
        worker: &Worker,
        library: Arc<File>,
        source: &str,
        config: &[u8],
        isolation: Isolation,
        key: Arc<str>,
        generation: u64,
    ) -> Result<Remote, String> {
        let launch = Launch {
            worker: worker.clone(),
            library,
            source: source.to_owned(),
            config: config.into(),
            slots: slots(),
            window: WINDOW,
            memory_limit: isolation.memory_limit.unwrap_or(0),
        };
        let generation = Arc::new(AtomicU64::new(generation));
        let shared = Arc::new(Shared {
            key: Arc::clone(&key),
            generation: Arc::clone(&generation),
            describe: OnceLock::new(),
            isolation,
            deaths: Mutex::default(),
            in_service: Mutex::new(None),
            hook: Mutex::new(None),
        });
        let tag = LogTag { key, generation };
        let (instance, info) = Instance::start(&launch, tag, Remote::on_death(&shared))?;
        let _ = shared
            .describe
            .set(format!("{} {}", info.name, info.version));
        let serial = (info.flags & proxyso_abi::FLAG_SERIALIZE != 0).then(|| Mutex::new(()));
        Ok(Remote {
            serial,
            info,
            launch,
            shared,
            current: ArcSwapOption::from(Some(instance)),
            restarting: Mutex::new(()),
            closed: AtomicBool::new(false),
        })
    }

    /// The death callback of a worker: into `shared`, which outlives no one it should not.
    fn on_death(shared: &Arc<Shared>) -> OnDeath {
        let weak = Arc::downgrade(shared);
        Arc::new(move |death: &Death| {
            if let Some(shared) = weak.upgrade() {
                shared.died(death);
            }
        })
    }

    /// The plugin's name, version, flags and methods, as its worker reported them.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The pid of the worker serving now; 0 when none runs.
    pub fn worker_pid(&self) -> i32 {
        match &*self.current.load() {
            Some(instance) if !instance.is_finished() => instance.pid(),
            _ => 0,
        }
    }

    /// The limits it was loaded with.
    pub fn isolation(&self) -> Isolation {
        self.shared.isolation
    }

    /// How the worker serving last ended, once its monitor has reaped it, waiting up to `wait`
    /// for that (a worker killed for a timeout ends a moment after the call returned); `None`
    /// while it runs, or when none was started.
    pub fn await_death(&self, wait: Duration) -> Option<Arc<Death>> {
        let instance = self.current.load_full()?;
        let deadline = Instant::now() + wait;
        loop {
            if let Some(death) = instance.death() {
                return Some(Arc::clone(death));
            }
            if !instance.is_finished() || Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Tags later log records with `generation`.
    pub fn set_generation(&self, generation: u64) {
        self.shared.generation.store(generation, Ordering::Relaxed);
    }

    /// Marks the version as in service from now, its probation starting when a replace or
    /// rollback put it there (`probation`), and sets what a worker's death tells:
    /// `hook(death, in_probation)`.
    pub fn in_service(&self, hook: CrashHook, probation: bool) {
        *self
            .shared
            .in_service
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = probation.then(Instant::now);
        *self
            .shared
            .hook
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(hook);
    }

    /// Calls method `index` with `input`; the output into `out`.
    pub fn call(&self, index: usize, input: Input<'_>, out: Out<'_, '_>) -> Result<(), Fail> {
        let instance = self.instance()?;
        let method = u32::try_from(index).unwrap_or(u32::MAX - 1);
        let name = self.info.methods.get(index).map_or("", String::as_str);
        let _serial = self
            .serial
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner));
        instance.call(method, name, input, out, self.shared.isolation.call_timeout)
    }

    /// As `call`, into a fixed buffer.
    pub fn call_fixed(
        &self,
        index: usize,
        input: &[u8],
        out: &mut FixedOutput<'_>,
    ) -> Result<(), Fail> {
        self.call(index, Input::Bytes(input), Out::Fixed(out))
    }

    /// The worker serving now, started anew if the last one died.
    fn instance(&self) -> Result<Arc<Instance>, Fail> {
        if let Some(instance) = &*self.current.load() {
            if !instance.is_finished() {
                return Ok(Arc::clone(instance));
            }
        }
        self.restart()
    }

    #[cold]
    fn restart(&self) -> Result<Arc<Instance>, Fail> {
        let _one = self
            .restarting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let last = self.current.load_full();
        if let Some(instance) = &last {
            if !instance.is_finished() {
                return Ok(Arc::clone(instance));
            }
            // Killed (a timeout) but not reaped yet: one worker at a time, whatever it holds
            // (memory, a device, a lock file), and its death counted before the backoff looks.
            let deadline = Instant::now() + DESTROY_GRACE;
            while !instance.is_dead() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let last_death = last.as_ref().and_then(|instance| instance.death().cloned());
        if self.closed.load(Ordering::Acquire) {
            return Err(Fail::Refused("the version is retired".into()));
        }
        if let Some(wait) = self.shared.held_back() {
            let why = format!(
                "its workers died {BACKOFF_CRASHES} times within {} s, so the next start is \
                 held back for {} ms",
                BACKOFF_WINDOW.as_secs(),
                wait.as_millis().max(1)
            );
            return Err(Fail::Dead(Arc::new(match last_death {
                Some(death) => Death {
                    note: Some(why),
                    ..(*death).clone()
                },
                None => held_back_death(why),
            })));
        }
        let tag = LogTag {
            key: Arc::clone(&self.shared.key),
            generation: Arc::clone(&self.shared.generation),
        };
        match Instance::start(&self.launch, tag, Remote::on_death(&self.shared)) {
            Ok((instance, info)) if info == self.info => {
                self.current.store(Some(Arc::clone(&instance)));
                Ok(instance)
            }
            Ok((instance, info)) => {
                instance.shut_down(DESTROY_GRACE);
                Err(self.failed_restart(format!(
                    "its restarted worker serves {} {}, not {}",
                    info.name,
                    info.version,
                    self.shared.describe()
                )))
            }
            Err(why) => Err(self.failed_restart(format!("its restart failed: {why}"))),
        }
    }

    /// A restart that failed: counted, logged and told to the version like a crash (it counts
    /// toward the backoff, and within the probation it rolls back).
    #[cold]
    fn failed_restart(&self, why: String) -> Fail {
        let death = held_back_death(why);
        self.shared.died(&death);
        Fail::Dead(Arc::new(death))
    }

    /// Ends the worker: runs the plugin's `destroy` there once every call returned (the
    /// version is retired), or kills it after [`DESTROY_GRACE`].
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let _one = self
            .restarting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(instance) = self.current.swap(None) {
            instance.shut_down(DESTROY_GRACE);
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.close();
    }
}

/// A death that stands for "no worker could be had": no process ended (signal 0, exit -1).
fn held_back_death(why: String) -> Death {
    Death {
        pid: 0,
        end: crate::child::End::Exited(-1),
        output: String::new(),
        killed_for: None,
        note: Some(why),
        during_start: false,
        before_plugin_code: false,
        expected: false,
    }
}

/// Slots per worker: how many calls it serves at once.
fn slots() -> usize {
    let cpus = std::thread::available_parallelism().map_or(4, usize::from);
    (cpus * 2).clamp(4, 64)
}
