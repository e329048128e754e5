//! The small shared vocabulary of floe: internal keys and sequence numbers, range
//! tombstones, checksums, on-disk integer coding and the file-system seam.
//!
//! Two crates or more need each item here; anything that only one crate needs lives in
//! that crate instead. This crate knows nothing of memtables, tables or the engine.

pub mod checksum;
pub mod coding;
pub mod fs;
mod key;
pub mod range_del;
#[cfg(feature = "sim")]
pub mod sim_fs;

pub use key::{
    InternalKey, MAX_SEQNO, SeqNo, ValueKind, compare_internal, pack_trailer, unpack_trailer,
};
