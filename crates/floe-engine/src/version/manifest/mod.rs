//! The manifest: a log of [`VersionEdit`]s that records which tables make up the database,
//! and `CURRENT`, which names the live manifest.
//!
//! A manifest uses the write-ahead log's framing (see [`crate::wal`]); its first record is
//! a snapshot of the whole version, each later record one edit. Open reads `CURRENT`,
//! replays the manifest it names and folds the edits in order; while the database is
//! open, [`ManifestState`] appends to it.

mod edit;
mod live;
mod store;

pub(crate) use edit::{TableFile, VersionEdit};
pub(crate) use live::ManifestState;
pub(crate) use store::{ManifestWriter, read_current, replay_manifest};
