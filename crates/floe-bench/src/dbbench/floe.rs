//! The floe adapter: the public `floe` API, nothing internal; the default keyspace, or
//! several keyspaces of one database for the `keyspaces` workload.

use std::path::Path;
use std::time::{Duration, Instant};

use floe::{Db, Keyspace, Options, WriteBatch};

use super::engine::{Engine, EngineOptions, Keyspaces, copy_found, keyspace_name};

/// The floe options of the harness's `options`: its write buffer and sync setting, and a
/// block cache when the run sets a cache size (else floe's default, mapped tables). Every
/// floe database of the harness is opened with these.
#[must_use]
pub fn options(options: EngineOptions) -> Options {
    let floe = Options::default()
        .write_buffer_size(options.write_buffer)
        .sync(options.sync)
        .compression(options.compression);
    match options.cache_bytes {
        Some(bytes) => floe.block_cache_size(bytes),
        None => floe,
    }
}

/// A floe database opened with the harness's write buffer and sync setting.
#[derive(Debug)]
pub struct FloeEngine {
    db: Db,
    sync: bool,
}

impl FloeEngine {
    /// Opens (creating) a floe database at `path`.
    ///
    /// # Errors
    /// floe's error.
    pub fn open(path: &Path, options: EngineOptions) -> anyhow::Result<FloeEngine> {
        let db = Db::open_with(path, self::options(options))?;
        Ok(FloeEngine {
            db,
            sync: options.sync,
        })
    }
}

impl Engine for FloeEngine {
    fn put(&self, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
        Ok(self.db.put(key, value)?)
    }

    fn get(&self, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool> {
        Ok(copy_found(self.db.get(key)?, value))
    }

    fn delete(&self, key: &[u8]) -> anyhow::Result<()> {
        Ok(self.db.delete(key)?)
    }

    fn delete_range(&self, start: &[u8], end: &[u8]) -> anyhow::Result<()> {
        Ok(self.db.delete_range(start..end)?)
    }

    fn write_batch(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> anyhow::Result<()> {
        let mut batch = WriteBatch::new();
        for (key, value) in entries {
            batch.put(key, value);
        }
        Ok(self.db.write(batch)?)
    }

    fn scan(
        &self,
        start: &[u8],
        limit: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> anyhow::Result<usize> {
        let mut visited = 0;
        for entry in self.db.range(start..).take(limit) {
            let (key, value) = entry?;
            visit(&key, &value);
            visited += 1;
        }
        Ok(visited)
    }

    fn flush(&self) -> anyhow::Result<()> {
        Ok(self.db.flush()?)
    }

    fn compact(&self) -> anyhow::Result<()> {
        Ok(self.db.compact()?)
    }

    fn wait_for_compactions(&self) -> anyhow::Result<Duration> {
        let start = Instant::now();
        self.db.wait_for_compactions()?;
        Ok(start.elapsed())
    }

    fn notes(&self) -> Vec<(String, String)> {
        stats_notes(&self.db, self.sync)
    }

    fn close(self: Box<Self>) -> anyhow::Result<()> {
        Ok(self.db.close()?)
    }
}

/// What floe's `Stats` say about `db` (over every keyspace), as notes for the results;
/// with `synced` writes, also how many writes each log sync covered.
fn stats_notes(db: &Db, synced: bool) -> Vec<(String, String)> {
    let stats = db.stats();
    let levels: Vec<String> = stats
        .levels
        .iter()
        .map(|level| format!("{}/{}M", level.tables, level.bytes >> 20))
        .collect();
    let mut notes = vec![
        ("floe_levels".to_string(), levels.join(",")),
        (
            "floe_flush_mb".to_string(),
            (stats.flush_bytes_written >> 20).to_string(),
        ),
        (
            "floe_compaction_mb".to_string(),
            (stats.compaction_bytes_written >> 20).to_string(),
        ),
        (
            "floe_compactions".to_string(),
            stats.compactions.to_string(),
        ),
    ];
    // Only synced writes say something about group commit: with several keyspaces, a
    // flush syncs log segments too (it seals those that other keyspaces still need).
    if synced && stats.log_syncs > 0 {
        // Group commit at work: how many acknowledged writes each log sync covered.
        notes.push((
            "floe_writes_per_sync".to_string(),
            format!("{:.2}", stats.writes as f64 / stats.log_syncs as f64),
        ));
    }
    notes
}

/// A floe database and its keyspaces, named by `keyspace_name`.
#[derive(Debug)]
pub struct FloeKeyspaces {
    keyspaces: Vec<Keyspace>,
    db: Db,
    sync: bool,
}

impl FloeKeyspaces {
    /// Opens (creating) a floe database at `path` with `count` keyspaces, each with a
    /// memtable of the harness's write buffer.
    ///
    /// The budget of all memtables together (`db_write_buffer_size`) is one write buffer
    /// per keyspace, so that no keyspace flushes before its own memtable is full: fjall
    /// sets no such budget, and RocksDB's `db_write_buffer_size` is off by default.
    ///
    /// # Errors
    /// floe's error.
    pub fn open(
        path: &Path,
        options: EngineOptions,
        count: usize,
    ) -> anyhow::Result<FloeKeyspaces> {
        let db = Db::open_with(
            path,
            self::options(options)
                .db_write_buffer_size(options.write_buffer.saturating_mul(count.max(1))),
        )?;
        let keyspaces = (0..count)
            .map(|index| db.keyspace(&keyspace_name(index)))
            .collect::<Result<_, _>>()?;
        Ok(FloeKeyspaces {
            keyspaces,
            db,
            sync: options.sync,
        })
    }
}

impl Keyspaces for FloeKeyspaces {
    fn put(&self, keyspace: usize, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
        Ok(self.keyspaces[keyspace].put(key, value)?)
    }

    fn get(&self, keyspace: usize, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool> {
        Ok(copy_found(self.keyspaces[keyspace].get(key)?, value))
    }

    fn write_batch(&self, puts: &[(usize, &[u8], &[u8])]) -> anyhow::Result<()> {
        let mut batch = WriteBatch::new();
        for &(keyspace, key, value) in puts {
            batch.put_in(&self.keyspaces[keyspace], key, value);
        }
        Ok(self.db.write(batch)?)
    }

    fn flush(&self) -> anyhow::Result<()> {
        Ok(self.db.flush()?)
    }

    fn notes(&self) -> Vec<(String, String)> {
        stats_notes(&self.db, self.sync)
    }

    fn close(self: Box<Self>) -> anyhow::Result<()> {
        let FloeKeyspaces { keyspaces, db, .. } = *self;
        drop(keyspaces);
        Ok(db.close()?)
    }
}
