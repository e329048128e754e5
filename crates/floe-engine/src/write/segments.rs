//! [`Segments`]: the log segments older than the active one that are still needed,
//! because some keyspace has writes in them that no table holds yet, with their writers,
//! so that syncs reach them too.
//!
//! All keyspaces share the log, and each keyspace flushes on its own, so a segment is
//! needed until every keyspace with a write in it has flushed that write
//! ([`crate::version::State::oldest_needed_log`]); the flush that moves that point deletes
//! the segments below it ([`Segments::remove_below`]).

use floe_core::SeqNo;

use crate::wal::LogWriter;

/// A segment that takes no more records.
#[derive(Debug)]
pub(crate) struct ClosedSegment {
    pub(crate) number: u64,
    /// The first sequence number it can hold (the next one when it was created).
    pub(crate) start_seqno: SeqNo,
    pub(crate) writer: LogWriter,
    /// Whether it ends in a durable marker stating all of it (see
    /// `Shared::seal_closed`): nothing more to sync.
    pub(crate) sealed: bool,
}

/// The closed segments still needed, and the active segment's number and first sequence
/// number (see the module docs). Under its own mutex, after `log` in the lock order.
#[derive(Debug)]
pub(crate) struct Segments {
    /// Ascending by number.
    pub(crate) closed: Vec<ClosedSegment>,
    active: (u64, SeqNo),
}

impl Segments {
    /// The segments of a database just opened: only the active one, `number`, whose first
    /// write gets `start_seqno`.
    pub(crate) fn new(number: u64, start_seqno: SeqNo) -> Segments {
        Segments {
            closed: Vec::new(),
            active: (number, start_seqno),
        }
    }

    /// A memtable switch: the active segment, written by `writer`, is closed, and segment
    /// `number`, whose first write gets `start_seqno`, becomes the active one.
    pub(crate) fn switch(&mut self, writer: LogWriter, number: u64, start_seqno: SeqNo) {
        let (old, old_start) = self.active;
        self.closed.push(ClosedSegment {
            number: old,
            start_seqno: old_start,
            writer,
            sealed: false,
        });
        self.active = (number, start_seqno);
    }

    /// The first sequence number segment `number` can hold, if it is live.
    pub(crate) fn start_seqno(&self, number: u64) -> Option<SeqNo> {
        if self.active.0 == number {
            return Some(self.active.1);
        }
        self.closed
            .iter()
            .find(|s| s.number == number)
            .map(|s| s.start_seqno)
    }

    /// The bytes of the closed segments.
    pub(crate) fn closed_bytes(&self) -> u64 {
        self.closed.iter().map(|s| s.writer.len()).sum()
    }

    /// Forgets the closed segments numbered below `number` (their writers close) and
    /// returns their numbers, for the caller to delete.
    pub(crate) fn remove_below(&mut self, number: u64) -> Vec<u64> {
        let split = self.closed.partition_point(|s| s.number < number);
        self.closed.drain(..split).map(|s| s.number).collect()
    }
}
