//! loom models of the writer gate: no write is accepted after `freeze` returned, and
//! `freeze` never returns while a writer is inside; and a gate made of a separate flag and
//! counter without fences, which loom shows to let a write slip past the freeze.
//!
//! Run with `RUSTFLAGS="--cfg floe_loom --cfg crossbeam_loom" cargo test -p floe-memtable
//! --release --test loom_gate` (what `cargo xtask loom` does).
#![cfg(floe_loom)]

use floe_memtable::WriterGate;
use floe_testkit::Executions;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

trait Gate: Send + Sync + 'static {
    fn new() -> Self;
    fn try_enter(&self) -> bool;
    fn leave(&self);
    fn freeze(&self);
}

impl Gate for WriterGate {
    fn new() -> Self {
        WriterGate::new()
    }
    fn try_enter(&self) -> bool {
        WriterGate::try_enter(self)
    }
    fn leave(&self) {
        WriterGate::leave(self);
    }
    fn freeze(&self) {
        WriterGate::freeze(self);
    }
}

/// The broken gate: a FROZEN flag and a writer count in two words. The writer counts
/// itself and then checks the flag, the freezer sets the flag and then checks the count,
/// in the right order, but without a `SeqCst` fence between each side's store and load
/// both can read the other's old value (store buffering): the writer sees "open", the
/// freezer sees "no writer inside", and the write lands after the freeze.
struct FlagAndCounter {
    frozen: AtomicBool,
    writers: AtomicUsize,
}

impl Gate for FlagAndCounter {
    fn new() -> Self {
        FlagAndCounter {
            frozen: AtomicBool::new(false),
            writers: AtomicUsize::new(0),
        }
    }
    fn try_enter(&self) -> bool {
        self.writers.fetch_add(1, Ordering::Relaxed);
        if self.frozen.load(Ordering::Acquire) {
            self.writers.fetch_sub(1, Ordering::Release);
            return false;
        }
        true
    }
    fn leave(&self) {
        self.writers.fetch_sub(1, Ordering::Release);
    }
    fn freeze(&self) {
        self.frozen.store(true, Ordering::Release);
        while self.writers.load(Ordering::Acquire) != 0 {
            loom::thread::yield_now();
        }
    }
}

/// Each writer, if admitted, records a write inside the gate; the freezer freezes and
/// then reads every record, as a flush reads the memtable. The final check catches a
/// write the flush missed (accepted after `freeze` returned, or still in progress).
///
/// With `cells`, each write also goes to a loom `UnsafeCell`, and loom itself reports a
/// flush read that races with a write (a writer still inside when `freeze` returned). The
/// broken variant runs without them: loom reports such a race from inside its own code,
/// where the panic cannot unwind cleanly out of the model.
fn model<G: Gate>(executions: &Executions, writers: usize, preemptions: usize, cells: bool) {
    let counter = executions.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.check(move || {
        counter.record();
        let gate = Arc::new(G::new());
        let records: Arc<Vec<(AtomicBool, UnsafeCell<bool>)>> = Arc::new(
            (0..writers)
                .map(|_| (AtomicBool::new(false), UnsafeCell::new(false)))
                .collect(),
        );
        let handles: Vec<_> = (0..writers)
            .map(|i| {
                let (gate, records) = (gate.clone(), records.clone());
                loom::thread::spawn(move || {
                    if !gate.try_enter() {
                        return false;
                    }
                    records[i].0.store(true, Ordering::Relaxed);
                    if cells {
                        // SAFETY: only writer `i` writes cell `i`; loom checks the accesses.
                        records[i].1.with_mut(|cell| unsafe { *cell = true });
                    }
                    gate.leave();
                    true
                })
            })
            .collect();
        gate.freeze();
        let flushed: Vec<bool> = records
            .iter()
            .map(|(record, cell)| {
                let seen = record.load(Ordering::Relaxed);
                if cells {
                    // SAFETY: a read; loom reports it if it races with the writer's write.
                    let in_cell = cell.with(|cell| unsafe { *cell });
                    assert_eq!(seen, in_cell);
                }
                seen
            })
            .collect();
        let accepted: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let reopened = gate.try_enter();
        // Drop the loom objects before asserting, so that a failing model unwinds cleanly.
        drop((gate, records));
        assert_eq!(
            accepted, flushed,
            "a write was accepted but missed by the flush"
        );
        assert!(!reopened, "the gate opened again after freeze");
    });
}

#[test]
fn gate_one_writer() {
    let executions = Executions::start();
    model::<WriterGate>(&executions, 1, 3, true);
    executions.report("gate 1 writer + freezer", 3);
}

#[test]
fn gate_two_writers() {
    let executions = Executions::start();
    model::<WriterGate>(&executions, 2, 3, true);
    executions.report("gate 2 writers + freezer", 3);
}

#[test]
fn flag_and_counter_lets_a_write_past_the_freeze() {
    let executions = Executions::start();
    let outcome = std::panic::catch_unwind(|| model::<FlagAndCounter>(&executions, 1, 3, false));
    executions.report("gate broken (flag + counter, no fence)", 3);
    assert!(
        outcome.is_err(),
        "loom did not find the write that slips past the broken gate"
    );
}
