//! The floe adapter: the public `floe` API, nothing internal.

use std::path::Path;

use floe::{Db, Options, WriteBatch};

use super::engine::{Engine, EngineOptions, copy_found};

/// A floe database opened with the harness's write buffer and sync setting.
#[derive(Debug)]
pub struct FloeEngine {
    db: Db,
}

impl FloeEngine {
    /// Opens (creating) a floe database at `path`.
    ///
    /// # Errors
    /// floe's error.
    pub fn open(path: &Path, options: EngineOptions) -> anyhow::Result<FloeEngine> {
        let db = Db::open_with(
            path,
            Options::default()
                .write_buffer_size(options.write_buffer)
                .sync(options.sync),
        )?;
        Ok(FloeEngine { db })
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

    fn notes(&self) -> Vec<(String, String)> {
        let stats = self.db.stats();
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
        if stats.log_syncs > 0 {
            // Group commit at work: how many acknowledged writes each log sync covered.
            notes.push((
                "floe_writes_per_sync".to_string(),
                format!("{:.2}", stats.writes as f64 / stats.log_syncs as f64),
            ));
        }
        notes
    }

    fn close(self: Box<Self>) -> anyhow::Result<()> {
        Ok(self.db.close()?)
    }
}
