//! The synchronization primitives of this crate: `std` in normal builds, `loom` under
//! `--cfg floe_loom`, so that the loom models check the very code that ships.
//!
//! The atomics of the lock-free protocols (the writer gate, the size account) come from
//! here; [`crate::AtomicKey`]'s pointer and its reclamation come from `crate::reclaim`,
//! the seam that the models replace. The point skiplist is crossbeam's own and is not
//! modelled; the range tombstones' skiplist and cache cell sit behind a seam of their own
//! (`crate::range_del`), which the models replace with loom primitives.

#[cfg(not(floe_loom))]
pub(crate) use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

#[cfg(floe_loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Gives the processor to another thread; under loom, lets the model schedule another thread.
pub(crate) fn yield_now() {
    #[cfg(not(floe_loom))]
    std::thread::yield_now();
    #[cfg(floe_loom)]
    loom::thread::yield_now();
}

/// Tells the processor that this thread is spinning; under loom, yields to the model,
/// which otherwise could not make progress in a spin loop.
pub(crate) fn spin_loop() {
    #[cfg(not(floe_loom))]
    std::hint::spin_loop();
    #[cfg(floe_loom)]
    loom::thread::yield_now();
}
