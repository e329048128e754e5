//! A global allocator that records the largest single allocation, so that a test can show
//! that no damaged length makes a decoder allocate more than its input justifies.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Forwards to the system allocator and records the largest size asked of it, by an
/// allocation or a reallocation.
///
/// A test binary installs it with `#[global_allocator]` and reads it with
/// [`LargestAlloc::measure`]. It sees every allocation of the process, the test harness's
/// and other tests' included, so a bound it checks must leave room for those.
#[derive(Debug, Default)]
pub struct LargestAlloc {
    largest: AtomicUsize,
    /// Held while a measurement runs, so that two tests never reset each other's.
    measuring: Mutex<()>,
}

impl LargestAlloc {
    /// An allocator that has recorded nothing yet, for a `static`.
    #[must_use]
    pub const fn new() -> LargestAlloc {
        LargestAlloc {
            largest: AtomicUsize::new(0),
            measuring: Mutex::new(()),
        }
    }

    /// Runs `f` and returns what it returned with the largest allocation, in bytes, that
    /// the process made meanwhile. Measurements run one at a time.
    pub fn measure<T>(&self, f: impl FnOnce() -> T) -> (T, usize) {
        // A measurement that panicked (a failed assertion) leaves nothing to repair.
        let _measuring = self
            .measuring
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.largest.store(0, Ordering::Relaxed);
        let value = f();
        (value, self.largest.load(Ordering::Relaxed))
    }
}

// SAFETY: every method forwards to the system allocator with the caller's arguments
// unchanged, so the system allocator's guarantees are this allocator's guarantees; the
// only addition is an atomic maximum, which allocates nothing.
unsafe impl GlobalAlloc for LargestAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.largest.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout, via `alloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.largest.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; `ptr` came from this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_measurement_sees_the_largest_allocation_of_its_closure() {
        // Not installed as the global allocator here: the test drives it directly.
        let alloc = LargestAlloc::new();
        let layout = Layout::from_size_align(1000, 8).expect("a valid layout");
        let ((), largest) = alloc.measure(|| {
            // SAFETY: `layout` has a nonzero size; the block is freed with the same layout.
            unsafe {
                let block = alloc.alloc(layout);
                assert!(!block.is_null());
                alloc.dealloc(block, layout);
            }
        });
        assert_eq!(largest, 1000);
        let ((), largest) = alloc.measure(|| {});
        assert_eq!(largest, 0, "each measurement starts from nothing");
    }
}
