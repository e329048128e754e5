//! The shared core of an open database: everything the handles, the background workers,
//! snapshots and the write path reach through one `Arc`.
//!
//! [`Shared`] is made of parts, each a type of the module that keeps its rules: the state
//! and its one way to be replaced ([`CurrentState`]), the publisher of sequence numbers,
//! the commit queue, the log ([`LogState`], under the log mutex), the older log segments
//! still needed ([`Segments`]), the log's sync gate, the manifest ([`ManifestState`],
//! under the manifest mutex), the file-number counter, the background signals, the
//! snapshot registry, the keyspace registry, the memory count of the memtables, the
//! transaction history and the compaction pointers. None of those
//! modules imports this one. What takes several parts at once is an `impl Shared` in the module
//! of that work: the write path (`write/`), the flush (`flush.rs`), compaction
//! (`compaction/compact.rs`), reads (`read.rs`); open (`recovery.rs`) builds the core with
//! [`Shared::new`]. What is here is what all of them share: poisoning, the end of
//! writes, and appending and installing a manifest edit.
//!
//! Lock order (a thread holding one may take only those after it): `compaction` -> `log`
//! -> `manifest` -> `segments` -> the log's sync gate -> the background mutex; the state's
//! install mutex, the commit queue, the transaction history (which takes the snapshot
//! registry inside it), the snapshot registry, the keyspace registry, the log
//! syncer's signal and the publisher's lock are leaves. The background log syncer takes the sync gate without
//! `log` for its `fdatasync` calls, and never takes `log` while it holds the gate (see
//! `write/log_sync.rs`).

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use floe_core::SeqNo;
use floe_core::fs::{DirLock, FileSystem};

use crate::background::Background;
use crate::compaction::CompactionState;
use crate::error::{Error, Result};
use crate::events::StallCause;
use crate::filename::{FileNumbers, log_path};
use crate::keyspace::KeyspaceId;
use crate::keyspace::registry::Keyspaces;
use crate::options::Options;
use crate::snapshots::Snapshots;
use crate::stats::Counters;
use crate::sync::lock;
use crate::txn::History;
use crate::version::TableReads;
use crate::version::manifest::{ManifestFields, ManifestState, ManifestWriter, VersionEdit};
use crate::version::{CurrentState, State, Tree};
use crate::wal::LogWriter;
use crate::write::publish::Publisher;
use crate::write::{CommitQueue, LogState, MemoryBudget, Segments, SyncGate};

/// The identity of the next database opened in this process (see [`Shared::uid`]).
static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// What open recovered and created, from which [`Shared::new`] builds the core.
pub(crate) struct Opened {
    pub(crate) dir: PathBuf,
    pub(crate) fs: Arc<dyn FileSystem>,
    /// The block cache every table of the database reads through.
    pub(crate) table_reads: TableReads,
    pub(crate) options: Options,
    /// The directory lock, held until close; `None` for a read-only open, which takes none.
    pub(crate) dir_lock: Option<Box<dyn DirLock>>,
    /// Whether the database is open read-only: then `log` and `manifest` are stand-ins
    /// that write nothing, and every change is refused.
    pub(crate) read_only: bool,
    /// Every keyspace with the tables the new manifest lists, `"default"` first, with
    /// empty memtables.
    pub(crate) trees: Vec<Arc<Tree>>,
    /// The writer of the new, empty log segment, numbered `log_number`.
    pub(crate) log: LogWriter,
    pub(crate) log_number: u64,
    /// The new manifest, whose snapshot records `log_number` and `last_seqno`.
    pub(crate) manifest: ManifestWriter,
    /// The next keyspace id the new manifest records.
    pub(crate) next_keyspace_id: KeyspaceId,
    /// The last sequence number recovered (0 for a new database).
    pub(crate) last_seqno: SeqNo,
    /// The next file number, past every file open created.
    pub(crate) next_file_number: u64,
    /// The counters, with the flush of the replayed log counted.
    pub(crate) counters: Counters,
}

/// The shared core of an open database.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) fs: Arc<dyn FileSystem>,
    /// The block cache every table of the database reads through.
    pub(crate) table_reads: TableReads,
    pub(crate) options: Options,
    /// The state that reads load without a lock; replaced only by its `install`.
    pub(crate) state: CurrentState,
    /// The visible sequence number.
    pub(crate) publisher: Publisher,
    /// Writers waiting to be committed by a leader.
    pub(crate) commits: CommitQueue,
    /// The active log segment (see [`LogState`]).
    pub(crate) log: Mutex<LogState>,
    /// The gate every `fdatasync` of a log segment passes, and what wakes the background
    /// log syncer.
    pub(crate) log_sync: SyncGate,
    /// The live manifest; edits are appended and installed under it, in the same order
    /// (see [`Shared::install_edit`]).
    pub(crate) manifest: Mutex<ManifestState>,
    /// The next file number for a log, table or manifest.
    pub(crate) file_numbers: FileNumbers,
    /// What wakes the background workers and those who wait for them.
    pub(crate) background: Background,
    /// The sequence numbers of live snapshots.
    pub(crate) snapshots: Snapshots,
    /// Held while a compaction runs, so that one runs at a time (background or manual).
    pub(crate) compaction: Mutex<CompactionState>,
    /// What [`crate::Db::stats`] reports.
    pub(crate) counters: Counters,
    /// This database's identity, which its keyspace handles carry.
    pub(crate) uid: u64,
    /// The handles of the live keyspaces by name.
    pub(crate) keyspaces: Keyspaces,
    /// The bytes of all active memtables (see [`MemoryBudget`]).
    pub(crate) memtable_usage: MemoryBudget,
    /// The live transactions and the flushed memtables their validation may need.
    pub(crate) history: History,
    /// The closed log segments still needed (see [`Segments`]).
    pub(crate) segments: Mutex<Segments>,
    /// The first failure on a write path; once set, every write fails.
    poisoned: OnceLock<Arc<Error>>,
    /// The level-0 stall reported last, with when it began (see
    /// [`Shared::note_level0_stall`]).
    pub(crate) level0_stall_watch: Mutex<Option<(StallCause, Instant)>>,
    /// Set by close: every later write fails with `Closed`.
    closed: AtomicBool,
    /// The directory lock, released by close.
    dir_lock: Mutex<Option<Box<dyn DirLock>>>,
    /// Set by a read-only open: every change fails with `ReadOnly` (see
    /// [`Shared::refuse_if_read_only`]).
    read_only: bool,
}

impl Shared {
    /// The core of a database that open recovered: every keyspace with a fresh, empty
    /// memtable writing to the new log segment, over its recovered tables.
    pub(crate) fn new(opened: Opened) -> Shared {
        let Opened {
            dir,
            fs,
            table_reads,
            options,
            dir_lock,
            read_only,
            trees,
            log,
            log_number,
            manifest,
            next_keyspace_id,
            last_seqno,
            next_file_number,
            counters,
        } = opened;
        let uid = NEXT_UID.fetch_add(1, Ordering::Relaxed);
        let keyspaces = Keyspaces::new(uid, trees.iter().map(|t| (t.name.to_string(), t.id)));
        let state = State::new(log_number, trees);
        let fields = ManifestFields {
            log_number,
            log_seqno: last_seqno + 1,
            last_seqno,
            next_keyspace_id,
        };
        // Spinning before blocking pays only with more than one CPU, where the thread
        // waited for runs meanwhile.
        let spin = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
        Shared {
            dir,
            fs,
            table_reads,
            state: CurrentState::new(state),
            publisher: Publisher::new(last_seqno).spinning(spin),
            commits: CommitQueue::new(spin),
            log: Mutex::new(LogState::new(log, log_number, last_seqno + 1)),
            log_sync: SyncGate::default(),
            manifest: Mutex::new(ManifestState::new(manifest, fields)),
            file_numbers: FileNumbers::new(next_file_number),
            background: Background::default(),
            snapshots: Snapshots::default(),
            compaction: Mutex::new(CompactionState::default()),
            counters,
            uid,
            keyspaces,
            memtable_usage: MemoryBudget::default(),
            history: History::new(options.transaction_history_bytes),
            segments: Mutex::new(Segments::new(log_number, last_seqno + 1)),
            poisoned: OnceLock::new(),
            level0_stall_watch: Mutex::new(None),
            closed: AtomicBool::new(false),
            dir_lock: Mutex::new(dir_lock),
            read_only,
            options,
        }
    }

    /// `Ok` if the database accepts writes; `ReadOnly`, `Poisoned` or `Closed` otherwise.
    /// Every write, memtable switch, compaction and keyspace change checks this first;
    /// with the background work, which a read-only database never starts, that is every
    /// path that changes the database.
    pub(crate) fn check_writable(&self) -> Result<()> {
        self.refuse_if_read_only("write")?;
        if let Some(err) = self.poison_error() {
            return Err(err);
        }
        if self.is_closed() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// `Err(ReadOnly)` naming `operation` if the database is open read-only.
    pub(crate) fn refuse_if_read_only(&self, operation: impl fmt::Display) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly {
                operation: operation.to_string(),
            });
        }
        Ok(())
    }

    /// Whether the database is open read-only.
    pub(crate) fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The error the database is poisoned with, if any.
    pub(crate) fn poison_error(&self) -> Option<Error> {
        self.poisoned.get().map(|first| Error::Poisoned {
            first: Arc::clone(first),
        })
    }

    /// Whether the database is poisoned.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.get().is_some()
    }

    /// Records `err` as the failure that poisons the database (unless an earlier one did),
    /// wakes everyone who waits for background work, and returns `err` for the caller.
    pub(crate) fn poison(&self, err: Error) -> Error {
        let first = self.poisoned.set(Arc::new(err.clone())).is_ok();
        self.background.wake_all();
        if first {
            self.options.events.background_error(&err);
        }
        err
    }

    /// Whether close has begun.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Ends writes (close): every later write fails with `Closed`. Returns whether the
    /// database was open until now, so that close runs once.
    pub(crate) fn end_writes(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }

    /// Releases the directory lock (the last step of close).
    pub(crate) fn release_dir_lock(&self) {
        drop(lock(&self.dir_lock).take());
    }

    /// Appends `edit` to the manifest (synced) and installs `next(latest)` as the state,
    /// in that order and both under the manifest mutex (the caller holds `manifest`), so
    /// that edits are installed in the order they are logged and the latest state's
    /// version is always what the logged edits add up to. A failed append poisons the
    /// database and installs nothing.
    pub(crate) fn install_edit(
        &self,
        manifest: &mut ManifestState,
        edit: &VersionEdit,
        next: impl FnOnce(&State) -> State,
    ) -> Result<()> {
        manifest.append(edit).map_err(|err| self.poison(err))?;
        self.state.install(next);
        Ok(())
    }

    /// Once the manifest is large enough, writes a new one holding a snapshot of the latest
    /// state and deletes the old one (see [`ManifestState::roll`]); a failure poisons the
    /// database. The caller holds the manifest lock and has installed every edit it
    /// appended, so the latest state's version is exactly what the edits add up to.
    pub(crate) fn maybe_roll_manifest(&self, manifest: &mut ManifestState) -> Result<()> {
        if !manifest.wants_roll() {
            return Ok(());
        }
        let number = self
            .file_numbers
            .allocate()
            .map_err(|err| self.poison(err))?;
        manifest
            .roll(
                &self.fs,
                &self.dir,
                number,
                &self.state.load(),
                self.file_numbers.peek(),
            )
            .map_err(|err| self.poison(err))
    }

    /// Deletes the closed log segments below `number`, which a durable manifest edit made
    /// obsolete (its log number is at least `number`). A failure leaves an obsolete
    /// segment that the next open removes.
    pub(crate) fn remove_segments_below(&self, number: u64) {
        let removed = lock(&self.segments).remove_below(number);
        for segment in removed {
            let path = log_path(&self.dir, segment);
            let removed = self.fs.remove_file(&path);
            crate::events::trace_event!(
                debug,
                file = %path.display(),
                removed = removed.is_ok(),
                "obsolete log segment deleted"
            );
            let _ = removed;
        }
    }
}
