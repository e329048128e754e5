//! Loom model of the in-order publication of sequence numbers (`src/write/publish.rs`).
//!
//! Property: no reader sees sequence number `s` as visible before every batch up to `s` is
//! fully inserted. Writers "insert" by setting one flag per sequence number (Relaxed, like
//! the memtable's own publication, which is ordered only through `visible`); a reader loads
//! `visible` and checks every flag up to it. The broken variant publishes each batch as
//! soon as it is inserted (a `fetch_max`, without waiting for its predecessors), and the
//! model must catch it.
//!
//! The model drives the engine's own [`Publisher`], which the crate exposes as
//! `floe_engine::loom` when it is built with `--cfg floe_loom`, against loom's primitives.
//!
//! Run: `cargo xtask loom` (or `RUSTFLAGS="--cfg floe_loom --cfg crossbeam_loom" cargo
//! test -p floe-engine --release --test loom_publish`).

#![cfg(floe_loom)]

use floe_engine::loom::Publisher;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use loom::thread;

/// The two operations the model drives.
trait Publish: Send + Sync + 'static {
    fn complete(&self, first: u64, last: u64);
    fn visible(&self) -> u64;
}

impl Publish for Publisher {
    fn complete(&self, first: u64, last: u64) {
        Publisher::complete(self, first, last);
    }
    fn visible(&self) -> u64 {
        Publisher::visible(self)
    }
}

/// Publishes each batch as soon as it is inserted: a later batch can become visible
/// while an earlier one is still being inserted.
struct Broken {
    visible: AtomicU64,
}

impl Publish for Broken {
    fn complete(&self, _first: u64, last: u64) {
        self.visible.fetch_max(last, Ordering::Release);
    }
    fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }
}

/// Batches as a leader assigns them: 1..=1, 2..=3 and 4..=4, each inserted by its own
/// writer, so that a batch can park behind one predecessor or two.
const BATCHES: [(u64, u64); 3] = [(1, 1), (2, 3), (4, 4)];

/// The last sequence number of [`BATCHES`].
const LAST: u64 = 4;

fn model<P: Publish>(make: fn() -> P) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(move || {
        let publisher = Arc::new(make());
        let inserted: Arc<Vec<AtomicBool>> =
            Arc::new((0..=LAST).map(|_| AtomicBool::new(false)).collect());
        let writers: Vec<_> = BATCHES
            .iter()
            .map(|&(first, last)| {
                let publisher = Arc::clone(&publisher);
                let inserted = Arc::clone(&inserted);
                thread::spawn(move || {
                    for seqno in first..=last {
                        inserted[seqno as usize].store(true, Ordering::Relaxed);
                    }
                    publisher.complete(first, last);
                })
            })
            .collect();
        // The reader: whatever is visible must be fully inserted.
        let visible = publisher.visible();
        for seqno in 1..=visible {
            assert!(
                inserted[seqno as usize].load(Ordering::Relaxed),
                "sequence number {visible} is visible but {seqno} is not inserted"
            );
        }
        for writer in writers {
            writer.join().unwrap();
        }
        assert_eq!(publisher.visible(), LAST);
    });
}

#[test]
fn publication_is_in_order() {
    // Without the spin, which adds no state to the protocol (see `Publisher::spinning`).
    model(|| Publisher::new(0).spinning(false));
}

#[test]
fn wait_for_returns_only_once_everything_up_to_it_is_visible() {
    loom::model(|| {
        let publisher = Arc::new(Publisher::new(0));
        let writer = {
            let publisher = Arc::clone(&publisher);
            thread::spawn(move || publisher.complete(1, 2))
        };
        publisher.wait_for(2);
        assert_eq!(publisher.visible(), 2);
        writer.join().unwrap();
    });
}

#[test]
fn the_model_catches_out_of_order_publication() {
    let caught = std::panic::catch_unwind(|| {
        model(|| Broken {
            visible: AtomicU64::new(0),
        });
    });
    assert!(caught.is_err(), "loom did not find the broken publication");
}
