//! The engine workloads, run through the public `floe` API: `fillrandom`, `readrandom`
//! and `open-64MiB-log` (how long `Db::open` takes to recover 64 MiB of unflushed log).

use std::time::{Duration, Instant};

use anyhow::Context;
use floe::{Db, Options};

use crate::keys::{random_keys, random_value, scramble};
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
    db.close()?;

    out.push(open_after_log(&dir.path().join("open"), config)?);
    for &threads in &config.threads {
        out.push(fill_sync(
            &dir.path().join(format!("sync{threads}")),
            config,
            threads,
        )?);
    }
    Ok(out)
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

/// Writes 64 MiB of values with a write buffer larger than that (nothing flushes), drops
/// the database without flushing, and times the `Db::open` that replays the log.
fn open_after_log(path: &std::path::Path, config: &Config) -> anyhow::Result<Measurement> {
    const LOG_BYTES: usize = 64 << 20;
    // The memtable charges about 120 bytes of overhead per entry beyond key and value, so
    // a buffer of four times the log keeps everything in one memtable.
    let options = Options::default().write_buffer_size(4 * LOG_BYTES);
    let value = random_value(config.value_size.max(1), config.seed ^ 0x0be7);
    let entry = config.key_size + value.len();
    let count = LOG_BYTES / entry;
    {
        let db = Db::open_with(path, options.clone())?;
        for i in 0..count {
            let mut key = scramble(i as u64).to_be_bytes().to_vec();
            key.resize(config.key_size.max(8), 0);
            db.put(&key, &value)?;
        }
        // Dropped, not closed or flushed: everything waits in the log.
    }
    let start = Instant::now();
    let db = Db::open_with(path, options)?;
    let elapsed: Duration = start.elapsed();
    let mut m = Measurement::new("open-64MiB-log", "floe", 1, count as u64, elapsed);
    m.notes
        .push(("log_bytes".to_string(), (count * entry).to_string()));
    m.notes.push(("target".to_string(), "<= 1 s".to_string()));
    db.close()?;
    Ok(m)
}
