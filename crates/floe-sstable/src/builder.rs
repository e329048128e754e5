//! The table builder: streams sorted entries into data blocks, then writes the filter,
//! range tombstone, index and properties blocks and the footer, and syncs the file.

use std::cmp::Ordering;
use std::io::Write;

use floe_core::coding::put_varint;
use floe_core::fs::WritableFile;
use floe_core::range_del::Fragments;
use floe_core::{InternalKey, MAX_SEQNO, SeqNo};

use crate::block::BlockBuilder;
use crate::bloom::{bloom_hash, build_filter};
use crate::compression::{Compression, Compressor};
use crate::error::{Error, Result};
use crate::format::{
    BlockHandle, BlockType, FORMAT_VERSION, FRAME_OVERHEAD, Footer, compare_encoded, put_frame,
    put_internal_key,
};
use crate::properties::{Properties, TableMeta};
use crate::range_block;

/// The longest user key a table accepts, in bytes.
pub const MAX_KEY_LEN: usize = 16 << 20;

/// The longest value a table accepts, in bytes; a block's length is a `u32` on disk and
/// one entry must fit in one block.
pub const MAX_VALUE_LEN: usize = 1 << 30;

/// Entries between restart points in a data block: a seek decodes at most this many keys
/// after its binary search.
const DATA_RESTART_INTERVAL: usize = 16;

/// Entries between restart points in the index block, which is decoded whole on open.
const INDEX_RESTART_INTERVAL: usize = 16;

/// Bytes gathered before one `write` call: large writes keep system calls few, and the
/// file is only published after `finish` syncs it, so nothing waits on this buffer.
const WRITE_BUFFER: usize = 256 << 10;

/// How tables are written.
#[derive(Debug, Clone)]
pub struct TableOptions {
    /// The target size of a data block's contents, in bytes (default 4096). A block is cut
    /// before the entry that would make it larger; an entry larger than this gets a block
    /// of its own. Any value from 1 up works; 64 B to 64 KiB is the useful range.
    pub block_size: usize,
    /// Bloom filter bits per distinct user key (default 10, about a 1% false-positive
    /// rate); 0 writes no filter, so every lookup reads a block.
    pub bloom_bits_per_key: u32,
    /// How data blocks are compressed (default none). A block that compression does not
    /// shrink by at least an eighth is stored raw.
    pub compression: Compression,
}

impl Default for TableOptions {
    fn default() -> TableOptions {
        TableOptions {
            block_size: 4096,
            bloom_bits_per_key: 10,
            compression: Compression::None,
        }
    }
}

impl TableOptions {
    /// Sets the target data block size in bytes (default 4096).
    #[must_use]
    pub fn block_size(mut self, bytes: usize) -> TableOptions {
        self.block_size = bytes;
        self
    }

    /// Sets the bloom filter bits per key (default 10; 0 disables the filter).
    #[must_use]
    pub fn bloom_bits_per_key(mut self, bits: u32) -> TableOptions {
        self.bloom_bits_per_key = bits;
        self
    }

    /// Sets how data blocks are compressed (default none).
    #[must_use]
    pub fn compression(mut self, compression: Compression) -> TableOptions {
        self.compression = compression;
        self
    }
}

/// Writes one table from entries added in strictly increasing internal-key order, and
/// the range tombstones given to [`TableBuilder::set_range_tombstones`].
///
/// Dropping a builder without `finish` leaves a partial file that is not a valid table;
/// the caller deletes it.
pub struct TableBuilder {
    file: Box<dyn WritableFile>,
    options: TableOptions,
    /// Bytes handed to the file so far.
    written: u64,
    /// Framed blocks not yet handed to the file.
    pending: Vec<u8>,
    block: BlockBuilder,
    /// Compresses data blocks; `Err` holds the message of an unusable setting, which
    /// every call returns.
    compressor: std::result::Result<Compressor, String>,
    index: BlockBuilder,
    /// The encoded internal key added last (empty before the first entry).
    last_key: Vec<u8>,
    /// Scratch space for encoding the next key.
    key_buf: Vec<u8>,
    hashes: Vec<u64>,
    first: Option<InternalKey>,
    entries: u64,
    data_blocks: u64,
    min_seqno: SeqNo,
    max_seqno: SeqNo,
    /// The range tombstones to write, every end finite.
    range_tombstones: Fragments,
    /// Set after a write failed: the file's contents are unknown, so every later call fails.
    failed: bool,
}

impl std::fmt::Debug for TableBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableBuilder")
            .field("file", &self.file)
            .field("options", &self.options)
            .field("entries", &self.entries)
            .field("estimated_size", &self.estimated_size())
            .finish_non_exhaustive()
    }
}

impl TableBuilder {
    /// A builder that writes to `file`, which should be new and empty.
    #[must_use]
    pub fn new(file: Box<dyn WritableFile>, options: TableOptions) -> TableBuilder {
        TableBuilder {
            compressor: Compressor::new(options.compression).map_err(|err| err.to_string()),
            file,
            options,
            written: 0,
            pending: Vec::new(),
            block: BlockBuilder::new(DATA_RESTART_INTERVAL),
            index: BlockBuilder::new(INDEX_RESTART_INTERVAL),
            last_key: Vec::new(),
            key_buf: Vec::new(),
            hashes: Vec::new(),
            first: None,
            entries: 0,
            data_blocks: 0,
            min_seqno: SeqNo::MAX,
            max_seqno: 0,
            range_tombstones: Fragments::default(),
            failed: false,
        }
    }

    /// Adds an entry; `key` must sort strictly after every key added before.
    ///
    /// # Errors
    /// `InvalidArgument` if the key is out of order, too long, or has a sequence number
    /// above `MAX_SEQNO`, or if the value is too long; `Io` if writing a block failed.
    pub fn add(&mut self, key: &InternalKey, value: &[u8]) -> Result<()> {
        self.check_usable()?;
        if key.user_key.len() > MAX_KEY_LEN {
            return Err(Error::invalid(format!(
                "a key of {} bytes exceeds the table limit of {MAX_KEY_LEN}",
                key.user_key.len()
            )));
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(Error::invalid(format!(
                "a value of {} bytes exceeds the table limit of {MAX_VALUE_LEN}",
                value.len()
            )));
        }
        if key.seqno > MAX_SEQNO {
            return Err(Error::invalid(format!(
                "sequence number {} exceeds MAX_SEQNO",
                key.seqno
            )));
        }
        let new_user_key = match self.first {
            None => true,
            Some(_) => match compare_encoded(&self.last_key, &key.user_key, key.trailer()) {
                Ordering::Less => {
                    let last_user = &self.last_key[..self.last_key.len() - 8];
                    last_user != &key.user_key[..]
                }
                Ordering::Equal | Ordering::Greater => {
                    return Err(Error::invalid(format!(
                        "keys must be added in strictly increasing order; {key:?} does not sort after the previous key"
                    )));
                }
            },
        };
        self.key_buf.clear();
        put_internal_key(&mut self.key_buf, &key.user_key, key.seqno, key.kind);
        let entry_size = self.key_buf.len() + value.len() + 3 * 5;
        if !self.block.is_empty()
            && self.block.estimated_size() + entry_size > self.options.block_size
        {
            self.flush_block()?;
        }
        self.block.add(&self.key_buf, value);
        std::mem::swap(&mut self.last_key, &mut self.key_buf);
        if new_user_key {
            self.hashes.push(bloom_hash(&key.user_key));
        }
        if self.first.is_none() {
            self.first = Some(key.clone());
        }
        self.entries += 1;
        self.min_seqno = self.min_seqno.min(key.seqno);
        self.max_seqno = self.max_seqno.max(key.seqno);
        Ok(())
    }

    /// Sets the table's range tombstones, replacing any set before (an empty list clears
    /// them). May be called any time before [`TableBuilder::finish`]; they are written
    /// in a block of their own, and count in the table's key and sequence number ranges.
    ///
    /// # Errors
    /// `InvalidArgument`, keeping the earlier set, if a fragment has no upper bound (a
    /// table stores only finite ends; cut an unbounded one first), a key longer than
    /// [`MAX_KEY_LEN`], or a sequence number above `MAX_SEQNO`.
    pub fn set_range_tombstones(&mut self, fragments: Fragments) -> Result<()> {
        self.check_usable()?;
        for fragment in fragments.fragments() {
            let Some(end) = &fragment.end else {
                return Err(Error::invalid(format!(
                    "the range tombstone fragment from {:?} has no upper bound; a table stores only finite ends",
                    fragment.start
                )));
            };
            if fragment.start.len().max(end.len()) > MAX_KEY_LEN {
                return Err(Error::invalid(format!(
                    "a range tombstone key exceeds the table limit of {MAX_KEY_LEN} bytes"
                )));
            }
            if let Some(&seqno) = fragment.seqnos.first()
                && seqno > MAX_SEQNO
            {
                return Err(Error::invalid(format!(
                    "range tombstone sequence number {seqno} exceeds MAX_SEQNO"
                )));
            }
        }
        self.range_tombstones = fragments;
        Ok(())
    }

    /// The bytes of the table so far, written or buffered; an engine cuts its output files
    /// by this.
    #[must_use]
    pub fn estimated_size(&self) -> u64 {
        self.written + self.pending.len() as u64 + self.block.estimated_size() as u64
    }

    /// The number of point entries added so far.
    #[must_use]
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Writes the last data block, the filter, range tombstone (if any), index and
    /// properties blocks and the footer, syncs the file with `sync_all`, and returns what
    /// the table holds.
    ///
    /// # Errors
    /// `InvalidArgument` if neither an entry was added nor range tombstones set (a table
    /// is never empty), or if the range tombstones exceed a block's 4 GiB limit; `Io` if
    /// a write or the sync failed.
    pub fn finish(mut self) -> Result<TableMeta> {
        self.check_usable()?;
        let tombstones = std::mem::take(&mut self.range_tombstones);
        let tombstone_range = range_block::key_range(&tombstones);
        let point_range = match self.first.take() {
            None => None,
            Some(first) => {
                self.flush_block()?;
                let (user_key, seqno, kind) = crate::format::parse_internal_key(&self.last_key)
                    .ok_or_else(|| Error::invalid("the last key could not be re-read"))?;
                let last = InternalKey::new(bytes::Bytes::copy_from_slice(user_key), seqno, kind);
                Some((first, last))
            }
        };
        let (smallest, largest) = match (point_range, tombstone_range) {
            (None, None) => {
                return Err(Error::invalid(
                    "a table needs at least one entry or range tombstone",
                ));
            }
            (Some(range), None) | (None, Some(range)) => range,
            (Some((first, last)), Some((start, end))) => (first.min(start), last.max(end)),
        };
        let (mut min_seqno, mut max_seqno) = (self.min_seqno, self.max_seqno);
        if let Some((lo, hi)) = tombstones.seqno_range() {
            min_seqno = min_seqno.min(lo);
            max_seqno = max_seqno.max(hi);
        }
        let range_contents = (!tombstones.is_empty()).then(|| range_block::encode(&tombstones));
        if range_contents
            .as_ref()
            .is_some_and(|contents| u32::try_from(contents.len()).is_err())
        {
            return Err(Error::invalid(
                "the range tombstones take more than the 4 GiB a block may hold",
            ));
        }

        // A table without points has nothing to filter: it gets the one-byte "no filter"
        // (its lookups stop at its empty index anyway).
        let bits_per_key = if self.hashes.is_empty() {
            0
        } else {
            self.options.bloom_bits_per_key
        };
        let filter_contents = build_filter(&self.hashes, bits_per_key);
        let filter = self.frame(BlockType::Filter, &filter_contents);
        // The range tombstone block has no handle: it is whatever lies between the filter
        // and the index.
        if let Some(contents) = &range_contents {
            self.frame(BlockType::RangeTombstones, contents);
        }
        let index_contents = self.index.finish().to_vec();
        let index = self.frame(BlockType::Index, &index_contents);
        let mut meta = TableMeta {
            file_size: 0,
            entries: self.entries,
            smallest,
            largest,
            min_seqno,
            max_seqno,
            range_tombstones: range_block::pair_count(&tombstones),
        };
        let properties_contents = Properties {
            meta: meta.clone(),
            data_blocks: self.data_blocks,
            range_fragments: tombstones.len() as u64,
        }
        .encode();
        let properties = self.frame(BlockType::Properties, &properties_contents);
        Footer {
            filter,
            index,
            properties,
            version: FORMAT_VERSION,
        }
        .encode(&mut self.pending);
        self.write_pending()?;
        self.file.flush()?;
        self.file.sync_all()?;
        meta.file_size = self.written;
        Ok(meta)
    }

    fn check_usable(&self) -> Result<()> {
        if let Err(message) = &self.compressor {
            return Err(Error::invalid(message.clone()));
        }
        if self.failed {
            return Err(Error::invalid(
                "the table builder failed earlier; its file is incomplete and must be removed",
            ));
        }
        Ok(())
    }

    /// Frames `contents` into the pending buffer and returns its handle.
    fn frame(&mut self, block_type: BlockType, contents: &[u8]) -> BlockHandle {
        let offset = self.written + self.pending.len() as u64;
        put_frame(&mut self.pending, block_type, contents);
        BlockHandle {
            offset,
            len: contents.len() as u64,
        }
    }

    /// Ends the current data block (if it holds entries) and indexes it by its last key.
    fn flush_block(&mut self) -> Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let offset = self.written + self.pending.len() as u64;
        let contents = self.block.finish();
        let compressed = match &mut self.compressor {
            Ok(compressor) if compressor.is_on() => compressor.compress(contents)?,
            _ => None,
        };
        let len = match compressed {
            Some(stored) => {
                put_frame(&mut self.pending, BlockType::CompressedData, stored);
                stored.len() as u64
            }
            None => {
                put_frame(&mut self.pending, BlockType::Data, contents);
                contents.len() as u64
            }
        };
        self.block.reset();
        let mut handle = Vec::with_capacity(12);
        put_varint(&mut handle, offset);
        put_varint(&mut handle, len);
        self.index.add(&self.last_key, &handle);
        self.data_blocks += 1;
        debug_assert_eq!(
            offset + len + FRAME_OVERHEAD as u64,
            self.written + self.pending.len() as u64
        );
        if self.pending.len() >= WRITE_BUFFER {
            self.write_pending()?;
        }
        Ok(())
    }

    fn write_pending(&mut self) -> Result<()> {
        if let Err(err) = self.file.write_all(&self.pending) {
            self.failed = true;
            return Err(Error::Io(err));
        }
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }
}
