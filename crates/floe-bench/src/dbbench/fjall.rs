//! The fjall adapter: fjall 3's default keyspace, or several keyspaces of one database
//! for the `keyspaces` workload, set up to match floe's behaviour.
//!
//! - The memtable limit of each keyspace is the harness's write buffer
//!   (`max_memtable_size`); fjall puts no limit on the memtables of all keyspaces
//!   together (its `max_write_buffer_size` is off by default and deprecated), so each
//!   keyspace flushes when its own memtable fills.
//! - Compression is off: the `lz4` feature is not enabled, so fjall has no compressor.
//! - Each write reaches the operating system before it returns (fjall's default,
//!   `manual_journal_persist(false)`), as floe's do.
//! - With `sync`, each write is followed by `persist(SyncData)` (fdatasync of the journal),
//!   outside the journal lock, so concurrent writers can share an fsync where fjall allows.
//! - The block cache keeps fjall's default size (32 MiB) unless the run sets one
//!   (`--cache-mb`); floe then reads tables through a block cache of the same size, and
//!   otherwise through mmap and the page cache.

use std::path::Path;
use std::time::{Duration, Instant};

use fjall::config::CompressionPolicy;
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::engine::{Engine, EngineOptions, Keyspaces, copy_found, keyspace_name};

/// A fjall database and its one keyspace.
pub struct FjallEngine {
    // The keyspace is declared first so that it is dropped before the database.
    keyspace: Keyspace,
    db: Database,
    sync: bool,
}

impl FjallEngine {
    /// Opens (creating) a fjall database at `path`.
    ///
    /// # Errors
    /// fjall's error.
    pub fn open(path: &Path, options: EngineOptions) -> anyhow::Result<FjallEngine> {
        let db = with_database_options!(Database::builder(path), options).open()?;
        let keyspace = db.keyspace("default", || keyspace_options(options))?;
        Ok(FjallEngine {
            keyspace,
            db,
            sync: options.sync,
        })
    }

    fn persist_if_sync(&self) -> anyhow::Result<()> {
        persist_if(&self.db, self.sync)
    }
}

/// fdatasyncs the journal of `db` if `sync` says so.
fn persist_if(db: &Database, sync: bool) -> anyhow::Result<()> {
    if sync {
        db.persist(PersistMode::SyncData)?;
    }
    Ok(())
}

/// A fjall database builder (`$builder`, of a plain or a transactional database) with the
/// database-wide settings of the harness's `$options` (an [`EngineOptions`]): the cache
/// size when the run sets one, after refusing a compression fjall does not have (the
/// calling function returns that error). A macro, not a function: the builders are generic over a
/// trait that fjall does not export, so no function can take both kinds.
macro_rules! with_database_options {
    ($builder:expr, $options:expr) => {{
        let builder = $builder;
        let options: $crate::dbbench::EngineOptions = $options;
        $crate::dbbench::fjall::check_compression(&options)?;
        match options.cache_bytes {
            Some(bytes) => builder.cache_size(bytes as u64),
            None => builder,
        }
    }};
}
pub(super) use with_database_options;

/// The options each keyspace of the harness is created with: its memtable size, and its
/// compression at every level (fjall's own default compresses from level 2 on).
pub(super) fn keyspace_options(options: EngineOptions) -> KeyspaceCreateOptions {
    let compression = match options.compression {
        floe::Compression::Lz4 => CompressionType::Lz4,
        // Zstandard runs are refused before fjall opens (see `check_compression`).
        _ => CompressionType::None,
    };
    KeyspaceCreateOptions::default()
        .max_memtable_size(options.write_buffer as u64)
        .data_block_compression_policy(CompressionPolicy::all(compression))
}

/// Refuses a compression fjall does not have.
///
/// # Errors
/// Zstandard.
pub fn check_compression(options: &EngineOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        !matches!(options.compression, floe::Compression::Zstd(_)),
        "fjall has no Zstandard compression: run --compression zstd without fjall in --engines"
    );
    Ok(())
}

impl Engine for FjallEngine {
    fn put(&self, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
        self.keyspace.insert(key, value)?;
        self.persist_if_sync()
    }

    fn get(&self, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool> {
        Ok(copy_found(self.keyspace.get(key)?, value))
    }

    fn delete(&self, key: &[u8]) -> anyhow::Result<()> {
        self.keyspace.remove(key)?;
        self.persist_if_sync()
    }

    fn delete_range(&self, start: &[u8], end: &[u8]) -> anyhow::Result<()> {
        // fjall has no range delete: find the keys of the range, then remove each one.
        // The keys are gathered first so that the removals do not run under the scan.
        let keys = self
            .keyspace
            .range(start..end)
            .map(fjall::Guard::key)
            .collect::<Result<Vec<_>, _>>()?;
        for key in keys {
            self.keyspace.remove(key)?;
        }
        self.persist_if_sync()
    }

    fn write_batch(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> anyhow::Result<()> {
        let mut batch = self.db.batch();
        for (key, value) in entries {
            batch.insert(&self.keyspace, key.as_slice(), value.as_slice());
        }
        if self.sync {
            batch = batch.durability(Some(PersistMode::SyncData));
        }
        Ok(batch.commit()?)
    }

    fn scan(
        &self,
        start: &[u8],
        limit: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> anyhow::Result<usize> {
        let mut visited = 0;
        for guard in self.keyspace.range(start..).take(limit) {
            let (key, value) = guard.into_inner()?;
            visit(&key, &value);
            visited += 1;
        }
        Ok(visited)
    }

    fn flush(&self) -> anyhow::Result<()> {
        // fjall 3 has no documented flush; this public (doc-hidden) call seals the active
        // memtable and waits until the flush workers have written it to a table.
        self.keyspace.rotate_memtable_and_wait()?;
        Ok(())
    }

    fn compact(&self) -> anyhow::Result<()> {
        self.flush()?;
        Ok(self.keyspace.major_compact()?)
    }

    fn wait_for_compactions(&self) -> anyhow::Result<Duration> {
        // fjall 3 has no call that waits for its compactions; it reports (doc-hidden) how
        // many flushes are queued and how many compaction runs are under way. Settled is
        // taken to be neither, on every poll for half a second: its workers start the next
        // compaction within milliseconds of the last, so a tree with work left shows it
        // within the window. An approximation, where floe and RocksDB wait exactly. The
        // time returned is that of the first poll of the quiet window, not its end.
        const POLL: Duration = Duration::from_millis(50);
        const QUIET_POLLS: u32 = 10;
        let start = Instant::now();
        let mut quiet = 0;
        let mut settled = Duration::ZERO;
        while quiet < QUIET_POLLS {
            let now = start.elapsed();
            if self.db.outstanding_flushes() == 0 && self.db.active_compactions() == 0 {
                if quiet == 0 {
                    settled = now;
                }
                quiet += 1;
            } else {
                quiet = 0;
            }
            std::thread::sleep(POLL);
        }
        Ok(settled)
    }

    fn close(self: Box<Self>) -> anyhow::Result<()> {
        // fjall writes the journal to the OS on every write and closes on drop; the drop of
        // the last handle stops and joins its background threads.
        let FjallEngine { keyspace, db, .. } = *self;
        drop(keyspace);
        drop(db);
        Ok(())
    }
}

/// A fjall database and its keyspaces, named by `keyspace_name`.
pub struct FjallKeyspaces {
    // The keyspaces are declared first so that they are dropped before the database.
    keyspaces: Vec<Keyspace>,
    db: Database,
    sync: bool,
}

impl FjallKeyspaces {
    /// Opens (creating) a fjall database at `path` with `count` keyspaces.
    ///
    /// # Errors
    /// fjall's error.
    pub fn open(
        path: &Path,
        options: EngineOptions,
        count: usize,
    ) -> anyhow::Result<FjallKeyspaces> {
        let db = with_database_options!(Database::builder(path), options).open()?;
        let keyspaces = (0..count)
            .map(|index| db.keyspace(&keyspace_name(index), || keyspace_options(options)))
            .collect::<Result<_, _>>()?;
        Ok(FjallKeyspaces {
            keyspaces,
            db,
            sync: options.sync,
        })
    }
}

impl Keyspaces for FjallKeyspaces {
    fn put(&self, keyspace: usize, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
        self.keyspaces[keyspace].insert(key, value)?;
        persist_if(&self.db, self.sync)
    }

    fn get(&self, keyspace: usize, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool> {
        Ok(copy_found(self.keyspaces[keyspace].get(key)?, value))
    }

    fn write_batch(&self, puts: &[(usize, &[u8], &[u8])]) -> anyhow::Result<()> {
        let mut batch = self.db.batch();
        for &(keyspace, key, value) in puts {
            batch.insert(&self.keyspaces[keyspace], key, value);
        }
        if self.sync {
            batch = batch.durability(Some(PersistMode::SyncData));
        }
        Ok(batch.commit()?)
    }

    fn flush(&self) -> anyhow::Result<()> {
        // One keyspace after the other: fjall's call waits only when it sealed a memtable
        // itself, so sealing them all first and waiting after is not available.
        for keyspace in &self.keyspaces {
            keyspace.rotate_memtable_and_wait()?;
        }
        Ok(())
    }

    fn close(self: Box<Self>) -> anyhow::Result<()> {
        let FjallKeyspaces { keyspaces, db, .. } = *self;
        drop(keyspaces);
        drop(db);
        Ok(())
    }
}
