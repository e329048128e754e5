//! Reads: point lookups, scans ([`Iter`]) and snapshots ([`Snapshot`]).
//!
//! Which comes first, the state or the sequence number? A read loads the state first and
//! the visible sequence number second. Every batch at or below the loaded number was
//! inserted into a memtable that is in the loaded state or in a newer one; a newer one can
//! only hold batches that came after the loaded state was installed, and the state holds
//! every batch before that (a memtable leaves a state only together with the arrival of
//! its table, in one swap). So the read sees exactly the writes up to some point that lies
//! between its start and its end: a consistent prefix, never half a batch. The other order
//! would be wrong once compaction drops versions: a read that took sequence number `s`,
//! then loaded a state compacted meanwhile, could miss the version it should see at `s`
//! (only registered snapshots protect their versions). A loaded state is immutable, so
//! the versions in it stay put however long the read takes.
//!
//! A [`Snapshot`] registers its sequence number before it is used; compaction keeps every
//! version a registered snapshot can see, so a snapshot read can load the latest state.

use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use bytes::Bytes;
use floe_core::SeqNo;

use crate::error::{Error, Result};
use crate::iter::{MergingIter, VisibleIter, prefix_upper_bound};
use crate::keyspace::{Keyspace, KeyspaceRef};
use crate::readable::{Readable, key_slices, multi_get};
use crate::shared::Shared;
use crate::txn::{Overlay, PendingWrite};
use crate::version::{State, Tree};

/// An iterator over key-value pairs in ascending key order (descending from the back),
/// reading one consistent view of the database: it never shows a write made after it was
/// created, nor half of a [`crate::WriteBatch`].
///
/// It keeps the files it reads alive until it is dropped. After an `Err` item it ends.
pub struct Iter {
    inner: Option<Scan>,
    /// Keeps the memtables and tables of the view alive (and their files on disk).
    _state: Option<Arc<State>>,
    /// The one item of an iterator that cannot read (its keyspace was dropped).
    error: Option<Error>,
}

impl fmt::Debug for Iter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

/// What an [`Iter`] reads: the snapshot's view, or a transaction's (its pending writes
/// merged over the snapshot's view).
enum Scan {
    Plain(VisibleIter),
    Pending(Overlay<VisibleIter>),
}

impl Iter {
    /// This iterator with a transaction's pending writes within its bounds (ascending, one
    /// per key) merged in.
    pub(crate) fn with_pending(mut self, pending: Vec<PendingWrite>) -> Iter {
        if pending.is_empty() {
            return self;
        }
        self.inner = match self.inner.take() {
            Some(Scan::Plain(view)) => Some(Scan::Pending(Overlay::new(view, pending))),
            // An empty range holds no pending write either; a failed one stays failed.
            other => other,
        };
        self
    }

    fn empty() -> Iter {
        Iter {
            inner: None,
            _state: None,
            error: None,
        }
    }

    /// An iterator whose only item is `error`.
    pub(crate) fn failed(error: Error) -> Iter {
        Iter {
            error: Some(error),
            ..Iter::empty()
        }
    }
}

impl Iterator for Iter {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.error.take() {
            return Some(Err(error));
        }
        match self.inner.as_mut()? {
            Scan::Plain(view) => view.next(),
            Scan::Pending(view) => view.next(),
        }
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.error.take() {
            return Some(Err(error));
        }
        match self.inner.as_mut()? {
            Scan::Plain(view) => view.next_back(),
            Scan::Pending(view) => view.next_back(),
        }
    }
}

/// Converts user range bounds into owned byte bounds.
pub(crate) fn owned_bounds<K: AsRef<[u8]>, R: RangeBounds<K>>(
    range: &R,
) -> (Bound<Bytes>, Bound<Bytes>) {
    let own = |bound: Bound<&K>| match bound {
        Bound::Included(key) => Bound::Included(Bytes::copy_from_slice(key.as_ref())),
        Bound::Excluded(key) => Bound::Excluded(Bytes::copy_from_slice(key.as_ref())),
        Bound::Unbounded => Bound::Unbounded,
    };
    (own(range.start_bound()), own(range.end_bound()))
}

/// The bounds of the keys that start with `prefix`.
pub(crate) fn prefix_bounds(prefix: &[u8]) -> (Bound<Bytes>, Bound<Bytes>) {
    let lower = Bound::Included(Bytes::copy_from_slice(prefix));
    let upper = prefix_upper_bound(prefix).map_or(Bound::Unbounded, Bound::Excluded);
    (lower, upper)
}

/// Whether no key can lie within the bounds (a reversed or empty range).
fn is_empty_range(lower: &Bound<Bytes>, upper: &Bound<Bytes>) -> bool {
    match (lower, upper) {
        (Bound::Included(l), Bound::Included(u)) => l > u,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u))
        | (Bound::Excluded(l), Bound::Included(u)) => l >= u,
        _ => false,
    }
}

/// A scan of keyspace `keyspace` (`None`: `"default"`) in `state` at `snapshot` within the
/// bounds.
pub(crate) fn scan(
    state: Arc<State>,
    keyspace: Option<&KeyspaceRef>,
    snapshot: SeqNo,
    lower: Bound<Bytes>,
    upper: Bound<Bytes>,
) -> Iter {
    let tree = match tree_of(&state, keyspace) {
        Ok(tree) => tree,
        Err(err) => return Iter::failed(err),
    };
    if is_empty_range(&lower, &upper) {
        return Iter::empty();
    }
    let sources = tree.sources(&lower, &upper);
    let ranges = tree.scan_ranges(&lower, &upper, snapshot);
    Iter {
        inner: Some(Scan::Plain(
            VisibleIter::new(MergingIter::new(sources), snapshot).with_ranges(ranges),
        )),
        _state: Some(state),
        error: None,
    }
}

/// The tree of keyspace `keyspace` (`None`: `"default"`) in `state`, or the error of a
/// dropped keyspace.
fn tree_of<'s>(state: &'s State, keyspace: Option<&KeyspaceRef>) -> Result<&'s Arc<Tree>> {
    match keyspace {
        None => Ok(state.default_tree()),
        Some(keyspace) => state
            .tree(keyspace.id)
            .ok_or_else(|| keyspace.dropped_error()),
    }
}

impl Shared {
    /// The latest value of `key` in `"default"`.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.counters.paths.get(|| {
            // State first, then the sequence number (see the module docs).
            let state = self.state.load();
            let snapshot = self.publisher.visible();
            state.default_tree().get(key, snapshot)
        })
    }

    /// The latest value of `key` in `keyspace`.
    pub(crate) fn get_in(&self, keyspace: &KeyspaceRef, key: &[u8]) -> Result<Option<Bytes>> {
        keyspace.check_usable(self.uid)?;
        self.counters.paths.get(|| {
            let state = self.state.load();
            let snapshot = self.publisher.visible();
            tree_of(&state, Some(keyspace))?.get(key, snapshot)
        })
    }

    /// A scan of the latest data of `"default"` within the bounds.
    pub(crate) fn scan(&self, lower: Bound<Bytes>, upper: Bound<Bytes>) -> Iter {
        let state = self.state.load_full();
        let snapshot = self.publisher.visible();
        scan(state, None, snapshot, lower, upper)
    }

    /// A scan of the latest data of `keyspace` within the bounds.
    pub(crate) fn scan_in(
        &self,
        keyspace: &KeyspaceRef,
        lower: Bound<Bytes>,
        upper: Bound<Bytes>,
    ) -> Iter {
        if let Err(err) = keyspace.check_usable(self.uid) {
            return Iter::failed(err);
        }
        let state = self.state.load_full();
        let snapshot = self.publisher.visible();
        scan(state, Some(keyspace), snapshot, lower, upper)
    }
}

impl Shared {
    /// The latest values of `keys` in keyspace `keyspace` (`None`: `"default"`), all at
    /// one point in time.
    pub(crate) fn multi_get(
        &self,
        keyspace: Option<&KeyspaceRef>,
        keys: &[&[u8]],
    ) -> Result<Vec<Option<Bytes>>> {
        if let Some(keyspace) = keyspace {
            keyspace.check_usable(self.uid)?;
        }
        // State first, then the sequence number (see the module docs). The state is held
        // by a count rather than a guard, as a batch of keys can take a while.
        let state = self.state.load_full();
        let snapshot = self.publisher.visible();
        multi_get(tree_of(&state, keyspace)?, keys, snapshot)
    }
}

/// A consistent read view of the database at one point in time, in one keyspace
/// (`"default"`, or the one [`Snapshot::keyspace`] names); the point in time is the same for
/// every keyspace.
///
/// Reads through a snapshot see exactly the writes acknowledged before it was taken, however
/// many writes, flushes and compactions happen after. Versions it can see are kept until it
/// is dropped, so drop snapshots you no longer need.
pub struct Snapshot {
    shared: Arc<Shared>,
    seqno: SeqNo,
    /// The keyspace it reads (`None`: `"default"`).
    keyspace: Option<Arc<KeyspaceRef>>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("seqno", &self.seqno)
            .finish()
    }
}

impl Snapshot {
    /// Takes a snapshot of `shared` at its visible sequence number.
    pub(crate) fn new(shared: &Arc<Shared>) -> Snapshot {
        // Registered under the registry lock so that a compaction that reads the registry
        // after this point keeps this snapshot's versions, and one that read it before
        // only had inputs at or below `seqno` (it takes its inputs before the registry).
        let seqno = shared.snapshots.register(|| shared.publisher.visible());
        Snapshot {
            shared: Arc::clone(shared),
            seqno,
            keyspace: None,
        }
    }

    /// The same point in time, read in `keyspace` (which must belong to the same
    /// database: reads of another database's keyspace fail with
    /// [`crate::Error::InvalidArgument`]). Both snapshots stay valid; each keeps the
    /// versions it can see until it is dropped.
    #[must_use]
    pub fn keyspace(&self, keyspace: &Keyspace) -> Snapshot {
        // The registry holds this snapshot's number already, so nothing can drop the
        // versions it sees between here and the new registration.
        self.shared.snapshots.register(|| self.seqno);
        Snapshot {
            shared: Arc::clone(&self.shared),
            seqno: self.seqno,
            keyspace: Some(Arc::clone(keyspace.handle())),
        }
    }

    /// The keyspace of this snapshot, checked usable.
    fn checked_keyspace(&self) -> Result<Option<&KeyspaceRef>> {
        match &self.keyspace {
            None => Ok(None),
            Some(keyspace) => {
                keyspace.check_usable(self.shared.uid)?;
                Ok(Some(keyspace))
            }
        }
    }

    /// The value of `key` as of this snapshot.
    ///
    /// # Errors
    /// [`crate::Error::Corruption`] if a damaged table is read, [`crate::Error::Io`] if
    /// reading fails.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let keyspace = self.checked_keyspace()?;
        self.shared.counters.paths.get(|| {
            let state = self.shared.state.load();
            tree_of(&state, keyspace)?.get(key.as_ref(), self.seqno)
        })
    }

    /// Every key-value pair as of this snapshot, in key order.
    pub fn iter(&self) -> Iter {
        self.scan(Bound::Unbounded, Bound::Unbounded)
    }

    /// The key-value pairs within `range` as of this snapshot, in key order.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        let (lower, upper) = owned_bounds(&range);
        self.scan(lower, upper)
    }

    /// The key-value pairs whose key starts with `prefix` as of this snapshot, in key order.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let (lower, upper) = prefix_bounds(prefix.as_ref());
        self.scan(lower, upper)
    }

    fn scan(&self, lower: Bound<Bytes>, upper: Bound<Bytes>) -> Iter {
        match self.checked_keyspace() {
            Ok(keyspace) => scan(
                self.shared.state.load_full(),
                keyspace,
                self.seqno,
                lower,
                upper,
            ),
            Err(err) => Iter::failed(err),
        }
    }
}

impl Readable for Snapshot {
    fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        Snapshot::get(self, key)
    }

    fn iter(&self) -> Iter {
        Snapshot::iter(self)
    }

    fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        Snapshot::range(self, range)
    }

    fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        Snapshot::prefix(self, prefix)
    }

    fn multi_get<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Bytes>>> {
        let keyspace = self.checked_keyspace()?;
        let state = self.shared.state.load_full();
        multi_get(tree_of(&state, keyspace)?, &key_slices(keys), self.seqno)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.shared.snapshots.release(self.seqno);
    }
}
