//! Running compactions: the background worker, the manual full compaction
//! ([`crate::Db::compact`]), and the one routine both use to merge, write and install.
//!
//! One compaction runs at a time (the `compaction` mutex), so the inputs a job chose from
//! the latest state stay in every later state until the job installs its result: only
//! compactions remove tables, and flushes only add level-0 tables, whose data is newer
//! than every input. The result is applied by one manifest edit and one state install
//! derived from the latest state ([`Shared::install_edit`]); the merge and the file writes
//! happen before, holding neither the install mutex nor the manifest's.
//!
//! Ordering with snapshots: the inputs are taken from the state *before* the registry of
//! live snapshots is read. A snapshot registered after that read has a sequence number at
//! or above every input entry (tables hold only published writes), so the newest version
//! of each key, which is always kept, is the one it sees.
//!
//! Deleting inputs: once the state without them is installed they are marked obsolete,
//! and each file is deleted when the last state, iterator or snapshot read holding its
//! handle lets go (see [`TableHandle`]). A trivially moved table is the same handle in
//! its new level, so it is never marked.
//!
//! The worker is a thread of its own, beside the flush worker, so a long compaction
//! never holds up a flush: writers wait for flushes far sooner than for compactions.

use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use floe_core::SeqNo;
use floe_core::range_del::{Fragments, successor};

use crate::compaction::grandparents::{Cut, GRANDPARENT_OVERLAP_FACTOR, GrandparentOverlap};
use crate::compaction::pick::{self, Job};
use crate::error::{Error, Result};
use crate::events::CompactionInfo;
use crate::filename::table_path;
use crate::iter::{CompactionIter, MergingIter};
use crate::options::Options;
use crate::shared::Shared;
use crate::stats::Counters;
use crate::sync::lock;
use crate::version::manifest::{TableFile, VersionEdit};
use crate::version::{TableHandle, TableWriter, Tree};

/// How many entries a merge writes between checks of whether the database is closing.
const CLOSE_CHECK_INTERVAL: usize = 4096;

/// The compaction worker's loop: it sleeps until some level needs a
/// compaction, runs compactions until none does, and exits at shutdown or once the
/// database is poisoned. A failed compaction poisons the database: it found a damaged
/// table or could not write, and nobody is there to be told but the next writer.
pub(crate) fn run_compaction_worker(shared: Arc<Shared>) {
    loop {
        {
            let mut signals = shared.background.lock();
            loop {
                // `closed` comes before `shutdown` in close: a merge abandoned for close
                // must not be picked again meanwhile.
                let closing = signals.shutting_down() || shared.is_closed();
                if closing || shared.is_poisoned() {
                    return;
                }
                if shared.needs_compaction() {
                    break;
                }
                signals = shared.background.wait_for_compaction_work(signals);
            }
        }
        if let Err(err) = shared.compact_once() {
            let _ = shared.poison(err);
        }
    }
}

impl Shared {
    /// Whether some level of some keyspace of the latest state scores 1 or more.
    pub(crate) fn needs_compaction(&self) -> bool {
        self.neediest_tree().is_some()
    }

    /// The keyspace with the highest-scoring level, if some level scores 1 or more.
    fn neediest_tree(&self) -> Option<Arc<Tree>> {
        let state = self.state.load();
        let mut best: Option<(f64, &Arc<Tree>)> = None;
        for tree in &state.trees {
            let score = pick::scores(&tree.version, &tree.options)
                .into_iter()
                .fold(0.0, f64::max);
            if score >= 1.0 && best.is_none_or(|(top, _)| score > top) {
                best = Some((score, tree));
            }
        }
        best.map(|(_, tree)| Arc::clone(tree))
    }

    /// Runs the compaction the latest state needs most, if any.
    pub(crate) fn compact_once(&self) -> Result<()> {
        let mut compaction = lock(&self.compaction);
        let Some(tree) = self.neediest_tree() else {
            return Ok(());
        };
        let pointers = compaction.pointers(tree.id);
        if let Some(job) = pick::pick(&tree.version, &tree.options, pointers) {
            self.run_job(&tree, &job, false)?;
        }
        Ok(())
    }

    /// Waits until no frozen memtable is left to flush and no level needs a compaction.
    /// Fails if the database is poisoned or closed meanwhile (the background workers stop
    /// then, and the wait would never end).
    pub(crate) fn wait_for_compactions(&self) -> Result<()> {
        if self.options.is_manual_background() {
            while self.step_background()? {}
            return Ok(());
        }
        let mut signals = self.background.lock();
        loop {
            self.check_writable()?;
            // A flush or compaction installs its state, then signals progress under the
            // background mutex: checked under it, a change is either seen here or wakes
            // the wait.
            if self.state.load().frozen_count() == 0 && !self.needs_compaction() {
                return Ok(());
            }
            signals = self.background.wait_for_progress(signals);
        }
    }

    /// Flushes, then merges every table of each keyspace into its bottom level. Fails
    /// with `Closed` if the database closes meanwhile (the merge is then abandoned).
    pub(crate) fn compact(&self) -> Result<()> {
        self.flush()?;
        let _one_at_a_time = lock(&self.compaction);
        let trees = self.state.load().trees.clone();
        for tree in trees {
            self.check_writable()?;
            // The latest tree: an earlier keyspace's compaction ran meanwhile, and only
            // compactions remove tables, so this one's tables are as loaded or more.
            let Some(tree) = self.state.load().tree(tree.id).cloned() else {
                continue;
            };
            match pick::full(&tree.version, &tree.options) {
                Some(job) if !self.run_job(&tree, &job, true)? => return Err(Error::Closed),
                _ => {}
            }
        }
        Ok(())
    }

    /// Runs `job` on keyspace `tree`: merges and writes its outputs (unless it is a
    /// trivial move), then installs the result. The caller holds the compaction mutex.
    /// Returns `false` if the merge was abandoned because the database is closing. If the
    /// keyspace is dropped meanwhile, its outputs are removed and nothing is installed.
    fn run_job(&self, tree: &Tree, job: &Job, manual: bool) -> Result<bool> {
        let start = Instant::now();
        crate::events::trace_span!(
            "compaction",
            keyspace = %tree.name,
            to_level = job.output_level,
            inputs = job.inputs.len(),
            manual
        );
        let outputs = if job.trivial {
            Vec::new()
        } else {
            match self.merge_job(job, &tree.options)? {
                Some(outputs) => outputs,
                // Abandoned for close: the version is as it was, nothing to install.
                None => return Ok(false),
            }
        };
        let output_level = job.output_level;
        let removed: Vec<(u32, u64)> = job.inputs.iter().map(|(l, t)| (*l, t.number())).collect();
        let added: Vec<(u32, Arc<TableHandle>)> = if job.trivial {
            job.inputs
                .iter()
                .map(|(_, t)| (output_level, Arc::clone(t)))
                .collect()
        } else {
            outputs.into_iter().map(|t| (output_level, t)).collect()
        };
        let edit = VersionEdit {
            next_file_number: Some(self.file_numbers.peek()),
            added: added.iter().map(|(l, t)| (*l, t.file.clone())).collect(),
            removed: removed.clone(),
            keyspace: tree.id,
            ..VersionEdit::default()
        };
        let mut manifest = lock(&self.manifest);
        // Drops take the manifest mutex too: checked under it, the keyspace stays.
        if self.state.load().tree(tree.id).is_none() {
            if !job.trivial {
                for (_, table) in &added {
                    table.mark_obsolete();
                }
            }
            return Ok(true);
        }
        let id = tree.id;
        let trivial = job.trivial;
        let info = CompactionInfo {
            keyspace: tree.name.to_string(),
            input_level: job
                .inputs
                .iter()
                .map(|(l, _)| *l)
                .min()
                .unwrap_or(output_level),
            output_level,
            inputs: removed.iter().map(|(_, n)| *n).collect(),
            outputs: added.iter().map(|(_, t)| t.number()).collect(),
            bytes_read: if trivial {
                0
            } else {
                job.inputs.iter().map(|(_, t)| t.file.size).sum()
            },
            bytes_written: if trivial {
                0
            } else {
                added.iter().map(|(_, t)| t.file.size).sum()
            },
            trivial_move: trivial,
            manual,
            duration: Duration::ZERO,
        };
        self.install_edit(&mut manifest, &edit, |current| {
            current.with_tables(id, added, &removed)
        })?;
        let rolled = self.maybe_roll_manifest(&mut manifest);
        drop(manifest);
        if job.trivial {
            Counters::add(&self.counters.trivial_moves, 1);
        } else {
            for (_, table) in &job.inputs {
                table.mark_obsolete();
            }
            Counters::add(&self.counters.compactions, 1);
        }
        // Writers stalled on level 0 and a waiting flush re-check the state.
        self.background.progressed();
        let duration = start.elapsed();
        self.counters
            .add_compaction_time(output_level as usize, duration);
        self.options
            .events
            .compaction_completed(&CompactionInfo { duration, ..info });
        self.note_level0_stall();
        rolled.map(|()| true)
    }

    /// Merges the inputs of `job` into new, synced tables and opens them; `None` if the
    /// database is closing and the merge was abandoned. On failure or abandonment the
    /// outputs written so far are removed (they are not in the manifest: orphans).
    fn merge_job(&self, job: &Job, options: &Options) -> Result<Option<Vec<Arc<TableHandle>>>> {
        let snapshots = self.snapshots.live();
        let mut outputs = Vec::new();
        let written = self.write_outputs(job, options, snapshots, &mut outputs);
        if matches!(written, Ok(false)) {
            for file in &outputs {
                let _ = self.fs.remove_file(&table_path(&self.dir, file.number));
            }
            return Ok(None);
        }
        let handles = written.and_then(|_| {
            self.fs
                .sync_dir(&self.dir)
                .map_err(|err| Error::io("syncing the database directory", err))?;
            outputs
                .iter()
                .map(|file| TableHandle::open(&self.fs, &self.table_reads, &self.dir, file.clone()))
                .collect::<Result<Vec<_>>>()
        });
        match handles {
            Ok(handles) => {
                let out = job.output_level as usize;
                let (mut moved_in, mut rewritten) = (0, 0);
                for (level, table) in &job.inputs {
                    if *level as usize == out {
                        rewritten += table.file.size;
                    } else {
                        moved_in += table.file.size;
                    }
                }
                let written: u64 = outputs.iter().map(|file| file.size).sum();
                let counters = &self.counters;
                Counters::add(&counters.level_moved_in[out], moved_in);
                Counters::add(&counters.level_rewritten[out], rewritten);
                Counters::add(&counters.level_written[out], written);
                Ok(Some(handles))
            }
            Err(err) => {
                for file in &outputs {
                    let _ = self.fs.remove_file(&table_path(&self.dir, file.number));
                }
                Err(err)
            }
        }
    }

    /// Merges the inputs of `job` into new tables cut at the target file size (or, from
    /// half of it on, where a grandparent ends: see [`GrandparentOverlap`]), recording
    /// each in `outputs` as it is finished, in key order. A large job is split by key
    /// range into subcompactions that run on threads of their own
    /// ([`crate::Options::max_subcompactions`]; see [`split_points`]). Returns `false` if
    /// it stopped early because the database is closing: a large compaction must not
    /// hold up `close`.
    fn write_outputs(
        &self,
        job: &Job,
        options: &Options,
        snapshots: Vec<u64>,
        outputs: &mut Vec<TableFile>,
    ) -> Result<bool> {
        let ranges = Fragments::new(
            job.inputs
                .iter()
                .flat_map(|(_, t)| t.range_tombstones().tombstones()),
        );
        let points = split_points(job, options.max_subcompactions, options.target_file_size);
        if points.is_empty() {
            return self.write_range(job, options, &snapshots, &ranges, (None, None), outputs);
        }
        let bounds: Vec<(Option<&Bytes>, Option<&Bytes>)> = std::iter::once(None)
            .chain(points.iter().map(Some))
            .zip(points.iter().map(Some).chain(std::iter::once(None)))
            .collect();
        Counters::add(&self.counters.subcompactions, bounds.len() as u64);
        if self.options.is_manual_background() {
            // A simulation run must do the same file operations in the same order each
            // time: the ranges are merged one after another, on this thread.
            for range in bounds {
                if !self.write_range(job, options, &snapshots, &ranges, range, outputs)? {
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        let results: Vec<(Result<bool>, Vec<TableFile>)> = std::thread::scope(|scope| {
            let running: Vec<_> = bounds
                .iter()
                .map(|&range| {
                    let (snapshots, ranges) = (&snapshots, &ranges);
                    std::thread::Builder::new()
                        .name("floe-subcompact".to_owned())
                        .spawn_scoped(scope, move || {
                            let mut written = Vec::new();
                            let result = self.write_range(
                                job,
                                options,
                                snapshots,
                                ranges,
                                range,
                                &mut written,
                            );
                            (result, written)
                        })
                })
                .collect();
            running
                .into_iter()
                .map(|spawned| match spawned {
                    Ok(handle) => handle.join().unwrap_or_else(|_| {
                        (
                            Err(Error::invalid("a subcompaction thread panicked")),
                            Vec::new(),
                        )
                    }),
                    Err(err) => (
                        Err(Error::io("starting a subcompaction thread", err)),
                        Vec::new(),
                    ),
                })
                .collect()
        });
        // Every output goes into `outputs`, so that a failure or an abandoned merge
        // removes them all.
        let mut finished = true;
        let mut first_error = None;
        for (result, written) in results {
            outputs.extend(written);
            match result {
                Ok(done) => finished &= done,
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(finished),
        }
    }

    /// The merge of the inputs of `job` within the user-key range `[lower, upper)` (`None`:
    /// unbounded), into `outputs` (see [`Shared::write_outputs`]). `ranges` are the
    /// inputs' range tombstones.
    fn write_range(
        &self,
        job: &Job,
        options: &Options,
        snapshots: &[u64],
        ranges: &Fragments,
        (lower, upper): (Option<&Bytes>, Option<&Bytes>),
        outputs: &mut Vec<TableFile>,
    ) -> Result<bool> {
        let lower_bound = lower.map_or(Bound::Unbounded, |k| Bound::Included(k.as_ref()));
        let upper_bound = upper.map_or(Bound::Unbounded, |k| Bound::Excluded(k.as_ref()));
        // A table whose every version a newer range tombstone of the same stripe hides is
        // dropped without being read (it leaves the version with the other inputs).
        let stripe = |seqno: SeqNo| snapshots.partition_point(|&s| s < seqno);
        let mut sources = Vec::with_capacity(job.inputs.len());
        for (_, table) in &job.inputs {
            if !table.overlaps(lower_bound, upper_bound) {
                continue;
            }
            let (file, oldest) = (&table.file, stripe(table.file.min_seqno));
            let hidden = !ranges.is_empty()
                && ranges.covers_span(
                    &file.smallest.user_key,
                    &file.largest.user_key,
                    |seqno| stripe(seqno) == oldest,
                    file.max_seqno,
                );
            if hidden {
                // Counted once, by the range that holds the table's first key.
                let first = &file.smallest.user_key;
                if lower.is_none_or(|lower| first >= lower) {
                    Counters::add(&self.counters.tables_dropped_by_range_tombstones, 1);
                }
            } else {
                sources.push(table.source(lower_bound, upper_bound));
            }
        }
        let mut kept_ranges = ranges.clip(lower.map(|k| k.as_ref()), upper.map(|k| k.as_ref()));
        kept_ranges.retain_needed(snapshots, job.bottommost);
        let filter = options.compaction_filter.as_ref().map(|f| Arc::clone(&f.0));
        let entries = CompactionIter::new(
            MergingIter::new(sources),
            snapshots.to_vec(),
            job.bottommost,
        )
        .with_filter(filter)
        .with_ranges(ranges.clone());
        let mut writer: Option<TableWriter> = None;
        let mut last_user_key = Bytes::new();
        // Where the range tombstones of the next output start: each output takes those
        // below the key just past its last one, so that outputs never overlap and leave
        // no gap a tombstone must cover (see `crate::range_del`).
        let mut ranges_from: Option<Bytes> = lower.cloned();
        let mut grandparents = GrandparentOverlap::new(
            &job.grandparents,
            options
                .target_file_size
                .saturating_mul(GRANDPARENT_OVERLAP_FACTOR),
        );
        for (count, entry) in entries.enumerate() {
            if count % CLOSE_CHECK_INTERVAL == 0 && self.is_closed() {
                // The unfinished writer removes its temporary file as it drops.
                return Ok(false);
            }
            let (key, value) = entry?;
            // Cut only between user keys: all versions of a key stay in one table, so a
            // lookup in a level below 0 finds the newest version in the one table it reads,
            // and the picker may compact one table without its neighbours.
            let new_key = key.user_key != last_user_key;
            let advice = if new_key {
                grandparents.advance(&key.user_key)
            } else {
                Cut::No
            };
            let target = options.target_file_size;
            let cut = writer.as_ref().is_some_and(|w| {
                let size = w.estimated_size();
                new_key
                    && (advice == Cut::Must
                        || size >= target
                        || (advice == Cut::Aligned && size >= target / 2))
            });
            if cut {
                grandparents.start_output();
            }
            if cut && let Some(mut done) = writer.take() {
                let boundary = successor(&last_user_key);
                done.set_range_tombstones(
                    kept_ranges.clip(ranges_from.as_deref(), Some(&boundary)),
                )?;
                ranges_from = Some(boundary);
                outputs.push(done.finish()?);
            }
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(TableWriter::create(
                    &self.fs,
                    &self.dir,
                    self.file_numbers.allocate()?,
                    options.table_options(job.output_level as usize),
                )?),
            };
            w.add(&key, &value)?;
            last_user_key = key.user_key;
        }
        let rest = kept_ranges.clip(ranges_from.as_deref(), None);
        if writer.is_none() && !rest.is_empty() {
            // Every version went, but range tombstones stay: they get a table of their own.
            writer = Some(TableWriter::create(
                &self.fs,
                &self.dir,
                self.file_numbers.allocate()?,
                options.table_options(job.output_level as usize),
            )?);
        }
        if let Some(mut done) = writer {
            done.set_range_tombstones(rest)?;
            outputs.push(done.finish()?);
        }
        Ok(true)
    }
}

/// Where to split `job` into subcompactions: up to `max - 1` exclusive bounds, ascending,
/// each just past the smallest key of an input table (its [`successor`]), chosen so that
/// the ranges between them hold about equal bytes of input, and no more ranges than whole
/// output tables (`target_file_size`) the inputs fill. Empty for a job that is not worth
/// splitting. Every version of a key lies in one range. A bound is a successor for the
/// reason output cuts are (see `crate::range_del`): a range's range tombstones end at it,
/// and the inclusive end a table records for them, the key before it, then stays below
/// every key of the next range.
pub(crate) fn split_points(job: &Job, max: usize, target_file_size: u64) -> Vec<Bytes> {
    let total: u64 = job.inputs.iter().map(|(_, t)| t.file.size).sum();
    let ranges = usize::try_from(total / target_file_size.max(1))
        .unwrap_or(usize::MAX)
        .min(max);
    if ranges < 2 || job.trivial {
        return Vec::new();
    }
    let mut starts: Vec<(&Bytes, u64)> = job
        .inputs
        .iter()
        .map(|(_, t)| (&t.file.smallest.user_key, t.file.size))
        .collect();
    starts.sort();
    let first = starts[0].0;
    let mut points: Vec<Bytes> = Vec::with_capacity(ranges - 1);
    let mut before = 0u64;
    for (key, size) in starts {
        let wanted = (points.len() as u64 + 1) * total / ranges as u64;
        let bound = successor(key);
        if before >= wanted && key > first && points.last().is_none_or(|last| bound > *last) {
            points.push(bound);
            if points.len() == ranges - 1 {
                break;
            }
        }
        before += size;
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::Tables;

    #[test]
    fn outputs_are_cut_on_grandparent_edges_from_half_the_target_size() {
        let t = Tables::new();
        // Grandparents k000-k009, k010-k019, ... k090-k099; one input holding k000-k099.
        let grandparents: Vec<_> = (0..10).map(|i| t.table(i * 10, i * 10 + 9, 100)).collect();
        let input = t.table(0, 99, 100);
        let dir = tempfile::tempdir().unwrap();
        // About 14 entries reach half the target size, 27 the whole of it.
        let options = crate::Options::default()
            .target_file_size(3000)
            .block_size(256);
        let db = crate::Db::open_with(dir.path(), options).unwrap();
        let job = Job {
            inputs: vec![(0, input)],
            output_level: 1,
            bottommost: true,
            trivial: false,
            grandparents,
        };
        let mut outputs = Vec::new();
        let finished =
            db.shared()
                .write_outputs(&job, &db.shared().options, Vec::new(), &mut outputs);
        assert!(finished.unwrap());
        let edges: Vec<String> = outputs
            .iter()
            .map(|file| String::from_utf8_lossy(&file.largest.user_key).into_owned())
            .collect();
        // Each output passes one edge below half the target and is cut at the next.
        assert_eq!(edges, ["k019", "k039", "k059", "k079", "k099"]);
        for file in &outputs[..outputs.len() - 1] {
            assert!(file.size >= 1500 && file.size < 3000, "{file:?}");
        }
    }
}
