//! [`Memtable`]: the skiplist of versions, its size account and capacity, its key range and
//! its writer gate, tied together.

use std::cell::Cell;
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;
use floe_core::range_del::Fragments;
use floe_core::{MAX_SEQNO, SeqNo, ValueKind, pack_trailer};

use crate::arena::Arena;
use crate::atomic_key::AtomicKey;
use crate::error::{Error, Result};
use crate::gate::WriterGate;
use crate::iter::{EntryIter, VisibleIter};
use crate::key::{Key, KeyView, Probe, TRAILER_FIRST};
use crate::range_del::RangeTombstones;
use crate::reclaim as epoch;
use crate::sync::{AtomicUsize, Ordering};

/// The size of a memory page; capacities are whole pages.
pub const PAGE_SIZE: usize = 4096;

/// The bytes each entry costs on top of its key and value, as measured on this skiplist
/// (see `docs/memtable.md` and the `accounting` test, which checks it against the
/// allocator).
///
/// The key and value bytes are copied into the memtable's arena, packed end to end, so
/// they cost exactly their length there. The only allocation of its own an entry makes
/// is its node of `SkipMap<Key, ()>`: the key (40 bytes: the 16-byte inline prefix of the
/// user key, the trailer, the arena pointer and the two lengths), a reference count and
/// height word (8) and a tower of 8-byte links whose height is 1 with probability 1/2, 2
/// with 1/4 and so on. With glibc's malloc (an 8-byte header per allocation, 16-byte
/// rounding) that is 64 bytes for a node of height 1, 80 for 2 or 3, 96 for 4 or 5: about
/// 75 on average, and a few more for the arena's unused chunk tails, hence 80.
pub const ENTRY_OVERHEAD: usize = 80;

/// The arena chunk size of a memtable, the size its chunks grow to from a first chunk of
/// [`crate::FIRST_CHUNK_SIZE`]: a sixteenth of its capacity, between 1 KiB and 1 MiB, so
/// that a small memtable does not allocate far beyond its capacity and a large one
/// allocates rarely. The growth keeps a nearly empty memtable's arena small whatever its
/// capacity.
fn chunk_size(capacity: usize) -> usize {
    (capacity / 16).clamp(1 << 10, 1 << 20)
}

/// The result of a point lookup that found a version of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The newest visible version is a value.
    Value(Bytes),
    /// The newest visible version is a tombstone: the key is deleted at this snapshot, and
    /// older memtables and tables must not be consulted.
    Deleted,
}

/// The in-memory table of recent writes: every write is a new version, reads and writes
/// take no lock.
///
/// # Capacity
///
/// The capacity is a whole number of [`PAGE_SIZE`] pages. Each write charges its key, its
/// value and [`ENTRY_OVERHEAD`] to the approximate size. A write of a user key that the
/// memtable does not hold is admitted only if the size stays within the capacity; a write
/// of a key it already holds (an overwrite or a delete, which a flush can collapse) is
/// admitted up to the hard ceiling, `capacity + capacity / 4`. A write into an empty
/// memtable is always admitted, however large, since no fresh memtable could take it
/// either. A refused write returns [`Error::Full`] and changes nothing.
///
/// # Writes and freezing
///
/// Writers pass the writer gate ([`Memtable::enter`]); [`Memtable::freeze`] closes it and
/// waits for the writers inside, after which the memtable never changes again.
///
/// # Range tombstones
///
/// [`WriteGuard::insert_range_tombstone`] stores a range tombstone apart from the point
/// entries, which it does not change: [`Memtable::get`], [`Memtable::range`] and
/// [`Memtable::entries`] return point versions only, and the reader applies
/// [`Memtable::range_tombstones`] to them (and to older memtables and tables). Point reads
/// pay nothing for range tombstones; [`Memtable::range_tombstones`] pays one atomic load
/// when there are none.
pub struct Memtable {
    // Field order matters: the skiplist's keys point into the arena, so the skiplist is
    // declared (and dropped) first.
    map: SkipMap<Key, ()>,
    /// The bytes of every entry: user key, then value.
    arena: Arena,
    /// The arena's blocks as shareable [`Bytes`], set once the memtable is frozen and no
    /// write can land any more, so that reads hand out slices of them without copying.
    sealed: OnceLock<Sealed>,
    /// The approximate size in bytes. It orders nothing but itself, so every access is
    /// `Relaxed`; the compare-and-swap loop in `reserve` is what keeps it under the limits.
    size: AtomicUsize,
    capacity: usize,
    ceiling: usize,
    min: AtomicKey,
    max: AtomicKey,
    gate: WriterGate,
    /// The range tombstones, apart from the point entries.
    range_tombstones: RangeTombstones,
}

impl Memtable {
    /// A memtable of at least `capacity_bytes`, rounded up to whole pages (one at least).
    #[must_use]
    pub fn new(capacity_bytes: usize) -> Memtable {
        Memtable::with_pages(capacity_bytes.div_ceil(PAGE_SIZE))
    }

    /// A memtable of `pages` memory pages (one at least).
    #[must_use]
    pub fn with_pages(pages: usize) -> Memtable {
        let capacity = pages.max(1).saturating_mul(PAGE_SIZE);
        Memtable {
            map: SkipMap::new(),
            arena: Arena::new(chunk_size(capacity)),
            sealed: OnceLock::new(),
            size: AtomicUsize::new(0),
            capacity,
            ceiling: capacity.saturating_add(capacity / 4),
            min: AtomicKey::new(),
            max: AtomicKey::new(),
            gate: WriterGate::new(),
            range_tombstones: RangeTombstones::new(),
        }
    }

    /// The soft capacity in bytes: the limit for writes of keys the memtable does not hold.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The hard ceiling in bytes, `capacity + capacity / 4`: the limit for writes of keys
    /// the memtable holds.
    #[must_use]
    pub fn hard_ceiling(&self) -> usize {
        self.ceiling
    }

    /// The bytes charged so far: keys, values and [`ENTRY_OVERHEAD`] per entry, and
    /// [`range_tombstone_charge`] per range tombstone.
    #[must_use]
    pub fn approximate_size(&self) -> usize {
        self.size.load(Ordering::Relaxed)
    }

    /// The number of point entries (versions, point tombstones included); range
    /// tombstones are counted by [`Memtable::range_tombstone_count`].
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the memtable holds nothing: no point entry and no range tombstone. A
    /// memtable that holds only range tombstones is not empty, and a flush must write them.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty() && self.range_tombstones.is_empty()
    }

    /// The number of range tombstones stored (an empty range is not stored, a sequence
    /// number stored twice counts once).
    #[must_use]
    pub fn range_tombstone_count(&self) -> usize {
        self.range_tombstones.len()
    }

    /// The range tombstones in fragmented form, or `None` if the memtable holds none. The
    /// result holds every range tombstone whose insert returned before this call started.
    ///
    /// Without range tombstones this costs one atomic load. With them it is cached: while
    /// no range tombstone is inserted, a call costs that load, a load of the cache and an
    /// `Arc` clone; the first call after an insert rebuilds it (`O(n log n)` in the
    /// number of range tombstones). Once the memtable is frozen it never changes: every
    /// call returns the same `Arc`.
    #[must_use]
    pub fn range_tombstones(&self) -> Option<Arc<Fragments>> {
        self.range_tombstones.fragments()
    }

    /// The newest sequence number at or below `snapshot` of a range tombstone over `key`
    /// (see [`Fragments::max_covering`]): what a point lookup asks of each memtable, one
    /// atomic load when the memtable has no range tombstone.
    #[must_use]
    pub fn max_covering(&self, key: &[u8], snapshot: SeqNo) -> Option<SeqNo> {
        self.range_tombstones
            .with_fragments(|fragments| fragments.max_covering(key, snapshot))
            .flatten()
    }

    /// Passes the writer gate; `Err(Frozen)` once the memtable is frozen.
    ///
    /// The guard leaves the gate when dropped; keep it only for the inserts of one batch.
    ///
    /// # Errors
    /// [`Error::Frozen`] if [`Memtable::freeze`] has been called.
    pub fn enter(&self) -> Result<WriteGuard<'_>> {
        if self.gate.try_enter() {
            Ok(WriteGuard { memtable: self })
        } else {
            Err(Error::Frozen)
        }
    }

    /// Closes the writer gate and returns once no writer is inside: from then on the
    /// memtable never changes, and every write admitted before happens before the return.
    /// The fragments of the range tombstones are built here, once for good.
    pub fn freeze(&self) {
        self.gate.freeze();
        // Every range tombstone insert happened before the drained gate: this builds the
        // final cache, which no later read replaces.
        self.range_tombstones.freeze();
        self.sealed.get_or_init(|| {
            // SAFETY: the gate is frozen and drained: no writer is inside and none can
            // enter, so no arena allocation runs now or later, and every write into the
            // arena happened before `gate.freeze` returned, which happens before this.
            let blocks = unsafe { self.arena.sealed_blocks() };
            Sealed { blocks }
        });
    }

    /// Whether [`Memtable::freeze`] has been called.
    #[must_use]
    pub fn is_frozen(&self) -> bool {
        self.gate.is_frozen()
    }

    /// The smallest user key of a point entry, if any. Range tombstones do not count: a
    /// memtable of range tombstones only has no minimum.
    #[must_use]
    pub fn min_key(&self) -> Option<Bytes> {
        self.min.load()
    }

    /// The largest user key of a point entry, if any; range tombstones do not count.
    #[must_use]
    pub fn max_key(&self) -> Option<Bytes> {
        self.max.load()
    }

    /// The newest version of `user_key` with a sequence number at most `snapshot`, or
    /// `None` if the memtable holds no such version.
    #[must_use]
    pub fn get(&self, user_key: &[u8], snapshot: SeqNo) -> Option<Lookup> {
        self.get_version(user_key, snapshot)
            .map(|(_, lookup)| lookup)
    }

    /// Like [`Memtable::get`], with the sequence number of the version found (to weigh it
    /// against range tombstones).
    #[must_use]
    pub fn get_version(&self, user_key: &[u8], snapshot: SeqNo) -> Option<(SeqNo, Lookup)> {
        // One pin for the whole lookup: the pins inside nest in it and cost next to nothing.
        let _pinned = epoch::pin();
        if !self.may_hold(user_key) {
            return None;
        }
        // The first key at or after `(user_key, snapshot, Put)` is the newest version of
        // `user_key` at or below the snapshot, if it has the same user key.
        let probe = Probe::new(
            user_key,
            pack_trailer(snapshot.min(MAX_SEQNO), ValueKind::Put),
        );
        let entry = self
            .map
            .lower_bound(Bound::Included(&probe as &dyn KeyView))?;
        let key = entry.key();
        if !key.same_user_key(&probe) {
            return None;
        }
        let lookup = if key.is_tombstone() {
            Lookup::Deleted
        } else {
            Lookup::Value(self.value_bytes(key))
        };
        Some((key.seqno(), lookup))
    }

    /// The user-visible pairs in `(lower, upper)` at `snapshot`: for each user key the
    /// newest version at or below the snapshot, tombstones hiding the key. Double-ended.
    #[must_use]
    pub fn range(
        self: &Arc<Self>,
        lower: Bound<Bytes>,
        upper: Bound<Bytes>,
        snapshot: SeqNo,
    ) -> VisibleIter {
        VisibleIter::new(Arc::clone(self), lower, upper, snapshot)
    }

    /// Every version in `(lower, upper)` in internal-key order (user key ascending,
    /// sequence number descending). Double-ended; for a flush and the merging iterator.
    #[must_use]
    pub fn entries(self: &Arc<Self>, lower: Bound<Bytes>, upper: Bound<Bytes>) -> EntryIter {
        EntryIter::new(Arc::clone(self), lower, upper)
    }

    /// The skiplist, for the iterators.
    pub(crate) fn map(&self) -> &SkipMap<Key, ()> {
        &self.map
    }

    /// The user key of `key` (an entry of this memtable) as [`Bytes`]: a slice of the
    /// arena once the memtable is frozen, a copy before.
    pub(crate) fn user_key_bytes(&self, key: &Key) -> Bytes {
        self.arena_bytes(key, 0, key.user_key())
    }

    /// The value of `key` (an entry of this memtable) as [`Bytes`], like
    /// [`Memtable::user_key_bytes`].
    pub(crate) fn value_bytes(&self, key: &Key) -> Bytes {
        let value = key.value();
        if value.is_empty() {
            return Bytes::new();
        }
        self.arena_bytes(key, key.user_key().len(), value)
    }

    /// `bytes`, which lie `offset` bytes after the start of `key`'s data, as [`Bytes`].
    fn arena_bytes(&self, key: &Key, offset: usize, bytes: &[u8]) -> Bytes {
        match self.sealed.get() {
            Some(sealed) => sealed.slice(key.data().as_ptr() as usize + offset, bytes.len()),
            None => None,
        }
        .unwrap_or_else(|| Bytes::copy_from_slice(bytes))
    }

    /// Bytes of memory the arena holds for keys and values, used or not.
    #[must_use]
    pub fn arena_bytes_allocated(&self) -> usize {
        self.arena.allocated_bytes()
    }

    /// Whether `[lower, upper]` may overlap `[min, max]`; `false` when the memtable is
    /// empty. The bounds are on user keys.
    pub(crate) fn may_overlap(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
        let guard = epoch::pin();
        let (Some(min), Some(max)) = (self.min.peek(&guard), self.max.peek(&guard)) else {
            return false;
        };
        let above_min = match upper {
            Bound::Included(upper) => upper >= min.as_ref(),
            Bound::Excluded(upper) => upper > min.as_ref(),
            Bound::Unbounded => true,
        };
        let below_max = match lower {
            Bound::Included(lower) => lower <= max.as_ref(),
            Bound::Excluded(lower) => lower < max.as_ref(),
            Bound::Unbounded => true,
        };
        above_min && below_max
    }

    /// Whether `user_key` lies within `[min, max]`, i.e. the skiplist may hold it.
    fn may_hold(&self, user_key: &[u8]) -> bool {
        self.may_overlap(Bound::Included(user_key), Bound::Included(user_key))
    }

    /// Whether the skiplist holds some version of `user_key`.
    fn holds(&self, user_key: &[u8]) -> bool {
        if !self.may_hold(user_key) {
            return false;
        }
        let probe = Probe::new(user_key, TRAILER_FIRST);
        self.map
            .lower_bound(Bound::Included(&probe as &dyn KeyView))
            .is_some_and(|entry| entry.key().same_user_key(&probe))
    }

    /// Adds `charge` to the size if the result stays within `limit` (or the memtable is
    /// empty). A compare-and-swap loop rather than `fetch_add` and a refund, so that no
    /// reader, and no concurrent writer deciding on admission, ever sees the size above
    /// the limit.
    fn reserve(&self, charge: usize, limit: usize) -> Result<()> {
        let mut size = self.size.load(Ordering::Relaxed);
        loop {
            let grown = size.saturating_add(charge);
            if grown > limit && size != 0 {
                return Err(Error::Full {
                    size,
                    charge,
                    limit,
                });
            }
            match self
                .size
                .compare_exchange_weak(size, grown, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => size = actual,
            }
        }
    }

    /// Returns `charge` to the size account after a write that did not insert.
    fn refund(&self, charge: usize) {
        self.size.fetch_sub(charge, Ordering::Relaxed);
    }

    /// Inserts one version; the caller holds a [`WriteGuard`].
    fn insert(
        &self,
        user_key: &[u8],
        seqno: SeqNo,
        kind: ValueKind,
        value: &[u8],
        checked: bool,
    ) -> Result<()> {
        if seqno > MAX_SEQNO {
            return Err(Error::SeqnoTooLarge { seqno });
        }
        if u32::try_from(user_key.len()).is_err() || u32::try_from(value.len()).is_err() {
            return Err(Error::TooLarge {
                key_len: user_key.len(),
                value_len: value.len(),
            });
        }
        let charge = charge(user_key, value);
        // One pin for the whole write: the pins of the key range, the holds check and the
        // skiplist insert nest in it and cost next to nothing.
        let _pinned = epoch::pin();
        if checked {
            if let Err(full) = self.reserve(charge, self.capacity) {
                if !self.holds(user_key) {
                    return Err(full);
                }
                self.reserve(charge, self.ceiling)?;
            }
        } else {
            self.size.fetch_add(charge, Ordering::Relaxed);
        }
        // Widen [min, max] before the entry is linked, so that at every instant the range
        // covers every entry a reader can find.
        self.min.fetch_min(user_key);
        self.max.fetch_max(user_key);
        let inserted = Cell::new(false);
        // The bytes go into the arena first; the skiplist insert publishes them. A
        // duplicate leaves its copy unused in the arena, which only a caller bug causes.
        let key = Key::write(&self.arena, user_key, value, pack_trailer(seqno, kind));
        // `get_or_insert_with` never replaces an existing entry: the skiplist stays
        // append-only (see `docs/memtable.md` on the crossbeam-skiplist 0.1.3 gaps).
        drop(self.map.get_or_insert_with(key, || inserted.set(true)));
        if inserted.get() {
            Ok(())
        } else {
            self.refund(charge);
            Err(Error::Duplicate { seqno })
        }
    }
}

/// The bytes one entry charges to the size account.
#[must_use]
pub fn charge(user_key: &[u8], value: &[u8]) -> usize {
    user_key
        .len()
        .saturating_add(value.len())
        .saturating_add(ENTRY_OVERHEAD)
}

/// The bytes a range tombstone `[start, end)` charges to the size account: its start, its
/// end and [`ENTRY_OVERHEAD`]; zero for an empty range (`end <= start`), which is not
/// stored.
#[must_use]
pub fn range_tombstone_charge(start: &[u8], end: Option<&[u8]>) -> usize {
    if end.is_some_and(|end| end <= start) {
        return 0;
    }
    start
        .len()
        .saturating_add(end.map_or(0, <[u8]>::len))
        .saturating_add(ENTRY_OVERHEAD)
}

impl fmt::Debug for Memtable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memtable")
            .field("len", &self.len())
            .field("range_tombstones", &self.range_tombstone_count())
            .field("approximate_size", &self.approximate_size())
            .field("capacity", &self.capacity)
            .field("frozen", &self.is_frozen())
            .finish_non_exhaustive()
    }
}

/// Proof of passage through the writer gate: writes go through it, and dropping it leaves
/// the gate.
#[derive(Debug)]
pub struct WriteGuard<'a> {
    memtable: &'a Memtable,
}

impl WriteGuard<'_> {
    /// Writes `value` for `key` at `seqno`, subject to the capacity. The key and value are
    /// copied into the memtable.
    ///
    /// # Errors
    /// [`Error::Full`] if the memtable has no room for it (nothing changed),
    /// [`Error::Duplicate`] if this key and sequence number are already stored,
    /// [`Error::SeqnoTooLarge`] above [`MAX_SEQNO`], [`Error::TooLarge`] for a key or value
    /// of 4 GiB or more.
    pub fn put(&self, key: impl AsRef<[u8]>, seqno: SeqNo, value: impl AsRef<[u8]>) -> Result<()> {
        self.insert(key, seqno, ValueKind::Put, value)
    }

    /// Writes a tombstone for `key` at `seqno`, subject to the capacity.
    ///
    /// # Errors
    /// As for [`WriteGuard::put`].
    pub fn delete(&self, key: impl AsRef<[u8]>, seqno: SeqNo) -> Result<()> {
        self.insert(key, seqno, ValueKind::Delete, [])
    }

    /// Writes one version of any kind, subject to the capacity.
    ///
    /// # Errors
    /// As for [`WriteGuard::put`].
    pub fn insert(
        &self,
        key: impl AsRef<[u8]>,
        seqno: SeqNo,
        kind: ValueKind,
        value: impl AsRef<[u8]>,
    ) -> Result<()> {
        self.memtable
            .insert(key.as_ref(), seqno, kind, value.as_ref(), true)
    }

    /// Writes one version without checking the capacity (the size is still charged): for
    /// writes that are already in the log, such as recovery replay or an admitted batch.
    ///
    /// A version that is already stored (same key, sequence number and kind) is left as it
    /// is and not charged twice.
    ///
    /// # Panics
    /// If `seqno` exceeds [`MAX_SEQNO`] or the key or value is 4 GiB or longer: the log
    /// never holds such a write.
    pub fn insert_unchecked(
        &self,
        key: impl AsRef<[u8]>,
        seqno: SeqNo,
        kind: ValueKind,
        value: impl AsRef<[u8]>,
    ) {
        match self
            .memtable
            .insert(key.as_ref(), seqno, kind, value.as_ref(), false)
        {
            Ok(()) | Err(Error::Duplicate { .. }) => {}
            Err(error) => panic!("unchecked memtable insert failed: {error}"),
        }
    }

    /// Stores the range tombstone `[start, end)` at `seqno` (`end` `None`: no upper bound),
    /// which hides every version below `seqno` of every key in the range. Like
    /// [`WriteGuard::insert_unchecked`], for a write already in the log: the capacity is
    /// not checked, but [`range_tombstone_charge`] is charged.
    ///
    /// A sequence number already stored as a range tombstone is left as it is and not
    /// charged twice (recovery may replay it). An empty range (`end <= start`) deletes
    /// nothing and is neither stored nor charged. The point entries, and the memtable's
    /// [`min_key`](Memtable::min_key) and [`max_key`](Memtable::max_key), are unchanged.
    ///
    /// # Panics
    /// If `seqno` exceeds [`MAX_SEQNO`]: the log never holds such a write.
    pub fn insert_range_tombstone(&self, start: &[u8], end: Option<&[u8]>, seqno: SeqNo) {
        assert!(
            seqno <= MAX_SEQNO,
            "unchecked memtable insert failed: {}",
            Error::SeqnoTooLarge { seqno }
        );
        let memtable = self.memtable;
        if memtable.range_tombstones.insert(start, end, seqno) {
            memtable
                .size
                .fetch_add(range_tombstone_charge(start, end), Ordering::Relaxed);
        }
    }

    /// The memtable this guard writes to.
    #[must_use]
    pub fn memtable(&self) -> &Memtable {
        self.memtable
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.memtable.gate.leave();
    }
}

/// The blocks of a frozen memtable's arena as [`Bytes`], sorted by address.
struct Sealed {
    blocks: Vec<(usize, Bytes)>,
}

impl Sealed {
    /// The `len` bytes at address `at` as a slice of the block holding them; `None` if no
    /// block does (never for bytes of an entry of this memtable).
    fn slice(&self, at: usize, len: usize) -> Option<Bytes> {
        let index = self
            .blocks
            .partition_point(|(start, _)| *start <= at)
            .checked_sub(1)?;
        let (start, block) = &self.blocks[index];
        let offset = at - start;
        (offset + len <= block.len()).then(|| block.slice(offset..offset + len))
    }
}
