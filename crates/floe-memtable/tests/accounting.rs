//! The size account against the allocator: a counting global allocator measures what the
//! memtable really allocates per entry, and the charge must match it; and a memtable that
//! holds one small entry allocates a few KiB, whatever its capacity.
//!
//! Memory is estimated as glibc's malloc uses it: each allocation takes its size plus an
//! 8-byte header, rounded up to 16, and at least 32 bytes. The counters are per thread, so
//! the tests of this file, which the harness runs side by side, do not count each other's
//! allocations (nothing a test measures is allocated or freed on another thread).
#![cfg(not(floe_loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use floe_memtable::{ENTRY_OVERHEAD, FIRST_CHUNK_SIZE, Memtable, charge};

struct Counting;

thread_local! {
    // Constant-initialized and without a destructor: reading them never allocates and
    // works at any point of a thread's life, as the allocator needs.
    static REQUESTED: Cell<usize> = const { Cell::new(0) };
    static FOOTPRINT: Cell<usize> = const { Cell::new(0) };
}

fn footprint(size: usize) -> usize {
    (size + 8).div_ceil(16).max(2) * 16
}

/// Adds `delta` (wrapping, so that negative amounts are two's complement) to a counter.
fn add(counter: &'static std::thread::LocalKey<Cell<usize>>, delta: usize) {
    counter.with(|c| c.set(c.get().wrapping_add(delta)));
}

/// This thread's (bytes requested, estimated footprint) so far; differences of two
/// readings are what the thread allocated in between.
fn counters() -> (usize, usize) {
    (REQUESTED.with(Cell::get), FOOTPRINT.with(Cell::get))
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(&REQUESTED, layout.size());
        add(&FOOTPRINT, footprint(layout.size()));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(&REQUESTED, layout.size().wrapping_neg());
        add(&FOOTPRINT, footprint(layout.size()).wrapping_neg());
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Inserts `count` entries whose keys and values are allocated in the window; returns
/// (bytes requested, estimated footprint, bytes charged).
fn measure(count: u64, key_len: usize, value_len: usize) -> (usize, usize, usize) {
    // Sized to hold exactly these entries, as a memtable is when it fills: the arena's
    // chunks grow to a sixteenth of the capacity, so the unused tail of the last one is
    // measured in the proportion a full memtable has it.
    let memtable = Memtable::new(count as usize * charge(&vec![0; key_len], &vec![0; value_len]));
    let guard = memtable.enter().unwrap();
    let (requested, footprint) = counters();
    for i in 0..count {
        let mut key = vec![0u8; key_len];
        key[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        guard
            .put(Bytes::from(key), i + 1, Bytes::from(vec![7u8; value_len]))
            .unwrap();
    }
    let (requested_after, footprint_after) = counters();
    let requested = requested_after.wrapping_sub(requested);
    let footprint = footprint_after.wrapping_sub(footprint);
    let charged = memtable.approximate_size();
    drop(guard);
    (requested, footprint, charged)
}

#[test]
fn charge_matches_allocated_memory() {
    // Fewer entries under Miri, which interprets every insert; the averages still hold.
    let count: u64 = if cfg!(miri) { 300 } else { 20_000 };
    for (key_len, value_len) in [(16, 100), (16, 1000), (64, 8)] {
        let (requested, footprint, charged) = measure(count, key_len, value_len);
        let payload = (key_len + value_len) as f64;
        let per_entry = |total: usize| total as f64 / count as f64;
        println!(
            "key {key_len} value {value_len}: requested {:.1} B/entry (overhead {:.1}), \
             footprint {:.1} B/entry (overhead {:.1}), charged {:.1} B/entry (overhead {ENTRY_OVERHEAD})",
            per_entry(requested),
            per_entry(requested) - payload,
            per_entry(footprint),
            per_entry(footprint) - payload,
            per_entry(charged),
        );
        assert_eq!(
            charged,
            count as usize * charge(&vec![0; key_len], &vec![0; value_len])
        );
        // The charge must track the footprint within 10% for these typical shapes.
        let ratio = charged as f64 / footprint as f64;
        assert!(
            (0.9..=1.1).contains(&ratio),
            "charged/footprint = {ratio:.3}"
        );
    }
}

#[test]
fn a_memtable_with_one_small_entry_allocates_a_few_kib() {
    // A first memtable registers this thread with the epoch collector, whose record would
    // otherwise be counted against the measured one.
    let warm = Memtable::new(1 << 20);
    warm.enter().unwrap().put(b"warm", 1, b"up").unwrap();
    drop(warm);
    let before = counters();
    let memtable = Memtable::new(64 << 20);
    memtable
        .enter()
        .unwrap()
        .put(Bytes::from(vec![1u8; 16]), 1, Bytes::from(vec![7u8; 100]))
        .unwrap();
    let after = counters();
    let (requested, footprint) = (
        after.0.wrapping_sub(before.0),
        after.1.wrapping_sub(before.1),
    );
    println!(
        "a 64 MiB memtable with one 16/100 entry: requested {requested} B, footprint {footprint} B"
    );
    assert_eq!(memtable.arena_bytes_allocated(), FIRST_CHUNK_SIZE);
    // The arena's first chunk, the skiplist's head and node, the two key-range slots and
    // bookkeeping of a few dozen bytes each.
    assert!(
        footprint <= FIRST_CHUNK_SIZE + 2048,
        "a memtable with one small entry holds {footprint} bytes"
    );
}

/// A range tombstone charges its start, its end and `ENTRY_OVERHEAD`, once: an empty range
/// and a replayed sequence number charge nothing. The memory it really takes is printed
/// (its node of the tombstone skiplist and one buffer holding start and end).
#[test]
fn range_tombstones_charge_start_end_and_the_entry_overhead() {
    use floe_memtable::range_tombstone_charge;

    let memtable = Memtable::new(1 << 20);
    let guard = memtable.enter().unwrap();
    guard.put(b"warm", 1, b"up").unwrap();
    let mut expected = memtable.approximate_size();
    guard.insert_range_tombstone(b"apple", Some(b"pear"), 2);
    expected += 5 + 4 + ENTRY_OVERHEAD;
    assert_eq!(memtable.approximate_size(), expected);
    assert_eq!(
        range_tombstone_charge(b"apple", Some(b"pear")),
        9 + ENTRY_OVERHEAD
    );
    guard.insert_range_tombstone(b"apple", Some(b"pear"), 2);
    guard.insert_range_tombstone(b"zz", Some(b"zz"), 3);
    guard.insert_range_tombstone(b"zz", Some(b"a"), 4);
    assert_eq!(range_tombstone_charge(b"zz", Some(b"a")), 0);
    assert_eq!(
        memtable.approximate_size(),
        expected,
        "no charge twice or for nothing"
    );
    guard.insert_range_tombstone(b"zz", None, 5);
    expected += 2 + ENTRY_OVERHEAD;
    assert_eq!(range_tombstone_charge(b"zz", None), 2 + ENTRY_OVERHEAD);
    assert_eq!(memtable.approximate_size(), expected);
    // Capacity is not checked: a full memtable still takes a tombstone from the log.
    let small = Memtable::with_pages(1);
    let writer = small.enter().unwrap();
    writer.put(vec![0u8; 4096], 1, b"").unwrap();
    let before = small.approximate_size();
    for seqno in 2..12 {
        writer.insert_range_tombstone(&[1u8; 100], None, seqno);
    }
    assert_eq!(
        small.approximate_size(),
        before + 10 * (100 + ENTRY_OVERHEAD)
    );
    assert!(small.approximate_size() > small.hard_ceiling());

    // The footprint of many tombstones of 16-byte bounds, against their charge.
    let count = if cfg!(miri) { 100u64 } else { 5_000 };
    let memtable = Memtable::new(64 << 20);
    let guard = memtable.enter().unwrap();
    let (_, footprint) = counters();
    for i in 0..count {
        let start = (i * 2).to_be_bytes().repeat(2);
        let end = (i * 2 + 1).to_be_bytes().repeat(2);
        guard.insert_range_tombstone(&start, Some(&end), i + 1);
    }
    let footprint = counters().1.wrapping_sub(footprint);
    let charged = memtable.approximate_size();
    assert_eq!(charged, count as usize * (32 + ENTRY_OVERHEAD));
    println!(
        "range tombstones of 16/16-byte bounds: footprint {:.1} B each, charged {:.1}",
        footprint as f64 / count as f64,
        charged as f64 / count as f64
    );
}
