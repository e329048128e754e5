//! [`Snapshots`]: the registry of the live snapshots' sequence numbers, which flushes and
//! compactions read to keep every version a snapshot can see.

use std::collections::BTreeMap;
use std::sync::Mutex;

use floe_core::SeqNo;

use crate::sync::lock;

/// The sequence numbers of the live snapshots, with how many snapshots hold each.
#[derive(Debug, Default)]
pub(crate) struct Snapshots {
    live: Mutex<BTreeMap<SeqNo, usize>>,
}

impl Snapshots {
    /// Registers a snapshot at the sequence number `visible` returns, read under the
    /// registry lock: so a flush or compaction that reads the registry after this keeps
    /// the snapshot's versions, and one that read it before only had inputs at or below
    /// that number (it takes its inputs before the registry). Returns the number.
    pub(crate) fn register(&self, visible: impl FnOnce() -> SeqNo) -> SeqNo {
        let mut live = lock(&self.live);
        let seqno = visible();
        *live.entry(seqno).or_insert(0) += 1;
        seqno
    }

    /// Releases one snapshot at `seqno`.
    pub(crate) fn release(&self, seqno: SeqNo) {
        let mut live = lock(&self.live);
        if let Some(count) = live.get_mut(&seqno) {
            *count -= 1;
            if *count == 0 {
                live.remove(&seqno);
            }
        }
    }

    /// The sequence numbers of the live snapshots, ascending.
    pub(crate) fn live(&self) -> Vec<SeqNo> {
        lock(&self.live).keys().copied().collect()
    }
}
