//! Writing a new manifest and switching `CURRENT` to it, appending edits, and reading both
//! back at open.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use floe_core::fs::{FileSystem, WritableFile};

use super::VersionEdit;
use crate::error::{Error, Result};
use crate::filename::{
    FileKind, current_path, current_temp_path, manifest_file_name, manifest_path, parse_file_name,
};
use crate::wal::{LogWriter, read_log};

/// The open, live manifest: appends edits and makes each durable before returning.
#[derive(Debug)]
pub(crate) struct ManifestWriter {
    log: LogWriter,
    number: u64,
}

impl ManifestWriter {
    /// Writes manifest `number` holding `snapshot` (one edit per keyspace) and makes it the live manifest,
    /// following durability order 3: the manifest is written whole, fsynced and its
    /// directory entry fsynced before `CURRENT` names it; `CURRENT` is replaced by writing
    /// `CURRENT.tmp`, fsyncing it, renaming it over `CURRENT` and fsyncing the directory.
    ///
    /// When this returns `Ok`, a crash at any later moment recovers with the new manifest.
    /// When it fails, `CURRENT` still names the old manifest (or, if the rename happened
    /// but its directory sync failed, possibly either one, both complete and equivalent),
    /// and the new manifest is an orphan for open to remove. The caller deletes the old
    /// manifest only after this returns `Ok`.
    pub(crate) fn create(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        number: u64,
        snapshot: &[VersionEdit],
    ) -> Result<ManifestWriter> {
        let name = manifest_file_name(number);
        let path = manifest_path(dir, number);
        let file = fs
            .create(&path)
            .map_err(|err| Error::io(format!("creating {}", path.display()), err))?;
        let mut log = LogWriter::new(file);
        snapshot
            .iter()
            .try_for_each(|edit| log.append([edit.encode()]))
            .and_then(|()| log.sync_all())
            .map_err(|err| Error::io(format!("writing {}", path.display()), err))?;
        fs.sync_dir(dir)
            .map_err(|err| Error::io(format!("syncing directory {}", dir.display()), err))?;

        let temp = current_temp_path(dir);
        let write_temp = || -> io::Result<()> {
            let mut file = fs.create(&temp)?;
            file.write_all(format!("{name}\n").as_bytes())?;
            // Planted bug (simulation only): `CURRENT.tmp` is renamed into place before
            // its contents are durable.
            if cfg!(floe_planted = "current_renamed_before_sync") {
                return Ok(());
            }
            file.sync_all()
        };
        write_temp().map_err(|err| Error::io(format!("writing {}", temp.display()), err))?;
        let current = current_path(dir);
        fs.rename(&temp, &current).map_err(|err| {
            Error::io(
                format!("renaming {} to {}", temp.display(), current.display()),
                err,
            )
        })?;
        fs.sync_dir(dir)
            .map_err(|err| Error::io(format!("syncing directory {}", dir.display()), err))?;
        Ok(ManifestWriter { log, number })
    }

    /// The stand-in for manifest `number` of a database opened read-only: it appends to
    /// `file`, which refuses every write, instead of to the manifest (and the database
    /// refuses every edit before it would get here).
    pub(crate) fn read_only(number: u64, file: Box<dyn WritableFile>) -> ManifestWriter {
        ManifestWriter {
            log: LogWriter::new(file),
            number,
        }
    }

    /// Appends one edit and makes it durable (`fdatasync`) before returning. An error here
    /// leaves the manifest's tail unknown: the caller must poison the database, and this
    /// writer refuses every later append.
    pub(crate) fn append(&mut self, edit: &VersionEdit) -> Result<()> {
        self.log
            .append([edit.encode()])
            .and_then(|()| self.log.sync())
            .map_err(|err| {
                Error::io(
                    format!("appending to {}", manifest_file_name(self.number)),
                    err,
                )
            })
    }

    /// Ends the manifest with a durable-offset marker stating all of it, synced, so that
    /// damage anywhere in it is reported at the next open (see the `wal` module docs). For
    /// a clean close; edits may still follow.
    pub(crate) fn seal(&mut self) -> Result<()> {
        self.log
            .sync()
            .and_then(|()| self.log.seal())
            .and_then(|()| self.log.sync())
            .map_err(|err| Error::io(format!("sealing {}", manifest_file_name(self.number)), err))
    }

    /// The manifest's file number.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// The manifest's size in bytes, for deciding when to start a fresh one.
    pub(crate) fn len(&self) -> u64 {
        self.log.len()
    }
}

/// The number of the manifest that `CURRENT` names, or `None` if there is no `CURRENT`
/// (a new database). Anything but exactly `MANIFEST-{number:06}\n` is `Corruption`.
pub(crate) fn read_current(fs: &dyn FileSystem, dir: &Path) -> Result<Option<u64>> {
    let path = current_path(dir);
    let contents = match fs.read(&path) {
        Ok(contents) => contents,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::io(format!("reading {}", path.display()), err)),
    };
    let named = std::str::from_utf8(&contents)
        .ok()
        .and_then(|text| text.strip_suffix('\n'))
        .and_then(parse_file_name);
    match named {
        Some(FileKind::Manifest(number)) => Ok(Some(number)),
        _ => Err(Error::corruption(format!(
            "{} does not name a manifest: {:?}",
            path.display(),
            String::from_utf8_lossy(&contents[..contents.len().min(64)])
        ))),
    }
}

/// The edits of manifest `number`, in order, the first being the snapshot it was created
/// with. A missing manifest is `Corruption` (`CURRENT` names it); a torn last record is
/// dropped (its edit was never installed, since installation waits for the sync).
pub(crate) fn replay_manifest(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
) -> Result<Vec<VersionEdit>> {
    let name = manifest_file_name(number);
    let path = manifest_path(dir, number);
    let data = match fs.read(&path) {
        Ok(data) => data,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(Error::corruption(format!(
                "{name}, which CURRENT names, is missing from {}",
                dir.display()
            )));
        }
        Err(err) => return Err(Error::io(format!("reading {}", path.display()), err)),
    };
    let replay = read_log(Bytes::from(data), &name)?;
    if replay.records.is_empty() {
        // CURRENT names a manifest only after its snapshot record is durable.
        return Err(Error::corruption(format!(
            "{name} holds no complete record, not even its initial snapshot"
        )));
    }
    replay
        .records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            VersionEdit::decode(record)
                .map_err(|err| Error::corruption(format!("{name}, record {index}: {err}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use floe_core::fs::StdFs;

    use super::*;
    use crate::version::manifest::edit::tests::{full_edit, table};

    fn edits() -> Vec<VersionEdit> {
        vec![
            full_edit(),
            VersionEdit {
                log_number: Some(13),
                added: vec![(0, table(41, "b", "c"))],
                ..VersionEdit::default()
            },
            VersionEdit {
                removed: vec![(0, 41), (0, 7)],
                added: vec![(1, table(42, "b", "m"))],
                next_file_number: Some(43),
                ..VersionEdit::default()
            },
        ]
    }

    /// Creates manifest 5 in a fresh directory, appends the later edits, and returns the
    /// directory and the manifest's bytes.
    fn write_manifest() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let edits = edits();
        let mut writer =
            ManifestWriter::create(Arc::new(StdFs), dir.path(), 5, &edits[..1]).unwrap();
        for edit in &edits[1..] {
            writer.append(edit).unwrap();
        }
        assert_eq!(writer.number(), 5);
        let path = manifest_path(dir.path(), 5);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(writer.len(), bytes.len() as u64);
        (dir, path, bytes)
    }

    #[test]
    fn create_append_and_replay() {
        let (dir, _, _) = write_manifest();
        let fs = StdFs;
        assert_eq!(read_current(&fs, dir.path()).unwrap(), Some(5));
        assert_eq!(
            std::fs::read_to_string(current_path(dir.path())).unwrap(),
            "MANIFEST-000005\n"
        );
        assert!(!current_temp_path(dir.path()).exists());
        assert_eq!(replay_manifest(&fs, dir.path(), 5).unwrap(), edits());

        // A second manifest replaces CURRENT; the old one is left for the caller to delete.
        ManifestWriter::create(Arc::new(StdFs), dir.path(), 9, &edits()[2..3]).unwrap();
        assert_eq!(read_current(&fs, dir.path()).unwrap(), Some(9));
        assert_eq!(
            replay_manifest(&fs, dir.path(), 9).unwrap(),
            vec![edits()[2].clone()]
        );
        assert!(manifest_path(dir.path(), 5).exists());
    }

    #[test]
    fn missing_current_means_a_new_database_and_bad_current_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs;
        assert_eq!(read_current(&fs, dir.path()).unwrap(), None);
        for contents in [
            &b""[..],
            b"MANIFEST-000007",
            b"MANIFEST-000007\n\n",
            b"MANIFEST-7\n",
            b"MANIFEST-0000007\n",
            b"000007.log\n",
            b"manifest-000007\n",
            b"\xffMANIFEST-000007\n",
            b" MANIFEST-000007\n",
        ] {
            std::fs::write(current_path(dir.path()), contents).unwrap();
            let err = read_current(&fs, dir.path()).unwrap_err();
            assert!(
                matches!(err, Error::Corruption { .. }),
                "{contents:?}: {err}"
            );
        }
        std::fs::write(current_path(dir.path()), b"MANIFEST-1234567\n").unwrap();
        assert_eq!(read_current(&fs, dir.path()).unwrap(), Some(1_234_567));
    }

    #[test]
    fn a_missing_or_empty_manifest_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs;
        let err = replay_manifest(&fs, dir.path(), 3).unwrap_err();
        assert!(matches!(err, Error::Corruption { .. }), "{err}");
        assert!(err.to_string().contains("MANIFEST-000003"), "{err}");
        std::fs::write(manifest_path(dir.path(), 3), b"").unwrap();
        let err = replay_manifest(&fs, dir.path(), 3).unwrap_err();
        assert!(matches!(err, Error::Corruption { .. }), "{err}");
    }

    #[test]
    fn every_truncation_replays_a_prefix_of_the_edits() {
        let (dir, path, bytes) = write_manifest();
        let fs = StdFs;
        let all = edits();
        for cut in 0..=bytes.len() {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            match replay_manifest(&fs, dir.path(), 5) {
                Ok(replayed) => {
                    assert!(!replayed.is_empty(), "cut at {cut}");
                    assert_eq!(replayed[..], all[..replayed.len()], "cut at {cut}");
                }
                // Only a cut inside the snapshot record leaves no complete record.
                Err(Error::Corruption { message }) => {
                    assert!(
                        message.contains("no complete record"),
                        "cut at {cut}: {message}"
                    );
                }
                Err(other) => panic!("cut at {cut}: {other}"),
            }
        }
    }

    #[test]
    fn every_bit_flip_is_corruption_or_drops_only_the_last_edit() {
        let (dir, path, bytes) = write_manifest();
        let fs = StdFs;
        let all = edits();
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[byte] ^= 1 << bit;
                std::fs::write(&path, &damaged).unwrap();
                let context = format!("flip of bit {bit} of byte {byte}");
                match replay_manifest(&fs, dir.path(), 5) {
                    Ok(replayed) => {
                        // Only the last record may be lost, as a torn tail.
                        assert_eq!(replayed[..], all[..all.len() - 1], "{context}");
                    }
                    Err(Error::Corruption { message }) => {
                        assert!(message.contains("MANIFEST-000005"), "{context}: {message}");
                    }
                    Err(other) => panic!("{context}: {other}"),
                }
            }
        }
    }
}
