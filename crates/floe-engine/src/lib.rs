//! The floe storage engine: the write path with group commit, the write-ahead log,
//! freezing and flushing memtables on an `arc-swap`ped state, the manifest, recovery,
//! merging iterators, snapshots and leveled compaction.
//!
//! Users program against the facade crate `floe`, which re-exports the public items here:
//! [`Db`], [`Options`], [`WriteBatch`], [`Snapshot`], [`Iter`], [`Error`] and [`Result`].
//!
//! Code map: [`Db`] (`db.rs`) is the handle; `shared.rs` holds the core every handle and
//! the flush thread share; `commit.rs` is the write path (group commit, memtable switch,
//! back-pressure, write stalls); `publish.rs` the in-order publication of sequence
//! numbers; `flush.rs` the background flush; `recovery.rs` open; `read.rs` reads,
//! iterators and snapshots; `pick.rs` chooses compactions and `compact.rs` runs them (the
//! background worker and the manual full compaction); `stats.rs` the counters behind
//! [`Db::stats`]; `state.rs` the `arc-swap`ped state; `table.rs` the handles of table files. `wal`, `manifest`, `batch` and `filename` are the on-disk
//! formats; `iter` the merging iterators.

mod background;
mod compaction;
mod db;
mod error;
mod filename;
mod flush;
#[cfg(any(test, fuzzing))]
pub mod fuzz_api;
mod iter;
mod options;
mod read;
mod recovery;
mod shared;
mod snapshots;
mod stats;
mod sync;
#[cfg(any(test, feature = "fault-injection"))]
pub mod testing;
#[cfg(test)]
mod tests;
mod version;
mod wal;
mod write;

pub use db::Db;
pub use error::{Error, Result};
pub use options::{MAX_KEY_SIZE, MAX_VALUE_SIZE, Options};
pub use read::{Iter, Snapshot};
pub use stats::{LevelStats, Stats};
pub use write::WriteBatch;

/// The engine's own concurrency protocols, for the loom models in `tests/loom_*.rs`: built
/// only with `--cfg floe_loom` (`cargo xtask loom`), where the sync shim gives them loom's
/// primitives. Not part of the API, and absent from every other build.
#[cfg(floe_loom)]
#[doc(hidden)]
pub mod loom {
    pub use crate::write::publish::Publisher;
}
