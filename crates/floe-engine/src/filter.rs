//! Compaction filters: a user function that keeps, removes or replaces each value while
//! compaction rewrites it (RocksDB's `CompactionFilter`), the basis of expiry
//! ([`crate::ttl`]).
//!
//! When a compaction writes the version of a key that only reads to come can see (newer
//! than every live snapshot), it asks the keyspace's filter about it; older versions,
//! which some live snapshot reads, are never shown to it. `Remove` writes a tombstone in
//! the version's place (dropped at the bottom level like any tombstone), so that older
//! versions in lower levels do not come back. Flushes do not filter: a memtable's versions
//! are newer than anything compaction has seen, and the first compaction filters them.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// What a [`CompactionFilter`] decides for one value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// The value stays as it is.
    Keep,
    /// The key is deleted, as if by a delete at the value's place in the write order.
    Remove,
    /// The value is replaced by this one.
    Change(Bytes),
}

/// A function compaction applies to the values it rewrites (see the module docs). It
/// runs on the compaction thread, once per value, so it should be quick; it must decide
/// the same way for the same key and value whenever it is asked, or readers may see a
/// value come and go as compactions run.
pub trait CompactionFilter: Send + Sync + 'static {
    /// The decision for the newest version of `key`, whose value is `value`.
    fn filter(&self, key: &[u8], value: &[u8]) -> Decision;

    /// A name for logs and `Debug` output.
    fn name(&self) -> &str {
        "compaction filter"
    }
}

/// A compaction filter as options hold it: shared, compared by identity.
#[derive(Clone)]
pub(crate) struct FilterRef(pub(crate) Arc<dyn CompactionFilter>);

impl fmt::Debug for FilterRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CompactionFilter")
            .field(&self.0.name())
            .finish()
    }
}

impl PartialEq for FilterRef {
    fn eq(&self, other: &FilterRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for FilterRef {}
