//! What the database reports about its shape and its cost ([`Stats`], from
//! [`crate::Db::stats`]), and the counters the write path, flushes and compactions bump.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) mod sampling;

pub use sampling::Latency;

use crate::compaction::pick;
use crate::events::StallCause;
use crate::options::Options;
use crate::version::TableReads;
use crate::version::{NUM_LEVELS, State};

/// The tables of one level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LevelStats {
    /// How many tables the level holds.
    pub tables: usize,
    /// Their total size on disk, in bytes.
    pub bytes: u64,
    /// The size past which the level compacts into the next, in bytes; 0 for level 0
    /// (which compacts by table count), for the bottom level (which never compacts on
    /// its own) and, with dynamic targets, for the levels above the base level (which
    /// should hold no tables). See [`crate::Options::dynamic_level_bytes`].
    pub target_bytes: u64,
    /// Bytes written into the level since open: by flushes for level 0, by the
    /// compactions that output into it for the others.
    pub bytes_written: u64,
    /// Bytes read from the levels above by the compactions that output into this level:
    /// the data they moved down. `bytes_written` over this is the level's own write
    /// amplification (about 1 plus the overlap it had to rewrite per byte moved in).
    pub bytes_moved_in: u64,
    /// Bytes of this level's own tables read (and rewritten) by the compactions that
    /// output into it.
    pub bytes_rewritten: u64,
    /// Time spent in the compactions that output into the level (for level 0, in
    /// flushes), since open.
    pub compaction_time: Duration,
}

/// A report of the database's shape and of what its writes cost, since it was opened.
/// The levels are summed over every keyspace.
///
/// Write amplification is the bytes written to tables (by flushes and compactions) per
/// byte of keys and values the user wrote; the write-ahead log is not counted. Space
/// amplification is the bytes of all tables per byte of the deepest non-empty level, the
/// usual leveled-compaction estimate: in a settled tree the deepest level holds nearly all
/// live data, so what the levels above add is mostly versions that compaction has yet to
/// drop. After [`crate::Db::compact`] the live data is all that is left on disk.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// The tables of each level, level 0 first.
    pub levels: Vec<LevelStats>,
    /// Bytes of keys and values in acknowledged writes (deletes count their key).
    pub user_bytes_written: u64,
    /// Bytes of tables written by flushes (and by the flush of the log at open).
    pub flush_bytes_written: u64,
    /// Tables written by flushes (and by the flush of the log at open).
    pub flushes: u64,
    /// Bytes of tables written by compactions.
    pub compaction_bytes_written: u64,
    /// Bytes of tables read by compactions.
    pub compaction_bytes_read: u64,
    /// Compactions that merged tables (manual ones included).
    pub compactions: u64,
    /// Compactions that moved tables one level down without rewriting them.
    pub trivial_moves: u64,
    /// Key ranges merged by compactions split into subcompactions, each on a thread of
    /// its own (see [`crate::Options::max_subcompactions`]); 0 if none was split.
    pub subcompactions: u64,
    /// Tables a compaction dropped without reading them, every version in them hidden by
    /// a newer range tombstone.
    pub tables_dropped_by_range_tombstones: u64,
    /// Write groups that were delayed because level 0 reached its slowdown trigger.
    pub slowdowns: u64,
    /// Write groups that waited because level 0 reached its stop trigger.
    pub stops: u64,
    /// Memtable switches that waited because `max_immutable_memtables` frozen memtables
    /// were still waiting for their flush (every writer waits with the switch).
    pub memtable_stops: u64,
    /// The total time write groups spent delayed or waiting for level 0, and memtable
    /// switches spent waiting for a flush (`stops` and `memtable_stops`): summed over
    /// the waits, which can overlap in time when several threads wait.
    pub stall_time: Duration,
    /// The part of `stall_time` spent in level-0 slowdowns (`slowdowns`).
    pub slowdown_time: Duration,
    /// The part of `stall_time` spent waiting at the level-0 stop trigger (`stops`).
    pub stop_time: Duration,
    /// The part of `stall_time` spent waiting for a flush (`memtable_stops`).
    pub memtable_stop_time: Duration,
    /// Acknowledged writes (each `put`, `delete` and batch `write` call that changed
    /// something).
    pub writes: u64,
    /// Commit groups logged: each is one log record, written by one leader for all the
    /// writes that were queued together.
    pub write_groups: u64,
    /// `fdatasync` calls on the write-ahead log, for synced writes and [`crate::Db::sync`]
    /// (and close). Concurrent synced writers share one (group commit): compare with
    /// `writes`. The background sync's are counted apart, in `log_background_syncs`.
    pub log_syncs: u64,
    /// `fdatasync` calls on log segments by the background sync of an unsynced write path
    /// (see [`crate::Options::wal_bytes_per_sync`]), one per segment synced; 0 with
    /// [`crate::Options::sync`] on, whose writes sync themselves.
    pub log_background_syncs: u64,
    /// How many keyspaces the database holds, `"default"` included.
    pub keyspaces: usize,
    /// Bytes charged to the memtables of every keyspace, active and frozen (see
    /// [`crate::Options::db_write_buffer_size`]).
    pub memtable_bytes: u64,
    /// Memtable switches made because the memtables of all keyspaces together reached
    /// [`crate::Options::db_write_buffer_size`].
    pub budget_flushes: u64,
    /// Bytes of data blocks held in the block cache now (at most
    /// `block_cache_capacity`).
    pub block_cache_bytes: u64,
    /// The block cache's budget, [`crate::Options::block_cache_size`].
    pub block_cache_capacity: u64,
    /// Bytes the open tables of the current version hold in memory outside the block
    /// cache, for as long as they are open: their decoded indexes, bloom filters and
    /// range tombstones.
    pub pinned_table_bytes: u64,
    /// Bytes of flushed memtables kept for the validation of live transactions (at most
    /// [`crate::Options::transaction_history_bytes`]; 0 without transactions).
    pub transaction_history_bytes: u64,
    /// Point lookups (`get` of the database, a keyspace, a snapshot or a transaction).
    pub gets: u64,
    /// Latencies of point lookups, one sampled in 64 per thread.
    pub get_latency: Latency,
    /// Latencies of writes (`put`, `delete`, `write`, a commit), one sampled in 64 per
    /// thread, stalls included.
    pub write_latency: Latency,
    /// Table bloom filters consulted by the sampled lookups (one in 64 per thread: scale
    /// by 64 for an estimate of all).
    pub bloom_checked: u64,
    /// Of `bloom_checked`, the filters that ruled the key out, saving a block read.
    pub bloom_useful: u64,
    /// Of `bloom_checked`, the filters that let the key through to a table that did not
    /// hold it: false positives.
    pub bloom_false_positives: u64,
}

impl Stats {
    /// The memory the database accounts for: memtables, the block cache, what open
    /// tables pin and the transaction history. What it leaves out is small and bounded
    /// by the number of open tables, keyspaces and threads (iterators in use hold their
    /// blocks on top); with tables mapped (no [`crate::Options::block_cache_size`]), the
    /// mapped files are not counted here, and the kernel decides how much of them is
    /// resident.
    #[must_use]
    pub fn memory_bytes(&self) -> u64 {
        self.memtable_bytes
            + self.block_cache_bytes
            + self.pinned_table_bytes
            + self.transaction_history_bytes
    }

    /// Bytes of all tables of the current version.
    #[must_use]
    pub fn table_bytes(&self) -> u64 {
        self.levels.iter().map(|level| level.bytes).sum()
    }

    /// Bytes written to tables per byte written by the user (0 before any write).
    #[must_use]
    pub fn write_amplification(&self) -> f64 {
        if self.user_bytes_written == 0 {
            return 0.0;
        }
        (self.flush_bytes_written + self.compaction_bytes_written) as f64
            / self.user_bytes_written as f64
    }

    /// Bytes of all tables per byte of the deepest non-empty level (1 for an empty tree);
    /// see the type's documentation.
    #[must_use]
    pub fn space_amplification(&self) -> f64 {
        match self.levels.iter().rev().find(|level| level.bytes > 0) {
            Some(deepest) => self.table_bytes() as f64 / deepest.bytes as f64,
            None => 1.0,
        }
    }
}

/// A report for people, in the spirit of RocksDB's compaction stats: a table of the levels,
/// then writes, stalls, reads, bloom filters and memory, one line each.
impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<5} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>6} {:>9}",
            "Level",
            "Tables",
            "Size",
            "Target",
            "Written",
            "Moved in",
            "Rewritten",
            "W-Amp",
            "Time (s)"
        )?;
        let mut total = LevelStats::default();
        for (level, stats) in self.levels.iter().enumerate() {
            if stats.tables == 0 && stats.bytes_written == 0 {
                continue;
            }
            let read = stats.bytes_moved_in + stats.bytes_rewritten;
            let amp = if level == 0 || read == 0 {
                "-".to_owned()
            } else {
                format!(
                    "{:.2}",
                    stats.bytes_written as f64 / stats.bytes_moved_in.max(1) as f64
                )
            };
            writeln!(
                f,
                "{:<5} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>6} {:>9.2}",
                format!("L{level}"),
                stats.tables,
                bytes(stats.bytes),
                if stats.target_bytes == 0 {
                    "-".to_owned()
                } else {
                    bytes(stats.target_bytes)
                },
                bytes(stats.bytes_written),
                bytes(stats.bytes_moved_in),
                bytes(stats.bytes_rewritten),
                amp,
                stats.compaction_time.as_secs_f64(),
            )?;
            total.tables += stats.tables;
            total.bytes += stats.bytes;
            total.bytes_written += stats.bytes_written;
            total.bytes_moved_in += stats.bytes_moved_in;
            total.bytes_rewritten += stats.bytes_rewritten;
            total.compaction_time += stats.compaction_time;
        }
        writeln!(
            f,
            "{:<5} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>6.2} {:>9.2}",
            "Sum",
            total.tables,
            bytes(total.bytes),
            "-",
            bytes(total.bytes_written),
            bytes(total.bytes_moved_in),
            bytes(total.bytes_rewritten),
            self.write_amplification(),
            total.compaction_time.as_secs_f64(),
        )?;
        writeln!(
            f,
            "Writes: {} in {} groups, {} of keys and values; write amplification {:.2}, space amplification {:.2}",
            self.writes,
            self.write_groups,
            bytes(self.user_bytes_written),
            self.write_amplification(),
            self.space_amplification()
        )?;
        writeln!(
            f,
            "Background: {} flushes, {} compactions, {} trivial moves, {} tables dropped by range tombstones",
            self.flushes,
            self.compactions,
            self.trivial_moves,
            self.tables_dropped_by_range_tombstones
        )?;
        writeln!(
            f,
            "Stalls: {:.3} s in all; {} slowdowns ({:.3} s), {} stops ({:.3} s), {} waits for a flush ({:.3} s)",
            self.stall_time.as_secs_f64(),
            self.slowdowns,
            self.slowdown_time.as_secs_f64(),
            self.stops,
            self.stop_time.as_secs_f64(),
            self.memtable_stops,
            self.memtable_stop_time.as_secs_f64()
        )?;
        writeln!(
            f,
            "Gets: {}; latency {}",
            self.gets,
            latency(&self.get_latency)
        )?;
        writeln!(f, "Writes: latency {}", latency(&self.write_latency))?;
        let share = |part: u64| {
            if self.bloom_checked == 0 {
                0.0
            } else {
                100.0 * part as f64 / self.bloom_checked as f64
            }
        };
        writeln!(
            f,
            "Bloom filters (sampled lookups): {} checked, {} useful ({:.1}%), {} false positives ({:.1}%)",
            self.bloom_checked,
            self.bloom_useful,
            share(self.bloom_useful),
            self.bloom_false_positives,
            share(self.bloom_false_positives)
        )?;
        writeln!(
            f,
            "Memory: {} in all; memtables {}, block cache {} of {}, pinned by tables {}, transaction history {}",
            bytes(self.memory_bytes()),
            bytes(self.memtable_bytes),
            bytes(self.block_cache_bytes),
            bytes(self.block_cache_capacity),
            bytes(self.pinned_table_bytes),
            bytes(self.transaction_history_bytes)
        )?;
        write!(
            f,
            "Log: {} syncs, {} background syncs; {} keyspaces",
            self.log_syncs, self.log_background_syncs, self.keyspaces
        )
    }
}

/// `n` bytes in the largest unit that keeps at least 1 of it, for people.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A latency summary, for people.
fn latency(latency: &Latency) -> String {
    if latency.samples == 0 {
        return "not sampled yet".to_owned();
    }
    format!(
        "p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?} ({} samples)",
        latency.p50, latency.p99, latency.p999, latency.max, latency.samples
    )
}

/// `duration` in whole nanoseconds, saturating.
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The counters behind [`Stats`]; relaxed atomics, since each is a tally read as a whole.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) user_bytes: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) compactions: AtomicU64,
    pub(crate) trivial_moves: AtomicU64,
    pub(crate) subcompactions: AtomicU64,
    pub(crate) tables_dropped_by_range_tombstones: AtomicU64,
    pub(crate) slowdowns: AtomicU64,
    pub(crate) stops: AtomicU64,
    pub(crate) memtable_stops: AtomicU64,
    pub(crate) stall_nanos: AtomicU64,
    /// Per [`StallCause`], in its declaration order: the time writers spent in stalls of
    /// that cause.
    pub(crate) stall_nanos_by_cause: [AtomicU64; 3],
    pub(crate) writes: AtomicU64,
    pub(crate) write_groups: AtomicU64,
    pub(crate) log_syncs: AtomicU64,
    pub(crate) log_background_syncs: AtomicU64,
    pub(crate) budget_flushes: AtomicU64,
    /// Per level: bytes written into it (see [`LevelStats::bytes_written`]). Level 0's
    /// are the flush bytes, the others' sum the compaction bytes: the totals of [`Stats`]
    /// are derived from these, so they always add up.
    pub(crate) level_written: [AtomicU64; NUM_LEVELS],
    /// Per level: bytes moved in from above ([`LevelStats::bytes_moved_in`]).
    pub(crate) level_moved_in: [AtomicU64; NUM_LEVELS],
    /// Per level: bytes of its own rewritten ([`LevelStats::bytes_rewritten`]).
    pub(crate) level_rewritten: [AtomicU64; NUM_LEVELS],
    /// Per level: nanoseconds of the flushes (level 0) or compactions into it.
    pub(crate) level_nanos: [AtomicU64; NUM_LEVELS],
    /// The read and write paths' counts and sampled latencies.
    pub(crate) paths: sampling::PathCounters,
}

impl Counters {
    /// Adds `amount` to `counter`.
    pub(crate) fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    /// Counts a stall of `cause` that began at `start` and ends now.
    pub(crate) fn add_stall_since(&self, cause: StallCause, start: Instant) {
        let nanos = nanos(start.elapsed());
        Counters::add(&self.stall_nanos, nanos);
        let slot = match cause {
            StallCause::Level0Slowdown => 0,
            StallCause::Level0Stop => 1,
            _ => 2,
        };
        Counters::add(&self.stall_nanos_by_cause[slot], nanos);
    }

    /// Counts the time of a flush.
    pub(crate) fn add_flush_time(&self, duration: Duration) {
        Counters::add(&self.level_nanos[0], nanos(duration));
    }

    /// Counts the time of a compaction into `level`.
    pub(crate) fn add_compaction_time(&self, level: usize, duration: Duration) {
        if let Some(counter) = self.level_nanos.get(level) {
            Counters::add(counter, nanos(duration));
        }
    }

    /// Counts a flush (by the flush worker or of the log at open) that wrote a level-0
    /// table of `bytes`.
    pub(crate) fn add_flush(&self, bytes: u64) {
        Counters::add(&self.level_written[0], bytes);
        Counters::add(&self.flushes, 1);
    }

    /// A report of `state` (each keyspace with the level targets its options give it,
    /// summed by level) and of the counters.
    pub(crate) fn report(&self, state: &State, _options: &Options, reads: &TableReads) -> Stats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut levels: Vec<LevelStats> = (0..NUM_LEVELS)
            .map(|level| LevelStats {
                bytes_written: get(&self.level_written[level]),
                bytes_moved_in: get(&self.level_moved_in[level]),
                bytes_rewritten: get(&self.level_rewritten[level]),
                compaction_time: Duration::from_nanos(get(&self.level_nanos[level])),
                ..LevelStats::default()
            })
            .collect();
        let mut memtable_bytes = 0u64;
        let mut pinned_table_bytes = 0u64;
        for tree in &state.trees {
            let targets = pick::targets(&tree.version, &tree.options);
            for ((stats, tables), target) in levels
                .iter_mut()
                .zip(&tree.version.levels)
                .zip(targets.bytes)
            {
                stats.tables += tables.len();
                stats.bytes += tables.iter().map(|t| t.file.size).sum::<u64>();
                pinned_table_bytes += tables.iter().map(|t| t.pinned_bytes() as u64).sum::<u64>();
                stats.target_bytes += target;
            }
            memtable_bytes += tree
                .memtables()
                .map(|m| m.approximate_size() as u64)
                .sum::<u64>();
        }
        let below_0 = &levels[1..];
        Stats {
            user_bytes_written: get(&self.user_bytes),
            flush_bytes_written: levels[0].bytes_written,
            flushes: get(&self.flushes),
            compaction_bytes_written: below_0.iter().map(|l| l.bytes_written).sum(),
            compaction_bytes_read: below_0
                .iter()
                .map(|l| l.bytes_moved_in + l.bytes_rewritten)
                .sum(),
            compactions: get(&self.compactions),
            trivial_moves: get(&self.trivial_moves),
            subcompactions: get(&self.subcompactions),
            tables_dropped_by_range_tombstones: get(&self.tables_dropped_by_range_tombstones),
            slowdowns: get(&self.slowdowns),
            stops: get(&self.stops),
            memtable_stops: get(&self.memtable_stops),
            stall_time: Duration::from_nanos(get(&self.stall_nanos)),
            slowdown_time: Duration::from_nanos(get(&self.stall_nanos_by_cause[0])),
            stop_time: Duration::from_nanos(get(&self.stall_nanos_by_cause[1])),
            memtable_stop_time: Duration::from_nanos(get(&self.stall_nanos_by_cause[2])),
            writes: get(&self.writes),
            write_groups: get(&self.write_groups),
            log_syncs: get(&self.log_syncs),
            log_background_syncs: get(&self.log_background_syncs),
            keyspaces: state.trees.len(),
            memtable_bytes,
            budget_flushes: get(&self.budget_flushes),
            block_cache_bytes: reads.cache_usage().0,
            block_cache_capacity: reads.cache_usage().1,
            pinned_table_bytes,
            transaction_history_bytes: 0,
            gets: self.paths.gets.sum(),
            get_latency: self.paths.get_latency.report(),
            write_latency: self.paths.write_latency.report(),
            bloom_checked: get(&self.paths.bloom_checked),
            bloom_useful: get(&self.paths.bloom_useful),
            bloom_false_positives: get(&self.paths.bloom_false_positive),
            levels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amplifications_follow_their_definitions() {
        let empty = Stats::default();
        assert_eq!(empty.write_amplification(), 0.0);
        assert_eq!(empty.space_amplification(), 1.0);
        let stats = Stats {
            levels: vec![
                LevelStats {
                    tables: 2,
                    bytes: 50,
                    ..LevelStats::default()
                },
                LevelStats {
                    tables: 1,
                    bytes: 200,
                    ..LevelStats::default()
                },
                LevelStats::default(),
            ],
            user_bytes_written: 100,
            flush_bytes_written: 120,
            compaction_bytes_written: 280,
            ..Stats::default()
        };
        assert_eq!(stats.table_bytes(), 250);
        assert_eq!(stats.write_amplification(), 4.0);
        assert_eq!(stats.space_amplification(), 1.25);
    }
}
