//! The memtable's iterators: [`EntryIter`] over every stored version, and [`VisibleIter`]
//! over the user-visible pairs at a snapshot. Both own an `Arc<Memtable>`, so they are
//! `'static + Send`, and both are double-ended.
//!
//! Both walk the skiplist with node cursors (`crossbeam_skiplist::map::Entry`), which
//! step to a neighbour in O(1) instead of searching again from the head for each item.
//! A cursor borrows the skiplist, which lives in the same `Arc` that the iterator owns:
//! [`RawCursor`] holds the cursors with their lifetime extended to `'static`, and the
//! `Arc` after them, so that they are dropped first. `docs/memtable.md` records how this
//! compares with re-seeking from the last key on each step.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;
use crossbeam_skiplist::map::Entry;
use floe_core::{InternalKey, SeqNo};

use crate::key::{BoundKey, Key, KeyView, lower_internal, upper_internal};
use crate::memtable::Memtable;

/// A double-ended walk over the stored versions within internal-key bounds.
struct RawCursor {
    // Field order matters: the cursors borrow the skiplist inside `memtable` and must be
    // dropped before it, and struct fields drop in declaration order.
    /// The entry last returned from the front; `None` before the first.
    front: Option<Entry<'static, Key, ()>>,
    /// The entry last returned from the back; `None` before the first.
    back: Option<Entry<'static, Key, ()>>,
    lower: Bound<BoundKey>,
    upper: Bound<BoundKey>,
    /// Set once the two ends met or a bound was passed: nothing more to return.
    finished: bool,
    memtable: Arc<Memtable>,
}

impl RawCursor {
    fn new(memtable: Arc<Memtable>, lower: Bound<BoundKey>, upper: Bound<BoundKey>) -> RawCursor {
        let empty = match (&lower, &upper) {
            (Bound::Included(l), Bound::Included(u)) => view(l) > view(u),
            (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u) | Bound::Included(u)) => {
                view(l) >= view(u)
            }
            _ => false,
        };
        RawCursor {
            front: None,
            back: None,
            lower,
            upper,
            finished: empty,
            memtable,
        }
    }

    /// A cursor that returns nothing.
    fn empty(memtable: Arc<Memtable>) -> RawCursor {
        RawCursor {
            front: None,
            back: None,
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
            finished: true,
            memtable,
        }
    }

    /// The skiplist, with the lifetime of the cursors.
    fn map(&self) -> &'static SkipMap<Key, ()> {
        let map: *const SkipMap<Key, ()> = self.memtable.map();
        // SAFETY: the skiplist lives inside the `Arc<Memtable>` that `self` owns, so it
        // stays at this address and alive for as long as `self` does. The `'static`
        // borrows made from it are stored only in `self.front` and `self.back`, which are
        // dropped before `self.memtable` (declaration order). The keys handed out point
        // into the same memtable's arena and are kept only by the iterator that owns this
        // cursor, which turns them into owned `Bytes` before they leave it, so no borrow
        // outlives the `Arc`. Entries are never removed from the skiplist, and a cursor
        // holds a reference count on its node in any case.
        unsafe { &*map }
    }

    /// The internal key and value of `key`, an entry this cursor returned.
    fn materialize(&self, key: &Key) -> (InternalKey, Bytes) {
        let (seqno, kind) = key.seqno_and_kind();
        (
            InternalKey {
                user_key: self.memtable.user_key_bytes(key),
                seqno,
                kind,
            },
            self.memtable.value_bytes(key),
        )
    }

    /// The user key and value of `key`, an entry this cursor returned.
    fn pair(&self, key: &Key) -> (Bytes, Bytes) {
        (
            self.memtable.user_key_bytes(key),
            self.memtable.value_bytes(key),
        )
    }

    fn next(&mut self) -> Option<Key> {
        if self.finished {
            return None;
        }
        let candidate = match &self.front {
            Some(entry) => entry.next(),
            None => self.map().lower_bound(as_view(&self.lower)),
        };
        let accepted = candidate.filter(|entry| {
            within_upper(entry.key(), &self.upper)
                && self
                    .back
                    .as_ref()
                    .is_none_or(|back| entry.key() < back.key())
        });
        self.finish_or_keep(accepted, true)
    }

    fn next_back(&mut self) -> Option<Key> {
        if self.finished {
            return None;
        }
        let candidate = match &self.back {
            Some(entry) => entry.prev(),
            None => self.map().upper_bound(as_view(&self.upper)),
        };
        let accepted = candidate.filter(|entry| {
            within_lower(entry.key(), &self.lower)
                && self
                    .front
                    .as_ref()
                    .is_none_or(|front| entry.key() > front.key())
        });
        self.finish_or_keep(accepted, false)
    }

    fn finish_or_keep(
        &mut self,
        entry: Option<Entry<'static, Key, ()>>,
        front: bool,
    ) -> Option<Key> {
        let Some(entry) = entry else {
            self.finished = true;
            // Release the node references now rather than when the iterator is dropped.
            self.front = None;
            self.back = None;
            return None;
        };
        let item = *entry.key();
        if front {
            self.front = Some(entry);
        } else {
            self.back = Some(entry);
        }
        Some(item)
    }
}

/// A key as the comparisons through [`KeyView`] take it.
fn view(key: &dyn KeyView) -> &dyn KeyView {
    key
}

fn as_view(bound: &Bound<BoundKey>) -> Bound<&dyn KeyView> {
    match bound {
        Bound::Included(key) => Bound::Included(key as &dyn KeyView),
        Bound::Excluded(key) => Bound::Excluded(key as &dyn KeyView),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn within_upper(key: &Key, upper: &Bound<BoundKey>) -> bool {
    match upper {
        Bound::Included(upper) => view(key) <= view(upper),
        Bound::Excluded(upper) => view(key) < view(upper),
        Bound::Unbounded => true,
    }
}

fn within_lower(key: &Key, lower: &Bound<BoundKey>) -> bool {
    match lower {
        Bound::Included(lower) => view(key) >= view(lower),
        Bound::Excluded(lower) => view(key) > view(lower),
        Bound::Unbounded => true,
    }
}

/// Builds the raw cursor for user-key bounds, or an empty one when the bounds lie outside
/// the memtable's `[min, max]` (the skiplist is then not touched at all).
fn cursor(memtable: Arc<Memtable>, lower: Bound<Bytes>, upper: Bound<Bytes>) -> RawCursor {
    if !memtable.may_overlap(as_slice(&lower), as_slice(&upper)) {
        return RawCursor::empty(memtable);
    }
    RawCursor::new(memtable, lower_internal(lower), upper_internal(upper))
}

fn as_slice(bound: &Bound<Bytes>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_ref()),
        Bound::Excluded(key) => Bound::Excluded(key.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Every stored version within user-key bounds, in internal-key order: user key
/// ascending, then sequence number descending. Tombstones are included (with an empty
/// value).
pub struct EntryIter {
    raw: RawCursor,
}

impl EntryIter {
    pub(crate) fn new(memtable: Arc<Memtable>, lower: Bound<Bytes>, upper: Bound<Bytes>) -> Self {
        EntryIter {
            raw: cursor(memtable, lower, upper),
        }
    }
}

impl Iterator for EntryIter {
    type Item = (InternalKey, Bytes);

    fn next(&mut self) -> Option<Self::Item> {
        let key = self.raw.next()?;
        Some(self.raw.materialize(&key))
    }
}

impl DoubleEndedIterator for EntryIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        let key = self.raw.next_back()?;
        Some(self.raw.materialize(&key))
    }
}

impl std::fmt::Debug for EntryIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryIter")
            .field("finished", &self.raw.finished)
            .finish_non_exhaustive()
    }
}

/// The user-visible pairs within user-key bounds at a snapshot, in user-key order: for
/// each key the newest version at or below the snapshot, skipped when it is a tombstone.
///
/// Both ends consume the same underlying cursor. An entry one end reads ahead (to see
/// where a user key's versions stop) is parked in a slot that both ends draw from, and a
/// user key decided by one end is never decided again by the other.
pub struct VisibleIter {
    raw: RawCursor,
    snapshot: SeqNo,
    /// An entry the front read past the versions of the key it decided.
    pending_front: Option<Key>,
    /// An entry the back read past the versions of the key it decided.
    pending_back: Option<Key>,
    /// A version of the user key the front decided last (returned or hidden by a
    /// tombstone).
    front_key: Option<Key>,
    /// A version of the user key the back decided last.
    back_key: Option<Key>,
    done: bool,
}

impl VisibleIter {
    pub(crate) fn new(
        memtable: Arc<Memtable>,
        lower: Bound<Bytes>,
        upper: Bound<Bytes>,
        snapshot: SeqNo,
    ) -> Self {
        VisibleIter {
            raw: cursor(memtable, lower, upper),
            snapshot,
            pending_front: None,
            pending_back: None,
            front_key: None,
            back_key: None,
            done: false,
        }
    }

    /// The next unconsumed entry from the front, whichever slot holds it.
    fn pull_front(&mut self) -> Option<Key> {
        self.pending_front
            .take()
            .or_else(|| self.raw.next())
            .or_else(|| self.pending_back.take())
    }

    /// The next unconsumed entry from the back, whichever slot holds it.
    fn pull_back(&mut self) -> Option<Key> {
        self.pending_back
            .take()
            .or_else(|| self.raw.next_back())
            .or_else(|| self.pending_front.take())
    }

    fn stop<T>(&mut self) -> Option<T> {
        self.done = true;
        self.pending_front = None;
        self.pending_back = None;
        None
    }
}

/// Whether `decided` holds a version of the user key of `key`.
fn decided(decided: Option<&Key>, key: &Key) -> bool {
    decided.is_some_and(|decided| decided.same_user_key(key))
}

impl Iterator for VisibleIter {
    type Item = (Bytes, Bytes);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let Some(key) = self.pull_front() else {
                return self.stop();
            };
            if key.seqno() > self.snapshot {
                continue;
            }
            // The first version at or below the snapshot decides this user key.
            if decided(self.back_key.as_ref(), &key) {
                return self.stop();
            }
            // Consume the older versions of the same key.
            while let Some(older) = self.pull_front() {
                if !older.same_user_key(&key) {
                    self.pending_front = Some(older);
                    break;
                }
            }
            self.front_key = Some(key);
            if !key.is_tombstone() {
                return Some(self.raw.pair(&key));
            }
        }
        None
    }
}

impl DoubleEndedIterator for VisibleIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        while !self.done {
            let Some(first) = self.pull_back() else {
                return self.stop();
            };
            // From the back, a key's versions come oldest first: the last one at or below
            // the snapshot is the newest visible.
            let mut newest = (first.seqno() <= self.snapshot).then_some(first);
            while let Some(newer) = self.pull_back() {
                if !newer.same_user_key(&first) {
                    self.pending_back = Some(newer);
                    break;
                }
                if newer.seqno() <= self.snapshot {
                    newest = Some(newer);
                }
            }
            if decided(self.front_key.as_ref(), &first) {
                return self.stop();
            }
            let Some(key) = newest else {
                continue;
            };
            self.back_key = Some(first);
            if !key.is_tombstone() {
                return Some(self.raw.pair(&key));
            }
        }
        None
    }
}

impl std::fmt::Debug for VisibleIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisibleIter")
            .field("snapshot", &self.snapshot)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
