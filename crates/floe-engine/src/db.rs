//! [`Db`], the handle to an open database, and its lifecycle: open, close, drop.

use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use bytes::Bytes;

use crate::compaction::compact::run_compaction_worker;
use crate::error::{Error, Result};
use crate::flush::run_flush_worker;
use crate::keyspace::{DEFAULT_NAME, Keyspace, KeyspaceOptions};
use crate::options::Options;
use crate::read::{Iter, Snapshot, owned_bounds, prefix_bounds};
use crate::readable::{Readable, key_slices};
use crate::recovery;
use crate::shared::Shared;
use crate::stats::Stats;
use crate::sync::lock;
use crate::txn::Transaction;
use crate::write::batch::WriteBatch;
use crate::write::{WriteOptions, log_sync};

/// An open database. Cloning it is cheap: every clone is a handle to the same database.
///
/// The last handle to be dropped closes the database (best effort; call [`Db::close`] to
/// see errors). A second open of a directory that is open fails with
/// [`Error::Locked`], in this process or another; [`Db::open_read_only`] opens one all the
/// same.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

/// The owner of the background threads. They hold the [`Shared`] core but not this, so
/// dropping the last [`Db`] runs [`DbInner`]'s `Drop`, which stops and joins them.
struct DbInner {
    shared: Arc<Shared>,
    /// The flush worker, the compaction worker and the background log syncer (if the
    /// options call for one).
    workers: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.inner.shared.dir)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the database in the directory `path` with default options, creating it if it
    /// does not exist.
    ///
    /// # Errors
    /// [`Error::Locked`] if the directory is already open, [`Error::Corruption`] if its
    /// files are damaged or a file it needs is missing, [`Error::Io`] if the file system
    /// fails.
    pub fn open(path: impl AsRef<Path>) -> Result<Db> {
        Db::open_with(path, Options::default())
    }

    /// Opens the database in the directory `path` with `options`, creating it if needed.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if an option is outside its documented range (the
    /// message names it; nothing on disk is touched), otherwise as for [`Db::open`].
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Db> {
        let shared = Arc::new(recovery::open(path.as_ref(), options)?);
        let inner = DbInner {
            shared: Arc::clone(&shared),
            workers: std::sync::Mutex::new(Vec::new()),
        };
        if shared.options.is_manual_background() {
            return Ok(Db {
                inner: Arc::new(inner),
            });
        }
        // If a later spawn fails, dropping `inner` stops and joins the threads before it.
        let worker = Arc::clone(&shared);
        let flusher = thread::Builder::new()
            .name("floe-flush".to_string())
            .spawn(move || run_flush_worker(worker))
            .map_err(|err| Error::io("starting the flush thread", err))?;
        lock(&inner.workers).push(flusher);
        let worker = Arc::clone(&shared);
        let compactor = thread::Builder::new()
            .name("floe-compact".to_string())
            .spawn(move || run_compaction_worker(worker))
            .map_err(|err| Error::io("starting the compaction thread", err))?;
        lock(&inner.workers).push(compactor);
        if log_sync::wanted(&shared.options) {
            let worker = Arc::clone(&shared);
            let syncer = thread::Builder::new()
                .name("floe-log-sync".to_string())
                .spawn(move || log_sync::run_log_syncer(worker))
                .map_err(|err| Error::io("starting the log sync thread", err))?;
            lock(&inner.workers).push(syncer);
        }
        Ok(Db {
            inner: Arc::new(inner),
        })
    }

    /// Opens the last durable state of the database in the directory `path` read-only,
    /// with default options: without writing, creating, renaming or deleting any file.
    ///
    /// It works on a directory the process cannot write to, and while another handle or
    /// process holds the database open for writing (it takes no lock); it sees the state
    /// as of its open, and nothing written later. It replays the unflushed log into
    /// memory, as a writable open replays it into a table. Reads, iterators, snapshots
    /// and [`Db::keyspace`] of an existing keyspace work; every write (through the
    /// database or a [`Keyspace`]), [`Db::flush`], [`Db::compact`],
    /// [`Db::drop_keyspace`] and [`Db::keyspace`] of a name that is not a keyspace fail
    /// with [`Error::ReadOnly`]. [`Db::sync`] and [`Db::wait_for_compactions`] have
    /// nothing to do and return `Ok`; [`Db::close`] only ends the handle.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory does not exist, holds no database (no `CURRENT`) or
    /// cannot be read; [`Error::Corruption`] if its files are damaged or a file it needs is
    /// missing (as for [`Db::open`]).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Db> {
        Db::open_read_only_with(path, Options::default())
    }

    /// [`Db::open_read_only`] with `options`, whose table and read options apply to the
    /// `"default"` keyspace (the other keyspaces keep the options recorded when they were
    /// created); options that govern writes have nothing to govern.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if an option is outside its documented range, otherwise
    /// as for [`Db::open_read_only`].
    pub fn open_read_only_with(path: impl AsRef<Path>, options: Options) -> Result<Db> {
        let shared = recovery::open_read_only(path.as_ref(), options)?;
        // No background thread: a read-only database has no memtable to flush and no
        // table to compact.
        Ok(Db {
            inner: Arc::new(DbInner {
                shared: Arc::new(shared),
                workers: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }

    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the key or value is too long, [`Error::Poisoned`] or
    /// [`Error::Io`] if the log cannot be written (or a background sync of it failed, see
    /// [`Options::wal_bytes_per_sync`]), [`Error::Closed`] after close, [`Error::ReadOnly`]
    /// if the database is open read-only.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.write(WriteBatch::single_put(key.as_ref(), value.as_ref()))
    }

    /// Deletes `key` (a no-op if it is absent).
    ///
    /// # Errors
    /// As for [`Db::put`].
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        self.write(WriteBatch::single_delete(key.as_ref()))
    }

    /// Deletes every key in `range` as one write, in time independent of how many keys it
    /// covers: one range tombstone, which reads respect at once and compaction turns
    /// into reclaimed space. Later writes into the range are visible; snapshots taken
    /// before it still see the old keys. An empty or inverted range deletes nothing and
    /// is not an error.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let db = floe_engine::Db::open(dir.path())?;
    /// for key in ["a", "b", "c", "d"] {
    ///     db.put(key, "v")?;
    /// }
    /// db.delete_range("b"..="c")?;
    /// let keys: Vec<_> = db.iter().map(|kv| kv.map(|(k, _)| k)).collect::<Result<_, _>>()?;
    /// assert_eq!(keys, ["a", "d"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Db::put`].
    pub fn delete_range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete_range(range);
        self.write(batch)
    }

    /// Applies every operation of `batch` atomically: after a crash, and to every reader,
    /// either all of them took effect or none.
    ///
    /// # Errors
    /// As for [`Db::put`]; on an error nothing of the batch is acknowledged.
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        self.inner.shared.write(batch, false)
    }

    /// [`Db::write`] with per-write options: with [`WriteOptions::sync`], the batch is
    /// durable against power loss when this returns, even in a database opened with
    /// [`Options::sync`] off (it shares the group commit's `fdatasync` with the other
    /// writers that asked for one).
    ///
    /// # Errors
    /// As for [`Db::write`].
    pub fn write_with(&self, batch: WriteBatch, options: &WriteOptions) -> Result<()> {
        self.inner.shared.write(batch, options.syncs())
    }

    /// The keyspace `name`, created (durably, before this returns) if it does not exist,
    /// with tree options from this database's [`Options`] (see [`Db::keyspace_with`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the name is not 1 to 255 bytes of UTF-8 without
    /// control characters or `/`; [`Error::Poisoned`] or [`Error::Io`] if the manifest
    /// cannot be written; [`Error::ReadOnly`] for a name that is not a keyspace if the
    /// database is open read-only.
    pub fn keyspace(&self, name: &str) -> Result<Keyspace> {
        self.keyspace_with(name, KeyspaceOptions::default())
    }

    /// The keyspace `name`, created with `options` if it does not exist. The options of a
    /// keyspace are recorded when it is created and kept across reopens; for an existing
    /// keyspace `options` are ignored.
    ///
    /// # Errors
    /// As for [`Db::keyspace`], and [`Error::InvalidArgument`] if an option is out of its
    /// range.
    pub fn keyspace_with(&self, name: &str, options: KeyspaceOptions) -> Result<Keyspace> {
        let shared = &self.inner.shared;
        if shared.keyspaces.get(name).is_none() {
            shared.refuse_if_read_only(format_args!("creating keyspace {name:?}"))?;
        }
        let handle = shared.open_keyspace(name, &options)?;
        Ok(Keyspace::new(Arc::clone(shared), handle))
    }

    /// The name of every keyspace, `"default"` included, sorted.
    #[must_use]
    pub fn keyspace_names(&self) -> Vec<String> {
        self.inner.shared.keyspaces.names()
    }

    /// Drops the keyspace `name` and all its data, durably before this returns. Handles to
    /// it fail with [`Error::KeyspaceDropped`] from then on, and so do reads of it through
    /// snapshots; iterators made before keep reading what they saw. Its files are deleted
    /// once nothing reads them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for `"default"` or a name that is not a keyspace;
    /// [`Error::Poisoned`] or [`Error::Io`] if the manifest cannot be written;
    /// [`Error::ReadOnly`] if the database is open read-only.
    pub fn drop_keyspace(&self, name: &str) -> Result<()> {
        self.inner.shared.refuse_if_read_only("drop_keyspace")?;
        self.inner.shared.drop_keyspace(name)
    }

    /// The `"default"` keyspace, which [`Db::put`], [`Db::get`] and the other calls of
    /// `Db` read and write.
    #[must_use]
    pub fn default_keyspace(&self) -> Keyspace {
        let shared = &self.inner.shared;
        let handle = shared
            .keyspaces
            .get(DEFAULT_NAME)
            .expect("the default keyspace always exists");
        Keyspace::new(Arc::clone(shared), handle)
    }

    /// The latest value of `key`, or `None` if it is absent.
    ///
    /// # Errors
    /// [`Error::Corruption`] if a damaged table is read, [`Error::Io`] if reading fails.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.inner.shared.get(key.as_ref())
    }

    /// Every key-value pair, in key order.
    pub fn iter(&self) -> Iter {
        self.inner.shared.scan(Bound::Unbounded, Bound::Unbounded)
    }

    /// The key-value pairs whose key lies within `range`, in key order.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        let (lower, upper) = owned_bounds(&range);
        self.inner.shared.scan(lower, upper)
    }

    /// The key-value pairs whose key starts with `prefix`, in key order.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let (lower, upper) = prefix_bounds(prefix.as_ref());
        self.inner.shared.scan(lower, upper)
    }

    /// A consistent read view of the database as it is now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(&self.inner.shared)
    }

    /// Begins a serializable optimistic transaction: its reads see this point in time
    /// plus its own writes, and its commit applies every write atomically or fails with
    /// [`Error::Conflict`] (see [`Transaction`]).
    pub fn transaction(&self) -> Transaction {
        Transaction::begin(&self.inner.shared)
    }

    /// Writes every write acknowledged before the call into a table; returns when done.
    ///
    /// # Errors
    /// [`Error::Poisoned`] or [`Error::Io`] if a table or the manifest cannot be written,
    /// [`Error::ReadOnly`] if the database is open read-only.
    pub fn flush(&self) -> Result<()> {
        self.inner.shared.refuse_if_read_only("flush")?;
        self.inner.shared.flush()
    }

    /// Flushes, then compacts every table into sorted, non-overlapping tables at the last
    /// level, dropping versions that no live snapshot can see and deleted keys; returns
    /// when done. Background compactions wait while it runs.
    ///
    /// Compaction also runs by itself in the background: level 0 compacts into the base
    /// level once it holds [`Options::l0_compaction_trigger`] tables, and each deeper level
    /// into the next once it outgrows its target size (see
    /// [`Options::dynamic_level_bytes`]).
    ///
    /// # Errors
    /// As for [`Db::flush`], and [`Error::Corruption`] if a damaged table is read.
    pub fn compact(&self) -> Result<()> {
        self.inner.shared.refuse_if_read_only("compact")?;
        self.inner.shared.compact()
    }

    /// Waits until the background work the writes so far have caused is done: every
    /// frozen memtable flushed and every level within its target (level 0 below
    /// [`Options::l0_compaction_trigger`]). Writes that go on meanwhile can make it wait
    /// longer. The active memtable is not flushed (see [`Db::flush`]). Useful before
    /// measuring a settled tree, or before a read-heavy phase.
    ///
    /// # Errors
    /// [`Error::Poisoned`] if a background flush or compaction failed, [`Error::Closed`]
    /// if the database is closed meanwhile. A read-only database has nothing to wait for.
    pub fn wait_for_compactions(&self) -> Result<()> {
        if self.inner.shared.is_read_only() {
            return Ok(());
        }
        self.inner.shared.wait_for_compactions()
    }

    /// A report of the tables of each level and of what writes have cost since open:
    /// write amplification, space amplification, write stalls (see [`Stats`]).
    #[must_use]
    pub fn stats(&self) -> Stats {
        let shared = &self.inner.shared;
        let mut stats =
            shared
                .counters
                .report(&shared.state.load(), &shared.options, &shared.table_reads);
        stats.transaction_history_bytes = shared.history.kept_bytes() as u64;
        stats
    }

    /// Writes an openable copy of the database, every keyspace, into the directory `dir`,
    /// which must not exist: every write acknowledged before the call, and possibly some
    /// that were in flight, each whole. Table files and log segments are hard-linked where
    /// the file system allows (and copied elsewhere), so a checkpoint costs time in
    /// proportion to the number of files, not to the data; writers wait only while the
    /// point in time is fixed. Open the copy with [`Db::open`] (it replays the linked log
    /// segments then); it is independent of this database from then on.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `dir` exists, [`Error::Io`] if a file cannot be
    /// linked or copied, [`Error::Poisoned`] or [`Error::Closed`] as for writes.
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.inner.shared.checkpoint(dir.as_ref())
    }

    /// Makes every write acknowledged before the call durable against power loss. In a
    /// read-only database there is none, and this does nothing.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Poisoned`] if a sync fails; the database is then poisoned.
    pub fn sync(&self) -> Result<()> {
        if self.inner.shared.is_read_only() {
            return Ok(());
        }
        self.inner.shared.sync()
    }

    /// Closes the database: syncs the log, waits for background flushes to finish and
    /// releases the directory, so that it can be opened again at once. Other clones of
    /// this handle can still read, but every write through them fails with
    /// [`Error::Closed`]. A read-only database is only marked closed: it has nothing to
    /// sync or release.
    ///
    /// # Errors
    /// [`Error::Io`] if the final sync fails, [`Error::Poisoned`] if an earlier write-path
    /// failure poisoned the database (reopen it to recover every acknowledged write).
    pub fn close(self) -> Result<()> {
        self.inner.close()
    }
}

impl Readable for Db {
    fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        Db::get(self, key)
    }

    fn iter(&self) -> Iter {
        Db::iter(self)
    }

    fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        Db::range(self, range)
    }

    fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        Db::prefix(self, prefix)
    }

    fn multi_get<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Bytes>>> {
        self.inner.shared.multi_get(None, &key_slices(keys))
    }
}

#[cfg(any(test, feature = "fault-injection"))]
impl Db {
    /// Test-only, for databases opened with `Options::manual_background`: runs one piece
    /// of background work: a round of the log's background sync if a write crossed the
    /// byte bound since the last, else the flush of the oldest frozen memtable if there is
    /// one, else the compaction the tree needs most, if any. Returns whether it did anything. A
    /// failure poisons the database, as it would in the background.
    ///
    /// # Errors
    /// The failure of the flush or compaction.
    pub fn step_background(&self) -> Result<bool> {
        // A read-only database has no background work: its replayed memtables stay.
        if self.inner.shared.is_read_only() {
            return Ok(false);
        }
        self.inner.shared.step_background()
    }
}

impl Db {
    /// The shared core, for the crate's own tools (backups) and for tests that inspect
    /// the state.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }
}

impl DbInner {
    fn close(&self) -> Result<()> {
        let shared = &self.shared;
        if !shared.end_writes() || shared.is_read_only() {
            return Ok(());
        }
        // Sync what is acknowledged (see `Shared::sync_for_close`).
        let synced = shared.sync_for_close();
        // The syncer finds nothing left to sync after the sync above (or stops at the
        // poisoning); a round it is running completes before the join below returns.
        shared.stop_log_syncer();
        shared.background.shut_down();
        let workers = std::mem::take(&mut *lock(&self.workers));
        for worker in workers {
            let _ = worker.join();
        }
        // No edit follows once the workers are gone: the manifest ends in a marker too.
        let sealed = match shared.poison_error() {
            Some(_) => Ok(()),
            None => lock(&shared.manifest).seal(),
        };
        shared.release_dir_lock();
        synced?;
        sealed?;
        match shared.poison_error() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

impl Drop for DbInner {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
