//! The synchronization shim: `std` in normal builds, `loom` under `--cfg floe_loom`.
//!
//! Only the protocols that the loom models check import their primitives from here (the
//! in-order publication of sequence numbers in [`crate::publish`]). The rest of the engine
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
