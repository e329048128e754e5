//! Data and index blocks: sorted entries with prefix-compressed keys and restart points.
//!
//! Contents of a block:
//!
//! ```text
//! entry*  restart: u32 LE * n  n: u32 LE
//! entry = shared varint | unshared varint | value_len varint | key[shared..] | value
//! ```
//!
//! Each key shares `shared` leading bytes with the key before it; at a restart point
//! `shared` is 0, so a reader can start decoding there. The restart array holds the byte
//! offsets of the restart entries in increasing order, the first being 0. The decoder
//! trusts nothing: every length is checked against the block before it is used, and a
//! damaged block yields `Corruption`, never a panic or an allocation larger than the block.

use bytes::Bytes;
use floe_core::coding::{Decoder, put_u32, put_varint};

use crate::error::{Error, Result};

/// Reads the varint at `*at` in `bytes` and advances past it; `None` if `*at` is out of
/// range or the varint is malformed. Most varints in a block are one byte (lengths under
/// 128), so that case is decoded inline and the rest goes to the general decoder.
#[inline]
fn varint_at(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let first = *bytes.get(*at)?;
    if first < 0x80 {
        *at += 1;
        return Some(u64::from(first));
    }
    let mut dec = Decoder::new(&bytes[*at..]);
    let value = dec.varint()?;
    *at = bytes.len() - dec.remaining().len();
    Some(value)
}

/// Builds the contents of one block from keys given in increasing order.
#[derive(Debug)]
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    last_key: Vec<u8>,
    since_restart: usize,
    restart_interval: usize,
    entries: usize,
}

impl BlockBuilder {
    /// An empty builder that places a restart point every `restart_interval` entries.
    pub(crate) fn new(restart_interval: usize) -> BlockBuilder {
        BlockBuilder {
            buf: Vec::new(),
            restarts: Vec::new(),
            last_key: Vec::new(),
            since_restart: 0,
            restart_interval: restart_interval.max(1),
            entries: 0,
        }
    }

    /// Whether no entry was added since the last reset.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The size the block's contents would have if finished now.
    pub(crate) fn estimated_size(&self) -> usize {
        self.buf.len() + 4 * (self.restarts.len() + 1)
    }

    /// Appends an entry; `key` must sort after the previous key (the table builder checks).
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8]) {
        let shared = if self.since_restart >= self.restart_interval || self.entries == 0 {
            self.restarts.push(self.buf.len() as u32);
            self.since_restart = 0;
            0
        } else {
            self.last_key
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        };
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, (key.len() - shared) as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.since_restart += 1;
        self.entries += 1;
    }

    /// Finishes the block, returns its contents and leaves the builder empty for reuse.
    pub(crate) fn finish(&mut self) -> &[u8] {
        for &restart in &self.restarts {
            put_u32(&mut self.buf, restart);
        }
        put_u32(&mut self.buf, self.restarts.len() as u32);
        &self.buf
    }

    /// Empties the builder after `finish`.
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.restarts.clear();
        self.last_key.clear();
        self.since_restart = 0;
        self.entries = 0;
    }
}

/// A checked view of a block's contents; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    contents: Bytes,
    /// The offset of the restart array: entries occupy `0..restarts_at`.
    restarts_at: usize,
    num_restarts: usize,
    /// The file offset of the block's frame, for error messages.
    file_offset: u64,
    kind: &'static str,
}

/// One decoded entry: the value's range in the block and the entry's own offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryPos {
    /// The offset of the entry's first byte within the block.
    pub(crate) offset: usize,
    /// The offset one past the entry's last byte.
    pub(crate) next: usize,
    /// Where the value lies within the block.
    pub(crate) value_start: usize,
    /// Where the value ends within the block.
    pub(crate) value_end: usize,
}

impl Block {
    /// Checks the restart trailer of `contents`; `kind` and `file_offset` name the block in
    /// error messages.
    pub(crate) fn new(contents: Bytes, file_offset: u64, kind: &'static str) -> Result<Block> {
        let len = contents.len();
        let corrupt =
            |why: String| Error::corruption(format!("{kind} at byte {file_offset}: {why}"));
        if len < 4 {
            return Err(corrupt(format!("{len} bytes cannot hold a restart count")));
        }
        let mut raw = [0u8; 4];
        raw.copy_from_slice(&contents[len - 4..]);
        let num_restarts = u32::from_le_bytes(raw) as usize;
        let array_len = num_restarts
            .checked_mul(4)
            .filter(|&n| n <= len - 4)
            .ok_or_else(|| {
                corrupt(format!(
                    "{num_restarts} restart points do not fit in {len} bytes"
                ))
            })?;
        let restarts_at = len - 4 - array_len;
        if (restarts_at == 0) != (num_restarts == 0) {
            return Err(corrupt(format!(
                "{num_restarts} restart points for {restarts_at} bytes of entries"
            )));
        }
        let block = Block {
            contents,
            restarts_at,
            num_restarts,
            file_offset,
            kind,
        };
        if num_restarts > 0 && block.restart(0)? != 0 {
            return Err(block.corrupt(restarts_at, "the first restart point is not 0"));
        }
        Ok(block)
    }

    /// The block's contents.
    pub(crate) fn contents(&self) -> &Bytes {
        &self.contents
    }

    /// Whether the block holds no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.restarts_at == 0
    }

    /// The offset where entries end (and the restart array begins).
    pub(crate) fn entries_end(&self) -> usize {
        self.restarts_at
    }

    fn corrupt(&self, at: usize, why: &str) -> Error {
        Error::corruption(format!(
            "{} at byte {}: {why} (at offset {at} of its contents)",
            self.kind, self.file_offset
        ))
    }

    /// The offset of restart point `i`, checked to lie among the entries.
    fn restart(&self, i: usize) -> Result<usize> {
        let at = self.restarts_at + 4 * i;
        let mut raw = [0u8; 4];
        raw.copy_from_slice(&self.contents[at..at + 4]);
        let offset = u32::from_le_bytes(raw) as usize;
        if offset >= self.restarts_at {
            return Err(self.corrupt(at, "a restart point lies outside the entries"));
        }
        Ok(offset)
    }

    /// Decodes the entry at `offset`, whose predecessor's key is in `key`; leaves the
    /// entry's key in `key`.
    #[inline]
    pub(crate) fn decode_at(&self, offset: usize, key: &mut Vec<u8>) -> Result<EntryPos> {
        let entries = &self.contents[..self.restarts_at];
        let mut at = offset;
        let (Some(shared), Some(unshared), Some(value_len)) = (
            varint_at(entries, &mut at),
            varint_at(entries, &mut at),
            varint_at(entries, &mut at),
        ) else {
            return Err(self.corrupt(offset, "truncated entry header"));
        };
        if shared > key.len() as u64 {
            return Err(self.corrupt(
                offset,
                "an entry shares more bytes than the previous key has",
            ));
        }
        // `at <= entries.len()` after the varints were read, so this cannot underflow.
        let remaining = (entries.len() - at) as u64;
        if unshared > remaining || value_len > remaining - unshared {
            return Err(self.corrupt(offset, "an entry runs past the end of the block"));
        }
        // Both lengths are now at most the block's length, so they fit in usize.
        let (unshared, value_len) = (unshared as usize, value_len as usize);
        key.truncate(shared as usize);
        key.extend_from_slice(&entries[at..at + unshared]);
        let value_start = at + unshared;
        let value_end = value_start + value_len;
        Ok(EntryPos {
            offset,
            next: value_end,
            value_start,
            value_end,
        })
    }

    /// Decodes the key of restart point `i` into `key`.
    fn restart_key(&self, i: usize, key: &mut Vec<u8>) -> Result<EntryPos> {
        let offset = self.restart(i)?;
        key.clear();
        self.decode_at(offset, key)
    }

    /// Positions on the first entry whose key is not `before` (a predicate that holds for
    /// a prefix of the entries). Returns that entry, with its key in `key`, or `None` if
    /// every entry is before.
    pub(crate) fn seek(
        &self,
        key: &mut Vec<u8>,
        mut before: impl FnMut(&[u8]) -> bool,
    ) -> Result<Option<EntryPos>> {
        if self.is_empty() {
            return Ok(None);
        }
        // Binary search for the last restart point whose key is before the target; the
        // first entry not before lies after it, within one restart interval or so.
        let (mut lo, mut hi) = (0usize, self.num_restarts);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            self.restart_key(mid, key)?;
            if before(key) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let mut pos = self.restart_key(lo, key)?;
        loop {
            if !before(key) {
                return Ok(Some(pos));
            }
            if pos.next >= self.restarts_at {
                return Ok(None);
            }
            pos = self.decode_at(pos.next, key)?;
        }
    }

    /// Decodes every entry, calling `f` with each key and position in order.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&[u8], EntryPos) -> Result<()>) -> Result<()> {
        let mut key = Vec::new();
        let mut offset = 0;
        while offset < self.restarts_at {
            let pos = self.decode_at(offset, &mut key)?;
            f(&key, pos)?;
            offset = pos.next;
        }
        Ok(())
    }

    /// The bytes of a value found by `decode_at`, sharing the block's memory.
    pub(crate) fn value(&self, pos: EntryPos) -> Bytes {
        self.contents.slice(pos.value_start..pos.value_end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(entries: &[(&[u8], &[u8])], interval: usize) -> Bytes {
        let mut builder = BlockBuilder::new(interval);
        for (k, v) in entries {
            builder.add(k, v);
        }
        Bytes::copy_from_slice(builder.finish())
    }

    fn decode_all(block: &Block) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        block.for_each(|k, pos| {
            out.push((k.to_vec(), block.value(pos).to_vec()));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn round_trip_and_seek_at_every_restart_interval() {
        let keys: Vec<Vec<u8>> = (0..100u32)
            .map(|i| format!("key{:04}", i * 2).into_bytes())
            .collect();
        let entries: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (&k[..], &k[3..])).collect();
        for interval in [1, 2, 3, 16, 1000] {
            let block = Block::new(build(&entries, interval), 0, "data block").unwrap();
            let decoded = decode_all(&block).unwrap();
            assert_eq!(decoded.len(), 100);
            for ((k, v), (ek, ev)) in decoded.iter().zip(&entries) {
                assert_eq!((&k[..], &v[..]), (*ek, *ev));
            }
            let mut key = Vec::new();
            for i in 0..=200u32 {
                let target = format!("key{i:04}").into_bytes();
                let found = block.seek(&mut key, |k| k < &target[..]).unwrap();
                let expected = keys.iter().find(|k| k[..] >= target[..]);
                assert_eq!(
                    found.map(|_| key.clone()).as_ref(),
                    expected,
                    "interval {interval} target {i}"
                );
            }
        }
    }

    #[test]
    fn empty_block_and_damaged_trailers() {
        let empty = Block::new(build(&[], 16), 0, "data block").unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.seek(&mut Vec::new(), |_| true).unwrap(), None);
        for bad in [
            &[][..],
            &[1, 0, 0][..],
            &[9, 0, 0, 0][..],
            &[0, 0, 0, 0, 1, 0, 0, 0][..],
        ] {
            assert!(Block::new(Bytes::copy_from_slice(bad), 0, "data block").is_err());
        }
    }

    #[test]
    fn every_damaged_byte_is_an_error_or_a_clean_decode() {
        let keys: Vec<Vec<u8>> = (0..20u32)
            .map(|i| format!("k{i:03}").into_bytes())
            .collect();
        let entries: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (&k[..], &b"value"[..])).collect();
        let contents = build(&entries, 4);
        for at in 0..contents.len() {
            for byte in [0u8, 0x7f, 0x80, 0xff] {
                let mut damaged = contents.to_vec();
                damaged[at] = byte;
                if let Ok(block) = Block::new(Bytes::from(damaged), 0, "data block") {
                    let _ = decode_all(&block);
                    let _ = block.seek(&mut Vec::new(), |k| k < &b"k010"[..]);
                }
            }
        }
    }
}
