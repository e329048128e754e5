//! floe: an embedded LSM-tree key-value store.
//!
//! A database lives in one directory. Open it, write keys and values (arbitrary byte
//! strings), read them back by key, in key order, by range or by prefix, at the present
//! moment or at a [`Snapshot`] of the past.
//!
//! # A guided tour
//!
//! ```
//! use floe::{Bytes, Db, Error, Iter, Options, Result, Snapshot, WriteBatch};
//!
//! fn main() -> Result<()> {
//!     let dir = tempfile::tempdir().expect("a temporary directory");
//!
//!     // `Options` has a default for everything; these three are the common knobs.
//!     let options = Options::default()
//!         .write_buffer_size(4 << 20) // memtable capacity in bytes
//!         .block_size(4096) // table data block size in bytes
//!         .sync(false); // `true`: every write is fsynced before it is acknowledged
//!     let db: Db = Db::open_with(dir.path(), options)?;
//!
//!     // Keys and values are anything that is `AsRef<[u8]>`.
//!     db.put("apple", "red")?;
//!     db.put(b"banana", b"yellow")?;
//!     db.delete("apple")?;
//!     assert_eq!(db.get("apple")?, None);
//!     let value: Option<Bytes> = db.get("banana")?;
//!     assert_eq!(value.as_deref(), Some(&b"yellow"[..]));
//!
//!     // A batch is applied atomically: readers and recovery see all of it or none.
//!     let mut batch = WriteBatch::new();
//!     batch.put("cherry", "dark red");
//!     batch.put("cranberry", "red");
//!     batch.delete("banana");
//!     db.write(batch)?;
//!
//!     // A range delete is one write, however many keys it covers.
//!     db.put("elderberry", "black")?;
//!     db.delete_range("e"..)?;
//!     assert_eq!(db.get("elderberry")?, None);
//!
//!     // A snapshot is a consistent view that later writes do not change.
//!     let snapshot: Snapshot = db.snapshot();
//!     db.put("date", "brown")?;
//!     assert_eq!(snapshot.get("date")?, None);
//!
//!     // Scans are ordered by key and double-ended.
//!     let keys = |iter: Iter| -> Result<Vec<Bytes>> { iter.map(|kv| Ok(kv?.0)).collect() };
//!     assert_eq!(keys(db.iter())?, ["cherry", "cranberry", "date"]);
//!     assert_eq!(keys(db.prefix("c"))?, ["cherry", "cranberry"]);
//!     assert_eq!(keys(db.range("cr".."d"))?, ["cranberry"]);
//!     assert_eq!(keys(snapshot.iter())?, ["cherry", "cranberry"]);
//!     let last = db.iter().next_back().transpose()?;
//!     assert_eq!(last.map(|(k, _)| k), Some(Bytes::from("date")));
//!
//!     // Durability: `sync` makes acknowledged writes survive power loss, `flush` moves
//!     // them into a table, `compact` merges all tables.
//!     db.sync()?;
//!     db.flush()?;
//!     db.compact()?;
//!     drop(snapshot);
//!
//!     // One owner per directory: a second open fails until the first is closed.
//!     let second: Result<Db> = Db::open(dir.path());
//!     assert!(matches!(second, Err(Error::Locked { .. })));
//!     db.close()?;
//!     let db = Db::open(dir.path())?;
//!     assert_eq!(db.get("date")?.as_deref(), Some(&b"brown"[..]));
//!     Ok(())
//! }
//! ```
//!
//! # Ranges
//!
//! [`Db::range`] takes any `RangeBounds` over a key type that is `AsRef<[u8]>`. Where the
//! bounds do not name a key (`..`) or are a tuple of `Bound`s (for which the standard
//! library has two `RangeBounds` implementations), say the key type:
//!
//! ```
//! # fn main() -> floe::Result<()> {
//! # let dir = tempfile::tempdir().expect("a temporary directory");
//! # let db = floe::Db::open(dir.path())?;
//! use std::ops::Bound;
//! db.put("a", "1")?;
//! db.put("b", "2")?;
//! assert_eq!(db.range::<&str, _>(..).count(), 2);
//! let after_a = db.range::<&str, _>((Bound::Excluded("a"), Bound::Unbounded));
//! assert_eq!(after_a.count(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # One read trait
//!
//! [`Db`] (which reads the `"default"` keyspace), [`Keyspace`] and [`Snapshot`] implement
//! [`Readable`], so one function can read from any of them. With the trait in scope they
//! also answer `contains_key`, `first_key_value`, `last_key_value` and `multi_get`, which
//! looks up many keys at one point in time in one pass over the database:
//!
//! ```
//! # fn main() -> floe::Result<()> {
//! # let dir = tempfile::tempdir().expect("a temporary directory");
//! use floe::{Db, Readable, Result};
//!
//! fn present<R: Readable>(view: &R, keys: &[&str]) -> Result<usize> {
//!     Ok(view.multi_get(keys)?.iter().filter(|value| value.is_some()).count())
//! }
//!
//! let db = Db::open(dir.path())?;
//! db.put("a", "1")?;
//! let snapshot = db.snapshot();
//! db.put("b", "2")?;
//! assert_eq!(present(&db, &["a", "b", "c"])?, 2);
//! assert_eq!(present(&snapshot, &["a", "b", "c"])?, 1);
//! assert_eq!(db.last_key_value()?.map(|(key, _)| key), Some("b".into()));
//! # Ok(())
//! # }
//! ```
//!
//! # Durability
//!
//! An acknowledged write is in the operating system before the call returns, so it
//! survives a crash of the process. With [`Options::sync`] set it is also fsynced (writers
//! that commit together share one fsync), so it survives power loss; without it,
//! [`Db::sync`] makes every write acknowledged before it durable. What is recovered after
//! any crash is a prefix of the writes in commit order: no holes, no half batches. A
//! damaged file is reported as [`Error::Corruption`], never silently read.
//!
//! # Errors
//!
//! Every fallible call returns [`Result`]. After an I/O error on a write path the database
//! refuses further writes with [`Error::Poisoned`], naming the first failure; reopen it to
//! recover every acknowledged write.
//!
//! # Compaction and its cost
//!
//! Tables are merged in the background by leveled compaction; [`Db::stats`] reports the
//! tables of each level and what was written into it ([`LevelStats`]) and what writes
//! cost ([`Stats`]: write and space amplification, time writers spent stalled while level
//! 0 was full). [`Db::wait_for_compactions`] returns once the background work is done,
//! and [`Db::compact`] merges everything into the last level.

#[doc(inline)]
pub use bytes::Bytes;
#[doc(inline)]
pub use floe_engine::{
    BackgroundErrorInfo, CompactionFilter, CompactionInfo, Compression, DECOMPRESSED_CACHE_SIZE,
    Db, Decision, Error, EventListener, FlushInfo, Iter, Keyspace, KeyspaceOptions, LevelStats,
    Options, Readable, Result, Snapshot, StallCause, StallInfo, Stats, Transaction, WriteBatch,
    WriteOptions,
};
#[doc(inline)]
pub use floe_engine::{backup, ttl};
