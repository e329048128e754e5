//! The writer gate: one atomic word holding a FROZEN bit and the count of writers inside,
//! so that freezing a memtable waits out every write already admitted and refuses the rest.
//!
//! # Protocol
//!
//! A writer enters with `fetch_add(1)`. If the word it replaced had FROZEN set, it backs
//! out with `fetch_sub(1)` and reports the gate closed. The freezer sets FROZEN with
//! `fetch_or` and then waits until the count reads zero.
//!
//! Every operation is a read-modify-write of the same word, so they are totally ordered
//! (the word's modification order), and each sees the effect of all before it. A writer
//! whose `fetch_add` comes before the freezer's `fetch_or` is counted, so the freezer waits
//! for it; a writer whose `fetch_add` comes after sees FROZEN and writes nothing. There is
//! no third case, which is exactly what two separate words (a flag and a counter) cannot
//! promise without `SeqCst` fences: each side can then miss the other's store.
//!
//! # Memory orderings
//!
//! * Leaving is a `Release` `fetch_sub`: the writer's memtable inserts happen before it.
//! * The freezer's wait loads with `Acquire`. The value it reads (zero) was written by the
//!   last read-modify-write in the word's modification order; every earlier `Release`
//!   decrement heads a release sequence that contains all later read-modify-writes, so the
//!   `Acquire` load synchronizes with every writer that left. When `freeze` returns, every
//!   admitted write happens before whatever the caller does next (a flush).
//! * Entering needs no ordering to be correct (the writer reads nothing the freezer wrote);
//!   it is `Acquire` so that a writer that is refused observes the freeze that refused it.
//! * Setting FROZEN is `AcqRel`; the bit itself only needs the modification order, the
//!   ordering documents that the freeze is a synchronization point.

use crate::sync::{AtomicUsize, Ordering, spin_loop, yield_now};

/// The FROZEN bit: the highest bit of the word. The count of writers inside uses the rest,
/// far more than there can ever be threads.
const FROZEN: usize = 1 << (usize::BITS - 1);

/// A gate that writers pass while it is open and that a freezer closes for good.
#[derive(Debug)]
pub struct WriterGate {
    state: AtomicUsize,
}

impl WriterGate {
    /// An open gate with no writer inside.
    #[must_use]
    pub fn new() -> WriterGate {
        WriterGate {
            state: AtomicUsize::new(0),
        }
    }

    /// Enters the gate; `false` if it is closed, in which case the caller is not inside.
    ///
    /// A `true` must be paired with exactly one [`WriterGate::leave`].
    #[must_use = "a writer that entered must leave"]
    pub fn try_enter(&self) -> bool {
        let previous = self.state.fetch_add(1, Ordering::Acquire);
        if previous & FROZEN != 0 {
            // Refused: undo the increment, which the freezer may be waiting on.
            self.state.fetch_sub(1, Ordering::Release);
            return false;
        }
        true
    }

    /// Leaves the gate after a successful [`WriterGate::try_enter`].
    pub fn leave(&self) {
        let previous = self.state.fetch_sub(1, Ordering::Release);
        debug_assert!(previous & !FROZEN != 0, "leave without enter");
    }

    /// Closes the gate and returns once no writer is inside. Idempotent.
    ///
    /// Writers spend only one memtable insert inside, so the wait spins briefly and then
    /// yields its time slice; freezing is rare and never on a read path.
    pub fn freeze(&self) {
        let mut state = self.state.fetch_or(FROZEN, Ordering::AcqRel) | FROZEN;
        let mut spins = 0u32;
        while state != FROZEN {
            if spins < 64 {
                spins += 1;
                spin_loop();
            } else {
                yield_now();
            }
            state = self.state.load(Ordering::Acquire);
        }
    }

    /// Whether [`WriterGate::freeze`] has been called (it may still be waiting).
    #[must_use]
    pub fn is_frozen(&self) -> bool {
        self.state.load(Ordering::Acquire) & FROZEN != 0
    }

    /// How many writers are inside right now (a snapshot, for tests and diagnostics).
    #[must_use]
    pub fn writers_inside(&self) -> usize {
        self.state.load(Ordering::Relaxed) & !FROZEN
    }
}

impl Default for WriterGate {
    fn default() -> WriterGate {
        WriterGate::new()
    }
}

#[cfg(all(test, not(floe_loom)))]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_freeze() {
        let gate = WriterGate::new();
        assert!(gate.try_enter());
        assert!(gate.try_enter());
        assert_eq!(gate.writers_inside(), 2);
        gate.leave();
        gate.leave();
        gate.freeze();
        assert!(gate.is_frozen());
        assert!(!gate.try_enter());
        assert_eq!(gate.writers_inside(), 0);
        gate.freeze();
        assert!(gate.is_frozen());
    }

    #[test]
    fn freeze_waits_for_the_writer_inside() {
        use std::sync::atomic::AtomicBool;
        let gate = WriterGate::new();
        let left = AtomicBool::new(false);
        assert!(gate.try_enter());
        std::thread::scope(|scope| {
            scope.spawn(|| {
                gate.freeze();
                // The writer below sets `left` before leaving; `freeze` must not return
                // earlier.
                assert!(left.load(std::sync::atomic::Ordering::Relaxed));
            });
            while !gate.is_frozen() {
                std::thread::yield_now();
            }
            left.store(true, std::sync::atomic::Ordering::Relaxed);
            gate.leave();
        });
    }
}
