//! Several threads writing and reading one memtable at once: every acknowledged put is
//! readable, min and max are exact, capacity holds, readers never see a torn or missing
//! entry. Seeded; replay a run with `FLOE_SEED=<seed>`.
#![cfg(not(floe_loom))]

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use floe_memtable::{Error, Lookup, Memtable};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The value written for `key` at `seqno`: a checksum-like function of both, so a reader
/// can tell a torn or misattributed value from a real one.
fn value_for(key: &[u8], seqno: u64) -> Bytes {
    let mut value = Vec::with_capacity(key.len() + 8);
    value.extend_from_slice(&seqno.to_le_bytes());
    value.extend_from_slice(key);
    Bytes::from(value)
}

fn key_for(n: u64) -> Bytes {
    Bytes::from(format!("key{n:08}"))
}

#[test]
fn acknowledged_puts_are_readable_and_extremes_exact() {
    const WRITERS: u64 = 4;
    // Under Miri, which interprets every operation, a few dozen writes per thread.
    let per_writer: u64 = if cfg!(miri) { 30 } else { 3_000 };
    let seed = floe_testkit::seed("acknowledged_puts_are_readable_and_extremes_exact");
    let memtable = Arc::new(Memtable::new(64 << 20));
    let next_seqno = Arc::new(AtomicU64::new(1));
    let done = Arc::new(AtomicBool::new(false));

    // Readers check every pair they see against `value_for`, in both directions.
    let readers: Vec<_> = (0..2)
        .map(|reader| {
            let (memtable, done) = (memtable.clone(), done.clone());
            std::thread::spawn(move || {
                let mut scans = 0u64;
                while !done.load(Ordering::Acquire) || scans < 2 {
                    let items: Vec<_> = if reader == 0 {
                        memtable
                            .entries(Bound::Unbounded, Bound::Unbounded)
                            .collect()
                    } else {
                        memtable
                            .entries(Bound::Unbounded, Bound::Unbounded)
                            .rev()
                            .collect()
                    };
                    for window in items.windows(2) {
                        let ordered = if reader == 0 {
                            window[0].0 < window[1].0
                        } else {
                            window[0].0 > window[1].0
                        };
                        assert!(ordered, "entries out of order");
                    }
                    for (key, value) in &items {
                        assert_eq!(*value, value_for(&key.user_key, key.seqno), "torn entry");
                    }
                    scans += 1;
                }
                scans
            })
        })
        .collect();

    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (memtable, next_seqno) = (memtable.clone(), next_seqno.clone());
            std::thread::spawn(move || {
                let mut rng = SmallRng::seed_from_u64(seed ^ writer);
                let mut acknowledged = Vec::new();
                for _ in 0..per_writer {
                    // Keys interleave across writers, so writers race on neighbours.
                    let n = rng.random_range(0..per_writer) * WRITERS + writer;
                    let key = key_for(n);
                    let seqno = next_seqno.fetch_add(1, Ordering::Relaxed);
                    let guard = memtable.enter().unwrap();
                    guard
                        .put(key.clone(), seqno, value_for(&key, seqno))
                        .unwrap();
                    drop(guard);
                    // Acknowledged: readable at once at its own sequence number.
                    assert_eq!(
                        memtable.get(&key, seqno),
                        Some(Lookup::Value(value_for(&key, seqno)))
                    );
                    acknowledged.push((key, seqno));
                }
                acknowledged
            })
        })
        .collect();

    let acknowledged: Vec<(Bytes, u64)> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    done.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().unwrap() >= 2);
    }
    memtable.freeze();
    assert_eq!(memtable.len(), acknowledged.len());
    for (key, seqno) in &acknowledged {
        assert_eq!(
            memtable.get(key, *seqno),
            Some(Lookup::Value(value_for(key, *seqno)))
        );
    }
    let min = acknowledged.iter().map(|(k, _)| k).min().cloned();
    let max = acknowledged.iter().map(|(k, _)| k).max().cloned();
    assert_eq!(memtable.min_key(), min);
    assert_eq!(memtable.max_key(), max);
}

#[test]
fn concurrent_writers_never_pass_the_limits() {
    const WRITERS: u64 = 4;
    let seed = floe_testkit::seed("concurrent_writers_never_pass_the_limits");
    let memtable = Arc::new(Memtable::with_pages(4));
    // Enough writes to fill the four pages many times over, fewer under Miri.
    let per_writer = if cfg!(miri) { 100 } else { 2_000 };
    let next_seqno = Arc::new(AtomicU64::new(1));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (memtable, next_seqno) = (memtable.clone(), next_seqno.clone());
            std::thread::spawn(move || {
                let mut rng = SmallRng::seed_from_u64(seed ^ writer);
                let mut admitted = 0u64;
                let mut refused = 0u64;
                for _ in 0..per_writer {
                    // A small key space, so overwrites of held keys are common.
                    let key = key_for(rng.random_range(0..40));
                    let seqno = next_seqno.fetch_add(1, Ordering::Relaxed);
                    let guard = memtable.enter().unwrap();
                    match guard.put(key.clone(), seqno, value_for(&key, seqno)) {
                        Ok(()) => admitted += 1,
                        Err(Error::Full { .. }) => {
                            refused += 1;
                            // A refused write left nothing behind.
                            assert_eq!(
                                memtable
                                    .get(&key, seqno)
                                    .and_then(|l| match l {
                                        Lookup::Value(v) => Some(v),
                                        Lookup::Deleted => None,
                                    })
                                    .filter(|v| *v == value_for(&key, seqno)),
                                None
                            );
                        }
                        Err(other) => panic!("unexpected error {other}"),
                    }
                    assert!(memtable.approximate_size() <= memtable.hard_ceiling());
                }
                (admitted, refused)
            })
        })
        .collect();
    let (mut admitted, mut refused) = (0, 0);
    for writer in writers {
        let (a, r) = writer.join().unwrap();
        admitted += a;
        refused += r;
    }
    assert!(refused > 0, "the test must fill the memtable");
    assert_eq!(memtable.len() as u64, admitted);
    let charged: usize = memtable
        .entries(Bound::Unbounded, Bound::Unbounded)
        .map(|(k, v)| floe_memtable::charge(&k.user_key, &v))
        .sum();
    assert_eq!(memtable.approximate_size(), charged, "size account drifted");
    assert!(memtable.approximate_size() <= memtable.hard_ceiling());
}

#[test]
fn freeze_waits_for_writers_and_then_nothing_changes() {
    let memtable = Arc::new(Memtable::new(64 << 20));
    let next_seqno = Arc::new(AtomicU64::new(1));
    let writers: Vec<_> = (0..3)
        .map(|_| {
            let (memtable, next_seqno) = (memtable.clone(), next_seqno.clone());
            std::thread::spawn(move || {
                let mut accepted = 0usize;
                loop {
                    let Ok(guard) = memtable.enter() else {
                        return accepted;
                    };
                    let seqno = next_seqno.fetch_add(1, Ordering::Relaxed);
                    let key = key_for(seqno);
                    guard
                        .put(key.clone(), seqno, value_for(&key, seqno))
                        .unwrap();
                    accepted += 1;
                }
            })
        })
        .collect();
    let before_freeze = if cfg!(miri) { 50 } else { 1_000 };
    while memtable.len() < before_freeze {
        std::thread::yield_now();
    }
    memtable.freeze();
    let frozen_len = memtable.len();
    let frozen_size = memtable.approximate_size();
    let accepted: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(accepted, frozen_len, "a write landed after freeze returned");
    assert_eq!(memtable.len(), frozen_len);
    assert_eq!(memtable.approximate_size(), frozen_size);
    assert_eq!(memtable.enter().err(), Some(Error::Frozen));
}

/// Writers insert range tombstones while readers read the fragments: every tombstone whose
/// insert returned before a read started is in what the read returns. Each writer
/// publishes, after each insert returns, how many it has completed; a reader loads those
/// counts before it reads, and checks each of those tombstones.
#[test]
fn completed_range_tombstones_are_always_in_the_fragments() {
    const WRITERS: u64 = 4;
    let per_writer: u64 = if cfg!(miri) { 20 } else { 2_000 };
    let seed = floe_testkit::seed("completed_range_tombstones_are_always_in_the_fragments");
    let memtable = Arc::new(Memtable::new(64 << 20));
    let completed: Arc<Vec<AtomicU64>> =
        Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    // Tombstone `j` of writer `w`: a range around key `n` of its own, at a seqno of its
    // own, so that a reader can name it from `(w, j)` alone.
    let tombstone = |writer: u64, j: u64| {
        let seqno = j * WRITERS + writer + 1;
        let n = seqno.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 100_000;
        (key_for(n), key_for(n + 1 + n % 7), seqno)
    };

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (memtable, completed, done) = (memtable.clone(), completed.clone(), done.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !done.load(Ordering::Acquire) || reads < 2 {
                    let counts: Vec<u64> = completed
                        .iter()
                        .map(|c| c.load(Ordering::Acquire))
                        .collect();
                    let fragments = memtable.range_tombstones();
                    for (writer, &count) in (0..).zip(&counts) {
                        for j in 0..count {
                            let (start, _, seqno) = tombstone(writer, j);
                            let covering = fragments
                                .as_ref()
                                .and_then(|f| f.max_covering(&start, seqno));
                            assert_eq!(
                                covering,
                                Some(seqno),
                                "a read missed tombstone {j} of writer {writer}"
                            );
                        }
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();

    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (memtable, completed) = (memtable.clone(), completed.clone());
            std::thread::spawn(move || {
                let mut rng = SmallRng::seed_from_u64(seed ^ writer);
                for j in 0..per_writer {
                    let (start, end, seqno) = tombstone(writer, j);
                    let guard = memtable.enter().unwrap();
                    guard.insert_range_tombstone(&start, Some(&end), seqno);
                    // A point write now and then, so both skiplists grow side by side.
                    if rng.random_bool(0.2) {
                        guard
                            .put(start.clone(), seqno, value_for(&start, seqno))
                            .unwrap();
                    }
                    drop(guard);
                    completed[writer as usize].store(j + 1, Ordering::Release);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        let reads = reader.join().unwrap();
        println!("a reader read the fragments {reads} times");
        assert!(reads >= 2);
    }
    memtable.freeze();
    assert_eq!(
        memtable.range_tombstone_count(),
        (WRITERS * per_writer) as usize
    );
    let fragments = memtable.range_tombstones().unwrap();
    for writer in 0..WRITERS {
        for j in 0..per_writer {
            let (start, _, seqno) = tombstone(writer, j);
            assert_eq!(fragments.max_covering(&start, seqno), Some(seqno));
        }
    }
}
