//! The floe storage engine: the write path with group commit, the write-ahead log,
//! freezing and flushing memtables on an `arc-swap`ped state, the manifest, recovery,
//! merging iterators and snapshots.
//!
//! Users program against the facade crate `floe`, which re-exports the public items here.

mod error;

pub use error::{Error, Result};
