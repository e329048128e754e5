//! [`LogState`]: what only the holder of the log mutex may touch: the active log segment
//! and the sequence-number counter. (The older segments still needed are in
//! [`crate::write::Segments`], which flushes reach without the log mutex.)
//!
//! Holding the log mutex is also what the freeze mutex of the design is: a memtable switch
//! (`freeze.rs`) happens only between commit groups, so a leader always appends to the
//! segment of the memtable it hands out.

use std::io;

use floe_core::SeqNo;

use crate::wal::LogWriter;
use crate::write::batch::encode_group;
use crate::write::queue::{Group, MAX_GROUP_BYTES};

/// The group record buffer is given back after a group larger than this (one huge batch
/// in a group must not pin its memory).
const MAX_RETAINED_GROUP_RECORD: usize = 2 * MAX_GROUP_BYTES;

/// The log mutex's data (see the module docs).
#[derive(Debug)]
pub(crate) struct LogState {
    /// The writer of the active segment, which every commit group appends to.
    pub(super) writer: LogWriter,
    /// The active segment's number (equal to `State::log_number` of the latest state).
    pub(super) number: u64,
    /// The next sequence number to assign.
    pub(super) next_seqno: SeqNo,
    /// Log bytes appended without a sync since the background syncer last took stock or
    /// `Shared::sync` synced every segment; zero means every segment is synced (or the
    /// database is poisoned). A leader that takes it past `wal_bytes_per_sync` wakes the
    /// syncer (see `log_sync.rs`).
    pub(super) unsynced_bytes: u64,
    /// Where a commit group of several batches is encoded as one log record (see
    /// [`encode_group`]); kept between groups so that it is allocated once.
    group_record: Vec<u8>,
}

impl LogState {
    /// The log of a database just opened: `writer` appends to segment `number`, and the
    /// next batch gets sequence number `next_seqno`.
    pub(crate) fn new(writer: LogWriter, number: u64, next_seqno: SeqNo) -> LogState {
        LogState {
            writer,
            number,
            next_seqno,
            unsynced_bytes: 0,
            group_record: Vec::new(),
        }
    }

    /// The active segment's number.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// Appends the batches of `group`, stamped with consecutive sequence numbers from
    /// `first`, to the active segment with one write; returns how many bytes that
    /// appended.
    ///
    /// Several batches become one record whose header is the group's first sequence
    /// number and total count, followed by every batch's operations in order: a valid
    /// batch payload, which replay applies as one. That makes the group atomic in the log
    /// as a whole, which loses nothing, since no batch of it is acknowledged before all of
    /// it is logged, and saves a fragment header and a batch header per extra batch (11
    /// bytes or so, a tenth of a small write's record; RocksDB merges its write groups
    /// the same way).
    pub(super) fn append_group(&mut self, first: SeqNo, group: &Group) -> io::Result<u64> {
        let LogState {
            writer,
            group_record,
            ..
        } = self;
        let before = writer.len();
        if group.len() == 1 {
            writer.append(group.batches().map(|batch| batch.payload()))?;
        } else if encode_group(first, group.batches(), group_record) {
            let appended = writer.append([&group_record[..]]);
            if group_record.capacity() > MAX_RETAINED_GROUP_RECORD {
                *group_record = Vec::new();
            }
            appended?;
        } else {
            // A total count beyond the header's 32 bits: one record per batch.
            writer.append(group.batches().map(|batch| batch.payload()))?;
        }
        Ok(writer.len() - before)
    }

    /// Counts `bytes` appended without a sync; returns whether they took the count past
    /// `limit` (never, when `limit` is 0: the byte bound is off).
    pub(super) fn count_unsynced(&mut self, bytes: u64, limit: u64) -> bool {
        let before = self.unsynced_bytes;
        self.unsynced_bytes = before.saturating_add(bytes);
        limit > 0 && before < limit && self.unsynced_bytes >= limit
    }

    /// Makes `writer` of segment `number` the active segment; returns the old one's
    /// writer and number.
    pub(super) fn switch_segment(&mut self, number: u64, writer: LogWriter) -> (LogWriter, u64) {
        let old_writer = std::mem::replace(&mut self.writer, writer);
        let old_number = std::mem::replace(&mut self.number, number);
        (old_writer, old_number)
    }
}
