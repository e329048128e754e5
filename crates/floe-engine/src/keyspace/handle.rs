//! [`Keyspace`], the handle to one keyspace, and [`KeyspaceRef`], what every handle of
//! that keyspace shares (and a [`crate::WriteBatch`] holds to check it at commit).

use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use super::KeyspaceId;
use crate::error::{Error, Result};
use crate::read::{Iter, Snapshot, owned_bounds, prefix_bounds};
use crate::readable::{Readable, key_slices};
use crate::shared::Shared;
use crate::write::WriteBatch;

/// What the handles of one keyspace share.
#[derive(Debug)]
pub(crate) struct KeyspaceRef {
    pub(crate) id: KeyspaceId,
    pub(crate) name: String,
    /// The database it belongs to (see `Shared::uid`).
    pub(crate) db: u64,
    /// Set by `drop_keyspace` before it returns: every later call on a handle fails.
    dropped: AtomicBool,
}

impl KeyspaceRef {
    pub(crate) fn new(id: KeyspaceId, name: &str, db: u64) -> KeyspaceRef {
        KeyspaceRef {
            id,
            name: name.to_owned(),
            db,
            dropped: AtomicBool::new(false),
        }
    }

    /// Marks the keyspace dropped.
    pub(crate) fn mark_dropped(&self) {
        self.dropped.store(true, Ordering::Release);
    }

    /// `Ok` if the keyspace belongs to database `db` and is not dropped.
    pub(crate) fn check_usable(&self, db: u64) -> Result<()> {
        if self.db != db {
            return Err(Error::invalid(format!(
                "keyspace {:?} belongs to another database",
                self.name
            )));
        }
        if self.dropped.load(Ordering::Acquire) {
            return Err(self.dropped_error());
        }
        Ok(())
    }

    /// The error of a call on the dropped keyspace.
    pub(crate) fn dropped_error(&self) -> Error {
        Error::KeyspaceDropped {
            name: self.name.clone(),
        }
    }
}

/// A handle to one keyspace of a database: a separate, ordered key space (RocksDB's column
/// family, fjall's keyspace), from [`crate::Db::keyspace`].
///
/// All keyspaces of a database share its log and its sequence of writes: a
/// [`WriteBatch`] that writes in several (with [`WriteBatch::put_in`]) is atomic across
/// them, and a [`Snapshot`] is one point in time for all of them
/// ([`Snapshot::keyspace`]). Each keyspace has its own memtables, tables and compactions,
/// and its own tree options ([`crate::KeyspaceOptions`]).
///
/// A handle is cheap to clone and valid as long as the keyspace is not dropped; after
/// [`crate::Db::drop_keyspace`], every call on it fails with
/// [`Error::KeyspaceDropped`] (an iterator yields that error), and opening the keyspace
/// again creates a new, empty one with a new handle.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let db = floe_engine::Db::open(dir.path())?;
/// let users = db.keyspace("users")?;
/// let by_email = db.keyspace("users-by-email")?;
/// let mut batch = floe_engine::WriteBatch::new();
/// batch.put_in(&users, "u1", "Ada");
/// batch.put_in(&by_email, "ada@example.com", "u1");
/// db.write(batch)?; // both or neither
/// assert_eq!(users.get("u1")?.as_deref(), Some(&b"Ada"[..]));
/// # Ok::<(), floe_engine::Error>(())
/// ```
#[derive(Clone)]
pub struct Keyspace {
    shared: Arc<Shared>,
    handle: Arc<KeyspaceRef>,
}

impl fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyspace")
            .field("name", &self.handle.name)
            .finish_non_exhaustive()
    }
}

impl Keyspace {
    pub(crate) fn new(shared: Arc<Shared>, handle: Arc<KeyspaceRef>) -> Keyspace {
        Keyspace { shared, handle }
    }

    pub(crate) fn handle(&self) -> &Arc<KeyspaceRef> {
        &self.handle
    }

    /// The keyspace's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.handle.name
    }

    /// Sets `key` to `value` in this keyspace.
    ///
    /// # Errors
    /// As for [`crate::Db::put`], and [`Error::KeyspaceDropped`] after the keyspace was
    /// dropped.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let batch = WriteBatch::single_put_in(self, key.as_ref(), value.as_ref());
        self.shared.write(batch, false)
    }

    /// Deletes `key` from this keyspace (a no-op if it is absent).
    ///
    /// # Errors
    /// As for [`Keyspace::put`].
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let batch = WriteBatch::single_delete_in(self, key.as_ref());
        self.shared.write(batch, false)
    }

    /// Deletes every key in `range` in this keyspace as one write, like
    /// [`crate::Db::delete_range`].
    ///
    /// # Errors
    /// As for [`Keyspace::put`] (a dropped keyspace is [`Error::KeyspaceDropped`] even for
    /// an empty range).
    pub fn delete_range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<()> {
        self.handle.check_usable(self.shared.uid)?;
        let mut batch = WriteBatch::new();
        batch.delete_range_in(self, range);
        self.shared.write(batch, false)
    }

    /// The latest value of `key` in this keyspace, or `None` if it is absent.
    ///
    /// # Errors
    /// As for [`crate::Db::get`], and [`Error::KeyspaceDropped`].
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.shared.get_in(&self.handle, key.as_ref())
    }

    /// Every key-value pair of this keyspace, in key order.
    pub fn iter(&self) -> Iter {
        self.shared
            .scan_in(&self.handle, Bound::Unbounded, Bound::Unbounded)
    }

    /// The key-value pairs of this keyspace whose key lies within `range`, in key order.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        let (lower, upper) = owned_bounds(&range);
        self.shared.scan_in(&self.handle, lower, upper)
    }

    /// The key-value pairs of this keyspace whose key starts with `prefix`, in key order.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let (lower, upper) = prefix_bounds(prefix.as_ref());
        self.shared.scan_in(&self.handle, lower, upper)
    }

    /// A consistent read view of this keyspace as it is now (the same as
    /// `db.snapshot().keyspace(&keyspace)`).
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(&self.shared).keyspace(self)
    }
}

impl Readable for Keyspace {
    fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        Keyspace::get(self, key)
    }

    fn iter(&self) -> Iter {
        Keyspace::iter(self)
    }

    fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        Keyspace::range(self, range)
    }

    fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        Keyspace::prefix(self, prefix)
    }

    fn multi_get<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Bytes>>> {
        self.shared.multi_get(Some(&self.handle), &key_slices(keys))
    }
}
