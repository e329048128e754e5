//! Expiring values: [`TtlKeyspace`] stores each value with its write time, hides values
//! older than its time to live from every read at once, and gives the keyspace a
//! compaction filter ([`crate::CompactionFilter`]) that drops them from disk.
//!
//! A stored value is the write time (milliseconds since the Unix epoch, 8 bytes
//! little-endian) followed by the user's value. A value is expired once the clock reads at
//! least its write time plus the time to live; reads and the filter use the same clock, so
//! a value compaction drops was hidden from reads already. Expired values are dropped by
//! the compactions that rewrite them, not at once: until then they take disk space, not
//! visibility. A snapshot that read a value before it expired sees it go as well (the
//! check is at read time); compaction never drops a version a live snapshot can read.

use std::fmt;
use std::ops::RangeBounds;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::filter::{CompactionFilter, Decision};
use crate::keyspace::{Keyspace, KeyspaceOptions};
use crate::read::Iter;

/// The bytes of the write time in front of each value.
const HEADER: usize = 8;

/// A clock in milliseconds since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
fn system_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// When a value expires: its time to live and the clock that says when it is.
#[derive(Clone)]
struct Expiry {
    ttl_millis: u64,
    clock: Clock,
}

impl Expiry {
    /// The user's value of a stored value, or `None` if it has expired.
    fn live<'v>(&self, stored: &'v [u8]) -> Result<Option<&'v [u8]>> {
        let (time, value) = split(stored)?;
        Ok((time.saturating_add(self.ttl_millis) > (self.clock)()).then_some(value))
    }
}

/// Splits a stored value into its write time and the user's value.
fn split(stored: &[u8]) -> Result<(u64, &[u8])> {
    let (time, value) = stored.split_first_chunk::<HEADER>().ok_or_else(|| {
        Error::corruption(format!(
            "a value of {} bytes in a keyspace with a time to live has no write time",
            stored.len()
        ))
    })?;
    Ok((u64::from_le_bytes(*time), value))
}

/// The compaction filter of a [`TtlKeyspace`]: removes expired values.
struct TtlFilter(Expiry);

impl CompactionFilter for TtlFilter {
    fn filter(&self, _key: &[u8], value: &[u8]) -> Decision {
        match self.0.live(value) {
            Ok(Some(_)) => Decision::Keep,
            Ok(None) => Decision::Remove,
            // Not written by a `TtlKeyspace`: not the filter's to judge.
            Err(_) => Decision::Keep,
        }
    }

    fn name(&self) -> &str {
        "time to live"
    }
}

/// A keyspace whose values expire a fixed time after they are written (see the module
/// docs).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use std::time::Duration;
/// use floe_engine::ttl::TtlKeyspace;
///
/// let db = floe_engine::Db::open(dir.path())?;
/// let tokens = TtlKeyspace::open(&db, "tokens", Duration::from_secs(3600))?;
/// tokens.put("t-1", "alice")?;
/// assert_eq!(tokens.get("t-1")?.as_deref(), Some(&b"alice"[..]));
/// # Ok::<(), floe_engine::Error>(())
/// ```
#[derive(Clone)]
pub struct TtlKeyspace {
    keyspace: Keyspace,
    expiry: Expiry,
}

impl fmt::Debug for TtlKeyspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TtlKeyspace")
            .field("keyspace", &self.keyspace.name())
            .field("ttl_millis", &self.expiry.ttl_millis)
            .finish()
    }
}

impl TtlKeyspace {
    /// Opens keyspace `name` of `db` (creating it if needed) with values that expire `ttl`
    /// after they are written, on the system clock. The time to live is not recorded:
    /// give it at every open (a longer one brings back values that a shorter one hid but
    /// compaction has not dropped yet).
    ///
    /// # Errors
    /// As for [`Db::keyspace`].
    pub fn open(db: &Db, name: &str, ttl: Duration) -> Result<TtlKeyspace> {
        TtlKeyspace::open_with_clock(db, name, ttl, Arc::new(system_clock))
    }

    /// [`TtlKeyspace::open`] with another clock (milliseconds since the Unix epoch), for
    /// tests or a logical time.
    ///
    /// # Errors
    /// As for [`Db::keyspace`].
    pub fn open_with_clock(
        db: &Db,
        name: &str,
        ttl: Duration,
        clock: Clock,
    ) -> Result<TtlKeyspace> {
        let expiry = Expiry {
            ttl_millis: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            clock,
        };
        let options = KeyspaceOptions::default().compaction_filter(TtlFilter(expiry.clone()));
        let keyspace = db.keyspace_with(name, options)?;
        Ok(TtlKeyspace { keyspace, expiry })
    }

    /// The keyspace underneath, whose values carry the write time in front.
    #[must_use]
    pub fn keyspace(&self) -> &Keyspace {
        &self.keyspace
    }

    /// Sets `key` to `value`, written now.
    ///
    /// # Errors
    /// As for [`Keyspace::put`].
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let value = value.as_ref();
        let mut stored = Vec::with_capacity(HEADER + value.len());
        stored.extend_from_slice(&(self.expiry.clock)().to_le_bytes());
        stored.extend_from_slice(value);
        self.keyspace.put(key, stored)
    }

    /// Deletes `key`.
    ///
    /// # Errors
    /// As for [`Keyspace::delete`].
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        self.keyspace.delete(key)
    }

    /// The value of `key`, or `None` if it is absent or expired.
    ///
    /// # Errors
    /// As for [`Keyspace::get`], and [`Error::Corruption`] for a stored value too short
    /// to hold a write time.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let Some(stored) = self.keyspace.get(key)? else {
            return Ok(None);
        };
        Ok(self
            .expiry
            .live(&stored)?
            .map(|value| stored.slice_ref(value)))
    }

    /// Every live key-value pair, in key order (double-ended).
    pub fn iter(&self) -> TtlIter {
        self.wrap(self.keyspace.iter())
    }

    /// The live key-value pairs within `range`, in key order.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> TtlIter {
        self.wrap(self.keyspace.range(range))
    }

    /// The live key-value pairs whose key starts with `prefix`, in key order.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> TtlIter {
        self.wrap(self.keyspace.prefix(prefix))
    }

    fn wrap(&self, inner: Iter) -> TtlIter {
        TtlIter {
            inner,
            expiry: self.expiry.clone(),
        }
    }
}

/// An iterator over the live pairs of a [`TtlKeyspace`]: expired values are skipped,
/// and values come without their write time.
pub struct TtlIter {
    inner: Iter,
    expiry: Expiry,
}

impl fmt::Debug for TtlIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TtlIter").finish_non_exhaustive()
    }
}

impl TtlIter {
    /// The next item of `item` that is live, with its value stripped.
    fn live(&self, item: Result<(Bytes, Bytes)>) -> Option<Result<(Bytes, Bytes)>> {
        match item {
            Err(err) => Some(Err(err)),
            Ok((key, stored)) => match self.expiry.live(&stored) {
                Err(err) => Some(Err(err)),
                Ok(None) => None,
                Ok(Some(value)) => Some(Ok((key, stored.slice_ref(value)))),
            },
        }
    }
}

impl Iterator for TtlIter {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let item = self.inner.next()?;
            if let Some(live) = self.live(item) {
                return Some(live);
            }
        }
    }
}

impl DoubleEndedIterator for TtlIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        loop {
            let item = self.inner.next_back()?;
            if let Some(live) = self.live(item) {
                return Some(live);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::Options;

    #[test]
    fn expired_values_are_hidden_at_once_and_dropped_by_compaction_but_not_under_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options::default().write_buffer_size(4096).block_size(256);
        let db = Db::open_with(dir.path(), options.clone()).unwrap();
        let now = Arc::new(AtomicU64::new(1_000_000));
        let clock: Clock = {
            let now = Arc::clone(&now);
            Arc::new(move || now.load(Ordering::Relaxed))
        };
        let ttl = Duration::from_secs(10);
        let space = TtlKeyspace::open_with_clock(&db, "ttl", ttl, Arc::clone(&clock)).unwrap();
        for i in 0..200u32 {
            space.put(format!("old{i:03}"), "o").unwrap();
        }
        now.fetch_add(6_000, Ordering::Relaxed);
        for i in 0..200u32 {
            space.put(format!("new{i:03}"), "n").unwrap();
        }
        assert_eq!(space.iter().count(), 400);
        let snapshot = db.snapshot().keyspace(space.keyspace());
        // Five more seconds: the old values are past their time to live.
        now.fetch_add(5_000, Ordering::Relaxed);
        assert_eq!(space.get("old000").unwrap(), None);
        assert_eq!(space.get("new000").unwrap().as_deref(), Some(&b"n"[..]));
        assert_eq!(space.iter().count(), 200);
        assert_eq!(space.iter().rev().count(), 200);
        assert_eq!(space.prefix("old").count(), 0);

        // The snapshot (taken before the values expired, so that no background
        // compaction can have dropped them yet) keeps the versions it reads on disk.
        db.compact().unwrap();
        assert_eq!(snapshot.prefix("old").count(), 200);
        drop(snapshot);
        db.compact().unwrap();
        // Compaction dropped the expired values: the raw keyspace holds only the new ones.
        assert_eq!(space.keyspace().iter().count(), 200);
        assert!(space.keyspace().prefix("old").next().is_none());
        // The filter is not recorded: a reopen without it keeps what is there.
        db.close().unwrap();
        let db = Db::open_with(dir.path(), options).unwrap();
        assert_eq!(db.keyspace("ttl").unwrap().iter().count(), 200);
    }

    #[test]
    fn a_value_without_a_write_time_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let space = TtlKeyspace::open(&db, "ttl", Duration::from_secs(60)).unwrap();
        space.keyspace().put("short", "abc").unwrap();
        assert!(matches!(space.get("short"), Err(Error::Corruption { .. })));
        assert!(matches!(
            space.iter().next(),
            Some(Err(Error::Corruption { .. }))
        ));
    }
}
