//! The timed phases of the db_bench workloads, each checking what it reads.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};

use super::Workload;
use super::data::{Data, pick};
use super::engine::Engine;
use super::progress::{self, Display, Progress};

/// Salts that make each workload pick its own sequence of random keys.
const SALT_OVERWRITE: u64 = 0x0e;
const SALT_READ: u64 = 0x4ead;
const SALT_MISSING: u64 = 0x5a11;
const SALT_SEEK: u64 = 0x5eec;
const SALT_WRITER: u64 = 0x3817;

/// Everything a workload needs to run on one engine.
pub(super) struct Context<'a> {
    pub(super) engine: &'a dyn Engine,
    pub(super) data: &'a Data,
    /// How many keys the database holds (or a fill writes).
    pub(super) keys: u64,
    pub(super) threads: usize,
    pub(super) display: Display,
    /// Names the workload, thread count and engine in progress lines and errors.
    pub(super) label: &'a str,
    /// Synced writes per thread in `fillsync`.
    pub(super) sync_ops: u64,
    /// Entries read after each seek in `seekrandom`.
    pub(super) seek_nexts: usize,
}

/// What a timed phase measured.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) ops: u64,
    pub(super) elapsed: Duration,
    /// One latency in nanoseconds per operation; empty where per-operation timing would
    /// cost more than the operation (`readseq`).
    pub(super) samples: Vec<u64>,
    pub(super) notes: Vec<(String, String)>,
}

/// Per-thread buffers, reused by every operation of the thread.
#[derive(Debug, Default)]
struct Scratch {
    key: Vec<u8>,
    value: Vec<u8>,
}

/// Writes every key `0..ctx.keys` (value generation 0) in random key order, in batches,
/// then flushes: the untimed starting state of every workload that reads or overwrites.
pub(super) fn load(ctx: &Context<'_>) -> anyhow::Result<()> {
    let load = Load {
        engine: ctx.engine,
        data: ctx.data,
        keys: ctx.keys,
        display: ctx.display,
        label: ctx.label,
    };
    load.run(|index, key| ctx.data.random_key(index, key))
}

/// The untimed load of a database: `keys` keys written in batches, then flushed.
pub(crate) struct Load<'a> {
    pub(crate) engine: &'a dyn Engine,
    pub(crate) data: &'a Data,
    pub(crate) keys: u64,
    pub(crate) display: Display,
    pub(crate) label: &'a str,
}

impl Load<'_> {
    /// Writes the key `key_of` makes of every index `0..keys` with value generation 0, in
    /// batches, then flushes.
    pub(crate) fn run(&self, key_of: impl Fn(u64, &mut Vec<u8>)) -> anyhow::Result<()> {
        const BATCH: u64 = 1000;
        progress::show(
            self.display,
            &format!("{} (load)", self.label),
            self.keys,
            |progress| {
                let mut batch = Vec::with_capacity(BATCH as usize);
                let mut first = 0;
                while first < self.keys {
                    let last = (first + BATCH).min(self.keys);
                    batch.clear();
                    for index in first..last {
                        let mut key = Vec::new();
                        key_of(index, &mut key);
                        batch.push((key, self.data.value(index, 0).to_vec()));
                    }
                    self.engine.write_batch(&batch)?;
                    progress.add(last - first);
                    first = last;
                }
                self.engine.flush()
            },
        )
        .with_context(|| format!("{}: loading {} keys", self.label, self.keys))
    }
}

/// Runs the timed phase of `workload`.
pub(super) fn run(workload: Workload, ctx: &Context<'_>) -> anyhow::Result<Outcome> {
    let (data, engine, keys) = (ctx.data, ctx.engine, ctx.keys);
    let outcome = match workload {
        Workload::FillSeq => parallel(ctx, 1, keys, |i, s| {
            data.seq_key(i, &mut s.key);
            engine.put(&s.key, data.value(i, 0))
        })?,
        Workload::FillRandom => parallel(ctx, ctx.threads, keys, |i, s| {
            data.random_key(i, &mut s.key);
            engine.put(&s.key, data.value(i, 0))
        })?,
        Workload::FillSync => parallel(
            ctx,
            ctx.threads,
            ctx.sync_ops * ctx.threads as u64,
            |i, s| {
                data.random_key(i, &mut s.key);
                engine.put(&s.key, data.value(i, 0))
            },
        )?,
        Workload::Overwrite => parallel(ctx, ctx.threads, keys, |i, s| {
            let index = pick(i, SALT_OVERWRITE, keys);
            data.random_key(index, &mut s.key);
            engine.put(&s.key, data.value(index, 1))
        })?,
        Workload::ReadRandom => parallel(ctx, ctx.threads, keys, |i, s| {
            let index = pick(i, SALT_READ, keys);
            data.random_key(index, &mut s.key);
            let found = engine.get(&s.key, &mut s.value)?;
            ensure!(found, "key #{index} is missing");
            ensure!(
                s.value == data.value(index, 0),
                "key #{index} has a wrong value"
            );
            Ok(())
        })?,
        Workload::ReadMissing => parallel(ctx, ctx.threads, keys, |i, s| {
            // Indexes from `keys` on were never written, and their keys differ from every
            // written one in the first 8 bytes.
            let index = keys + pick(i, SALT_MISSING, keys);
            data.random_key(index, &mut s.key);
            ensure!(
                !engine.get(&s.key, &mut s.value)?,
                "never-written key #{index} was found"
            );
            Ok(())
        })?,
        Workload::SeekRandom => seek_random(ctx)?,
        Workload::ReadSeq => read_seq(ctx)?,
        Workload::ReadWhileWriting => read_while_writing(ctx)?,
        Workload::Keyspaces => {
            anyhow::bail!("keyspaces drives several keyspaces; the driver runs it on its own")
        }
        Workload::DeleteRange => {
            anyhow::bail!("deleterange uses databases of its own; the driver runs it on its own")
        }
        Workload::Transactions => {
            anyhow::bail!("transactions uses databases of its own; the driver runs it on its own")
        }
    };
    Ok(outcome)
}

/// Seeks to key `index` and reads up to `wanted` entries from there, checking that the
/// first is that key and that they ascend; `key` and `previous` are scratch buffers.
///
/// # Errors
/// The engine's error, or a seek that did not start at the key or went out of order.
pub(crate) fn seek_checked(
    engine: &dyn Engine,
    data: &Data,
    index: u64,
    wanted: usize,
    key: &mut Vec<u8>,
    previous: &mut Vec<u8>,
) -> anyhow::Result<()> {
    data.random_key(index, key);
    let mut first = true;
    let mut in_order = true;
    let start = &*key;
    let visited = engine.scan(start, wanted, &mut |found, _value| {
        in_order &= if first {
            found == start.as_slice()
        } else {
            found > previous.as_slice()
        };
        first = false;
        previous.clear();
        previous.extend_from_slice(found);
    })?;
    ensure!(
        visited >= 1 && in_order,
        "a seek to key #{index} did not start there or went out of order"
    );
    Ok(())
}

/// Seeks to a random existing key and reads it and the `seek_nexts` entries after it.
fn seek_random(ctx: &Context<'_>) -> anyhow::Result<Outcome> {
    let (data, engine, keys) = (ctx.data, ctx.engine, ctx.keys);
    let seeks = (keys / 10).max(1);
    let wanted = ctx.seek_nexts + 1;
    let mut outcome = parallel(ctx, ctx.threads, seeks, |i, s| {
        let index = pick(i, SALT_SEEK, keys);
        seek_checked(engine, data, index, wanted, &mut s.key, &mut s.value)
    })?;
    outcome
        .notes
        .push(("entries_per_seek".to_string(), format!("<= {wanted}")));
    Ok(outcome)
}

/// Reads the whole database in key order once.
fn read_seq(ctx: &Context<'_>) -> anyhow::Result<Outcome> {
    let value_size = ctx.data.value_size();
    let (visited, in_order, elapsed) =
        progress::show(ctx.display, ctx.label, ctx.keys, |progress: &Progress| {
            let mut previous: Vec<u8> = Vec::new();
            let mut in_order = true;
            let mut count = 0u64;
            let start = Instant::now();
            let visited = ctx.engine.scan(&[], usize::MAX, &mut |key, value| {
                in_order &= (count == 0 || key > previous.as_slice()) && value.len() == value_size;
                previous.clear();
                previous.extend_from_slice(key);
                progress.tick(count);
                count += 1;
            });
            (visited, in_order, start.elapsed())
        });
    let visited = visited? as u64;
    ensure!(
        visited == ctx.keys,
        "readseq visited {visited} of {} keys",
        ctx.keys
    );
    ensure!(
        in_order,
        "readseq saw keys out of order or a value of the wrong size"
    );
    Ok(Outcome {
        ops: visited,
        elapsed,
        ..Outcome::default()
    })
}

/// Random reads by `threads` readers while one more thread overwrites random keys for as
/// long as they run; the readers' throughput is the result.
fn read_while_writing(ctx: &Context<'_>) -> anyhow::Result<Outcome> {
    let (data, engine, keys) = (ctx.data, ctx.engine, ctx.keys);
    let stop = AtomicBool::new(false);
    let (readers, writer) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| -> anyhow::Result<(u64, Duration)> {
            let mut key = Vec::new();
            let mut writes = 0u64;
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let index = pick(writes, SALT_WRITER, keys);
                data.random_key(index, &mut key);
                engine.put(&key, data.value(index, 1))?;
                writes += 1;
            }
            Ok((writes, start.elapsed()))
        });
        let readers = parallel(ctx, ctx.threads, keys, |i, s| {
            let index = pick(i, SALT_READ, keys);
            data.random_key(index, &mut s.key);
            ensure!(engine.get(&s.key, &mut s.value)?, "key #{index} is missing");
            ensure!(
                s.value == data.value(index, 0) || s.value == data.value(index, 1),
                "key #{index} has a value that was never written"
            );
            Ok(())
        });
        stop.store(true, Ordering::Relaxed);
        let writer = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (readers, writer)
    });
    let mut outcome = readers?;
    let (writes, elapsed) = writer.context("the writer of readwhilewriting")?;
    let rate = writes as f64 / elapsed.as_secs_f64().max(1e-9);
    outcome
        .notes
        .push(("writer_ops_per_sec".to_string(), format!("{rate:.0}")));
    Ok(outcome)
}

/// [`parallel_with`] with the buffers of [`Scratch`] and the display and label of `ctx`.
fn parallel<F>(ctx: &Context<'_>, threads: usize, ops: u64, op: F) -> anyhow::Result<Outcome>
where
    F: Fn(u64, &mut Scratch) -> anyhow::Result<()> + Sync,
{
    parallel_with(ctx.display, ctx.label, threads, ops, op)
}

/// Runs operations `0..ops` split into `threads` contiguous shares, one thread each, all
/// released at once, each thread with its own `S` for buffers; times each operation and
/// the whole phase, with a progress bar labelled `label`.
pub(super) fn parallel_with<S, F>(
    display: Display,
    label: &str,
    threads: usize,
    ops: u64,
    op: F,
) -> anyhow::Result<Outcome>
where
    S: Default,
    F: Fn(u64, &mut S) -> anyhow::Result<()> + Sync,
{
    let threads = threads.max(1);
    let shares = threads as u64;
    progress::show(display, label, ops, |progress| {
        let barrier = Barrier::new(threads + 1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..shares)
                .map(|t| {
                    let (barrier, op) = (&barrier, &op);
                    scope.spawn(move || -> anyhow::Result<Vec<u64>> {
                        let share = (ops * t / shares)..(ops * (t + 1) / shares);
                        let mut samples = Vec::with_capacity((share.end - share.start) as usize);
                        let mut scratch = S::default();
                        barrier.wait();
                        for (done, i) in share.enumerate() {
                            let start = Instant::now();
                            op(i, &mut scratch)?;
                            samples.push(start.elapsed().as_nanos() as u64);
                            progress.tick(done as u64);
                        }
                        Ok(samples)
                    })
                })
                .collect();
            barrier.wait();
            let start = Instant::now();
            let results: Vec<_> = workers
                .into_iter()
                .map(|worker| {
                    worker
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect();
            let elapsed = start.elapsed();
            let mut samples = Vec::with_capacity(ops as usize);
            for result in results {
                samples.extend(result.with_context(|| label.to_string())?);
            }
            Ok(Outcome {
                ops,
                elapsed,
                samples,
                notes: Vec::new(),
            })
        })
    })
}
