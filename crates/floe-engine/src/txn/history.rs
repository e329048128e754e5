//! What commit validation knows of writes that left the memtables: the flushed memtables
//! themselves, kept while a live transaction began before their newest write.
//!
//! Validation asks, for each key or range a transaction read or wrote, whether any write
//! after the transaction's snapshot touched it. Writes still in a memtable of the state
//! answer that at once (every version carries its sequence number). A flush moves writes
//! into a table, where finding them would mean reading it; instead the flush hands the
//! memtable to this history *before* it installs the state without it, and the history
//! keeps it for as long as some live transaction began below its newest sequence number.
//! So validation, reading the state first and the history second, meets every write since
//! any live transaction's snapshot, in one or the other.
//!
//! The history is bounded by `Options::transaction_history_bytes`. Past it, the oldest
//! memtables go and the *floor* rises to the newest sequence number they held: a
//! transaction whose snapshot lies below the floor can no longer be validated and fails
//! with `Error::Conflict` when it commits writes, never commits wrongly.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use floe_core::SeqNo;
use floe_memtable::Memtable;

use crate::keyspace::KeyspaceId;
use crate::sync::lock;

/// A flushed memtable kept for validation.
#[derive(Clone, Debug)]
pub(crate) struct Flushed {
    pub(crate) keyspace: KeyspaceId,
    pub(crate) mem: Arc<Memtable>,
    /// The newest sequence number it holds.
    pub(crate) newest: SeqNo,
}

/// The live transactions' snapshots and the flushed memtables they may need.
#[derive(Debug)]
pub(crate) struct History {
    inner: Mutex<Inner>,
    /// The most bytes of memtables kept.
    limit: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// The snapshots of the live transactions that may commit writes, with a count each.
    live: BTreeMap<SeqNo, usize>,
    /// Flushed memtables, oldest first.
    kept: VecDeque<Flushed>,
    /// The bytes `kept` holds (approximate sizes of the memtables).
    bytes: usize,
    /// The newest sequence number of a memtable dropped while a transaction below it was
    /// live: transactions with a snapshot below it cannot be validated.
    floor: SeqNo,
}

impl History {
    /// An empty history keeping at most `limit` bytes of memtables.
    pub(crate) fn new(limit: usize) -> History {
        History {
            inner: Mutex::new(Inner::default()),
            limit,
        }
    }

    /// Registers a transaction at the snapshot `register` takes (and registers for reads),
    /// under the history lock: a flush that checks for live transactions after this keeps
    /// its memtable if it holds writes above the snapshot, and one that checked before had
    /// its writes all published when `register` ran, so at or below the snapshot.
    pub(crate) fn begin(&self, register: impl FnOnce() -> SeqNo) -> SeqNo {
        let mut inner = lock(&self.inner);
        let snapshot = register();
        *inner.live.entry(snapshot).or_insert(0) += 1;
        snapshot
    }

    /// Releases a transaction at `snapshot`, and the memtables no live transaction needs
    /// any more.
    pub(crate) fn end(&self, snapshot: SeqNo) {
        let mut inner = lock(&self.inner);
        if let Some(count) = inner.live.get_mut(&snapshot) {
            *count -= 1;
            if *count == 0 {
                inner.live.remove(&snapshot);
            }
        }
        inner.prune();
    }

    /// Keeps `flushed` if a live transaction began below its newest write. Called by a
    /// flush before it installs the state without the memtable.
    pub(crate) fn keep(&self, flushed: Flushed) {
        let mut inner = lock(&self.inner);
        let oldest = inner.live.keys().next().copied();
        if oldest.is_none_or(|oldest| oldest >= flushed.newest) {
            return;
        }
        inner.bytes += flushed.mem.approximate_size();
        inner.kept.push_back(flushed);
        while inner.bytes > self.limit {
            let Some(dropped) = inner.kept.pop_front() else {
                break;
            };
            inner.bytes -= dropped.mem.approximate_size();
            inner.floor = inner.floor.max(dropped.newest);
        }
    }

    /// The memtables of `keyspace` holding writes above `snapshot`, or `None` if writes
    /// above it may have been dropped (the snapshot lies below the floor).
    pub(crate) fn since(
        &self,
        keyspace: KeyspaceId,
        snapshot: SeqNo,
    ) -> Option<Vec<Arc<Memtable>>> {
        let inner = lock(&self.inner);
        if snapshot < inner.floor {
            return None;
        }
        Some(
            inner
                .kept
                .iter()
                .filter(|f| f.keyspace == keyspace && f.newest > snapshot)
                .map(|f| Arc::clone(&f.mem))
                .collect(),
        )
    }

    /// The bytes of memtables kept, for tests and stats.
    pub(crate) fn kept_bytes(&self) -> usize {
        lock(&self.inner).bytes
    }
}

impl Inner {
    /// Drops the memtables whose writes are all at or below every live snapshot.
    fn prune(&mut self) {
        match self.live.keys().next().copied() {
            None => {
                self.kept.clear();
                self.bytes = 0;
            }
            Some(oldest) => {
                let mut bytes = self.bytes;
                self.kept.retain(|f| {
                    let needed = f.newest > oldest;
                    if !needed {
                        bytes -= f.mem.approximate_size();
                    }
                    needed
                });
                self.bytes = bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flushed(newest: SeqNo) -> Flushed {
        let mem = Arc::new(Memtable::new(4096));
        mem.enter()
            .unwrap()
            .put(b"k".as_slice(), newest, b"v".as_slice())
            .unwrap();
        mem.freeze();
        Flushed {
            keyspace: 0,
            mem,
            newest,
        }
    }

    #[test]
    fn keeps_memtables_only_while_an_older_transaction_lives() {
        let history = History::new(1 << 20);
        history.keep(flushed(5));
        assert_eq!(history.kept_bytes(), 0, "no transaction: nothing kept");
        history.begin(|| 10);
        history.keep(flushed(8));
        assert_eq!(history.kept_bytes(), 0, "older than the transaction");
        history.keep(flushed(12));
        assert_eq!(history.since(0, 10).unwrap().len(), 1);
        assert_eq!(history.since(1, 10).unwrap().len(), 0);
        assert_eq!(history.since(0, 12).unwrap().len(), 0);
        history.end(10);
        assert_eq!(history.kept_bytes(), 0);
    }

    #[test]
    fn past_the_limit_the_floor_rises() {
        let one = flushed(1).mem.approximate_size();
        let history = History::new(one * 2);
        history.begin(|| 3);
        for newest in [4, 5, 6] {
            history.keep(flushed(newest));
        }
        // The memtable of 4 went: a transaction at 3 cannot be validated any more.
        assert!(history.since(0, 3).is_none());
        assert_eq!(history.since(0, 4).unwrap().len(), 2);
    }
}
