//! [`AtomicKey`]: a user key that threads lower or raise concurrently, lock-free, with
//! compare-and-swap loops and epoch-based reclamation of the keys it replaces.
//!
//! The memtable keeps two of them, its minimum and its maximum user key, so that a read
//! whose key or range lies outside `[min, max]` can skip the skiplist entirely.
//!
//! # Memory orderings
//!
//! * A reader loads the pointer with `Acquire`: it then dereferences the slot, so it must
//!   see the slot's contents as the writer wrote them before publishing it.
//! * A successful compare-and-swap publishes a freshly written slot, hence `Release`. It
//!   needs no `Acquire`: on success the thread dereferences nothing new (it only retires the
//!   slot it had already loaded with `Acquire`).
//! * A failed compare-and-swap returns the slot that won, which the loop then dereferences
//!   to compare keys: `Acquire`, for the same reason as the reader's load.
//!
//! Reclamation goes through `crate::reclaim`, which is crossbeam-epoch except in the loom
//! models. A replaced slot is retired with `Guard::defer_destroy`: a reader that loaded it is pinned
//! and keeps it alive until it unpins, so no reader ever touches freed memory.

use std::cmp::Ordering as CmpOrdering;
use std::fmt;

use crate::reclaim::{self as epoch, Atomic, Guard, Owned, Shared};
use crate::sync::Ordering;
use bytes::Bytes;

/// One published key. Under loom it also carries a cell that its destructor writes, so a
/// model run reports any read of a slot that is not ordered before its reclamation.
struct Slot {
    key: Bytes,
    #[cfg(floe_loom)]
    live: loom::cell::UnsafeCell<bool>,
}

impl Slot {
    fn new(key: Bytes) -> Slot {
        Slot {
            key,
            #[cfg(floe_loom)]
            live: loom::cell::UnsafeCell::new(true),
        }
    }

    /// The key of the slot. Under loom, also checks that the slot has not been reclaimed.
    fn key(&self) -> &Bytes {
        #[cfg(floe_loom)]
        // SAFETY: loom's cell checks the access itself; the pointer is only read here.
        self.live
            .with(|live| assert!(unsafe { *live }, "read of a reclaimed key"));
        &self.key
    }
}

// SAFETY: the loom cell is written only in `drop`, through `&mut self`, and read
// otherwise; loom itself checks that no read races with that write, which is the point.
#[cfg(floe_loom)]
unsafe impl Sync for Slot {}

#[cfg(floe_loom)]
impl Drop for Slot {
    fn drop(&mut self) {
        // SAFETY: `&mut self` is exclusive; loom records the write and reports any read
        // that is not ordered before it.
        self.live.with_mut(|live| unsafe { *live = false });
    }
}

/// A user key that can only move in one direction under concurrent updates (down for a
/// minimum, up for a maximum), read without locks.
///
/// Empty until the first update.
pub struct AtomicKey {
    slot: Atomic<Slot>,
}

impl AtomicKey {
    /// An empty key.
    #[must_use]
    pub fn new() -> AtomicKey {
        AtomicKey {
            slot: Atomic::null(),
        }
    }

    /// A key that starts at `key`.
    #[must_use]
    pub fn with_key(key: Bytes) -> AtomicKey {
        AtomicKey {
            slot: Atomic::new(Slot::new(key)),
        }
    }

    /// The current key, or `None` if no update has happened yet.
    #[must_use]
    pub fn load(&self) -> Option<Bytes> {
        let guard = epoch::pin();
        self.peek(&guard).cloned()
    }

    /// Borrows the current key for as long as `guard` is pinned; never allocates.
    pub(crate) fn peek<'g>(&self, guard: &'g Guard) -> Option<&'g Bytes> {
        let current = self.slot.load(Ordering::Acquire, guard);
        // SAFETY: the slot was published by a `Release` CAS and is retired only through
        // `defer_destroy`, so it stays allocated while `guard` is pinned.
        unsafe { current.as_ref() }.map(Slot::key)
    }

    /// Lowers the key to `key` if the key is empty or greater; returns whether it did.
    pub fn fetch_min(&self, key: &[u8]) -> bool {
        self.fetch_extreme(key, CmpOrdering::Less)
    }

    /// Raises the key to `key` if the key is empty or smaller; returns whether it did.
    pub fn fetch_max(&self, key: &[u8]) -> bool {
        self.fetch_extreme(key, CmpOrdering::Greater)
    }

    /// Replaces the current key with `key` while `key.cmp(current) == wins`.
    fn fetch_extreme(&self, key: &[u8], wins: CmpOrdering) -> bool {
        let guard = epoch::pin();
        let mut current = self.slot.load(Ordering::Acquire, &guard);
        // The new slot is allocated only once a CAS is certain to be tried, and the same
        // allocation is carried from one failed attempt to the next.
        let mut fresh: Option<Owned<Slot>> = None;
        loop {
            // SAFETY: as in `peek`, `current` stays allocated while `guard` is pinned.
            let slot = unsafe { current.as_ref() };
            if slot.is_some_and(|slot| key.cmp(slot.key().as_ref()) != wins) {
                // Not a new extreme: return without writing, so the common case of a key
                // inside [min, max] costs one load and one comparison.
                return false;
            }
            let new = fresh
                .take()
                .unwrap_or_else(|| Owned::new(Slot::new(Bytes::copy_from_slice(key))));
            match self.slot.compare_exchange(
                current,
                new,
                Ordering::Release,
                Ordering::Acquire,
                &guard,
            ) {
                Ok(_) => {
                    if !current.is_null() {
                        // SAFETY: `current` is unlinked now (the CAS replaced it), so no new
                        // reader can reach it; readers already holding it are pinned, and the
                        // collector frees it only after they all unpin.
                        unsafe { guard.defer_destroy(current) };
                    }
                    return true;
                }
                Err(lost) => {
                    current = lost.current;
                    fresh = Some(lost.new);
                }
            }
        }
    }
}

impl Default for AtomicKey {
    fn default() -> AtomicKey {
        AtomicKey::new()
    }
}

impl Drop for AtomicKey {
    fn drop(&mut self) {
        // SAFETY: `&mut self` proves no thread can reach this key any more, so the current
        // slot can be freed at once instead of through the collector.
        unsafe {
            let current: Shared<'_, Slot> = self.slot.load(Ordering::Relaxed, epoch::unprotected());
            if !current.is_null() {
                drop(current.into_owned());
            }
        }
    }
}

impl fmt::Debug for AtomicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AtomicKey").field(&self.load()).finish()
    }
}

#[cfg(all(test, not(floe_loom)))]
mod tests {
    use super::*;

    #[test]
    fn moves_only_towards_the_extreme() {
        let min = AtomicKey::new();
        let max = AtomicKey::new();
        assert_eq!(min.load(), None);
        for (key, lowered, raised) in [
            (&b"m"[..], true, true),
            (b"z", false, true),
            (b"a", true, false),
            (b"m", false, false),
            (b"a", false, false),
            (b"", true, false),
        ] {
            let key = Bytes::copy_from_slice(key);
            assert_eq!(min.fetch_min(&key), lowered, "min with {key:?}");
            assert_eq!(max.fetch_max(&key), raised, "max with {key:?}");
        }
        assert_eq!(min.load().as_deref(), Some(&b""[..]));
        assert_eq!(max.load().as_deref(), Some(&b"z"[..]));
        assert!(format!("{max:?}").contains('z'));
    }

    #[test]
    fn concurrent_updates_find_the_extremes() {
        let min = AtomicKey::new();
        let max = AtomicKey::new();
        let per_thread: u32 = if cfg!(miri) { 50 } else { 2_000 };
        std::thread::scope(|scope| {
            for thread in 0..4u32 {
                let (min, max) = (&min, &max);
                scope.spawn(move || {
                    for i in 0..per_thread {
                        let key = Bytes::copy_from_slice(&(i * 4 + thread).to_be_bytes());
                        min.fetch_min(&key);
                        max.fetch_max(&key);
                    }
                });
            }
        });
        assert_eq!(min.load().as_deref(), Some(&0u32.to_be_bytes()[..]));
        assert_eq!(
            max.load().as_deref(),
            Some(&(per_thread * 4 - 1).to_be_bytes()[..])
        );
    }
}
