//! loom models of the range tombstone cache of [`RangeTombstones`]: a reader gets every
//! tombstone whose insert returned before its read started (a plain insert and a
//! duplicate one), and once frozen the fragments never change; and three faulty read
//! paths that loom shows to break it: the generation loaded after collecting, loaded
//! `Relaxed`, and a build published without comparing generations.
//!
//! The models drive the real protocol code. Under `--cfg floe_loom` its skiplist and its
//! arc-swap cell are stand-ins made of loom primitives (`src/range_del.rs`, `mod seam`),
//! so loom sees every ordering the protocol relies on.
//!
//! Run with `RUSTFLAGS="--cfg floe_loom --cfg crossbeam_loom" cargo test -p floe-memtable
//! --release --test loom_range_del` (what `cargo xtask loom` does).
#![cfg(floe_loom)]

use std::sync::Arc as StdArc;

use floe_core::range_del::Fragments;
use floe_memtable::RangeTombstones;
use floe_testkit::Executions;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};

/// A read path of [`RangeTombstones`]: the real one or a faulty one.
type Read = fn(&RangeTombstones) -> Option<StdArc<Fragments>>;

/// Whether `fragments` holds the tombstone at `seqno` covering `key`.
fn holds(fragments: Option<&StdArc<Fragments>>, key: &[u8], seqno: u64) -> bool {
    fragments.is_some_and(|f| f.max_covering(key, seqno) == Some(seqno))
}

/// What one execution saw, checked once every loom object is gone.
struct Seen {
    /// Whether the reader saw the writer done before it read, and what it read.
    reader: (bool, Option<StdArc<Fragments>>),
    /// Whether the reader saw the duplicate writer done before it read.
    reader_saw_duplicate: bool,
    /// The main thread's reads after the freeze: before and after joining the reader.
    frozen: (Option<StdArc<Fragments>>, Option<StdArc<Fragments>>),
}

/// Tombstone 1, `[a, c)`, is inserted (and, with `warm`, read into the cache) before the
/// threads start. A writer inserts tombstone 2, `[b, d)`, and then says it is done; with
/// `duplicate`, a second writer inserts tombstone 2 again and says so too. A reader
/// checks whether they are done and then reads with `read`. The main thread joins the
/// writers, freezes, reads, joins the reader and reads again.
fn model(executions: &Executions, read: Read, warm: bool, duplicate: bool, preemptions: usize) {
    let counter = executions.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.check(move || {
        counter.record();
        let set = Arc::new(RangeTombstones::new());
        set.insert(b"a", Some(b"c"), 1);
        if warm {
            drop(set.fragments());
        }
        let done = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
        let writers: Vec<_> = (0..1 + usize::from(duplicate))
            .map(|i| {
                let (set, done) = (set.clone(), done.clone());
                loom::thread::spawn(move || {
                    set.insert(b"b", Some(b"d"), 2);
                    done[i].store(true, Ordering::Release);
                })
            })
            .collect();
        let reader = {
            let (set, done) = (set.clone(), done.clone());
            loom::thread::spawn(move || {
                let saw = done[0].load(Ordering::Acquire);
                let saw_duplicate = done[1].load(Ordering::Acquire);
                ((saw, read(&set)), saw_duplicate)
            })
        };
        for writer in writers {
            writer.join().unwrap();
        }
        set.freeze();
        let first = set.fragments();
        let (reader, reader_saw_duplicate) = reader.join().unwrap();
        let second = set.fragments();
        // Drop every loom object before asserting, so that a failing model unwinds cleanly.
        drop((set, done));
        check(Seen {
            reader,
            reader_saw_duplicate,
            frozen: (first, second),
        });
    });
}

fn check(seen: Seen) {
    let (saw_writer, read) = &seen.reader;
    assert!(
        holds(read.as_ref(), b"a", 1),
        "the reader missed a tombstone inserted before it started"
    );
    if *saw_writer || seen.reader_saw_duplicate {
        assert!(
            holds(read.as_ref(), b"c", 2),
            "the reader missed a tombstone whose insert had returned"
        );
    }
    let (first, second) = &seen.frozen;
    for frozen in [first, second] {
        assert!(
            holds(frozen.as_ref(), b"a", 1) && holds(frozen.as_ref(), b"c", 2),
            "a read after the freeze missed a tombstone"
        );
    }
    assert!(
        StdArc::ptr_eq(first.as_ref().unwrap(), second.as_ref().unwrap()),
        "the fragments of a frozen memtable changed"
    );
}

/// Runs a faulty variant's model and asserts that loom caught it.
fn caught(name: &str, read: Read, warm: bool, preemptions: usize) {
    let executions = Executions::start();
    let outcome = std::panic::catch_unwind(|| model(&executions, read, warm, false, preemptions));
    executions.report(name, preemptions);
    assert!(outcome.is_err(), "loom did not catch {name}");
}

#[test]
fn reader_sees_every_completed_insert() {
    let executions = Executions::start();
    model(&executions, RangeTombstones::fragments, false, false, 3);
    model(&executions, RangeTombstones::fragments, true, false, 3);
    executions.report("range_del writer + reader + freezer", 3);
}

#[test]
fn reader_sees_a_completed_duplicate_insert() {
    let executions = Executions::start();
    model(&executions, RangeTombstones::fragments, true, true, 3);
    executions.report("range_del 2 writers (duplicate) + reader + freezer", 3);
}

#[test]
fn generation_loaded_after_collecting_is_caught() {
    caught(
        "range_del broken (generation after collect)",
        RangeTombstones::fragments_generation_after_collect,
        false,
        3,
    );
}

#[test]
fn relaxed_generation_is_caught() {
    caught(
        "range_del broken (relaxed generation)",
        RangeTombstones::fragments_relaxed_generation,
        false,
        3,
    );
}

#[test]
fn unconditional_publish_is_caught() {
    caught(
        "range_del broken (unconditional publish)",
        RangeTombstones::fragments_unconditional_publish,
        false,
        3,
    );
}
