//! The background flush worker: writes each frozen memtable to a level-0 table and
//! installs the table in the same state swap that removes the memtable.
//!
//! Durability order 2 (`docs/durability.md`, "Flush"): the table is written and synced under a
//! temporary name, renamed, the directory synced; then the manifest edit that adds the
//! table and moves the log number past the memtable's segment is appended and synced;
//! then the new state is installed; only then is the segment deleted. A crash at any
//! point leaves either the segment (replayed on open, the table an orphan) or the table
//! recorded in the manifest (the segment obsolete).

use std::ops::Bound;
use std::sync::Arc;

use floe_core::SeqNo;

use crate::error::{Error, Result};
use crate::filename::log_path;
use crate::iter::{BoxedSource, CompactionIter, MergingIter};
use crate::shared::Shared;
use crate::sync::lock;
use crate::version::FrozenMem;
use crate::version::manifest::VersionEdit;
use crate::version::{TableHandle, TableWriter};

/// The flush worker's loop: it sleeps until a memtable is frozen, and exits
/// at shutdown once nothing frozen is left (or the database is poisoned). The public
/// handle's drop, not this thread's reference, decides when shutdown happens.
pub(crate) fn run_flush_worker(shared: Arc<Shared>) {
    loop {
        let job = {
            let mut signals = shared.background.lock();
            loop {
                let oldest = shared.state.load().frozen.last().cloned();
                match oldest {
                    Some(frozen) if !shared.is_poisoned() => break Some(frozen),
                    _ if signals.shutting_down() => break None,
                    _ => signals = shared.background.wait_for_flush_work(signals),
                }
            }
        };
        let Some(frozen) = job else {
            return;
        };
        if let Err(err) = shared.flush_memtable(&frozen) {
            let _ = shared.poison(err);
        }
    }
}

impl Shared {
    /// Flushes the oldest frozen memtable `frozen` (see the module docs for the order):
    /// writes its table, appends the edit and installs the state that swaps the memtable
    /// for the table, then deletes the memtable's segment.
    pub(crate) fn flush_memtable(&self, frozen: &FrozenMem) -> Result<()> {
        let (added, last_seqno) = self.write_table(frozen)?;
        // Planted bug (simulation only): the segment goes before the edit that obsoletes it
        // is durable.
        if cfg!(floe_planted = "segment_deleted_before_edit") {
            let _ = self.fs.remove_file(&log_path(&self.dir, frozen.log_number));
        }
        let mut manifest = lock(&self.manifest);
        let edit = VersionEdit {
            log_number: Some(self.log_number_after(frozen)?),
            next_file_number: Some(self.file_numbers.peek()),
            last_seqno: (last_seqno > 0).then_some(last_seqno),
            added: added.iter().map(|t| (0, t.file.clone())).collect(),
            removed: Vec::new(),
        };
        self.install_edit(&mut manifest, &edit, |current| {
            current.with_flushed(&frozen.mem, added)
        })?;
        self.maybe_roll_manifest(&mut manifest)?;
        drop(manifest);
        // The edit that obsoletes the segment is durable and installed: delete it. A
        // failure leaves an obsolete segment that the next open removes.
        let _ = self.fs.remove_file(&log_path(&self.dir, frozen.log_number));
        self.background.progressed();
        Ok(())
    }

    /// Writes the table of `frozen`, synced and renamed into place with its directory
    /// entry synced, and opens it; returns it (none for an empty memtable) with the
    /// largest sequence number it holds (0 if none).
    fn write_table(&self, frozen: &FrozenMem) -> Result<(Vec<Arc<TableHandle>>, SeqNo)> {
        let mut added = Vec::new();
        let mut last_seqno: SeqNo = 0;
        if frozen.mem.is_empty() {
            return Ok((added, last_seqno));
        }
        let number = self.file_numbers.allocate()?;
        let mut writer = TableWriter::create(&self.fs, &self.dir, number, self.table_options())?;
        // Only the versions some reader can still see go into the table: the newest of
        // each key, plus the ones live snapshots need (the rule of [`CompactionIter`]).
        // Tombstones all stay, since older versions may lie in the tables below. The
        // snapshots are read after the memtable was frozen, and every entry in it was
        // published before that, so a snapshot taken later sees the newest version of each
        // key, which is always kept.
        let snapshots = self.snapshots.live();
        let entries: BoxedSource = Box::new(
            frozen
                .mem
                .entries(Bound::Unbounded, Bound::Unbounded)
                .map(Ok),
        );
        let kept = CompactionIter::new(MergingIter::new(vec![entries]), snapshots, false);
        for entry in kept {
            let (key, value) = entry?;
            // The newest version of each key is always kept, so this is the largest
            // sequence number in the memtable.
            last_seqno = last_seqno.max(key.seqno);
            writer.add(&key, &value)?;
        }
        let file = writer.finish()?;
        self.counters.add_flush(file.size);
        self.fs
            .sync_dir(&self.dir)
            .map_err(|err| Error::io("syncing the database directory", err))?;
        added.push(TableHandle::open(&self.fs, &self.dir, file)?);
        Ok((added, last_seqno))
    }

    /// The log number the flush of `frozen` records: the segments still needed start with
    /// the next-newer memtable's. A concurrent freeze only pushes at the front, and what it
    /// pushes carries the number that was the active segment's, so this number does not
    /// change while the flush works.
    fn log_number_after(&self, frozen: &FrozenMem) -> Result<u64> {
        let state = self.state.load();
        let at = state
            .frozen
            .iter()
            .position(|f| Arc::ptr_eq(&f.mem, &frozen.mem))
            .ok_or_else(|| {
                Error::corruption("internal error: flushed memtable not in the state")
            })?;
        Ok(if at == 0 {
            state.log_number
        } else {
            state.frozen[at - 1].log_number
        })
    }

    /// Flushes the oldest frozen memtable in the calling thread, if there is one, for a
    /// database without background threads (`Options::manual_background`); a failure
    /// poisons the database as it would in the flush worker. Returns whether it flushed.
    pub(crate) fn flush_oldest_inline(&self) -> Result<bool> {
        if let Some(err) = self.poison_error() {
            return Err(err);
        }
        let Some(oldest) = self.state.load().frozen.last().cloned() else {
            return Ok(false);
        };
        self.flush_memtable(&oldest)
            .map_err(|err| self.poison(err))?;
        Ok(true)
    }

    /// One piece of background work in the calling thread (see [`crate::Db::step_background`]).
    pub(crate) fn step_background(&self) -> Result<bool> {
        if self.log_sync_inline() {
            return match self.poison_error() {
                Some(err) => Err(err),
                None => Ok(true),
            };
        }
        if self.flush_oldest_inline()? {
            return Ok(true);
        }
        self.check_writable()?;
        if !self.needs_compaction() {
            return Ok(false);
        }
        self.compact_once().map_err(|err| self.poison(err))?;
        Ok(true)
    }

    /// Waits until no frozen memtable with a segment older than `log_number` is left.
    pub(crate) fn wait_flushed_before(&self, log_number: u64) -> Result<()> {
        if self.options.is_manual_background() {
            while self
                .state
                .load()
                .frozen
                .iter()
                .any(|f| f.log_number < log_number)
            {
                self.flush_oldest_inline()?;
            }
            return Ok(());
        }
        let mut signals = self.background.lock();
        loop {
            if let Some(err) = self.poison_error() {
                return Err(err);
            }
            let state = self.state.load();
            if state.frozen.iter().all(|f| f.log_number >= log_number) {
                return Ok(());
            }
            signals = self.background.wait_for_progress(signals);
        }
    }

    /// Freezes the active memtable (if it holds anything) and waits until every memtable
    /// frozen before is flushed: every write acknowledged before the call is in a table.
    pub(crate) fn flush(&self) -> Result<()> {
        let log_number = {
            let mut log = lock(&self.log);
            self.freeze_locked(&mut log)?;
            log.number()
        };
        self.wait_flushed_before(log_number)
    }
}
