//! Opening a database: the directory lock, the manifest, the tables, the replay of the
//! log segments that are not flushed yet, and the removal of orphan files.
//!
//! Replay rules. Segments numbered at or above the manifest's log number are replayed in
//! number order; each batch must carry exactly the next sequence number. A tolerated tail
//! (see `read_log`: a record cut short, a lost unsynced page) is dropped. A process crash
//! can only tear the newest segment (an older one was complete before the switch); after
//! a power loss with `sync(false)` an older segment can lose its tail, or all of its
//! records (its length never reached the disk), while a later one kept some. So a segment
//! whose first batch carries a later sequence number than the next one is where the
//! recovered prefix ends, and it and every later segment are dropped, unless that segment
//! holds a durable-offset marker: every sync of the log syncs the older segments first,
//! so a synced byte in it proves the missing records were durable, which is
//! [`Error::Corruption`], as is any other gap. (Every segment is created with zero-filled
//! reserved room, see [`LogWriter::segment`]; a segment that did not fill it ends in
//! zeros, which read as a torn tail that lost nothing.)
//!
//! Missing files: a table the manifest lists, the segment at the manifest's log number,
//! or any segment between it and a later one that holds records (the sequence numbers
//! would jump) is [`Error::Corruption`]; so is a missing `CURRENT` beside tables. (A lost
//! *newest* segment after the one at the log number cannot be told from one that was
//! never written, since segment creation is not recorded in the manifest.)
//!
//! File numbers. Every file open creates takes its number from a counter that starts at
//! the manifest's next file number, raised past the manifest itself, its log number, the
//! tables it lists, and every segment that holds a record; the arithmetic is checked, and
//! a number with no successor is [`Error::Corruption`]. A file the manifest does not know
//! is an orphan and never raises the counter:
//!
//! * a table it does not list (written by a flush or compaction whose edit never landed);
//! * a manifest other than the one `CURRENT` names;
//! * a segment that holds no record (empty, or only a zero-filled or torn tail), numbered
//!   at or above the next file number and past every segment that does hold one (the
//!   segment at the log number is never one: the manifest names it). Such a segment
//!   cannot hold an acknowledged write.
//!
//! An orphan's number may be drawn again: orphan segments are removed before any file is
//! created, the other orphans once the new manifest is installed, and a file created
//! under an orphan's name replaces it (tables are renamed into place, segments and
//! manifests are created truncated).
//!
//! A segment at or above the next file number that *does* hold a record is no orphan:
//! segments are created at memtable switches, before any manifest edit records the bump
//! of the counter, so a crash can leave acknowledged writes in one. It is replayed, and
//! the counter passes it, so its number is not reused and it is deleted with the other
//! replayed segments. So is a segment with records that follows a tear and is not
//! replayed: kept, its records would follow the new writes at the next open. A segment
//! without records below the next file number, or before one with records, needs no rule:
//! the counter passes it anyway, and it is deleted with the replayed segments.
//!
//! So a stray table, manifest or record-less segment, however large its number, costs
//! nothing but its removal. A stray segment with valid records cannot be told from a real
//! one and is replayed like one (its sequence numbers almost surely make it corruption).
//!
//! The replayed writes are flushed to a level-0 table at once, and a new manifest
//! (snapshot of the version, log number past every old segment) is installed before the
//! old segments are deleted. So a torn segment never lingers in front of new writes, and
//! open costs time in proportion to the unflushed log, not to the data.
//!
//! A read-only open (`read_only.rs`) takes the same steps up to the replay and none of
//! those that change the directory.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use floe_core::fs::{DirLock, FileSystem, WritableFile};
use floe_core::range_del::{Fragments, RangeTombstone};
use floe_core::{InternalKey, SeqNo};

use crate::error::{Error, Result};
use crate::filename::{
    FileKind, current_path, lock_path, log_path, manifest_path, number_after, numbers_exhausted,
    parse_file_name, table_path,
};
use crate::keyspace::{DEFAULT_ID, DEFAULT_NAME, KeyspaceId, KeyspaceOptions};
use crate::options::Options;
use crate::range_del::bounded;
use crate::shared::{Opened, Shared};
use crate::stats::Counters;
use crate::version::TableReads;
use crate::version::manifest::{
    ManifestFields, ManifestWriter, TableFile, VersionEdit, read_current, replay_manifest,
    snapshot_edits,
};
use crate::version::{NUM_LEVELS, State, TableHandle, TableWriter, Tree, version_from};
use crate::wal::{LogWriter, read_log, segment_reserve};
use crate::write::batch::{OpKind, batch_ops, check_batch};

mod read_only;
mod read_only_fs;

pub(crate) use read_only::open_read_only;

/// One keyspace as the manifest describes it.
#[derive(Debug, Default)]
pub(crate) struct RecoveredKeyspace {
    pub(crate) name: String,
    /// Its tree options (`None` for `"default"`, which takes the open's options).
    options: Option<KeyspaceOptions>,
    /// Its writes in segments below this are in its tables.
    log_number: u64,
    pub(crate) tables: BTreeMap<u64, (u32, TableFile)>,
}

/// What the manifest says, folded over its edits.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// Every keyspace, `"default"` (0) always.
    pub(crate) keyspaces: BTreeMap<KeyspaceId, RecoveredKeyspace>,
    pub(crate) log_number: u64,
    /// The first sequence number of the segment at `log_number`, if the manifest says.
    log_seqno: Option<SeqNo>,
    next_file_number: u64,
    last_seqno: SeqNo,
    next_keyspace_id: KeyspaceId,
}

impl Default for Recovered {
    fn default() -> Recovered {
        let default = RecoveredKeyspace {
            name: DEFAULT_NAME.to_owned(),
            ..RecoveredKeyspace::default()
        };
        Recovered {
            keyspaces: BTreeMap::from([(DEFAULT_ID, default)]),
            log_number: 0,
            log_seqno: None,
            next_file_number: 1,
            last_seqno: 0,
            next_keyspace_id: DEFAULT_ID + 1,
        }
    }
}

impl Recovered {
    pub(crate) fn apply(&mut self, edit: VersionEdit) -> Result<()> {
        if let Some(number) = edit.log_number {
            if number > self.log_number {
                self.log_number = number;
                self.log_seqno = edit.log_seqno;
            } else if number == self.log_number && edit.log_seqno.is_some() {
                self.log_seqno = edit.log_seqno;
            }
        }
        if let Some(number) = edit.next_file_number {
            self.next_file_number = self.next_file_number.max(number);
        }
        if let Some(seqno) = edit.last_seqno {
            self.last_seqno = self.last_seqno.max(seqno);
        }
        if let Some(id) = edit.next_keyspace_id {
            self.next_keyspace_id = self.next_keyspace_id.max(id);
        }
        let id = edit.keyspace;
        if let Some(def) = edit.created {
            if id == DEFAULT_ID || self.keyspaces.contains_key(&id) {
                return Err(Error::corruption(format!(
                    "the manifest creates keyspace {id} ({:?}), which exists already",
                    def.name
                )));
            }
            self.next_keyspace_id = self.next_keyspace_id.max(id.saturating_add(1));
            self.keyspaces.insert(
                id,
                RecoveredKeyspace {
                    name: def.name,
                    options: Some(def.options),
                    ..RecoveredKeyspace::default()
                },
            );
        }
        let Some(keyspace) = self.keyspaces.get_mut(&id) else {
            return Err(Error::corruption(format!(
                "the manifest has an edit of keyspace {id}, which does not exist"
            )));
        };
        if let Some(number) = edit.keyspace_log_number {
            keyspace.log_number = keyspace.log_number.max(number);
        }
        for (level, number) in edit.removed {
            if keyspace
                .tables
                .get(&number)
                .is_some_and(|(l, _)| *l == level)
            {
                keyspace.tables.remove(&number);
            }
        }
        for (level, file) in edit.added {
            if level as usize >= NUM_LEVELS {
                return Err(Error::corruption(format!(
                    "the manifest puts table {} at level {level}, but there are only {NUM_LEVELS} levels",
                    file.number
                )));
            }
            keyspace.tables.insert(file.number, (level, file));
        }
        if edit.dropped {
            if id == DEFAULT_ID {
                return Err(Error::corruption(
                    "the manifest drops the \"default\" keyspace",
                ));
            }
            self.keyspaces.remove(&id);
        }
        Ok(())
    }

    /// Every table of every keyspace, by number.
    pub(crate) fn tables(&self) -> impl Iterator<Item = (&u64, &(u32, TableFile))> {
        self.keyspaces.values().flat_map(|k| k.tables.iter())
    }

    /// The segment from which the writes of keyspace `id` replay, if it exists.
    fn replay_from(&self, id: KeyspaceId) -> Option<u64> {
        self.keyspaces
            .get(&id)
            .map(|k| k.log_number.max(self.log_number))
    }
}

/// The file system the options name (a fault-injecting one in tests), or the real one.
pub(crate) fn file_system(options: &Options) -> Arc<dyn FileSystem> {
    #[cfg(any(test, feature = "fault-injection"))]
    if let Some(fs) = &options.file_system {
        return Arc::clone(fs);
    }
    let _ = options;
    Arc::new(floe_core::fs::StdFs)
}

/// Opens (or creates) the database in `dir`. The steps run in this order, each a function
/// below; the order is the durability argument of the module docs.
pub(crate) fn open(dir: &Path, options: Options) -> Result<Shared> {
    #[cfg(feature = "tracing")]
    let start = std::time::Instant::now();
    crate::events::trace_span!("open", dir = %dir.display());
    options.validate()?;
    let fs = file_system(&options);
    let dir = dir.to_path_buf();
    let dir_lock = lock_directory(&*fs, &dir)?;
    let (old_manifest, recovered) = read_manifest(&*fs, &dir)?;
    let mut next_file = first_free_number(&dir, old_manifest, &recovered)?;
    let logs = classify_files(&*fs, &dir, old_manifest, &recovered)?;
    let table_reads = TableReads::new(options.block_cache_size);
    let mut tables = open_tables(&fs, &table_reads, &dir, &recovered)?;
    let replay = replay_segments(&*fs, &dir, &logs, &recovered)?;
    let written = segments_holding_records(&*fs, &dir, &logs, replay.written, &recovered)?;
    let newest_written = newest_holding_record(&logs, &written);
    // The counter passes the newest segment that holds a record, and so every other one.
    if let Some(number) = newest_written {
        next_file = next_file.max(number_after(
            number,
            format_args!("log {}", log_path(&dir, number).display()),
        )?);
    }
    remove_orphan_segments(&*fs, &dir, &logs, &written, &recovered, newest_written);
    let counters = Counters::default();
    let mut tree_options = BTreeMap::new();
    for (&id, keyspace) in &recovered.keyspaces {
        let resolved = match &keyspace.options {
            None => options.clone(),
            Some(persisted) => persisted.resolve(&options)?,
        };
        tree_options.insert(id, resolved);
    }
    let threads = if options.is_manual_background() {
        // A simulation run must do the same file operations in the same order each time.
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .saturating_mul(4)
    };
    #[cfg(feature = "tracing")]
    let (replayed_segments, replayed_writes) = (
        logs.len(),
        replay
            .entries
            .values()
            .map(|r| r.points.len() + r.ranges.len())
            .sum::<usize>(),
    );
    let flushed = flush_replay(
        &fs,
        &table_reads,
        &dir,
        &tree_options,
        replay.entries,
        &tables,
        &mut next_file,
        threads,
    )?;
    for (id, table) in flushed {
        counters.add_flush(table.file.size);
        tables.entry(id).or_default().push((0, table));
    }
    let mut trees = Vec::with_capacity(recovered.keyspaces.len());
    for (id, keyspace) in &recovered.keyspaces {
        let version = version_from(tables.remove(id).unwrap_or_default());
        let options = tree_options.remove(id).unwrap_or_else(|| options.clone());
        trees.push(Arc::new(Tree::new(
            *id,
            &keyspace.name,
            Arc::new(options),
            version,
        )));
    }
    let state = State::new(0, trees);
    let created = create_segment_and_manifest(
        &fs,
        &dir,
        &state,
        &mut next_file,
        replay.last_seqno,
        recovered.next_keyspace_id,
    )?;
    let live_tables: Vec<u64> = state
        .trees
        .iter()
        .flat_map(|t| t.version.tables().map(|table| table.number()))
        .collect();
    remove_obsolete(
        &*fs,
        &dir,
        &live_tables,
        created.log_number,
        created.manifest.number(),
    );
    let log = LogWriter::segment(created.log, segment_reserve(options.write_buffer_size));
    crate::events::trace_event!(
        info,
        dir = %dir.display(),
        keyspaces = state.trees.len(),
        tables = live_tables.len(),
        replayed_segments,
        replayed_writes,
        last_seqno = replay.last_seqno,
        duration_ms = start.elapsed().as_secs_f64() * 1e3,
        "opened"
    );
    Ok(Shared::new(Opened {
        dir,
        fs,
        table_reads,
        options,
        dir_lock: Some(dir_lock),
        read_only: false,
        trees: state.trees,
        log,
        log_number: created.log_number,
        manifest: created.manifest,
        next_keyspace_id: recovered.next_keyspace_id,
        last_seqno: replay.last_seqno,
        next_file_number: next_file,
        counters,
    }))
}

/// Creates `dir` if needed and takes its lock, which keeps every other opener out until
/// close.
fn lock_directory(fs: &dyn FileSystem, dir: &Path) -> Result<Box<dyn DirLock>> {
    fs.create_dir_all(dir)
        .map_err(|err| Error::io(format_args!("creating {}", dir.display()), err))?;
    let lock_file = lock_path(dir);
    fs.lock(&lock_file).map_err(|err| {
        if err.kind() == io::ErrorKind::WouldBlock {
            Error::Locked {
                path: lock_file.display().to_string(),
            }
        } else {
            Error::io(format_args!("locking {}", lock_file.display()), err)
        }
    })
}

/// The number of the manifest `CURRENT` names (`None` without `CURRENT`), and what its
/// edits add up to.
fn read_manifest(fs: &dyn FileSystem, dir: &Path) -> Result<(Option<u64>, Recovered)> {
    let mut recovered = Recovered::default();
    let old_manifest = read_current(fs, dir)?;
    if let Some(number) = old_manifest {
        for edit in replay_manifest(fs, dir, number)? {
            recovered.apply(edit)?;
        }
    }
    Ok((old_manifest, recovered))
}

/// Where the file-number counter starts: past every file the manifest knows (see "File
/// numbers" in the module docs). Every manifest floe writes records a next file number
/// past all of them already; the checks guard against overwriting a live file if one
/// does not.
fn first_free_number(dir: &Path, old_manifest: Option<u64>, recovered: &Recovered) -> Result<u64> {
    let mut next_file = recovered.next_file_number;
    if let Some(number) = old_manifest {
        next_file = next_file.max(number_after(
            number,
            format_args!("manifest {}", manifest_path(dir, number).display()),
        )?);
    }
    if recovered.log_number > 0 {
        next_file = next_file.max(number_after(
            recovered.log_number,
            format_args!("the manifest's log number"),
        )?);
    }
    if let Some(number) = recovered.tables().map(|(n, _)| *n).max() {
        next_file = next_file.max(number_after(
            number,
            format_args!("table {}", table_path(dir, number).display()),
        )?);
    }
    Ok(next_file)
}

/// Lists the directory and returns the log segments to replay (at or above the manifest's
/// log number), ascending, after checking that nothing the manifest needs is missing: the
/// segment at its log number, and `CURRENT` itself if the directory holds tables.
fn classify_files(
    fs: &dyn FileSystem,
    dir: &Path,
    old_manifest: Option<u64>,
    recovered: &Recovered,
) -> Result<Vec<u64>> {
    let names = fs
        .list_dir(dir)
        .map_err(|err| Error::io(format_args!("listing {}", dir.display()), err))?;
    let mut logs: Vec<u64> = names
        .iter()
        .filter_map(|name| match parse_file_name(name) {
            Some(FileKind::Log(n)) if n >= recovered.log_number => Some(n),
            _ => None,
        })
        .collect();
    logs.sort_unstable();
    if old_manifest.is_none() {
        // Without CURRENT the directory must be new, or the debris of a first open that
        // crashed before CURRENT was written (a log and a manifest, no table). A table
        // means CURRENT was lost: opening as a new database would discard the data.
        if let Some(table) = names
            .iter()
            .find(|name| matches!(parse_file_name(name), Some(FileKind::Table(_))))
        {
            return Err(Error::corruption(format!(
                "{} is missing but the directory holds table {table}",
                current_path(dir).display()
            )));
        }
    } else if recovered.log_number > 0 && logs.first() != Some(&recovered.log_number) {
        // The segment at the manifest's log number always exists: it is created before
        // any manifest edit names it, and only segments below it are ever deleted.
        return Err(Error::corruption(format!(
            "log {} that the manifest needs is missing",
            log_path(dir, recovered.log_number).display()
        )));
    }
    Ok(logs)
}

/// The tables of each keyspace, with their levels.
type KeyspaceTables = BTreeMap<KeyspaceId, Vec<(u32, Arc<TableHandle>)>>;

/// Opens every table the manifest lists, with its level, by keyspace.
fn open_tables(
    fs: &Arc<dyn FileSystem>,
    reads: &TableReads,
    dir: &Path,
    recovered: &Recovered,
) -> Result<KeyspaceTables> {
    let mut tables = KeyspaceTables::new();
    for (&id, keyspace) in &recovered.keyspaces {
        let mut opened = Vec::with_capacity(keyspace.tables.len());
        for (level, file) in keyspace.tables.values() {
            opened.push((*level, TableHandle::open(fs, reads, dir, file.clone())?));
        }
        tables.insert(id, opened);
    }
    Ok(tables)
}

/// What replaying the unflushed segments gave.
struct Replay {
    /// Every replayed write of each keyspace, in log order.
    entries: BTreeMap<KeyspaceId, Replayed>,
    /// The sequence number of the last replayed write (the manifest's if none).
    last_seqno: SeqNo,
    /// Whether each segment read holds a record, in the order of the segments; those
    /// after a tear that lost records are not read, and not in here.
    written: Vec<bool>,
}

/// The replayed writes of one keyspace, in log order.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    /// Puts and deletes.
    pub(crate) points: Vec<(InternalKey, Bytes)>,
    /// Range deletions.
    pub(crate) ranges: Vec<RangeTombstone>,
}

impl Replayed {
    /// Whether no write was replayed.
    pub(crate) fn is_empty(&self) -> bool {
        self.points.is_empty() && self.ranges.is_empty()
    }

    /// The largest user key of a point write, if any.
    fn max_key(&self) -> Option<&Bytes> {
        self.points.iter().map(|(key, _)| &key.user_key).max()
    }
}

/// Replays the segments `logs` (ascending) from the first sequence number of the
/// manifest's log number (or, for a manifest that does not record it, the one after its
/// last sequence number), up to the first tear that lost records (see the module docs).
/// Each write goes to its keyspace if the segment is at or past that keyspace's log
/// number; writes of dropped keyspaces are skipped.
///
/// The entries go straight into a vector per keyspace that is sorted once and written as
/// a table: far cheaper than a skiplist insert per entry, and sequence numbers make every
/// internal key unique, so the sort needs no tie-break.
fn replay_segments(
    fs: &dyn FileSystem,
    dir: &Path,
    logs: &[u64],
    recovered: &Recovered,
) -> Result<Replay> {
    let mut entries: BTreeMap<KeyspaceId, Replayed> = BTreeMap::new();
    let manifest_last_seqno = recovered.last_seqno;
    let first = match recovered.log_seqno {
        Some(seqno) => Some(seqno),
        None => manifest_last_seqno.checked_add(1),
    };
    let mut expected = first.ok_or_else(|| {
        Error::corruption(format!(
            "the manifest's last sequence number is {manifest_last_seqno}, the largest there is"
        ))
    })?;
    let mut written = Vec::with_capacity(logs.len());
    'segments: for &number in logs {
        let path = log_path(dir, number);
        let data = fs
            .read(&path)
            .map_err(|err| Error::io(format_args!("reading {}", path.display()), err))?;
        let name = path.display().to_string();
        let replay = read_log(Bytes::from(data), &name)?;
        written.push(!replay.records.is_empty());
        for (at, record) in replay.records.iter().enumerate() {
            let (first, count) = check_batch(record)
                .map_err(|err| Error::corruption(format!("log {name}: {err}")))?;
            if first != expected {
                // A segment whose records start past the next sequence number lost the
                // ones between to a power loss in an older segment, unless something in
                // it was synced: a sync covers the older segments first, so then the lost
                // records were durable (see the module docs).
                if at == 0 && first > expected && replay.durable_through == 0 {
                    break 'segments;
                }
                return Err(Error::corruption(format!(
                    "log {name}: a batch has sequence number {first} where {expected} was \
                     expected; a log segment or record is missing"
                )));
            }
            // The writes of the keyspace the last operation went to (`None`: skipped).
            let mut target: Option<(KeyspaceId, Option<&mut Replayed>)> = None;
            for (seqno, op) in (first..).zip(batch_ops(record)) {
                if target.as_ref().is_none_or(|(id, _)| *id != op.keyspace) {
                    let replays = recovered
                        .replay_from(op.keyspace)
                        .is_some_and(|from| number >= from);
                    target.take();
                    let vector = replays.then(|| entries.entry(op.keyspace).or_default());
                    target = Some((op.keyspace, vector));
                }
                if let Some((_, Some(replayed))) = &mut target {
                    match op.kind.point() {
                        Some(kind) => replayed
                            .points
                            .push((InternalKey::new(op.key, seqno, kind), op.value)),
                        None => replayed.ranges.push(RangeTombstone::new(
                            op.key,
                            (op.kind == OpKind::DeleteRange).then_some(op.value),
                            seqno,
                        )),
                    }
                }
            }
            expected = first.checked_add(count).ok_or_else(|| {
                Error::corruption(format!(
                    "log {name}: a batch of {count} writes from sequence number {first} \
                     passes the largest sequence number"
                ))
            })?;
        }
    }
    // Every table's writes were durable in the log before the table was recorded (a
    // flush seals the segments that other keyspaces still need first), so a prefix that
    // ends before the newest of them lost synced records.
    let last_seqno = expected - 1;
    if last_seqno < manifest_last_seqno
        && recovered.log_seqno.is_some()
        && written.len() < logs.len()
    {
        return Err(Error::corruption(format!(
            "the log ends at sequence number {last_seqno}, before {manifest_last_seqno}, which the tables hold: a log segment or record is missing"
        )));
    }
    Ok(Replay {
        entries,
        last_seqno: last_seqno.max(manifest_last_seqno),
        written,
    })
}

/// Whether each of `logs` holds a record: `replayed` says it for the segments replay read,
/// and the others (after a tear that lost records) are read here.
///
/// Segments after such a tear were not replayed, but one that holds a record must still
/// be deleted once the new manifest is installed (its records would otherwise follow the
/// new writes at the next open), so the counter must pass it too. Below the manifest's
/// next file number it is passed already, and is not read.
fn segments_holding_records(
    fs: &dyn FileSystem,
    dir: &Path,
    logs: &[u64],
    mut replayed: Vec<bool>,
    recovered: &Recovered,
) -> Result<Vec<bool>> {
    for &number in &logs[replayed.len()..] {
        let holds_record = number >= recovered.next_file_number
            && segment_holds_record(fs, &log_path(dir, number))?;
        replayed.push(holds_record);
    }
    Ok(replayed)
}

/// The newest of `logs` that holds a record (`written`, in the same order).
fn newest_holding_record(logs: &[u64], written: &[bool]) -> Option<u64> {
    logs.iter()
        .zip(written)
        .filter(|&(_, &holds_record)| holds_record)
        .map(|(&number, _)| number)
        .next_back()
}

/// Removes the orphan segments (see the module docs) now, before a new file can be given
/// one's number; best effort, since a file created under its name replaces it. Only those
/// past every segment with records (`newest_written`) are orphans: one between such
/// segments still counts for the tear rule until the new manifest is installed, and is
/// deleted with the replayed segments afterwards.
fn remove_orphan_segments(
    fs: &dyn FileSystem,
    dir: &Path,
    logs: &[u64],
    written: &[bool],
    recovered: &Recovered,
    newest_written: Option<u64>,
) {
    for (&number, &holds_record) in logs.iter().zip(written) {
        let orphan = !holds_record
            && number >= recovered.next_file_number
            && number > recovered.log_number
            && newest_written.is_none_or(|newest| number > newest);
        if orphan {
            let _ = fs.remove_file(&log_path(dir, number));
        }
    }
}

/// Writes the replayed entries of each keyspace to a level-0 table of it with its options
/// (`options`), numbered from `next_file`, on up to `threads` threads; returns the tables
/// by keyspace. The tables are synced and renamed into place; their directory entries are
/// made durable by the directory sync that follows the new segment's creation, before
/// the manifest that lists them exists (one directory sync for all of them).
#[expect(
    clippy::too_many_arguments,
    reason = "each is a different input of open's one call"
)]
fn flush_replay(
    fs: &Arc<dyn FileSystem>,
    reads: &TableReads,
    dir: &Path,
    options: &BTreeMap<KeyspaceId, Options>,
    entries: BTreeMap<KeyspaceId, Replayed>,
    tables: &BTreeMap<KeyspaceId, Vec<(u32, Arc<TableHandle>)>>,
    next_file: &mut u64,
    threads: usize,
) -> Result<Vec<(KeyspaceId, Arc<TableHandle>)>> {
    let mut jobs = Vec::new();
    for (id, mut replayed) in entries {
        let Some(options) = options.get(&id) else {
            continue;
        };
        // Range tombstones without an end are cut past the largest key the keyspace
        // holds (see `crate::range_del::bounded`): in its tables or replayed here.
        let table_max = tables
            .get(&id)
            .into_iter()
            .flatten()
            .map(|(_, table)| &table.file.largest.user_key)
            .max();
        let max_key = replayed.max_key().max(table_max).cloned();
        let ranges = bounded(
            &Fragments::new(std::mem::take(&mut replayed.ranges)),
            max_key.as_ref(),
        );
        if replayed.points.is_empty() && ranges.is_empty() {
            continue;
        }
        jobs.push((id, allocate(next_file)?, options, replayed.points, ranges));
    }
    let write = |(id, number, options, points, ranges): ReplayJob<'_>| {
        write_replay_table(fs, reads, dir, number, options, points, ranges).map(|table| (id, table))
    };
    if threads <= 1 || jobs.len() <= 1 {
        return jobs.into_iter().map(write).collect();
    }
    // Largest first, dealt round-robin: the threads finish at about the same time.
    jobs.sort_by_key(|job| std::cmp::Reverse(job.3.len()));
    let mut shares: Vec<Vec<_>> = (0..threads.min(jobs.len())).map(|_| Vec::new()).collect();
    let count = shares.len();
    for (at, job) in jobs.into_iter().enumerate() {
        shares[at % count].push(job);
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = shares
            .into_iter()
            .map(|share| {
                scope.spawn(move || share.into_iter().map(write).collect::<Result<Vec<_>>>())
            })
            .collect();
        let mut tables = Vec::new();
        for worker in workers {
            let written = worker
                .join()
                .map_err(|_| Error::corruption("internal error: a replay flush thread panicked"))?;
            tables.extend(written?);
        }
        Ok(tables)
    })
}

/// One replay table to write: keyspace, file number, tree options, point writes, range
/// tombstones.
type ReplayJob<'o> = (
    KeyspaceId,
    u64,
    &'o Options,
    Vec<(InternalKey, Bytes)>,
    Fragments,
);

/// Writes the replayed `entries` of one keyspace, sorted, and its range tombstones
/// `ranges` to table `number` with `options`, synced and renamed into place (not its
/// directory entry, see [`flush_replay`]).
fn write_replay_table(
    fs: &Arc<dyn FileSystem>,
    reads: &TableReads,
    dir: &Path,
    number: u64,
    options: &Options,
    entries: Vec<(InternalKey, Bytes)>,
    ranges: Fragments,
) -> Result<Arc<TableHandle>> {
    let mut writer = TableWriter::create(fs, dir, number, options.table_options(0))?;
    for &(_, at) in &sorted_order(&entries) {
        let (key, value) = &entries[at];
        writer.add(key, value)?;
    }
    drop(entries);
    writer.set_range_tombstones(ranges)?;
    let file = writer.finish()?;
    TableHandle::open(fs, reads, dir, file)
}

/// The files a new open starts with.
struct Created {
    /// The new active segment, empty.
    log: Box<dyn WritableFile>,
    log_number: u64,
    /// The new manifest, holding a snapshot of `version`, which `CURRENT` names.
    manifest: ManifestWriter,
}

/// Creates the new active segment and then the new manifest, a snapshot of `state` (every
/// keyspace and its tables) with the segment as its log number, and switches `CURRENT` to
/// it.
///
/// Durability order 1: the segment's directory entry is durable before any write in it is
/// acknowledged. Both numbers are drawn before either file exists, so that running out of
/// numbers leaves nothing behind but an orphan table.
fn create_segment_and_manifest(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    state: &State,
    next_file: &mut u64,
    last_seqno: SeqNo,
    next_keyspace_id: KeyspaceId,
) -> Result<Created> {
    let log_number = allocate(next_file)?;
    let manifest_number = allocate(next_file)?;
    let path = log_path(dir, log_number);
    let log = fs
        .create(&path)
        .map_err(|err| Error::io(format_args!("creating {}", path.display()), err))?;
    fs.sync_dir(dir)
        .map_err(|err| Error::io("syncing the database directory", err))?;
    let log_seqno = last_seqno.checked_add(1).ok_or_else(|| {
        Error::corruption("the log's sequence numbers reached the largest there is")
    })?;
    let fields = ManifestFields {
        log_number,
        log_seqno,
        last_seqno,
        next_keyspace_id,
    };
    let snapshot = snapshot_edits(state, &fields, *next_file, |_| None);
    let manifest = ManifestWriter::create(Arc::clone(fs), dir, manifest_number, &snapshot)?;
    Ok(Created {
        log,
        log_number,
        manifest,
    })
}

/// Takes the number `*next` for a new file and moves the counter past it.
fn allocate(next: &mut u64) -> Result<u64> {
    let number = *next;
    *next = number
        .checked_add(1)
        .ok_or_else(|| numbers_exhausted(number))?;
    Ok(number)
}

/// Whether the log segment at `path` holds a record. Only asked of segments that are not
/// replayed, where damage is no error: a segment that cannot be read as a log holds
/// something, and is deleted with the replayed segments.
fn segment_holds_record(fs: &dyn FileSystem, path: &Path) -> Result<bool> {
    let data = fs
        .read(path)
        .map_err(|err| Error::io(format_args!("reading {}", path.display()), err))?;
    let name = path.display().to_string();
    Ok(read_log(Bytes::from(data), &name).map_or(true, |replay| !replay.records.is_empty()))
}

/// The order of `entries` by internal key, as indexes.
///
/// Sorting the entries themselves compares keys behind pointers into the replayed log, one
/// cache miss per comparison; this sorts compact `(prefix, index)` pairs instead, where the
/// prefix is the key's first eight bytes (zero-padded, big-endian), and looks at the whole
/// key only on a prefix tie. Zero padding keeps the prefix order consistent with the byte
/// order: a smaller prefix always means a smaller key.
fn sorted_order(entries: &[(InternalKey, Bytes)]) -> Vec<(u64, usize)> {
    let mut order: Vec<(u64, usize)> = entries
        .iter()
        .enumerate()
        .map(|(at, (key, _))| {
            let mut prefix = [0u8; 8];
            let len = key.user_key.len().min(8);
            prefix[..len].copy_from_slice(&key.user_key[..len]);
            (u64::from_be_bytes(prefix), at)
        })
        .collect();
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| entries[a.1].0.cmp(&entries[b.1].0))
    });
    order
}

/// Removes what no longer belongs to the database: tables the manifest does not list,
/// segments older than `log_number`, old manifests, temporary files. Best effort: what
/// cannot be removed now is removed by a later open.
fn remove_obsolete(
    fs: &dyn FileSystem,
    dir: &Path,
    live_tables: &[u64],
    log_number: u64,
    manifest_number: u64,
) {
    let Ok(names) = fs.list_dir(dir) else {
        return;
    };
    for name in names {
        let obsolete = match parse_file_name(&name) {
            Some(FileKind::Table(n)) => !live_tables.contains(&n),
            Some(FileKind::Log(n)) => n < log_number,
            Some(FileKind::Manifest(n)) => n != manifest_number,
            Some(FileKind::Temp(_)) => true,
            _ => false,
        };
        if obsolete {
            let _ = fs.remove_file(&dir.join(&name));
        }
    }
}

#[cfg(test)]
mod tests {
    use floe_core::ValueKind;

    use super::*;

    fn table_at(level: u32) -> VersionEdit {
        let key = |k: &'static str| InternalKey::new(k, 1, ValueKind::Put);
        VersionEdit {
            added: vec![(
                level,
                TableFile {
                    number: 7,
                    size: 100,
                    entries: 1,
                    smallest: key("a"),
                    largest: key("b"),
                    min_seqno: 1,
                    max_seqno: 1,
                },
            )],
            ..VersionEdit::default()
        }
    }

    #[test]
    fn a_table_beyond_the_last_level_is_corruption_not_moved() {
        let mut recovered = Recovered::default();
        recovered.apply(table_at(NUM_LEVELS as u32 - 1)).unwrap();
        let err = recovered.apply(table_at(NUM_LEVELS as u32)).unwrap_err();
        assert!(matches!(err, Error::Corruption { .. }), "{err}");
    }
}
