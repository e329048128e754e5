//! The options a database is opened with.

#[cfg(any(test, feature = "fault-injection"))]
use std::sync::Arc;

#[cfg(any(test, feature = "fault-injection"))]
use floe_core::fs::FileSystem;

/// The largest key floe accepts, in bytes (64 KiB); a longer key is refused with
/// [`crate::Error::InvalidArgument`].
pub const MAX_KEY_SIZE: usize = 64 << 10;

/// The largest value floe accepts, in bytes (64 MiB); a longer value is refused with
/// [`crate::Error::InvalidArgument`].
pub const MAX_VALUE_SIZE: usize = 64 << 20;

/// The most levels a version can have (see [`Options::num_levels`]).
pub(crate) const MAX_LEVELS: usize = 7;

/// How a database behaves: memtable size, durability of each write, table layout.
///
/// Build it with the consuming setters and hand it to [`crate::Db::open_with`]:
///
/// ```
/// let options = floe_engine::Options::default()
///     .write_buffer_size(4 << 20)
///     .sync(true);
/// assert!(options.sync_writes());
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) write_buffer_size: usize,
    pub(crate) sync: bool,
    pub(crate) block_size: usize,
    pub(crate) max_immutable_memtables: usize,
    pub(crate) bloom_bits_per_key: u32,
    pub(crate) target_file_size: u64,
    pub(crate) l0_compaction_trigger: usize,
    pub(crate) l0_slowdown_trigger: usize,
    pub(crate) l0_stop_trigger: usize,
    pub(crate) level_size_multiplier: u64,
    pub(crate) max_bytes_for_level_base: u64,
    pub(crate) dynamic_level_bytes: bool,
    pub(crate) num_levels: usize,
    pub(crate) wal_bytes_per_sync: u64,
    pub(crate) wal_sync_interval: std::time::Duration,
    #[cfg(any(test, feature = "fault-injection"))]
    pub(crate) file_system: Option<Arc<dyn FileSystem>>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            write_buffer_size: 64 << 20,
            sync: false,
            block_size: 4096,
            max_immutable_memtables: 2,
            bloom_bits_per_key: 10,
            target_file_size: 64 << 20,
            l0_compaction_trigger: 4,
            l0_slowdown_trigger: 20,
            l0_stop_trigger: 36,
            level_size_multiplier: 10,
            max_bytes_for_level_base: 256 << 20,
            dynamic_level_bytes: true,
            num_levels: MAX_LEVELS,
            wal_bytes_per_sync: 1 << 20,
            wal_sync_interval: std::time::Duration::from_secs(1),
            #[cfg(any(test, feature = "fault-injection"))]
            file_system: None,
        }
    }
}

impl Options {
    /// The capacity of a memtable, in bytes (default 64 MiB). A memtable that reaches it is
    /// frozen and flushed to a table in the background. It is rounded up to whole memory
    /// pages (4 KiB), so a tiny value such as 1 KiB gives a one-page memtable.
    #[must_use]
    pub fn write_buffer_size(mut self, bytes: usize) -> Options {
        self.write_buffer_size = bytes;
        self
    }

    /// Whether every write is made durable (`fdatasync` of the log) before it is
    /// acknowledged (default `false`). Writers that commit together share one sync. With
    /// `false`, an acknowledged write survives a process crash but only writes acknowledged
    /// before the last [`crate::Db::sync`] are sure to survive power loss.
    #[must_use]
    pub fn sync(mut self, on: bool) -> Options {
        self.sync = on;
        self
    }

    /// The target size of a table's data block, in bytes (default 4096). Values from 64
    /// bytes to 64 KiB work; smaller blocks mean a larger index and faster point reads.
    #[must_use]
    pub fn block_size(mut self, bytes: usize) -> Options {
        self.block_size = bytes;
        self
    }

    /// How many frozen memtables may wait for their flush before writers block until one
    /// is flushed (default 2, at least 1). Writers wait on a condition variable; they never
    /// spin and never fail because of it.
    #[must_use]
    pub fn max_immutable_memtables(mut self, count: usize) -> Options {
        self.max_immutable_memtables = count.max(1);
        self
    }

    /// Bits of bloom filter per key in each table (default 10, about a 1% false-positive
    /// rate); 0 disables the filter.
    #[must_use]
    pub fn bloom_bits_per_key(mut self, bits: u32) -> Options {
        self.bloom_bits_per_key = bits;
        self
    }

    /// The size, in bytes, at which compaction cuts its output tables (default 64 MiB).
    #[must_use]
    pub fn target_file_size(mut self, bytes: u64) -> Options {
        self.target_file_size = bytes.max(1);
        self
    }

    /// How many level-0 tables start a compaction into the base level (level 1 with static
    /// targets; see [`Options::dynamic_level_bytes`]) (default 4, at least 1).
    #[must_use]
    pub fn l0_compaction_trigger(mut self, tables: usize) -> Options {
        self.l0_compaction_trigger = tables.max(1);
        self
    }

    /// How many level-0 tables make every write group wait a short, growing delay before
    /// it is logged, so that compaction catches up before writes must stop (default 20, as
    /// RocksDB's). The delay is 1 ms at the trigger and grows by 1 ms for each table above
    /// it. Values below the compaction trigger are raised to it.
    ///
    /// The room between the compaction trigger and this one is what lets compaction keep
    /// up: while a level-0 compaction runs, flushes keep adding tables, and the next one
    /// takes them all, so a burst costs fewer, larger merges into the base level. With 8
    /// the sustained-overwrite benchmark (one writer, ~350k writes/s, 8 MiB memtables) spent
    /// 9% of its time in slowdowns at write amplification 4.74; with 20 it never slowed
    /// down, level 0 peaked near 10 tables, and write amplification fell to 4.21.
    #[must_use]
    pub fn l0_slowdown_trigger(mut self, tables: usize) -> Options {
        self.l0_slowdown_trigger = tables;
        self
    }

    /// How many level-0 tables stop writes until compaction brings level 0 below it again
    /// (default 36, as RocksDB's). Writers wait on a condition variable; they never fail
    /// because of it.
    /// Values below the slowdown trigger are raised to it.
    #[must_use]
    pub fn l0_stop_trigger(mut self, tables: usize) -> Options {
        self.l0_stop_trigger = tables;
        self
    }

    /// The factor by which each level below the base level may hold more bytes than the
    /// one above it (default 10, at least 2).
    #[must_use]
    pub fn level_size_multiplier(mut self, factor: u64) -> Options {
        self.level_size_multiplier = factor.max(2);
        self
    }

    /// The largest target size, in bytes, of the level that level 0 compacts into
    /// (default 256 MiB), and with dynamic targets also the smallest target of any level
    /// below 0 (as in RocksDB). With static targets (see [`Options::dynamic_level_bytes`])
    /// it is level 1's target, and level `n` targets this times the multiplier to the
    /// power `n - 1`. A level past its target compacts into the next.
    #[must_use]
    pub fn max_bytes_for_level_base(mut self, bytes: u64) -> Options {
        self.max_bytes_for_level_base = bytes.max(1);
        self
    }

    /// Whether the level targets follow the data, from the bottom up (default `true`, as
    /// RocksDB's `level_compaction_dynamic_level_bytes`).
    ///
    /// Dynamic: the bottom level's size sets the targets, each level above a multiplier
    /// smaller, and level 0 compacts straight into the highest level whose target is
    /// within [`Options::max_bytes_for_level_base`]; the levels above that one stay empty.
    /// So a settled tree keeps about 90% of its data at the bottom, a small database
    /// keeps its data in level 0 and the bottom (where deleted keys finally disappear),
    /// and a sequential load moves its tables straight to the bottom without rewriting
    /// them.
    ///
    /// Static (`false`): level 1 targets `max_bytes_for_level_base` and each level below
    /// a multiplier more, however much data there is; a database smaller than that keeps
    /// its data in levels 0 and 1 until [`crate::Db::compact`].
    ///
    /// Either way can open a database the other made: tables in levels the targets leave
    /// empty move down first.
    #[must_use]
    pub fn dynamic_level_bytes(mut self, on: bool) -> Options {
        self.dynamic_level_bytes = on;
        self
    }

    /// How many levels the tree has, level 0 included (default 7, clamped to 2..=7). The
    /// last level is where deleted keys finally disappear and where [`crate::Db::compact`]
    /// puts everything.
    #[must_use]
    pub fn num_levels(mut self, levels: usize) -> Options {
        self.num_levels = levels.clamp(2, MAX_LEVELS);
        self
    }

    /// How many bytes an unsynced write path may append to the log before a background
    /// thread (`floe-log-sync`) syncs it (default 1 MiB; 0 turns the byte bound off), as
    /// RocksDB's `wal_bytes_per_sync`.
    ///
    /// With [`Options::sync`] off, appends are stores into a shared map of the log (or
    /// `write` calls) that cannot see a failing disk: only a sync reports it. The
    /// background sync is what notices: its failure poisons the database (later writes,
    /// flushes and syncs fail with [`crate::Error::Poisoned`], naming the segment), so at
    /// most about this many bytes of writes, plus what is appended while the sync runs,
    /// are acknowledged after the disk failed, instead of a whole memtable. It also bounds
    /// what a power loss can take, though only [`crate::Db::sync`] promises anything.
    ///
    /// The writers never wait for it: the leader that crosses the bound only wakes the
    /// thread, which syncs without the log lock while writes go on. [`crate::Db::sync`]
    /// starts the window afresh. With [`Options::sync`] on every write syncs itself and no
    /// thread is started; none is either when both bounds are off. Background syncs are
    /// counted in [`crate::Stats::log_background_syncs`].
    #[must_use]
    pub fn wal_bytes_per_sync(mut self, bytes: u64) -> Options {
        self.wal_bytes_per_sync = bytes;
        self
    }

    /// The longest that appended log bytes wait unsynced with [`Options::sync`] off: the
    /// background sync also runs once per interval if anything is unsynced (default 1 s;
    /// zero turns the time bound off). An unsynced byte is synced within about this
    /// interval plus one `fdatasync` of the log; a failing disk is noticed as quickly
    /// when writes are sparse. See [`Options::wal_bytes_per_sync`].
    #[must_use]
    pub fn wal_sync_interval(mut self, interval: std::time::Duration) -> Options {
        self.wal_sync_interval = interval;
        self
    }

    /// The level-0 trigger of slowdowns, never below the compaction trigger.
    pub(crate) fn slowdown_trigger(&self) -> usize {
        self.l0_slowdown_trigger.max(self.l0_compaction_trigger)
    }

    /// The level-0 trigger of stops, never below the slowdown trigger.
    pub(crate) fn stop_trigger(&self) -> usize {
        self.l0_stop_trigger.max(self.slowdown_trigger())
    }

    /// The static target size in bytes of `level` (1 or deeper).
    pub(crate) fn level_target(&self, level: usize) -> u64 {
        let mut target = self.max_bytes_for_level_base;
        for _ in 1..level {
            target = target.saturating_mul(self.level_size_multiplier);
        }
        target
    }

    /// Whether writes are synced before they are acknowledged (see [`Options::sync`]).
    #[must_use]
    pub fn sync_writes(&self) -> bool {
        self.sync
    }

    /// Test-only: every file operation of the database goes through `fs` instead of the
    /// real file system (default: the real one), so tests can inject faults.
    #[cfg(any(test, feature = "fault-injection"))]
    #[must_use]
    pub fn file_system(mut self, fs: Arc<dyn FileSystem>) -> Options {
        self.file_system = Some(fs);
        self
    }
}
