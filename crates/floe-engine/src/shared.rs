//! The shared core of an open database: everything the handles, the background flush
//! worker, snapshots and the write path reach through one `Arc`.
//!
//! Lock order (a thread holding one may take only those after it): `compaction` -> `log`
//! -> `log_sync_gate` -> `manifest` -> `state_lock` -> `bg`; `queue`, `snapshots`,
//! `log_sync` and the publisher's lock are leaves. The background log syncer takes
//! `log_sync_gate` without `log` for its `fdatasync` calls, and never takes `log` while
//! it holds the gate (see `log_sync.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use floe_core::SeqNo;
use floe_core::fs::{DirLock, FileSystem};
use floe_sstable::TableOptions;

use crate::commit::Queue;
use crate::compact::CompactionState;
use crate::error::{Error, Result};
use crate::filename::{manifest_path, numbers_exhausted};
use crate::manifest::{ManifestWriter, VersionEdit};
use crate::options::Options;
use crate::publish::Publisher;
use crate::state::State;
use crate::stats::Counters;
use crate::wal::LogWriter;

/// Locks `mutex`, ignoring poisoning: every critical section of the engine leaves its data
/// consistent at each step (or poisons the database through [`Shared::poison`] first), so
/// a panic elsewhere must not turn into a cascade of panics here.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Waits on `condvar`, ignoring lock poisoning (see [`lock`]).
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar
        .wait(guard)
        .unwrap_or_else(|poison| poison.into_inner())
}

/// Waits on `condvar` for at most `timeout`, ignoring lock poisoning (see [`lock`]).
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> MutexGuard<'a, T> {
    match condvar.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poison) => poison.into_inner().0,
    }
}

/// What only the holder of the log mutex may touch: the active log segment and the
/// sequence-number counter. Holding it is also what the freeze mutex of the design is: a
/// memtable switch happens only between commit groups.
#[derive(Debug)]
pub(crate) struct LogState {
    /// The writer of the active segment, which holds exactly the active memtable's writes.
    pub(crate) writer: LogWriter,
    /// The active segment's number (equal to `State::log_number` of the latest state).
    pub(crate) number: u64,
    /// The next sequence number to assign.
    pub(crate) next_seqno: SeqNo,
    /// Writers of the segments of frozen memtables, kept so that [`Shared::sync`] can make
    /// them durable too; dropped once their memtable is flushed.
    pub(crate) frozen_logs: Vec<(u64, LogWriter)>,
    /// Where a commit group of several batches is encoded as one log record (see
    /// [`crate::batch::encode_group`]); kept between groups so that it is allocated once.
    pub(crate) group_record: Vec<u8>,
    /// Log bytes appended without a sync since the background syncer last took stock or
    /// [`Shared::sync`] synced every segment; zero means every segment is synced (or the
    /// database is poisoned). A leader that takes it past `wal_bytes_per_sync` wakes the
    /// syncer (see `log_sync.rs`).
    pub(crate) unsynced_bytes: u64,
}

/// The size past which the manifest is rewritten as one snapshot edit in a new file.
/// Unit tests use a tiny size so that every test that flushes exercises the switch.
const MANIFEST_ROLL_BYTES: u64 = if cfg!(test) { 512 } else { 4 << 20 };

/// The live manifest and what its edits add up to (for the snapshot of a new manifest).
#[derive(Debug)]
pub(crate) struct ManifestState {
    pub(crate) writer: ManifestWriter,
    /// The log number the manifest records.
    pub(crate) log_number: u64,
    /// The last sequence number the manifest records.
    pub(crate) last_seqno: SeqNo,
}

/// The background work signals.
#[derive(Debug, Default)]
pub(crate) struct Bg {
    /// Set by close: the flush worker flushes what is frozen and exits; the compaction
    /// worker exits after the compaction it is running.
    pub(crate) shutdown: bool,
}

/// What wakes the background log syncer (see `log_sync.rs`).
#[derive(Debug, Default)]
pub(crate) struct LogSyncSignal {
    /// Set by a leader whose append took the unsynced bytes past `wal_bytes_per_sync`.
    pub(crate) requested: bool,
    /// Set by close: the syncer exits.
    pub(crate) shutdown: bool,
}

/// The shared core of an open database.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) options: Options,
    /// The state that reads load without a lock.
    pub(crate) state: ArcSwap<State>,
    /// Held by whoever installs a new state, so every state is derived from the latest.
    pub(crate) state_lock: Mutex<()>,
    /// The visible sequence number.
    pub(crate) publisher: Publisher,
    /// Writers waiting to be committed by a leader.
    pub(crate) queue: Mutex<Queue>,
    pub(crate) queue_cv: Condvar,
    /// Bumped (under the queue lock) each time a leader posts outcomes or steps down, so
    /// that a waiting writer can spin on it briefly before it blocks on `queue_cv`.
    pub(crate) queue_posts: AtomicU64,
    /// The number of batches in the commit queue, mirrored from under the queue lock so
    /// that a sync leader can wait for joiners without taking it (see `commit.rs`).
    pub(crate) queued: AtomicUsize,
    /// How long the last commit group's `fdatasync` took, in nanoseconds.
    pub(crate) last_sync_nanos: AtomicU64,
    /// Whether writers spin before blocking: only with more than one CPU, where the leader
    /// runs while they spin.
    pub(crate) spin_commits: bool,
    /// The active log segment (see [`LogState`]).
    pub(crate) log: Mutex<LogState>,
    /// Held across every `fdatasync` of a log segment, by the background syncer (which
    /// holds nothing else) and by the syncs under the log mutex, each of which checks for
    /// poisoning once it holds it. So no sync of a segment starts between a failed
    /// background sync and the poisoning it causes: after a failed `fdatasync` the kernel
    /// may report the next one on the same file as a success though the data is gone.
    pub(crate) log_sync_gate: Mutex<()>,
    /// Wakes the background log syncer, with [`Shared::log_sync_cv`].
    pub(crate) log_sync: Mutex<LogSyncSignal>,
    pub(crate) log_sync_cv: Condvar,
    /// The live manifest; edits are appended and installed under it, in the same order.
    pub(crate) manifest: Mutex<ManifestState>,
    /// The next file number for a log, table or manifest.
    pub(crate) next_file_number: AtomicU64,
    /// The first failure on a write path; once set, every write fails.
    pub(crate) poisoned: OnceLock<Arc<Error>>,
    pub(crate) closed: AtomicBool,
    pub(crate) bg: Mutex<Bg>,
    /// Wakes the flush worker (a memtable was frozen, or shutdown).
    pub(crate) work_cv: Condvar,
    /// Wakes the compaction worker (a flush or compaction changed the tables, or shutdown).
    pub(crate) compact_cv: Condvar,
    /// Wakes whoever waits for a flush (back-pressure, `flush()`, close) or a poisoning.
    pub(crate) done_cv: Condvar,
    /// Sequence numbers of live snapshots, with their counts.
    pub(crate) snapshots: Mutex<BTreeMap<SeqNo, usize>>,
    /// Held while a compaction runs, so that one runs at a time (background or manual).
    pub(crate) compaction: Mutex<CompactionState>,
    /// What [`crate::Db::stats`] reports.
    pub(crate) counters: Counters,
    /// The directory lock, released by close.
    pub(crate) dir_lock: Mutex<Option<Box<dyn DirLock>>>,
}

impl Shared {
    /// The table options of this database.
    pub(crate) fn table_options(&self) -> TableOptions {
        TableOptions {
            block_size: self.options.block_size,
            bloom_bits_per_key: self.options.bloom_bits_per_key,
        }
    }

    /// Allocates a file number; `Corruption` once the counter is at `u64::MAX`, where
    /// `fetch_add` would wrap to numbers that older files still have. No database draws
    /// that many numbers: the counter starts there only if the manifest recorded a next
    /// file number near the largest there is, so the manifest is damaged.
    pub(crate) fn new_file_number(&self) -> Result<u64> {
        self.next_file_number
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
            .map_err(numbers_exhausted)
    }

    /// `Ok` if the database accepts writes; `Poisoned` or `Closed` otherwise.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if let Some(first) = self.poisoned.get() {
            return Err(Error::Poisoned {
                first: Arc::clone(first),
            });
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// The error the database is poisoned with, if any.
    pub(crate) fn poison_error(&self) -> Option<Error> {
        self.poisoned.get().map(|first| Error::Poisoned {
            first: Arc::clone(first),
        })
    }

    /// Records `err` as the failure that poisons the database (unless an earlier one did),
    /// wakes everyone who waits for background work, and returns `err` for the caller.
    pub(crate) fn poison(&self, err: Error) -> Error {
        let _ = self.poisoned.set(Arc::new(err.clone()));
        let _bg = lock(&self.bg);
        self.done_cv.notify_all();
        self.work_cv.notify_all();
        self.compact_cv.notify_all();
        err
    }

    /// Wakes the flush worker.
    pub(crate) fn wake_flusher(&self) {
        let _bg = lock(&self.bg);
        self.work_cv.notify_all();
    }

    /// Appends `edit` to the manifest (synced); a failure poisons the database.
    pub(crate) fn log_edit(&self, manifest: &mut ManifestState, edit: &VersionEdit) -> Result<()> {
        manifest
            .writer
            .append(edit)
            .map_err(|err| self.poison(err))?;
        if let Some(number) = edit.log_number {
            manifest.log_number = manifest.log_number.max(number);
        }
        if let Some(seqno) = edit.last_seqno {
            manifest.last_seqno = manifest.last_seqno.max(seqno);
        }
        Ok(())
    }

    /// Once the manifest outgrows [`MANIFEST_ROLL_BYTES`], writes a new one holding a
    /// snapshot of the latest state (durability order 3, in [`ManifestWriter::create`]) and
    /// deletes the old one. The caller holds the manifest lock and has installed every edit
    /// it appended, so the latest state's version is exactly what the edits add up to.
    pub(crate) fn maybe_roll_manifest(&self, manifest: &mut ManifestState) -> Result<()> {
        if manifest.writer.len() < MANIFEST_ROLL_BYTES {
            return Ok(());
        }
        let number = self.new_file_number().map_err(|err| self.poison(err))?;
        let mut snapshot = self.state.load().version.snapshot_edit();
        snapshot.log_number = Some(manifest.log_number);
        snapshot.next_file_number = Some(self.next_file_number.load(Ordering::Relaxed));
        snapshot.last_seqno = Some(manifest.last_seqno);
        let fresh = ManifestWriter::create(Arc::clone(&self.fs), &self.dir, number, &snapshot)
            .map_err(|err| self.poison(err))?;
        let old = std::mem::replace(&mut manifest.writer, fresh);
        // CURRENT names the new manifest now; the old one is garbage (and an orphan that
        // the next open removes if this fails).
        let _ = self.fs.remove_file(&manifest_path(&self.dir, old.number()));
        Ok(())
    }

    /// The sequence numbers of the live snapshots, ascending.
    pub(crate) fn live_snapshots(&self) -> Vec<SeqNo> {
        lock(&self.snapshots).keys().copied().collect()
    }
}
