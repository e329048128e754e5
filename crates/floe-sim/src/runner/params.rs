//! The options of one seed and of each keyspace it creates, drawn from the seed's
//! generator so that every reopen of the run uses the same ones.

use std::sync::Arc;

use floe_core::sim_fs::SimFs;
use floe_engine::{Compression, KeyspaceOptions, Options};
use rand::Rng;
use rand::rngs::SmallRng;

/// The options of one seed, drawn once so that every reopen uses the same ones.
#[derive(Debug, Clone)]
pub(super) struct Params {
    write_buffer: usize,
    block_size: usize,
    pub(super) sync: bool,
    max_immutable: usize,
    l0_trigger: usize,
    target_file: u64,
    level_base: u64,
    dynamic: bool,
    wal_bytes_per_sync: u64,
    /// The memory budget of all memtables, when the seed sets one (small, so that the
    /// largest memtable is frozen before it is full).
    db_write_buffer: Option<usize>,
    /// The bound on kept log segments, when the seed sets one (small, so that the
    /// keyspaces holding the oldest segment are frozen).
    max_total_wal: Option<u64>,
    /// How many keyspaces besides `"default"` the run creates before its workload.
    pub(super) keyspaces: usize,
    /// How the tables' data blocks are compressed, at every level.
    compression: Compression,
    /// How many key ranges a large compaction is split into (merged one after another,
    /// as the simulation runs no background thread); drawn, not the machine's core
    /// count, so that a seed replays the same anywhere.
    subcompactions: usize,
}

impl Params {
    pub(super) fn draw(rng: &mut SmallRng) -> Params {
        Params {
            write_buffer: [4096, 8192, 16 << 10][rng.random_range(0..3)],
            block_size: [64, 256, 1024, 4096][rng.random_range(0..4)],
            sync: rng.random_bool(0.3),
            max_immutable: rng.random_range(1..=3),
            l0_trigger: rng.random_range(2..=4),
            target_file: [4096, 16 << 10, 64 << 10][rng.random_range(0..3)],
            level_base: [16 << 10, 64 << 10][rng.random_range(0..2)],
            dynamic: rng.random_bool(0.7),
            wal_bytes_per_sync: [0, 512, 4096][rng.random_range(0..3)],
            db_write_buffer: rng
                .random_bool(0.3)
                .then(|| [4096, 8192, 16 << 10][rng.random_range(0..3)]),
            max_total_wal: rng
                .random_bool(0.3)
                .then(|| [2048, 8192, 32 << 10][rng.random_range(0..3)]),
            keyspaces: [0, 1, 2, 2, 3, 4][rng.random_range(0..6)],
            compression: COMPRESSIONS[rng.random_range(0..COMPRESSIONS.len())],
            subcompactions: [1, 2, 4][rng.random_range(0..3)],
        }
    }

    pub(super) fn options(&self, fs: &SimFs) -> Options {
        let options = Options::default()
            .file_system(Arc::new(fs.clone()))
            .manual_background(true)
            .write_buffer_size(self.write_buffer)
            .block_size(self.block_size)
            .sync(self.sync)
            .max_immutable_memtables(self.max_immutable)
            .l0_compaction_trigger(self.l0_trigger)
            .target_file_size(self.target_file)
            .max_bytes_for_level_base(self.level_base)
            .dynamic_level_bytes(self.dynamic)
            .wal_bytes_per_sync(self.wal_bytes_per_sync)
            .compression(self.compression)
            .max_subcompactions(self.subcompactions);
        let options = match self.db_write_buffer {
            Some(bytes) => options.db_write_buffer_size(bytes),
            None => options,
        };
        match self.max_total_wal {
            Some(bytes) => options.max_total_wal_size(bytes),
            None => options,
        }
    }
}

/// The tree options of a keyspace the run creates: mostly a small write buffer of its
/// own, so that keyspaces freeze and flush at different times, sometimes other level-0
/// triggers, table sizes and block sizes than the database's.
pub(super) fn keyspace_options(rng: &mut SmallRng) -> KeyspaceOptions {
    let mut options = KeyspaceOptions::default();
    if rng.random_bool(0.85) {
        options = options.write_buffer_size([512, 1024, 2048, 4096, 8192][rng.random_range(0..5)]);
    }
    if rng.random_bool(0.3) {
        options = options.l0_compaction_trigger(rng.random_range(2..=4));
    }
    if rng.random_bool(0.3) {
        options = options.target_file_size([4096, 16 << 10][rng.random_range(0..2)]);
    }
    if rng.random_bool(0.3) {
        options = options.block_size([64, 256, 1024][rng.random_range(0..3)]);
    }
    if rng.random_bool(0.3) {
        options = options.compression_per_level(&[
            Compression::None,
            COMPRESSIONS[rng.random_range(0..COMPRESSIONS.len())],
        ]);
    }
    options
}

/// The compressions a seed draws from: raw tables half the time.
const COMPRESSIONS: [Compression; 4] = [
    Compression::None,
    Compression::None,
    Compression::Lz4,
    Compression::Zstd(1),
];

/// How often the workload writes in a keyspace, relative to the others: some keyspaces
/// are quiet (a write now and then, which stays unflushed in an old log segment) and some
/// busy (flushing often).
pub(super) fn activity(rng: &mut SmallRng) -> u32 {
    [1, 2, 6, 24][rng.random_range(0..4)]
}
