//! The decoded index: the last key and the handle of every data block, laid out for fast
//! search.
//!
//! The index block is decoded once, on open, into memory bounded by its size. The first
//! eight bytes of each block's last user key go into a cache-line search tree, so a
//! search compares integers and touches few cache lines; the whole keys live in one
//! arena, read only when two keys share those bytes. Handles sit in an array of their
//! own, sixteen bytes apiece, so the handle a lookup needs is one more cache line.

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use floe_core::coding::Decoder;

use crate::block::Block;
use crate::error::{Error, Result};
use crate::format::{BlockHandle, compare_encoded_keys, key_prefix, parse_internal_key};
use crate::prefetch::prefetch;
use crate::prefix_tree::PrefixTree;

/// Where a data block's last encoded internal key lies in the arena.
#[derive(Debug, Clone, Copy)]
struct KeySpan {
    start: usize,
    end: usize,
}

/// The index of a table.
#[derive(Debug)]
pub(crate) struct Index {
    /// The first eight bytes of each block's last user key (see [`key_prefix`]).
    prefixes: PrefixTree,
    handles: Vec<BlockHandle>,
    spans: Vec<KeySpan>,
    keys: Vec<u8>,
}

impl Index {
    /// Decodes the index block and checks that its handles tile the data region
    /// `0..data_end` in order and that its keys strictly increase. An empty index (a
    /// table of range tombstones alone) tiles an empty data region; the caller checks the
    /// block count against the properties.
    pub(crate) fn decode(block: &Block, data_end: u64, index_at: u64) -> Result<Index> {
        let corrupt =
            |why: String| Error::corruption(format!("index block at byte {index_at}: {why}"));
        let mut prefixes = Vec::new();
        let mut index = Index {
            prefixes: PrefixTree::new(&[]),
            handles: Vec::new(),
            spans: Vec::new(),
            keys: Vec::new(),
        };
        let mut expected_offset = 0u64;
        block.for_each(|key, pos| {
            let Some((user_key, _, _)) = parse_internal_key(key) else {
                return Err(corrupt(format!("entry at offset {} has a malformed key", pos.offset)));
            };
            if let Some(prev) = index.spans.len().checked_sub(1)
                && compare_encoded_keys(index.last_key(prev), key).is_ge()
            {
                return Err(corrupt(format!("entry at offset {} is out of order", pos.offset)));
            }
            let value = block.contents().get(pos.value_start..pos.value_end).unwrap_or_default();
            let mut dec = Decoder::new(value);
            let (Some(offset), Some(len), true) = (dec.varint(), dec.varint(), dec.is_empty()) else {
                return Err(corrupt(format!("entry at offset {} has a malformed handle", pos.offset)));
            };
            let handle = BlockHandle { offset, len };
            // A block's last key is rebuilt from bytes of that block, so it can be no
            // longer than the block; checking it bounds the arena by the file's size.
            if key.len() as u64 > len {
                return Err(corrupt(format!(
                    "entry at offset {} names a key longer than its block",
                    pos.offset
                )));
            }
            let end = handle.end().filter(|&end| offset == expected_offset && end <= data_end);
            let Some(end) = end else {
                return Err(corrupt(format!(
                    "data block handle at byte {offset} with {len} bytes does not follow the block before (expected byte {expected_offset}) within the data region of {data_end} bytes"
                )));
            };
            expected_offset = end;
            let start = index.keys.len();
            index.keys.extend_from_slice(key);
            index.spans.push(KeySpan {
                start,
                end: index.keys.len(),
            });
            index.handles.push(handle);
            prefixes.push(key_prefix(user_key));
            Ok(())
        })?;
        if expected_offset != data_end {
            return Err(corrupt(format!(
                "the data blocks end at byte {expected_offset}, but the filter block starts at byte {data_end}"
            )));
        }
        // The keys strictly increase, so their user keys, and so their prefixes, never
        // decrease: the order the tree needs.
        index.prefixes = PrefixTree::new(&prefixes);
        Ok(index)
    }

    /// The bytes of memory the decoded index takes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.prefixes.heap_bytes()
            + self.handles.capacity() * size_of::<BlockHandle>()
            + self.spans.capacity() * size_of::<KeySpan>()
            + self.keys.capacity()
    }

    /// The number of data blocks.
    pub(crate) fn len(&self) -> usize {
        self.handles.len()
    }

    /// The handle of data block `i`, which must be below [`Index::len`].
    #[inline]
    #[expect(
        clippy::indexing_slicing,
        reason = "a block number past the end is the caller's bug, as with slice indexing"
    )]
    pub(crate) fn handle(&self, i: usize) -> BlockHandle {
        self.handles[i]
    }

    /// The last encoded internal key of data block `i`, which must be below
    /// [`Index::len`].
    #[expect(
        clippy::indexing_slicing,
        reason = "a block number past the end is the caller's bug, as with slice indexing"
    )]
    pub(crate) fn last_key(&self, i: usize) -> &[u8] {
        self.key(self.spans[i])
    }

    /// The bytes of `span` in the arena.
    #[inline]
    #[expect(
        clippy::indexing_slicing,
        reason = "`decode` made every span lie within `keys`, which only it writes"
    )]
    fn key(&self, span: KeySpan) -> &[u8] {
        &self.keys[span.start..span.end]
    }

    /// The first block for which `before` is false, where `before(last_key)` holds for
    /// every block whose last user key sorts before `user_key`, fails for every block
    /// whose last user key sorts after it, and decides the blocks whose last user key is
    /// `user_key` (so it holds for a prefix of the blocks).
    #[inline]
    #[expect(
        clippy::indexing_slicing,
        reason = "`lo < hi <= len`: both are lower bounds in the prefix tree of `len` blocks"
    )]
    pub(crate) fn search(&self, user_key: &[u8], mut before: impl FnMut(&[u8]) -> bool) -> usize {
        let prefix = key_prefix(user_key);
        // Blocks whose prefix is below the key's come first and blocks whose prefix is
        // above come last; only the run with an equal prefix needs the full keys.
        let lo = self.prefixes.lower_bound_with(prefix, |first| {
            // The handle that the caller reads next is one of these.
            if let Some(handles) = self.handles.get(first..self.len().min(first + 8)) {
                prefetch(handles);
            }
        });
        if lo == self.len() || self.prefixes.get(lo) != prefix {
            return lo;
        }
        let hi = match prefix.checked_add(1) {
            Some(next) => self.prefixes.lower_bound(next),
            None => self.len(),
        };
        lo + self.spans[lo..hi].partition_point(|&span| before(self.key(span)))
    }
}
