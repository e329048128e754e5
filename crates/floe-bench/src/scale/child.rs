//! One engine's run of the `scale` suite, in two processes of its own: the hidden
//! `scale-load` suite loads the keys, waits for the compactions and closes the engine
//! ([`load`]); the hidden `scale-reads` suite, in a fresh process (as a restarted service
//! would be, its heap holding nothing of the load), drops the directory from the page
//! cache, reopens it and reads, seeks, reopens again and runs the mixed phase
//! ([`reopen`]). Each phase has the peak of its process's resident memory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use serde::{Deserialize, Serialize};

use super::ScaleOptions;
use super::memory::{PeakSampler, Resident, resident};
use super::page_cache;
use crate::Config;
use crate::dbbench::data::{Data, pick};
use crate::dbbench::progress::{self, Display};
use crate::dbbench::{
    DbBenchOptions, Engine, EngineKind, EngineOptions, Load, dir_size, seek_checked,
};
use crate::report::percentiles;

/// Salts that make each phase pick its own sequence of random keys (the cold and the warm
/// reads share one: the warm pass reads what the cold one read).
const SALT_READ: u64 = 0x5ca1e;
const SALT_SEEK: u64 = 0x5ca1e5eec;
const SALT_MIXED_READ: u64 = 0x313ed;
const SALT_MIXED_WRITE: u64 = 0x313ed3;

/// What one phase measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timed {
    /// Operations done (1 for an open, 0 for waiting on compactions).
    pub ops: u64,
    /// Wall-clock seconds the phase took.
    pub secs: f64,
    /// Latency percentiles (p50, p99, p99.9) in nanoseconds, where each operation was
    /// timed.
    pub latency_ns: Option<[u64; 3]>,
    /// The peak of this process's resident memory during the phase; `None` where the
    /// kernel does not report it.
    pub memory: Option<Resident>,
}

impl Timed {
    /// Operations per second.
    #[must_use]
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.secs.max(1e-9)
    }
}

/// One second of the mixed run: the time, the resident memory then and the operations
/// done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MixedSample {
    /// Whole seconds since the mixed run started.
    pub second: u64,
    /// `RssAnon` in bytes.
    pub anon: u64,
    /// `RssFile` in bytes.
    pub file: u64,
    /// Reads done so far.
    pub reads: u64,
    /// Writes done so far.
    pub writes: u64,
}

/// The mixed read/write run: one reader and one writer at full speed for a fixed time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mixed {
    /// The reads, over the whole run (with the peak memory of the run).
    pub reads: Timed,
    /// The writes, over the same time.
    pub writes: u64,
    /// One sample a second.
    pub samples: Vec<MixedSample>,
}

/// What the loading process measured, sent to the parent as one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Loaded {
    /// The load: every key once, in random order, in batches of 1000, then a flush.
    pub load: Timed,
    /// The compactions the load left, before the close (see [`EngineRun::settle`]).
    pub settle: Timed,
    /// The space the directory takes after a clean close.
    pub disk_bytes: u64,
    /// What the engine reported about itself after the load had settled.
    pub notes: Vec<(String, String)>,
}

/// What the reading process measured, sent to the parent as one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reopened {
    /// The reopen with the directory dropped from the page cache.
    pub open_cold: Timed,
    /// Random point reads right after the cold reopen.
    pub read_cold: Timed,
    /// The same reads again.
    pub read_warm: Timed,
    /// Random seeks, each reading the entries after it.
    pub seek: Timed,
    /// A reopen after a clean close, the page cache as the reads left it.
    pub open_warm: Timed,
    /// The mixed run, if one was asked for.
    pub mixed: Option<Mixed>,
}

/// Everything both processes of one engine measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineRun {
    /// The engine's name.
    pub engine: String,
    /// Keys loaded.
    pub keys: u64,
    /// The bytes of those keys and values.
    pub raw_bytes: u64,
    /// The load: every key once, in random order, in batches of 1000, then a flush.
    pub load: Timed,
    /// The compactions the load left, before the close: how long after the load they were
    /// done (see [`Engine::wait_for_compactions`]), and the memory while waiting.
    pub settle: Timed,
    /// The space the directory takes after a clean close.
    pub disk_bytes: u64,
    /// The reopen with the directory dropped from the page cache.
    pub open_cold: Timed,
    /// Random point reads right after the cold reopen.
    pub read_cold: Timed,
    /// The same reads again.
    pub read_warm: Timed,
    /// Random seeks, each reading the entries after it.
    pub seek: Timed,
    /// A reopen after a clean close, the page cache as the reads left it.
    pub open_warm: Timed,
    /// The mixed run, if one was asked for.
    pub mixed: Option<Mixed>,
    /// What the engine reported about itself after the load had settled.
    pub notes: Vec<(String, String)>,
}

impl EngineRun {
    /// The run of `engine` on `keys` keys of `entry_bytes` bytes each (key and value), from
    /// what its two processes measured.
    #[must_use]
    pub fn new(
        engine: &str,
        keys: u64,
        entry_bytes: u64,
        loaded: Loaded,
        reopened: Reopened,
    ) -> EngineRun {
        let Loaded {
            load,
            settle,
            disk_bytes,
            notes,
        } = loaded;
        let Reopened {
            open_cold,
            read_cold,
            read_warm,
            seek,
            open_warm,
            mixed,
        } = reopened;
        EngineRun {
            engine: engine.to_string(),
            keys,
            raw_bytes: keys * entry_bytes,
            load,
            settle,
            disk_bytes,
            open_cold,
            read_cold,
            read_warm,
            seek,
            open_warm,
            mixed,
            notes,
        }
    }
}

/// Runs `f`, timing it and sampling the process's peak memory meanwhile.
fn measured<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, Timed)> {
    let sampler = PeakSampler::start(PeakSampler::INTERVAL);
    let start = Instant::now();
    let result = f();
    let secs = start.elapsed().as_secs_f64();
    let memory = sampler.finish();
    Ok((
        result?,
        Timed {
            secs,
            memory,
            ..Timed::default()
        },
    ))
}

/// Per-thread buffers, reused by every operation.
#[derive(Debug, Default)]
struct Scratch {
    key: Vec<u8>,
    value: Vec<u8>,
}

/// Runs `op` for operation `0, 1, …` until `limit` operations or `time` have passed,
/// whichever comes first, timing each one, with a progress bar and the peak memory.
fn bounded(
    display: Display,
    label: &str,
    limit: u64,
    time: Duration,
    mut op: impl FnMut(u64, &mut Scratch) -> anyhow::Result<()>,
) -> anyhow::Result<Timed> {
    progress::show(display, label, limit, |progress| {
        let sampler = PeakSampler::start(PeakSampler::INTERVAL);
        let mut scratch = Scratch::default();
        let mut samples = Vec::with_capacity(limit.min(1 << 24) as usize);
        let start = Instant::now();
        let mut done = 0;
        let mut result = Ok(());
        while done < limit {
            let began = Instant::now();
            if began - start >= time {
                break;
            }
            result = op(done, &mut scratch);
            if result.is_err() {
                break;
            }
            samples.push(began.elapsed().as_nanos() as u64);
            progress.tick(done);
            done += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        let memory = sampler.finish();
        result.with_context(|| format!("{label}: operation {done}"))?;
        Ok(Timed {
            ops: done,
            secs,
            latency_ns: percentiles(&mut samples),
            memory,
        })
    })
}

/// What both processes of one engine share: the engine, its database (`db` in the run
/// directory, `options.dir`), how it is opened, and the keys and values.
struct Setup<'a> {
    kind: EngineKind,
    path: PathBuf,
    engine_options: EngineOptions,
    data: Data,
    keys: u64,
    display: Display,
    scale: &'a ScaleOptions,
}

impl Setup<'_> {
    fn new<'a>(
        config: &Config,
        options: &DbBenchOptions,
        scale: &'a ScaleOptions,
    ) -> anyhow::Result<Setup<'a>> {
        let &[kind] = options.engines.as_slice() else {
            anyhow::bail!("a scale child runs exactly one engine");
        };
        ensure!(scale.keys > 0, "--keys must be at least 1");
        Ok(Setup {
            kind,
            path: options.dir.join("db"),
            engine_options: options.engine_options(false),
            data: Data::new(
                config.key_size,
                config.value_size,
                config.value_kind,
                config.seed,
            ),
            keys: scale.keys as u64,
            display: options.display,
            scale,
        })
    }

    fn open(&self) -> anyhow::Result<Box<dyn Engine>> {
        self.kind
            .open(&self.path, self.engine_options)
            .with_context(|| format!("opening {} at {}", self.kind, self.path.display()))
    }

    fn label(&self, phase: &str) -> String {
        format!("scale {} {phase}", self.kind)
    }
}

/// The loading process of the one engine of `options.engines`: creates its database in
/// the run directory `options.dir`, loads every key, waits for the compactions the load
/// left, and closes it cleanly.
///
/// # Errors
/// An engine's error, or a problem with the directory.
pub fn load(
    config: &Config,
    options: &DbBenchOptions,
    scale: &ScaleOptions,
) -> anyhow::Result<Loaded> {
    let setup = Setup::new(config, options, scale)?;
    let kind = setup.kind;
    let engine = setup.open()?;
    // The load's progress line adds " (load)" to this.
    let label = format!("scale {kind}");
    let ((), mut load) = measured(|| {
        Load {
            engine: &*engine,
            data: &setup.data,
            keys: setup.keys,
            display: setup.display,
            label: &label,
        }
        .run(|index, key| setup.data.random_key(index, key))
    })?;
    load.ops = setup.keys;
    let (settled, mut settle) = measured(|| engine.wait_for_compactions())?;
    settle.secs = settled.as_secs_f64();
    let notes = engine.notes();
    engine.close().with_context(|| format!("closing {kind}"))?;
    Ok(Loaded {
        load,
        settle,
        disk_bytes: dir_size(&setup.path)?,
        notes,
    })
}

/// The reading process of the one engine of `options.engines`, on the database [`load`]
/// left in the run directory `options.dir`: drops it from the page cache, reopens it (the
/// cold open), reads random keys twice (cold, then warm) and seeks, closes and reopens it
/// (the warm open), runs the mixed phase if asked, and closes it.
///
/// # Errors
/// An engine's error, a read that found something other than what was written, or a
/// problem with the directory or the page cache.
pub fn reopen(
    config: &Config,
    options: &DbBenchOptions,
    scale: &ScaleOptions,
) -> anyhow::Result<Reopened> {
    let setup = Setup::new(config, options, scale)?;
    let (kind, data, keys, display) = (setup.kind, &setup.data, setup.keys, setup.display);
    ensure!(
        setup.path.exists(),
        "no {kind} database at {} to reopen",
        setup.path.display()
    );
    page_cache::drop_dir(&setup.path)?;
    let (engine, mut open_cold) = measured(|| setup.open())?;
    open_cold.ops = 1;
    let reads = |engine: &dyn Engine, phase: &str| {
        bounded(
            display,
            &setup.label(phase),
            setup.scale.reads,
            setup.scale.read_time,
            |i, s| read_checked(engine, data, pick(i, SALT_READ, keys), s, false),
        )
    };
    let read_cold = reads(&*engine, "cold reads")?;
    let read_warm = reads(&*engine, "warm reads")?;
    let wanted = options.seek_nexts + 1;
    let seek = bounded(
        display,
        &setup.label("seeks"),
        setup.scale.reads,
        setup.scale.read_time,
        |i, s| {
            let index = pick(i, SALT_SEEK, keys);
            seek_checked(&*engine, data, index, wanted, &mut s.key, &mut s.value)
        },
    )?;
    engine.close().with_context(|| format!("closing {kind}"))?;

    let (engine, mut open_warm) = measured(|| setup.open())?;
    open_warm.ops = 1;
    let mixed = match setup.scale.mixed {
        Some(duration) => Some(mixed(
            &*engine,
            data,
            keys,
            duration,
            display,
            &setup.label("mixed"),
        )?),
        None => None,
    };
    engine.close().with_context(|| format!("closing {kind}"))?;
    Ok(Reopened {
        open_cold,
        read_cold,
        read_warm,
        seek,
        open_warm,
        mixed,
    })
}

/// Reads key `index` and checks its value: the loaded one, or with `overwritten` also the
/// one the mixed run's writer writes.
fn read_checked(
    engine: &dyn Engine,
    data: &Data,
    index: u64,
    s: &mut Scratch,
    overwritten: bool,
) -> anyhow::Result<()> {
    data.random_key(index, &mut s.key);
    ensure!(engine.get(&s.key, &mut s.value)?, "key #{index} is missing");
    ensure!(
        s.value == data.value(index, 0) || (overwritten && s.value == data.value(index, 1)),
        "key #{index} has a value that was never written"
    );
    Ok(())
}

/// How often the threads of the mixed run publish their counts.
const PUBLISH_EVERY: u64 = 256;

/// Spawns a thread of the mixed run on `scope`: `op` for operation `0, 1, …` until `stop`,
/// publishing the count to `counter` now and then; on an error it sets `stop`, so that the
/// other thread and the sampling end too.
fn counted<'scope, 'env, F>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    stop: &'env AtomicBool,
    counter: &'env AtomicU64,
    mut op: F,
) -> std::thread::ScopedJoinHandle<'scope, anyhow::Result<u64>>
where
    F: FnMut(u64, &mut Scratch) -> anyhow::Result<()> + Send + 'scope,
{
    scope.spawn(move || {
        let mut s = Scratch::default();
        let mut done = 0;
        while !stop.load(Ordering::Relaxed) {
            if let Err(error) = op(done, &mut s) {
                stop.store(true, Ordering::Relaxed);
                return Err(error);
            }
            done += 1;
            if done % PUBLISH_EVERY == 0 {
                counter.store(done, Ordering::Relaxed);
            }
        }
        counter.store(done, Ordering::Relaxed);
        Ok(done)
    })
}

/// One reader and one writer (overwriting random keys with their second value) at full
/// speed for `duration`, this thread sampling the resident memory every second.
fn mixed(
    engine: &dyn Engine,
    data: &Data,
    keys: u64,
    duration: Duration,
    display: Display,
    label: &str,
) -> anyhow::Result<Mixed> {
    let stop = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    let writes = AtomicU64::new(0);
    let sampler = PeakSampler::start(PeakSampler::INTERVAL);
    let start = Instant::now();
    let (samples, reader, writer) = std::thread::scope(|scope| {
        let reader = counted(scope, &stop, &reads, |i, s| {
            read_checked(engine, data, pick(i, SALT_MIXED_READ, keys), s, true)
        });
        let writer = counted(scope, &stop, &writes, |i, s| {
            let index = pick(i, SALT_MIXED_WRITE, keys);
            data.random_key(index, &mut s.key);
            engine.put(&s.key, data.value(index, 1))
        });
        let mut samples = Vec::new();
        let mut second = 0;
        while !stop.load(Ordering::Relaxed) && start.elapsed() < duration {
            second += 1;
            let due = start + Duration::from_secs(second);
            while Instant::now() < due && !stop.load(Ordering::Relaxed) {
                std::thread::sleep((due - Instant::now()).min(Duration::from_millis(50)));
            }
            let now = resident().unwrap_or_default();
            let sample = MixedSample {
                second,
                anon: now.anon,
                file: now.file,
                reads: reads.load(Ordering::Relaxed),
                writes: writes.load(Ordering::Relaxed),
            };
            if display != Display::Quiet && second % 60 == 0 {
                eprintln!(
                    "{label}: {} s, {} reads, {} writes, RssAnon {} MiB",
                    second,
                    sample.reads,
                    sample.writes,
                    sample.anon >> 20
                );
            }
            samples.push(sample);
        }
        stop.store(true, Ordering::Relaxed);
        let join = |handle: std::thread::ScopedJoinHandle<'_, anyhow::Result<u64>>| {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        };
        (samples, join(reader), join(writer))
    });
    let secs = start.elapsed().as_secs_f64();
    let memory = sampler.finish();
    let reads = reader.with_context(|| format!("{label}: the reader"))?;
    let writes = writer.with_context(|| format!("{label}: the writer"))?;
    Ok(Mixed {
        reads: Timed {
            ops: reads,
            secs,
            latency_ns: None,
            memory,
        },
        writes,
        samples,
    })
}
