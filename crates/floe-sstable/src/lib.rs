//! The sorted string table format of floe: block writer, table builder, reader and bloom
//! filter.
//!
//! A table is an immutable file of internal-key entries in sorted order, and of range
//! tombstones (already fragmented, [`floe_core::range_del::Fragments`]), written once by a
//! [`TableBuilder`] and read through a [`Table`]: over the file itself with positional
//! reads, data blocks on demand through a shared [`BlockCache`] ([`Table::open_file`], in
//! production), or over the file's bytes in memory ([`Table::open`], in tests and
//! fuzzing). Point lookups and iterators return the
//! entries only; [`Table::range_tombstones`] returns the tombstones, for the engine to
//! apply. A table may hold tombstones alone. `docs/format.md` draws the layout.
//!
//! ```
//! use std::ops::Bound;
//! # use std::io::Write;
//! use floe_core::{InternalKey, ValueKind};
//! use floe_sstable::{Table, TableBuilder, TableOptions};
//!
//! # #[derive(Debug, Default)]
//! # struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
//! # impl Write for Buf {
//! #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().extend_from_slice(b); Ok(b.len()) }
//! #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! # }
//! # impl floe_core::fs::WritableFile for Buf {
//! #     fn sync_data(&mut self) -> std::io::Result<()> { Ok(()) }
//! #     fn sync_all(&mut self) -> std::io::Result<()> { Ok(()) }
//! # }
//! # let out = Buf::default();
//! # let bytes = out.0.clone();
//! # let file: Box<dyn floe_core::fs::WritableFile> = Box::new(out);
//! let mut builder = TableBuilder::new(file, TableOptions::default());
//! builder.add(&InternalKey::new("apple", 7, ValueKind::Put), b"red")?;
//! builder.add(&InternalKey::new("apple", 3, ValueKind::Put), b"green")?;
//! builder.add(&InternalKey::new("pear", 5, ValueKind::Delete), b"")?;
//! let meta = builder.finish()?;
//! assert_eq!(meta.entries, 3);
//!
//! # let file_bytes = bytes::Bytes::from(bytes.lock().unwrap().clone());
//! let table = Table::open(file_bytes)?;
//! let (kind, value) = table.get(b"apple", 5)?.unwrap();
//! assert_eq!((kind, &value[..]), (ValueKind::Put, &b"green"[..]));
//! assert_eq!(table.get(b"apple", 2)?, None);
//! let keys: Vec<_> = table
//!     .iter(Bound::Unbounded, Bound::Unbounded)
//!     .rev()
//!     .map(|entry| entry.map(|(key, _)| key.seqno))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(keys, [5, 3, 7]);
//! # Ok::<(), floe_sstable::Error>(())
//! ```

mod block;
mod bloom;
mod builder;
mod cache;
mod compression;
mod error;
mod format;
mod index;
mod iter;
mod prefetch;
mod prefix_tree;
mod properties;
mod range_block;
mod table;
mod verify;

#[cfg(feature = "fuzz")]
pub mod fuzz;

pub use builder::{MAX_KEY_LEN, MAX_VALUE_LEN, TableBuilder, TableOptions};
pub use cache::BlockCache;
pub use compression::{Compression, MAX_COMPRESSED_RAW_LEN};
pub use error::{Error, Result};
pub use format::{FOOTER_LEN, FORMAT_VERSION, MAGIC};
pub use iter::TableIter;
pub use properties::TableMeta;
pub use table::Table;
pub use verify::{TableDamage, TableVerification};
