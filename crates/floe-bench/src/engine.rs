//! The engine workloads, run through the public `floe` API: `fillrandom`, `readrandom`,
//! `open-64MiB-log` (how long `Db::open` takes to recover 64 MiB of unflushed log, in one
//! keyspace and spread over 100), `checkpoint` against `copy-dir` (a checkpoint of the
//! filled database, and a synced copy of its directory), `fillsync` (with, on one thread,
//! its ratio to `fdatasync-raw`: appends and `fdatasync` with no engine), and
//! `overwrite-sustained` (the cost of compaction under steady overwrites).

use std::time::{Duration, Instant};

use anyhow::Context;
use floe::{Db, Options};

use crate::keys::{random_keys, random_value, scramble};
use crate::level_writes;
#[cfg(feature = "rocksdb")]
use crate::level_writes::LevelWrites;
use crate::report::percentiles;
use crate::{Config, Measurement};

/// Runs the engine workloads, one thread each.
///
/// # Errors
/// Any error of the database or of the temporary directory.
pub fn run(config: &Config) -> anyhow::Result<Vec<Measurement>> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let keys = random_keys(config.keys, config.key_size, config.seed);
    let value = random_value(config.value_size, config.seed ^ 0x7a1e);

    let db = Db::open(dir.path().join("fill")).context("opening the database")?;
    let mut samples = Vec::with_capacity(keys.len());
    let start = Instant::now();
    for key in &keys {
        let op = Instant::now();
        db.put(key, &value)?;
        samples.push(op.elapsed().as_nanos() as u64);
    }
    let elapsed = start.elapsed();
    let mut fill = Measurement::new("fillrandom", "floe", 1, keys.len() as u64, elapsed);
    fill.latency_ns = percentiles(&mut samples);
    out.push(fill);

    samples.clear();
    let start = Instant::now();
    for i in 0..keys.len() {
        // A fixed stride walks every key in an order unrelated to insertion.
        let key = &keys[(i * 7919) % keys.len()];
        let op = Instant::now();
        let found = db.get(key)?;
        samples.push(op.elapsed().as_nanos() as u64);
        anyhow::ensure!(found.is_some(), "readrandom: a written key is missing");
    }
    let elapsed = start.elapsed();
    let mut read = Measurement::new("readrandom", "floe", 1, keys.len() as u64, elapsed);
    read.latency_ns = percentiles(&mut samples);
    out.push(read);
    out.extend(checkpoint_against_copy(&db, dir.path(), keys.len() as u64)?);
    db.close()?;

    out.push(open_after_log(&dir.path().join("open"), config, 1)?);
    out.push(open_after_log(
        &dir.path().join("open-keyspaces"),
        config,
        100,
    )?);
    out.push(overwrite_sustained(&dir.path().join("overwrite"), config)?);
    let raw = raw_fdatasync(&dir.path().join("raw.log"), config)?;
    for &threads in &config.threads {
        let mut sync = fill_sync(&dir.path().join(format!("sync{threads}")), config, threads)?;
        if threads == 1 {
            let ratio = sync.ops_per_sec() / raw.ops_per_sec().max(f64::MIN_POSITIVE);
            sync.notes
                .push(("raw_fdatasync_ratio".to_string(), format!("{ratio:.3}")));
            sync.notes
                .push(("target".to_string(), ">= 0.95 of fdatasync-raw".to_string()));
        }
        out.push(sync);
    }
    out.push(raw);
    Ok(out)
}

/// `fdatasync-raw`: what the disk allows a synced writer on one thread, with no engine:
/// `pwrite`s of one record of a `fillsync` write's size (key, value and about 20 bytes of
/// framing), one after another, each followed by `fdatasync`, into a file written and
/// synced whole beforehand, so that no sync has a file size or an allocation to record
/// (the best case; floe's log preallocates its segments for the same reason).
fn raw_fdatasync(path: &std::path::Path, config: &Config) -> anyhow::Result<Measurement> {
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    let writes = config.keys.min(20_000);
    let record = random_value(
        config.key_size + config.value_size + 20,
        config.seed ^ 0x4a3,
    );
    let mut file = std::fs::File::create(path)?;
    file.write_all(&vec![0u8; writes * record.len()])?;
    file.sync_all()?;
    let mut samples = Vec::with_capacity(writes);
    let start = Instant::now();
    for i in 0..writes {
        let op = Instant::now();
        file.write_all_at(&record, (i * record.len()) as u64)?;
        file.sync_data()?;
        samples.push(op.elapsed().as_nanos() as u64);
    }
    let elapsed = start.elapsed();
    let mut m = Measurement::new("fdatasync-raw", "disk", 1, writes as u64, elapsed);
    m.latency_ns = percentiles(&mut samples);
    Ok(m)
}

/// `fillsync`: `threads` writers with `sync(true)`, so every write waits for an `fdatasync`;
/// group commit lets writers that queue behind a sync share the next one, so throughput
/// should grow with the thread count.
fn fill_sync(
    path: &std::path::Path,
    config: &Config,
    threads: usize,
) -> anyhow::Result<Measurement> {
    let total = config.keys.min(20_000);
    let per_thread = total / threads.max(1);
    let db = Db::open_with(path, Options::default().sync(true))?;
    let value = random_value(config.value_size, config.seed ^ 0x5e7c);
    let start = Instant::now();
    let samples = std::thread::scope(|scope| -> anyhow::Result<Vec<u64>> {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let db = db.clone();
                let value = &value;
                scope.spawn(move || -> anyhow::Result<Vec<u64>> {
                    let mut samples = Vec::with_capacity(per_thread);
                    for i in 0..per_thread {
                        let key = scramble((t * per_thread + i) as u64).to_be_bytes();
                        let op = Instant::now();
                        db.put(key, value)?;
                        samples.push(op.elapsed().as_nanos() as u64);
                    }
                    Ok(samples)
                })
            })
            .collect();
        let mut all = Vec::new();
        for worker in workers {
            let samples = worker
                .join()
                .map_err(|_| anyhow::anyhow!("a fillsync writer panicked"))??;
            all.extend(samples);
        }
        Ok(all)
    })?;
    let elapsed = start.elapsed();
    let mut samples = samples;
    let mut m = Measurement::new("fillsync", "floe", threads, samples.len() as u64, elapsed);
    m.latency_ns = percentiles(&mut samples);
    db.close()?;
    Ok(m)
}

/// Times `Db::checkpoint` of the open `db` (in `dir/fill`) and then a synced copy of its
/// directory, the way to copy a database without one: the checkpoint links tables and
/// copies only what it must, so it should take a small part of the copy's time.
fn checkpoint_against_copy(
    db: &Db,
    dir: &std::path::Path,
    entries: u64,
) -> anyhow::Result<Vec<Measurement>> {
    let start = Instant::now();
    db.checkpoint(dir.join("checkpoint"))?;
    let checkpoint = start.elapsed();
    // Settled first, so that no compaction deletes a file while it is being copied.
    db.flush()?;
    db.wait_for_compactions()?;
    let start = Instant::now();
    let target = dir.join("copy");
    std::fs::create_dir(&target)?;
    let mut bytes = 0u64;
    for entry in std::fs::read_dir(dir.join("fill"))? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let to = target.join(entry.file_name());
        match std::fs::copy(entry.path(), &to) {
            Ok(copied) => bytes += copied,
            // An obsolete file its last reader let go of meanwhile.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err.into()),
        }
        std::fs::File::open(&to)?.sync_all()?;
    }
    std::fs::File::open(&target)?.sync_all()?;
    let copy = start.elapsed();
    let ratio = checkpoint.as_secs_f64() / copy.as_secs_f64().max(f64::MIN_POSITIVE);
    let mut ck = Measurement::new("checkpoint", "floe", 1, entries, checkpoint);
    ck.notes
        .push(("copy_ratio".to_string(), format!("{ratio:.4}")));
    ck.notes
        .push(("target".to_string(), "<= 0.05 of copy-dir".to_string()));
    let mut cp = Measurement::new("copy-dir", "floe", 1, entries, copy);
    cp.notes.push(("bytes".to_string(), bytes.to_string()));
    Ok(vec![ck, cp])
}

/// Writes 64 MiB of values spread over `keyspaces` keyspaces (`"default"` alone for 1)
/// with memtables larger than that (nothing flushes), drops the database without
/// flushing, and times the `Db::open` that replays the log into every keyspace.
fn open_after_log(
    path: &std::path::Path,
    config: &Config,
    keyspaces: usize,
) -> anyhow::Result<Measurement> {
    const LOG_BYTES: usize = 64 << 20;
    // The memtable charges about 120 bytes of overhead per entry beyond key and value, so
    // a buffer of four times the log keeps everything in one memtable; the budget of all
    // memtables and the bound on kept log are raised to match.
    let options = Options::default()
        .write_buffer_size(4 * LOG_BYTES)
        .db_write_buffer_size(4 * LOG_BYTES)
        .max_total_wal_size(16 * LOG_BYTES as u64);
    let value = random_value(config.value_size.max(1), config.seed ^ 0x0be7);
    let entry = config.key_size + value.len();
    let count = LOG_BYTES / entry;
    {
        let db = Db::open_with(path, options.clone())?;
        let spaces = (0..keyspaces)
            .map(|n| match n {
                0 => Ok(db.default_keyspace()),
                n => db.keyspace(&format!("keyspace-{n:03}")),
            })
            .collect::<floe::Result<Vec<_>>>()?;
        for i in 0..count {
            let mut key = scramble(i as u64).to_be_bytes().to_vec();
            key.resize(config.key_size.max(8), 0);
            spaces[i % spaces.len()].put(&key, &value)?;
        }
        // Dropped, not closed or flushed: everything waits in the log.
    }
    let start = Instant::now();
    let db = Db::open_with(path, options)?;
    let elapsed: Duration = start.elapsed();
    let name = match keyspaces {
        1 => "open-64MiB-log".to_string(),
        n => format!("open-64MiB-log-{n}-keyspaces"),
    };
    let mut m = Measurement::new(&name, "floe", 1, count as u64, elapsed);
    m.notes
        .push(("log_bytes".to_string(), (count * entry).to_string()));
    m.notes.push(("target".to_string(), "<= 1 s".to_string()));
    db.close()?;
    Ok(m)
}

/// The memtable size of `overwrite-sustained` (for floe and for RocksDB).
const SUSTAINED_WRITE_BUFFER: usize = 8 << 20;
/// The base-level size limit (`max_bytes_for_level_base`) of `overwrite-sustained`.
const SUSTAINED_LEVEL_BASE: u64 = 32 << 20;
/// The table size `overwrite-sustained` cuts compaction outputs at.
const SUSTAINED_TARGET_FILE: u64 = 8 << 20;

/// The key of index `i` in `overwrite-sustained`.
fn sustained_key(config: &Config, i: u64) -> Vec<u8> {
    let mut key = scramble(i).to_be_bytes().to_vec();
    key.resize(config.key_size.max(8), 0);
    key
}

/// The initial fill of `overwrite-sustained`: every key once.
fn sustained_fill(
    config: &Config,
    mut put: impl FnMut(&[u8], &[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let value = random_value(config.value_size, config.seed ^ 0x0e5e);
    for i in 0..config.keys.max(1) as u64 {
        put(&sustained_key(config, i), &value)?;
    }
    Ok(())
}

/// The overwrites of `overwrite-sustained`: random keys, the same sequence for every
/// engine, for as long as `put` returns `true`.
fn sustained_overwrites(
    config: &Config,
    mut put: impl FnMut(&[u8], &[u8]) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let value = random_value(config.value_size, config.seed ^ 0x0e5e);
    let keys = config.keys.max(1) as u64;
    let mut rng = config.seed | 1;
    loop {
        // xorshift64: cheap enough not to show in the latencies.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        if !put(&sustained_key(config, rng % keys), &value)? {
            return Ok(());
        }
    }
}

/// The bytes the kernel counted as written by one engine's `overwrite-sustained` run (log
/// included): from open to the last write, and to the moment its background compactions
/// had nothing left to do. `None` where the kernel does not report them.
#[derive(Clone, Copy, Debug)]
struct KernelWrites {
    to_last_write: Option<u64>,
    settled: Option<u64>,
}

impl KernelWrites {
    /// The bytes written since `before` (a [`crate::dbbench::disk_write_bytes`] reading).
    fn since(before: Option<u64>) -> Option<u64> {
        before
            .zip(crate::dbbench::disk_write_bytes())
            .map(|(before, after)| after.saturating_sub(before))
    }
}

/// RocksDB on `overwrite-sustained`'s exact writes (the fill, then the first `overwrites`
/// of the same overwrite sequence) with the same memtable, base-level and table sizes
/// (both engines size their levels dynamically, their default): the bytes the kernel
/// counted, how long the overwrites took (its own write stalls included), the bytes of
/// its tables once settled, and where the table writes went by level (from RocksDB's
/// event log; `None` if the log cannot be read).
#[cfg(feature = "rocksdb")]
fn rocksdb_sustained(
    path: &std::path::Path,
    config: &Config,
    overwrites: usize,
) -> anyhow::Result<(KernelWrites, Duration, u64, Option<Vec<LevelWrites>>)> {
    use crate::dbbench::Engine;
    use crate::dbbench::rocksdb::RocksDbEngine;

    let before = crate::dbbench::disk_write_bytes();
    let engine = RocksDbEngine::open_scaled(
        path,
        SUSTAINED_WRITE_BUFFER,
        SUSTAINED_LEVEL_BASE,
        SUSTAINED_TARGET_FILE,
    )?;
    sustained_fill(config, |key, value| engine.put(key, value))?;
    let mut done = 0;
    let start = Instant::now();
    sustained_overwrites(config, |key, value| {
        if done >= overwrites {
            return Ok(false);
        }
        engine.put(key, value)?;
        done += 1;
        Ok(true)
    })?;
    let elapsed = start.elapsed();
    let to_last_write = KernelWrites::since(before);
    engine.wait_for_compactions()?;
    let settled = KernelWrites::since(before);
    let table_bytes = std::fs::read_dir(path)?
        .map(|entry| {
            let entry = entry?;
            let is_table = entry.path().extension().is_some_and(|ext| ext == "sst");
            Ok(if is_table { entry.metadata()?.len() } else { 0 })
        })
        .sum::<std::io::Result<u64>>()?;
    Box::new(engine).close()?;
    let levels = std::fs::read_to_string(path.join("LOG"))
        .ok()
        .map(|log| level_writes::rocksdb(&log));
    let writes = KernelWrites {
        to_last_write,
        settled,
    };
    Ok((writes, elapsed, table_bytes, levels))
}

/// RocksDB's figures in `overwrite-sustained`'s notes, formatted (see
/// `rocksdb_sustained`).
struct RocksDbNotes {
    /// Kernel-counted write amplification up to the last write.
    amp: String,
    /// The same once its compactions are done.
    amp_settled: String,
    /// Where its table writes went, per level.
    levels: String,
    /// Overwrites per second.
    rate: String,
    /// Table bytes per live byte once its compactions are done.
    space_settled: String,
}

impl RocksDbNotes {
    /// The notes of a build without RocksDB.
    #[cfg(not(feature = "rocksdb"))]
    fn not_run() -> RocksDbNotes {
        let not_run = || "not run (build floe-bench with --features rocksdb)".to_string();
        RocksDbNotes {
            amp: not_run(),
            amp_settled: not_run(),
            levels: not_run(),
            rate: not_run(),
            space_settled: not_run(),
        }
    }
}

/// How long `overwrite-sustained` overwrites at most, after its initial fill.
const SUSTAINED_FOR: Duration = Duration::from_secs(90);

/// `overwrite-sustained`: fills `config.keys` keys, then overwrites random ones for up to
/// [`SUSTAINED_FOR`] (or five times the key count), one writer, with background
/// compaction running. The sizes are scaled down from the defaults (8 MiB memtables, a
/// 32 MiB base level, 8 MiB tables) so that a run of a few minutes grows a tree of three
/// levels, as a long-running database would have. Reports write amplification (table
/// bytes written by flushes and compactions per user byte, with where they went per
/// level; and, as the kernel counts it with the log included, for floe and, in a build
/// with the `rocksdb` feature, for RocksDB on the same writes with the same memtable,
/// base-level and table sizes), each both up to the last write and *settled* (once the
/// background compactions are done: an engine whose writer runs ahead of its compactions
/// leaves work that the first figure does not count, so the targets use the second),
/// space amplification at the last write, once settled and after `compact()` (bytes on
/// disk per byte of live keys and values), the share of the time writers were stalled
/// (beside RocksDB's overwrite rate, its own stalls included), and the write latency
/// percentiles.
fn overwrite_sustained(path: &std::path::Path, config: &Config) -> anyhow::Result<Measurement> {
    let options = Options::default()
        .write_buffer_size(SUSTAINED_WRITE_BUFFER)
        .max_bytes_for_level_base(SUSTAINED_LEVEL_BASE)
        .target_file_size(SUSTAINED_TARGET_FILE);
    let written_before = crate::dbbench::disk_write_bytes();
    let db = Db::open_with(path, options)?;
    let keys = config.keys.max(1);
    sustained_fill(config, |key, value| Ok(db.put(key, value)?))?;
    let fill_stats = db.stats();

    let mut samples = Vec::new();
    let start = Instant::now();
    let limit = 5 * keys;
    sustained_overwrites(config, |key, value| {
        if samples.len() >= limit || start.elapsed() >= SUSTAINED_FOR {
            return Ok(false);
        }
        let op = Instant::now();
        db.put(key, value)?;
        samples.push(op.elapsed().as_nanos() as u64);
        Ok(true)
    })?;
    let elapsed = start.elapsed();
    let stats = db.stats();
    let to_last_write = KernelWrites::since(written_before);
    // What the run left for the background: an engine that defers compactions looks
    // cheaper up to its last write than it is. The settled figures count that debt.
    db.wait_for_compactions()?;
    let floe_writes = KernelWrites {
        to_last_write,
        settled: KernelWrites::since(written_before),
    };
    let settled = db.stats();
    let live = (keys * (config.key_size.max(8) + config.value_size)) as f64;
    let space_amp_running = stats.table_bytes() as f64 / live;
    db.compact()?;
    let after = db.stats();
    db.close()?;
    let disk: u64 = std::fs::read_dir(path)?
        .map(|entry| Ok(entry?.metadata()?.len()))
        .collect::<std::io::Result<Vec<u64>>>()?
        .into_iter()
        .sum();

    // Write amplification as the kernel counts it (`/proc/self/io` `write_bytes`, log
    // included) over the user bytes of the fill and the overwrites: the same count for
    // floe and for RocksDB on the same writes.
    let user_bytes = ((keys + samples.len()) * (config.key_size.max(8) + config.value_size)) as f64;
    let amp = |written: Option<u64>| {
        written.map_or_else(
            || "not reported by this kernel".to_string(),
            |bytes| format!("{:.2}", bytes as f64 / user_bytes),
        )
    };
    #[cfg(feature = "rocksdb")]
    let rocks = {
        let (writes, elapsed, table_bytes, levels) =
            rocksdb_sustained(&path.with_extension("rocksdb"), config, samples.len())?;
        RocksDbNotes {
            amp: amp(writes.to_last_write),
            amp_settled: amp(writes.settled),
            levels: levels.map_or_else(
                || "its LOG could not be read".to_string(),
                |levels| level_writes::describe(&levels, user_bytes),
            ),
            rate: format!("{:.0}", samples.len() as f64 / elapsed.as_secs_f64()),
            space_settled: format!("{:.2}", table_bytes as f64 / live),
        }
    };
    #[cfg(not(feature = "rocksdb"))]
    let rocks = RocksDbNotes::not_run();

    let mut m = Measurement::new(
        "overwrite-sustained",
        "floe",
        1,
        samples.len() as u64,
        elapsed,
    );
    m.latency_ns = percentiles(&mut samples);
    let stalled = stats.stall_time.saturating_sub(fill_stats.stall_time);
    let notes = [
        ("write_amp", format!("{:.2}", stats.write_amplification())),
        (
            "write_amp_settled",
            format!("{:.2}", settled.write_amplification()),
        ),
        (
            "write_amp_with_compact",
            format!("{:.2}", after.write_amplification()),
        ),
        ("space_amp_running", format!("{space_amp_running:.2}")),
        (
            "space_amp_settled",
            format!("{:.2}", settled.table_bytes() as f64 / live),
        ),
        ("rocksdb_space_amp_settled", rocks.space_settled),
        (
            "space_amp_after_compact",
            format!("{:.3}", disk as f64 / live),
        ),
        (
            "stalled_share",
            format!("{:.4}", stalled.as_secs_f64() / elapsed.as_secs_f64()),
        ),
        (
            "slowdowns",
            (stats.slowdowns - fill_stats.slowdowns).to_string(),
        ),
        ("rocksdb_overwrites_per_sec", rocks.rate),
        ("stops", (stats.stops - fill_stats.stops).to_string()),
        (
            "memtable_stops",
            (stats.memtable_stops - fill_stats.memtable_stops).to_string(),
        ),
        ("compactions", stats.compactions.to_string()),
        ("trivial_moves", stats.trivial_moves.to_string()),
        (
            "levels",
            stats
                .levels
                .iter()
                .map(|l| format!("{}:{}MB", l.tables, l.bytes >> 20))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "level_writes_settled",
            level_writes::describe(&level_writes::floe(&settled.levels), user_bytes),
        ),
        ("rocksdb_level_writes_settled", rocks.levels),
        ("kernel_write_amp", amp(floe_writes.to_last_write)),
        ("rocksdb_kernel_write_amp", rocks.amp),
        ("kernel_write_amp_settled", amp(floe_writes.settled)),
        ("rocksdb_kernel_write_amp_settled", rocks.amp_settled),
        (
            "targets",
            "kernel_write_amp_settled <= RocksDB's; stalled < 5%; \
             space_amp_after_compact <= 1.2"
                .to_string(),
        ),
    ];
    m.notes.extend(
        notes
            .into_iter()
            .map(|(name, value)| (name.to_string(), value)),
    );
    Ok(m)
}
