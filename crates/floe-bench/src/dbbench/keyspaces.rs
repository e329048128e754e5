//! The `keyspaces` workload: random writes spread over several keyspaces of one database,
//! with atomic batches across keyspaces mixed in, then random point reads over them.
//!
//! The write phase starts from an empty database and writes each of the `keys` entries
//! once (entry `e` is the random key of index `e` with its generation-0 value, as in
//! `fillrandom`), so the database ends up holding what `fillrandom` leaves, split over
//! [`KEYSPACES`] keyspaces. The entries go in commits: of every [`BATCH_EVERY`] commits,
//! all but the last put one entry into a keyspace picked at random, and the last is one
//! batch putting an entry into each of [`BATCH_KEYSPACES`] distinct random keyspaces.
//! The read phase makes as many reads as there are keys, each of a random entry in the
//! keyspace it was written to, and checks the value; an untimed check after it looks a
//! sample of keys up in keyspaces they were not written to, so an engine that mixed
//! keyspaces up fails instead of winning.
//!
//! Both phases count entries, so that their ops/s compare with `fillrandom`'s and
//! `readrandom`'s (db_bench counts a batch's entries too); the latencies are those of
//! whole commits.

use std::ops::Range;

use anyhow::ensure;

use super::data::{Data, pick};
use super::engine::Keyspaces;
use super::progress::Display;
use super::workloads::{Outcome, parallel_with};

/// How many keyspaces the database has.
pub(super) const KEYSPACES: usize = 8;

/// One commit in this many is a batch across keyspaces.
pub(super) const BATCH_EVERY: u64 = 10;

/// How many keyspaces (one put each) a batch spans.
pub(super) const BATCH_KEYSPACES: u64 = 4;

/// Puts into one keyspace each between two batches.
const SINGLES: u64 = BATCH_EVERY - 1;

/// Entries written by the [`BATCH_EVERY`] commits that end with one batch.
const PERIOD: u64 = SINGLES + BATCH_KEYSPACES;

/// Salts that make each choice of the workload its own random sequence.
const SALT_KEYSPACE: u64 = 0x6b5;
const SALT_BATCH_FIRST: u64 = 0xba7c;
const SALT_BATCH_STRIDE: u64 = 0x57d;
const SALT_READ: u64 = 0x4eadc5;
const SALT_APART: u64 = 0xa9a7;

/// How many keys the untimed check after the reads looks up in other keyspaces.
const APART_CHECKS: u64 = 1000;

// A batch's keyspaces must be distinct, and a batch one put.
const _: () = assert!(BATCH_KEYSPACES as usize <= KEYSPACES && BATCH_KEYSPACES >= 1);

/// Everything a phase of the workload needs to run on one engine.
pub(super) struct Context<'a> {
    pub(super) engine: &'a dyn Keyspaces,
    pub(super) data: &'a Data,
    /// How many entries the write phase writes, and the read phase reads.
    pub(super) keys: u64,
    pub(super) threads: usize,
    pub(super) display: Display,
    /// Names the workload, thread count and engine in progress lines and errors.
    pub(super) label: &'a str,
}

/// Per-thread buffers: one key for each put of a batch.
#[derive(Debug, Default)]
struct Scratch {
    keys: Vec<Vec<u8>>,
    value: Vec<u8>,
}

/// Which entries each commit writes, and into which keyspace each entry goes: functions
/// of the index alone, so that any thread can write any commit and the readers know where
/// every entry is.
///
/// Commits come in periods of [`BATCH_EVERY`] that write [`PERIOD`] consecutive entries:
/// with a batch every 10th commit across 4 keyspaces, commits 0 to 8 put entries 0 to 8
/// one each and commit 9 puts entries 9 to 12 in one batch; commit 10 puts entry 13.
#[derive(Debug, Clone, Copy)]
struct Layout {
    keys: u64,
}

impl Layout {
    /// How many commits write all the entries (the last batch may be cut short).
    fn commits(self) -> u64 {
        let rest = self.keys % PERIOD;
        self.keys / PERIOD * BATCH_EVERY + rest.min(SINGLES) + u64::from(rest > SINGLES)
    }

    /// Whether commit `commit` is a batch.
    fn is_batch(commit: u64) -> bool {
        commit % BATCH_EVERY == SINGLES
    }

    /// The entries commit `commit` writes.
    fn entries(self, commit: u64) -> Range<u64> {
        let start = commit / BATCH_EVERY * PERIOD + commit % BATCH_EVERY;
        let len = if Layout::is_batch(commit) {
            BATCH_KEYSPACES
        } else {
            1
        };
        start..(start + len).min(self.keys)
    }

    /// The keyspace entry `entry` is written to.
    ///
    /// A single put's keyspace is uniformly random. A batch's puts walk the keyspaces from
    /// a random first one with a random odd stride: an odd stride is invertible modulo a
    /// power of two, so the [`BATCH_KEYSPACES`] steps land on distinct keyspaces.
    fn keyspace(entry: u64) -> usize {
        let (period, offset) = (entry / PERIOD, entry % PERIOD);
        let count = KEYSPACES as u64;
        let keyspace = if offset < SINGLES {
            pick(entry, SALT_KEYSPACE, count)
        } else {
            let first = pick(period, SALT_BATCH_FIRST, count);
            let stride = 2 * pick(period, SALT_BATCH_STRIDE, count / 2) + 1;
            (first + (offset - SINGLES) * stride) % count
        };
        keyspace as usize
    }
}

// The stride argument above needs a power of two.
const _: () = assert!(KEYSPACES.is_power_of_two());

/// The timed write phase: every entry once, in [`Layout::commits`] commits.
pub(super) fn write(ctx: &Context<'_>) -> anyhow::Result<Outcome> {
    let (data, engine) = (ctx.data, ctx.engine);
    let layout = Layout { keys: ctx.keys };
    let commits = layout.commits();
    let mut outcome = parallel_with(
        ctx.display,
        ctx.label,
        ctx.threads,
        commits,
        |commit, s: &mut Scratch| {
            let entries = layout.entries(commit);
            if !Layout::is_batch(commit) {
                let key = first_key(&mut s.keys);
                data.random_key(entries.start, key);
                return engine.put(
                    Layout::keyspace(entries.start),
                    key,
                    data.value(entries.start, 0),
                );
            }
            s.keys.resize_with(BATCH_KEYSPACES as usize, Vec::new);
            for (entry, key) in entries.clone().zip(&mut s.keys) {
                data.random_key(entry, key);
            }
            let mut puts = [(0, &[][..], &[][..]); BATCH_KEYSPACES as usize];
            for ((put, entry), key) in puts.iter_mut().zip(entries.clone()).zip(&s.keys) {
                *put = (
                    Layout::keyspace(entry),
                    key.as_slice(),
                    data.value(entry, 0),
                );
            }
            engine.write_batch(&puts[..(entries.end - entries.start) as usize])
        },
    )?;
    let batches = commits / BATCH_EVERY;
    let per_sec = commits as f64 / outcome.elapsed.as_secs_f64().max(1e-9);
    outcome.ops = ctx.keys;
    outcome.notes.extend([
        ("keyspaces".to_string(), KEYSPACES.to_string()),
        ("commits".to_string(), commits.to_string()),
        ("batches".to_string(), batches.to_string()),
        ("commits_per_sec".to_string(), format!("{per_sec:.0}")),
    ]);
    Ok(outcome)
}

/// The timed read phase: as many reads as keys, each of a random entry in its keyspace.
pub(super) fn read(ctx: &Context<'_>) -> anyhow::Result<Outcome> {
    let (data, engine, keys) = (ctx.data, ctx.engine, ctx.keys);
    parallel_with(
        ctx.display,
        ctx.label,
        ctx.threads,
        keys,
        |i, s: &mut Scratch| {
            let entry = pick(i, SALT_READ, keys);
            let keyspace = Layout::keyspace(entry);
            let key = first_key(&mut s.keys);
            data.random_key(entry, key);
            ensure!(
                engine.get(keyspace, key, &mut s.value)?,
                "key #{entry} is missing from keyspace {keyspace}"
            );
            ensure!(
                s.value == data.value(entry, 0),
                "key #{entry} has a wrong value in keyspace {keyspace}"
            );
            Ok(())
        },
    )
}

/// Looks a sample of written keys up in keyspaces they were not written to (untimed) and
/// fails if any is there.
pub(super) fn check_apart(ctx: &Context<'_>) -> anyhow::Result<()> {
    let (mut key, mut value) = (Vec::new(), Vec::new());
    let others = KEYSPACES as u64 - 1;
    for i in 0..APART_CHECKS.min(ctx.keys) {
        let entry = pick(i, SALT_APART, ctx.keys);
        let home = Layout::keyspace(entry);
        let other = (home + 1 + pick(i, SALT_APART, others) as usize) % KEYSPACES;
        ctx.data.random_key(entry, &mut key);
        ensure!(
            !ctx.engine.get(other, &key, &mut value)?,
            "{}: key #{entry} of keyspace {home} was found in keyspace {other}",
            ctx.label
        );
    }
    Ok(())
}

/// The first key buffer of a thread, made on its first use.
fn first_key(keys: &mut Vec<Vec<u8>>) -> &mut Vec<u8> {
    if keys.is_empty() {
        keys.push(Vec::new());
    }
    &mut keys[0]
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn commits_write_every_entry_once_and_batches_span_distinct_keyspaces() {
        for keys in [1, 9, 10, 12, 13, 14, 1000, 1001] {
            let layout = Layout { keys };
            let mut next = 0;
            for commit in 0..layout.commits() {
                let entries = layout.entries(commit);
                assert_eq!(entries.start, next, "{keys} keys: commit {commit}");
                assert!(!entries.is_empty(), "{keys} keys: commit {commit} is empty");
                next = entries.end;
                if Layout::is_batch(commit) {
                    let spanned: HashSet<usize> = entries.map(Layout::keyspace).collect();
                    assert_eq!(spanned.len(), layout.entries(commit).count());
                } else {
                    assert_eq!(entries.count(), 1);
                }
            }
            assert_eq!(next, keys, "{keys} keys are not all written");
        }
        let layout = Layout { keys: 13 };
        assert_eq!(layout.commits(), 10);
        assert_eq!(layout.entries(9), 9..13);
    }

    #[test]
    fn entries_spread_over_every_keyspace() {
        let mut counts = [0u64; KEYSPACES];
        for entry in 0..13_000 {
            counts[Layout::keyspace(entry)] += 1;
        }
        // 1625 each on average; a keyspace far off would skew the workload.
        assert!(
            counts.iter().all(|&n| (1300..1950).contains(&n)),
            "{counts:?}"
        );
    }
}
