//! The manifest: a log of [`VersionEdit`]s that records which tables make up the database,
//! and `CURRENT`, which names the live manifest.
//!
//! A manifest uses the write-ahead log's framing (see [`crate::wal`]); its first records
//! are a snapshot of the whole database (the database-wide fields, then one edit per
//! keyspace, written and synced before `CURRENT` names the file), each later record one
//! edit. Open reads `CURRENT`,
//! replays the manifest it names and folds the edits in order; while the database is
//! open, [`ManifestState`] appends to it.

mod edit;
mod live;
mod store;

pub(crate) use edit::{KeyspaceDef, TableFile, VersionEdit};
pub(crate) use live::{ManifestFields, ManifestState, snapshot_edits};
pub(crate) use store::{ManifestWriter, read_current, replay_manifest};
