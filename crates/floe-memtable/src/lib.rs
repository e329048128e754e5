//! The lock-free memtable of floe: the in-memory table that takes every write before it
//! reaches a table file.
//!
//! A [`Memtable`] stores internal keys (user key ascending, sequence number descending) in
//! a `crossbeam_skiplist::SkipMap`, so every write is a new entry and nothing is ever
//! overwritten or removed. Around the skiplist it keeps:
//!
//! * an approximate size charged per entry to match real memory, against a capacity in
//!   memory pages ([`Error::Full`] when a write does not fit);
//! * the minimum and maximum user key in two [`AtomicKey`]s, so that reads outside
//!   `[min, max]` skip the skiplist;
//! * a [`WriterGate`], so that [`Memtable::freeze`] returns only when no writer is inside
//!   and no write can land afterwards;
//! * its range tombstones, apart from the point entries, in [`RangeTombstones`]: a second
//!   skiplist and a cache of their fragmented form ([`Memtable::range_tombstones`]).
//!
//! ```
//! use std::ops::Bound;
//! use std::sync::Arc;
//!
//! use bytes::Bytes;
//! use floe_memtable::{Lookup, Memtable};
//!
//! let memtable = Arc::new(Memtable::new(64 * 1024));
//! {
//!     let writer = memtable.enter()?;
//!     writer.put(Bytes::from("apple"), 1, Bytes::from("red"))?;
//!     writer.put(Bytes::from("pear"), 2, Bytes::from("green"))?;
//!     writer.delete(Bytes::from("apple"), 3)?;
//! }
//! assert_eq!(memtable.get(b"apple", 2), Some(Lookup::Value(Bytes::from("red"))));
//! assert_eq!(memtable.get(b"apple", 3), Some(Lookup::Deleted));
//! let visible: Vec<_> = memtable.range(Bound::Unbounded, Bound::Unbounded, 3).collect();
//! assert_eq!(visible, [(Bytes::from("pear"), Bytes::from("green"))]);
//!
//! // A range tombstone hides older versions of every key in [a, p); the reader applies it.
//! memtable.enter()?.insert_range_tombstone(b"a", Some(b"p"), 4);
//! let deletes = memtable.range_tombstones().expect("one range tombstone");
//! assert_eq!(deletes.max_covering(b"apple", 4), Some(4));
//! assert_eq!(deletes.max_covering(b"pear", 4), None);
//!
//! memtable.freeze();
//! assert!(memtable.enter().is_err());
//! assert_eq!(memtable.entries(Bound::Unbounded, Bound::Unbounded).count(), 3);
//! # Ok::<(), floe_memtable::Error>(())
//! ```

mod arena;
mod atomic_key;
mod error;
mod gate;
mod iter;
mod key;
mod memtable;
mod range_del;
mod reclaim;
mod sync;

pub use arena::{Arena, FIRST_CHUNK_SIZE, MIN_CHUNK_SIZE};
pub use atomic_key::AtomicKey;
pub use error::{Error, Result};
pub use gate::WriterGate;
pub use iter::{EntryIter, VisibleIter};
pub use memtable::{
    ENTRY_OVERHEAD, Lookup, Memtable, PAGE_SIZE, WriteGuard, charge, range_tombstone_charge,
};
pub use range_del::RangeTombstones;
