//! loom models of the memtable's bump [`Arena`]: allocations racing across a chunk switch
//! (between chunks at the cap, into a chunk twice the size of the exhausted one, and with
//! racers building chunks of different sizes), and large allocations racing on the
//! push-only list, never hand out overlapping bytes, every byte a thread writes is still
//! its own when the threads are done, and exactly the installed chunks are counted.
//!
//! Run with `RUSTFLAGS="--cfg floe_loom --cfg crossbeam_loom" cargo test -p floe-memtable
//! --release --test loom_arena` (what `cargo xtask loom` does).
#![cfg(floe_loom)]

use std::ptr::NonNull;

use floe_memtable::{Arena, MIN_CHUNK_SIZE};
use loom::sync::Arc;
use loom::thread;

/// A region an allocation returned: its address, its length and the byte written to it.
#[derive(Debug, Clone, Copy)]
struct Region {
    at: usize,
    len: usize,
    mark: u8,
}

/// Allocates `len` bytes and fills them with `mark`.
fn alloc_marked(arena: &Arena, len: usize, mark: u8) -> Region {
    let at: NonNull<u8> = arena.alloc(len);
    // SAFETY: the arena handed these `len` bytes to this call alone.
    unsafe { std::ptr::write_bytes(at.as_ptr(), mark, len) };
    Region {
        at: at.as_ptr() as usize,
        len,
        mark,
    }
}

/// Every region is disjoint from the others and still holds its own mark.
fn check(regions: &mut [Region]) {
    regions.sort_by_key(|r| r.at);
    for pair in regions.windows(2) {
        assert!(
            pair[0].at + pair[0].len <= pair[1].at,
            "overlapping allocations: {pair:?}"
        );
    }
    for region in regions.iter() {
        // SAFETY: the arena is alive and every writer has been joined.
        let bytes = unsafe { std::slice::from_raw_parts(region.at as *const u8, region.len) };
        assert!(
            bytes.iter().all(|&b| b == region.mark),
            "region {region:?} was overwritten"
        );
    }
}

/// Two threads make three allocations of 14 bytes each from `arena`; returns the regions.
fn race_small(arena: &Arc<Arena>) -> Vec<Region> {
    let other = {
        let arena = Arc::clone(arena);
        thread::spawn(move || {
            (0..3)
                .map(|i| alloc_marked(&arena, 14, 10 + i))
                .collect::<Vec<_>>()
        })
    };
    let mut regions: Vec<Region> = (0..3).map(|i| alloc_marked(arena, 14, 20 + i)).collect();
    regions.extend(other.join().expect("allocating thread"));
    regions
}

#[test]
fn allocations_racing_across_a_chunk_switch_never_overlap() {
    loom::model(|| {
        // Chunks of 64 bytes, already at the cap, and allocations of 14: four fit in a
        // chunk, so the six below force at least one switch, raced by both threads (and,
        // in some interleavings, two fresh chunks built at once, one of which must be
        // thrown away).
        let arena = Arc::new(Arena::new(MIN_CHUNK_SIZE));
        check(&mut race_small(&arena));
        // Exactly two chunks are installed, whatever the interleaving: a lost race frees
        // its chunk instead of counting it.
        assert_eq!(arena.chunk_sizes(), [MIN_CHUNK_SIZE, MIN_CHUNK_SIZE]);
        assert_eq!(arena.allocated_bytes(), 2 * MIN_CHUNK_SIZE);
    });
}

#[test]
fn allocations_racing_into_a_grown_chunk_never_overlap() {
    loom::model(|| {
        // As above, but the chunks may grow to 256 bytes: the chunk that replaces the
        // first is twice its size, whichever racer builds it.
        let arena = Arc::new(Arena::with_first_chunk(MIN_CHUNK_SIZE, 4 * MIN_CHUNK_SIZE));
        check(&mut race_small(&arena));
        assert_eq!(arena.chunk_sizes(), [MIN_CHUNK_SIZE, 2 * MIN_CHUNK_SIZE]);
        assert_eq!(arena.allocated_bytes(), 3 * MIN_CHUNK_SIZE);
    });
}

#[test]
fn racing_chunks_of_different_sizes_are_counted_once() {
    loom::model(|| {
        // Chunks start at 64 bytes and may grow to 1 KiB, so 200 bytes are still carved
        // from a chunk, but one of 256 bytes at least. One thread makes that allocation,
        // the other five of 14 bytes, four of which fill a 64-byte chunk. So the threads
        // race to install chunks of different sizes: 64 or 256 bytes as the first, and,
        // from a full first chunk, 128 (its double) or 256 bytes.
        let arena = Arc::new(Arena::with_first_chunk(MIN_CHUNK_SIZE, 16 * MIN_CHUNK_SIZE));
        let other = {
            let arena = Arc::clone(&arena);
            thread::spawn(move || alloc_marked(&arena, 200, 1))
        };
        let mut regions: Vec<Region> = (0..5).map(|i| alloc_marked(&arena, 14, 10 + i)).collect();
        regions.push(other.join().expect("allocating thread"));
        check(&mut regions);
        // The large request first: its chunk of 256 holds four small ones, and the fifth
        // needs a chunk of twice that. The small ones first: the large request follows
        // the first chunk with one of 256, before or after a chunk of 128 installed by the
        // fifth small request. Whichever racer wins, only installed chunks are counted.
        let sizes = arena.chunk_sizes();
        assert!(
            [&[256, 512][..], &[64, 256], &[64, 128, 256]].contains(&sizes.as_slice()),
            "unexpected chunks {sizes:?}"
        );
        assert_eq!(arena.allocated_bytes(), sizes.iter().sum::<usize>());
    });
}

#[test]
fn large_allocations_racing_on_the_list_are_all_kept() {
    loom::model(|| {
        // 40 bytes exceed a quarter chunk: each gets a block of its own, pushed on the
        // large-block list concurrently with a small allocation installing the first
        // chunk.
        let arena = Arc::new(Arena::new(MIN_CHUNK_SIZE));
        let other = {
            let arena = Arc::clone(&arena);
            thread::spawn(move || vec![alloc_marked(&arena, 40, 1), alloc_marked(&arena, 8, 2)])
        };
        let mut regions = vec![alloc_marked(&arena, 40, 3), alloc_marked(&arena, 8, 4)];
        regions.extend(other.join().expect("allocating thread"));
        check(&mut regions);
        assert_eq!(arena.chunk_sizes(), [MIN_CHUNK_SIZE]);
        assert_eq!(arena.allocated_bytes(), 40 + 40 + MIN_CHUNK_SIZE);
    });
}
