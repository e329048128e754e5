//! [`ManifestState`]: the live manifest of an open database, with what its edits add up
//! to, so that it can be rolled over into a new file holding one snapshot edit.

use std::path::Path;
use std::sync::Arc;

use floe_core::SeqNo;
use floe_core::fs::FileSystem;

use super::{ManifestWriter, VersionEdit};
use crate::error::Result;
use crate::filename::manifest_path;

/// The size past which the manifest is rewritten as one snapshot edit in a new file.
/// Unit tests use a tiny size so that every test that flushes exercises the switch.
const MANIFEST_ROLL_BYTES: u64 = if cfg!(test) { 512 } else { 4 << 20 };

/// The live manifest and what its edits add up to (for the snapshot of a new manifest).
#[derive(Debug)]
pub(crate) struct ManifestState {
    writer: ManifestWriter,
    /// The log number the manifest records.
    log_number: u64,
    /// The last sequence number the manifest records.
    last_seqno: SeqNo,
}

impl ManifestState {
    /// The manifest `writer` just created, whose snapshot records `log_number` and
    /// `last_seqno`.
    pub(crate) fn new(writer: ManifestWriter, log_number: u64, last_seqno: SeqNo) -> ManifestState {
        ManifestState {
            writer,
            log_number,
            last_seqno,
        }
    }

    /// Appends `edit` and makes it durable. A failure leaves the manifest's tail unknown:
    /// the caller poisons the database.
    pub(crate) fn append(&mut self, edit: &VersionEdit) -> Result<()> {
        self.writer.append(edit)?;
        if let Some(number) = edit.log_number {
            self.log_number = self.log_number.max(number);
        }
        if let Some(seqno) = edit.last_seqno {
            self.last_seqno = self.last_seqno.max(seqno);
        }
        Ok(())
    }

    /// Whether the manifest outgrew [`MANIFEST_ROLL_BYTES`].
    pub(crate) fn wants_roll(&self) -> bool {
        self.writer.len() >= MANIFEST_ROLL_BYTES
    }

    /// Writes manifest `number` in `dir`, holding `snapshot` (the edit of the latest
    /// version) with this manifest's log number and last sequence number and
    /// `next_file_number`, switches `CURRENT` to it (durability order 3, in
    /// [`ManifestWriter::create`]), and deletes the old manifest.
    pub(crate) fn roll(
        &mut self,
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        number: u64,
        mut snapshot: VersionEdit,
        next_file_number: u64,
    ) -> Result<()> {
        snapshot.log_number = Some(self.log_number);
        snapshot.next_file_number = Some(next_file_number);
        snapshot.last_seqno = Some(self.last_seqno);
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
