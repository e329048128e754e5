//! The synchronization shim: `std` in normal builds, `loom` under `--cfg floe_loom`; and
//! [`spin_until`], the bounded spin of the commit path's short waits.
//!
//! Only the protocols that the loom models check import their primitives from here (the
//! in-order publication of sequence numbers in [`crate::write::publish`]). The rest of the engine
//! uses `std` directly on purpose: it is built around `ArcSwap`, the skiplist and file I/O,
//! which loom cannot see into, so it sits outside every model.

#[cfg(floe_loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(floe_loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

#[cfg(not(floe_loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(floe_loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

/// Polls `done` until it returns true (then returns true) or `limit` passes (then false),
/// reading the clock only every 64 polls. For waits that usually end within microseconds,
/// where sleeping and being woken costs more than the wait; the caller falls back to
/// blocking when it gives up, so the spin is only a shortcut and decides nothing.
pub(crate) fn spin_until(limit: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        for _ in 0..64 {
            if done() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= limit {
            return false;
        }
    }
}
