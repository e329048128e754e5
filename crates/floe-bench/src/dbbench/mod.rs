//! db_bench-style workloads run against several engines through one [`Engine`] trait:
//! floe, fjall and (with the cargo feature `rocksdb`) RocksDB.
//!
//! Each (workload, thread count, engine) runs on a fresh directory: the workloads that
//! read or overwrite first load every key (untimed, in batches, then a flush), the disk
//! is left to finish its writeback (`sync(2)`, so no run pays for an earlier one's), and
//! then the timed phase runs with a progress bar. Every read is checked against what was
//! written, so a fast but wrong engine fails instead of winning. Fill workloads also
//! measure the directory's size after a flush and close, against the raw size of the keys
//! and values. The `keyspaces` workload (`keyspaces.rs`) has two timed phases, writes from
//! an empty database and then reads, and reports each as a measurement of its own; the
//! `deleterange` workload (`deleterange.rs`) reports reads before and after the removal of
//! a tenth of the keys, the removal itself, and on the engines with a range delete the
//! measurements of its two targets; the `transactions` workload (`transactions.rs`) runs
//! read-modify-write transactions at low and at high contention, each on a database of
//! its own.

pub mod data;
mod deleterange;
pub mod engine;
pub mod fjall;
pub mod floe;
mod keyspaces;
pub mod progress;
#[cfg(feature = "rocksdb")]
pub mod rocksdb;
mod transactions;
mod workloads;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context as _, bail, ensure};

pub use self::engine::{
    Engine, EngineKind, EngineOptions, Keyspaces, compression_name, parse_compression,
};
use self::progress::Display;
use self::workloads::Outcome;
pub(crate) use self::workloads::{Load, seek_checked};
use crate::report::percentiles;
use crate::{Config, Measurement};

/// One db_bench workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Writes every key once in ascending order.
    FillSeq,
    /// Writes every key once in random order.
    FillRandom,
    /// Overwrites random keys of a loaded database, as many writes as keys.
    Overwrite,
    /// Reads random existing keys, as many reads as keys.
    ReadRandom,
    /// Reads keys that were never written, as many reads as keys.
    ReadMissing,
    /// Seeks to a random existing key and reads it and the next entries (10 by default);
    /// a tenth as many seeks as keys.
    SeekRandom,
    /// Reads the whole database in key order once.
    ReadSeq,
    /// Random reads while one more thread overwrites random keys; reader throughput.
    ReadWhileWriting,
    /// Random writes, each fsynced before it is acknowledged (a few thousand per thread;
    /// concurrent writers may share an fsync: group commit).
    FillSync,
    /// Random writes spread over 8 keyspaces of one database, every 10th a batch across 4
    /// of them, as many entries as keys; then as many random reads over the keyspaces.
    /// Reported as two measurements, `keyspaces-write` and `keyspaces-read`; not among
    /// the [`Workload::DEFAULT`] ones.
    Keyspaces,
    /// On sequentially loaded keys: random reads, the removal of a contiguous tenth of
    /// the keys in one range delete (key by key on fjall), random reads again; then, where
    /// the engine has a range delete, the same removal key by key, and random reads with
    /// and without 10,000 small range tombstones live. Reported as several measurements
    /// (`deleterange-*`); not among the [`Workload::DEFAULT`] ones.
    DeleteRange,
    /// Transactions that read two random keys and write both back (counters incremented),
    /// retried on conflict, on each engine's optimistic transactions: at low contention
    /// (among all the keys) and at high contention (among 100), a fifth as many commits
    /// as keys each. Reported as `transactions-low` and `transactions-high`; not among
    /// the [`Workload::DEFAULT`] ones.
    Transactions,
}

impl Workload {
    /// Every workload, in the order they run.
    pub const ALL: [Workload; 12] = [
        Workload::FillSeq,
        Workload::FillRandom,
        Workload::Overwrite,
        Workload::ReadRandom,
        Workload::ReadMissing,
        Workload::SeekRandom,
        Workload::ReadSeq,
        Workload::ReadWhileWriting,
        Workload::FillSync,
        Workload::Keyspaces,
        Workload::DeleteRange,
        Workload::Transactions,
    ];

    /// The workloads a run measures unless told otherwise: all but `keyspaces`,
    /// `deleterange` and `transactions`, which are asked for by name (`--workloads
    /// keyspaces`): `keyspaces` would add about a seventh to the time of a default run.
    pub const DEFAULT: [Workload; 9] = [
        Workload::FillSeq,
        Workload::FillRandom,
        Workload::Overwrite,
        Workload::ReadRandom,
        Workload::ReadMissing,
        Workload::SeekRandom,
        Workload::ReadSeq,
        Workload::ReadWhileWriting,
        Workload::FillSync,
    ];

    /// The workload's name on the command line and in results (db_bench's names).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Workload::FillSeq => "fillseq",
            Workload::FillRandom => "fillrandom",
            Workload::Overwrite => "overwrite",
            Workload::ReadRandom => "readrandom",
            Workload::ReadMissing => "readmissing",
            Workload::SeekRandom => "seekrandom",
            Workload::ReadSeq => "readseq",
            Workload::ReadWhileWriting => "readwhilewriting",
            Workload::FillSync => "fillsync",
            Workload::Keyspaces => "keyspaces",
            Workload::DeleteRange => "deleterange",
            Workload::Transactions => "transactions",
        }
    }

    /// The thread counts a default run measures.
    #[must_use]
    pub fn default_threads(self) -> &'static [usize] {
        match self {
            Workload::Overwrite | Workload::Transactions => &[1, 2, 4],
            Workload::ReadRandom => &[1, 2],
            Workload::FillSync => &[1, 4],
            _ => &[1],
        }
    }

    /// Whether the workload can spread over threads (`fillseq` and `readseq` are one
    /// ordered stream and always run on one, and `deleterange` compares single-threaded
    /// phases with each other).
    #[must_use]
    pub fn is_parallel(self) -> bool {
        !matches!(
            self,
            Workload::FillSeq | Workload::ReadSeq | Workload::DeleteRange
        )
    }

    /// Whether the timed phase starts from a loaded database.
    fn needs_load(self) -> bool {
        !matches!(
            self,
            Workload::FillSeq
                | Workload::FillRandom
                | Workload::FillSync
                | Workload::Keyspaces
                | Workload::DeleteRange
                | Workload::Transactions
        )
    }

    /// Whether the run ends by measuring the size of the directory.
    fn measures_space(self) -> bool {
        matches!(
            self,
            Workload::FillSeq | Workload::FillRandom | Workload::Overwrite
        )
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> anyhow::Result<Workload> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == name)
            .with_context(|| {
                let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
                format!(
                    "unknown workload {name:?} (workloads: {})",
                    names.join(", ")
                )
            })
    }
}

/// How the db_bench suite runs, beyond the shared [`Config`] (keys, sizes, seed).
#[derive(Debug, Clone)]
pub struct DbBenchOptions {
    /// The engines to compare, in the order results are shown.
    pub engines: Vec<EngineKind>,
    /// The workloads to run, in order ([`Workload::DEFAULT`] by default).
    pub workloads: Vec<Workload>,
    /// Memtable capacity in bytes for every engine (64 MiB by default).
    pub write_buffer: usize,
    /// Thread counts for every parallel workload instead of each one's defaults.
    pub threads: Option<Vec<usize>>,
    /// Synced writes per thread in `fillsync` (1000 by default: each costs an fsync).
    pub sync_ops: u64,
    /// Rounds `fillsync` is split into, the engines taking turns each round (4 by
    /// default): a disk's sync latency drifts over seconds, so engines measured one after
    /// the other would meet different disks. Each round is a fresh database; the figures
    /// pool all rounds.
    pub sync_rounds: usize,
    /// Entries read after each seek in `seekrandom` (10 by default).
    pub seek_nexts: usize,
    /// The cache of table blocks of every engine, in bytes (`--cache-mb`; `None`, the
    /// default, keeps each engine's own, see [`EngineOptions::cache_bytes`]).
    pub cache_bytes: Option<usize>,
    /// How every engine compresses its table blocks (`--compression`; none by default).
    pub compression: ::floe::Compression,
    /// A writer dirtying the page cache at this many MiB a second while the suite runs
    /// (`--background-writer`; none by default).
    pub background_writer: Option<u64>,
    /// The directory the per-run databases are created in (`target/bench/tmp` by default).
    pub dir: PathBuf,
    /// Progress bars on stderr, or nothing.
    pub display: Display,
}

impl Default for DbBenchOptions {
    fn default() -> DbBenchOptions {
        DbBenchOptions {
            engines: vec![EngineKind::Floe, EngineKind::Fjall],
            workloads: Workload::DEFAULT.to_vec(),
            write_buffer: 64 << 20,
            threads: None,
            sync_ops: 1000,
            sync_rounds: 4,
            seek_nexts: 10,
            cache_bytes: None,
            compression: ::floe::Compression::None,
            background_writer: None,
            dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench/tmp"),
            display: Display::Auto,
        }
    }
}

impl DbBenchOptions {
    /// How every engine is opened for a run, with writes fsynced if `sync`: the one place
    /// the run's engine settings are gathered.
    #[must_use]
    pub fn engine_options(&self, sync: bool) -> EngineOptions {
        EngineOptions {
            write_buffer: self.write_buffer,
            sync,
            cache_bytes: self.cache_bytes,
            compression: self.compression,
        }
    }

    /// The thread counts `workload` runs at.
    #[must_use]
    pub fn threads_for(&self, workload: Workload) -> Vec<usize> {
        match &self.threads {
            Some(threads) if workload.is_parallel() => threads.clone(),
            _ if workload.is_parallel() => workload.default_threads().to_vec(),
            _ => vec![1],
        }
    }
}

/// Runs every chosen workload at each of its thread counts on each engine, engines side
/// by side so that they meet the machine in the same state.
///
/// # Errors
/// An engine's error, a read that found something other than what was written, or a
/// problem with the directory.
pub fn run(config: &Config, options: &DbBenchOptions) -> anyhow::Result<Vec<Measurement>> {
    ensure!(config.keys > 0, "--keys must be at least 1");
    ensure!(
        config.key_size >= 8,
        "keys need at least 8 bytes to be distinct"
    );
    ensure!(
        options
            .threads_for(Workload::Overwrite)
            .iter()
            .all(|&t| t > 0),
        "thread counts must be at least 1"
    );
    ensure!(
        !options.workloads.contains(&Workload::DeleteRange)
            || config.keys as u64 >= deleterange::MIN_KEYS,
        "deleterange needs --keys {} or more",
        deleterange::MIN_KEYS
    );
    ensure!(
        !options.workloads.contains(&Workload::Transactions)
            || (config.keys as u64 >= transactions::MIN_KEYS
                && config.value_size >= transactions::MIN_VALUE_SIZE),
        "transactions needs --keys {} or more and --value-size {} or more",
        transactions::MIN_KEYS,
        transactions::MIN_VALUE_SIZE
    );
    if options.engines.is_empty() || options.workloads.is_empty() {
        bail!("no engines or no workloads chosen");
    }
    std::fs::create_dir_all(&options.dir)
        .with_context(|| format!("creating {}", options.dir.display()))?;
    let pressure = options
        .background_writer
        .map(|rate| crate::background_writer::BackgroundWriter::start(&options.dir, rate))
        .transpose()?;
    let data = data::Data::new(
        config.key_size,
        config.value_size,
        config.value_kind,
        config.seed,
    );
    let mut out = Vec::new();
    for &workload in &options.workloads {
        let engines = engines_for(workload, options);
        for threads in options.threads_for(workload) {
            let rounds = if workload == Workload::FillSync {
                options.sync_rounds.max(1)
            } else {
                1
            };
            // Per engine, one pooled run for each timed phase of the workload.
            let mut pooled: Vec<Vec<Run>> = engines.iter().map(|_| Vec::new()).collect();
            for round in 0..rounds {
                for (&engine, pool) in engines.iter().zip(&mut pooled) {
                    let runs = run_one(
                        config,
                        options,
                        &data,
                        Round {
                            workload,
                            threads,
                            round,
                            rounds,
                        },
                        engine,
                    )?;
                    *pool = if pool.is_empty() {
                        runs
                    } else {
                        std::mem::take(pool)
                            .into_iter()
                            .zip(runs)
                            .map(|(earlier, later)| earlier.pool(later))
                            .collect()
                    };
                }
            }
            // Phase by phase, the engines side by side.
            let phases = pooled.iter().map(Vec::len).max().unwrap_or(0);
            let mut pooled: Vec<_> = pooled.into_iter().map(Vec::into_iter).collect();
            for _ in 0..phases {
                for run in pooled.iter_mut().filter_map(Iterator::next) {
                    let Run {
                        mut measurement,
                        mut samples,
                    } = run;
                    measurement.latency_ns = percentiles(&mut samples);
                    if workload == Workload::FillSync {
                        let per_thread = measurement.ops / threads.max(1) as u64;
                        measurement.notes.extend([
                            ("ops_per_thread".to_string(), per_thread.to_string()),
                            ("rounds".to_string(), rounds.to_string()),
                        ]);
                    }
                    if let Some(writer) = &pressure {
                        measurement.notes.push((
                            "background_writer_mib_s".to_string(),
                            format!("{:.0}", writer.achieved_mib_per_sec()),
                        ));
                    }
                    out.push(measurement);
                }
            }
        }
    }
    transactions::add_target(&mut out);
    Ok(out)
}

/// The chosen engines that can run `workload`; for `keyspaces`, those the harness can
/// open with several keyspaces, saying on stderr which it leaves out.
fn engines_for(workload: Workload, options: &DbBenchOptions) -> Vec<EngineKind> {
    if workload == Workload::DeleteRange && options.display != Display::Quiet {
        for kind in options.engines.iter().filter(|k| !k.has_range_delete()) {
            eprintln!(
                "{workload}: {kind} has no range delete: it removes the keys one by one, \
                 and the two range-delete targets are measured without it"
            );
        }
    }
    if workload != Workload::Keyspaces {
        return options.engines.clone();
    }
    let (with, without): (Vec<EngineKind>, Vec<EngineKind>) = options
        .engines
        .iter()
        .partition(|kind| kind.has_keyspaces());
    if options.display != Display::Quiet {
        for kind in without {
            eprintln!("{workload}: {kind} left out (the harness has no keyspaces for it)");
        }
    }
    with
}

/// Which run of a workload [`run_one`] makes: at what thread count, and which of how many
/// interleaved rounds.
#[derive(Debug, Clone, Copy)]
struct Round {
    workload: Workload,
    threads: usize,
    round: usize,
    rounds: usize,
}

/// One engine's run of a workload: its measurement (percentiles not computed yet) and
/// the latency samples behind it.
struct Run {
    measurement: Measurement,
    samples: Vec<u64>,
}

impl Run {
    /// This run and a later round of the same workload on the same engine, as one:
    /// operations, time and samples add up; the notes are the later round's.
    fn pool(mut self, later: Run) -> Run {
        self.measurement.ops += later.measurement.ops;
        self.measurement.elapsed += later.measurement.elapsed;
        self.measurement.notes = later.measurement.notes;
        self.samples.extend(later.samples);
        self
    }
}

/// One engine's run of a workload on a fresh directory: one [`Run`] for each timed phase
/// (two for `keyspaces` and `transactions`, several for `deleterange`, one for every other
/// workload).
fn run_one(
    config: &Config,
    options: &DbBenchOptions,
    data: &data::Data,
    run: Round,
    kind: EngineKind,
) -> anyhow::Result<Vec<Run>> {
    let Round {
        workload,
        threads,
        round,
        rounds,
    } = run;
    let label = if rounds > 1 {
        format!("{workload} x{threads} {kind} ({}/{rounds})", round + 1)
    } else {
        format!("{workload} x{threads} {kind}")
    };
    let dir = tempfile::Builder::new()
        .prefix(&format!("{kind}-{workload}-"))
        .tempdir_in(&options.dir)
        .with_context(|| format!("creating a directory under {}", options.dir.display()))?;
    let path = dir.path().join("db");
    let engine_options = options.engine_options(workload == Workload::FillSync);
    if matches!(
        workload,
        Workload::Keyspaces | Workload::DeleteRange | Workload::Transactions
    ) {
        let phase = Phase {
            config,
            options,
            data,
            threads,
            kind,
            label: &label,
        };
        return if workload == Workload::Keyspaces {
            run_keyspaces(&phase, &path, engine_options)
        } else if workload == Workload::Transactions {
            transactions::run_transactions(&phase, dir.path(), engine_options)
        } else {
            run_deleterange(&phase, dir.path(), engine_options)
        };
    }
    let engine = kind
        .open(&path, engine_options)
        .with_context(|| format!("{label}: opening"))?;
    let ctx = workloads::Context {
        engine: &*engine,
        data,
        keys: config.keys as u64,
        threads,
        display: options.display,
        label: &label,
        // The rounds share the synced writes out (at least one each).
        sync_ops: (options.sync_ops / rounds as u64).max(1),
        seek_nexts: options.seek_nexts,
    };
    if workload.needs_load() {
        workloads::load(&ctx)?;
    }
    settle_disk();
    let written_before = disk_write_bytes();
    let outcome = workloads::run(workload, &ctx).with_context(|| label.clone())?;
    let mut measurement = Measurement::new(
        workload.name(),
        kind.name(),
        threads,
        outcome.ops,
        outcome.elapsed,
    );
    measurement.notes = outcome.notes;
    if workload.measures_space() {
        engine
            .flush()
            .with_context(|| format!("{label}: flushing"))?;
        measurement.notes.extend(engine.notes());
        engine
            .close()
            .with_context(|| format!("{label}: closing"))?;
        let disk = dir_size(&path)?;
        let raw = (config.keys * (config.key_size + config.value_size)) as f64;
        measurement.bytes_per_entry = Some(disk as f64 / config.keys as f64);
        measurement
            .notes
            .push(("disk_bytes".to_string(), disk.to_string()));
        measurement.notes.push((
            "space_amp".to_string(),
            format!("{:.2}", disk as f64 / raw.max(1.0)),
        ));
        // Write amplification as the kernel counts it, the same way for every engine:
        // bytes this process dirtied in files (log, tables, manifest, compactions) from
        // the start of the timed phase to the end of the closing flush, over the user
        // bytes the phase wrote.
        if let Some((before, after)) = written_before.zip(disk_write_bytes()) {
            let user = outcome.ops as f64 * (config.key_size + config.value_size) as f64;
            let written = after.saturating_sub(before);
            measurement
                .notes
                .push(("disk_write_bytes".to_string(), written.to_string()));
            measurement.notes.push((
                "write_amp".to_string(),
                format!("{:.2}", written as f64 / user.max(1.0)),
            ));
        }
    } else {
        measurement.notes.extend(engine.notes());
        engine
            .close()
            .with_context(|| format!("{label}: closing"))?;
    }
    Ok(vec![Run {
        measurement,
        samples: outcome.samples,
    }])
}

/// What [`run_keyspaces`] and [`run_deleterange`] share with [`run_one`].
struct Phase<'a> {
    config: &'a Config,
    options: &'a DbBenchOptions,
    data: &'a data::Data,
    threads: usize,
    kind: EngineKind,
    label: &'a str,
}

/// The `keyspaces` workload on one engine at `path`: the write phase on an empty database,
/// a flush of every keyspace and a settled disk, then the read phase and the check that
/// no key shows up in another keyspace.
fn run_keyspaces(
    phase: &Phase<'_>,
    path: &Path,
    engine_options: EngineOptions,
) -> anyhow::Result<Vec<Run>> {
    let Phase {
        config,
        options,
        data,
        threads,
        kind,
        label,
    } = *phase;
    let engine = kind
        .open_keyspaces(path, engine_options, keyspaces::KEYSPACES)
        .with_context(|| format!("{label}: opening"))?;
    let write_label = format!("{label} (write)");
    let read_label = format!("{label} (read)");
    let ctx = |label| keyspaces::Context {
        engine: &*engine,
        data,
        keys: config.keys as u64,
        threads,
        display: options.display,
        label,
    };
    settle_disk();
    let write = keyspaces::write(&ctx(&write_label)).with_context(|| write_label.clone())?;
    engine
        .flush()
        .with_context(|| format!("{label}: flushing"))?;
    settle_disk();
    let read_ctx = ctx(&read_label);
    let read = keyspaces::read(&read_ctx).with_context(|| read_label.clone())?;
    keyspaces::check_apart(&read_ctx)?;
    let notes = engine.notes();
    engine
        .close()
        .with_context(|| format!("{label}: closing"))?;
    let runs = [("write", write), ("read", read)].map(|(name, outcome)| {
        let mut measurement = Measurement::new(
            &format!("{}-{name}", Workload::Keyspaces),
            kind.name(),
            threads,
            outcome.ops,
            outcome.elapsed,
        );
        measurement.notes = outcome.notes;
        Run {
            measurement,
            samples: outcome.samples,
        }
    });
    let [write, mut read] = runs;
    read.measurement.notes.extend(notes);
    Ok(vec![write, read])
}

/// Notes for a measurement, as name and value.
type Notes = Vec<(String, String)>;

/// The `deleterange` workload on one engine, its databases under `dir`: each timed part
/// on a database of its own, filled with the sequential keys (see `deleterange.rs`).
fn run_deleterange(
    phase: &Phase<'_>,
    dir: &Path,
    engine_options: EngineOptions,
) -> anyhow::Result<Vec<Run>> {
    let Phase {
        config,
        options,
        data,
        threads,
        kind,
        label,
    } = *phase;
    let native = kind.has_range_delete();
    // Opens a fresh database named `name`, loads it, runs `part` on it, closes it and
    // removes it; returns what `part` returned and the engine's notes.
    let on_fresh = |name: &str,
                    part: &dyn Fn(&deleterange::Context<'_>) -> anyhow::Result<Vec<Outcome>>|
     -> anyhow::Result<(Vec<Outcome>, Notes)> {
        let path = dir.join(name);
        let engine = kind
            .open(&path, engine_options)
            .with_context(|| format!("{label}: opening {name}"))?;
        let ctx = deleterange::Context {
            engine: &*engine,
            data,
            keys: config.keys as u64,
            display: options.display,
            label,
        };
        deleterange::load(&ctx)?;
        let outcomes = part(&ctx).with_context(|| label.to_string())?;
        let notes = engine.notes();
        engine
            .close()
            .with_context(|| format!("{label}: closing"))?;
        std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        Ok((outcomes, notes))
    };
    let (main, notes) = on_fresh("db", &|ctx| {
        Ok(deleterange::main_phases(ctx, native)?.into())
    })?;
    let range_delete = main[1].elapsed;
    let mut named: Vec<(&str, Outcome)> = ["readbefore", "", "readafter"]
        .into_iter()
        .zip(main)
        .collect();
    if let Some((_, after)) = named.last_mut() {
        after.notes.extend(notes);
    }
    if native {
        let (per_key, _) = on_fresh("perkey", &|ctx| {
            Ok(vec![deleterange::per_key(ctx, range_delete)?])
        })?;
        let (reads, notes) = on_fresh("tombstones", &|ctx| {
            Ok(deleterange::tombstone_reads(ctx)?.into())
        })?;
        named.extend(["perkey"].into_iter().zip(per_key));
        named.extend(["readclean", "readtombs"].into_iter().zip(reads));
        if let Some((_, live)) = named.last_mut() {
            live.notes.extend(notes);
        }
    }
    Ok(named
        .into_iter()
        .map(|(suffix, outcome)| {
            let name = if suffix.is_empty() {
                Workload::DeleteRange.to_string()
            } else {
                format!("{}-{suffix}", Workload::DeleteRange)
            };
            let mut measurement =
                Measurement::new(&name, kind.name(), threads, outcome.ops, outcome.elapsed);
            measurement.notes = outcome.notes;
            Run {
                measurement,
                samples: outcome.samples,
            }
        })
        .collect())
}

/// Waits until every dirty page on the machine is written back (`sync(2)`), so that a
/// run's timed phase does not share the disk with the writeback of an earlier run or of
/// its own untimed load: each engine starts timing on an idle disk. Synced writes feel
/// this most, since an `fdatasync` waits for the device to flush its cache, and with it
/// for whatever writeback is in flight, whoever queued it.
pub(crate) fn settle_disk() {
    #[cfg(unix)]
    // SAFETY: `sync` takes no arguments, touches no memory of this process and always
    // succeeds.
    unsafe {
        libc::sync();
    }
}

/// The bytes this process has caused to be written to storage so far (`write_bytes` of
/// `/proc/self/io`, counted when pages are dirtied); `None` where the kernel does not
/// report it.
pub(crate) fn disk_write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|line| line.strip_prefix("write_bytes:"))
        .and_then(|value| value.trim().parse().ok())
}

/// The disk space the files under `path` occupy.
///
/// On Unix this counts allocated blocks, not file lengths: fjall sizes each journal to
/// 64 MiB up front with `set_len`, a sparse file whose length says nothing of the space
/// it takes.
pub(crate) fn dir_size(path: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path).with_context(|| format!("listing {}", path.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += dir_size(&entry.path())?;
        } else if kind.is_file() {
            total += allocated(&entry.metadata()?);
        }
    }
    Ok(total)
}

#[cfg(unix)]
fn allocated(metadata: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    // `blocks` counts 512-byte units whatever the file system's block size.
    metadata.blocks() * 512
}

#[cfg(not(unix))]
fn allocated(metadata: &std::fs::Metadata) -> u64 {
    metadata.len()
}

#[cfg(test)]
mod tests;
