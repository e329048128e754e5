//! The table reader: validates a table's footer and meta blocks on open, then answers
//! point lookups and hands out iterators, reading data blocks straight from the mapping.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use floe_core::{MAX_SEQNO, SeqNo, ValueKind, pack_trailer, unpack_trailer};

use crate::block::{Block, BlockRef, PointSeek, Target};
use crate::bloom::Filter;
use crate::error::{Error, Result};
use crate::format::{
    BlockHandle, BlockType, FOOTER_LEN, Footer, check_frame, compare_encoded, parse_internal_key,
};
use crate::index::Index;
use crate::iter::TableIter;
use crate::prefetch::prefetch;
use crate::properties::{Properties, TableMeta};

/// An open table: immutable, cheap to clone, `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Table {
    inner: Arc<TableInner>,
}

pub(crate) struct TableInner {
    /// The whole file. When it is a mapping, the mmap contract holds (see [`Table::open`]).
    file: Bytes,
    pub(crate) index: Index,
    filter: Filter,
    meta: TableMeta,
    /// One bit per data block: set once the block's checksum has been verified. The
    /// mapping never changes, so a block verified once stays verified.
    verified: Box<[AtomicU64]>,
}

impl Table {
    /// Opens the table whose whole file is `file`: a mapping from `FileSystem::map`, or
    /// bytes in memory (tests, miri, fuzzing).
    ///
    /// Checks the footer, the layout of every block handle against the file's length,
    /// and the checksums and structure of the index, filter and properties blocks; data
    /// blocks are checked when first read.
    ///
    /// The mmap contract, restated where the reader takes the mapping: `FileSystem::map`'s
    /// caller promises that the file was written, synced and renamed into place before it
    /// was mapped and that nothing modifies or truncates it while any clone of the bytes
    /// lives. The reader relies on that only for correctness (a block verified once is not
    /// verified again); every offset is still checked against the mapping's length, so no
    /// input can make it read outside the bytes it was given.
    ///
    /// # Errors
    /// `Corruption` naming the damaged structure and its offset.
    pub fn open(file: Bytes) -> Result<Table> {
        let footer = Footer::decode(&file)?;
        let file_len = file.len() as u64;
        let footer_at = file_len - FOOTER_LEN as u64;
        // The blocks must tile the file: data from 0, then filter, index, properties and
        // the footer, each starting where the one before ends.
        let layout = [
            (footer.filter, footer.index.offset, "filter"),
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
            let range = check_frame(&file, handle, block_type)?;
            Ok(file.slice(range))
        };
        let properties_at = footer.properties.offset;
        let properties = Properties::decode(
            &read_meta(footer.properties, BlockType::Properties)?,
            file_len,
            properties_at,
        )?;
        let filter = Filter::new(
            read_meta(footer.filter, BlockType::Filter)?,
            footer.filter.offset,
        )?;
        let index_block = Block::new(
            read_meta(footer.index, BlockType::Index)?,
            footer.index.offset,
            "index block",
        )?;
        let index = Index::decode(&index_block, footer.filter.offset, footer.index.offset)?;

        let last_key = index.last_key(index.len() - 1);
        if properties.data_blocks != index.len() as u64 {
            return Err(Error::corruption(format!(
                "properties block at byte {properties_at}: {} data blocks, but the index lists {}",
                properties.data_blocks,
                index.len()
            )));
        }
        let largest = &properties.meta.largest;
        if compare_encoded(last_key, &largest.user_key, largest.trailer()).is_ne() {
            return Err(Error::corruption(format!(
                "properties block at byte {properties_at}: the largest key differs from the index's last key"
            )));
        }
        let verified = (0..index.len().div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect();
        Ok(Table {
            inner: Arc::new(TableInner {
                file,
                index,
                filter,
                meta: properties.meta,
                verified,
            }),
        })
    }

    /// What the table holds: key range, sequence range, entry count and size.
    #[must_use]
    pub fn meta(&self) -> &TableMeta {
        &self.inner.meta
    }

    /// The number of data blocks.
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
        if !self.may_contain(user_key) {
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
        let range = inner.data_range(block_idx)?;
        let contents = &inner.file[range.clone()];
        prefetch_block(contents);
        let block = BlockRef::new(contents, inner.index.handle(block_idx).offset, "data block")?;
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
        let value = range.start + pos.value_start..range.start + pos.value_end;
        Ok(Some((seqno, kind, inner.file.slice(value))))
    }

    /// Every version of every key in the user-key range `lower..upper`, in internal-key
    /// order (user key ascending, newest version first); iterates from both ends.
    #[must_use]
    pub fn iter(&self, lower: std::ops::Bound<&[u8]>, upper: std::ops::Bound<&[u8]>) -> TableIter {
        TableIter::new(Arc::clone(&self.inner), lower, upper)
    }
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
    /// The range of data block `i`'s contents in the file, its checksum verified the
    /// first time.
    #[inline]
    pub(crate) fn data_range(&self, i: usize) -> Result<Range<usize>> {
        let handle = self.index.handle(i);
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        // Relaxed suffices: the bit only saves work. A thread that misses another's store
        // verifies the immutable block again and reaches the same answer.
        if self.verified[word].load(Ordering::Relaxed) & bit != 0 {
            // A verified frame matched its handle, which open checked to lie inside the
            // file, and the mapping never changes: the contents are where the handle says,
            // and reading the frame's header again would only cost a cache miss.
            let start = handle.offset as usize + 5;
            Ok(start..start + handle.len as usize)
        } else {
            let range = check_frame(&self.file, handle, BlockType::Data)?;
            self.verified[word].fetch_or(bit, Ordering::Relaxed);
            Ok(range)
        }
    }

    /// Reads data block `i`, verifying its checksum the first time.
    pub(crate) fn data_block(&self, i: usize) -> Result<Block> {
        let range = self.data_range(i)?;
        self.data_block_at(i, range)
    }

    /// [`TableInner::data_block`] for a seek, which reads the block's restart array and
    /// then jumps into it: the whole block is asked for at once, as [`Table::get`] does.
    /// (A scan reads blocks in file order, which the processor's own prefetcher follows.)
    pub(crate) fn data_block_for_seek(&self, i: usize) -> Result<Block> {
        let range = self.data_range(i)?;
        prefetch_block(&self.file[range.clone()]);
        self.data_block_at(i, range)
    }

    fn data_block_at(&self, i: usize, range: Range<usize>) -> Result<Block> {
        Block::new(
            self.file.slice(range),
            self.index.handle(i).offset,
            "data block",
        )
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
