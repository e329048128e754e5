//! What the database reports about its shape and its cost ([`Stats`], from
//! [`crate::Db::stats`]), and the counters the write path, flushes and compactions bump.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
