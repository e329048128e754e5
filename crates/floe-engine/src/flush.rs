//! The background flush worker: writes each frozen memtable to a level-0 table of its
//! keyspace and installs the table in the same state swap that removes the memtable.
//!
//! Durability order 2 (`docs/durability.md`, "Flush"): the table is written and synced under a
//! temporary name, renamed, the directory synced; then the manifest edit that adds the
//! table, moves the keyspace's log number past the memtable's segments and the database's
//! log number to the oldest segment any keyspace still needs, is appended and synced; then
//! the new state is installed; only then are the segments below that log number deleted.
//! A crash at any point leaves either the segments (replayed on open, the table an orphan)
//! or the table recorded in the manifest (the segments obsolete for this keyspace).
//!
//! Other keyspaces: the log is shared, so the segments holding this memtable's writes may
//! hold other keyspaces' unflushed writes too, some older than writes the table holds. A
//! power loss must not keep the table and lose those (recovery keeps a prefix of the
//! writes), so before the edit those segments are synced and sealed. With one keyspace
//! there are none: every segment the memtable's writes lie in is obsolete after its flush.

use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_core::SeqNo;

use crate::error::{Error, Result};
use crate::events::FlushInfo;
use crate::iter::{BoxedSource, CompactionIter, MergingIter};
use crate::options::Options;
use crate::range_del::bounded;
use crate::shared::Shared;
use crate::stats::Counters;
use crate::sync::lock;
use crate::txn::Flushed;
use crate::version::manifest::VersionEdit;
use crate::version::{FrozenMem, State, TableHandle, TableWriter};

/// The flush worker's loop: it sleeps until a memtable is frozen, and exits
/// at shutdown once nothing frozen is left (or the database is poisoned). The public
/// handle's drop, not this thread's reference, decides when shutdown happens.
pub(crate) fn run_flush_worker(shared: Arc<Shared>) {
    loop {
        let job = {
            let mut signals = shared.background.lock();
            loop {
                let oldest = shared.state.load().oldest_frozen();
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
    /// Flushes `frozen`, the oldest frozen memtable of its keyspace (see the module docs
    /// for the order): writes its table, makes the older writes of other keyspaces in its
    /// segments durable, appends the edit and installs the state that swaps the memtable
    /// for the table, then deletes the segments no keyspace needs any more. A keyspace
    /// dropped meanwhile needs nothing: its table is removed.
    pub(crate) fn flush_memtable(&self, frozen: &FrozenMem) -> Result<()> {
        let start = Instant::now();
        let Some((options, keyspace)) = self
            .state
            .load()
            .tree(frozen.keyspace)
            .map(|t| (Arc::clone(&t.options), Arc::clone(&t.name)))
        else {
            return Ok(());
        };
        crate::events::trace_span!("flush", keyspace = %keyspace);
        let (added, last_seqno) = self.write_table(frozen, &options)?;
        // The oldest segment still needed once this memtable is in a table. It only grows
        // meanwhile: new writes go to the active segment.
        let floor = self.state.load().oldest_needed_log(Some(&frozen.mem));
        self.seal_segments_between(floor, frozen.end_log)?;
        let log_seqno = lock(&self.segments).start_seqno(floor);
        // Planted bug (simulation only): the segments go before the edit that obsoletes
        // them is durable.
        if cfg!(floe_planted = "segment_deleted_before_edit") {
            self.remove_segments_below(floor);
        }
        let mut manifest = lock(&self.manifest);
        // Drops take the manifest mutex too: checked under it, the keyspace stays.
        if self.state.load().tree(frozen.keyspace).is_none() {
            for table in &added {
                table.mark_obsolete();
            }
            return Ok(());
        }
        let edit = VersionEdit {
            log_number: log_seqno.map(|_| floor),
            log_seqno,
            next_file_number: Some(self.file_numbers.peek()),
            last_seqno: (last_seqno > 0).then_some(last_seqno),
            added: added.iter().map(|t| (0, t.file.clone())).collect(),
            keyspace: frozen.keyspace,
            keyspace_log_number: Some(frozen.end_log),
            ..VersionEdit::default()
        };
        manifest.append(&edit).map_err(|err| self.poison(err))?;
        // The edit that obsoletes them is durable: delete them, before the state without
        // the memtable is installed, so that whoever sees the flush done (`Db::flush`)
        // finds them gone.
        if log_seqno.is_some() {
            self.remove_segments_below(floor);
        }
        // Validation of a live transaction may need the writes leaving the state: the
        // history keeps them, before the state without them is installed.
        if last_seqno > 0 {
            self.history.keep(Flushed {
                keyspace: frozen.keyspace,
                mem: Arc::clone(&frozen.mem),
                newest: last_seqno,
            });
        }
        let info = FlushInfo {
            keyspace: keyspace.to_string(),
            table_number: added.first().map(|t| t.number()),
            entries: added.iter().map(|t| t.file.entries).sum(),
            bytes: added.iter().map(|t| t.file.size).sum(),
            duration: Duration::ZERO,
        };
        self.state
            .install(|current| current.with_flushed(frozen, added));
        self.maybe_roll_manifest(&mut manifest)?;
        drop(manifest);
        self.background.progressed();
        let duration = start.elapsed();
        self.counters.add_flush_time(duration);
        self.options
            .events
            .flush_completed(&FlushInfo { duration, ..info });
        self.note_level0_stall();
        Ok(())
    }

    /// Syncs and seals the closed segments from `from` up to, not including, `to` (see the
    /// module docs); a failure poisons the database.
    ///
    /// The closed segments below `from` are synced first. The edit about to be appended
    /// makes them obsolete, but until it is durable recovery still reads them, and a
    /// durable marker in a newer segment tells it that the older ones were synced: a
    /// power loss that kept the marker and took an older segment's unsynced tail (the
    /// writes of a keyspace dropped since, say) would then read as a missing record.
    fn seal_segments_between(&self, from: u64, to: u64) -> Result<()> {
        if from >= to {
            return Ok(());
        }
        let mut segments = lock(&self.segments);
        for closed in &mut segments.closed {
            if closed.number >= to {
                break;
            }
            if closed.number >= from {
                self.seal_closed(closed)?;
            } else if closed.writer.synced() < closed.writer.len() {
                self.sync_segment(closed.number, &mut closed.writer)?;
                Counters::add(&self.counters.log_syncs, 1);
            }
        }
        Ok(())
    }

    /// Writes the table of `frozen` with the keyspace's `options`, synced and renamed into
    /// place with its directory entry synced, and opens it; returns it (none for an empty
    /// memtable) with the largest sequence number it holds (0 if none).
    fn write_table(
        &self,
        frozen: &FrozenMem,
        options: &Options,
    ) -> Result<(Vec<Arc<TableHandle>>, SeqNo)> {
        let mut added = Vec::new();
        let mut last_seqno: SeqNo = 0;
        if frozen.mem.is_empty() {
            return Ok((added, last_seqno));
        }
        // The range tombstones: those some reader needs, every end bounded (see
        // [`bounded`]). Their sequence numbers count among the memtable's whether or not
        // they reach the table.
        let snapshots = self.snapshots.live();
        let ranges = frozen.mem.range_tombstones().unwrap_or_default();
        if let Some((_, newest)) = ranges.seqno_range() {
            last_seqno = newest;
        }
        let mut kept_ranges = (*ranges).clone();
        kept_ranges.retain_needed(&snapshots, false);
        let max_key = self
            .state
            .load()
            .tree(frozen.keyspace)
            .and_then(|tree| tree.max_user_key());
        let kept_ranges = bounded(&kept_ranges, max_key.as_ref());
        let number = self.file_numbers.allocate()?;
        let mut writer =
            TableWriter::create(&self.fs, &self.dir, number, options.table_options(0))?;
        // Only the versions some reader can still see go into the table: the newest of
        // each key, plus the ones live snapshots need (the rule of [`CompactionIter`]).
        // Tombstones all stay, since older versions may lie in the tables below. The
        // snapshots are read after the memtable was frozen, and every entry in it was
        // published before that, so a snapshot taken later sees the newest version of each
        // key, which is always kept.
        let entries: BoxedSource = Box::new(
            frozen
                .mem
                .entries(Bound::Unbounded, Bound::Unbounded)
                .map(Ok),
        );
        let kept = CompactionIter::new(MergingIter::new(vec![entries]), snapshots, false)
            .with_ranges((*ranges).clone());
        let mut written = 0u64;
        for entry in kept {
            let (key, value) = entry?;
            // The newest version of each key is kept unless a range tombstone hides it,
            // and that tombstone is newer still: with the tombstones' this is the largest
            // sequence number in the memtable.
            last_seqno = last_seqno.max(key.seqno);
            writer.add(&key, &value)?;
            written += 1;
        }
        if written == 0 && kept_ranges.is_empty() {
            // Only range tombstones that delete nothing: no table (the writer removes its
            // temporary file as it drops).
            return Ok((added, last_seqno));
        }
        writer.set_range_tombstones(kept_ranges)?;
        let file = writer.finish()?;
        self.counters.add_flush(file.size);
        self.fs
            .sync_dir(&self.dir)
            .map_err(|err| Error::io("syncing the database directory", err))?;
        added.push(TableHandle::open(
            &self.fs,
            &self.table_reads,
            &self.dir,
            file,
        )?);
        Ok((added, last_seqno))
    }

    /// Flushes the oldest frozen memtable in the calling thread, if there is one, for a
    /// database without background threads (`Options::manual_background`); a failure
    /// poisons the database as it would in the flush worker. Returns whether it flushed.
    pub(crate) fn flush_oldest_inline(&self) -> Result<bool> {
        if let Some(err) = self.poison_error() {
            return Err(err);
        }
        let Some(oldest) = self.state.load().oldest_frozen() else {
            return Ok(false);
        };
        self.flush_memtable(&oldest)
            .map_err(|err| self.poison(err))?;
        Ok(true)
    }

    /// One piece of background work in the calling thread (see `Db::step_background`).
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

    /// Waits until no frozen memtable whose writes end at or before segment `log_number`
    /// is left, in any keyspace.
    pub(crate) fn wait_flushed_through(&self, log_number: u64) -> Result<()> {
        let pending = |state: &State| {
            state
                .trees
                .iter()
                .any(|t| t.frozen.iter().any(|f| f.end_log <= log_number))
        };
        if self.options.is_manual_background() {
            while pending(&self.state.load()) {
                self.flush_oldest_inline()?;
            }
            return Ok(());
        }
        let mut signals = self.background.lock();
        loop {
            if let Some(err) = self.poison_error() {
                return Err(err);
            }
            if !pending(&self.state.load()) {
                return Ok(());
            }
            signals = self.background.wait_for_progress(signals);
        }
    }

    /// Freezes the active memtable of every keyspace that holds anything (in one switch)
    /// and waits until every memtable frozen before is flushed: every write acknowledged
    /// before the call is in a table.
    pub(crate) fn flush(&self) -> Result<()> {
        let log_number = {
            let mut log = lock(&self.log);
            let ids: Vec<_> = self.state.load().trees.iter().map(|t| t.id).collect();
            self.freeze_locked(&mut log, &ids)?;
            log.number()
        };
        self.wait_flushed_through(log_number)
    }
}
