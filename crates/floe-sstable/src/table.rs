//! The table reader: validates a table's footer and meta blocks on open, then answers
//! point lookups and hands out iterators, reading data blocks from the table's source:
//! bytes in memory, or a file read with positional reads through a [`BlockCache`].

use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use floe_core::fs::RandomAccessFile;
use floe_core::range_del::Fragments;
use floe_core::{InternalKey, MAX_SEQNO, SeqNo, ValueKind, pack_trailer, unpack_trailer};

use crate::block::{Block, BlockRef, PointSeek, Target};
use crate::bloom::Filter;
use crate::cache::BlockCache;
use crate::compression::decompress;
use crate::error::{Error, Result};
use crate::format::{
    BlockHandle, BlockType, COMPRESSION_VERSION, FOOTER_LEN, FRAME_OVERHEAD, Footer,
    RANGE_TOMBSTONE_VERSION, check_data_frame_in, check_frame_in, compare_encoded,
    parse_internal_key, too_short,
};
use crate::index::Index;
use crate::iter::TableIter;
use crate::prefetch::prefetch;
use crate::properties::{Properties, TableMeta};
use crate::range_block;

/// An open table: immutable, cheap to clone, `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Table {
    inner: Arc<TableInner>,
}

pub(crate) struct TableInner {
    /// Where the data blocks are read from.
    source: Source,
    pub(crate) index: Index,
    filter: Filter,
    meta: TableMeta,
    range_tombstones: Fragments,
    /// The bytes of memory the decoded index, the filter and the range tombstones hold.
    pinned: usize,
    /// Whether data blocks may be compressed (format version 3 on).
    compressed_ok: bool,
}

/// Where a table's data blocks come from.
enum Source {
    /// The whole file in memory.
    Memory {
        file: Bytes,
        /// Two bits per data block (block `i` at bits `2i` and `2i + 1` of the words):
        /// [`VERIFIED`] once the block's checksum has been verified, and [`COMPRESSED`]
        /// with it if the block is compressed. The bytes never change, so a block verified
        /// once stays verified.
        verified: Box<[AtomicU64]>,
        /// Where decompressed blocks are kept, with the table's key in it; without one,
        /// a compressed block is decompressed at every read.
        cache: Option<(BlockCache, u64)>,
    },
    /// A file read block by block, each block verified as it enters the cache.
    File {
        file: Arc<dyn RandomAccessFile>,
        cache: BlockCache,
        /// The table's key in the cache.
        id: u64,
    },
}

/// The bit of a block in [`Source::Memory`]'s `verified` words that says its checksum
/// was verified.
const VERIFIED: u64 = 1;

/// The bit beside [`VERIFIED`] that says the block is compressed.
const COMPRESSED: u64 = 2;

/// The [`COMPRESSED`] bits of all 32 blocks of a word.
const COMPRESSED_BITS: u64 = 0xAAAA_AAAA_AAAA_AAAA;

/// Where a verified data block's contents lie in a table's bytes in memory.
enum Stored {
    /// The block itself.
    Raw(Range<usize>),
    /// Its compressed contents.
    Compressed(Range<usize>),
}

/// A data block read for one point lookup (see [`TableInner::point_block`]).
enum PointBlock<'a> {
    /// A range of the table's bytes in memory.
    Borrowed {
        file: &'a Bytes,
        range: Range<usize>,
    },
    /// A block of the cache.
    Cached(Bytes),
}

impl PointBlock<'_> {
    /// The block's contents.
    fn bytes(&self) -> &[u8] {
        match self {
            PointBlock::Borrowed { file, range } => file.get(range.clone()).unwrap_or_default(),
            PointBlock::Cached(block) => block,
        }
    }

    /// The bytes at `within` (a range of the contents) as shared bytes.
    fn slice(&self, within: Range<usize>) -> Bytes {
        match self {
            PointBlock::Borrowed { file, range } => {
                file.slice(range.start + within.start..range.start + within.end)
            }
            PointBlock::Cached(block) => block.slice(within),
        }
    }
}

/// What the meta blocks of a table decode to.
struct Parts {
    index: Index,
    filter: Filter,
    meta: TableMeta,
    range_tombstones: Fragments,
    pinned: usize,
    compressed_ok: bool,
}

impl Table {
    /// Opens the table whose whole file is `file`, bytes in memory (tests, fuzzing, or a
    /// file read whole).
    ///
    /// Checks the footer, the layout of every block handle against the file's length,
    /// and the checksums and structure of the index, filter, range tombstone and
    /// properties blocks; data blocks are checked when first read. Reads format versions 1
    /// to 3. Every offset is checked against the length of the bytes, so no input can
    /// make the reader read outside them. A compressed data block is decompressed at
    /// every read; [`Table::open_mapped`] keeps them in a cache.
    ///
    /// # Errors
    /// `Corruption` naming the damaged structure and its offset.
    pub fn open(file: Bytes) -> Result<Table> {
        Table::open_memory(file, None)
    }

    /// [`Table::open`] for bytes that stay in memory for the table's life (a mapped file):
    /// raw data blocks are read where they lie, and compressed ones, once decompressed,
    /// are kept in `cache` while it has room.
    ///
    /// # Errors
    /// As for [`Table::open`].
    pub fn open_mapped(file: Bytes, cache: &BlockCache) -> Result<Table> {
        Table::open_memory(file, Some(cache))
    }

    fn open_memory(file: Bytes, cache: Option<&BlockCache>) -> Result<Table> {
        let footer = Footer::decode(&file)?;
        let parts = Parts::decode(&file, 0, file.len() as u64, &footer)?;
        let verified = (0..parts.index.len().div_ceil(32))
            .map(|_| AtomicU64::new(0))
            .collect();
        let cache = cache.map(|cache| (cache.clone(), cache.next_table_id()));
        Ok(Table::from_parts(
            parts,
            Source::Memory {
                file,
                verified,
                cache,
            },
        ))
    }

    /// Opens the table in `file`, read with positional reads: the footer and the meta
    /// blocks (filter, range tombstones, index, properties) at once, in one read, kept in
    /// memory for the table's life; data blocks on demand, each verified once as it
    /// enters `cache` and served from there while it stays.
    ///
    /// A failing read (now or on a later lookup) is an error, never a crash: `Io` with
    /// the device's error, or `Corruption` for a read that finds the file shorter than
    /// it was (cut under the reader).
    ///
    /// # Errors
    /// `Io` if a read fails; `Corruption` as for [`Table::open`].
    pub fn open_file(file: Arc<dyn RandomAccessFile>, cache: &BlockCache) -> Result<Table> {
        let file_len = file.len();
        let Some(footer_at) = file_len.checked_sub(FOOTER_LEN as u64) else {
            return Err(too_short(file_len));
        };
        let raw = read_exact(&*file, footer_at, FOOTER_LEN, "the footer")?;
        let raw: &[u8; FOOTER_LEN] = raw
            .as_ref()
            .try_into()
            .map_err(|_| Error::corruption("the footer read came back short"))?;
        let footer = Footer::decode_at(raw, footer_at)?;
        // The meta blocks and the footer tile the end of the file from the filter on; a
        // filter handle past the footer fails the layout checks.
        let base = footer.filter.offset.min(footer_at);
        let len = usize::try_from(file_len - base).map_err(|_| {
            Error::corruption(format!(
                "footer at byte {footer_at}: the filter block at byte {base} leaves more meta bytes than memory can hold"
            ))
        })?;
        let region = read_exact(&*file, base, len, "the meta blocks")?;
        let parts = Parts::decode(&region, base, file_len, &footer)?;
        drop(region);
        let source = Source::File {
            file,
            cache: cache.clone(),
            id: cache.next_table_id(),
        };
        Ok(Table::from_parts(parts, source))
    }

    fn from_parts(parts: Parts, source: Source) -> Table {
        Table {
            inner: Arc::new(TableInner {
                source,
                index: parts.index,
                filter: parts.filter,
                meta: parts.meta,
                range_tombstones: parts.range_tombstones,
                pinned: parts.pinned,
                compressed_ok: parts.compressed_ok,
            }),
        }
    }

    /// The bytes of memory the table holds for as long as it is open, outside the block
    /// cache: its decoded index, its filter and its range tombstones (not the file's
    /// bytes of a table opened with [`Table::open`]).
    #[must_use]
    pub fn pinned_bytes(&self) -> usize {
        self.inner.pinned
    }

    /// What the table holds: key range, sequence range, entry count and size.
    #[must_use]
    pub fn meta(&self) -> &TableMeta {
        &self.inner.meta
    }

    /// The table's range tombstones, fragmented: empty for a table without any (and for
    /// every version-1 table). [`Table::get`] and [`Table::iter`] return point entries
    /// only; applying these to them is the caller's part.
    #[must_use]
    pub fn range_tombstones(&self) -> &Fragments {
        &self.inner.range_tombstones
    }

    /// The number of data blocks (zero for a table of range tombstones alone).
    #[must_use]
    pub fn data_blocks(&self) -> usize {
        self.inner.index.len()
    }

    /// Whether the bloom filter admits `user_key`; `false` means it is certainly absent.
    #[must_use]
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.inner.filter.may_contain(user_key)
    }

    /// The newest version of `user_key` with a sequence number at most `snapshot`, as its
    /// kind and value (empty for a tombstone); `None` if the table has no such version.
    /// Consults the bloom filter first.
    ///
    /// # Errors
    /// `Corruption` if the data block it reads is damaged.
    pub fn get(&self, user_key: &[u8], snapshot: SeqNo) -> Result<Option<(ValueKind, Bytes)>> {
        Ok(self
            .get_version(user_key, snapshot)?
            .map(|(_, kind, value)| (kind, value)))
    }

    /// Like [`Table::get`], with the sequence number of the version found (to weigh it
    /// against range tombstones).
    ///
    /// # Errors
    /// As for [`Table::get`].
    pub fn get_version(
        &self,
        user_key: &[u8],
        snapshot: SeqNo,
    ) -> Result<Option<(SeqNo, ValueKind, Bytes)>> {
        if self.inner.index.len() == 0 || !self.may_contain(user_key) {
            return Ok(None);
        }
        // The smallest internal key of `user_key` visible at `snapshot`: newer versions
        // sort before it, older ones after.
        let target = pack_trailer(snapshot.min(MAX_SEQNO), ValueKind::Put);
        let inner = &self.inner;
        let block_idx = inner.index.search(user_key, |last_key| {
            compare_encoded(last_key, user_key, target).is_lt()
        });
        if block_idx == inner.index.len() {
            return Ok(None);
        }
        let contents = inner.point_block(block_idx)?;
        prefetch_block(contents.bytes());
        let block = BlockRef::new(
            contents.bytes(),
            inner.index.handle(block_idx).offset,
            "data block",
        )?;
        let PointSeek::Entry {
            same_user_key,
            trailer,
            pos,
        } = block.seek_point(&Target::new(user_key, target))?
        else {
            return Err(inner.index_mismatch(block_idx));
        };
        let Some((seqno, kind)) = trailer.and_then(unpack_trailer) else {
            return Err(inner.malformed_key(block_idx));
        };
        if !same_user_key {
            return Ok(None);
        }
        Ok(Some((
            seqno,
            kind,
            contents.slice(pos.value_start..pos.value_end),
        )))
    }

    /// Every version of every key in the user-key range `lower..upper`, in internal-key
    /// order (user key ascending, newest version first); iterates from both ends.
    #[must_use]
    pub fn iter(&self, lower: std::ops::Bound<&[u8]>, upper: std::ops::Bound<&[u8]>) -> TableIter {
        TableIter::new(Arc::clone(&self.inner), lower, upper)
    }
}

impl Parts {
    /// Decodes and cross-checks the meta blocks, found in `region`: the bytes of the
    /// `file_len`-byte file from byte `base` to its end, which hold every meta block.
    fn decode(region: &Bytes, base: u64, file_len: u64, footer: &Footer) -> Result<Parts> {
        let footer_at = file_len - FOOTER_LEN as u64;
        let range_handle = range_block_handle(footer, footer_at)?;
        // The blocks must tile the file: data from 0, then filter, the range tombstone
        // block (placed by `range_block_handle`), index, properties and the footer, each
        // starting where the one before ends.
        let layout = [
            (footer.index, footer.properties.offset, "index"),
            (footer.properties, footer_at, "properties"),
        ];
        for (handle, next, name) in layout {
            if handle.end() != Some(next) || handle.offset > next {
                return Err(Error::corruption(format!(
                    "footer at byte {footer_at}: the {name} block at byte {} with {} bytes of contents does not end where the next structure begins (byte {next})",
                    handle.offset, handle.len
                )));
            }
        }
        let read_meta = |handle: BlockHandle, block_type| -> Result<Bytes> {
            let range = check_frame_in(region, base, file_len, handle, block_type)?;
            Ok(region.slice(range))
        };
        let properties_at = footer.properties.offset;
        let properties = Properties::decode(
            &read_meta(footer.properties, BlockType::Properties)?,
            footer.version,
            file_len,
            properties_at,
        )?;
        // A copy of its own, so that the region read with it is not kept alive.
        let filter_bytes = Bytes::copy_from_slice(&read_meta(footer.filter, BlockType::Filter)?);
        let filter_len = filter_bytes.len();
        let filter = Filter::new(filter_bytes, footer.filter.offset)?;
        let (range_tombstones, range_len) = match range_handle {
            Some(handle) => {
                let contents = read_meta(handle, BlockType::RangeTombstones)?;
                let fragments = range_block::decode(&contents, handle.offset)?;
                (fragments, contents.len())
            }
            None => (Fragments::default(), 0),
        };
        let index_block = Block::new(
            read_meta(footer.index, BlockType::Index)?,
            footer.index.offset,
            "index block",
        )?;
        let index = Index::decode(&index_block, footer.filter.offset, footer.index.offset)?;

        let corrupt = |why: &str| {
            Error::corruption(format!("properties block at byte {properties_at}: {why}"))
        };
        if properties.data_blocks != index.len() as u64 {
            return Err(corrupt(&format!(
                "{} data blocks, but the index lists {}",
                properties.data_blocks,
                index.len()
            )));
        }
        let pairs = range_block::pair_count(&range_tombstones);
        if properties.range_fragments != range_tombstones.len() as u64
            || properties.meta.range_tombstones != pairs
        {
            return Err(corrupt(&format!(
                "{} range tombstone fragments with {} sequence numbers, but the range tombstone block holds {} with {pairs}",
                properties.range_fragments,
                properties.meta.range_tombstones,
                range_tombstones.len()
            )));
        }
        check_bounds(&properties.meta, &index, &range_tombstones).map_err(corrupt)?;
        // The decoded tombstones take about what their block does.
        let pinned = index.heap_bytes() + filter_len + range_len;
        Ok(Parts {
            index,
            filter,
            meta: properties.meta,
            range_tombstones,
            pinned,
            compressed_ok: footer.version >= COMPRESSION_VERSION,
        })
    }
}

/// Reads `len` bytes at `offset` of `file` for `what`, as the table crate's error: a
/// read that finds the file shorter is corruption (the file was cut), any other failure
/// is the device's `Io` error.
fn read_exact(file: &dyn RandomAccessFile, offset: u64, len: usize, what: &str) -> Result<Bytes> {
    match file.read_at(offset, len) {
        Ok(bytes) if bytes.len() == len => Ok(bytes),
        Ok(bytes) => Err(Error::corruption(format!(
            "reading {what} at byte {offset}: {} bytes of {len} came back",
            bytes.len()
        ))),
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Err(Error::corruption(format!(
            "reading {what} at byte {offset}: the file is shorter than it was ({err})"
        ))),
        Err(err) => Err(Error::Io(io::Error::new(
            err.kind(),
            format!("reading {what} at byte {offset}: {err}"),
        ))),
    }
}

/// The handle of the range tombstone block, implied by the tiling: whatever lies between
/// the filter's end and the index's start, if anything. A version-1 table has no gap.
fn range_block_handle(footer: &Footer, footer_at: u64) -> Result<Option<BlockHandle>> {
    let (filter, index_at) = (footer.filter, footer.index.offset);
    match filter.end() {
        Some(end) if end == index_at => return Ok(None),
        Some(end) if end < index_at && footer.version >= RANGE_TOMBSTONE_VERSION => {
            if let Some(len) = (index_at - end).checked_sub(FRAME_OVERHEAD as u64) {
                return Ok(Some(BlockHandle { offset: end, len }));
            }
            return Err(Error::corruption(format!(
                "footer at byte {footer_at}: the {} bytes between the filter block's end (byte {end}) and the index block (byte {index_at}) are too few for a range tombstone block",
                index_at - end
            )));
        }
        _ => {}
    }
    let what = if footer.version >= RANGE_TOMBSTONE_VERSION {
        "at or before the next structure"
    } else {
        "where the next structure begins (a version-1 table has no range tombstone block)"
    };
    Err(Error::corruption(format!(
        "footer at byte {footer_at}: the filter block at byte {} with {} bytes of contents does not end {what} (byte {index_at})",
        filter.offset, filter.len
    )))
}

/// Checks the key and sequence number ranges of `meta` against the index and the range
/// tombstones: the largest key is exactly the larger of the index's last key and the
/// tombstones' largest key, the smallest key sorts at or before the first block's last key
/// and the tombstones' smallest key (and is the latter in a table without points), and the
/// sequence number range holds the tombstones' (exactly, without points).
fn check_bounds(
    meta: &TableMeta,
    index: &Index,
    tombstones: &Fragments,
) -> std::result::Result<(), &'static str> {
    let parse = |encoded: &[u8]| {
        parse_internal_key(encoded).map(|(user_key, seqno, kind)| {
            InternalKey::new(Bytes::copy_from_slice(user_key), seqno, kind)
        })
    };
    // `Index::decode` checked every key.
    let last_point = index
        .len()
        .checked_sub(1)
        .and_then(|i| parse(index.last_key(i)));
    let tombstone_range = range_block::key_range(tombstones);
    let largest = match (last_point, &tombstone_range) {
        (Some(last), Some((_, end))) => Some(last.max(end.clone())),
        (last, tombstone) => last.or_else(|| tombstone.as_ref().map(|(_, end)| end.clone())),
    };
    if largest.as_ref() != Some(&meta.largest) {
        return Err(
            "the largest key differs from the larger of the index's last key and the range tombstones' end",
        );
    }
    let no_points = index.len() == 0;
    if !no_points
        && compare_encoded(
            index.last_key(0),
            &meta.smallest.user_key,
            meta.smallest.trailer(),
        )
        .is_lt()
    {
        return Err("the smallest key sorts after the first data block's last key");
    }
    if let Some((start, _)) = &tombstone_range
        && (meta.smallest > *start || (no_points && meta.smallest != *start))
    {
        return Err("the smallest key disagrees with the range tombstones' start");
    }
    if let Some((lo, hi)) = tombstones.seqno_range()
        && (meta.min_seqno > lo
            || meta.max_seqno < hi
            || (no_points && (meta.min_seqno, meta.max_seqno) != (lo, hi)))
    {
        return Err("the sequence number range disagrees with the range tombstones'");
    }
    Ok(())
}

/// Asks for every cache line of a data block that a seek is about to search. In a table
/// larger than the cache the block is not there, and a seek reads its restart array (at
/// the end), a restart key or two and one restart interval, each at an address that the
/// read before gives: asking for every line at once turns that chain of misses into about
/// one. The end goes first, as it is read first.
fn prefetch_block(contents: &[u8]) {
    prefetch(&contents[contents.len().saturating_sub(1)..]);
    prefetch(contents);
}

impl Drop for TableInner {
    fn drop(&mut self) {
        // The table's blocks can never be asked for again: their budget goes back to the
        // blocks of live tables at once rather than when eviction reaches them.
        match &self.source {
            Source::File { cache, id, .. } => {
                for i in 0..self.index.len() {
                    cache.remove(*id, self.index.handle(i).offset);
                }
            }
            // In memory, only blocks found compressed can be in the cache, and the bits
            // say which: a table without any (the usual mapped table) costs nothing here.
            Source::Memory {
                verified,
                cache: Some((cache, id)),
                ..
            } => {
                for (word, bits) in verified.iter().enumerate() {
                    let mut compressed = bits.load(Ordering::Relaxed) & COMPRESSED_BITS;
                    while compressed != 0 {
                        let i = word * 32 + compressed.trailing_zeros() as usize / 2;
                        cache.remove(*id, self.index.handle(i).offset);
                        compressed &= compressed - 1;
                    }
                }
            }
            Source::Memory { cache: None, .. } => {}
        }
    }
}

impl std::fmt::Debug for TableInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The file's bytes are left out: a table is megabytes long.
        f.debug_struct("Table")
            .field("meta", &self.meta)
            .field("data_blocks", &self.index.len())
            .finish_non_exhaustive()
    }
}

impl TableInner {
    /// Where data block `i`'s contents lie in the in-memory `file`, its checksum verified
    /// the first time.
    #[inline]
    fn memory_block(&self, file: &Bytes, verified: &[AtomicU64], i: usize) -> Result<Stored> {
        let handle = self.index.handle(i);
        let (word, shift) = (i / 32, (i % 32) * 2);
        // Relaxed suffices: the bits only save work. A thread that misses another's store
        // verifies the immutable block again and reaches the same answer.
        let bits = verified[word].load(Ordering::Relaxed) >> shift;
        if bits & VERIFIED != 0 {
            // A verified frame matched its handle, which open checked to lie inside the
            // file, and the bytes never change: the contents are where the handle says,
            // and reading the frame's header again would only cost a cache miss.
            let start = handle.offset as usize + 5;
            let range = start..start + handle.len as usize;
            return Ok(if bits & COMPRESSED != 0 {
                Stored::Compressed(range)
            } else {
                Stored::Raw(range)
            });
        }
        self.verify_memory_block(file, verified, i)
    }

    /// The first read of data block `i` of the in-memory `file`: checks its frame and
    /// records it in `verified`.
    #[cold]
    fn verify_memory_block(
        &self,
        file: &Bytes,
        verified: &[AtomicU64],
        i: usize,
    ) -> Result<Stored> {
        let handle = self.index.handle(i);
        let (range, compressed) =
            check_data_frame_in(file, 0, file.len() as u64, handle, self.compressed_ok)?;
        let bits = if compressed {
            VERIFIED | COMPRESSED
        } else {
            VERIFIED
        };
        verified[i / 32].fetch_or(bits << ((i % 32) * 2), Ordering::Relaxed);
        Ok(if compressed {
            Stored::Compressed(range)
        } else {
            Stored::Raw(range)
        })
    }

    /// The decompressed data block `i`, whose compressed contents are `stored`: from
    /// `cache` if it holds it, else decompressed (and put there).
    #[cold]
    fn decompressed(
        &self,
        stored: &[u8],
        cache: Option<&(BlockCache, u64)>,
        i: usize,
    ) -> Result<Bytes> {
        let offset = self.index.handle(i).offset;
        if let Some((cache, id)) = cache
            && let Some(block) = cache.get(*id, offset)
        {
            return Ok(block);
        }
        let block = decompress(stored, offset)?;
        if let Some((cache, id)) = cache {
            cache.insert(*id, offset, block.clone());
        }
        Ok(block)
    }

    /// The verified contents of data block `i` for one point lookup: a raw block borrowed
    /// from the bytes in memory, so that a lookup takes no reference on the shared mapping
    /// (its count is one cache line that every reading thread would otherwise write twice
    /// per lookup), or a decompressed block or one from the cache.
    #[inline]
    fn point_block(&self, i: usize) -> Result<PointBlock<'_>> {
        match &self.source {
            Source::Memory {
                file,
                verified,
                cache,
            } => match self.memory_block(file, verified, i)? {
                Stored::Raw(range) => Ok(PointBlock::Borrowed { file, range }),
                Stored::Compressed(range) => {
                    let stored = file.get(range).unwrap_or_default();
                    self.decompressed(stored, cache.as_ref(), i)
                        .map(PointBlock::Cached)
                }
            },
            Source::File { .. } => self.block_bytes(i).map(PointBlock::Cached),
        }
    }

    /// The verified contents of data block `i`: a slice of the bytes in memory, a
    /// decompressed block, or the block from the cache, read from the file and verified
    /// (and decompressed) first if it is not there.
    #[inline]
    pub(crate) fn block_bytes(&self, i: usize) -> Result<Bytes> {
        match &self.source {
            Source::Memory {
                file,
                verified,
                cache,
            } => match self.memory_block(file, verified, i)? {
                Stored::Raw(range) => Ok(file.slice(range)),
                Stored::Compressed(range) => {
                    let stored = file.get(range).unwrap_or_default();
                    self.decompressed(stored, cache.as_ref(), i)
                }
            },
            Source::File { file, cache, id } => {
                let handle = self.index.handle(i);
                if let Some(block) = cache.get(*id, handle.offset) {
                    return Ok(block);
                }
                self.read_block(&**file, cache, *id, handle)
            }
        }
    }

    /// Reads, verifies (and decompresses, if it is compressed) and caches the data block
    /// at `handle`.
    #[cold]
    fn read_block(
        &self,
        file: &dyn RandomAccessFile,
        cache: &BlockCache,
        id: u64,
        handle: BlockHandle,
    ) -> Result<Bytes> {
        // `Index::decode` checked that the frame lies within the data region.
        let frame_len = usize::try_from(handle.len)
            .ok()
            .and_then(|len| len.checked_add(FRAME_OVERHEAD))
            .ok_or_else(|| {
                Error::corruption(format!(
                    "data block at byte {}: {} bytes of contents are more than memory can hold",
                    handle.offset, handle.len
                ))
            })?;
        let frame = read_exact(file, handle.offset, frame_len, "a data block")?;
        let (range, compressed) = check_data_frame_in(
            &frame,
            handle.offset,
            file.len(),
            handle,
            self.compressed_ok,
        )?;
        let contents = if compressed {
            decompress(frame.get(range).unwrap_or_default(), handle.offset)?
        } else {
            frame.slice(range)
        };
        cache.insert(id, handle.offset, contents.clone());
        Ok(contents)
    }

    /// Reads data block `i`, verifying its checksum the first time.
    pub(crate) fn data_block(&self, i: usize) -> Result<Block> {
        let contents = self.block_bytes(i)?;
        Block::new(contents, self.index.handle(i).offset, "data block")
    }

    /// [`TableInner::data_block`] for a seek, which reads the block's restart array and
    /// then jumps into it: the whole block is asked for at once, as [`Table::get`] does.
    /// (A scan reads blocks in file order, which the processor's own prefetcher follows.)
    pub(crate) fn data_block_for_seek(&self, i: usize) -> Result<Block> {
        let contents = self.block_bytes(i)?;
        prefetch_block(&contents);
        Block::new(contents, self.index.handle(i).offset, "data block")
    }

    /// Splits and checks an entry's key from data block `block_idx`.
    pub(crate) fn parse_key<'k>(
        &self,
        block_idx: usize,
        key: &'k [u8],
    ) -> Result<(&'k [u8], SeqNo, ValueKind)> {
        parse_internal_key(key).ok_or_else(|| self.malformed_key(block_idx))
    }

    /// The error for an entry of data block `block_idx` whose key is malformed.
    #[cold]
    pub(crate) fn malformed_key(&self, block_idx: usize) -> Error {
        Error::corruption(format!(
            "data block at byte {}: an entry's key is malformed",
            self.index.handle(block_idx).offset
        ))
    }

    /// The error for a data block whose entries disagree with its index key.
    #[cold]
    pub(crate) fn index_mismatch(&self, block_idx: usize) -> Error {
        Error::corruption(format!(
            "data block at byte {}: its entries disagree with the index",
            self.index.handle(block_idx).offset
        ))
    }
}
