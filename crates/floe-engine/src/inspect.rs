//! Read-only inspection of a database directory's files, for tools such as the `floe`
//! command-line tool: the records of a log segment with their offsets and decoded writes,
//! the version edits of the live manifest, the entries of a table, and a check of every
//! file ([`Verifier`]) that reports each damage by file and offset.
//!
//! Nothing here changes a file: no lock is taken and nothing is created, renamed or
//! deleted, so every function works beside a process that holds the database open, and
//! on a directory this process cannot write to. Each decodes with the engine's own
//! readers (the log framing of `read_log`, the write-batch and version-edit decoders,
//! recovery's fold of the manifest, [`floe_sstable::Table`]), so what it accepts, and what
//! it calls damage, is exactly what an open would.
//!
//! ```no_run
//! use floe_engine::inspect::Verifier;
//!
//! let report = Verifier::new("my-db")?.run(|_bytes| {});
//! for damage in report.damages() {
//!     eprintln!("{} at offset {}: {}", damage.file, damage.offset, damage.message);
//! }
//! # Ok::<(), floe_engine::Error>(())
//! ```

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use floe_core::fs::{FileSystem, StdFs};
use floe_core::{InternalKey, ValueKind};
use floe_sstable::Table;

use crate::error::{Error, Result};
use crate::filename::{
    FileKind, current_path, log_path, manifest_file_name, manifest_path, parse_file_name,
    table_path,
};
use crate::keyspace::KeyspaceOptions;
use crate::recovery::Recovered;
use crate::version::manifest::{TableFile, VersionEdit, read_current};
use crate::wal::{LogReplay, scan_log};
use crate::write::batch::{OpKind, batch_ops, check_batch};

/// Where a log (a segment or a manifest) stops short of its end: the first incomplete or
/// damaged record, which no durable-offset marker after it says was synced, so that a
/// crash or a power loss explains it. Recovery drops it and everything after it; it is
/// not damage (`docs/format-log.md`, "Reading: torn tail versus corruption").
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TornTail {
    /// The offset of the first record dropped.
    pub offset: u64,
    /// Why that record was not taken: cut short, zero-filled, a checksum mismatch, ...
    pub reason: String,
}

/// What one write in a log record does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteKind {
    /// Sets the key to the value.
    Put,
    /// Deletes the key.
    Delete,
    /// Deletes every key `k` with `key <= k < value`.
    DeleteRange,
    /// Deletes every key from `key` on.
    DeleteFrom,
}

/// One write of a log record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoggedWrite {
    /// Its sequence number.
    pub seqno: u64,
    /// The id of the keyspace it writes in (0 is `"default"`; [`Manifest::keyspaces`]
    /// names the others).
    pub keyspace: u32,
    /// What it does.
    pub kind: WriteKind,
    /// The key, or a range's start.
    pub key: Bytes,
    /// The value, or a range's end (empty for a delete and a delete-from).
    pub value: Bytes,
}

/// One record of a log segment: a commit group of one or more batches.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogRecord {
    /// The offset of the record's first fragment in the segment.
    pub offset: u64,
    /// The length of the record's payload, in bytes (its framing excluded).
    pub len: u64,
    /// The sequence number of its first write.
    pub first_seqno: u64,
    /// Its writes, in order: write `i` has sequence number `first_seqno + i`.
    pub writes: Vec<LoggedWrite>,
}

/// A log segment (`000123.log`) read whole.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogSegment {
    /// The file, as it was named to [`read_log_segment`].
    pub file: String,
    /// The file's length in bytes.
    pub len: u64,
    /// Its complete records, in order.
    pub records: Vec<LogRecord>,
    /// The largest durable length a durable-offset marker in it states: the first
    /// `durable_through` bytes were synced.
    pub durable_through: u64,
    /// Where it stops short of its end, if it does (a segment still being written, or not
    /// closed cleanly, ends in its zero-filled reserved room, read as such a tail).
    pub torn_tail: Option<TornTail>,
}

/// Reads the log segment at `path` into its records, each with its offset and its decoded
/// writes.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Corruption`] naming the offset if a
/// record that a later durable-offset marker says was synced is damaged, or if a record's
/// payload is not a write batch.
pub fn read_log_segment(path: impl AsRef<Path>) -> Result<LogSegment> {
    let path = path.as_ref();
    let file = path.display().to_string();
    let data = read_file(path)?;
    let len = data.len() as u64;
    let replay = scan_log(data).map_err(|damage| damage.to_error(&file))?;
    let records = replay_records(&replay)
        .map(|(offset, record)| {
            decode_record(offset, record).map_err(|message| {
                Error::corruption(format!(
                    "log {file}: the record at offset {offset}: {message}"
                ))
            })
        })
        .collect::<Result<_>>()?;
    Ok(LogSegment {
        file,
        len,
        records,
        durable_through: replay.durable_through,
        torn_tail: torn_tail(&replay),
    })
}

/// The records of a replayed log with their offsets.
fn replay_records(replay: &LogReplay) -> impl Iterator<Item = (u64, &Bytes)> {
    replay.record_offsets.iter().copied().zip(&replay.records)
}

fn torn_tail(replay: &LogReplay) -> Option<TornTail> {
    replay.torn_tail_at.map(|offset| TornTail {
        offset,
        reason: replay.tail_reason.unwrap_or("damaged").to_owned(),
    })
}

/// Decodes one record of a segment, at `offset`, as a write batch.
fn decode_record(offset: u64, record: &Bytes) -> Result<LogRecord, String> {
    let (first_seqno, _) = check_batch(record).map_err(|err| corruption_message(&err))?;
    let writes = (first_seqno..)
        .zip(batch_ops(record))
        .map(|(seqno, op)| LoggedWrite {
            seqno,
            keyspace: op.keyspace,
            kind: match op.kind {
                OpKind::Put => WriteKind::Put,
                OpKind::Delete => WriteKind::Delete,
                OpKind::DeleteRange => WriteKind::DeleteRange,
                OpKind::DeleteFrom => WriteKind::DeleteFrom,
            },
            key: op.key,
            value: op.value,
        })
        .collect();
    Ok(LogRecord {
        offset,
        len: record.len() as u64,
        first_seqno,
        writes,
    })
}

/// Whether an entry of a table, or the bound of a table in the manifest, sets or deletes
/// its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// A value.
    Put,
    /// A tombstone.
    Delete,
}

/// An internal key: a user key with the sequence number and kind of one write of it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableKey {
    /// The key the user wrote.
    pub user_key: Bytes,
    /// The write's sequence number.
    pub seqno: u64,
    /// Whether the write set or deleted the key.
    pub kind: EntryKind,
}

impl From<&InternalKey> for TableKey {
    fn from(key: &InternalKey) -> TableKey {
        TableKey {
            user_key: key.user_key.clone(),
            seqno: key.seqno,
            kind: match key.kind {
                ValueKind::Put => EntryKind::Put,
                ValueKind::Delete => EntryKind::Delete,
            },
        }
    }
}

/// A table as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManifestTable {
    /// Its level.
    pub level: u32,
    /// Its file number: the table is `{number:06}.sst`.
    pub number: u64,
    /// Its file size in bytes.
    pub size: u64,
    /// Its point entries (every version, tombstones included).
    pub entries: u64,
    /// Its smallest internal key.
    pub smallest: TableKey,
    /// Its largest internal key.
    pub largest: TableKey,
    /// Its smallest sequence number.
    pub min_seqno: u64,
    /// Its largest sequence number.
    pub max_seqno: u64,
}

impl ManifestTable {
    fn new(level: u32, file: &TableFile) -> ManifestTable {
        ManifestTable {
            level,
            number: file.number,
            size: file.size,
            entries: file.entries,
            smallest: TableKey::from(&file.smallest),
            largest: TableKey::from(&file.largest),
            min_seqno: file.min_seqno,
            max_seqno: file.max_seqno,
        }
    }
}

/// A keyspace that a manifest edit creates.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CreatedKeyspace {
    /// Its name.
    pub name: String,
    /// Its tree options, every one set.
    pub options: KeyspaceOptions,
}

/// One version edit of the manifest (`docs/format-log.md`, "Version edit"): the fields it
/// sets, the keyspace it applies to, and the tables it adds and removes there.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ManifestEdit {
    /// The offset of its record in the manifest.
    pub offset: u64,
    /// The id of the keyspace that the tables, `keyspace_log_number`, `created` and
    /// `dropped` apply to (0 is `"default"`).
    pub keyspace: u32,
    /// Logs numbered below it are obsolete.
    pub log_number: Option<u64>,
    /// The first sequence number the segment at `log_number` can hold.
    pub log_seqno: Option<u64>,
    /// The next unused file number.
    pub next_file_number: Option<u64>,
    /// The largest sequence number the tables hold.
    pub last_seqno: Option<u64>,
    /// The next unused keyspace id.
    pub next_keyspace_id: Option<u32>,
    /// The keyspace's writes in logs below it are in its tables.
    pub keyspace_log_number: Option<u64>,
    /// The keyspace this edit creates.
    pub created: Option<CreatedKeyspace>,
    /// Whether this edit drops the keyspace, with all its tables.
    pub dropped: bool,
    /// Tables added to the keyspace.
    pub added: Vec<ManifestTable>,
    /// Tables removed from the keyspace, as (level, file number).
    pub removed: Vec<(u32, u64)>,
}

impl ManifestEdit {
    fn new(offset: u64, edit: &VersionEdit) -> ManifestEdit {
        ManifestEdit {
            offset,
            keyspace: edit.keyspace,
            log_number: edit.log_number,
            log_seqno: edit.log_seqno,
            next_file_number: edit.next_file_number,
            last_seqno: edit.last_seqno,
            next_keyspace_id: edit.next_keyspace_id,
            keyspace_log_number: edit.keyspace_log_number,
            created: edit.created.as_ref().map(|def| CreatedKeyspace {
                name: def.name.clone(),
                options: def.options.clone(),
            }),
            dropped: edit.dropped,
            added: edit
                .added
                .iter()
                .map(|(level, file)| ManifestTable::new(*level, file))
                .collect(),
            removed: edit.removed.clone(),
        }
    }
}

/// A keyspace as the manifest's edits leave it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveKeyspace {
    /// Its id, which log records name it by.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Its tables, by file number.
    pub tables: Vec<ManifestTable>,
}

/// The live manifest of a database, the one `CURRENT` names, read whole.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Manifest {
    /// Its file number: the file is `MANIFEST-{number:06}`.
    pub number: u64,
    /// Its file's length in bytes.
    pub len: u64,
    /// Its edits in order, the first ones the snapshot it was created with.
    pub edits: Vec<ManifestEdit>,
    /// Where it stops short of its end, if it does (an edit whose append was cut by a
    /// crash, which was never installed).
    pub torn_tail: Option<TornTail>,
    /// Every keyspace the edits leave, with its tables, by id.
    pub keyspaces: Vec<LiveKeyspace>,
    /// The manifest's log number: the segments from it on hold the writes no table holds.
    pub log_number: u64,
}

/// Reads the manifest that `CURRENT` names in the database directory `dir`, and folds its
/// edits as an open does.
///
/// # Errors
/// [`Error::Io`] if `dir` holds no `CURRENT` or a file cannot be read;
/// [`Error::Corruption`] if `CURRENT`, the manifest or one of its edits is damaged (the
/// message names the offset), or the edits contradict each other.
pub fn read_manifest(dir: impl AsRef<Path>) -> Result<Manifest> {
    let dir = dir.as_ref();
    let Some(number) = read_current(&StdFs, dir)? else {
        return Err(no_database(dir));
    };
    let name = manifest_file_name(number);
    let data = read_file(&manifest_path(dir, number))?;
    let len = data.len() as u64;
    let replay = scan_log(data).map_err(|damage| damage.to_error(&name))?;
    let mut recovered = Recovered::default();
    let mut edits = Vec::with_capacity(replay.records.len());
    for (offset, record) in replay_records(&replay) {
        let at = |err: Error| {
            Error::corruption(format!(
                "{name}, the record at offset {offset}: {}",
                corruption_message(&err)
            ))
        };
        let edit = VersionEdit::decode(record).map_err(at)?;
        edits.push(ManifestEdit::new(offset, &edit));
        recovered.apply(edit).map_err(at)?;
    }
    if edits.is_empty() {
        return Err(Error::corruption(format!(
            "{name} holds no complete record, not even its initial snapshot"
        )));
    }
    Ok(Manifest {
        number,
        len,
        edits,
        torn_tail: torn_tail(&replay),
        keyspaces: live_keyspaces(&recovered),
        log_number: recovered.log_number,
    })
}

fn live_keyspaces(recovered: &Recovered) -> Vec<LiveKeyspace> {
    recovered
        .keyspaces
        .iter()
        .map(|(&id, keyspace)| LiveKeyspace {
            id,
            name: keyspace.name.clone(),
            tables: keyspace
                .tables
                .values()
                .map(|(level, file)| ManifestTable::new(*level, file))
                .collect(),
        })
        .collect()
}

/// One entry of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableEntry {
    /// Its internal key.
    pub key: TableKey,
    /// Its value (empty for a tombstone).
    pub value: Bytes,
}

/// One fragment of a table's range tombstones: the keys `[start, end)` and the sequence
/// numbers of the range deletions covering them, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RangeTombstoneFragment {
    /// The first key covered.
    pub start: Bytes,
    /// The first key past the fragment (`None`: no upper bound).
    pub end: Option<Bytes>,
    /// The covering sequence numbers, newest first.
    pub seqnos: Vec<u64>,
}

/// A table file, opened: its properties and range tombstones, and its entries through
/// [`TableContents::iter`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TableContents {
    /// The file, as it was named to [`read_table`].
    pub file: String,
    /// The file's length in bytes.
    pub len: u64,
    /// Its data blocks.
    pub data_blocks: usize,
    /// Its point entries (every version, tombstones included), as its properties say.
    pub entries: u64,
    /// Its smallest internal key, range tombstones included.
    pub smallest: TableKey,
    /// Its largest internal key, range tombstones included.
    pub largest: TableKey,
    /// Its smallest sequence number.
    pub min_seqno: u64,
    /// Its largest sequence number.
    pub max_seqno: u64,
    /// Its range tombstones, fragmented.
    pub range_tombstones: Vec<RangeTombstoneFragment>,
    table: Table,
}

impl TableContents {
    /// Every entry of the table in internal-key order (user key ascending, newest version
    /// first), each data block checked as it is read.
    ///
    /// # Errors
    /// Each item: [`Error::Corruption`] naming the data block's offset if it is damaged;
    /// the iteration ends after an error.
    pub fn iter(&self) -> impl Iterator<Item = Result<TableEntry>> + '_ {
        self.table
            .iter(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
            .map(|entry| {
                entry
                    .map(|(key, value)| TableEntry {
                        key: TableKey::from(&key),
                        value,
                    })
                    .map_err(|err| table_error(&self.file, &err))
            })
    }
}

/// Opens the table file at `path`, checking its footer and meta blocks.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Corruption`] naming the damaged
/// structure and its offset.
pub fn read_table(path: impl AsRef<Path>) -> Result<TableContents> {
    let path = path.as_ref();
    let file = path.display().to_string();
    let data = read_file(path)?;
    let len = data.len() as u64;
    let table = Table::open(data).map_err(|err| table_error(&file, &err))?;
    let meta = table.meta();
    Ok(TableContents {
        len,
        data_blocks: table.data_blocks(),
        entries: meta.entries,
        smallest: TableKey::from(&meta.smallest),
        largest: TableKey::from(&meta.largest),
        min_seqno: meta.min_seqno,
        max_seqno: meta.max_seqno,
        range_tombstones: table
            .range_tombstones()
            .fragments()
            .iter()
            .map(|fragment| RangeTombstoneFragment {
                start: fragment.start.clone(),
                end: fragment.end.clone(),
                seqnos: fragment.seqnos.clone(),
            })
            .collect(),
        file,
        table,
    })
}

/// The kinds of file [`Verifier`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FileType {
    /// `CURRENT`, which names the live manifest.
    Current,
    /// A manifest, `MANIFEST-000123`.
    Manifest,
    /// A log segment, `000123.log`.
    Log,
    /// A table, `000123.sst`.
    Table,
}

/// One damage [`Verifier`] found: the file, the byte offset of the damaged structure in it
/// (0 for a file that is missing or unreadable as a whole), and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Damage {
    /// The file's name in the database directory.
    pub file: String,
    /// The byte offset of the damaged structure.
    pub offset: u64,
    /// What is wrong.
    pub message: String,
}

/// What [`Verifier`] found in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileCheck {
    /// The file's name in the database directory.
    pub file: String,
    /// Its kind.
    pub kind: FileType,
    /// Its length in bytes, as read.
    pub len: u64,
    /// The structures read: data blocks of a table, records of a log or manifest.
    pub units: u64,
    /// What they hold: entries of a table's sound blocks, writes of a segment, edits of a
    /// manifest.
    pub entries: u64,
    /// Where a log or manifest stops short of its end, if it does; not damage.
    pub torn_tail: Option<TornTail>,
    /// Every damage found in it, in file order.
    pub damages: Vec<Damage>,
    /// Why the file was not checked, if it was not: it was removed after the directory
    /// was listed (by a process that has the database open).
    pub skipped: Option<String>,
}

/// What [`Verifier::run`] found in a database directory.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Every file checked: `CURRENT`, manifests, log segments, tables, each kind by number.
    pub files: Vec<FileCheck>,
    /// Damage to the database as a whole rather than in one file's bytes: a file the live
    /// manifest needs that is missing or has another size than it records, edits that
    /// contradict each other.
    pub database: Vec<Damage>,
    /// Files the live manifest does not need, which the next open removes: tables it does
    /// not list, other manifests, segments below its log number.
    pub obsolete: Vec<String>,
    /// The bytes read.
    pub bytes: u64,
}

impl VerifyReport {
    /// Every damage, those of each file in file order, then those of the database.
    pub fn damages(&self) -> impl Iterator<Item = &Damage> {
        self.files
            .iter()
            .flat_map(|file| &file.damages)
            .chain(&self.database)
    }

    /// Whether nothing is damaged.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.damages().next().is_none()
    }
}

/// Checks every file of a database directory, read-only: every table (every data block's
/// checksum and entries, its meta blocks and footer), every log segment (every record's
/// framing and write batch) and every manifest (every record's framing and version edit),
/// then the live manifest's view of the directory (every table it lists is there with the
/// size it records, and the log it needs). Files are checked on several threads.
///
/// A process may hold the database open meanwhile: its newest segment's unwritten tail
/// reads as a torn tail, and a file it removes after the listing is reported as skipped.
#[derive(Debug)]
pub struct Verifier {
    dir: PathBuf,
    /// The files to check: name, kind, number (0 for `CURRENT`), length when listed.
    files: Vec<(String, FileType, u64, u64)>,
    threads: usize,
}

impl Verifier {
    /// Lists the database directory `dir`.
    ///
    /// # Errors
    /// [`Error::Io`] if `dir` cannot be listed, or holds no database file at all.
    pub fn new(dir: impl AsRef<Path>) -> Result<Verifier> {
        let dir = dir.as_ref().to_path_buf();
        let names = StdFs
            .list_dir(&dir)
            .map_err(|err| Error::io(format_args!("listing {}", dir.display()), err))?;
        let mut files = Vec::new();
        for name in names {
            let (kind, number) = match parse_file_name(&name) {
                Some(FileKind::Current) => (FileType::Current, 0),
                Some(FileKind::Manifest(n)) => (FileType::Manifest, n),
                Some(FileKind::Log(n)) => (FileType::Log, n),
                Some(FileKind::Table(n)) => (FileType::Table, n),
                _ => continue,
            };
            // A file removed since the listing is reported as skipped when it is read.
            let len = StdFs.file_size(&dir.join(&name)).unwrap_or(0);
            files.push((name, kind, number, len));
        }
        if files.is_empty() {
            return Err(no_database(&dir));
        }
        files.sort_by_key(|&(_, kind, number, _)| (kind, number));
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(Verifier {
            dir,
            files,
            threads,
        })
    }

    /// Checks files on `threads` threads (at least 1; default: one per core).
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Verifier {
        self.threads = threads.max(1);
        self
    }

    /// The total length of the files to check, as listed: what the `progress` calls of
    /// [`Verifier::run`] add up to if no file changes meanwhile.
    #[must_use]
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|file| file.3).sum()
    }

    /// Checks every file and returns what was found. `progress` is called, from the
    /// checking threads, with the bytes each step covered.
    pub fn run(self, progress: impl Fn(u64) + Sync) -> VerifyReport {
        let checked = self.check_files(&progress);
        let mut files = Vec::with_capacity(checked.len());
        let mut current_manifest = None;
        let mut edits = None;
        for (at, check) in checked.into_iter().enumerate() {
            let (_, kind, number, _) = &self.files[at];
            match check.manifest {
                Some(manifest) if *kind == FileType::Manifest => {
                    edits
                        .get_or_insert_with(BTreeMap::new)
                        .insert(*number, manifest);
                }
                _ => {}
            }
            if let Some(number) = check.current {
                current_manifest = Some(number);
            }
            files.push(check.check);
        }
        let mut report = VerifyReport {
            bytes: files.iter().map(|file| file.len).sum(),
            files,
            database: Vec::new(),
            obsolete: Vec::new(),
        };
        let mut edits = edits.unwrap_or_default();
        self.check_database(&mut report, current_manifest, &mut edits);
        report
    }

    /// Checks every file on the threads, largest first so that they finish together;
    /// the results are in the order of `self.files`.
    fn check_files(&self, progress: &(impl Fn(u64) + Sync)) -> Vec<Checked> {
        let mut order: Vec<usize> = (0..self.files.len()).collect();
        order.sort_by_key(|&at| std::cmp::Reverse(self.files[at].3));
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Checked>>> =
            Mutex::new((0..self.files.len()).map(|_| None).collect());
        let work = || {
            while let Some(&at) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                let (name, kind, _, _) = &self.files[at];
                let checked = check_file(&self.dir, name, *kind, progress);
                if let Ok(mut results) = results.lock()
                    && let Some(slot) = results.get_mut(at)
                {
                    *slot = Some(checked);
                }
            }
        };
        let threads = self.threads.min(self.files.len()).max(1);
        std::thread::scope(|scope| {
            for _ in 1..threads {
                scope.spawn(work);
            }
            work();
        });
        let results = results
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        results
            .into_iter()
            .zip(&self.files)
            .map(|(checked, (name, kind, _, _))| {
                // A slot stays empty only if its thread panicked, which a check never does.
                checked.unwrap_or_else(|| Checked::new(name, *kind))
            })
            .collect()
    }

    /// The checks of the directory as a whole, from the live manifest's edits: the files
    /// it needs are there, with the sizes it records.
    fn check_database(
        &self,
        report: &mut VerifyReport,
        current: Option<u64>,
        edits: &mut BTreeMap<u64, Vec<(u64, VersionEdit)>>,
    ) {
        let listed = |kind: FileType, number: u64| {
            report
                .files
                .iter()
                .find(|file| file.kind == kind && parse_number_of(&file.file) == Some(number))
        };
        let has_current = report.files.iter().any(|f| f.kind == FileType::Current);
        let Some(number) = current else {
            if !has_current && report.files.iter().any(|f| f.kind == FileType::Table) {
                report.database.push(Damage {
                    file: "CURRENT".to_owned(),
                    offset: 0,
                    message: "CURRENT is missing but the directory holds tables".to_owned(),
                });
            }
            return;
        };
        let name = manifest_file_name(number);
        if listed(FileType::Manifest, number).is_none() {
            report.database.push(Damage {
                file: "CURRENT".to_owned(),
                offset: 0,
                message: format!("CURRENT names {name}, which is missing"),
            });
            return;
        }
        let Some(edits) = edits.remove(&number) else {
            // The manifest's own check reported why its edits could not be read.
            return;
        };
        let mut recovered = Recovered::default();
        for (offset, edit) in edits {
            if let Err(err) = recovered.apply(edit) {
                report.database.push(Damage {
                    file: name.clone(),
                    offset,
                    message: corruption_message(&err),
                });
                return;
            }
        }
        let mut needed = Vec::new();
        for (_, (level, table)) in recovered.tables() {
            let file = table_file_name(table.number);
            needed.push(file.clone());
            match listed(FileType::Table, table.number) {
                None => report.database.push(Damage {
                    file,
                    offset: 0,
                    message: format!("{name} lists it at level {level}, but it is missing"),
                }),
                Some(check) if check.skipped.is_none() && check.len != table.size => {
                    report.database.push(Damage {
                        file,
                        offset: 0,
                        message: format!(
                            "it has {} bytes, but {name} records {}",
                            check.len, table.size
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        let log_number = recovered.log_number;
        if log_number > 0 && listed(FileType::Log, log_number).is_none() {
            report.database.push(Damage {
                file: log_file_name(log_number),
                offset: 0,
                message: format!("{name} needs it (its log number), but it is missing"),
            });
        }
        let manifest_number = number;
        for file in &report.files {
            let number = parse_number_of(&file.file);
            let obsolete = match file.kind {
                FileType::Current => false,
                FileType::Manifest => number != Some(manifest_number),
                FileType::Log => number.is_some_and(|n| n < log_number),
                FileType::Table => !needed.contains(&file.file),
            };
            if obsolete {
                report.obsolete.push(file.file.clone());
            }
        }
    }
}

/// The file number in the name of a manifest, log or table.
fn parse_number_of(name: &str) -> Option<u64> {
    match parse_file_name(name)? {
        FileKind::Manifest(n) | FileKind::Log(n) | FileKind::Table(n) => Some(n),
        _ => None,
    }
}

fn table_file_name(number: u64) -> String {
    file_name_of(&table_path(Path::new(""), number))
}

fn log_file_name(number: u64) -> String {
    file_name_of(&log_path(Path::new(""), number))
}

fn file_name_of(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What checking one file gave: the report, and for the database-wide checks the
/// manifest a `CURRENT` names or the edits of a manifest.
struct Checked {
    check: FileCheck,
    current: Option<u64>,
    manifest: Option<Vec<(u64, VersionEdit)>>,
}

impl Checked {
    fn new(name: &str, kind: FileType) -> Checked {
        Checked {
            check: FileCheck {
                file: name.to_owned(),
                kind,
                len: 0,
                units: 0,
                entries: 0,
                torn_tail: None,
                damages: Vec::new(),
                skipped: None,
            },
            current: None,
            manifest: None,
        }
    }

    fn damage(&mut self, offset: u64, message: impl Into<String>) {
        self.check.damages.push(Damage {
            file: self.check.file.clone(),
            offset,
            message: message.into(),
        });
    }
}

/// The bytes of progress reported at once: per data block would be a call every 4 KiB.
const PROGRESS_STEP: u64 = 1 << 20;

/// Checks the file `name` of `dir`.
fn check_file(dir: &Path, name: &str, kind: FileType, progress: &impl Fn(u64)) -> Checked {
    let mut checked = Checked::new(name, kind);
    let path = dir.join(name);
    if kind == FileType::Current {
        match read_current(&StdFs, dir) {
            Ok(number) => checked.current = number,
            Err(err) => checked.damage(0, corruption_message(&err)),
        }
        checked.check.len = StdFs.file_size(&path).unwrap_or(0);
        progress(checked.check.len);
        return checked;
    }
    let data = match StdFs.read(&path) {
        Ok(data) => Bytes::from(data),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            checked.check.skipped = Some("removed after the directory was listed".to_owned());
            return checked;
        }
        Err(err) => {
            checked.damage(0, format!("cannot be read: {err}"));
            return checked;
        }
    };
    checked.check.len = data.len() as u64;
    match kind {
        FileType::Table => {
            let mut pending = 0;
            let found = Table::verify(data, |bytes| {
                pending += bytes;
                if pending >= PROGRESS_STEP {
                    progress(std::mem::take(&mut pending));
                }
            });
            progress(pending);
            checked.check.units = found.data_blocks;
            checked.check.entries = found.entries;
            for damage in found.damages {
                checked.damage(damage.offset, sstable_message(&damage.error));
            }
        }
        FileType::Log | FileType::Manifest => {
            check_log(&mut checked, data, kind);
            progress(checked.check.len);
        }
        FileType::Current => {}
    }
    checked
}

/// Checks a log segment's or a manifest's framing, then each record as a write batch (in
/// sequence within the segment) or a version edit.
fn check_log(checked: &mut Checked, data: Bytes, kind: FileType) {
    let replay = match scan_log(data) {
        Ok(replay) => replay,
        Err(damage) => {
            let message = corruption_message(&damage.to_error(&checked.check.file));
            checked.damage(damage.offset, message);
            return;
        }
    };
    checked.check.units = replay.records.len() as u64;
    checked.check.torn_tail = torn_tail(&replay);
    if kind == FileType::Manifest {
        let mut edits = Vec::with_capacity(replay.records.len());
        for (offset, record) in replay_records(&replay) {
            match VersionEdit::decode(record) {
                Ok(edit) => edits.push((offset, edit)),
                Err(err) => {
                    checked.damage(offset, corruption_message(&err));
                    return;
                }
            }
        }
        if edits.is_empty() {
            checked.damage(
                0,
                "it holds no complete record, not even its initial snapshot",
            );
            return;
        }
        checked.check.entries = edits.len() as u64;
        checked.manifest = Some(edits);
        return;
    }
    let mut expected = None;
    for (offset, record) in replay_records(&replay) {
        match check_batch(record) {
            Ok((first, count)) => {
                if let Some(expected) = expected
                    && first != expected
                {
                    checked.damage(
                        offset,
                        format!(
                            "the batch has sequence number {first} where {expected} was expected"
                        ),
                    );
                }
                expected = first.checked_add(count);
                checked.check.entries += count;
            }
            Err(err) => checked.damage(offset, corruption_message(&err)),
        }
    }
}

/// The message of an error, without the "corruption: " of its `Display` for the kind
/// that every damage is.
fn corruption_message(err: &Error) -> String {
    match err {
        Error::Corruption { message } => message.clone(),
        other => other.to_string(),
    }
}

/// [`corruption_message`] for the table crate's error.
fn sstable_message(err: &floe_sstable::Error) -> String {
    match err {
        floe_sstable::Error::Corruption { message } => message.clone(),
        other => other.to_string(),
    }
}

/// The engine's error for a table crate's error from the table `file`.
fn table_error(file: &str, err: &floe_sstable::Error) -> Error {
    match err {
        floe_sstable::Error::Io(io_err) => Error::io(
            format_args!("table {file}"),
            io::Error::new(io_err.kind(), io_err.to_string()),
        ),
        other => Error::corruption(format!("table {file}: {}", sstable_message(other))),
    }
}

/// Reads the whole of `path`.
fn read_file(path: &Path) -> Result<Bytes> {
    StdFs
        .read(path)
        .map(Bytes::from)
        .map_err(|err| Error::io(format_args!("reading {}", path.display()), err))
}

/// The error for a directory that holds no database.
fn no_database(dir: &Path) -> Error {
    Error::io(
        format_args!("reading {}", current_path(dir).display()),
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} holds no floe database", dir.display()),
        ),
    )
}

#[cfg(test)]
#[expect(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "a test panics to fail"
)]
mod tests {
    use super::*;
    use crate::wal::encode_sealed_log;
    use crate::write::WriteBatch;

    /// The payloads of three batches, from sequence number 10: two puts, a delete, and a
    /// range deletion.
    fn payloads() -> Vec<Bytes> {
        let mut first = WriteBatch::new();
        first.put("a", "1");
        first.put("b", "2");
        first.set_seqno(10);
        let mut second = WriteBatch::new();
        second.delete("a");
        second.set_seqno(12);
        let mut third = WriteBatch::new();
        third.delete_range("c".."e");
        third.set_seqno(13);
        vec![
            first.into_payload(),
            second.into_payload(),
            third.into_payload(),
        ]
    }

    /// A directory holding one sealed segment of `records`, as `000007.log`.
    fn segment_dir(records: &[Bytes]) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let bytes = encode_sealed_log(records.iter().map(|r| &r[..]));
        let path = dir.path().join("000007.log");
        std::fs::write(&path, &bytes).unwrap();
        (dir, path, bytes)
    }

    #[test]
    fn a_segment_reads_back_with_offsets_and_writes() {
        let records = payloads();
        let (_dir, path, bytes) = segment_dir(&records);
        let segment = read_log_segment(&path).unwrap();
        assert_eq!(segment.len, bytes.len() as u64);
        assert_eq!(segment.torn_tail, None);
        // Small records lie end to end, each behind its 7-byte fragment header.
        let mut offset = 0;
        for (record, payload) in segment.records.iter().zip(&records) {
            assert_eq!(record.offset, offset);
            assert_eq!(record.len, payload.len() as u64);
            offset += 7 + payload.len() as u64;
        }
        assert_eq!(segment.durable_through, offset);
        let writes: Vec<(u64, WriteKind, &[u8], &[u8])> = segment
            .records
            .iter()
            .flat_map(|r| &r.writes)
            .map(|w| (w.seqno, w.kind, &w.key[..], &w.value[..]))
            .collect();
        assert_eq!(
            writes,
            [
                (10, WriteKind::Put, &b"a"[..], &b"1"[..]),
                (11, WriteKind::Put, b"b", b"2"),
                (12, WriteKind::Delete, b"a", b""),
                (13, WriteKind::DeleteRange, b"c", b"e"),
            ]
        );
    }

    #[test]
    fn verify_names_each_damaged_record_by_its_offset() {
        let records = payloads();
        let (dir, path, mut bytes) = segment_dir(&records);
        let clean = Verifier::new(dir.path()).unwrap().run(|_| {});
        assert!(clean.is_clean(), "{clean:?}");
        assert_eq!(clean.files[0].entries, 4);

        // A flipped payload byte of the second record: the sealing marker proves it synced.
        let second = 7 + records[0].len();
        bytes[second + 8] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        let report = Verifier::new(dir.path()).unwrap().threads(1).run(|_| {});
        let damages: Vec<(&str, u64)> = report
            .damages()
            .map(|d| (d.file.as_str(), d.offset))
            .collect();
        assert_eq!(damages, [("000007.log", second as u64)]);
        assert!(read_log_segment(&path).is_err());

        // A record that is sound framing but no write batch is damage at its offset.
        let mut garbled = records.clone();
        garbled[2] = Bytes::from_static(b"\x0d");
        let (dir, _, _) = segment_dir(&garbled);
        let report = Verifier::new(dir.path()).unwrap().run(|_| {});
        let third = 14 + records[0].len() + records[1].len();
        let damages: Vec<u64> = report.damages().map(|d| d.offset).collect();
        assert_eq!(damages, [third as u64]);
    }

    #[test]
    fn a_directory_without_database_files_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        assert!(matches!(Verifier::new(dir.path()), Err(Error::Io(_))));
        assert!(matches!(read_manifest(dir.path()), Err(Error::Io(_))));
    }
}
