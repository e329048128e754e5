//! The size account against the allocator: a counting global allocator measures what the
//! memtable really allocates per entry, and the charge must match it.
//!
//! Memory is estimated as glibc's malloc uses it: each allocation takes its size plus an
//! 8-byte header, rounded up to 16, and at least 32 bytes.
#![cfg(not(floe_loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use floe_memtable::{ENTRY_OVERHEAD, Memtable, charge};

struct Counting;

static REQUESTED: AtomicUsize = AtomicUsize::new(0);
static FOOTPRINT: AtomicUsize = AtomicUsize::new(0);

fn footprint(size: usize) -> usize {
    (size + 8).div_ceil(16).max(2) * 16
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        REQUESTED.fetch_add(layout.size(), Ordering::Relaxed);
        FOOTPRINT.fetch_add(footprint(layout.size()), Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        REQUESTED.fetch_sub(layout.size(), Ordering::Relaxed);
        FOOTPRINT.fetch_sub(footprint(layout.size()), Ordering::Relaxed);
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
    // chunks are a sixteenth of the capacity, so the unused tail of the last one is
    // measured in the proportion a full memtable has it.
    let memtable = Memtable::new(count as usize * charge(&vec![0; key_len], &vec![0; value_len]));
    let guard = memtable.enter().unwrap();
    let (requested, footprint) = (
        REQUESTED.load(Ordering::Relaxed),
        FOOTPRINT.load(Ordering::Relaxed),
    );
    for i in 0..count {
        let mut key = vec![0u8; key_len];
        key[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        guard
            .put(Bytes::from(key), i + 1, Bytes::from(vec![7u8; value_len]))
            .unwrap();
    }
    let requested = REQUESTED.load(Ordering::Relaxed) - requested;
    let footprint = FOOTPRINT.load(Ordering::Relaxed) - footprint;
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
