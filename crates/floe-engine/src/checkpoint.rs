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
//! A file that cannot be linked (another file system, or a file system without links) is
//! copied and synced. Tables and closed segments never change but for the durable-offset
//! marker a closed segment may still get at its end, which the copy reads like the
//! original does.

use std::path::Path;

use crate::error::{Error, Result};
use crate::filename::{log_path, table_path};
use crate::shared::Shared;
use crate::sync::lock;
use crate::version::manifest::ManifestWriter;

impl Shared {
    /// Writes a checkpoint into `target`, which must not exist (see the module docs).
    pub(crate) fn checkpoint(&self, target: &Path) -> Result<()> {
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
                self.link_or_copy(&table_path(&self.dir, number), &table_path(target, number))?;
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

    /// Links `from` as `to`, or copies it (synced) where it cannot be linked.
    fn link_or_copy(&self, from: &Path, to: &Path) -> Result<()> {
        if self.fs.hard_link(from, to).is_ok() {
            return Ok(());
        }
        let copy = || -> std::io::Result<()> {
            let bytes = self.fs.read(from)?;
            let mut file = self.fs.create(to)?;
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
