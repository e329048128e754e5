//! Full manual compaction ([`crate::Db::compact`]): every table is merged into sorted,
//! non-overlapping tables at the last level.
//!
//! Ordering with snapshots: the inputs are taken from the state *before* the registry of
//! live snapshots is read. A snapshot registered after that read has a sequence number at
//! or above every input entry (inputs hold only published writes), so the newest version
//! of each key, which is always kept, is the one it sees. The result is applied by one
//! manifest edit and one state swap derived from the latest state (flushes may have
//! added level-0 tables meanwhile; they stay). Inputs are deleted once no state or
//! iterator refers to them.

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::filename::table_path;
use crate::iter::{CompactionIter, MergingIter};
use crate::manifest::{TableFile, VersionEdit};
use crate::shared::{Shared, lock};
use crate::state::{NUM_LEVELS, State};
use crate::table::{TableHandle, TableWriter};

impl Shared {
    /// Flushes, then compacts every table into the last level.
    pub(crate) fn compact(&self) -> Result<()> {
        self.flush()?;
        let _one_at_a_time = lock(&self.compaction);
        self.check_writable()?;
        let inputs: Vec<(u32, Arc<TableHandle>)> = {
            let state = self.state.load();
            state
                .version
                .levels
                .iter()
                .enumerate()
                .flat_map(|(level, tables)| {
                    tables.iter().map(move |t| (level as u32, Arc::clone(t)))
                })
                .collect()
        };
        if inputs.is_empty() {
            return Ok(());
        }
        let snapshots = self.live_snapshots();

        let mut outputs = Vec::new();
        let written = self.write_outputs(&inputs, snapshots, &mut outputs);
        let handles = written.and_then(|()| {
            self.fs
                .sync_dir(&self.dir)
                .map_err(|err| Error::io("syncing the database directory", err))?;
            outputs
                .iter()
                .map(|file| TableHandle::open(&self.fs, &self.dir, file.clone()))
                .collect::<Result<Vec<_>>>()
        });
        let handles = match handles {
            Ok(handles) => handles,
            Err(err) => {
                // The outputs are not in the manifest: they are orphans, removed now or
                // by the next open.
                for file in &outputs {
                    let _ = self.fs.remove_file(&table_path(&self.dir, file.number));
                }
                return Err(err);
            }
        };

        let last_level = (NUM_LEVELS - 1) as u32;
        let removed: Vec<(u32, u64)> = inputs.iter().map(|(l, t)| (*l, t.number())).collect();
        let edit = VersionEdit {
            log_number: None,
            next_file_number: Some(self.next_file_number.load(Ordering::Relaxed)),
            last_seqno: None,
            added: outputs
                .iter()
                .map(|file| (last_level, file.clone()))
                .collect(),
            removed: removed.clone(),
        };
        let mut manifest = lock(&self.manifest);
        self.log_edit(&mut manifest, &edit)?;
        {
            let _installing = lock(&self.state_lock);
            let current = self.state.load_full();
            let version = current.version.apply(
                handles.into_iter().map(|t| (last_level, t)).collect(),
                &removed,
            );
            self.state.store(Arc::new(State {
                active: Arc::clone(&current.active),
                log_number: current.log_number,
                frozen: current.frozen.clone(),
                version: Arc::new(version),
            }));
        }
        let rolled = self.maybe_roll_manifest(&mut manifest);
        drop(manifest);
        for (_, table) in &inputs {
            table.mark_obsolete();
        }
        rolled
    }

    /// Merges `inputs` into new tables cut at the target file size, recording each in
    /// `outputs` as it is finished.
    fn write_outputs(
        &self,
        inputs: &[(u32, Arc<TableHandle>)],
        snapshots: Vec<u64>,
        outputs: &mut Vec<TableFile>,
    ) -> Result<()> {
        let sources = inputs
            .iter()
            .map(|(_, t)| t.source(Bound::Unbounded, Bound::Unbounded))
            .collect();
        let entries = CompactionIter::new(MergingIter::new(sources), snapshots, true);
        let mut writer: Option<TableWriter> = None;
        let mut last_user_key = Bytes::new();
        for entry in entries {
            let (key, value) = entry?;
            // Cut only between user keys: all versions of a key stay in one table, so a
            // lookup in a level below 0 finds the newest version in the one table it reads.
            let cut = writer.as_ref().is_some_and(|w| {
                w.estimated_size() >= self.options.target_file_size && key.user_key != last_user_key
            });
            if cut && let Some(done) = writer.take() {
                outputs.push(done.finish(&*self.fs)?);
            }
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(TableWriter::create(
                    &*self.fs,
                    &self.dir,
                    self.new_file_number(),
                    self.table_options(),
                )?),
            };
            w.add(&key, &value)?;
            last_user_key = key.user_key;
        }
        if let Some(done) = writer {
            outputs.push(done.finish(&*self.fs)?);
        }
        Ok(())
    }
}
