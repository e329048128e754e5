//! The decoded index: the last key and the handle of every data block, laid out for fast
//! binary search.
//!
//! The index block is decoded once, on open. Keys live in one arena, and each entry keeps
//! the first eight bytes of its user key inline, so a search compares integers and
//! touches the arena only when two keys share those bytes.

use floe_core::coding::Decoder;

use crate::block::Block;
use crate::error::{Error, Result};
use crate::format::{BlockHandle, compare_encoded_keys, parse_internal_key};

/// One data block as the index describes it.
#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    /// The last encoded internal key of the block, as a range of the arena.
    key_start: usize,
    key_end: usize,
    handle: BlockHandle,
}

/// A user key's first eight bytes as a big-endian integer, zero-padded. If two keys'
/// prefixes differ, they order the keys as the bytes do: at the first differing byte
/// either both keys have a byte, or the shorter key is a prefix of the longer. Equal
/// prefixes decide nothing.
fn key_prefix(user_key: &[u8]) -> u64 {
    let mut raw = [0u8; 8];
    let n = user_key.len().min(8);
    raw[..n].copy_from_slice(&user_key[..n]);
    u64::from_be_bytes(raw)
}

/// The index of a table.
#[derive(Debug)]
pub(crate) struct Index {
    /// The first eight bytes of each block's last user key (see [`key_prefix`]), apart
    /// from the entries so that a binary search touches as few cache lines as it can.
    prefixes: Vec<u64>,
    entries: Vec<IndexEntry>,
    keys: Vec<u8>,
}

impl Index {
    /// Decodes the index block and checks that its handles tile the data region
    /// `0..data_end` in order and that its keys strictly increase.
    pub(crate) fn decode(block: &Block, data_end: u64, index_at: u64) -> Result<Index> {
        let corrupt =
            |why: String| Error::corruption(format!("index block at byte {index_at}: {why}"));
        let mut index = Index {
            prefixes: Vec::new(),
            entries: Vec::new(),
            keys: Vec::new(),
        };
        let mut expected_offset = 0u64;
        block.for_each(|key, pos| {
            let Some((user_key, _, _)) = parse_internal_key(key) else {
                return Err(corrupt(format!("entry at offset {} has a malformed key", pos.offset)));
            };
            if let Some(prev) = index.entries.len().checked_sub(1)
                && compare_encoded_keys(index.last_key(prev), key).is_ge()
            {
                return Err(corrupt(format!("entry at offset {} is out of order", pos.offset)));
            }
            let mut dec = Decoder::new(&block.contents()[pos.value_start..pos.value_end]);
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
            let key_start = index.keys.len();
            index.keys.extend_from_slice(key);
            index.prefixes.push(key_prefix(user_key));
            index.entries.push(IndexEntry {
                key_start,
                key_end: index.keys.len(),
                handle,
            });
            Ok(())
        })?;
        if expected_offset != data_end {
            return Err(corrupt(format!(
                "the data blocks end at byte {expected_offset}, but the filter block starts at byte {data_end}"
            )));
        }
        if index.entries.is_empty() {
            return Err(corrupt("no data blocks".to_string()));
        }
        Ok(index)
    }

    /// The number of data blocks.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The handle of data block `i`.
    pub(crate) fn handle(&self, i: usize) -> BlockHandle {
        self.entries[i].handle
    }

    /// The last encoded internal key of data block `i`.
    pub(crate) fn last_key(&self, i: usize) -> &[u8] {
        let entry = &self.entries[i];
        &self.keys[entry.key_start..entry.key_end]
    }

    /// The first block for which `before` is false, where `before(last_key)` holds for
    /// every block whose last user key sorts before `user_key`, fails for every block
    /// whose last user key sorts after it, and decides the blocks whose last user key is
    /// `user_key` (so it holds for a prefix of the blocks).
    pub(crate) fn search(&self, user_key: &[u8], mut before: impl FnMut(&[u8]) -> bool) -> usize {
        let prefix = key_prefix(user_key);
        // Blocks whose prefix is below the key's come first and blocks whose prefix is
        // above come last; only the run with an equal prefix needs the full keys.
        let lo = self.prefixes.partition_point(|&p| p < prefix);
        let hi = lo + self.prefixes[lo..].partition_point(|&p| p == prefix);
        lo + self.entries[lo..hi]
            .partition_point(|entry| before(&self.keys[entry.key_start..entry.key_end]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_order_keys_as_bytes_do_when_they_differ() {
        let keys: [&[u8]; 9] = [
            b"",
            b"\0",
            b"\0\0",
            b"a",
            b"a\0",
            b"a\0\x01",
            b"abcdefgh",
            b"abcdefgh\xff",
            b"\xff",
        ];
        for a in keys {
            for b in keys {
                let (pa, pb) = (key_prefix(a), key_prefix(b));
                if pa != pb {
                    assert_eq!(pa.cmp(&pb), a.cmp(b), "{a:?} vs {b:?}");
                }
            }
        }
    }
}
