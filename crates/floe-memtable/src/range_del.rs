//! [`RangeTombstones`]: the range tombstones of a memtable, kept apart from its point
//! entries, and their fragmented form cached for readers.
//!
//! A range tombstone `[start, end)` at `seqno` (`end` `None`: no upper bound) hides every
//! version below `seqno` of every key in the range. Tombstones are rare, so they live in a
//! second `SkipMap` keyed by sequence number, with owned [`Bytes`] and no arena; the point
//! skiplist and its read paths do not know they exist. Readers ask for
//! [`RangeTombstones::fragments`], the [`Fragments`] of all of them, which answers "which
//! tombstone covers this key at this snapshot" in `O(log n)`. Fragmenting costs
//! `O(n log n)`, so the result is cached and rebuilt only after new inserts.
//!
//! # The cache protocol
//!
//! * `generation` counts completed inserts. An insert stores its tombstone in the skiplist
//!   and then increments `generation` with `Release`. Every insert that does not return
//!   early for an empty range increments it, a duplicate (a sequence number already
//!   stored) too, see below.
//! * A reader loads `generation` with `Acquire`. Zero means that no insert has completed:
//!   it returns `None`, and that load is all a memtable without range tombstones costs.
//! * Otherwise it loads the cache, a `(generation, Arc<Fragments>)` pair, and uses it if
//!   the cached generation is at least the one it loaded.
//! * If not, it builds: it collects the skiplist *after* the load of `generation` it
//!   already made, fragments what it found, and publishes `(that generation, fragments)`
//!   unless the cache already holds a generation at least as high. The cache's generation
//!   therefore only grows.
//!
//! # Why a reader sees every insert that completed before it started
//!
//! Call an insert *complete* once its increment of `generation` is done, and number the
//! increments `1, 2, ...` in the modification order of `generation` (they are all
//! read-modify-writes, so the `k`-th leaves the value `k`).
//!
//! *Invariant: a cache entry `(g, F)` holds every tombstone stored by the inserts of the
//! first `g` increments.* Its builder read `g` with `Acquire`, i.e. from the `g`-th
//! increment. Each increment is a `Release` read-modify-write, and every later
//! read-modify-write of the same word continues its release sequence, so that load
//! synchronizes with all of the first `g` increments. Each insert stores into the skiplist
//! before it increments, so those stores happen before the builder's collection, which
//! therefore sees them (the skiplist links a node with `Release` and searches with
//! `Acquire`, like any lock-free list).
//!
//! *A reader.* An insert that returned before the reader's call started happens before the
//! reader's load of `generation`, so by coherence that load reads its increment `k` or a
//! later one: it reads `g_r >= k`. The reader uses a cache entry only if its generation is
//! at least `g_r`, which by the invariant holds the tombstone; otherwise it builds with
//! `g_r` itself, which holds it for the same reason.
//!
//! Reading `generation` *after* collecting breaks the invariant: the builder can collect an
//! empty skiplist, an insert then stores and increments, the builder reads the new
//! generation and publishes it with fragments that lack the tombstone, and every later
//! reader trusts them. A `Relaxed` load breaks it too (nothing orders the collection after
//! the stores). The loom model (`tests/loom_range_del.rs`) checks the protocol and shows
//! both faults, and a third: publishing without comparing generations lets a stale build
//! replace a newer one.
//!
//! A duplicate increments `generation` too. It returns as soon as it finds the stored
//! tombstone, possibly before the insert that stored it has incremented; had it not
//! incremented, a reader that started after the duplicate returned could trust a cache
//! without that tombstone. The duplicate found the node with `Acquire`, so its increment
//! carries the node's store like the original's would. Extra increments only cost a
//! rebuild, since the cache is trusted by comparison, not by count.
//!
//! # Freezing
//!
//! [`RangeTombstones::freeze`], which the memtable calls once its writer gate is drained,
//! builds the cache for the final generation if it is not already current. From then on
//! `generation` never changes, every reader finds the cache current, and since the cache's
//! generation only grows, no builder still racing can replace it: the [`Fragments`] stays
//! the same `Arc` for the life of the memtable.

use std::sync::Arc;

use bytes::Bytes;
use floe_core::SeqNo;
use floe_core::range_del::{Fragments, RangeTombstone};

use crate::sync::{AtomicUsize, Ordering};

/// A fragment list and the generation it was built at: it holds every tombstone of the
/// first `generation` completed inserts.
#[derive(Debug)]
pub(crate) struct Cached {
    generation: usize,
    fragments: Arc<Fragments>,
}

/// The variants of the read path: the real one, and under `floe_loom` the faulty ones the
/// loom model must catch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    not(floe_loom),
    expect(
        dead_code,
        reason = "the faulty variants exist for the loom model only"
    )
)]
enum Variant {
    Correct,
    /// Loads the generation after collecting the skiplist.
    GenerationAfterCollect,
    /// Loads the generation with `Relaxed`.
    RelaxedGeneration,
    /// Publishes a build without comparing it with the cached generation.
    UnconditionalPublish,
}

/// The range tombstones of one memtable: lock-free inserts, and their fragmented form
/// cached for readers (see the module docs for the protocol).
pub struct RangeTombstones {
    stored: seam::Store,
    /// The count of completed inserts, duplicates included; the cache's version.
    generation: AtomicUsize,
    cache: seam::Cache,
}

impl RangeTombstones {
    /// No tombstone.
    #[must_use]
    pub fn new() -> RangeTombstones {
        RangeTombstones {
            stored: seam::Store::new(),
            generation: AtomicUsize::new(0),
            cache: seam::Cache::new(),
        }
    }

    /// Stores `[start, end)` at `seqno`; `true` if it stored it, `false` for an empty range
    /// (`end <= start`, stored nowhere) or a sequence number already stored (whatever its
    /// range: a sequence number names one write, which recovery may replay).
    pub fn insert(&self, start: &[u8], end: Option<&[u8]>, seqno: SeqNo) -> bool {
        if end.is_some_and(|end| end <= start) {
            return false;
        }
        let inserted = self.stored.insert(seqno, start, end);
        // `Release`: the store above happens before any `Acquire` load that reads this
        // increment or a later one (the module docs, "Why a reader sees...").
        self.generation.fetch_add(1, Ordering::Release);
        inserted
    }

    /// The number of tombstones stored, including any whose insert has not returned yet.
    #[must_use]
    pub fn len(&self) -> usize {
        self.stored.len()
    }

    /// Whether no insert has completed: one `Acquire` load.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.generation.load(Ordering::Acquire) == 0
    }

    /// The fragments of every tombstone, or `None` if there is none. Holds every tombstone
    /// whose insert returned before this call started.
    ///
    /// Costs one atomic load without tombstones; with them, while no insert lands, a load of
    /// the cache and an `Arc` clone more; after an insert, one rebuild (`O(n log n)`).
    #[must_use]
    pub fn fragments(&self) -> Option<Arc<Fragments>> {
        self.read(Variant::Correct)
    }

    /// `f` of the fragments of every tombstone, as [`RangeTombstones::fragments`] would
    /// give them, or `None` if there is none; while the cache is current, without the
    /// `Arc` clone (what a point lookup pays for each memtable).
    pub fn with_fragments<R>(&self, f: impl FnOnce(&Fragments) -> R) -> Option<R> {
        // The same load, with the same ordering argument, as `read`.
        let generation = self.generation.load(Ordering::Acquire);
        if generation == 0 {
            return None;
        }
        match self.cache.with_current(generation, f) {
            Ok(found) => Some(found),
            Err(f) => self.read(Variant::Correct).map(|fragments| f(&fragments)),
        }
    }

    /// Builds the cache for the final generation, so that every later read finds it current
    /// and the [`Fragments`] never change again. Call it once no insert can land (the
    /// memtable does, after draining its writer gate).
    pub fn freeze(&self) {
        drop(self.fragments());
    }

    fn read(&self, variant: Variant) -> Option<Arc<Fragments>> {
        let order = match variant {
            Variant::RelaxedGeneration => Ordering::Relaxed,
            _ => Ordering::Acquire,
        };
        // The one load a memtable without range tombstones pays. `Acquire`, and before the
        // collection below: both are what the module docs' argument rests on.
        let generation = self.generation.load(order);
        if generation == 0 {
            return None;
        }
        // A cache built at this generation or a later one holds every tombstone this
        // reader must see (the invariant of the module docs).
        if let Some(fragments) = self.cache.current(generation) {
            return Some(fragments);
        }
        let tombstones = self.stored.collect();
        let generation = match variant {
            Variant::GenerationAfterCollect => self.generation.load(Ordering::Acquire),
            _ => generation,
        };
        let fragments = Arc::new(Fragments::new(tombstones));
        let cached = Arc::new(Cached {
            generation,
            fragments: Arc::clone(&fragments),
        });
        if variant == Variant::UnconditionalPublish {
            self.cache.publish_if(cached, |_| true);
        } else {
            // Only a newer build replaces the cache, so that its generation never goes
            // back (a slow builder would otherwise undo a faster, newer one, and a frozen
            // memtable's fragments would not be stable).
            self.cache.publish_if(cached, |current| {
                current.is_none_or(|c| c.generation < generation)
            });
        }
        Some(fragments)
    }
}

/// The faulty read paths, for the loom model to catch (see the module docs).
#[cfg(floe_loom)]
impl RangeTombstones {
    /// [`RangeTombstones::fragments`], loading the generation only after collecting.
    #[must_use]
    pub fn fragments_generation_after_collect(&self) -> Option<Arc<Fragments>> {
        self.read(Variant::GenerationAfterCollect)
    }

    /// [`RangeTombstones::fragments`], loading the generation with `Relaxed`.
    #[must_use]
    pub fn fragments_relaxed_generation(&self) -> Option<Arc<Fragments>> {
        self.read(Variant::RelaxedGeneration)
    }

    /// [`RangeTombstones::fragments`], publishing every build whatever the cached
    /// generation.
    #[must_use]
    pub fn fragments_unconditional_publish(&self) -> Option<Arc<Fragments>> {
        self.read(Variant::UnconditionalPublish)
    }
}

impl Default for RangeTombstones {
    fn default() -> RangeTombstones {
        RangeTombstones::new()
    }
}

impl std::fmt::Debug for RangeTombstones {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeTombstones")
            .field("len", &self.len())
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// One stored tombstone: its start and end in one buffer, so that a tombstone is one
/// allocation besides its node, and collecting it only slices the buffer.
#[derive(Debug)]
struct Stored {
    bytes: Bytes,
    start_len: usize,
    bounded: bool,
}

impl Stored {
    fn new(start: &[u8], end: Option<&[u8]>) -> Stored {
        let mut bytes = Vec::with_capacity(start.len() + end.map_or(0, <[u8]>::len));
        bytes.extend_from_slice(start);
        bytes.extend_from_slice(end.unwrap_or_default());
        Stored {
            bytes: Bytes::from(bytes),
            start_len: start.len(),
            bounded: end.is_some(),
        }
    }

    fn tombstone(&self, seqno: SeqNo) -> RangeTombstone {
        RangeTombstone::new(
            self.bytes.slice(..self.start_len),
            self.bounded.then(|| self.bytes.slice(self.start_len..)),
            seqno,
        )
    }
}

/// The store and the cache cell: crossbeam's `SkipMap` and arc-swap normally, which loom
/// cannot see into; under `floe_loom`, stand-ins of the same contract built from loom's
/// primitives, so that the models check the protocol's orderings.
#[cfg(not(floe_loom))]
mod seam {
    use std::cell::Cell;
    use std::sync::Arc;

    use arc_swap::ArcSwapOption;
    use crossbeam_skiplist::SkipMap;
    use floe_core::SeqNo;
    use floe_core::range_del::{Fragments, RangeTombstone};

    use super::{Cached, Stored};

    /// The tombstones by sequence number.
    pub(super) struct Store {
        map: SkipMap<SeqNo, Stored>,
    }

    impl Store {
        pub(super) fn new() -> Store {
            Store {
                map: SkipMap::new(),
            }
        }

        /// Stores the tombstone unless `seqno` is stored; whether it did. Either way the
        /// stored node is reached with `Acquire` (found by the search, or linked by this
        /// call), and a linked node is published with `Release`.
        pub(super) fn insert(&self, seqno: SeqNo, start: &[u8], end: Option<&[u8]>) -> bool {
            let inserted = Cell::new(false);
            // `get_or_insert_with` never replaces an entry (see `docs/memtable.md` on the
            // crossbeam-skiplist 0.1.3 gaps), and builds the value only if it inserts.
            drop(self.map.get_or_insert_with(seqno, || {
                inserted.set(true);
                Stored::new(start, end)
            }));
            inserted.get()
        }

        pub(super) fn len(&self) -> usize {
            self.map.len()
        }

        /// Every tombstone linked when the walk passes its place.
        pub(super) fn collect(&self) -> Vec<RangeTombstone> {
            self.map
                .iter()
                .map(|entry| entry.value().tombstone(*entry.key()))
                .collect()
        }
    }

    /// The cached fragments.
    pub(super) struct Cache {
        cell: ArcSwapOption<Cached>,
    }

    impl Cache {
        pub(super) fn new() -> Cache {
            Cache {
                cell: ArcSwapOption::empty(),
            }
        }

        /// `f` of the cached fragments if they were built at `generation` or later (`f`
        /// back otherwise), under a guard rather than a clone.
        pub(super) fn with_current<R, F: FnOnce(&Fragments) -> R>(
            &self,
            generation: usize,
            f: F,
        ) -> Result<R, F> {
            let cached = self.cell.load();
            match cached.as_ref() {
                Some(cached) if cached.generation >= generation => Ok(f(&cached.fragments)),
                _ => Err(f),
            }
        }

        /// The cached fragments if they were built at `generation` or later.
        pub(super) fn current(&self, generation: usize) -> Option<Arc<Fragments>> {
            let cached = self.cell.load();
            cached
                .as_ref()
                .filter(|cached| cached.generation >= generation)
                .map(|cached| Arc::clone(&cached.fragments))
        }

        /// Replaces the cache with `new` if `wins` holds for the cache as it is at the
        /// replacement (a compare-and-swap loop).
        pub(super) fn publish_if(&self, new: Arc<Cached>, wins: impl Fn(Option<&Cached>) -> bool) {
            loop {
                let current = self.cell.load();
                if !wins(current.as_deref()) {
                    return;
                }
                let previous = self.cell.compare_and_swap(&current, Some(Arc::clone(&new)));
                let swapped = match (previous.as_ref(), current.as_ref()) {
                    (Some(previous), Some(current)) => Arc::ptr_eq(previous, current),
                    (None, None) => true,
                    _ => false,
                };
                if swapped {
                    return;
                }
            }
        }
    }
}

/// The loom stand-ins. The store is one atomic pointer per sequence number (the models use
/// a handful), set once by compare-and-swap with `Release` and read with `Acquire`: the
/// contract of the skiplist's links. The cache is a loom mutex, as linearizable as
/// arc-swap's cell.
#[cfg(floe_loom)]
mod seam {
    use std::sync::Arc;

    use floe_core::SeqNo;
    use floe_core::range_del::{Fragments, RangeTombstone};
    use loom::sync::Mutex;

    use super::{Cached, Stored};
    use crate::sync::{AtomicPtr, Ordering};

    /// The sequence numbers the model store holds: `0..SEQNOS`.
    const SEQNOS: usize = 8;

    pub(super) struct Store {
        slots: Vec<AtomicPtr<Stored>>,
    }

    impl Store {
        pub(super) fn new() -> Store {
            Store {
                slots: (0..SEQNOS)
                    .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                    .collect(),
            }
        }

        fn slot(&self, seqno: SeqNo) -> &AtomicPtr<Stored> {
            usize::try_from(seqno)
                .ok()
                .and_then(|seqno| self.slots.get(seqno))
                .expect("the loom store holds sequence numbers below 8")
        }

        pub(super) fn insert(&self, seqno: SeqNo, start: &[u8], end: Option<&[u8]>) -> bool {
            let new = Box::into_raw(Box::new(Stored::new(start, end)));
            match self.slot(seqno).compare_exchange(
                std::ptr::null_mut(),
                new,
                Ordering::Release,
                Ordering::Acquire,
            ) {
                Ok(_) => true,
                Err(_) => {
                    // SAFETY: the CAS failed, so `new` was never published.
                    drop(unsafe { Box::from_raw(new) });
                    false
                }
            }
        }

        pub(super) fn len(&self) -> usize {
            self.slots
                .iter()
                .filter(|slot| !slot.load(Ordering::Acquire).is_null())
                .count()
        }

        pub(super) fn collect(&self) -> Vec<RangeTombstone> {
            (0..)
                .zip(&self.slots)
                .filter_map(|(seqno, slot)| {
                    let stored = slot.load(Ordering::Acquire);
                    // SAFETY: a slot is set once, by a `Release` CAS of a fully built box
                    // that this `Acquire` load synchronizes with, and freed only by `drop`.
                    unsafe { stored.as_ref() }.map(|stored| stored.tombstone(seqno))
                })
                .collect()
        }
    }

    impl Drop for Store {
        fn drop(&mut self) {
            for slot in &self.slots {
                let stored = slot.load(Ordering::Relaxed);
                if !stored.is_null() {
                    // SAFETY: `&mut self`: no thread can reach the slots; the pointer came
                    // from `Box::into_raw` and is freed once.
                    drop(unsafe { Box::from_raw(stored) });
                }
            }
        }
    }

    pub(super) struct Cache {
        cell: Mutex<Option<Arc<Cached>>>,
    }

    impl Cache {
        pub(super) fn new() -> Cache {
            Cache {
                cell: Mutex::new(None),
            }
        }

        pub(super) fn with_current<R, F: FnOnce(&Fragments) -> R>(
            &self,
            generation: usize,
            f: F,
        ) -> Result<R, F> {
            match self.current(generation) {
                Some(fragments) => Ok(f(&fragments)),
                None => Err(f),
            }
        }

        pub(super) fn current(&self, generation: usize) -> Option<Arc<Fragments>> {
            let cell = self.cell.lock().unwrap();
            cell.as_ref()
                .filter(|cached| cached.generation >= generation)
                .map(|cached| Arc::clone(&cached.fragments))
        }

        pub(super) fn publish_if(&self, new: Arc<Cached>, wins: impl Fn(Option<&Cached>) -> bool) {
            let mut cell = self.cell.lock().unwrap();
            if wins(cell.as_deref()) {
                *cell = Some(new);
            }
        }
    }
}

#[cfg(all(test, not(floe_loom)))]
mod tests {
    use super::*;

    #[test]
    fn empty_ranges_and_duplicates_store_nothing() {
        let tombstones = RangeTombstones::new();
        assert!(tombstones.is_empty());
        assert_eq!(tombstones.fragments(), None);
        assert!(!tombstones.insert(b"b", Some(b"b"), 1));
        assert!(!tombstones.insert(b"b", Some(b"a"), 2));
        assert!(tombstones.is_empty());
        assert_eq!(tombstones.fragments(), None);
        assert!(tombstones.insert(b"a", Some(b"c"), 3));
        assert!(!tombstones.insert(b"x", None, 3));
        assert_eq!(tombstones.len(), 1);
        let fragments = tombstones.fragments().unwrap();
        assert_eq!(fragments.max_covering(b"b", 10), Some(3));
        assert_eq!(fragments.max_covering(b"x", 10), None);
    }

    #[test]
    fn the_cache_is_rebuilt_only_after_an_insert() {
        let tombstones = RangeTombstones::new();
        tombstones.insert(b"a", None, 5);
        let first = tombstones.fragments().unwrap();
        assert!(Arc::ptr_eq(&first, &tombstones.fragments().unwrap()));
        tombstones.insert(b"", Some(b"a"), 7);
        let second = tombstones.fragments().unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        assert!(Arc::ptr_eq(&second, &tombstones.fragments().unwrap()));
        assert_eq!(second.max_covering(b"", 10), Some(7));
        assert_eq!(second.max_covering(b"zzz", 10), Some(5));
        // A duplicate bumps the generation: one rebuild, with the same tombstones.
        tombstones.insert(b"a", None, 5);
        let third = tombstones.fragments().unwrap();
        assert!(!Arc::ptr_eq(&second, &third));
        assert_eq!(*second, *third);
    }

    #[test]
    fn a_stale_build_does_not_replace_a_newer_cache() {
        let tombstones = RangeTombstones::new();
        tombstones.insert(b"a", Some(b"b"), 1);
        tombstones.insert(b"c", Some(b"d"), 2);
        let current = tombstones.fragments().unwrap();
        // A builder that read generation 1 and lost the race publishes nothing.
        let stale = Arc::new(Cached {
            generation: 1,
            fragments: Arc::new(Fragments::default()),
        });
        tombstones
            .cache
            .publish_if(stale, |c| c.is_none_or(|c| c.generation < 1));
        assert!(Arc::ptr_eq(&current, &tombstones.fragments().unwrap()));
    }
}
