//! In-order publication of sequence numbers: a batch becomes visible to readers only when
//! every batch with a smaller sequence number is fully inserted into its memtable.
//!
//! Writers insert their batches concurrently and in any order, then call
//! [`Publisher::complete`]. The visible sequence number only moves forward over a
//! contiguous run of completed batches, so a reader that loads `visible` (Acquire) sees
//! every entry with a sequence number at or below it. A worked example: batches A = 1..=2,
//! B = 3..=3 and C = 4..=6 are assigned in that order. C finishes inserting first: it parks
//! `4 -> 6` and waits. A finishes: `visible` was 0, so A advances it to 2; 3 is not parked,
//! so it stops there. B finishes: it advances over 3, finds C's parked range at 4 and
//! advances to 6 in one store, then wakes C.
//!
//! The loom model of this protocol (with a broken variant it catches) is
//! `crates/floe-engine/tests/loom_publish.rs`; it compiles this very file.

use std::collections::BTreeMap;

use crate::sync::{AtomicU64, Condvar, Mutex, MutexGuard, Ordering};

/// The visible sequence number and the batches that completed ahead of a predecessor.
#[derive(Debug)]
pub(crate) struct Publisher {
    /// The largest sequence number `s` such that every batch up to `s` is fully inserted.
    /// Stored only under `parked`'s lock (so advances never race); loaded without it.
    visible: AtomicU64,
    /// The batches waiting for their turn, and who waits.
    parked: Mutex<Parked>,
    /// Signalled whenever `visible` advances and somebody waits.
    advanced: Condvar,
}

/// What [`Publisher::parked`] guards.
#[derive(Debug, Default)]
struct Parked {
    /// Completed batches that are not visible yet because an earlier batch is still being
    /// inserted: first sequence number -> last sequence number.
    ranges: BTreeMap<u64, u64>,
    /// Threads blocked on `advanced`. Counted under the lock, so an advance that sees zero
    /// skips the wake-up call (a system call) and still never strands a waiter: a thread
    /// counts itself before it releases the lock to wait.
    waiters: usize,
}

impl Publisher {
    /// A publisher whose visible sequence number starts at `visible`.
    pub(crate) fn new(visible: u64) -> Publisher {
        Publisher {
            visible: AtomicU64::new(visible),
            parked: Mutex::new(Parked::default()),
            advanced: Condvar::new(),
        }
    }

    /// The visible sequence number. Acquire pairs with the Release store in
    /// [`Publisher::complete`]: every memtable insert of a batch at or below the returned
    /// number happens-before this load returns.
    pub(crate) fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, Parked> {
        // A panic while holding this lock cannot leave the map inconsistent (every update
        // is a single insert or remove), so a poisoned lock is still usable.
        self.parked
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Records that the batch `first..=last` is fully inserted and returns once it is
    /// visible (so that a writer reads its own write as soon as its call returns).
    ///
    /// Every sequence number below `first` must belong to a batch that will also call
    /// `complete`, or this waits forever: the commit leader hands out sequence numbers
    /// only to batches whose log record was written.
    pub(crate) fn complete(&self, first: u64, last: u64) {
        debug_assert!(first <= last, "an empty batch is never published");
        let mut parked = self.lock();
        // `visible` is only stored under this lock, so a Relaxed load reads the latest.
        let before = self.visible.load(Ordering::Relaxed);
        let mut visible = before;
        if first == visible + 1 {
            // The common case, every batch completing in turn: no parking needed.
            visible = last;
        } else {
            parked.ranges.insert(first, last);
        }
        while let Some(end) = parked.ranges.remove(&(visible + 1)) {
            visible = end;
        }
        if visible != before {
            // Release: the inserts of every batch advanced over here happened-before this
            // store (each completing writer released this lock after its inserts, and we
            // acquired it), so a reader that Acquires `visible` sees all of them.
            self.visible.store(visible, Ordering::Release);
            if parked.waiters > 0 {
                self.advanced.notify_all();
            }
        }
        self.wait_locked(parked, last);
    }

    /// Waits until every sequence number up to `seqno` is visible, holding `parked`.
    fn wait_locked(&self, mut parked: MutexGuard<'_, Parked>, seqno: u64) {
        while self.visible.load(Ordering::Relaxed) < seqno {
            parked.waiters += 1;
            parked = self
                .advanced
                .wait(parked)
                .unwrap_or_else(|poison| poison.into_inner());
            parked.waiters -= 1;
        }
    }

    /// Waits until every sequence number up to `seqno` is visible.
    pub(crate) fn wait_for(&self, seqno: u64) {
        let parked = self.lock();
        self.wait_locked(parked, seqno);
    }
}

#[cfg(all(test, not(floe_loom)))]
mod tests {
    use std::sync::Arc;
    use std::thread;

    use super::*;

    #[test]
    fn visibility_advances_only_over_contiguous_batches() {
        let publisher = Arc::new(Publisher::new(0));
        let late = {
            let publisher = Arc::clone(&publisher);
            thread::spawn(move || publisher.complete(4, 6))
        };
        // The batch 4..=6 is parked behind 1..=3; it cannot be visible yet.
        while !publisher.lock().ranges.contains_key(&4) {
            thread::yield_now();
        }
        assert_eq!(publisher.visible(), 0);
        publisher.complete(1, 2);
        assert_eq!(publisher.visible(), 2);
        publisher.complete(3, 3);
        late.join().unwrap();
        assert_eq!(publisher.visible(), 6);
        publisher.wait_for(6);
    }
}
