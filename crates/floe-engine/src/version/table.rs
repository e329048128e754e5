//! The engine's side of the table files: a handle that owns one open table and deletes
//! its file once it is obsolete and no state refers to it, and a writer that builds a
//! table under a temporary name and renames it into place.

use std::fmt;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use floe_core::fs::FileSystem;
use floe_core::range_del::Fragments;
use floe_core::{InternalKey, SeqNo, ValueKind};
use floe_memtable::Lookup;
use floe_sstable::{BlockCache, Table, TableBuilder, TableOptions};

use crate::error::{Error, Result};
use crate::filename::{table_path, temp_table_path};
use crate::iter::BoxedSource;
use crate::options::DECOMPRESSED_CACHE_SIZE;
use crate::range_del::{lookup_of, weigh};
use crate::version::manifest::TableFile;

/// Converts a table-crate error into the engine's, naming the file it concerns.
fn table_error(file: &Path, err: floe_sstable::Error) -> Error {
    let name = file.display();
    match err {
        floe_sstable::Error::Io(io_err) => Error::io(format_args!("table {name}"), io_err),
        floe_sstable::Error::Corruption { message } => {
            Error::corruption(format!("table {name}: {message}"))
        }
        floe_sstable::Error::InvalidArgument { message } => {
            Error::invalid(format!("table {name}: {message}"))
        }
        other => Error::corruption(format!("table {name}: {other}")),
    }
}

/// One open, immutable table file, shared by every state that lists it.
///
/// The file is deleted when the handle is dropped after [`TableHandle::mark_obsolete`]:
/// a compaction marks its inputs obsolete once the state without them is installed, and
/// the last iterator or state still reading them drops the final reference. Until then
/// the file stays, so nothing is ever read from a deleted table.
pub(crate) struct TableHandle {
    /// What the manifest records about the table.
    pub(crate) file: TableFile,
    table: Table,
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
    obsolete: AtomicBool,
}

impl fmt::Debug for TableHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableHandle")
            .field("number", &self.file.number)
            .field("size", &self.file.size)
            .finish_non_exhaustive()
    }
}

/// How a database reads its tables (see `Options::block_cache_size`).
#[derive(Debug)]
pub(crate) enum TableReads {
    /// Mapped into memory whole: zero-copy reads from the operating system's page cache,
    /// with compressed blocks kept decompressed in a cache of
    /// [`crate::options::DECOMPRESSED_CACHE_SIZE`] bytes. A disk that fails under a mapping
    /// is a `SIGBUS`, not an error.
    Mapped(BlockCache),
    /// Positional reads of data blocks into a block cache of a byte budget; a failing
    /// read is an error.
    Cached(BlockCache),
}

impl TableReads {
    /// The reads `block_cache_size` asks for: mapped without a cache.
    pub(crate) fn new(block_cache_size: Option<usize>) -> TableReads {
        match block_cache_size {
            None => TableReads::Mapped(BlockCache::new(DECOMPRESSED_CACHE_SIZE)),
            Some(bytes) => TableReads::Cached(BlockCache::new(bytes)),
        }
    }

    /// The block cache's bytes held and capacity (for mapped tables, the cache of
    /// decompressed blocks).
    pub(crate) fn cache_usage(&self) -> (u64, u64) {
        match self {
            TableReads::Mapped(cache) | TableReads::Cached(cache) => {
                (cache.bytes(), cache.capacity())
            }
        }
    }
}

impl TableHandle {
    /// Opens the table the manifest describes as `file`, mapped or for positional reads
    /// through the block cache as `reads` says. A missing file, a size that differs from
    /// the manifest's, or a damaged table is [`Error::Corruption`]; a failing read is
    /// [`Error::Io`].
    pub(crate) fn open(
        fs: &Arc<dyn FileSystem>,
        reads: &TableReads,
        dir: &Path,
        file: TableFile,
    ) -> Result<Arc<TableHandle>> {
        let path = table_path(dir, file.number);
        let missing = || {
            Error::corruption(format!(
                "table {} that the manifest lists is missing",
                path.display()
            ))
        };
        let wrong_size = |len: u64| {
            Error::corruption(format!(
                "table {} is {len} bytes long but the manifest says {}",
                path.display(),
                file.size
            ))
        };
        let table = match reads {
            TableReads::Mapped(cache) => {
                let bytes = match fs.map(&path) {
                    Ok(bytes) => bytes,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(missing()),
                    Err(err) => {
                        return Err(Error::io(format_args!("mapping {}", path.display()), err));
                    }
                };
                if bytes.len() as u64 != file.size {
                    return Err(wrong_size(bytes.len() as u64));
                }
                Table::open_mapped(bytes, cache).map_err(|err| table_error(&path, err))?
            }
            TableReads::Cached(cache) => {
                let reader = match fs.open_read(&path) {
                    Ok(reader) => reader,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(missing()),
                    Err(err) => {
                        return Err(Error::io(format_args!("opening {}", path.display()), err));
                    }
                };
                if reader.len() != file.size {
                    return Err(wrong_size(reader.len()));
                }
                Table::open_file(reader, cache).map_err(|err| table_error(&path, err))?
            }
        };
        Ok(Arc::new(TableHandle {
            file,
            table,
            path,
            fs: Arc::clone(fs),
            obsolete: AtomicBool::new(false),
        }))
    }

    /// The table's file number.
    pub(crate) fn number(&self) -> u64 {
        self.file.number
    }

    /// Whether `user_key` lies within the table's key range.
    pub(crate) fn covers(&self, user_key: &[u8]) -> bool {
        self.file.smallest.user_key.as_ref() <= user_key
            && user_key <= self.file.largest.user_key.as_ref()
    }

    /// The newest version of `user_key` at or below `snapshot` that the table holds, as a
    /// point lookup across sources sees it: `covering` is the newest range tombstone over
    /// the key met in the newer sources, and this table's own raise it. `None` if the
    /// lookup must go on to older sources (see [`crate::range_del::weigh`]).
    pub(crate) fn lookup(
        &self,
        user_key: &[u8],
        snapshot: SeqNo,
        covering: &mut Option<SeqNo>,
    ) -> Result<Option<Lookup>> {
        if !self.covers(user_key) {
            return Ok(None);
        }
        let ranges = self.table.range_tombstones();
        if !ranges.is_empty() {
            *covering = (*covering).max(ranges.max_covering(user_key, snapshot));
        }
        let version = self
            .table
            .get_version(user_key, snapshot)
            .map_err(|err| table_error(&self.path, err))?;
        Ok(weigh(
            version.map(|(seqno, kind, value)| (seqno, lookup_of(kind, value))),
            *covering,
        ))
    }

    /// The newest version of `user_key` at or below `snapshot` in the points of the table,
    /// range tombstones left aside (for a caller that knows the tree has none).
    pub(crate) fn get(
        &self,
        user_key: &[u8],
        snapshot: SeqNo,
    ) -> Result<Option<(ValueKind, Bytes)>> {
        if !self.covers(user_key) {
            return Ok(None);
        }
        self.table
            .get(user_key, snapshot)
            .map_err(|err| table_error(&self.path, err))
    }

    /// The bytes the open table holds outside the block cache (index, filter, range
    /// tombstones).
    pub(crate) fn pinned_bytes(&self) -> usize {
        self.table.pinned_bytes()
    }

    /// The table's range tombstones.
    pub(crate) fn range_tombstones(&self) -> &Fragments {
        self.table.range_tombstones()
    }

    /// Every version of the keys within the bounds, in internal-key order.
    pub(crate) fn source(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> BoxedSource {
        let path = self.path.clone();
        Box::new(
            self.table
                .iter(lower, upper)
                .map(move |item| item.map_err(|err| table_error(&path, err))),
        )
    }

    /// Marks the file for deletion once the last reference to this handle is gone.
    pub(crate) fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }
}

impl Drop for TableHandle {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            // Best effort: a file that cannot be removed now is an orphan that the next
            // open removes, since the manifest no longer lists it.
            let removed = self.fs.remove_file(&self.path);
            crate::events::trace_event!(
                debug,
                file = %self.path.display(),
                removed = removed.is_ok(),
                "obsolete table deleted"
            );
            let _ = removed;
        }
    }
}

/// Builds one table under a temporary name; [`TableWriter::finish`] syncs it and renames it
/// into place. The caller syncs the directory before recording the table in the manifest.
///
/// A writer dropped before `finish` succeeds (a flush or compaction that failed, or a
/// compaction abandoned because the database is closing) closes and removes its temporary
/// file, best effort; one left behind by a crash is an orphan the next open removes.
pub(crate) struct TableWriter {
    /// `None` once `finish` has consumed it.
    builder: Option<TableBuilder>,
    number: u64,
    temp: PathBuf,
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    /// Set once the temporary file has become the table: nothing is left to clean up.
    installed: bool,
}

impl TableWriter {
    /// Starts table `number` in `dir`.
    pub(crate) fn create(
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        number: u64,
        options: TableOptions,
    ) -> Result<TableWriter> {
        let temp = temp_table_path(dir, number);
        let file = fs
            .create(&temp)
            .map_err(|err| Error::io(format_args!("creating {}", temp.display()), err))?;
        Ok(TableWriter {
            builder: Some(TableBuilder::new(file, options)),
            number,
            temp,
            dir: dir.to_path_buf(),
            fs: Arc::clone(fs),
            installed: false,
        })
    }

    fn builder(&mut self) -> &mut TableBuilder {
        self.builder
            .as_mut()
            .expect("the builder is only taken by finish, which consumes the writer")
    }

    /// Sets the range tombstones the table holds (every end finite), replacing any set
    /// before.
    pub(crate) fn set_range_tombstones(&mut self, fragments: Fragments) -> Result<()> {
        let result = self.builder().set_range_tombstones(fragments);
        result.map_err(|err| table_error(&self.temp, err))
    }

    /// Appends one entry; entries must come in strictly increasing internal-key order.
    pub(crate) fn add(&mut self, key: &InternalKey, value: &[u8]) -> Result<()> {
        let result = self.builder().add(key, value);
        result.map_err(|err| table_error(&self.temp, err))
    }

    /// Bytes written so far, for cutting output files at a target size.
    pub(crate) fn estimated_size(&self) -> u64 {
        self.builder
            .as_ref()
            .map_or(0, TableBuilder::estimated_size)
    }

    /// Finishes and syncs the table, renames it to its final name, and returns what the
    /// manifest records about it. The directory is not synced here. On failure the
    /// temporary file is removed as the writer drops.
    pub(crate) fn finish(mut self) -> Result<TableFile> {
        let builder = self.builder.take().expect("finish runs once");
        let meta = builder
            .finish()
            .map_err(|err| table_error(&self.temp, err))?;
        let path = table_path(&self.dir, self.number);
        self.fs
            .rename(&self.temp, &path)
            .map_err(|err| Error::io(format_args!("renaming {}", self.temp.display()), err))?;
        self.installed = true;
        Ok(TableFile {
            number: self.number,
            size: meta.file_size,
            entries: meta.entries,
            smallest: meta.smallest,
            largest: meta.largest,
            min_seqno: meta.min_seqno,
            max_seqno: meta.max_seqno,
        })
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        if !self.installed {
            // Close the file before removing it.
            drop(self.builder.take());
            let _ = self.fs.remove_file(&self.temp);
        }
    }
}
