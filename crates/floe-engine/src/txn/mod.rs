//! [`Transaction`]: serializable optimistic transactions across keyspaces.
//!
//! A transaction reads one snapshot, taken when it begins, with its own writes merged in,
//! and buffers its writes. `commit` hands them to the group commit as one batch that
//! carries the transaction's *footprint*: every key it read or wrote and every range it
//! scanned. The commit leader validates the footprint under the log mutex, right before
//! it assigns the batch its sequence numbers (see `validate.rs`): if anyone wrote into the
//! footprint after the snapshot, the batch is dropped from the group and the commit fails
//! with [`Error::Conflict`]. Otherwise nothing can come between the validation and the
//! batch's own sequence numbers, so the transaction's reads were still current at the
//! point where its writes land: committed transactions are serializable in the order of
//! their sequence numbers, and transactions that only read never conflict (their reads
//! were one consistent snapshot).
//!
//! There is no lock per key and no global write lock: transactions and plain writes
//! share the group commit, its log write and its fsync.

mod history;
mod overlay;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use bytes::Bytes;
use floe_core::SeqNo;

use crate::error::{Error, Result};
use crate::keyspace::{Keyspace, KeyspaceId};
use crate::read::{Iter, owned_bounds, prefix_bounds, scan};
use crate::shared::Shared;
use crate::version::as_slice_bound;
use crate::write::{WriteBatch, WriteOptions};

pub(crate) use history::{Flushed, History};
pub(crate) use overlay::{Overlay, PendingWrite};
pub(crate) use validate::{Footprint, validate};

/// What a transaction's commit batch carries for the commit leader: the snapshot and the
/// footprint to validate. A commit that fails validation leaves its group unlogged, and
/// its writer gets [`Error::Conflict`].
#[derive(Debug)]
pub(crate) struct Validation {
    pub(crate) snapshot: SeqNo,
    pub(crate) footprint: Footprint,
}

/// A serializable optimistic transaction, from [`crate::Db::transaction`].
///
/// Reads see the database as of the moment the transaction began, plus its own writes;
/// writes are buffered until [`Transaction::commit`], which applies all of them
/// atomically or, if anyone wrote a key the transaction read or wrote (or a key inside a
/// range it scanned, including keys that did not exist then) after it began, returns
/// [`Error::Conflict`] and applies nothing. A transaction that wrote nothing always
/// commits. Dropping a transaction without committing it rolls it back.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let db = floe_engine::Db::open(dir.path())?;
/// let accounts = db.keyspace("accounts")?;
/// accounts.put("alice", "100")?;
/// loop {
///     let mut tx = db.transaction();
///     let balance: u64 = std::str::from_utf8(&tx.get(&accounts, "alice")?.unwrap())
///         .unwrap()
///         .parse()
///         .unwrap();
///     tx.put(&accounts, "alice", (balance - 30).to_string());
///     tx.put(&accounts, "bob", "30");
///     match tx.commit() {
///         Err(floe_engine::Error::Conflict { .. }) => continue, // someone else wrote: retry
///         other => break other?,
///     }
/// }
/// assert_eq!(accounts.get("alice")?.as_deref(), Some(&b"70"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Transaction {
    shared: Arc<Shared>,
    snapshot: SeqNo,
    /// The pending writes: a value, or `None` for a deletion.
    writes: BTreeMap<(KeyspaceId, Bytes), Option<Bytes>>,
    /// A handle of each keyspace written, for the commit batch.
    keyspaces: HashMap<KeyspaceId, Keyspace>,
    footprint: Footprint,
    /// Bytes of keys and values written, against `Options::max_transaction_bytes`.
    bytes: usize,
    /// Whether the snapshot and the history registration are still held.
    live: bool,
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("snapshot", &self.snapshot)
            .field("writes", &self.writes.len())
            .finish_non_exhaustive()
    }
}

impl Transaction {
    /// Begins a transaction on `shared` at its visible sequence number.
    pub(crate) fn begin(shared: &Arc<Shared>) -> Transaction {
        // The snapshot is registered for reads (so compaction keeps what it sees) and for
        // validation (so flushes keep the memtables it may need), in one step under the
        // history's lock (see `History::begin`).
        let snapshot = shared
            .history
            .begin(|| shared.snapshots.register(|| shared.publisher.visible()));
        Transaction {
            shared: Arc::clone(shared),
            snapshot,
            writes: BTreeMap::new(),
            keyspaces: HashMap::new(),
            footprint: Footprint::default(),
            bytes: 0,
            live: true,
        }
    }

    /// The value of `key` in `keyspace` as this transaction sees it: its own write, or the
    /// snapshot's value.
    ///
    /// # Errors
    /// [`Error::KeyspaceDropped`], or an error reading a table.
    pub fn get(&mut self, keyspace: &Keyspace, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let handle = keyspace.handle();
        handle.check_usable(self.shared.uid)?;
        let key = Bytes::copy_from_slice(key.as_ref());
        if let Some(write) = self.writes.get(&(handle.id, key.clone())) {
            return Ok(write.clone());
        }
        self.footprint.points.insert((handle.id, key.clone()));
        let state = self.shared.state.load();
        match state.tree(handle.id) {
            Some(tree) => tree.get(&key, self.snapshot),
            None => Err(handle.dropped_error()),
        }
    }

    /// Writes `value` under `key` in `keyspace` when the transaction commits.
    pub fn put(&mut self, keyspace: &Keyspace, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let value = Bytes::copy_from_slice(value.as_ref());
        self.write(keyspace, key.as_ref(), Some(value));
    }

    /// Deletes `key` in `keyspace` when the transaction commits.
    pub fn delete(&mut self, keyspace: &Keyspace, key: impl AsRef<[u8]>) {
        self.write(keyspace, key.as_ref(), None);
    }

    fn write(&mut self, keyspace: &Keyspace, key: &[u8], value: Option<Bytes>) {
        let id = keyspace.handle().id;
        self.keyspaces.entry(id).or_insert_with(|| keyspace.clone());
        self.bytes = self
            .bytes
            .saturating_add(key.len() + value.as_ref().map_or(0, Bytes::len));
        self.writes.insert((id, Bytes::copy_from_slice(key)), value);
    }

    /// Every pair of `keyspace` as this transaction sees it, in key order.
    pub fn iter(&mut self, keyspace: &Keyspace) -> Iter {
        self.scan(keyspace, (Bound::Unbounded, Bound::Unbounded))
    }

    /// The pairs of `keyspace` within `range` as this transaction sees it, in key order.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &mut self,
        keyspace: &Keyspace,
        range: R,
    ) -> Iter {
        self.scan(keyspace, owned_bounds(&range))
    }

    /// The pairs of `keyspace` whose key starts with `prefix`, as this transaction sees
    /// it, in key order.
    pub fn prefix(&mut self, keyspace: &Keyspace, prefix: impl AsRef<[u8]>) -> Iter {
        self.scan(keyspace, prefix_bounds(prefix.as_ref()))
    }

    /// A scan of `bounds` in `keyspace`, recorded in the footprint whole (whatever part of
    /// it the caller consumes), with the pending writes within it merged in.
    fn scan(&mut self, keyspace: &Keyspace, bounds: (Bound<Bytes>, Bound<Bytes>)) -> Iter {
        let handle = keyspace.handle();
        if let Err(err) = handle.check_usable(self.shared.uid) {
            return Iter::failed(err);
        }
        let id = handle.id;
        let pending: Vec<(Bytes, Option<Bytes>)> = self
            .writes
            .range((id, Bytes::new())..)
            .take_while(|((ks, _), _)| *ks == id)
            .filter(|((_, key), _)| {
                RangeBounds::<[u8]>::contains(
                    &(as_slice_bound(&bounds.0), as_slice_bound(&bounds.1)),
                    key.as_ref(),
                )
            })
            .map(|((_, key), write)| (key.clone(), write.clone()))
            .collect();
        self.footprint.ranges.push((id, bounds.clone()));
        let state = self.shared.state.load_full();
        scan(state, Some(handle), self.snapshot, bounds.0, bounds.1).with_pending(pending)
    }

    /// Applies every write of the transaction atomically, as [`Transaction::commit_with`]
    /// with the default [`WriteOptions`].
    ///
    /// # Errors
    /// As for [`Transaction::commit_with`].
    pub fn commit(self) -> Result<()> {
        self.commit_with(&WriteOptions::default())
    }

    /// Applies every write of the transaction atomically through the group commit (with
    /// `options.sync(true)`, durably before it returns), unless a write after the
    /// transaction began touched its footprint.
    ///
    /// # Errors
    /// [`Error::Conflict`] if the transaction lost to another write (nothing applied: run
    /// it again); [`Error::InvalidArgument`] if it wrote more than
    /// `Options::max_transaction_bytes`; [`Error::KeyspaceDropped`] if a keyspace it wrote
    /// was dropped; otherwise as for [`crate::Db::write`].
    pub fn commit_with(mut self, options: &WriteOptions) -> Result<()> {
        if self.writes.is_empty() {
            return Ok(());
        }
        let limit = self.shared.options.max_transaction_bytes;
        if self.bytes > limit {
            return Err(Error::invalid(format!(
                "the transaction writes {} bytes of keys and values; the limit is {limit} \
                 (Options::max_transaction_bytes)",
                self.bytes
            )));
        }
        let mut batch = WriteBatch::new();
        let mut footprint = std::mem::take(&mut self.footprint);
        for ((id, key), write) in std::mem::take(&mut self.writes) {
            let keyspace = &self.keyspaces[&id];
            match &write {
                Some(value) => batch.put_in(keyspace, &key, value),
                None => batch.delete_in(keyspace, &key),
            }
            footprint.points.insert((id, key));
        }
        batch.set_validation(Arc::new(Validation {
            snapshot: self.snapshot,
            footprint,
        }));
        self.shared.write(batch, options.syncs())
    }

    /// Discards the transaction's writes (as dropping it does).
    pub fn rollback(self) {}
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.live {
            self.live = false;
            self.shared.snapshots.release(self.snapshot);
            self.shared.history.end(self.snapshot);
        }
    }
}
