//! Opening a database read-only: the last durable state, read without writing, creating,
//! renaming or deleting any file, and without taking the directory lock.
//!
//! It reads what a writable open reads, with the same functions: `CURRENT`, the manifest
//! it names, the tables the manifest lists and the log segments it needs, with the same
//! tolerance of a torn tail. It leaves out every step that changes the directory: no lock,
//! no removal of orphans, no flush of the replay, no new segment or manifest. The replayed
//! writes of each keyspace go into one memtable instead, frozen and held as the
//! keyspace's one frozen memtable, which no flush ever takes (a read-only database runs no
//! background work); reads see it as they see any memtable waiting for its flush.
//!
//! Every file is reached through [`ReadOnlyFs`], which refuses each call that would change
//! the directory, and the core is built read-only, so that every write, flush, compaction
//! and keyspace change is refused with [`Error::ReadOnly`] before it tries one.
//!
//! Another process may hold the database open for writing meanwhile. The tail of its
//! active segment may be half written, which reads as the torn tail a crash leaves. Every
//! segment the listing of the directory shows but the newest was complete before the
//! newest was created, so before the listing: what is replayed is a prefix of the log that
//! holds every write acknowledged before the open began. Between reading the manifest and
//! reading the files it names, the writer may delete some of them: a flush the segments it
//! made obsolete, a compaction its inputs, a new manifest the old one, a writable open its
//! orphans and replayed segments. So an attempt that fails while the directory changed
//! under it (its names, `CURRENT` or the manifest's length) starts again, up to
//! [`ATTEMPTS`] times; one that fails on a directory that stayed as it was reports its
//! error.

use std::io;
use std::path::Path;
use std::sync::Arc;

use floe_core::fs::FileSystem;
use floe_memtable::{Memtable, charge};

use super::read_only_fs::{ReadOnlyFs, RefusedFile};
use super::{Replayed, classify_files, file_system, open_tables, read_manifest, replay_segments};
use crate::error::{Error, Result};
use crate::filename::{current_path, manifest_path};
use crate::options::Options;
use crate::shared::{Opened, Shared};
use crate::stats::Counters;
use crate::version::TableReads;
use crate::version::manifest::{ManifestWriter, read_current};
use crate::version::{FrozenMem, Tree, version_from};
use crate::wal::LogWriter;

/// How many times a read-only open reads the database before it gives up on one that
/// keeps changing under it.
const ATTEMPTS: usize = 16;

/// Opens the database in `dir` read-only (see the module docs).
pub(crate) fn open_read_only(dir: &Path, options: Options) -> Result<Shared> {
    options.validate()?;
    let fs: Arc<dyn FileSystem> = Arc::new(ReadOnlyFs::new(file_system(&options)));
    if let Err(err) = fs.list_dir(dir) {
        return Err(Error::io(
            format_args!("opening {} read-only", dir.display()),
            err,
        ));
    }
    let mut attempt = 1;
    loop {
        let before = Mark::of(&*fs, dir);
        match read_database(&fs, dir, &options) {
            Ok(opened) => return Ok(Shared::new(opened)),
            Err(_) if attempt < ATTEMPTS && Mark::of(&*fs, dir) != before => attempt += 1,
            Err(err) => return Err(err),
        }
    }
}

/// What tells whether the directory changed: its file names, the manifest `CURRENT`
/// names and that manifest's length (which every edit grows).
#[derive(Debug, PartialEq, Eq)]
struct Mark {
    names: Option<Vec<String>>,
    current: Option<Vec<u8>>,
    manifest_len: Option<u64>,
}

impl Mark {
    fn of(fs: &dyn FileSystem, dir: &Path) -> Mark {
        let manifest_len = read_current(fs, dir)
            .ok()
            .flatten()
            .and_then(|number| fs.file_size(&manifest_path(dir, number)).ok());
        Mark {
            names: fs.list_dir(dir).ok(),
            current: fs.read(&current_path(dir)).ok(),
            manifest_len,
        }
    }
}

/// Reads the database in `dir` once: the steps of a writable open up to the replay, and
/// the replay into one frozen memtable per keyspace.
fn read_database(fs: &Arc<dyn FileSystem>, dir: &Path, options: &Options) -> Result<Opened> {
    let (manifest, recovered) = read_manifest(&**fs, dir)?;
    // Without `CURRENT` a directory that holds a table is corruption, as for open.
    let logs = classify_files(&**fs, dir, manifest, &recovered)?;
    let Some(manifest) = manifest else {
        return Err(Error::io(
            format_args!("opening {} read-only", dir.display()),
            io::Error::new(
                io::ErrorKind::NotFound,
                "it holds no database (no CURRENT file); a writable open creates one",
            ),
        ));
    };
    let table_reads = TableReads::new(options.block_cache_size);
    let mut tables = open_tables(fs, &table_reads, dir, &recovered)?;
    let replay = replay_segments(&**fs, dir, &logs, &recovered)?;
    let log_number = logs.last().copied().unwrap_or(recovered.log_number);
    let mut replayed = replay.entries;
    let mut trees = Vec::with_capacity(recovered.keyspaces.len());
    for (&id, keyspace) in &recovered.keyspaces {
        let tree_options = match &keyspace.options {
            None => options.clone(),
            Some(persisted) => persisted.resolve(options)?,
        };
        let levels = tables.remove(&id).unwrap_or_default();
        let mut tree = Tree::new(
            id,
            &keyspace.name,
            Arc::new(tree_options),
            version_from(levels),
        );
        let entries = replayed.remove(&id).unwrap_or_default();
        if let Some(mem) = replayed_memtable(&keyspace.name, &entries)? {
            tree.frozen.push(FrozenMem {
                mem: Arc::new(mem),
                keyspace: id,
                first_log: recovered.replay_from(id).unwrap_or(log_number),
                end_log: log_number.saturating_add(1),
            });
        }
        trees.push(Arc::new(tree));
    }
    Ok(Opened {
        dir: dir.to_path_buf(),
        fs: Arc::clone(fs),
        table_reads,
        options: options.clone(),
        dir_lock: None,
        read_only: true,
        trees,
        log: LogWriter::new(RefusedFile::boxed("the log")),
        log_number,
        manifest: ManifestWriter::read_only(manifest, RefusedFile::boxed("the manifest")),
        next_keyspace_id: recovered.next_keyspace_id,
        last_seqno: replay.last_seqno,
        next_file_number: recovered.next_file_number,
        counters: Counters::default(),
    })
}

/// A frozen memtable holding the replayed writes of keyspace `keyspace`; `None` if there
/// are none. Its capacity is what they charge, so every one is admitted; one the memtable
/// cannot hold (a sequence number or length beyond its limits, which no write the engine
/// logs has) is [`Error::Corruption`].
fn replayed_memtable(keyspace: &str, replayed: &Replayed) -> Result<Option<Memtable>> {
    if replayed.is_empty() {
        return Ok(None);
    }
    let capacity = replayed
        .points
        .iter()
        .map(|(key, value)| charge(&key.user_key, value))
        .fold(0, usize::saturating_add);
    let mem = Memtable::new(capacity);
    let damaged = |err: floe_memtable::Error| {
        Error::corruption(format!(
            "the log holds a write of keyspace {keyspace:?} that cannot be replayed: {err}"
        ))
    };
    {
        let writer = mem.enter().map_err(damaged)?;
        for (key, value) in &replayed.points {
            writer
                .insert(&key.user_key, key.seqno, key.kind, value)
                .map_err(damaged)?;
        }
        for range in &replayed.ranges {
            writer.insert_range_tombstone(&range.start, range.end.as_deref(), range.seqno);
        }
    }
    mem.freeze();
    Ok(Some(mem))
}
