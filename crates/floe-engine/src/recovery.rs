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

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use arc_swap::ArcSwap;
use bytes::Bytes;
use floe_core::fs::FileSystem;
use floe_core::{InternalKey, SeqNo};
use floe_memtable::Memtable;

use crate::batch::decode_batch;
use crate::commit::Queue;
use crate::compact::CompactionState;
use crate::error::{Error, Result};
use crate::filename::{
    FileKind, current_path, lock_path, log_path, manifest_path, number_after, numbers_exhausted,
    parse_file_name, table_path,
};
use crate::manifest::{ManifestWriter, TableFile, VersionEdit, read_current, replay_manifest};
use crate::options::Options;
use crate::publish::Publisher;
use crate::shared::{Bg, LogState, LogSyncSignal, ManifestState, Shared};
use crate::state::{NUM_LEVELS, State, version_from};
use crate::stats::Counters;
use crate::table::{TableHandle, TableWriter};
use crate::wal::{LogWriter, read_log, segment_reserve};

/// What the manifest says, folded over its edits.
#[derive(Debug, Default)]
struct Recovered {
    tables: BTreeMap<u64, (u32, TableFile)>,
    log_number: u64,
    next_file_number: u64,
    last_seqno: SeqNo,
}

impl Recovered {
    fn apply(&mut self, edit: VersionEdit) -> Result<()> {
        if let Some(number) = edit.log_number {
            self.log_number = self.log_number.max(number);
        }
        if let Some(number) = edit.next_file_number {
            self.next_file_number = self.next_file_number.max(number);
        }
        if let Some(seqno) = edit.last_seqno {
            self.last_seqno = self.last_seqno.max(seqno);
        }
        for (level, number) in edit.removed {
            if self.tables.get(&number).is_some_and(|(l, _)| *l == level) {
                self.tables.remove(&number);
            }
        }
        for (level, file) in edit.added {
            if level as usize >= NUM_LEVELS {
                return Err(Error::corruption(format!(
                    "the manifest puts table {} at level {level}, but there are only {NUM_LEVELS} levels",
                    file.number
                )));
            }
            self.tables.insert(file.number, (level, file));
        }
        Ok(())
    }
}

fn file_system(options: &Options) -> Arc<dyn FileSystem> {
    #[cfg(any(test, feature = "fault-injection"))]
    if let Some(fs) = &options.file_system {
        return Arc::clone(fs);
    }
    let _ = options;
    Arc::new(floe_core::fs::StdFs)
}

/// Opens (or creates) the database in `dir`.
pub(crate) fn open(dir: &Path, options: Options) -> Result<Shared> {
    options.validate()?;
    let fs = file_system(&options);
    let dir = dir.to_path_buf();
    fs.create_dir_all(&dir)
        .map_err(|err| Error::io(format_args!("creating {}", dir.display()), err))?;
    let lock_file = lock_path(&dir);
    let dir_lock = fs.lock(&lock_file).map_err(|err| {
        if err.kind() == io::ErrorKind::WouldBlock {
            Error::Locked {
                path: lock_file.display().to_string(),
            }
        } else {
            Error::io(format_args!("locking {}", lock_file.display()), err)
        }
    })?;

    let mut recovered = Recovered {
        next_file_number: 1,
        ..Recovered::default()
    };
    let old_manifest = read_current(&*fs, &dir)?;
    if let Some(number) = old_manifest {
        for edit in replay_manifest(&*fs, &dir, number)? {
            recovered.apply(edit)?;
        }
    }
    // The counter starts past every file the manifest knows (see "File numbers" in the
    // module docs). Every manifest floe writes records a next file number past all of
    // them already; the checks guard against overwriting a live file if one does not.
    let mut next_file = recovered.next_file_number;
    if let Some(number) = old_manifest {
        next_file = next_file.max(number_after(
            number,
            format_args!("manifest {}", manifest_path(&dir, number).display()),
        )?);
    }
    if recovered.log_number > 0 {
        next_file = next_file.max(number_after(
            recovered.log_number,
            format_args!("the manifest's log number"),
        )?);
    }
    if let Some(&number) = recovered.tables.keys().next_back() {
        next_file = next_file.max(number_after(
            number,
            format_args!("table {}", table_path(&dir, number).display()),
        )?);
    }
    let names = fs
        .list_dir(&dir)
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
                current_path(&dir).display()
            )));
        }
    } else if recovered.log_number > 0 && logs.first() != Some(&recovered.log_number) {
        // The segment at the manifest's log number always exists: it is created before
        // any manifest edit names it, and only segments below it are ever deleted.
        return Err(Error::corruption(format!(
            "log {} that the manifest needs is missing",
            log_path(&dir, recovered.log_number).display()
        )));
    }

    let mut tables = Vec::with_capacity(recovered.tables.len());
    for (level, file) in recovered.tables.values() {
        tables.push((*level, TableHandle::open(&fs, &dir, file.clone())?));
    }

    // Replay the unflushed segments. The entries go straight into a vector that is
    // sorted once and written as a table: far cheaper than a skiplist insert per entry,
    // and sequence numbers make every internal key unique, so the sort needs no tie-break.
    let mut replayed: Vec<(InternalKey, Bytes)> = Vec::new();
    let mut expected = recovered.last_seqno.checked_add(1).ok_or_else(|| {
        Error::corruption(format!(
            "the manifest's last sequence number is {}, the largest there is",
            recovered.last_seqno
        ))
    })?;
    // Whether each segment read holds a record, in the order of `logs`.
    let mut written = Vec::with_capacity(logs.len());
    'segments: for &number in &logs {
        let path = log_path(&dir, number);
        let data = fs
            .read(&path)
            .map_err(|err| Error::io(format_args!("reading {}", path.display()), err))?;
        let name = path.display().to_string();
        let replay = read_log(Bytes::from(data), &name)?;
        written.push(!replay.records.is_empty());
        for (at, record) in replay.records.iter().enumerate() {
            let (first, ops) = decode_batch(record)
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
            let count = ops.len() as u64;
            for (i, op) in ops.into_iter().enumerate() {
                replayed.push((
                    InternalKey::new(op.key, first + i as u64, op.kind),
                    op.value,
                ));
            }
            expected = first.checked_add(count).ok_or_else(|| {
                Error::corruption(format!(
                    "log {name}: a batch of {count} writes from sequence number {first} \
                     passes the largest sequence number"
                ))
            })?;
        }
    }
    let last_seqno = expected - 1;
    // Segments after a tear that lost records were not replayed, but one that holds a
    // record must still be deleted once the new manifest is installed (its records would
    // otherwise follow the new writes at the next open), so the counter must pass it too.
    // Below the manifest's next file number it is passed already.
    for &number in &logs[written.len()..] {
        let holds_record = number >= recovered.next_file_number
            && segment_holds_record(&*fs, &log_path(&dir, number))?;
        written.push(holds_record);
    }
    // The counter passes the newest segment that holds a record, and so every other one.
    let newest_written = logs
        .iter()
        .zip(&written)
        .filter(|&(_, &holds_record)| holds_record)
        .map(|(&number, _)| number)
        .next_back();
    if let Some(number) = newest_written {
        next_file = next_file.max(number_after(
            number,
            format_args!("log {}", log_path(&dir, number).display()),
        )?);
    }
    // Orphan segments (see the module docs) are removed now, before a new file can be
    // given one's number; best effort, since a file created under its name replaces it.
    // Only those past every segment with records are orphans: one between such segments
    // still counts for the tear rule until the new manifest is installed, and is deleted
    // with the replayed segments afterwards.
    for (&number, &holds_record) in logs.iter().zip(&written) {
        let orphan = !holds_record
            && number >= recovered.next_file_number
            && number > recovered.log_number
            && newest_written.is_none_or(|newest| number > newest);
        if orphan {
            let _ = fs.remove_file(&log_path(&dir, number));
        }
    }
    let counters = Counters::default();

    if !replayed.is_empty() {
        let number = allocate(&mut next_file)?;
        let table_options = floe_sstable::TableOptions {
            block_size: options.block_size,
            bloom_bits_per_key: options.bloom_bits_per_key,
        };
        let mut writer = TableWriter::create(&fs, &dir, number, table_options)?;
        for &(_, at) in &sorted_order(&replayed) {
            let (key, value) = &replayed[at];
            writer.add(key, value)?;
        }
        drop(replayed);
        let file = writer.finish()?;
        counters.add_flush(file.size);
        fs.sync_dir(&dir)
            .map_err(|err| Error::io("syncing the database directory", err))?;
        tables.push((0, TableHandle::open(&fs, &dir, file)?));
    }

    // The new active segment (durability order 1: its directory entry is durable before
    // any write in it is acknowledged). Both numbers are drawn before either file exists,
    // so that running out of numbers leaves nothing behind but an orphan table.
    let log_number = allocate(&mut next_file)?;
    let manifest_number = allocate(&mut next_file)?;
    let path = log_path(&dir, log_number);
    let log_file = fs
        .create(&path)
        .map_err(|err| Error::io(format_args!("creating {}", path.display()), err))?;
    fs.sync_dir(&dir)
        .map_err(|err| Error::io("syncing the database directory", err))?;

    let version = version_from(tables);
    let mut snapshot = version.snapshot_edit();
    snapshot.log_number = Some(log_number);
    snapshot.next_file_number = Some(next_file);
    snapshot.last_seqno = Some(last_seqno);
    let manifest = ManifestWriter::create(Arc::clone(&fs), &dir, manifest_number, &snapshot)?;

    remove_obsolete(
        &*fs,
        &dir,
        &version_numbers(&version),
        log_number,
        manifest_number,
    );

    let state = State {
        active: Arc::new(Memtable::new(options.write_buffer_size)),
        log_number,
        frozen: Vec::new(),
        version: Arc::new(version),
    };
    let spin_commits = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    Ok(Shared {
        dir,
        fs,
        state: ArcSwap::from_pointee(state),
        state_lock: Mutex::new(()),
        publisher: Publisher::new(last_seqno).spinning(spin_commits),
        queue: Mutex::new(Queue::default()),
        queue_cv: Condvar::new(),
        queue_posts: AtomicU64::new(0),
        queued: AtomicUsize::new(0),
        last_sync_nanos: AtomicU64::new(0),
        spin_commits,
        log: Mutex::new(LogState {
            group_record: Vec::new(),
            writer: LogWriter::segment(log_file, segment_reserve(options.write_buffer_size)),
            number: log_number,
            next_seqno: last_seqno + 1,
            frozen_logs: Vec::new(),
            unsynced_bytes: 0,
        }),
        log_sync_gate: Mutex::new(()),
        log_sync: Mutex::new(LogSyncSignal::default()),
        log_sync_cv: Condvar::new(),
        manifest: Mutex::new(ManifestState {
            writer: manifest,
            log_number,
            last_seqno,
        }),
        next_file_number: AtomicU64::new(next_file),
        poisoned: OnceLock::new(),
        closed: AtomicBool::new(false),
        bg: Mutex::new(Bg::default()),
        work_cv: Condvar::new(),
        compact_cv: Condvar::new(),
        done_cv: Condvar::new(),
        snapshots: Mutex::new(BTreeMap::new()),
        compaction: Mutex::new(CompactionState::default()),
        counters,
        dir_lock: Mutex::new(Some(dir_lock)),
        options,
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

fn version_numbers(version: &crate::state::Version) -> Vec<u64> {
    version.tables().map(|t| t.number()).collect()
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
