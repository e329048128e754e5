//! Software prefetch: asks the processor to start loading memory that a lookup is about
//! to read, so that cache misses whose addresses are known early overlap instead of
//! following one another.

/// The size of a cache line on the processors floe targets (used only where hints are
/// issued).
#[cfg(all(target_arch = "x86_64", not(miri)))]
const LINE: usize = 64;

/// Hints that every cache line of `items` will be read soon. A hint only: it changes no
/// result, and on targets without a stable prefetch instruction it does nothing.
#[inline]
pub(crate) fn prefetch<T>(items: &[T]) {
    // Miri checks what a program does, not how fast: it gets no hints.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let bytes = size_of_val(items);
        let start = items.as_ptr().cast::<i8>();
        let Some(last) = bytes.checked_sub(1) else {
            return;
        };
        // Lines are aligned in memory, not in `bytes`: stepping by a line from the first
        // byte reaches every line but perhaps the one holding the last byte.
        for at in (0..last).step_by(LINE).chain([last]) {
            // SAFETY: `at` is less than the size of `items`, so the pointer lies inside
            // that one allocation. A prefetch reads nothing into the program and cannot
            // fault; it only moves a line into the cache.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(at)) };
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = items;
}
