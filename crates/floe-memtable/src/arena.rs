//! [`Arena`]: a lock-free bump allocator that holds the bytes of every memtable entry, so
//! that an entry costs one skiplist node and its key and value bytes, and no allocation of
//! its own.
//!
//! # The protocol
//!
//! Small allocations are carved from the *current chunk*, a block of `chunk_size` bytes,
//! by a compare-and-swap loop on the chunk's `used` offset: every successful CAS moves the
//! offset forward, and the CASes on one atomic are totally ordered, so the ranges they
//! hand out never overlap. The offset never passes the chunk's end: an allocation that
//! does not fit leaves it alone. That thread then allocates a fresh chunk with its own
//! allocation already reserved at the start, links it to the exhausted one, and swaps it
//! into `current` with a CAS *from the exhausted chunk*: exactly one of several racing
//! threads installs its chunk, the others free theirs and carve from the winner's. Since
//! `current` only ever moves from a chunk to one that links back to it, following the
//! links from `current` visits every chunk ever installed.
//!
//! Allocations larger than a quarter chunk get a block of their own, pushed on a second,
//! push-only list (a Treiber stack that is never popped, so it has no ABA problem), which
//! keeps the tail a chunk wastes under a quarter of it.
//!
//! Memory is zeroed when allocated and freed only when the arena is dropped (which needs
//! `&mut`, so no allocation or reader can be in flight). The bytes a caller writes reach
//! other threads through whatever publishes the pointer (the skiplist's link, a `Release`
//! store): the arena orders only its own bookkeeping.
//!
//! The loom model `tests/loom_arena.rs` checks that concurrent allocations across chunk
//! switches never overlap and that every block is freed exactly once.

use std::alloc::{self, Layout};
use std::ptr::{self, NonNull};
use std::sync::Arc;

use bytes::Bytes;

use crate::sync::{AtomicPtr, AtomicUsize, Ordering};

/// An allocation larger than `chunk_size / LARGE_FRACTION` gets a block of its own.
const LARGE_FRACTION: usize = 4;

/// The smallest chunk an arena uses.
pub const MIN_CHUNK_SIZE: usize = 64;

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

/// A block and the bytes handed out of it so far.
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
    /// An arena that carves small allocations from chunks of `chunk_size` bytes
    /// ([`MIN_CHUNK_SIZE`] at least). No memory is allocated until the first allocation.
    #[must_use]
    pub fn new(chunk_size: usize) -> Arena {
        Arena {
            current: AtomicPtr::new(ptr::null_mut()),
            large: AtomicPtr::new(ptr::null_mut()),
            chunk_size: chunk_size.max(MIN_CHUNK_SIZE),
            allocated: AtomicUsize::new(0),
        }
    }

    /// The size of the chunks small allocations come from.
    #[must_use]
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Bytes of memory the arena holds (chunks and dedicated blocks), used or not.
    #[must_use]
    pub fn allocated_bytes(&self) -> usize {
        self.allocated.load(Ordering::Relaxed)
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
        let mut current = self.current.load(Ordering::Acquire);
        loop {
            // SAFETY: a chunk stored in `current` was fully built before its `Release`
            // publication (which this thread acquired) and is freed only in `Drop`.
            if let Some(chunk) = unsafe { current.as_ref() }
                && let Some(at) = chunk.reserve(len)
            {
                return at;
            }
            // The chunk is exhausted (or there is none yet): install a fresh one that
            // links back to it, with this allocation reserved at its start.
            let fresh = Chunk::boxed(self.chunk_size, len, current);
            match self
                .current
                .compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.allocated.fetch_add(self.chunk_size, Ordering::Relaxed);
                    // SAFETY: `fresh` is installed, so it lives until `Drop`.
                    return unsafe { (*fresh).base() };
                }
                Err(actual) => {
                    // Another thread installed a chunk first: carve from that one.
                    // SAFETY: `fresh` was never published; this thread still owns it.
                    drop(unsafe { Box::from_raw(fresh) });
                    current = actual;
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

    #[test]
    fn concurrent_allocations_never_overlap() {
        let arena = Arena::new(256);
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
    }
}
