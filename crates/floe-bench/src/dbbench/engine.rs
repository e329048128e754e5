//! The interfaces every compared engine is driven through (one keyspace, or several in
//! one database), and the list of engines.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::bail;

/// How an engine is opened for one workload; every engine gets the same settings.
///
/// Each adapter turns these into its engine's configuration in one function (floe's
/// `floe::options`, fjall's `fjall::with_database_options` and `fjall::keyspace_options`,
/// RocksDB's `rocksdb::base_options`), which every way of opening that engine goes through:
/// a new setting is a field here, its default below, and one line in each of those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Memtable capacity in bytes (RocksDB's `write_buffer_size`, fjall's
    /// `max_memtable_size`); 64 MiB by default.
    pub write_buffer: usize,
    /// Whether every write is fsynced (fdatasync) before it is acknowledged (off by
    /// default).
    pub sync: bool,
    /// The engine's cache of table blocks, in bytes (`--cache-mb`): fjall's cache size,
    /// RocksDB's block cache, and floe's `Options::block_cache_size`, which makes floe read
    /// tables through a block cache instead of mapping them. `None` (the default) keeps
    /// each engine's own default: floe maps its tables, fjall caches 32 MiB, RocksDB keeps
    /// its default block cache.
    pub cache_bytes: Option<usize>,
    /// How every engine compresses its table blocks (`--compression`), at every level:
    /// none by default. fjall has LZ4 alone; a run that asks it for Zstandard is refused.
    pub compression: floe::Compression,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions {
            write_buffer: 64 << 20,
            sync: false,
            cache_bytes: None,
            compression: floe::Compression::None,
        }
    }
}

/// Parses `--compression`: `none`, `lz4`, `zstd` (level 3) or `zstd:LEVEL`.
///
/// # Errors
/// Anything else, or a level that is not a number.
pub fn parse_compression(text: &str) -> anyhow::Result<floe::Compression> {
    Ok(match text {
        "none" => floe::Compression::None,
        "lz4" => floe::Compression::Lz4,
        "zstd" => floe::Compression::Zstd(3),
        _ => match text.strip_prefix("zstd:") {
            Some(level) => floe::Compression::Zstd(level.parse()?),
            None => bail!("unknown compression {text:?}: none, lz4, zstd or zstd:LEVEL"),
        },
    })
}

/// The `--compression` text of `compression`, which [`parse_compression`] reads back.
#[must_use]
pub fn compression_name(compression: floe::Compression) -> String {
    match compression {
        floe::Compression::Lz4 => "lz4".to_owned(),
        floe::Compression::Zstd(level) => format!("zstd:{level}"),
        _ => "none".to_owned(),
    }
}

/// Copies a value an engine found into the caller's buffer (clearing it either way) and
/// says whether there was one: the common tail of every adapter's `get`.
pub(super) fn copy_found(found: Option<impl AsRef<[u8]>>, value: &mut Vec<u8>) -> bool {
    value.clear();
    match found {
        Some(found) => {
            value.extend_from_slice(found.as_ref());
            true
        }
        None => false,
    }
}

/// The name of keyspace `index` in every engine's database of the `keyspaces` workload.
pub(super) fn keyspace_name(index: usize) -> String {
    format!("ks{index}")
}

/// A key-value engine as the workloads see it.
///
/// Every method takes `&self`: the workloads call one engine from several threads at once.
/// Writes are acknowledged only once they are in the operating system (every engine is
/// configured that way), and with [`EngineOptions::sync`] once they are on stable storage.
pub trait Engine: Send + Sync {
    /// Writes `value` under `key`.
    ///
    /// # Errors
    /// The engine's error.
    fn put(&self, key: &[u8], value: &[u8]) -> anyhow::Result<()>;

    /// Looks `key` up; on a hit copies the value into `value` (cleared first) and returns
    /// `true`. The copy costs every engine the same and lets the caller check the bytes.
    ///
    /// # Errors
    /// The engine's error.
    fn get(&self, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool>;

    /// Removes `key`.
    ///
    /// # Errors
    /// The engine's error.
    fn delete(&self, key: &[u8]) -> anyhow::Result<()>;

    /// Removes every key in `start..end` (`end` excluded). Engines with a range delete
    /// write one range tombstone ([`EngineKind::has_range_delete`]); the others find the
    /// keys of the range and remove them one by one, as their users have to.
    ///
    /// # Errors
    /// The engine's error.
    fn delete_range(&self, start: &[u8], end: &[u8]) -> anyhow::Result<()>;

    /// Writes every pair of `entries` atomically, in one commit.
    ///
    /// # Errors
    /// The engine's error.
    fn write_batch(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> anyhow::Result<()>;

    /// Visits up to `limit` entries in ascending key order, starting at the first key at or
    /// above `start` (an empty `start` is the smallest key); returns how many it visited.
    ///
    /// # Errors
    /// The engine's error.
    fn scan(
        &self,
        start: &[u8],
        limit: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> anyhow::Result<usize>;

    /// Moves every acknowledged write out of the memtable into a table file and returns
    /// when it is there.
    ///
    /// # Errors
    /// The engine's error.
    fn flush(&self) -> anyhow::Result<()>;

    /// Flushes, then compacts every table into the last level (one sorted run) and returns
    /// when that is done, so that no background work is left to run.
    ///
    /// # Errors
    /// The engine's error.
    fn compact(&self) -> anyhow::Result<()>;

    /// Waits until the background compactions that the writes so far have caused are
    /// done (the memtable is not flushed), so that the phase that follows meets a settled
    /// tree rather than one still being compacted; returns how long after the call they
    /// were done (less than the wait where the adapter has to watch a while to be sure).
    ///
    /// # Errors
    /// The engine's error.
    fn wait_for_compactions(&self) -> anyhow::Result<Duration>;

    /// What the engine reports about its own shape and costs (levels, bytes written by
    /// flushes and compactions), as notes for the results; empty where it reports nothing
    /// the harness knows how to read.
    fn notes(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Finishes background work and releases the directory.
    ///
    /// # Errors
    /// The engine's error.
    fn close(self: Box<Self>) -> anyhow::Result<()>;
}

/// One database of an engine holding several keyspaces (column families), as the
/// `keyspaces` workload sees it: the keyspaces are named by their index, `0..count` of
/// [`EngineKind::open_keyspaces`].
///
/// Writes are acknowledged as [`Engine`]'s are; a batch commits all its puts atomically,
/// whatever keyspaces they go to. Every method takes `&self`, as [`Engine`]'s do.
pub trait Keyspaces: Send + Sync {
    /// Writes `value` under `key` in keyspace `keyspace`.
    ///
    /// # Errors
    /// The engine's error.
    fn put(&self, keyspace: usize, key: &[u8], value: &[u8]) -> anyhow::Result<()>;

    /// Looks `key` up in keyspace `keyspace`, as [`Engine::get`] does.
    ///
    /// # Errors
    /// The engine's error.
    fn get(&self, keyspace: usize, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool>;

    /// Writes every `(keyspace, key, value)` of `puts` atomically, in one commit.
    ///
    /// # Errors
    /// The engine's error.
    fn write_batch(&self, puts: &[(usize, &[u8], &[u8])]) -> anyhow::Result<()>;

    /// Moves every acknowledged write of every keyspace into table files and returns when
    /// they are there.
    ///
    /// # Errors
    /// The engine's error.
    fn flush(&self) -> anyhow::Result<()>;

    /// What the engine reports about itself, as [`Engine::notes`].
    fn notes(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Finishes background work and releases the directory.
    ///
    /// # Errors
    /// The engine's error.
    fn close(self: Box<Self>) -> anyhow::Result<()>;
}

/// The engines the harness can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EngineKind {
    /// This repository's engine, through the public `floe` API.
    Floe,
    /// fjall 3, its default keyspace, compression compiled out.
    Fjall,
    /// RocksDB through the `rocksdb` crate; needs the cargo feature `rocksdb`.
    RocksDb,
}

impl EngineKind {
    /// Every engine, in the order results are shown.
    pub const ALL: [EngineKind; 3] = [EngineKind::Floe, EngineKind::Fjall, EngineKind::RocksDb];

    /// The engine's name on the command line and in results.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Floe => "floe",
            EngineKind::Fjall => "fjall",
            EngineKind::RocksDb => "rocksdb",
        }
    }

    /// Whether this build of the harness contains the engine.
    #[must_use]
    pub fn is_built(self) -> bool {
        match self {
            EngineKind::Floe | EngineKind::Fjall => true,
            EngineKind::RocksDb => cfg!(feature = "rocksdb"),
        }
    }

    /// Opens (creating) a database of this engine at `path`.
    ///
    /// # Errors
    /// The engine's error, or an explanation if the engine is not in this build.
    pub fn open(self, path: &Path, options: EngineOptions) -> anyhow::Result<Box<dyn Engine>> {
        match self {
            EngineKind::Floe => Ok(Box::new(super::floe::FloeEngine::open(path, options)?)),
            EngineKind::Fjall => Ok(Box::new(super::fjall::FjallEngine::open(path, options)?)),
            #[cfg(feature = "rocksdb")]
            EngineKind::RocksDb => Ok(Box::new(super::rocksdb::RocksDbEngine::open(
                path, options,
            )?)),
            #[cfg(not(feature = "rocksdb"))]
            EngineKind::RocksDb => bail!("{}", NOT_BUILT),
        }
    }

    /// Whether the harness can open this engine with several keyspaces
    /// ([`EngineKind::open_keyspaces`]). The RocksDB adapter drives only the default column
    /// family.
    #[must_use]
    pub fn has_keyspaces(self) -> bool {
        match self {
            EngineKind::Floe | EngineKind::Fjall => true,
            EngineKind::RocksDb => false,
        }
    }

    /// Whether [`Engine::delete_range`] is the engine's own range delete, one tombstone
    /// whatever the range covers (floe's `delete_range`, RocksDB's `DeleteRange`), rather
    /// than a removal of each key (fjall has no range delete).
    #[must_use]
    pub fn has_range_delete(self) -> bool {
        match self {
            EngineKind::Floe | EngineKind::RocksDb => true,
            EngineKind::Fjall => false,
        }
    }

    /// Opens (creating) a database of this engine at `path` with `count` keyspaces, each
    /// with a memtable of [`EngineOptions::write_buffer`] bytes.
    ///
    /// # Errors
    /// The engine's error, or an explanation if the harness has no keyspaces for the engine.
    pub fn open_keyspaces(
        self,
        path: &Path,
        options: EngineOptions,
        count: usize,
    ) -> anyhow::Result<Box<dyn Keyspaces>> {
        match self {
            EngineKind::Floe => Ok(Box::new(super::floe::FloeKeyspaces::open(
                path, options, count,
            )?)),
            EngineKind::Fjall => Ok(Box::new(super::fjall::FjallKeyspaces::open(
                path, options, count,
            )?)),
            EngineKind::RocksDb => bail!("the harness has no keyspaces for {self}"),
        }
    }
}

/// Why `rocksdb` is refused by a default build.
const NOT_BUILT: &str = "this floe-bench was built without RocksDB; build it with `--features rocksdb` \
     (compiles RocksDB's C++ sources, about 20 minutes, and needs libclang)";

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EngineKind {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> anyhow::Result<EngineKind> {
        let Some(kind) = EngineKind::ALL.into_iter().find(|kind| kind.name() == name) else {
            bail!("unknown engine {name:?} (engines: floe, fjall, rocksdb)");
        };
        if !kind.is_built() {
            bail!("{NOT_BUILT}");
        }
        Ok(kind)
    }
}
