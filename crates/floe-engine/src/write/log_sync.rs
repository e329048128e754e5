//! Making the log durable: [`Shared::sync`] (`Db::sync`) and the sync at close, under the
//! log mutex; the background log sync, a thread (`floe-log-sync`) that bounds, by bytes and
//! by time, how much of an unsynced write path's log waits for an `fdatasync`, and poisons
//! the database when one fails; and [`Shared::sync_segment`], the gate every sync under the
//! log mutex passes.
//!
//! Why the background sync: with [`crate::Options::sync`] off, an append is a store into a
//! shared map of the segment (or a `write` into the page cache), which cannot see a
//! failing disk: an ext4 that shut down takes every store without complaint, and only a
//! sync reports the error. Without a sync, a whole memtable of writes (thousands) would be
//! acknowledged after the disk had failed. The syncer notices within
//! [`crate::Options::wal_bytes_per_sync`] bytes or [`crate::Options::wal_sync_interval`],
//! and from then on every write fails with `Poisoned`.
//!
//! Signalling: the leader of an unsynced group counts its bytes into the log state's
//! unsynced count (under the log mutex it holds anyway) and wakes the syncer only when the
//! count crosses `wal_bytes_per_sync`: one condition-variable notify per window, nothing
//! else on the write path. The syncer also wakes each interval.
//!
//! A round never holds the log mutex across an `fdatasync`: under it the syncer only
//! takes stock, for the active segment and every closed one still needed, of the
//! segment number, a [`FileSyncer`] (taken once per segment: a duplicated descriptor for
//! real files) and the length appended so far, and zeroes the count. It releases the
//! mutex and syncs those files while the writers go on appending; then it takes the mutex
//! again and records each synced length in the segment's writer (matched by number, so a
//! segment closed meanwhile still gets it, and one deleted meanwhile is skipped).
//! A round with a file without a syncer (rare) syncs every segment under the log mutex
//! instead, oldest first: a newer segment's durable marker stands for the older ones.
//! Under the mutex the syncer also unmaps the pages of each segment's maps that appends
//! are done with ([`LogWriter::discard_written`]): writing back a page that is still
//! mapped means write-protecting it first, a TLB flush per page, and that made the syncs
//! cost several times more system time than the writeback itself.
//!
//! A failed sync poisons the database with an error naming the segment. It is never
//! retried: the sync gate (see [`SyncGate`](crate::write::sync_gate::SyncGate)) keeps
//! every other sync of a segment from starting between the failure and the poisoning.

use std::sync::Arc;
use std::time::Instant;

use floe_core::fs::FileSyncer;

use crate::error::{Error, Result};
use crate::filename::log_path;
use crate::shared::Shared;
use crate::stats::Counters;
use crate::sync::lock;
use crate::wal::LogWriter;
use crate::write::log::LogState;
use crate::write::segments::ClosedSegment;

/// A segment the syncer took stock of: its number, its syncer and the length to record
/// once the sync succeeds.
type Job = (u64, Arc<dyn FileSyncer>, u64);

/// Whether `options` call for the background syncer: an unsynced write path with at least
/// one bound on. A synced write path syncs every group itself, so the syncer would never
/// find work.
pub(crate) fn wanted(options: &crate::Options) -> bool {
    !options.sync && (options.wal_bytes_per_sync > 0 || !options.wal_sync_interval.is_zero())
}

/// The syncer's loop: it sleeps until a leader crosses the byte bound, the interval
/// passes (if it is on) or close shuts it down, and runs a round. It exits at shutdown,
/// or once the database is poisoned (nothing is synced after that).
pub(crate) fn run_log_syncer(shared: Arc<Shared>) {
    let interval = shared.options.wal_sync_interval;
    // The syncers of the segments taken stock of last, kept across rounds.
    let mut syncers: Vec<(u64, Arc<dyn FileSyncer>)> = Vec::new();
    let mut last_round = Instant::now();
    while shared.log_sync.wait_for_round(interval, last_round) {
        if shared.is_poisoned() {
            return;
        }
        last_round = Instant::now();
        shared.background_sync(&mut syncers);
    }
}

impl Shared {
    /// Makes every acknowledged write durable: syncs (and seals) the closed segments that
    /// are still needed, then the active segment.
    pub(crate) fn sync(&self) -> Result<()> {
        let mut log = lock(&self.log);
        self.sync_locked(&mut log)
    }

    /// [`Shared::sync`] for a holder of the log mutex.
    pub(crate) fn sync_locked(&self, log: &mut LogState) -> Result<()> {
        if let Some(err) = self.poison_error() {
            return Err(err);
        }
        {
            let mut segments = lock(&self.segments);
            for closed in &mut segments.closed {
                self.seal_closed(closed)?;
            }
        }
        let LogState {
            writer,
            number,
            unsynced_bytes,
            ..
        } = log;
        self.sync_segment(*number, writer)?;
        // Every segment is synced: the background syncer's byte window starts afresh.
        *unsynced_bytes = 0;
        Counters::add(&self.counters.log_syncs, 1);
        Ok(())
    }

    /// Makes a closed segment durable with a durable marker at its end stating all of it
    /// (so that damage anywhere in it is told from a tail at the next open): a sync, the
    /// marker, and a sync that makes the marker durable. A sealed segment needs nothing.
    /// The caller holds the segments' mutex; a failure poisons the database.
    pub(crate) fn seal_closed(&self, closed: &mut ClosedSegment) -> Result<()> {
        if closed.sealed {
            return Ok(());
        }
        self.sync_segment(closed.number, &mut closed.writer)?;
        self.seal_segment(closed.number, &mut closed.writer)?;
        self.sync_segment(closed.number, &mut closed.writer)?;
        Counters::add(&self.counters.log_syncs, 2);
        closed.sealed = true;
        Ok(())
    }

    /// Syncs the closed segments with unsynced bytes, for a synced group about to sync the
    /// active segment: a synced write must not depend on an older write that a power loss
    /// can still take (recovery keeps a prefix of the log). Usually there is none: the
    /// background sync or an earlier synced group got there first.
    pub(crate) fn sync_closed_segments(&self) -> Result<()> {
        let mut segments = lock(&self.segments);
        for closed in &mut segments.closed {
            if closed.writer.synced() < closed.writer.len() {
                self.sync_segment(closed.number, &mut closed.writer)?;
                Counters::add(&self.counters.log_syncs, 1);
            }
        }
        Ok(())
    }

    /// The sync of close. Taking the log mutex waits for the group being logged; no later
    /// group is assigned (leaders check `closed` under it).
    ///
    /// Everything is synced (each closed segment gets its marker then); the active segment
    /// then ends in a marker that says all of it is durable, so damage anywhere in it is
    /// told from a tail at the next open (`wal` module docs), and a second sync makes the
    /// marker durable, and the closed segments' too.
    pub(crate) fn sync_for_close(&self) -> Result<()> {
        let mut log = lock(&self.log);
        self.sync_locked(&mut log)?;
        let number = log.number;
        self.seal_segment(number, &mut log.writer)?;
        // The reserved room of the active segment goes back before that sync, so it also
        // makes the shorter length durable. A failure only leaves a zero tail, which the
        // next open reads past.
        let _ = log.writer.trim();
        self.sync_locked(&mut log)
    }

    /// Counts `bytes` appended by an unsynced group into the log's unsynced count, and
    /// wakes the syncer when they take it past `wal_bytes_per_sync`.
    pub(crate) fn note_unsynced(&self, log: &mut LogState, bytes: u64) {
        if log.count_unsynced(bytes, self.options.wal_bytes_per_sync) {
            self.log_sync.request();
        }
    }

    /// Runs a round of the background sync in the calling thread if a leader crossed the
    /// byte bound since the last one, for a database without background threads
    /// (`Options::manual_background`). Returns whether it ran one.
    pub(crate) fn log_sync_inline(&self) -> bool {
        let requested = self.log_sync.take_request();
        if requested {
            self.background_sync(&mut Vec::new());
        }
        requested
    }

    /// Stops the syncer (close). Its round in progress, if any, completes first.
    pub(crate) fn stop_log_syncer(&self) {
        self.log_sync.shut_down();
    }

    /// Syncs `writer`, the writer of segment `number`, for a holder of the log mutex,
    /// through the sync gate; refuses with `Poisoned` if the database is poisoned by the
    /// time the gate is held, and poisons it if the sync fails.
    pub(crate) fn sync_segment(&self, number: u64, writer: &mut LogWriter) -> Result<()> {
        let _gate = self.log_sync.enter();
        if let Some(err) = self.poison_error() {
            return Err(err);
        }
        writer.sync().map_err(|err| {
            let name = log_path(&self.dir, number);
            self.poison(Error::io(
                format_args!("syncing log {}", name.display()),
                err,
            ))
        })
    }

    /// Appends to the segment `number` the marker stating its last sync (see
    /// [`LogWriter::seal`]), for a segment that takes no more records; a failure poisons
    /// the database.
    pub(crate) fn seal_segment(&self, number: u64, writer: &mut LogWriter) -> Result<()> {
        writer.seal().map_err(|err| {
            let name = log_path(&self.dir, number);
            self.poison(Error::io(
                format_args!("appending to log {}", name.display()),
                err,
            ))
        })
    }

    /// One round of the background sync (see the module documentation). `syncers` holds
    /// the syncers of earlier rounds, by segment number; it is pruned to the live ones.
    pub(crate) fn background_sync(&self, syncers: &mut Vec<(u64, Arc<dyn FileSyncer>)>) {
        let Some(jobs) = self.take_stock(syncers) else {
            return;
        };
        if jobs.is_empty() {
            return;
        }
        {
            let _gate = self.log_sync.enter();
            // A sync under the log mutex may have failed meanwhile: its data is not to be
            // synced again.
            if self.is_poisoned() {
                return;
            }
            for (number, syncer, _) in &jobs {
                if let Err(err) = syncer.sync_data() {
                    let name = log_path(&self.dir, *number);
                    let _ = self.poison(Error::io(
                        format_args!("syncing log {} in the background", name.display()),
                        err,
                    ));
                    return;
                }
                Counters::add(&self.counters.log_background_syncs, 1);
            }
        }
        let mut log = lock(&self.log);
        let mut segments = lock(&self.segments);
        for (segment, _, len) in jobs {
            if segment == log.number {
                log.writer.note_synced(len);
            } else if let Some(closed) = segments.closed.iter_mut().find(|s| s.number == segment) {
                closed.writer.note_synced(len);
            }
        }
    }

    /// Under the log mutex: zeroes the unsynced count and returns, for every live segment
    /// with unsynced bytes, what [`Shared::background_sync`] syncs without the mutex.
    /// If one segment's file has no syncer, every segment of the round is synced here,
    /// oldest first, and no job is returned. `None` if there is nothing to do, or the
    /// database is (or just got) poisoned.
    ///
    /// Every round first drops the syncers of segments that are deleted, also when
    /// nothing is unsynced: their descriptors would otherwise keep the deleted files' space
    /// allocated until the next memtable switch.
    fn take_stock(&self, syncers: &mut Vec<(u64, Arc<dyn FileSyncer>)>) -> Option<Vec<Job>> {
        let mut log = lock(&self.log);
        if self.is_poisoned() {
            return None;
        }
        let mut closed = lock(&self.segments);
        let LogState {
            writer,
            number,
            unsynced_bytes,
            ..
        } = &mut *log;
        syncers.retain(|(segment, _)| {
            *segment == *number || closed.closed.iter().any(|s| s.number == *segment)
        });
        if *unsynced_bytes == 0 {
            return None;
        }
        *unsynced_bytes = 0;
        let mut segments: Vec<(u64, &mut LogWriter)> = closed
            .closed
            .iter_mut()
            .map(|s| (s.number, &mut s.writer))
            .chain(std::iter::once((*number, writer)))
            .filter(|(_, writer)| writer.synced() < writer.len())
            .collect();
        let mut jobs = Vec::with_capacity(segments.len());
        let mut inline = false;
        for (segment, writer) in &mut segments {
            let segment = *segment;
            let cached = syncers
                .iter()
                .find(|(n, _)| *n == segment)
                .map(|(_, s)| Arc::clone(s));
            // A file that cannot give a syncer now (none, or no descriptor to spare) is
            // synced under the mutex; the next round asks again.
            let syncer = cached.or_else(|| {
                let fresh = writer.syncer().ok().flatten()?;
                syncers.push((segment, Arc::clone(&fresh)));
                Some(fresh)
            });
            // Unmapped first, the pages are written back without a TLB flush each.
            writer.discard_written();
            match syncer {
                Some(syncer) => jobs.push((segment, syncer, writer.len())),
                None => inline = true,
            }
        }
        if inline {
            // Older segments are synced before newer ones (a newer one's durable marker
            // stands for them too), so a round with a segment synced under the mutex syncs
            // them all here, in order.
            for (segment, writer) in segments {
                self.sync_segment(segment, writer).ok()?;
                Counters::add(&self.counters.log_background_syncs, 1);
            }
            return Some(Vec::new());
        }
        Some(jobs)
    }
}
