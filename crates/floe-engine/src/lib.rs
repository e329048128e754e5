//! The floe storage engine: the write path with group commit, the write-ahead log,
//! freezing and flushing memtables on an `arc-swap`ped state, the manifest, recovery,
//! merging iterators, snapshots and leveled compaction.
//!
//! Users program against the facade crate `floe`, which re-exports the public items here:
//! [`Db`], [`Options`], [`WriteBatch`], [`Snapshot`], [`Iter`], [`Readable`], [`Error`] and
//! [`Result`].
//!
//! Code map, by concern:
//!
//! ```text
//! db.rs           Db, the handle: open, the background threads, close and drop
//! shared.rs       Shared, the core every handle and worker reaches, made of the parts below
//! recovery.rs     open: lock, manifest, tables, log replay, new segment and manifest, orphans
//! recovery/       read_only.rs, the read-only open (the log replayed into memtables, no file
//!                 changed), over read_only_fs.rs, a file system that refuses every change
//! read.rs         reads, Iter and Snapshot
//! readable.rs     Readable, the read calls Db, Keyspace and Snapshot share, and multi-get
//! flush.rs        the flush worker and the flush of one frozen memtable
//! background.rs   the signals that wake the workers and whoever waits for them
//! snapshots.rs    the registry of live snapshots
//! write/          the write path
//!   commit.rs       group commit: enqueue, lead or wait, log the group, apply, publish
//!   queue.rs        CommitQueue, where writers and leaders meet
//!   log.rs          LogState, what the holder of the log mutex owns
//!   publish.rs      in-order publication of sequence numbers (the loom model's subject)
//!   freeze.rs       the memtable switch, with back-pressure
//!   stall.rs        level-0 write stalls
//!   log_sync.rs     Db::sync, the sync at close, and the background log sync
//!   sync_gate.rs    the gate every segment sync passes, and the log syncer's signal
//!   batch.rs        WriteBatch and its log payload
//! version/        what the database is made of
//!   state.rs        State and CurrentState, whose install is the one way to replace it
//!   levels.rs       Version, the tables of each level
//!   table.rs        table handles and the table writer
//!   manifest/       version edits, the manifest files and CURRENT, the live manifest
//! compaction/     pick.rs chooses a compaction, compact.rs runs it, grandparents.rs cuts outputs
//! iter/           merging, visibility and compaction iterators
//! wal/            the log framing, its writer and its reader (segments and manifests)
//! filename.rs     file names and the file-number counter
//! options.rs, error.rs, stats.rs, sync.rs (the std/loom shim)
//! ```

mod background;
pub mod backup;
mod checkpoint;
mod compaction;
mod db;
mod error;
mod events;
mod filename;
mod filter;
mod flush;
#[cfg(any(test, fuzzing))]
pub mod fuzz_api;
pub mod inspect;
mod iter;
mod keyspace;
mod options;
mod range_del;
mod read;
mod readable;
mod recovery;
mod shared;
mod snapshots;
mod stats;
mod sync;
#[cfg(any(test, feature = "fault-injection"))]
pub mod testing;
#[cfg(test)]
mod tests;
pub mod ttl;
mod txn;
mod version;
mod wal;
mod write;

pub use db::Db;
pub use error::{Error, Result};
pub use events::{
    BackgroundErrorInfo, CompactionInfo, EventListener, FlushInfo, StallCause, StallInfo,
};
pub use filter::{CompactionFilter, Decision};
pub use floe_sstable::Compression;
pub use keyspace::{Keyspace, KeyspaceOptions};
pub use options::{DECOMPRESSED_CACHE_SIZE, MAX_KEY_SIZE, MAX_VALUE_SIZE, Options};
pub use read::{Iter, Snapshot};
pub use readable::Readable;
pub use stats::{Latency, LevelStats, Stats};
pub use txn::Transaction;
pub use write::{WriteBatch, WriteOptions};

/// The engine's own concurrency protocols, for the loom models in `tests/loom_*.rs`: built
/// only with `--cfg floe_loom` (`cargo xtask loom`), where the sync shim gives them loom's
/// primitives. Not part of the API, and absent from every other build.
#[cfg(floe_loom)]
#[doc(hidden)]
pub mod loom {
    pub use crate::write::publish::Publisher;
}
