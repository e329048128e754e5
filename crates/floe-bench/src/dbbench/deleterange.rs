//! The `deleterange` workload: removing a contiguous slice of the key space, and what
//! range tombstones cost the reads that meet them.
//!
//! Every database of the workload is filled with the sequential keys `0..keys` (value
//! generation 0, in batches, then a flush), so that a run of key indexes is a contiguous
//! range of keys. Each engine, on a fresh database:
//!
//! 1. `deleterange-readbefore`: as many random reads as keys (the rate);
//! 2. `deleterange`: removes the middle tenth of the key space ([`slice`]) with
//!    [`Engine::delete_range`], timed: one range tombstone for floe and RocksDB, a scan
//!    and one removal per key for fjall, which has no range delete (the row's `method`
//!    note says which);
//! 3. `deleterange-readafter`: as many random reads over the whole key space, a tenth of
//!    them of deleted keys; each deleted key must read as absent and every other one as
//!    written, or the run fails.
//!
//! The engines with a range delete then measure the two targets of range deletes, each on
//! a fresh database of its own:
//!
//! - `deleterange-perkey`: the same slice removed with one `delete` per key; its notes give
//!   the time of both and the ratio per-key over range delete (`target_ratio`, against
//!   `target_min` 100);
//! - `deleterange-readclean` and `deleterange-readtombs`: random reads of keys no range
//!   covers, on the filled database compacted into one sorted run (so that no background
//!   work runs under either phase) and then again after [`TOMBSTONES`] small range
//!   deletes ([`Tombstones`]: overlapping in pairs, spread over the key space, the first
//!   of each pair flushed to a table and the second left in the memtable); the second
//!   row's notes give the ratio of the two rates (`target_ratio`, against `target_min`
//!   0.80). Every key the tombstones cover is checked to read as absent, untimed.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};

use super::data::{Data, pick};
use super::engine::Engine;
use super::progress::Display;
use super::settle_disk;
use super::workloads::{Outcome, parallel_with};

/// How many small range deletes the tombstone target writes (fewer on a database too
/// small to hold them apart, see [`Tombstones::new`]).
pub(super) const TOMBSTONES: u64 = 10_000;

/// The per-key removal of a slice must take at least this many times as long as one
/// range delete of it.
pub(super) const TARGET_SPEEDUP: f64 = 100.0;

/// Point reads with the range tombstones live must keep at least this share of the rate
/// without them.
pub(super) const TARGET_READ_RATIO: f64 = 0.80;

/// The fewest keys the workload runs on: enough for a pair of tombstones with uncovered
/// keys around it.
pub(super) const MIN_KEYS: u64 = 20;

/// Salts that make each read phase pick its own sequence of keys.
const SALT_BEFORE: u64 = 0xde1b;
const SALT_AFTER: u64 = 0xde1a;
const SALT_TOMBS: u64 = 0xde17;

/// Everything a phase needs to run on one engine.
pub(super) struct Context<'a> {
    pub(super) engine: &'a dyn Engine,
    pub(super) data: &'a Data,
    /// How many keys the database holds.
    pub(super) keys: u64,
    pub(super) display: Display,
    /// Names the workload and engine in progress lines and errors.
    pub(super) label: &'a str,
}

/// Per-thread buffers.
#[derive(Debug, Default)]
struct Scratch {
    key: Vec<u8>,
    value: Vec<u8>,
}

/// The key indexes the `deleterange` phase removes: the tenth of `0..keys` in the middle
/// (at least one key).
pub(super) fn slice(keys: u64) -> std::ops::Range<u64> {
    let start = keys * 45 / 100;
    start..(start + (keys / 10).max(1)).min(keys)
}

/// Writes the sequential keys `0..ctx.keys` (value generation 0) in batches, then flushes:
/// the untimed starting state of every database of the workload.
pub(super) fn load(ctx: &Context<'_>) -> anyhow::Result<()> {
    let load = super::workloads::Load {
        engine: ctx.engine,
        data: ctx.data,
        keys: ctx.keys,
        display: ctx.display,
        label: ctx.label,
    };
    load.run(|index, key| ctx.data.seq_key(index, key))
}

/// As many random reads as keys, on one thread, each of the key index `target(i)` picks;
/// `deleted` says which indexes must read as absent. Returns the outcome with a note of
/// how many reads found nothing.
fn read(
    ctx: &Context<'_>,
    label: &str,
    target: impl Fn(u64) -> u64 + Sync,
    deleted: impl Fn(u64) -> bool + Sync,
) -> anyhow::Result<Outcome> {
    let (data, engine) = (ctx.data, ctx.engine);
    let absent = std::sync::atomic::AtomicU64::new(0);
    let mut outcome = parallel_with(ctx.display, label, 1, ctx.keys, |i, s: &mut Scratch| {
        let index = target(i);
        data.seq_key(index, &mut s.key);
        let found = engine.get(&s.key, &mut s.value)?;
        if deleted(index) {
            ensure!(!found, "deleted key #{index} is still found");
            absent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else {
            ensure!(found, "key #{index} is missing");
            ensure!(
                s.value == data.value(index, 0),
                "key #{index} has a wrong value"
            );
        }
        Ok(())
    })?;
    outcome
        .notes
        .push(("absent_reads".to_string(), absent.into_inner().to_string()));
    Ok(outcome)
}

/// The three phases every engine runs: reads, the removal of [`slice`], reads again.
pub(super) fn main_phases(ctx: &Context<'_>, native: bool) -> anyhow::Result<[Outcome; 3]> {
    let keys = ctx.keys;
    let gone = slice(keys);
    settle_disk();
    let before = read(
        ctx,
        &format!("{} (read before)", ctx.label),
        |i| pick(i, SALT_BEFORE, keys),
        |_| false,
    )?;
    settle_disk();
    let (mut start, mut end) = (Vec::new(), Vec::new());
    ctx.data.seq_key(gone.start, &mut start);
    ctx.data.seq_key(gone.end, &mut end);
    let began = Instant::now();
    ctx.engine
        .delete_range(&start, &end)
        .with_context(|| format!("{}: deleting keys #{gone:?}", ctx.label))?;
    let elapsed = began.elapsed();
    let method = if native {
        "range_delete"
    } else {
        "remove_per_key"
    };
    let covered = gone.end - gone.start;
    let delete = Outcome {
        ops: covered,
        elapsed,
        samples: Vec::new(),
        notes: vec![
            ("method".to_string(), method.to_string()),
            ("keys_deleted".to_string(), covered.to_string()),
            ("elapsed_us".to_string(), micros(elapsed)),
        ],
    };
    settle_disk();
    let after = read(
        ctx,
        &format!("{} (read after)", ctx.label),
        |i| pick(i, SALT_AFTER, keys),
        |index| gone.contains(&index),
    )?;
    Ok([before, delete, after])
}

/// The per-key side of the first target: removes [`slice`] with one `delete` per key.
/// `range_delete` is the time the range delete of the same slice took on a database filled
/// the same way.
pub(super) fn per_key(ctx: &Context<'_>, range_delete: Duration) -> anyhow::Result<Outcome> {
    let gone = slice(ctx.keys);
    settle_disk();
    let data = ctx.data;
    let engine = ctx.engine;
    let first = gone.start;
    let mut outcome = parallel_with(
        ctx.display,
        &format!("{} (delete per key)", ctx.label),
        1,
        gone.end - gone.start,
        |i, s: &mut Scratch| {
            data.seq_key(first + i, &mut s.key);
            engine.delete(&s.key)
        },
    )?;
    // The deletes took: spot-check that they did (untimed).
    let mut key = Vec::new();
    let mut value = Vec::new();
    for index in [gone.start, (gone.start + gone.end) / 2, gone.end - 1] {
        data.seq_key(index, &mut key);
        ensure!(
            !engine.get(&key, &mut value)?,
            "{}: key #{index} survived its delete",
            ctx.label
        );
    }
    let ratio = outcome.elapsed.as_secs_f64() / range_delete.as_secs_f64().max(1e-9);
    outcome.notes.extend(target_notes(
        [
            ("method", "delete_per_key".to_string()),
            ("keys_deleted", (gone.end - gone.start).to_string()),
            ("per_key_us", micros(outcome.elapsed)),
            ("range_delete_us", micros(range_delete)),
        ],
        ratio,
        TARGET_SPEEDUP,
    ));
    Ok(outcome)
}

/// The small range deletes of the second target, in pairs: pair `p` covers key indexes
/// `c..c + 4` with `c = p * stride + stride / 2`, its first range `c..c + 3` and its second
/// `c + 1..c + 4`, so the two overlap; the pairs are spread evenly over the key space.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tombstones {
    pairs: u64,
    stride: u64,
}

impl Tombstones {
    /// Key indexes each pair covers.
    const SPAN: u64 = 4;

    /// [`TOMBSTONES`] ranges over `0..keys`, or as many as keep pairs at least 10 keys
    /// apart; `keys` must be at least [`MIN_KEYS`].
    pub(super) fn new(keys: u64) -> Tombstones {
        let pairs = (TOMBSTONES / 2).min(keys / 10).max(1);
        Tombstones {
            pairs,
            stride: (keys / pairs).max(1),
        }
    }

    /// How many range deletes there are.
    pub(super) fn count(self) -> u64 {
        2 * self.pairs
    }

    /// The first key index pair `pair` covers.
    fn first(self, pair: u64) -> u64 {
        pair * self.stride + self.stride / 2
    }

    /// Range `which` (0 or 1) of pair `pair`, as key indexes.
    fn range(self, pair: u64, which: u64) -> std::ops::Range<u64> {
        let start = self.first(pair) + which;
        start..start + Self::SPAN - 1
    }

    /// Whether a range covers key index `index`.
    fn covers(self, index: u64) -> bool {
        let pair = index / self.stride;
        let first = self.first(pair);
        pair < self.pairs && (first..first + Self::SPAN).contains(&index)
    }

    /// A key index no range covers, for read `i`: a random one, moved below its pair's
    /// span when it falls inside one.
    fn uncovered(self, i: u64, keys: u64) -> u64 {
        let index = pick(i, SALT_TOMBS, keys);
        if self.covers(index) {
            self.first(index / self.stride) - 1
        } else {
            index
        }
    }
}

/// The second target: random reads of uncovered keys without and then with the
/// [`Tombstones`] live. Returns both outcomes, the second with the ratio of the rates.
pub(super) fn tombstone_reads(ctx: &Context<'_>) -> anyhow::Result<[Outcome; 2]> {
    let keys = ctx.keys;
    let tombs = Tombstones::new(keys);
    // One sorted run under both read phases: the tables of the load would otherwise be
    // compacted while the second one runs, once the flush of the tombstones joined them.
    ctx.engine
        .compact()
        .with_context(|| format!("{}: compacting", ctx.label))?;
    settle_disk();
    let clean = read(
        ctx,
        &format!("{} (read, no tombstones)", ctx.label),
        |i| tombs.uncovered(i, keys),
        |_| false,
    )?;
    // The first range of every pair goes to a table, the second stays in the memtable.
    let (mut start, mut end) = (Vec::new(), Vec::new());
    for which in 0..2 {
        for pair in 0..tombs.pairs {
            let range = tombs.range(pair, which);
            ctx.data.seq_key(range.start, &mut start);
            ctx.data.seq_key(range.end, &mut end);
            ctx.engine
                .delete_range(&start, &end)
                .with_context(|| format!("{}: deleting keys #{range:?}", ctx.label))?;
        }
        if which == 0 {
            ctx.engine
                .flush()
                .with_context(|| format!("{}: flushing", ctx.label))?;
        }
    }
    settle_disk();
    let mut live = read(
        ctx,
        &format!("{} (read, {} tombstones)", ctx.label, tombs.count()),
        |i| tombs.uncovered(i, keys),
        |_| false,
    )?;
    // Every covered key reads as absent (untimed).
    let mut value = Vec::new();
    for pair in 0..tombs.pairs {
        for index in tombs.first(pair)..tombs.first(pair) + Tombstones::SPAN {
            ctx.data.seq_key(index, &mut start);
            ensure!(
                !ctx.engine.get(&start, &mut value)?,
                "{}: key #{index} is found under a range tombstone",
                ctx.label
            );
        }
    }
    let ratio = rate(&live) / rate(&clean).max(1e-9);
    live.notes.extend(target_notes(
        [
            ("range_tombstones", tombs.count().to_string()),
            ("flushed", tombs.pairs.to_string()),
            ("in_memtable", tombs.pairs.to_string()),
            ("clean_ops_per_sec", format!("{:.0}", rate(&clean))),
        ],
        ratio,
        TARGET_READ_RATIO,
    ));
    Ok([clean, live])
}

/// `notes` followed by a target's ratio, its minimum and whether it is met.
fn target_notes<const N: usize>(
    notes: [(&str, String); N],
    ratio: f64,
    min: f64,
) -> impl Iterator<Item = (String, String)> {
    let decimals = if ratio >= 100.0 { 0 } else { 2 };
    let met = if ratio >= min { "yes" } else { "no" };
    notes
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .chain([
            ("target_ratio".to_string(), format!("{ratio:.decimals$}")),
            ("target_min".to_string(), format!("{min:.2}")),
            ("target_met".to_string(), met.to_string()),
        ])
}

fn rate(outcome: &Outcome) -> f64 {
    outcome.ops as f64 / outcome.elapsed.as_secs_f64().max(1e-9)
}

fn micros(elapsed: Duration) -> String {
    format!("{:.1}", elapsed.as_secs_f64() * 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slice_is_a_tenth_in_the_middle() {
        assert_eq!(slice(1_000_000), 450_000..550_000);
        assert_eq!(slice(2000), 900..1100);
        assert_eq!(slice(1), 0..1);
    }

    #[test]
    fn tombstones_overlap_in_pairs_and_reads_avoid_them() {
        let tombs = Tombstones::new(1_000_000);
        assert_eq!(tombs.count(), TOMBSTONES);
        assert_eq!(tombs.stride, 200);
        let (a, b) = (tombs.range(7, 0), tombs.range(7, 1));
        assert!(a.start < b.start && b.start < a.end, "{a:?} {b:?}");
        for keys in [20, 2000, 1_000_000] {
            let tombs = Tombstones::new(keys);
            let covered = (0..keys).filter(|&i| tombs.covers(i)).count() as u64;
            assert_eq!(covered, tombs.pairs * Tombstones::SPAN, "{keys} keys");
            for pair in 0..tombs.pairs {
                for which in 0..2 {
                    assert!(tombs.range(pair, which).all(|i| tombs.covers(i)));
                }
            }
            assert!((0..5000).all(|i| {
                let index = tombs.uncovered(i, keys);
                index < keys && !tombs.covers(index)
            }));
        }
    }
}
