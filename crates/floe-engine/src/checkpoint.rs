//! Checkpoints (`Db::checkpoint`): an openable copy of a live database, every keyspace, in
//! a new directory, made of hard links where the file system allows.
//!
//! The point in time is fixed under the log and manifest mutexes, which is all writers
//! wait for: the log moves to a new segment (so every segment the copy needs is closed,
//! and holds whole commit groups), the latest state is taken (its tables stay alive while
//! it is held), with the manifest snapshot that describes it, and the segments at or above
//! its log number are linked while nothing can delete them (a flush deletes segments under
//! the manifest mutex). After that the tables are linked, the linked segments synced, and
//! the copy's manifest and `CURRENT` written. The copy replays the linked segments when
//! it is opened, so it holds exactly the writes logged before the point: every write
//! acknowledged before the call, and those in flight that were logged before the point,
//! each whole.
//!
//! Why the log and not a flush first: a flush of every keyspace would cost a table per
//! keyspace (tiny ones for quiet keyspaces), and would still not fix one point in time
//! for all keyspaces, since writes go on between their flushes. Linking a closed segment
//! costs nothing; the copy pays the replay when it is opened.
//!
//! A database opened read-only has no log to rotate, and may not be able to read the
//! segments it replayed any more (a writer beside it deletes them): its checkpoint links
//! the tables it opened and writes the writes it replayed, which it holds in memtables,
//! as level-0 tables of the copy, beside an empty segment. The copy then holds exactly
//! what the read-only handle reads.
//!
//! A file that cannot be linked (another file system, or a file system without links) is
//! copied and synced. Tables and closed segments never change but for the durable-offset
//! marker a closed segment may still get at its end, which the copy reads like the
//! original does.

use std::ops::Bound;
use std::path::Path;

use floe_core::fs::FileSystem;

use crate::error::{Error, Result};
use crate::filename::{log_path, table_path};
use crate::keyspace::{DEFAULT_ID, KeyspaceOptions};
use crate::range_del::bounded;
use crate::shared::Shared;
use crate::sync::lock;
use crate::version::TableWriter;
use crate::version::manifest::{KeyspaceDef, ManifestWriter, TableFile, VersionEdit};

/// Whether a checkpoint leaves a table's file out (see [`Shared::checkpoint_skipping`]).
pub(crate) type SkipTable<'s> = dyn FnMut(&Path, &TableFile) -> Result<bool> + 's;

impl Shared {
    /// Writes a checkpoint into `target`, which must not exist (see the module docs).
    pub(crate) fn checkpoint(&self, target: &Path) -> Result<()> {
        self.checkpoint_skipping(target, &mut |_, _| Ok(false))
    }

    /// [`Shared::checkpoint`], leaving out of `target` the files of the tables for which
    /// `skip(source, table)` says so (`source` is the table's file in this database);
    /// the manifest of the copy lists them all the same. For a backup that holds them
    /// already: the copy is complete once they are put back.
    pub(crate) fn checkpoint_skipping(
        &self,
        target: &Path,
        skip: &mut SkipTable<'_>,
    ) -> Result<()> {
        if self.is_read_only() {
            return self.checkpoint_read_only(target, skip);
        }
        self.check_writable()?;
        if self.fs.exists(target) {
            return Err(Error::invalid(format!(
                "the checkpoint directory {} exists already; a checkpoint goes into a new directory",
                target.display()
            )));
        }
        let io = |what: &str, err| Error::io(format_args!("{what} {}", target.display()), err);
        self.fs
            .create_dir_all(target)
            .map_err(|err| io("creating the checkpoint directory", err))?;
        let manifest_number = self.file_numbers.allocate()?;

        // Fix the point (see the module docs).
        let (state, snapshot, segments) = {
            let mut log = lock(&self.log);
            self.rotate_log_locked(&mut log)?;
            let manifest = lock(&self.manifest);
            let state = self.state.load_full();
            let snapshot = manifest.snapshot_of(&state, self.file_numbers.peek());
            let needed = snapshot[0].log_number.unwrap_or(0);
            let segments: Vec<u64> = lock(&self.segments)
                .closed
                .iter()
                .map(|s| s.number)
                .filter(|n| *n >= needed)
                .collect();
            for &number in &segments {
                self.link_or_copy(&log_path(&self.dir, number), &log_path(target, number))?;
            }
            (state, snapshot, segments)
        };

        for &number in &segments {
            // The link shares the segment's file: syncing it syncs the original's data.
            let path = log_path(target, number);
            self.fs
                .open_append(&path)
                .and_then(|mut file| file.sync_all())
                .map_err(|err| Error::io(format_args!("syncing {}", path.display()), err))?;
        }
        for tree in &state.trees {
            for table in tree.version.tables() {
                let number = table.number();
                let source = table_path(&self.dir, number);
                if !skip(&source, &table.file)? {
                    self.link_or_copy(&source, &table_path(target, number))?;
                }
            }
        }
        drop(state);
        // Durability order 3 in the copy: the manifest whole and synced, its directory
        // entry and every link synced, then `CURRENT`.
        ManifestWriter::create(
            std::sync::Arc::clone(&self.fs),
            target,
            manifest_number,
            &snapshot,
        )?;
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.fs
                .sync_dir(parent)
                .map_err(|err| Error::io(format_args!("syncing {}", parent.display()), err))?;
        }
        Ok(())
    }

    /// The checkpoint of a database opened read-only (see the module docs).
    fn checkpoint_read_only(&self, target: &Path, skip: &mut SkipTable<'_>) -> Result<()> {
        // The database's own file system refuses every change; the copy is written
        // through the one underneath.
        let fs = crate::recovery::file_system(&self.options);
        if fs.exists(target) {
            return Err(Error::invalid(format!(
                "the checkpoint directory {} exists already; a checkpoint goes into a new directory",
                target.display()
            )));
        }
        fs.create_dir_all(target).map_err(|err| {
            Error::io(
                format_args!("creating the checkpoint directory {}", target.display()),
                err,
            )
        })?;
        let state = self.state.load_full();
        let last_seqno = self.publisher.visible();
        // Past every file the manifest knew: the linked tables keep their numbers.
        let mut next = self.file_numbers.peek();
        let mut allocate = || {
            let number = next;
            next = next
                .checked_add(1)
                .ok_or_else(|| crate::filename::numbers_exhausted(number))?;
            Ok::<u64, Error>(number)
        };
        let log_number = allocate()?;
        let mut edits = Vec::with_capacity(state.trees.len() + 1);
        for tree in &state.trees {
            let mut edit = VersionEdit {
                keyspace: tree.id,
                ..VersionEdit::default()
            };
            if tree.id != DEFAULT_ID {
                edit.created = Some(KeyspaceDef {
                    name: tree.name.to_string(),
                    options: KeyspaceOptions::of(&tree.options),
                });
            }
            for (level, tables) in tree.version.levels.iter().enumerate() {
                for table in tables {
                    let number = table.number();
                    let source = table_path(&self.dir, number);
                    if !skip(&source, &table.file)? {
                        link_or_copy(&*fs, &source, &table_path(target, number))?;
                    }
                    edit.added.push((level as u32, table.file.clone()));
                }
            }
            let max_key = tree.max_user_key();
            for mem in tree.memtables().filter(|mem| !mem.is_empty()) {
                let mut writer =
                    TableWriter::create(&fs, target, allocate()?, tree.options.table_options(0))?;
                let mut written = 0u64;
                for (key, value) in mem.entries(Bound::Unbounded, Bound::Unbounded) {
                    writer.add(&key, &value)?;
                    written += 1;
                }
                let ranges = mem
                    .range_tombstones()
                    .map(|ranges| bounded(&ranges, max_key.as_ref()))
                    .unwrap_or_default();
                if written == 0 && ranges.is_empty() {
                    // Range tombstones that delete nothing: no table (the writer removes
                    // its temporary file as it drops).
                    continue;
                }
                writer.set_range_tombstones(ranges)?;
                edit.added.push((0, writer.finish()?));
            }
            edits.push(edit);
        }
        let manifest_number = allocate()?;
        let path = log_path(target, log_number);
        fs.create(&path)
            .and_then(|mut file| file.sync_all())
            .map_err(|err| Error::io(format_args!("creating {}", path.display()), err))?;
        let next_keyspace_id = lock(&self.manifest).next_keyspace_id();
        edits.insert(
            0,
            VersionEdit {
                log_number: Some(log_number),
                log_seqno: Some(last_seqno + 1),
                last_seqno: Some(last_seqno),
                next_file_number: Some(allocate()?),
                next_keyspace_id: Some(next_keyspace_id),
                ..VersionEdit::default()
            },
        );
        ManifestWriter::create(std::sync::Arc::clone(&fs), target, manifest_number, &edits)?;
        sync_parent(&*fs, target)
    }

    /// Links `from` as `to`, or copies it (synced) where it cannot be linked.
    fn link_or_copy(&self, from: &Path, to: &Path) -> Result<()> {
        link_or_copy(&*self.fs, from, to)
    }
}

/// Syncs the directory that holds `target`, so that the new directory's entry is durable.
fn sync_parent(fs: &dyn FileSystem, target: &Path) -> Result<()> {
    match target.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => fs
            .sync_dir(parent)
            .map_err(|err| Error::io(format_args!("syncing {}", parent.display()), err)),
        None => Ok(()),
    }
}

/// Links `from` as `to` through `fs`, or copies it (synced) where it cannot be linked.
fn link_or_copy(fs: &dyn FileSystem, from: &Path, to: &Path) -> Result<()> {
    {
        if fs.hard_link(from, to).is_ok() {
            return Ok(());
        }
        let copy = || -> std::io::Result<()> {
            let bytes = fs.read(from)?;
            let mut file = fs.create(to)?;
            file.write_all(&bytes)?;
            file.sync_all()
        };
        copy().map_err(|err| {
            Error::io(
                format_args!("copying {} to {}", from.display(), to.display()),
                err,
            )
        })
    }
}
