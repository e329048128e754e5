//! [`ManifestState`]: the live manifest of an open database, with what its edits add up
//! to, so that it can be rolled over into a new file holding one snapshot edit.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use floe_core::SeqNo;
use floe_core::fs::FileSystem;

use super::{KeyspaceDef, ManifestWriter, VersionEdit};
use crate::error::Result;
use crate::filename::manifest_path;
use crate::keyspace::{DEFAULT_ID, KeyspaceId, KeyspaceOptions};
use crate::version::State;

/// The size past which the manifest is rewritten as one snapshot edit in a new file.
/// Unit tests use a tiny size so that every test that flushes exercises the switch.
const MANIFEST_ROLL_BYTES: u64 = if cfg!(test) { 512 } else { 4 << 20 };

/// The live manifest and what its edits add up to (for the snapshot of a new manifest):
/// the database-wide fields, and each keyspace's log number. The tables, names and
/// options come from the state, whose version is always what the edits add up to.
#[derive(Debug)]
pub(crate) struct ManifestState {
    writer: ManifestWriter,
    /// The log number the manifest records, with its first sequence number.
    log_number: u64,
    log_seqno: SeqNo,
    /// The last sequence number the manifest records.
    last_seqno: SeqNo,
    /// The next keyspace id the manifest records.
    next_keyspace_id: KeyspaceId,
    /// The log number of each keyspace that has one above `log_number`.
    keyspace_logs: BTreeMap<KeyspaceId, u64>,
}

/// What a new manifest's snapshot records besides the tables (see [`ManifestState::new`]).
#[derive(Debug)]
pub(crate) struct ManifestFields {
    pub(crate) log_number: u64,
    pub(crate) log_seqno: SeqNo,
    pub(crate) last_seqno: SeqNo,
    pub(crate) next_keyspace_id: KeyspaceId,
}

impl ManifestState {
    /// The manifest `writer` just created, whose snapshot records `fields`, and the log
    /// number `fields.log_number` for every keyspace.
    pub(crate) fn new(writer: ManifestWriter, fields: ManifestFields) -> ManifestState {
        ManifestState {
            writer,
            log_number: fields.log_number,
            log_seqno: fields.log_seqno,
            last_seqno: fields.last_seqno,
            next_keyspace_id: fields.next_keyspace_id,
            keyspace_logs: BTreeMap::new(),
        }
    }

    /// Appends `edit` and makes it durable. A failure leaves the manifest's tail unknown:
    /// the caller poisons the database.
    pub(crate) fn append(&mut self, edit: &VersionEdit) -> Result<()> {
        self.writer.append(edit)?;
        if let Some(number) = edit.log_number
            && number > self.log_number
        {
            self.log_number = number;
            self.log_seqno = edit.log_seqno.unwrap_or(self.log_seqno);
        }
        if let Some(seqno) = edit.last_seqno {
            self.last_seqno = self.last_seqno.max(seqno);
        }
        if let Some(id) = edit.next_keyspace_id {
            self.next_keyspace_id = self.next_keyspace_id.max(id);
        }
        if let Some(number) = edit.keyspace_log_number {
            let slot = self.keyspace_logs.entry(edit.keyspace).or_insert(0);
            *slot = (*slot).max(number);
        }
        if edit.dropped {
            self.keyspace_logs.remove(&edit.keyspace);
        }
        Ok(())
    }

    /// The next keyspace id to give out.
    pub(crate) fn next_keyspace_id(&self) -> KeyspaceId {
        self.next_keyspace_id
    }

    /// The edits that recreate `state`'s keyspaces and tables with what this manifest
    /// records (for a new manifest): the database-wide fields first, then one edit per
    /// keyspace.
    pub(crate) fn snapshot_of(&self, state: &State, next_file_number: u64) -> Vec<VersionEdit> {
        snapshot_edits(
            state,
            &ManifestFields {
                log_number: self.log_number,
                log_seqno: self.log_seqno,
                last_seqno: self.last_seqno,
                next_keyspace_id: self.next_keyspace_id,
            },
            next_file_number,
            |id| self.keyspace_logs.get(&id).copied(),
        )
    }

    /// Whether the manifest outgrew [`MANIFEST_ROLL_BYTES`].
    pub(crate) fn wants_roll(&self) -> bool {
        self.writer.len() >= MANIFEST_ROLL_BYTES
    }

    /// Writes manifest `number` in `dir`, holding the snapshot of `state` (the latest
    /// state, whose versions the edits add up to) with this manifest's fields and
    /// `next_file_number`, switches `CURRENT` to it (durability order 3, in
    /// [`ManifestWriter::create`]), and deletes the old manifest.
    pub(crate) fn roll(
        &mut self,
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        number: u64,
        state: &State,
        next_file_number: u64,
    ) -> Result<()> {
        let snapshot = self.snapshot_of(state, next_file_number);
        let fresh = ManifestWriter::create(Arc::clone(fs), dir, number, &snapshot)?;
        let old = std::mem::replace(&mut self.writer, fresh);
        // CURRENT names the new manifest now; the old one is garbage (and an orphan that
        // the next open removes if this fails).
        let _ = fs.remove_file(&manifest_path(dir, old.number()));
        Ok(())
    }

    /// Ends the manifest with a marker stating all of it, for close (see
    /// [`ManifestWriter::seal`]).
    pub(crate) fn seal(&mut self) -> Result<()> {
        self.writer.seal()
    }
}

/// The edits of a manifest snapshot of `state`: `fields` and `next_file_number` in the
/// first, then an edit per keyspace with its tables, its log number (`keyspace_log`, or
/// the database's) and, for all but `"default"`, its name and options.
pub(crate) fn snapshot_edits(
    state: &State,
    fields: &ManifestFields,
    next_file_number: u64,
    keyspace_log: impl Fn(KeyspaceId) -> Option<u64>,
) -> Vec<VersionEdit> {
    let mut edits = vec![VersionEdit {
        log_number: Some(fields.log_number),
        log_seqno: Some(fields.log_seqno),
        next_file_number: Some(next_file_number),
        last_seqno: Some(fields.last_seqno),
        next_keyspace_id: Some(fields.next_keyspace_id),
        ..VersionEdit::default()
    }];
    for tree in &state.trees {
        let mut edit = tree.version.snapshot_edit();
        edit.keyspace = tree.id;
        edit.keyspace_log_number = keyspace_log(tree.id).filter(|n| *n > fields.log_number);
        if tree.id != DEFAULT_ID {
            edit.created = Some(KeyspaceDef {
                name: tree.name.to_string(),
                options: KeyspaceOptions::of(&tree.options),
            });
        }
        edits.push(edit);
    }
    edits
}
