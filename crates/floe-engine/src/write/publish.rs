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
//! `crates/floe-engine/tests/loom_publish.rs`: under `--cfg floe_loom` the crate builds
//! this file against loom's primitives (through `crate::sync`) and re-exports
//! [`Publisher`] as `floe_engine::loom::Publisher`, so the model drives the very type the
//! write path uses. That is why the type and its methods are `pub`: in every other build
//! the module is crate-private.

use std::collections::BTreeMap;

use crate::sync::{AtomicU64, Condvar, Mutex, MutexGuard, Ordering, spin_until};

/// The visible sequence number and the batches that completed ahead of a predecessor.
#[derive(Debug)]
pub struct Publisher {
    /// The largest sequence number `s` such that every batch up to `s` is fully inserted.
    /// Stored only under `parked`'s lock (so advances never race); loaded without it.
    visible: AtomicU64,
    /// The batches waiting for their turn, and who waits.
    parked: Mutex<Parked>,
    /// Signalled whenever `visible` advances and somebody waits.
    advanced: Condvar,
    /// Whether a parked writer spins briefly before it blocks (see
    /// [`Publisher::spinning`]).
    spin: bool,
}

/// How long a parked writer spins for its predecessors before it blocks: several times
/// what inserting a small batch takes (about a microsecond), far less than a sleep and a
/// wake-up cost together.
const PUBLISH_SPIN: std::time::Duration = std::time::Duration::from_micros(20);

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
    pub fn new(visible: u64) -> Publisher {
        Publisher {
            visible: AtomicU64::new(visible),
            parked: Mutex::new(Parked::default()),
            advanced: Condvar::new(),
            spin: false,
        }
    }

    /// This publisher, with writers that park behind a predecessor spinning for up to
    /// [`PUBLISH_SPIN`] before they block, when `spin` (only worth it with more than one
    /// CPU, where the predecessor is inserting on another one meanwhile).
    ///
    /// Two writers of one commit group insert in parallel; when the second finishes
    /// first, without the spin it sleeps on the condition variable and is woken by the
    /// first a microsecond later: a futex wait and a wake-up, 4% of the CPU time of
    /// `overwrite` with two threads. The spin only reads `visible` (Acquire, pairing with the Release
    /// store that advances it, so the inserts up to it are seen); when it gives up, the
    /// writer takes the lock and waits exactly as without it. The loom model runs without
    /// the spin: it adds no state, only a shortcut to a return the wait would also reach.
    pub fn spinning(mut self, spin: bool) -> Publisher {
        self.spin = spin;
        self
    }

    /// The visible sequence number. Acquire pairs with the Release store in
    /// [`Publisher::complete`]: every memtable insert of a batch at or below the returned
    /// number happens-before this load returns.
    pub fn visible(&self) -> u64 {
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
    pub fn complete(&self, first: u64, last: u64) {
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
        if visible < last && self.spin {
            drop(parked);
            if self.spin_until_visible(last) {
                return;
            }
            parked = self.lock();
        }
        self.wait_locked(parked, last);
    }

    /// Spins until `seqno` is visible (true) or [`PUBLISH_SPIN`] passes (false).
    fn spin_until_visible(&self, seqno: u64) -> bool {
        spin_until(PUBLISH_SPIN, || {
            self.visible.load(Ordering::Acquire) >= seqno
        })
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

    /// Waits until every sequence number up to `seqno` is visible: spinning first, as a
    /// parked writer does, when the publisher spins (the commit leader waits here under
    /// the log mutex for the inserts of the groups before a transaction's, a few
    /// microseconds that a sleep and a wake-up would multiply).
    pub fn wait_for(&self, seqno: u64) {
        if self.visible.load(Ordering::Acquire) >= seqno
            || (self.spin && self.spin_until_visible(seqno))
        {
            return;
        }
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
        for spin in [false, true] {
            parks_until_predecessors_complete(spin);
        }
    }

    /// Four writers complete interleaved batches (writer `w` owns every fourth one); each
    /// sees its batch visible when `complete` returns, with and without the spin.
    #[test]
    fn concurrent_writers_see_their_batches_visible_on_return() {
        const WRITERS: u64 = 4;
        const BATCHES: u64 = 4000;
        for spin in [false, true] {
            let publisher = Arc::new(Publisher::new(0).spinning(spin));
            let writers: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let publisher = Arc::clone(&publisher);
                    thread::spawn(move || {
                        for batch in (w..BATCHES).step_by(WRITERS as usize) {
                            // Batch `b` holds sequence numbers 2b+1 and 2b+2.
                            publisher.complete(2 * batch + 1, 2 * batch + 2);
                            assert!(publisher.visible() >= 2 * batch + 2, "spin {spin}");
                        }
                    })
                })
                .collect();
            for writer in writers {
                writer.join().unwrap();
            }
            assert_eq!(publisher.visible(), 2 * BATCHES);
        }
    }

    fn parks_until_predecessors_complete(spin: bool) {
        let publisher = Arc::new(Publisher::new(0).spinning(spin));
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
