//! The RocksDB adapter (cargo feature `rocksdb`): the default column family with
//! compression off at every level, the harness's write buffer, a bloom filter of 10 bits
//! per key like floe's and fjall's defaults (RocksDB's own default has none, which would
//! make its tables about 1% smaller and its lookups of absent keys slower than a user
//! who sets one up would see), and `sync` write options when the workload asks for
//! durable writes (RocksDB groups concurrent synced writers into one fdatasync, as floe
//! does).

use std::path::Path;
use std::time::{Duration, Instant};

use rocksdb::{BlockBasedOptions, Cache, DB, DBCompressionType, Options, WriteBatch, WriteOptions};

use super::engine::{Engine, EngineOptions, copy_found};

/// The options every RocksDB database of the harness gets (see the module documentation),
/// with a block cache of [`EngineOptions::cache_bytes`] when the run sets one (else
/// RocksDB's default block cache). The sync setting is a write option, not one of these.
pub(super) fn base_options(options: &EngineOptions) -> Options {
    let mut rocks = Options::default();
    rocks.create_if_missing(true);
    rocks.set_write_buffer_size(options.write_buffer);
    let compression = match options.compression {
        floe::Compression::Lz4 => DBCompressionType::Lz4,
        floe::Compression::Zstd(level) => {
            // The level goes in through the compression options: window bits, level,
            // strategy, max dictionary bytes.
            rocks.set_compression_options(-14, level, 0, 0);
            rocks.set_bottommost_compression_options(-14, level, 0, 0, true);
            DBCompressionType::Zstd
        }
        _ => DBCompressionType::None,
    };
    rocks.set_compression_type(compression);
    rocks.set_bottommost_compression_type(compression);
    let mut table = BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    if let Some(bytes) = options.cache_bytes {
        // The table options keep the cache alive for as long as the database needs it.
        table.set_block_cache(&Cache::new_lru_cache(bytes));
    }
    rocks.set_block_based_table_factory(&table);
    rocks
}

/// A RocksDB database.
pub struct RocksDbEngine {
    db: DB,
    sync: bool,
}

impl RocksDbEngine {
    /// Opens (creating) a RocksDB database at `path`.
    ///
    /// # Errors
    /// RocksDB's error.
    pub fn open(path: &Path, options: EngineOptions) -> anyhow::Result<RocksDbEngine> {
        let db = DB::open(&base_options(&options), path)?;
        Ok(RocksDbEngine {
            db,
            sync: options.sync,
        })
    }

    /// Opens (creating) a RocksDB database at `path` with a scaled-down tree: memtables of
    /// `write_buffer` bytes, a base level of at most `level_base` bytes and tables cut at
    /// `target_file` bytes (the shape of floe's `overwrite-sustained` run), writes not
    /// synced.
    ///
    /// # Errors
    /// RocksDB's error.
    pub fn open_scaled(
        path: &Path,
        write_buffer: usize,
        level_base: u64,
        target_file: u64,
    ) -> anyhow::Result<RocksDbEngine> {
        let mut rocks = base_options(&EngineOptions {
            write_buffer,
            ..EngineOptions::default()
        });
        rocks.set_max_bytes_for_level_base(level_base);
        rocks.set_target_file_size_base(target_file);
        let db = DB::open(&rocks, path)?;
        Ok(RocksDbEngine { db, sync: false })
    }

    /// Write options for one write. `WriteOptions` is `Send` but not `Sync`, so the engine
    /// cannot share one between threads; making one is a small allocation.
    fn write_options(&self) -> WriteOptions {
        let mut options = WriteOptions::default();
        options.set_sync(self.sync);
        options
    }
}

impl Engine for RocksDbEngine {
    fn put(&self, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
        Ok(self.db.put_opt(key, value, &self.write_options())?)
    }

    fn get(&self, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool> {
        Ok(copy_found(self.db.get_pinned(key)?, value))
    }

    fn delete(&self, key: &[u8]) -> anyhow::Result<()> {
        Ok(self.db.delete_opt(key, &self.write_options())?)
    }

    fn delete_range(&self, start: &[u8], end: &[u8]) -> anyhow::Result<()> {
        // `DeleteRange` on the default column family, through a batch of one operation
        // (the crate's `DB` offers it directly only per column family).
        let mut batch = WriteBatch::default();
        batch.delete_range(start, end);
        Ok(self.db.write_opt(batch, &self.write_options())?)
    }

    fn write_batch(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> anyhow::Result<()> {
        let mut batch = WriteBatch::default();
        for (key, value) in entries {
            batch.put(key, value);
        }
        Ok(self.db.write_opt(batch, &self.write_options())?)
    }

    fn scan(
        &self,
        start: &[u8],
        limit: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> anyhow::Result<usize> {
        let mut iter = self.db.raw_iterator();
        iter.seek(start);
        let mut visited = 0;
        while visited < limit {
            let (Some(key), Some(value)) = (iter.key(), iter.value()) else {
                break;
            };
            visit(key, value);
            visited += 1;
            iter.next();
        }
        iter.status()?;
        Ok(visited)
    }

    fn flush(&self) -> anyhow::Result<()> {
        Ok(self.db.flush()?)
    }

    fn compact(&self) -> anyhow::Result<()> {
        self.db.flush()?;
        self.db.compact_range(None::<&[u8]>, None::<&[u8]>);
        Ok(())
    }

    fn wait_for_compactions(&self) -> anyhow::Result<Duration> {
        // RocksDB's own wait, like floe's `Db::wait_for_compactions`.
        let start = Instant::now();
        let mut options = rocksdb::WaitForCompactOptions::default();
        options.set_flush(false);
        self.db.wait_for_compact(&options)?;
        Ok(start.elapsed())
    }

    fn close(self: Box<Self>) -> anyhow::Result<()> {
        // Dropping the handle waits for background work and closes the database.
        drop(self);
        Ok(())
    }
}
