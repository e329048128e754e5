//! [`MemoryBudget`]: the bytes held by the active memtables of every keyspace together,
//! which the write path compares with `Options::db_write_buffer_size` (see `freeze.rs`).
//!
//! The count is kept without touching the memtables: a commit leader adds each group's
//! charge under the log mutex (one add per group), and a memtable switch, also under the
//! log mutex and after every assigned batch is published, takes the frozen memtable's
//! size off. A writer reads it with one relaxed load after each write; only when it
//! reads the budget reached does it take the log mutex, wait for every assigned batch,
//! and set the count to the exact sum of the active memtables' sizes before it decides.
//! So the count may run ahead of the truth (a batch whose keyspace was dropped meanwhile
//! is charged but never inserted) but never falls behind it for long.
//!
//! Every change of the count (an add, a take-off, a set) is made by a holder of the log
//! mutex, so none can race another: each is a relaxed load and store, without the locked
//! read-modify-write of a `fetch_add`, which a commit leader would otherwise pay once per
//! group. Readers load it relaxed.

use std::sync::atomic::{AtomicUsize, Ordering};

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct MemoryBudget {
    used: AtomicUsize,
}

impl MemoryBudget {
    /// Adds `bytes` charged to active memtables. The caller holds the log mutex.
    pub(crate) fn add(&self, bytes: usize) {
        let used = self.used.load(Ordering::Relaxed);
        self.used
            .store(used.saturating_add(bytes), Ordering::Relaxed);
    }

    /// Takes off `bytes` that left the active memtables (a switch or a dropped keyspace).
    /// The caller holds the log mutex.
    pub(crate) fn sub(&self, bytes: usize) {
        let used = self.used.load(Ordering::Relaxed);
        self.used
            .store(used.saturating_sub(bytes), Ordering::Relaxed);
    }

    /// The bytes counted.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Sets the count to the exact sum, measured by a holder of the log mutex with every
    /// assigned batch published.
    pub(crate) fn set(&self, bytes: usize) {
        self.used.store(bytes, Ordering::Relaxed);
    }
}
