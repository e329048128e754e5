//! The synchronization shim: `std` in normal builds, `loom` under `--cfg floe_loom`, the
//! one switch between the two; [`lock`], [`wait`] and [`wait_timeout`], which the engine's
//! `std` locks are taken with; and [`spin_until`], the bounded spin of the commit path's
//! short waits.
//!
//! Only the protocols that the loom models check import their primitives from here (the
//! in-order publication of sequence numbers in [`crate::write::publish`], which the crate
//! exposes to the models as `floe_engine::loom` under the same cfg). The rest of the
//! engine uses `std` directly on purpose: it is built around `ArcSwap`, the skiplist and
//! file I/O, which loom cannot see into, so it sits outside every model.

#[cfg(floe_loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(floe_loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

#[cfg(not(floe_loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(floe_loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning: every critical section of the engine leaves its data
/// consistent at each step (or poisons the database first, see `Shared::poison`), so a
/// panic elsewhere must not turn into a cascade of panics here. A `std` lock always, also
/// under `--cfg floe_loom`: the locks outside the models are never loom's.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Waits on `condvar`, ignoring lock poisoning (see [`lock`]).
pub(crate) fn wait<'a, T>(
    condvar: &std::sync::Condvar,
    guard: std::sync::MutexGuard<'a, T>,
) -> std::sync::MutexGuard<'a, T> {
    condvar
        .wait(guard)
        .unwrap_or_else(|poison| poison.into_inner())
}

/// Waits on `condvar` for at most `timeout`, ignoring lock poisoning (see [`lock`]).
pub(crate) fn wait_timeout<'a, T>(
    condvar: &std::sync::Condvar,
    guard: std::sync::MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> std::sync::MutexGuard<'a, T> {
    match condvar.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poison) => poison.into_inner().0,
    }
}

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
