//! The options a database is opened with, and their validation at open.

use std::fmt;
use std::time::Duration;

use std::sync::Arc;

#[cfg(any(test, feature = "fault-injection"))]
use floe_core::fs::FileSystem;

use floe_sstable::Compression;

use crate::error::{Error, Result};
use crate::events::{EventListener, Events};
use crate::filter::{CompactionFilter, FilterRef};

/// The largest key floe accepts, in bytes (64 KiB); a longer key is refused with
/// [`crate::Error::InvalidArgument`].
pub const MAX_KEY_SIZE: usize = 64 << 10;

/// The largest value floe accepts, in bytes (64 MiB); a longer value is refused with
/// [`crate::Error::InvalidArgument`].
pub const MAX_VALUE_SIZE: usize = 64 << 20;

/// The capacity in bytes of the cache of decompressed blocks of mapped tables (see
/// [`Options::compression`]): 64 MiB, about 16,000 blocks of 4 KiB.
pub const DECOMPRESSED_CACHE_SIZE: usize = 64 << 20;

/// The most subcompactions [`Options::max_subcompactions`] allows.
const MAX_SUBCOMPACTIONS: usize = 64;

/// The default [`Options::max_subcompactions`] is the core count, at most this.
const MAX_DEFAULT_SUBCOMPACTIONS: usize = 4;

/// The most levels a version can have (see [`Options::num_levels`]).
pub(crate) const MAX_LEVELS: usize = 7;

/// The largest [`Options::write_buffer_size`] (64 GiB, RocksDB's limit too).
const MAX_WRITE_BUFFER_SIZE: u64 = 64 << 30;

/// The range of [`Options::block_size`].
const BLOCK_SIZES: std::ops::RangeInclusive<u64> = 64..=64 << 10;

/// The most bloom filter bits per key ([`Options::bloom_bits_per_key`]): six times the
/// default, beyond which a filter would mostly cost memory and disk (the probe count stops
/// growing at 30 probes, about 44 bits). Unbounded, the filter of one table could need
/// terabytes.
const MAX_BLOOM_BITS_PER_KEY: u32 = 64;

/// The largest [`Options::target_file_size`] (64 GiB, as large as a flush of the largest
/// memtable). A table's writer keeps a hash of every key it holds until the table is
/// finished, so a bound on the table size is a bound on that memory.
const MAX_TARGET_FILE_SIZE: u64 = 64 << 30;

/// The largest non-zero [`Options::wal_bytes_per_sync`] (1 TiB, beyond any segment).
const MAX_WAL_BYTES_PER_SYNC: u64 = 1 << 40;

/// The range of a non-zero [`Options::wal_sync_interval`]. Below a millisecond the
/// background sync would do little but wake up; above an hour the bound means nothing.
const WAL_SYNC_INTERVALS: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(60 * 60);

/// How a database behaves: memtable size, durability of each write, table layout.
///
/// Build it with the consuming setters and hand it to [`crate::Db::open_with`], which
/// checks every option against the range its setter documents and refuses one outside it
/// with [`crate::Error::InvalidArgument`]:
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
    pub(crate) wal_sync_interval: Duration,
    pub(crate) db_write_buffer_size: Option<usize>,
    pub(crate) block_cache_size: Option<usize>,
    pub(crate) compression: Compression,
    pub(crate) compression_per_level: Vec<Compression>,
    pub(crate) max_subcompactions: usize,
    pub(crate) max_total_wal_size: Option<u64>,
    pub(crate) max_transaction_bytes: usize,
    pub(crate) transaction_history_bytes: usize,
    pub(crate) compaction_filter: Option<FilterRef>,
    pub(crate) events: Events,
    #[cfg(any(test, feature = "fault-injection"))]
    pub(crate) file_system: Option<Arc<dyn FileSystem>>,
    #[cfg(any(test, feature = "fault-injection"))]
    pub(crate) manual_background: bool,
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
            wal_sync_interval: Duration::from_secs(1),
            db_write_buffer_size: None,
            block_cache_size: None,
            compression: Compression::None,
            compression_per_level: Vec::new(),
            max_subcompactions: std::thread::available_parallelism()
                .map_or(1, usize::from)
                .min(MAX_DEFAULT_SUBCOMPACTIONS),
            max_total_wal_size: None,
            max_transaction_bytes: 64 << 20,
            transaction_history_bytes: 256 << 20,
            compaction_filter: None,
            events: Events::default(),
            #[cfg(any(test, feature = "fault-injection"))]
            file_system: None,
            #[cfg(any(test, feature = "fault-injection"))]
            manual_background: false,
        }
    }
}

impl Options {
    /// The capacity of a memtable, in bytes (default 64 MiB; valid from 1 byte to 64 GiB,
    /// others make open fail with [`crate::Error::InvalidArgument`]). A memtable that
    /// reaches it is frozen and flushed to a table in the background. It is rounded up to
    /// whole memory pages (4 KiB), so a tiny value such as 1 KiB gives a one-page memtable.
    /// Memory is taken as the memtable fills, not up front.
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

    /// The target size of a table's data block, in bytes (default 4096; valid from 64 bytes
    /// to 64 KiB, others make open fail with [`crate::Error::InvalidArgument`]). Smaller
    /// blocks mean a larger index and faster point reads.
    #[must_use]
    pub fn block_size(mut self, bytes: usize) -> Options {
        self.block_size = bytes;
        self
    }

    /// How many frozen memtables may wait for their flush before writers block until one
    /// is flushed (default 2; any count, 0 is raised to 1). Writers wait on a condition
    /// variable; they never spin and never fail because of it.
    #[must_use]
    pub fn max_immutable_memtables(mut self, count: usize) -> Options {
        self.max_immutable_memtables = count.max(1);
        self
    }

    /// Bits of bloom filter per key in each table (default 10, about a 1% false-positive
    /// rate; valid from 0, which disables the filter, to 64; more makes open fail with
    /// [`crate::Error::InvalidArgument`]).
    #[must_use]
    pub fn bloom_bits_per_key(mut self, bits: u32) -> Options {
        self.bloom_bits_per_key = bits;
        self
    }

    /// The size, in bytes, at which compaction cuts its output tables (default 64 MiB;
    /// valid up to 64 GiB, more makes open fail with [`crate::Error::InvalidArgument`];
    /// 0 is raised to 1).
    #[must_use]
    pub fn target_file_size(mut self, bytes: u64) -> Options {
        self.target_file_size = bytes.max(1);
        self
    }

    /// How many level-0 tables start a compaction into the base level (level 1 with static
    /// targets; see [`Options::dynamic_level_bytes`]) (default 4; any count, 0 is raised
    /// to 1).
    #[must_use]
    pub fn l0_compaction_trigger(mut self, tables: usize) -> Options {
        self.l0_compaction_trigger = tables.max(1);
        self
    }

    /// How many level-0 tables make every write group wait a short, growing delay before
    /// it is logged, so that compaction catches up before writes must stop (default 20, as
    /// RocksDB's). The delay is 1 ms at the trigger and grows by 1 ms for each table above
    /// it. Any count is valid; values below the compaction trigger are raised to it.
    ///
    /// The room between the compaction trigger and this one is what lets compaction keep
    /// up: while a level-0 compaction runs, flushes keep adding tables, and the next one
    /// takes them all, so a burst costs fewer, larger merges into the base level. With
    /// static level targets and one writer at about 350k writes/s (8 MiB memtables), a
    /// trigger of 8 spends 9% of the time in slowdowns at write amplification 4.74; 20
    /// never slows down, level 0 peaks near 10 tables, and write amplification is 4.21
    /// (see `docs/compaction.md`, "Write stalls").
    #[must_use]
    pub fn l0_slowdown_trigger(mut self, tables: usize) -> Options {
        self.l0_slowdown_trigger = tables;
        self
    }

    /// How many level-0 tables stop writes until compaction brings level 0 below it again
    /// (default 36, as RocksDB's). Writers wait on a condition variable; they never fail
    /// because of it. Any count is valid; values below the slowdown trigger are raised to
    /// it.
    #[must_use]
    pub fn l0_stop_trigger(mut self, tables: usize) -> Options {
        self.l0_stop_trigger = tables;
        self
    }

    /// The factor by which each level below the base level may hold more bytes than the
    /// one above it (default 10; any factor, values below 2 are raised to 2).
    #[must_use]
    pub fn level_size_multiplier(mut self, factor: u64) -> Options {
        self.level_size_multiplier = factor.max(2);
        self
    }

    /// The largest target size, in bytes, of the level that level 0 compacts into
    /// (default 256 MiB; any size, 0 is raised to 1), and with dynamic targets also the
    /// smallest target of any level below 0 (as in RocksDB). With static targets (see
    /// [`Options::dynamic_level_bytes`]) it is level 1's target, and level `n` targets this
    /// times the multiplier to the power `n - 1`. A level past its target compacts into
    /// the next.
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

    /// How many levels the tree has, level 0 included (default 7; values outside 2..=7
    /// are clamped to that range). The last level is where deleted keys finally disappear
    /// and where [`crate::Db::compact`] puts everything.
    #[must_use]
    pub fn num_levels(mut self, levels: usize) -> Options {
        self.num_levels = levels.clamp(2, MAX_LEVELS);
        self
    }

    /// How many bytes an unsynced write path may append to the log before a background
    /// thread (`floe-log-sync`) syncs it (default 1 MiB; 0 turns the byte bound off; valid
    /// up to 1 TiB, more makes open fail with [`crate::Error::InvalidArgument`]), as
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
    pub fn wal_sync_interval(mut self, interval: Duration) -> Options {
        self.wal_sync_interval = interval;
        self
    }

    /// Reads tables through a block cache of `bytes`, shared by every keyspace of the
    /// database, instead of mapping them (default: mapped, no block cache).
    ///
    /// Mapped tables (the default) are read zero-copy from the operating system's page
    /// cache, the fastest reads floe has; the kernel decides what stays in memory, the
    /// mapped files count in the process's resident size, and a disk that fails under a
    /// mapping kills the process with `SIGBUS` (see "Failing disks" in
    /// `docs/durability.md`). With a block cache, tables are read with positional reads:
    /// a table's index, filter and range tombstones are read at open and held for its
    /// life (reported as [`crate::Stats::pinned_table_bytes`], outside this budget), data
    /// blocks are read on demand into the cache, their checksums verified once as they
    /// enter, and a failing read is an [`crate::Error::Io`] or
    /// [`crate::Error::Corruption`], never a signal. Warm point reads then run at about
    /// two thirds of the mapped rate (`docs/caching.md` has the measurements). Values
    /// handed out share the cached block's memory. 0 reads every block from the file.
    #[must_use]
    pub fn block_cache_size(mut self, bytes: usize) -> Options {
        self.block_cache_size = Some(bytes);
        self
    }

    /// How the data blocks of new tables are compressed (default [`Compression::None`]),
    /// at every level; [`Options::compression_per_level`] sets levels apart instead.
    ///
    /// A block that compression does not shrink by at least an eighth is stored raw, so
    /// incompressible values cost only the attempt. Every block records its codec: a
    /// database written with one setting opens and reads with any other, and tables
    /// written before a change keep theirs until compaction rewrites them. Compressed
    /// blocks are decompressed once and kept in the block cache: the cache of
    /// [`Options::block_cache_size`], or, for mapped tables, a cache of decompressed
    /// blocks of [`DECOMPRESSED_CACHE_SIZE`] bytes. A Zstandard level outside -7 to 22
    /// makes open fail with [`crate::Error::InvalidArgument`].
    #[must_use]
    pub fn compression(mut self, compression: Compression) -> Options {
        self.compression = compression;
        self.compression_per_level.clear();
        self
    }

    /// Compression by level, as RocksDB's `compression_per_level`: entry `i` is the
    /// compression of tables written to level `i`, and levels past the last entry take the
    /// last entry's. `&[Compression::None, Compression::None, Compression::Lz4]` keeps the
    /// hot, often rewritten levels 0 and 1 raw and compresses the deep ones, which hold
    /// most of the data. An empty list means [`Options::compression`] at every level.
    #[must_use]
    pub fn compression_per_level(mut self, levels: &[Compression]) -> Options {
        self.compression_per_level = levels.to_vec();
        self
    }

    /// The compression of tables written to `level`.
    pub(crate) fn compression_at(&self, level: usize) -> Compression {
        match self.compression_per_level.get(level) {
            Some(&compression) => compression,
            None => self
                .compression_per_level
                .last()
                .copied()
                .unwrap_or(self.compression),
        }
    }

    /// The most threads one compaction splits into (default: the number of cores, at
    /// most 4; valid from 1 to 64), as RocksDB's `max_subcompactions`. A compaction whose
    /// inputs fill several output tables is split by key range into up to this many
    /// subcompactions of about equal input, each merged on a thread of its own; their
    /// outputs are installed together in one edit. A large level-0 compaction, which
    /// writers wait for when level 0 fills, then uses every core. 1 merges on the
    /// compaction thread alone.
    #[must_use]
    pub fn max_subcompactions(mut self, threads: usize) -> Options {
        self.max_subcompactions = threads;
        self
    }

    /// The memory budget of all memtables together, over every keyspace, in bytes (default
    /// twice [`Options::write_buffer_size`]; valid from 1 byte to 64 GiB), as RocksDB's
    /// `db_write_buffer_size`. Each keyspace has its own memtable, which freezes at its own
    /// write buffer size; when the active memtables of all keyspaces together reach this
    /// budget, the largest of them is frozen and flushed, so that many keyspaces do not
    /// multiply the memory writes take. Frozen memtables waiting for their flush come on
    /// top, at most [`Options::max_immutable_memtables`] of them.
    #[must_use]
    pub fn db_write_buffer_size(mut self, bytes: usize) -> Options {
        self.db_write_buffer_size = Some(bytes);
        self
    }

    /// The most bytes of log segments kept for unflushed writes before the keyspaces that
    /// hold the oldest segment are flushed (default four times
    /// [`Options::db_write_buffer_size`]; valid from 1 byte), as RocksDB's
    /// `max_total_wal_size`. All keyspaces share one log, and a segment is deleted only once
    /// every keyspace with writes in it has flushed them: without this bound, a keyspace
    /// that receives a write now and then would keep every segment since its first
    /// unflushed write, and open would replay them all.
    #[must_use]
    pub fn max_total_wal_size(mut self, bytes: u64) -> Options {
        self.max_total_wal_size = Some(bytes);
        self
    }

    /// The most bytes of keys and values one transaction may write (default 64 MiB): a
    /// transaction that writes more fails its `commit` with
    /// [`crate::Error::InvalidArgument`] and applies nothing, since it must fit one log
    /// record and the memory that buffers it.
    #[must_use]
    pub fn max_transaction_bytes(mut self, bytes: usize) -> Options {
        self.max_transaction_bytes = bytes;
        self
    }

    /// The most bytes of flushed memtables kept for validating transactions (default
    /// 256 MiB). A flush keeps its memtable while a live transaction began before the
    /// memtable's newest write, so that commit validation finds the writes since without
    /// reading tables; past this bound the oldest kept ones go, and a transaction that
    /// began before them fails its commit with [`crate::Error::Conflict`] (never commits
    /// unvalidated). Only long transactions over busy databases reach it.
    #[must_use]
    pub fn transaction_history_bytes(mut self, bytes: usize) -> Options {
        self.transaction_history_bytes = bytes;
        self
    }

    /// Adds a listener that the database calls after each flush and compaction, when
    /// writes begin and end to stall, and on the error that poisons it (see
    /// [`crate::EventListener`] for what a listener may do within a call). Listeners are
    /// called in the order they were added, and apply to every keyspace.
    #[must_use]
    pub fn event_listener(mut self, listener: Arc<dyn EventListener>) -> Options {
        self.events.add(listener);
        self
    }

    /// The compaction filter of the `"default"` keyspace (default none): compaction asks it
    /// about every value it rewrites that no live snapshot reads, and keeps, removes or
    /// replaces the value as it decides (see [`crate::CompactionFilter`]). It is not
    /// recorded in the database: give it at every open. Other keyspaces take theirs from
    /// [`crate::KeyspaceOptions::compaction_filter`].
    #[must_use]
    pub fn compaction_filter(mut self, filter: impl CompactionFilter) -> Options {
        self.compaction_filter = Some(FilterRef(Arc::new(filter)));
        self
    }

    /// The memory budget of all memtables (see [`Options::db_write_buffer_size`]).
    pub(crate) fn memtable_budget(&self) -> usize {
        self.db_write_buffer_size
            .unwrap_or_else(|| self.write_buffer_size.saturating_mul(2))
    }

    /// The bound on live log segments (see [`Options::max_total_wal_size`]).
    pub(crate) fn log_budget(&self) -> u64 {
        self.max_total_wal_size
            .unwrap_or_else(|| as_u64(self.memtable_budget()).saturating_mul(4))
    }

    /// Checks every option against its documented range, so that a bad value fails open
    /// with [`Error::InvalidArgument`] naming it, instead of failing later (a huge bloom
    /// filter allocated at the first flush, a duration that overflows a deadline). The
    /// setters that clamp keep their fields in range already; they are checked all the
    /// same, since the crate sets fields directly too.
    pub(crate) fn validate(&self) -> Result<()> {
        let write_buffer_size = as_u64(self.write_buffer_size);
        if !(1..=MAX_WRITE_BUFFER_SIZE).contains(&write_buffer_size) {
            return Err(out_of_range(
                "write_buffer_size",
                write_buffer_size,
                "a memtable holds from 1 byte (rounded up to a 4 KiB page) to 64 GiB",
            ));
        }
        if let Some(bytes) = self.db_write_buffer_size
            && !(1..=MAX_WRITE_BUFFER_SIZE).contains(&as_u64(bytes))
        {
            return Err(out_of_range(
                "db_write_buffer_size",
                bytes,
                "the memtables of all keyspaces together hold from 1 byte to 64 GiB",
            ));
        }
        if self.max_total_wal_size == Some(0) {
            return Err(out_of_range(
                "max_total_wal_size",
                0,
                "the log of unflushed writes may hold at least 1 byte",
            ));
        }
        if !BLOCK_SIZES.contains(&as_u64(self.block_size)) {
            return Err(out_of_range(
                "block_size",
                self.block_size,
                "a data block targets from 64 bytes to 64 KiB",
            ));
        }
        if self.max_immutable_memtables == 0 {
            return Err(out_of_range(
                "max_immutable_memtables",
                0,
                "at least one frozen memtable must be allowed",
            ));
        }
        if self.bloom_bits_per_key > MAX_BLOOM_BITS_PER_KEY {
            return Err(out_of_range(
                "bloom_bits_per_key",
                self.bloom_bits_per_key,
                "a bloom filter takes from 0 (no filter) to 64 bits per key",
            ));
        }
        if !(1..=MAX_TARGET_FILE_SIZE).contains(&self.target_file_size) {
            return Err(out_of_range(
                "target_file_size",
                self.target_file_size,
                "compaction cuts tables at 1 byte to 64 GiB",
            ));
        }
        if self.l0_compaction_trigger == 0 {
            return Err(out_of_range(
                "l0_compaction_trigger",
                0,
                "level 0 compacts at one table or more",
            ));
        }
        if self.level_size_multiplier < 2 {
            return Err(out_of_range(
                "level_size_multiplier",
                self.level_size_multiplier,
                "each level must be at least twice the one above",
            ));
        }
        if self.max_bytes_for_level_base == 0 {
            return Err(out_of_range(
                "max_bytes_for_level_base",
                0,
                "the base level's target is at least 1 byte",
            ));
        }
        if !(2..=MAX_LEVELS).contains(&self.num_levels) {
            return Err(out_of_range(
                "num_levels",
                self.num_levels,
                "a tree has from 2 to 7 levels",
            ));
        }
        if self.wal_bytes_per_sync > MAX_WAL_BYTES_PER_SYNC {
            return Err(out_of_range(
                "wal_bytes_per_sync",
                self.wal_bytes_per_sync,
                "the background sync runs every 1 byte to 1 TiB of log, or 0 for no byte bound",
            ));
        }
        if !self.wal_sync_interval.is_zero()
            && !WAL_SYNC_INTERVALS.contains(&self.wal_sync_interval)
        {
            return Err(out_of_range(
                "wal_sync_interval",
                format_args!("{:?}", self.wal_sync_interval),
                "the background sync runs every 1 ms to 1 hour, or 0 for no time bound",
            ));
        }
        if !(1..=MAX_SUBCOMPACTIONS).contains(&self.max_subcompactions) {
            return Err(out_of_range(
                "max_subcompactions",
                self.max_subcompactions,
                "a compaction runs on 1 to 64 threads",
            ));
        }
        let settings = std::iter::once(("compression", self.compression)).chain(
            self.compression_per_level
                .iter()
                .map(|&c| ("compression_per_level", c)),
        );
        for (name, compression) in settings {
            if !compression.is_valid() {
                return Err(out_of_range(
                    name,
                    format_args!("{compression:?}"),
                    "Zstandard levels run from -7 to 22",
                ));
            }
        }
        if self.compression_per_level.len() > MAX_LEVELS {
            return Err(out_of_range(
                "compression_per_level",
                format_args!("{} levels", self.compression_per_level.len()),
                "a tree has at most 7 levels",
            ));
        }
        Ok(())
    }

    /// The layout of the tables these options write to `level`.
    pub(crate) fn table_options(&self, level: usize) -> floe_sstable::TableOptions {
        floe_sstable::TableOptions::default()
            .block_size(self.block_size)
            .bloom_bits_per_key(self.bloom_bits_per_key)
            .compression(self.compression_at(level))
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

    /// Test-only: no background threads. Flushes, compactions and the background log sync
    /// (once a write crossed [`Options::wal_bytes_per_sync`]) run only when the caller asks
    /// ([`crate::Db::step_background`], [`crate::Db::flush`],
    /// [`crate::Db::wait_for_compactions`]) or, where a writer would otherwise wait for
    /// them, inline in that writer; level-0 slowdowns and stops do not apply. With a
    /// deterministic file system this makes a run a function of its inputs alone, which
    /// is what the deterministic simulation needs.
    #[cfg(any(test, feature = "fault-injection"))]
    #[must_use]
    pub fn manual_background(mut self, on: bool) -> Options {
        self.manual_background = on;
        self
    }

    /// Whether background work runs only when asked (see `manual_background`).
    pub(crate) fn is_manual_background(&self) -> bool {
        #[cfg(any(test, feature = "fault-injection"))]
        return self.manual_background;
        #[cfg(not(any(test, feature = "fault-injection")))]
        false
    }
}

/// `value` as a `u64`; every `usize` fits on the targets floe supports, and a larger one
/// would be out of every range anyway.
fn as_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// The error for `Options::{option}` set to `value`, outside what `allowed` says.
fn out_of_range(option: &str, value: impl fmt::Display, allowed: &str) -> Error {
    Error::invalid(format!(
        "Options::{option} is {value}, which is out of range: {allowed}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_refused(options: &Options, option: &str) {
        match options.validate() {
            Err(Error::InvalidArgument { message }) => {
                assert!(
                    message.contains(&format!("Options::{option} ")),
                    "{message}"
                );
            }
            other => panic!("{option}: expected InvalidArgument, got {other:?}"),
        }
    }

    fn assert_accepted(options: &Options) {
        if let Err(err) = options.validate() {
            panic!("refused: {err}");
        }
    }

    #[test]
    fn the_defaults_are_valid() {
        assert_accepted(&Options::default());
    }

    #[test]
    fn compression_per_level_extends_its_last_entry_and_compression_clears_it() {
        let options = Options::default()
            .compression(Compression::Zstd(3))
            .compression_per_level(&[Compression::None, Compression::Lz4]);
        let at: Vec<_> = (0..MAX_LEVELS).map(|l| options.compression_at(l)).collect();
        assert_eq!(
            at[..3],
            [Compression::None, Compression::Lz4, Compression::Lz4]
        );
        assert_eq!(at[6], Compression::Lz4);
        let options = options.compression(Compression::Zstd(1));
        assert!((0..MAX_LEVELS).all(|l| options.compression_at(l) == Compression::Zstd(1)));
        assert_eq!(options.table_options(4).compression, Compression::Zstd(1));
    }

    #[test]
    fn each_range_is_accepted_at_its_ends_and_refused_just_past_them() {
        let base = Options::default;
        assert_accepted(&base().write_buffer_size(1));
        assert_refused(&base().write_buffer_size(0), "write_buffer_size");
        if let Ok(max) = usize::try_from(MAX_WRITE_BUFFER_SIZE) {
            assert_accepted(&base().write_buffer_size(max));
            assert_refused(&base().write_buffer_size(max + 1), "write_buffer_size");
        }
        assert_accepted(&base().block_size(64));
        assert_accepted(&base().block_size(64 << 10));
        assert_refused(&base().block_size(63), "block_size");
        assert_refused(&base().block_size((64 << 10) + 1), "block_size");
        assert_accepted(&base().max_subcompactions(1));
        assert_accepted(&base().max_subcompactions(64));
        assert_refused(&base().max_subcompactions(0), "max_subcompactions");
        assert_refused(&base().max_subcompactions(65), "max_subcompactions");
        assert_accepted(&base().compression(Compression::Zstd(22)));
        assert_accepted(&base().compression(Compression::Zstd(-7)));
        assert_refused(&base().compression(Compression::Zstd(23)), "compression");
        assert_refused(
            &base().compression_per_level(&[Compression::None, Compression::Zstd(-8)]),
            "compression_per_level",
        );
        assert_refused(
            &base().compression_per_level(&[Compression::Lz4; 8]),
            "compression_per_level",
        );
        assert_accepted(&base().bloom_bits_per_key(0));
        assert_accepted(&base().bloom_bits_per_key(64));
        assert_refused(&base().bloom_bits_per_key(65), "bloom_bits_per_key");
        assert_accepted(&base().target_file_size(64 << 30));
        assert_refused(&base().target_file_size((64 << 30) + 1), "target_file_size");
        assert_accepted(&base().wal_bytes_per_sync(0));
        assert_accepted(&base().wal_bytes_per_sync(1 << 40));
        assert_refused(
            &base().wal_bytes_per_sync((1 << 40) + 1),
            "wal_bytes_per_sync",
        );
        let hour = Duration::from_secs(3600);
        for ok in [Duration::ZERO, Duration::from_millis(1), hour] {
            assert_accepted(&base().wal_sync_interval(ok));
        }
        for bad in [Duration::from_micros(999), hour + Duration::from_nanos(1)] {
            assert_refused(&base().wal_sync_interval(bad), "wal_sync_interval");
        }
    }

    #[test]
    fn fields_below_the_floors_the_setters_clamp_to_are_refused() {
        let set = |f: fn(&mut Options)| {
            let mut options = Options::default();
            f(&mut options);
            options
        };
        assert_refused(
            &set(|o| o.max_immutable_memtables = 0),
            "max_immutable_memtables",
        );
        assert_refused(&set(|o| o.target_file_size = 0), "target_file_size");
        assert_refused(
            &set(|o| o.l0_compaction_trigger = 0),
            "l0_compaction_trigger",
        );
        assert_refused(
            &set(|o| o.level_size_multiplier = 1),
            "level_size_multiplier",
        );
        assert_refused(
            &set(|o| o.max_bytes_for_level_base = 0),
            "max_bytes_for_level_base",
        );
        assert_refused(&set(|o| o.num_levels = 1), "num_levels");
        assert_refused(&set(|o| o.num_levels = MAX_LEVELS + 1), "num_levels");
    }

    #[test]
    fn a_refusal_names_the_option_its_value_and_the_range() {
        let err = Options::default()
            .bloom_bits_per_key(u32::MAX)
            .validate()
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("bloom_bits_per_key"), "{message}");
        assert!(message.contains("4294967295"), "{message}");
        assert!(message.contains("0 (no filter) to 64"), "{message}");
    }
}
