//! [`Arena`]: a lock-free bump allocator that holds the bytes of every memtable entry, so
//! that an entry costs one skiplist node and its key and value bytes, and no allocation of
//! its own.
//!
//! # The protocol
//!
//! Small allocations are carved from the *current chunk* by a compare-and-swap loop on the
//! chunk's `used` offset: every successful CAS moves the offset forward, and the CASes on
//! one atomic are totally ordered, so the ranges they hand out never overlap. The offset
//! never passes the chunk's end: an allocation that does not fit leaves it alone. That
//! thread then allocates a fresh chunk with its own allocation already reserved at the
//! start, links it to the exhausted one, and swaps it into `current` with a CAS *from the
//! exhausted chunk*: exactly one of several racing threads installs its chunk, the others
//! free theirs and carve from the winner's. Since `current` only ever moves from a chunk
//! to one that links back to it, following the links from `current` visits every chunk
//! ever installed.
//!
//! # Growth
//!
//! Chunks grow, so that an arena that holds little also allocates little (a database of
//! many keyspaces has a memtable per keyspace, most of them nearly empty). The first chunk
//! is [`FIRST_CHUNK_SIZE`] bytes, and each fresh chunk is twice the size of the exhausted
//! one it replaces, up to the arena's `chunk_size`; a fresh chunk is also at least the
//! allocation it is made for, rounded up to a power of two. Each chunk carries its own
//! size (its block's layout), and a racer computes its fresh chunk's size from the
//! exhausted chunk it read, so chunks built by racers may differ in size (one made for a
//! larger allocation): whichever wins, its own size is what is added to the count of
//! allocated bytes, and the losers' chunks were never counted. Reaching the full
//! `chunk_size` takes chunks that add up to about `chunk_size` themselves, so the growth
//! costs a large arena a few more chunk switches (eight from 4 KiB to 1 MiB) and the
//! small tails they leave.
//!
//! Allocations larger than a quarter of `chunk_size` get a block of their own, pushed on a
//! second, push-only list (a Treiber stack that is never popped, so it has no ABA
//! problem), which keeps the tail a full-size chunk wastes under a quarter of it.
//!
//! Memory is zeroed when allocated and freed only when the arena is dropped (which needs
//! `&mut`, so no allocation or reader can be in flight). The bytes a caller writes reach
//! other threads through whatever publishes the pointer (the skiplist's link, a `Release`
//! store): the arena orders only its own bookkeeping.
//!
//! The loom model `tests/loom_arena.rs` checks that concurrent allocations across chunk
//! switches (chunks at the cap, growing chunks, and racing chunks of different sizes) never
//! overlap, that exactly the installed chunks are counted, and that every block is freed
//! exactly once.

use std::alloc::{self, Layout};
use std::ptr::{self, NonNull};
use std::sync::Arc;

use bytes::Bytes;

use crate::sync::{AtomicPtr, AtomicUsize, Ordering};

/// An allocation larger than `chunk_size / LARGE_FRACTION` gets a block of its own.
const LARGE_FRACTION: usize = 4;

/// The smallest chunk an arena uses.
pub const MIN_CHUNK_SIZE: usize = 64;

/// The size of an arena's first chunk (a memory page), unless its `chunk_size` is smaller.
pub const FIRST_CHUNK_SIZE: usize = 4096;

/// A zeroed heap block, freed when the last handle to it goes (the arena's, or a sealed
/// [`Bytes`] handed out by [`Arena::sealed_blocks`]).
struct Block {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: a block is plain memory owned by this handle; which thread frees it does not
// matter, and every access to its bytes goes through raw pointers whose users order
// their own reads and writes (see the module documentation).
unsafe impl Send for Block {}
// SAFETY: as for `Send`: `&Block` only exposes the pointer, never the bytes.
unsafe impl Sync for Block {}

impl Block {
    /// A zeroed block of `len` bytes (one at least).
    fn new(len: usize) -> Block {
        let layout = Layout::from_size_align(len.max(1), 1)
            .unwrap_or_else(|_| alloc::handle_alloc_error(Layout::new::<u8>()));
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        Block { ptr, layout }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed` with this layout and is freed only here,
        // when the last handle to the block goes.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// A block and the bytes handed out of it so far. Its size is its block's, so the chunks
/// of one arena, which grow, and the dedicated blocks need no other record of their sizes.
struct Chunk {
    block: Arc<Block>,
    /// Bytes handed out from the start of the block; never above the block's size.
    used: AtomicUsize,
    /// The chunk installed before this one, or the large block pushed before this one;
    /// written once before the chunk is published and never changed.
    next: *mut Chunk,
}

impl Chunk {
    /// A chunk of `size` bytes whose first `reserved` bytes are already handed out.
    fn boxed(size: usize, reserved: usize, next: *mut Chunk) -> *mut Chunk {
        Box::into_raw(Box::new(Chunk {
            block: Arc::new(Block::new(size)),
            used: AtomicUsize::new(reserved),
            next,
        }))
    }

    fn base(&self) -> NonNull<u8> {
        self.block.ptr
    }

    fn size(&self) -> usize {
        self.block.layout.size()
    }

    /// Hands out `len` bytes of this chunk, or `None` if they do not fit.
    fn reserve(&self, len: usize) -> Option<NonNull<u8>> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let end = used.checked_add(len).filter(|&end| end <= self.size())?;
            // `Relaxed` suffices: disjointness comes from the total order of the CASes on
            // this one atomic, and the bytes are published by the caller, not here.
            match self
                .used
                .compare_exchange_weak(used, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                // SAFETY: `used + len <= size`, so the offset stays inside the block.
                Ok(_) => return Some(unsafe { self.base().add(used) }),
                Err(actual) => used = actual,
            }
        }
    }
}

/// A lock-free bump allocator: many threads allocate at once, nothing is freed until the
/// arena is dropped. See the module documentation for the protocol.
pub struct Arena {
    /// The chunk small allocations come from; null before the first.
    current: AtomicPtr<Chunk>,
    /// The most recently pushed dedicated block; null if none.
    large: AtomicPtr<Chunk>,
    /// The size of the first chunk, between [`MIN_CHUNK_SIZE`] and `chunk_size`.
    first_chunk_size: usize,
    /// The size chunks grow to, and four times the largest allocation they serve.
    chunk_size: usize,
    /// Bytes of every block installed (chunks and dedicated blocks).
    allocated: AtomicUsize,
}

// SAFETY: the raw chunk pointers are owned by the arena (freed only in `Drop`), and the
// chunks themselves are shared only through atomics.
unsafe impl Send for Arena {}
// SAFETY: every method taking `&self` synchronizes through the atomics as the module
// documentation describes; a published chunk is never freed or moved before `Drop`.
unsafe impl Sync for Arena {}

impl Arena {
    /// An arena whose chunks start at [`FIRST_CHUNK_SIZE`] bytes and double up to
    /// `chunk_size` ([`MIN_CHUNK_SIZE`] at least). No memory is allocated until the first
    /// allocation.
    #[must_use]
    pub fn new(chunk_size: usize) -> Arena {
        Arena::with_first_chunk(FIRST_CHUNK_SIZE, chunk_size)
    }

    /// An arena whose chunks start at `first_chunk_size` bytes and double up to
    /// `chunk_size` ([`MIN_CHUNK_SIZE`] at least); the first chunk is clamped between the
    /// two.
    #[must_use]
    pub fn with_first_chunk(first_chunk_size: usize, chunk_size: usize) -> Arena {
        let chunk_size = chunk_size.max(MIN_CHUNK_SIZE);
        Arena {
            current: AtomicPtr::new(ptr::null_mut()),
            large: AtomicPtr::new(ptr::null_mut()),
            first_chunk_size: first_chunk_size.clamp(MIN_CHUNK_SIZE, chunk_size),
            chunk_size,
            allocated: AtomicUsize::new(0),
        }
    }

    /// The size chunks grow to; allocations above a quarter of it get blocks of their own.
    #[must_use]
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Bytes of memory the arena holds (chunks and dedicated blocks), used or not.
    #[must_use]
    pub fn allocated_bytes(&self) -> usize {
        self.allocated.load(Ordering::Relaxed)
    }

    /// The sizes of the chunks installed so far, oldest first (dedicated blocks are not
    /// chunks). For the tests and the loom models, which check the growth and the count.
    #[cfg(any(test, floe_loom))]
    #[must_use]
    pub fn chunk_sizes(&self) -> Vec<usize> {
        let mut sizes = Vec::new();
        let mut at = self.current.load(Ordering::Acquire);
        // SAFETY: every installed chunk lives until `Drop`, and its size and `next` were
        // written before it was published.
        while let Some(chunk) = unsafe { at.as_ref() } {
            sizes.push(chunk.size());
            at = chunk.next;
        }
        sizes.reverse();
        sizes
    }

    /// The size of the chunk to install after `exhausted` (`None`: the first chunk) for
    /// an allocation of `len` bytes, which is at most a quarter of `chunk_size`.
    fn fresh_chunk_size(&self, exhausted: Option<&Chunk>, len: usize) -> usize {
        let grown = exhausted.map_or(self.first_chunk_size, |chunk| {
            chunk.size().saturating_mul(2)
        });
        // The power of two at or above `len` is below `2 * len`, which is at most half of
        // `chunk_size`: capping at `chunk_size` never makes the chunk smaller than `len`.
        grown.max(len.next_power_of_two()).min(self.chunk_size)
    }

    /// The start of `len` zeroed bytes that no other call returns, valid until the arena
    /// is dropped. Lock-free; never fails except by aborting when memory is exhausted.
    ///
    /// The caller may write the bytes through the pointer, and must publish them to other
    /// threads itself (with a `Release` store the readers `Acquire`, for instance).
    #[must_use]
    pub fn alloc(&self, len: usize) -> NonNull<u8> {
        if len > self.chunk_size / LARGE_FRACTION {
            return self.alloc_large(len);
        }
        let current = self.current.load(Ordering::Acquire);
        // SAFETY: a chunk stored in `current` was fully built before its `Release`
        // publication (which this thread acquired) and is freed only in `Drop`.
        if let Some(chunk) = unsafe { current.as_ref() }
            && let Some(at) = chunk.reserve(len)
        {
            return at;
        }
        self.alloc_in_fresh_chunk(current, len)
    }

    /// The slow path of [`Arena::alloc`], once `current` (the chunk last read, or null)
    /// cannot take `len` bytes: installs a fresh chunk that links back to it, with the
    /// allocation reserved at its start, or carves from the chunk another thread installed
    /// first. Cold and never inlined, so that the sizing of fresh chunks stays out of the
    /// fast path, which runs for every entry while this runs once per chunk.
    #[cold]
    #[inline(never)]
    fn alloc_in_fresh_chunk(&self, mut current: *mut Chunk, len: usize) -> NonNull<u8> {
        loop {
            // SAFETY: as in `alloc`: `current` is null or an installed chunk, read with
            // `Acquire`, and installed chunks are freed only in `Drop`.
            let exhausted = unsafe { current.as_ref() };
            // The fresh chunk's size follows from the chunk it replaces, so a racer that
            // read the same chunk for a larger allocation may build a larger one; only the
            // winner's is counted.
            let size = self.fresh_chunk_size(exhausted, len);
            let fresh = Chunk::boxed(size, len, current);
            match self
                .current
                .compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.allocated.fetch_add(size, Ordering::Relaxed);
                    // SAFETY: `fresh` is installed, so it lives until `Drop`.
                    return unsafe { (*fresh).base() };
                }
                Err(actual) => {
                    // Another thread installed a chunk first: carve from that one.
                    // SAFETY: `fresh` was never published; this thread still owns it.
                    drop(unsafe { Box::from_raw(fresh) });
                    current = actual;
                    // SAFETY: `actual` was read with `Acquire` from `current`, which only
                    // ever holds installed chunks once it is no longer null.
                    if let Some(chunk) = unsafe { current.as_ref() }
                        && let Some(at) = chunk.reserve(len)
                    {
                        return at;
                    }
                }
            }
        }
    }

    /// A dedicated block for `len` bytes, pushed on the list of large blocks.
    fn alloc_large(&self, len: usize) -> NonNull<u8> {
        let chunk = Chunk::boxed(len, len, ptr::null_mut());
        let mut head = self.large.load(Ordering::Relaxed);
        loop {
            // SAFETY: `chunk` is not published yet, so this thread has it to itself.
            unsafe { (*chunk).next = head };
            match self.large.compare_exchange_weak(
                head,
                chunk,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => head = actual,
            }
        }
        self.allocated.fetch_add(len, Ordering::Relaxed);
        // SAFETY: the chunk is on the list, so it lives until `Drop`.
        unsafe { (*chunk).base() }
    }

    /// Every block's handed-out bytes as a [`Bytes`] that keeps the block alive, with the
    /// block's start address, sorted by address: once the arena is sealed, a slice of
    /// its memory can become a `Bytes` without copying.
    ///
    /// # Safety
    /// No allocation may run concurrently with this call or after it, and every write
    /// into memory the arena handed out must happen before this call: the returned
    /// `Bytes` are shared references to all of those bytes.
    pub(crate) unsafe fn sealed_blocks(&self) -> Vec<(usize, Bytes)> {
        let mut blocks = Vec::new();
        for head in [&self.current, &self.large] {
            let mut at = head.load(Ordering::Acquire);
            // SAFETY: every chunk on the two lists lives until `Drop`, and its `next`
            // was written before it was published.
            while let Some(chunk) = unsafe { at.as_ref() } {
                let len = chunk.used.load(Ordering::Relaxed);
                let start = chunk.base().as_ptr() as usize;
                blocks.push((
                    start,
                    Bytes::from_owner(Sealed {
                        block: Arc::clone(&chunk.block),
                        len,
                    }),
                ));
                at = chunk.next;
            }
        }
        blocks.sort_unstable_by_key(|(start, _)| *start);
        blocks
    }
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arena")
            .field("first_chunk_size", &self.first_chunk_size)
            .field("chunk_size", &self.chunk_size)
            .field("allocated_bytes", &self.allocated_bytes())
            .finish_non_exhaustive()
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        for head in [&self.current, &self.large] {
            // `&mut self` already excludes every other thread; the load is only the way
            // to read an atomic that both `std` and loom offer.
            let mut at = head.load(Ordering::Acquire);
            while !at.is_null() {
                // SAFETY: `&mut self` proves no other thread can reach the chunks; each
                // was created by `Box::into_raw` and appears once on exactly one list.
                let chunk = unsafe { Box::from_raw(at) };
                at = chunk.next;
            }
        }
    }
}

/// The handed-out prefix of a block, as the owner of a [`Bytes`].
struct Sealed {
    block: Arc<Block>,
    len: usize,
}

impl AsRef<[u8]> for Sealed {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `len` is at most the block's size, the bytes are initialized (zeroed
        // when allocated), and `Arena::sealed_blocks`'s contract guarantees nobody writes
        // them any more.
        unsafe { std::slice::from_raw_parts(self.block.ptr.as_ptr(), self.len) }
    }
}

#[cfg(all(test, not(floe_loom)))]
mod tests {
    use super::*;

    fn fill(at: NonNull<u8>, len: usize, byte: u8) {
        // SAFETY: the test owns the `len` bytes the arena handed out at `at`.
        unsafe { ptr::write_bytes(at.as_ptr(), byte, len) };
    }

    #[test]
    fn allocations_are_disjoint_zeroed_and_span_chunks() {
        let arena = Arena::new(64);
        let mut regions = Vec::new();
        for i in 0..100u8 {
            let len = usize::from(i % 20);
            let at = arena.alloc(len);
            // SAFETY: freshly handed out and zeroed.
            let fresh = unsafe { std::slice::from_raw_parts(at.as_ptr(), len) };
            assert!(fresh.iter().all(|&b| b == 0));
            fill(at, len, i);
            regions.push((at, len, i));
        }
        for &(at, len, byte) in &regions {
            // SAFETY: the region is still owned by the arena and was written above.
            let bytes = unsafe { std::slice::from_raw_parts(at.as_ptr(), len) };
            assert!(
                bytes.iter().all(|&b| b == byte),
                "region {byte} overwritten"
            );
        }
        assert!(arena.allocated_bytes() >= regions.iter().map(|r| r.1).sum::<usize>());
    }

    #[test]
    fn large_allocations_get_their_own_block() {
        let arena = Arena::new(64);
        let small = arena.alloc(8);
        let large = arena.alloc(1000);
        fill(small, 8, 1);
        fill(large, 1000, 2);
        assert_eq!(arena.allocated_bytes(), 64 + 1000);
        // SAFETY: nothing allocates or writes any more.
        let blocks = unsafe { arena.sealed_blocks() };
        assert_eq!(blocks.len(), 2);
        let lens: Vec<usize> = blocks.iter().map(|(_, b)| b.len()).collect();
        assert!(lens.contains(&8) && lens.contains(&1000), "{lens:?}");
    }

    #[test]
    fn sealed_blocks_outlive_the_arena() {
        let arena = Arena::new(128);
        let at = arena.alloc(5);
        // SAFETY: the test owns these 5 bytes.
        unsafe { ptr::copy_nonoverlapping(b"hello".as_ptr(), at.as_ptr(), 5) };
        // SAFETY: nothing allocates or writes any more.
        let blocks = unsafe { arena.sealed_blocks() };
        drop(arena);
        assert_eq!(&blocks[0].1[..], b"hello");
    }

    /// Every chunk after the first is at least double the one it replaced, or the cap,
    /// and never above the cap; the count of allocated bytes is exactly the chunks' sum
    /// (with `large`, the bytes of the dedicated blocks).
    fn check_growth(arena: &Arena, large: usize) -> Vec<usize> {
        let sizes = arena.chunk_sizes();
        for pair in sizes.windows(2) {
            assert!(
                pair[1] >= (2 * pair[0]).min(arena.chunk_size) && pair[1] <= arena.chunk_size,
                "a chunk of {} after one of {}: {sizes:?}",
                pair[1],
                pair[0]
            );
        }
        assert_eq!(arena.allocated_bytes(), sizes.iter().sum::<usize>() + large);
        sizes
    }

    #[test]
    fn one_small_allocation_takes_one_small_chunk() {
        let arena = Arena::new(1 << 20);
        assert_eq!(
            arena.allocated_bytes(),
            0,
            "nothing before the first allocation"
        );
        fill(arena.alloc(100), 100, 1);
        assert_eq!(arena.chunk_sizes(), [FIRST_CHUNK_SIZE]);
        assert_eq!(arena.allocated_bytes(), FIRST_CHUNK_SIZE);
        // An arena whose chunks are smaller than a page starts at its chunk size.
        let small = Arena::new(1024);
        fill(small.alloc(100), 100, 1);
        assert_eq!(small.chunk_sizes(), [1024]);
    }

    #[test]
    fn chunks_double_up_to_the_chunk_size() {
        // Small sizes, so that Miri gets through eight chunks quickly.
        let arena = Arena::with_first_chunk(256, 4096);
        let mut used = 0;
        while arena.chunk_sizes().len() < 8 {
            fill(arena.alloc(10), 10, 2);
            used += 10;
        }
        assert_eq!(
            check_growth(&arena, 0),
            [256, 512, 1024, 2048, 4096, 4096, 4096, 4096]
        );
        // Sealing sees every chunk, whatever its size, with exactly its handed-out bytes.
        // SAFETY: nothing allocates or writes any more.
        let blocks = unsafe { arena.sealed_blocks() };
        assert_eq!(blocks.len(), 8);
        assert_eq!(blocks.iter().map(|(_, b)| b.len()).sum::<usize>(), used);
        assert!(blocks.iter().all(|(_, b)| b.iter().all(|&byte| byte == 2)));
    }

    #[test]
    fn a_fresh_chunk_holds_an_allocation_larger_than_its_doubled_size() {
        // Allocations up to a quarter of 1 MiB come from chunks: one of 100 KiB after the
        // first page needs a chunk of 128 KiB, and growth goes on from there.
        let arena = Arena::new(1 << 20);
        fill(arena.alloc(100), 100, 1);
        fill(arena.alloc(100 << 10), 100 << 10, 2);
        assert_eq!(check_growth(&arena, 0), [4 << 10, 128 << 10]);
        fill(arena.alloc(50 << 10), 50 << 10, 3);
        assert_eq!(check_growth(&arena, 0), [4 << 10, 128 << 10, 256 << 10]);
        // The first chunk too is made large enough for the allocation it is made for.
        let first = Arena::new(1 << 20);
        fill(first.alloc(10_000), 10_000, 4);
        assert_eq!(check_growth(&first, 0), [16 << 10]);
        // A quarter of the cap and no more is the largest chunk allocation.
        let capped = Arena::with_first_chunk(MIN_CHUNK_SIZE, 1024);
        fill(capped.alloc(256), 256, 5);
        fill(capped.alloc(257), 257, 6);
        assert_eq!(check_growth(&capped, 257), [256]);
    }

    #[test]
    fn the_first_chunk_is_clamped_between_the_minimum_and_the_chunk_size() {
        let tiny = Arena::with_first_chunk(1, 1024);
        fill(tiny.alloc(1), 1, 1);
        assert_eq!(tiny.chunk_sizes(), [MIN_CHUNK_SIZE]);
        let huge = Arena::with_first_chunk(1 << 20, 1024);
        fill(huge.alloc(1), 1, 1);
        assert_eq!(huge.chunk_sizes(), [1024]);
    }

    #[test]
    fn concurrent_allocations_never_overlap() {
        // Chunks grow from the minimum to 1 KiB, so the threads race through chunks of
        // different sizes (a request of up to 90 bytes can also outgrow a doubled chunk).
        let arena = Arena::with_first_chunk(MIN_CHUNK_SIZE, 1024);
        // Miri interprets every allocation; a few dozen per thread still cross chunks.
        let per_thread: usize = if cfg!(miri) { 50 } else { 2000 };
        let regions = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4u8)
                .map(|t| {
                    let arena = &arena;
                    scope.spawn(move || {
                        (0..per_thread)
                            .map(|i| {
                                let len = 1 + (i * 7 + usize::from(t)) % 90;
                                let at = arena.alloc(len);
                                fill(at, len, t);
                                (at.as_ptr() as usize, len, t)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("worker"))
                .collect::<Vec<_>>()
        });
        let mut sorted = regions.clone();
        sorted.sort_unstable();
        for pair in sorted.windows(2) {
            assert!(pair[0].0 + pair[0].1 <= pair[1].0, "overlap: {pair:?}");
        }
        for (at, len, t) in regions {
            // SAFETY: still owned by the arena; every writer has joined.
            let bytes = unsafe { std::slice::from_raw_parts(at as *const u8, len) };
            assert!(bytes.iter().all(|&b| b == t));
        }
        let sizes = check_growth(&arena, 0);
        assert_eq!(sizes.last(), Some(&1024), "{sizes:?}");
    }
}
