//! Incremental backups: [`BackupEngine`] keeps numbered backups of databases in one
//! directory, each restorable on its own, sharing the table files they have in common.
//!
//! Layout of a backup directory:
//!
//! ```text
//! shared/NNNNNN-SIZE-CRC.sst    a table, stored once for every backup that holds it
//! private/ID-NAME                the manifest, CURRENT and log segments of backup ID
//! ID.backup                      what backup ID is made of (written last: the backup exists
//!                                once this file does)
//! ```
//!
//! A backup starts as a checkpoint ([`crate::Db::checkpoint`]) into a temporary directory
//! beside them, so it is one point in time for every keyspace and costs the live database
//! no more than a checkpoint does. Each table of the database is checksummed (CRC-32 of
//! the whole file, a read of it) first: one whose number, size and checksum the `shared`
//! directory holds already is left out of the checkpoint, so it is neither linked nor
//! copied, even when the backup directory lies on another file system where the
//! checkpoint could not link and would copy. The other tables move from the checkpoint
//! into `shared`, and the remaining files into the `private` directory. The description file lists every file with its size
//! and checksum, and ends with a checksum of its own; it is written under a temporary name,
//! synced and renamed into place, so a crash leaves either a whole backup or debris that
//! the next [`BackupEngine::open`] removes.
//!
//! A restore copies the files of one backup into a new directory under their database
//! names, checking each against the size and checksum the description records, and a
//! mismatch is [`Error::Corruption`] naming the file. Deleting a backup removes its
//! description, then its private files, then every shared table no other backup lists.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use floe_core::checksum::crc32;
use floe_core::fs::{FileSystem, StdFs};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::filename::{FileKind, parse_file_name};
use crate::version::manifest::TableFile;

/// The first line of every backup description.
const MAGIC: &str = "floe-backup 1";

/// One backup, as [`BackupEngine::backups`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupInfo {
    /// The backup's id: ids grow with each backup and are never reused.
    pub id: u64,
    /// When the backup was made, in seconds since the Unix epoch.
    pub unix_time: u64,
    /// The bytes of every file the backup holds (shared tables included).
    pub bytes: u64,
    /// How many files it holds.
    pub files: usize,
}

/// One file of a backup: where it is kept, the name it has in a database, its size and
/// its CRC-32.
#[derive(Clone, Debug, PartialEq, Eq)]
struct BackupFile {
    /// The name under the `shared` directory or the `private` directory.
    stored: String,
    shared: bool,
    /// The name in the database directory.
    name: String,
    size: u64,
    crc: u32,
}

/// A directory of incremental backups (see the module docs).
///
/// ```
/// # let dirs = tempfile::tempdir().unwrap();
/// use floe_engine::backup::BackupEngine;
///
/// let db = floe_engine::Db::open(dirs.path().join("db"))?;
/// db.put("k", "v")?;
/// let backups = BackupEngine::open(dirs.path().join("backups"))?;
/// let first = backups.create_backup(&db)?;
/// db.put("k2", "v2")?;
/// backups.create_backup(&db)?; // shares the tables the first one has
/// backups.restore(first.id, dirs.path().join("restored"))?;
/// let restored = floe_engine::Db::open(dirs.path().join("restored"))?;
/// assert_eq!(restored.get("k2")?, None);
/// # Ok::<(), floe_engine::Error>(())
/// ```
#[derive(Debug)]
pub struct BackupEngine {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
}

impl BackupEngine {
    /// Opens (creating it if needed) the backup directory `dir`, and removes the debris
    /// of a backup that a crash interrupted.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be created or read.
    pub fn open(dir: impl AsRef<Path>) -> Result<BackupEngine> {
        let engine = BackupEngine {
            dir: dir.as_ref().to_path_buf(),
            fs: Arc::new(StdFs),
        };
        for sub in ["", "shared", "private"] {
            let path = engine.dir.join(sub);
            engine
                .fs
                .create_dir_all(&path)
                .map_err(|err| Error::io(format_args!("creating {}", path.display()), err))?;
        }
        engine.remove_debris()?;
        Ok(engine)
    }

    /// Backs up `db` as it is now (a checkpoint of every keyspace), storing only the
    /// tables this directory does not hold yet; returns the new backup.
    ///
    /// # Errors
    /// As for [`Db::checkpoint`], and [`Error::Io`] if the backup directory cannot be
    /// written.
    pub fn create_backup(&self, db: &Db) -> Result<BackupInfo> {
        let id = self.backup_ids()?.last().map_or(1, |last| last + 1);
        let staging = self.dir.join(format!("staging-{id}"));
        // A table this directory holds already (the same name, size and checksum) is
        // left out of the checkpoint, not copied and discarded: what makes a backup to
        // another file system, where the checkpoint cannot link, incremental too. The
        // checksum takes a read of the table, as it does for the new ones.
        let shared = db.shared();
        let mut files = Vec::new();
        let mut held = |source: &Path, table: &TableFile| -> Result<bool> {
            let Some(name) = source.file_name().and_then(|n| n.to_str()) else {
                return Ok(false);
            };
            let bytes = shared
                .fs
                .read(source)
                .map_err(|err| Error::io(format_args!("reading {}", source.display()), err))?;
            let (size, crc) = (bytes.len() as u64, crc32(&[&bytes]));
            drop(bytes);
            let stored = shared_name(name, size, crc);
            if size != table.size || !self.fs.exists(&self.dir.join("shared").join(&stored)) {
                return Ok(false);
            }
            files.push(BackupFile {
                stored,
                shared: true,
                name: name.to_owned(),
                size,
                crc,
            });
            Ok(true)
        };
        shared.checkpoint_skipping(&staging, &mut held)?;
        for name in self.list(&staging)? {
            let path = staging.join(&name);
            let bytes = self.read(&path)?;
            let size = bytes.len() as u64;
            let crc = crc32(&[&bytes]);
            drop(bytes);
            let shared = matches!(parse_file_name(&name), Some(FileKind::Table(_)));
            let stored = if shared {
                shared_name(&name, size, crc)
            } else {
                format!("{id}-{name}")
            };
            let home = self.dir.join(if shared { "shared" } else { "private" });
            let destination = home.join(&stored);
            if shared && self.fs.exists(&destination) {
                self.remove(&path)?;
            } else {
                self.fs.rename(&path, &destination).map_err(|err| {
                    Error::io(
                        format_args!("moving {} to {}", path.display(), destination.display()),
                        err,
                    )
                })?;
            }
            files.push(BackupFile {
                stored,
                shared,
                name,
                size,
                crc,
            });
        }
        self.fs
            .remove_dir(&staging)
            .map_err(|err| Error::io(format_args!("removing {}", staging.display()), err))?;
        for sub in ["shared", "private"] {
            self.sync_dir(&self.dir.join(sub))?;
        }
        let unix_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        self.write_description(id, unix_time, &files)?;
        Ok(info(id, unix_time, &files))
    }

    /// Every backup, oldest first.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be read, [`Error::Corruption`] if a
    /// description is damaged.
    pub fn backups(&self) -> Result<Vec<BackupInfo>> {
        self.backup_ids()?
            .into_iter()
            .map(|id| {
                let (unix_time, files) = self.description(id)?;
                Ok(info(id, unix_time, &files))
            })
            .collect()
    }

    /// Restores backup `id` into the new directory `target` (which must not exist),
    /// checking every file against its recorded size and checksum. The result opens with
    /// [`Db::open`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown id or an existing `target`,
    /// [`Error::Corruption`] if a file of the backup is damaged or missing, [`Error::Io`]
    /// if a file cannot be read or written.
    pub fn restore(&self, id: u64, target: impl AsRef<Path>) -> Result<()> {
        let target = target.as_ref();
        let (_, files) = self.description(id)?;
        if self.fs.exists(target) {
            return Err(Error::invalid(format!(
                "the restore directory {} exists already; a backup is restored into a new directory",
                target.display()
            )));
        }
        self.fs
            .create_dir_all(target)
            .map_err(|err| Error::io(format_args!("creating {}", target.display()), err))?;
        for file in &files {
            let bytes = self.checked(id, file)?;
            let path = target.join(&file.name);
            let written = self.fs.create(&path).and_then(|mut out| {
                out.write_all(&bytes)?;
                out.sync_all()
            });
            written.map_err(|err| Error::io(format_args!("writing {}", path.display()), err))?;
        }
        self.sync_dir(target)
    }

    /// Checks every file of backup `id` against its recorded size and checksum.
    ///
    /// # Errors
    /// As for [`BackupEngine::restore`].
    pub fn verify(&self, id: u64) -> Result<()> {
        let (_, files) = self.description(id)?;
        for file in &files {
            self.checked(id, file)?;
        }
        Ok(())
    }

    /// Deletes backup `id`, and every shared table that no other backup holds.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown id, [`Error::Io`] if a file cannot be
    /// removed.
    pub fn delete_backup(&self, id: u64) -> Result<()> {
        let (_, files) = self.description(id)?;
        self.remove(&self.description_path(id))?;
        self.sync_dir(&self.dir)?;
        for file in files.iter().filter(|f| !f.shared) {
            let _ = self
                .fs
                .remove_file(&self.dir.join("private").join(&file.stored));
        }
        self.collect_shared()
    }

    /// Removes what an interrupted backup left: staging directories, private files and
    /// shared tables of no backup, and temporary descriptions.
    fn remove_debris(&self) -> Result<()> {
        for name in self.list(&self.dir)? {
            let path = self.dir.join(&name);
            if name.starts_with("staging-") {
                for inner in self.list(&path)? {
                    let _ = self.fs.remove_file(&path.join(inner));
                }
                let _ = self.fs.remove_dir(&path);
            } else if name.ends_with(".backup.tmp") {
                let _ = self.fs.remove_file(&path);
            }
        }
        let ids: BTreeSet<u64> = self.backup_ids()?.into_iter().collect();
        for name in self.list(&self.dir.join("private"))? {
            let owner = name.split('-').next().and_then(|id| id.parse::<u64>().ok());
            if owner.is_none_or(|id| !ids.contains(&id)) {
                let _ = self.fs.remove_file(&self.dir.join("private").join(name));
            }
        }
        self.collect_shared()
    }

    /// Removes the shared tables that no backup lists.
    fn collect_shared(&self) -> Result<()> {
        let mut used = BTreeSet::new();
        for id in self.backup_ids()? {
            let (_, files) = self.description(id)?;
            used.extend(files.into_iter().filter(|f| f.shared).map(|f| f.stored));
        }
        for name in self.list(&self.dir.join("shared"))? {
            if !used.contains(&name) {
                let _ = self.fs.remove_file(&self.dir.join("shared").join(name));
            }
        }
        Ok(())
    }

    /// The bytes of `file` of backup `id`, checked against its size and checksum.
    fn checked(&self, id: u64, file: &BackupFile) -> Result<Vec<u8>> {
        let home = self
            .dir
            .join(if file.shared { "shared" } else { "private" });
        let path = home.join(&file.stored);
        if !self.fs.exists(&path) {
            return Err(Error::corruption(format!(
                "backup {id}: {} is missing",
                path.display()
            )));
        }
        let bytes = self.read(&path)?;
        if bytes.len() as u64 != file.size || crc32(&[&bytes]) != file.crc {
            return Err(Error::corruption(format!(
                "backup {id}: {} does not match its recorded size {} and checksum {:08x}",
                path.display(),
                file.size,
                file.crc
            )));
        }
        Ok(bytes)
    }

    /// The ids of the backups whose description exists, ascending.
    fn backup_ids(&self) -> Result<Vec<u64>> {
        let mut ids: Vec<u64> = self
            .list(&self.dir)?
            .iter()
            .filter_map(|name| name.strip_suffix(".backup")?.parse().ok())
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    fn description_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.backup"))
    }

    /// Writes the description of backup `id`: under a temporary name, synced, renamed.
    fn write_description(&self, id: u64, unix_time: u64, files: &[BackupFile]) -> Result<()> {
        let mut text = format!("{MAGIC}\nid {id}\ntime {unix_time}\n");
        for file in files {
            let kind = if file.shared { "shared" } else { "private" };
            let _ = writeln!(
                text,
                "file {kind} {} {} {} {:08x}",
                file.stored, file.name, file.size, file.crc
            );
        }
        let _ = writeln!(text, "crc {:08x}", crc32(&[text.as_bytes()]));
        let path = self.description_path(id);
        let temp = self.dir.join(format!("{id}.backup.tmp"));
        let written = self.fs.create(&temp).and_then(|mut out| {
            out.write_all(text.as_bytes())?;
            out.sync_all()
        });
        written.map_err(|err| Error::io(format_args!("writing {}", temp.display()), err))?;
        self.fs
            .rename(&temp, &path)
            .map_err(|err| Error::io(format_args!("renaming {}", temp.display()), err))?;
        self.sync_dir(&self.dir)
    }

    /// The time and files of backup `id`.
    fn description(&self, id: u64) -> Result<(u64, Vec<BackupFile>)> {
        let path = self.description_path(id);
        if !self.fs.exists(&path) {
            return Err(Error::invalid(format!(
                "there is no backup {id} in {}",
                self.dir.display()
            )));
        }
        let bytes = self.read(&path)?;
        let corrupt = |what: &str| {
            Error::corruption(format!("backup description {}: {what}", path.display()))
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| corrupt("not UTF-8"))?;
        let body_end = text
            .rfind("crc ")
            .ok_or_else(|| corrupt("no checksum line"))?;
        let (body, crc_line) = text.split_at(body_end);
        let recorded = crc_line
            .trim()
            .strip_prefix("crc ")
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .ok_or_else(|| corrupt("a malformed checksum line"))?;
        if recorded != crc32(&[body.as_bytes()]) {
            return Err(corrupt("its checksum does not match"));
        }
        let mut lines = body.lines();
        if lines.next() != Some(MAGIC) {
            return Err(corrupt("not a floe backup description"));
        }
        let mut fields = BTreeMap::new();
        let mut files = Vec::new();
        for line in lines {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                [
                    "file",
                    kind @ ("shared" | "private"),
                    stored,
                    name,
                    size,
                    crc,
                ] => {
                    files.push(BackupFile {
                        stored: (*stored).to_owned(),
                        shared: *kind == "shared",
                        name: (*name).to_owned(),
                        size: size.parse().map_err(|_| corrupt("a malformed size"))?,
                        crc: u32::from_str_radix(crc, 16)
                            .map_err(|_| corrupt("a malformed file checksum"))?,
                    });
                }
                [key @ ("id" | "time"), value] => {
                    let value: u64 = value.parse().map_err(|_| corrupt("a malformed number"))?;
                    fields.insert(*key, value);
                }
                _ => return Err(corrupt(&format!("an unknown line {line:?}"))),
            }
        }
        if fields.get("id") != Some(&id) {
            return Err(corrupt("it describes another backup"));
        }
        Ok((fields.get("time").copied().unwrap_or(0), files))
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        self.fs
            .list_dir(dir)
            .map_err(|err| Error::io(format_args!("listing {}", dir.display()), err))
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        self.fs
            .read(path)
            .map_err(|err| Error::io(format_args!("reading {}", path.display()), err))
    }

    fn remove(&self, path: &Path) -> Result<()> {
        self.fs
            .remove_file(path)
            .map_err(|err| Error::io(format_args!("removing {}", path.display()), err))
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.fs
            .sync_dir(dir)
            .map_err(|err| Error::io(format_args!("syncing {}", dir.display()), err))
    }
}

/// The name a table of a database (`name`, such as `000012.sst`) is stored under in the
/// shared directory: its number, size and CRC-32, so that the same table is stored once.
fn shared_name(name: &str, size: u64, crc: u32) -> String {
    let number = name.trim_end_matches(".sst");
    format!("{number}-{size}-{crc:08x}.sst")
}

fn info(id: u64, unix_time: u64, files: &[BackupFile]) -> BackupInfo {
    BackupInfo {
        id,
        unix_time,
        bytes: files.iter().map(|f| f.size).sum(),
        files: files.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;

    fn table_files(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn backups_share_tables_restore_exactly_and_delete_only_what_no_other_holds() {
        let dirs = tempfile::tempdir().unwrap();
        let options = Options::default().write_buffer_size(4096).block_size(256);
        let db = Db::open_with(dirs.path().join("db"), options.clone()).unwrap();
        let other = db.keyspace("other").unwrap();
        for i in 0..600u32 {
            db.put(format!("k{i:04}"), [1u8; 40]).unwrap();
        }
        other.put("x", "1").unwrap();
        db.flush().unwrap();
        let backups = BackupEngine::open(dirs.path().join("backups")).unwrap();
        let first = backups.create_backup(&db).unwrap();
        let shared_after_first = table_files(&dirs.path().join("backups/shared"));
        assert!(shared_after_first > 0);
        // Unflushed writes are in the backup too (its log).
        db.put("late", "in the second").unwrap();
        let second = backups.create_backup(&db).unwrap();
        assert!(second.id > first.id);
        let shared_after_second = table_files(&dirs.path().join("backups/shared"));
        // Nothing was flushed in between: no new table.
        assert_eq!(shared_after_second, shared_after_first);
        assert_eq!(backups.backups().unwrap().len(), 2);

        for (info, late) in [(&first, None), (&second, Some(&b"in the second"[..]))] {
            let target = dirs.path().join(format!("restored-{}", info.id));
            backups.verify(info.id).unwrap();
            backups.restore(info.id, &target).unwrap();
            let restored = Db::open_with(&target, options.clone()).unwrap();
            assert_eq!(restored.get("late").unwrap().as_deref(), late);
            assert_eq!(restored.iter().count(), 600 + usize::from(late.is_some()));
            assert_eq!(
                restored
                    .keyspace("other")
                    .unwrap()
                    .get("x")
                    .unwrap()
                    .as_deref(),
                Some(&b"1"[..])
            );
        }

        backups.delete_backup(first.id).unwrap();
        // The second backup still needs every shared table.
        assert_eq!(
            table_files(&dirs.path().join("backups/shared")),
            shared_after_second
        );
        backups.verify(second.id).unwrap();
        backups.delete_backup(second.id).unwrap();
        assert_eq!(table_files(&dirs.path().join("backups/shared")), 0);
        assert_eq!(table_files(&dirs.path().join("backups/private")), 0);
        assert!(matches!(
            backups.restore(second.id, dirs.path().join("nowhere")),
            Err(Error::InvalidArgument { .. })
        ));
    }

    fn dir_bytes(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    }

    fn table_bytes_in(dir: &Path) -> std::collections::BTreeMap<String, u64> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.path().extension().is_some_and(|x| x == "sst"))
            .map(|e| {
                (
                    e.file_name().into_string().unwrap(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect()
    }

    /// An incremental backup adds exactly the bytes of the tables that are new since the
    /// last one (measured on the shared directory), and a database whose disk was lost is
    /// restored whole from it into its old place.
    #[test]
    fn an_incremental_backup_copies_only_new_tables_and_restores_after_a_disk_loss() {
        let dirs = tempfile::tempdir().unwrap();
        let path = dirs.path().join("db");
        let options = Options::default().write_buffer_size(64 << 10);
        let db = Db::open_with(&path, options.clone()).unwrap();
        for i in 0..4_000u32 {
            db.put(format!("a{i:05}"), [7u8; 100]).unwrap();
        }
        db.flush().unwrap();
        db.wait_for_compactions().unwrap();
        let backups = BackupEngine::open(dirs.path().join("backups")).unwrap();
        let first = backups.create_backup(&db).unwrap();
        let shared = dirs.path().join("backups/shared");
        let before = dir_bytes(&shared);
        let tables_then = table_bytes_in(&path);
        assert_eq!(before, tables_then.values().sum::<u64>());
        for i in 0..1_000u32 {
            db.put(format!("b{i:05}"), [8u8; 100]).unwrap();
        }
        db.flush().unwrap();
        // No compaction may change the tables between this listing and the backup.
        db.wait_for_compactions().unwrap();
        let tables_now = table_bytes_in(&path);
        let new_bytes: u64 = tables_now
            .iter()
            .filter(|(name, _)| !tables_then.contains_key(*name))
            .map(|(_, size)| size)
            .sum();
        assert!(
            new_bytes > 0 && new_bytes < before,
            "{new_bytes} of {before}"
        );
        let second = backups.create_backup(&db).unwrap();
        assert!(second.id > first.id);
        assert_eq!(
            dir_bytes(&shared) - before,
            new_bytes,
            "only the new tables were added"
        );
        db.close().unwrap();

        // The disk is lost: the database directory is gone.
        std::fs::remove_dir_all(&path).unwrap();
        backups.restore(second.id, &path).unwrap();
        let restored = Db::open_with(&path, options).unwrap();
        assert_eq!(restored.iter().count(), 5_000);
        assert_eq!(
            restored.get("b00999").unwrap().as_deref(),
            Some(&[8u8; 100][..])
        );
    }

    /// A database on a file system that cannot link into the backup directory (as
    /// across devices: `FaultyFs` has no hard links, so a checkpoint copies): a backup
    /// that finds every table stored already copies none of them. Creating a table file
    /// fails throughout the second backup, which therefore must not try.
    #[test]
    fn across_file_systems_a_backup_copies_no_table_it_holds_already() {
        use crate::testing::{FaultOp, FaultyFs};
        let dirs = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        let options = Options::default()
            .write_buffer_size(64 << 10)
            .file_system(Arc::new(fs.clone()));
        let db = Db::open_with(dirs.path().join("db"), options).unwrap();
        for i in 0..3_000u32 {
            db.put(format!("k{i:05}"), [5u8; 100]).unwrap();
        }
        db.flush().unwrap();
        db.wait_for_compactions().unwrap();
        let backups = BackupEngine::open(dirs.path().join("backups")).unwrap();
        let first = backups.create_backup(&db).unwrap();
        db.put("late", "only in the log").unwrap();
        fs.fail_always_on(FaultOp::Create, Some(".sst"));
        let second = backups.create_backup(&db).unwrap();
        fs.heal();
        assert!(second.id > first.id && second.files >= first.files);
        let target = dirs.path().join("restored");
        backups.restore(second.id, &target).unwrap();
        let restored = Db::open(&target).unwrap();
        assert_eq!(restored.iter().count(), 3_001);
        assert_eq!(
            restored.get("late").unwrap().as_deref(),
            Some(&b"only in the log"[..])
        );
    }

    #[test]
    fn a_damaged_backup_file_is_corruption_on_restore_and_verify() {
        let dirs = tempfile::tempdir().unwrap();
        let db = Db::open(dirs.path().join("db")).unwrap();
        db.put("k", "v").unwrap();
        db.flush().unwrap();
        let backups = BackupEngine::open(dirs.path().join("backups")).unwrap();
        let backup = backups.create_backup(&db).unwrap();
        let shared = dirs.path().join("backups/shared");
        let table = std::fs::read_dir(&shared)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut bytes = std::fs::read(&table).unwrap();
        bytes[10] ^= 1;
        std::fs::write(&table, bytes).unwrap();
        assert!(matches!(
            backups.verify(backup.id),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(
            backups.restore(backup.id, dirs.path().join("restored")),
            Err(Error::Corruption { .. })
        ));
        // A damaged description is corruption too.
        let description = dirs.path().join(format!("backups/{}.backup", backup.id));
        let text = std::fs::read_to_string(&description).unwrap();
        std::fs::write(&description, text.replace("time", "tame")).unwrap();
        assert!(matches!(backups.backups(), Err(Error::Corruption { .. })));
    }

    #[test]
    fn an_interrupted_backup_leaves_nothing_after_the_next_open() {
        let dirs = tempfile::tempdir().unwrap();
        let db = Db::open(dirs.path().join("db")).unwrap();
        db.put("k", "v").unwrap();
        db.flush().unwrap();
        let root = dirs.path().join("backups");
        let backups = BackupEngine::open(&root).unwrap();
        // A checkpoint staged but never described, as a crash in `create_backup` leaves.
        db.checkpoint(root.join("staging-1")).unwrap();
        std::fs::write(root.join("private/1-CURRENT"), "x").unwrap();
        std::fs::write(root.join("shared/000009-1-00000000.sst"), "x").unwrap();
        drop(backups);
        let backups = BackupEngine::open(&root).unwrap();
        assert!(backups.backups().unwrap().is_empty());
        let left: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert_eq!(table_files(&root.join("shared")), 0);
        assert_eq!(table_files(&root.join("private")), 0);
        assert_eq!(backups.create_backup(&db).unwrap().id, 1);
    }
}
