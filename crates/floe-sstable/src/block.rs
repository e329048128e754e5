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

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use bytes::Bytes;
use floe_core::coding::{Decoder, put_u32, put_varint};

use crate::error::{Error, Result};
use crate::format::{compare_encoded, key_prefix, split_internal_key};

/// Reads the varint at `*at` in `bytes` and advances past it; `None` if `*at` is out of
/// range or the varint is malformed. Most varints in a block are one byte (lengths under
/// 128), so that case is decoded inline and the rest goes to the general decoder.
// Always inlined: a point lookup decodes up to a restart interval of headers, three
// varints each, and a call per varint costs as much as the decoding.
#[inline(always)]
fn varint_at(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let first = *bytes.get(*at)?;
    if first < 0x80 {
        *at += 1;
        return Some(u64::from(first));
    }
    let mut dec = Decoder::new(bytes.get(*at..)?);
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
        // `shared` counts bytes of a zip with `key`, so it is at most `key.len()`.
        let unshared = key.get(shared..).unwrap_or_default();
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, unshared.len() as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(unshared);
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

/// A checked view of a block's contents that owns them; cheap to clone. Iterators hold
/// one, so the values they hand out can share the block's memory.
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

/// A checked view of a block's contents that borrows them: what a point lookup uses, so
/// that it touches no reference count and allocates nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockRef<'a> {
    contents: &'a [u8],
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

/// An entry's header, checked against the block: how many bytes its key shares with the
/// key before it, the rest of its key, and where it ends.
#[derive(Debug, Clone, Copy)]
struct Header<'a> {
    shared: usize,
    /// The key bytes after the shared ones, in place in the block: they end where the
    /// value starts.
    unshared: &'a [u8],
    pos: EntryPos,
}

/// Keys up to this many bytes are rebuilt on the stack by a point lookup; a longer key
/// sends the lookup to the general path, which rebuilds keys in a `Vec`.
const INLINE_KEY: usize = 128;

/// Copies `from` to the start of `to` (which is at least as long) in 16-byte chunks, so
/// that the short copies of a key's unshared bytes are a few moves, not a `memcpy` call.
#[inline]
fn copy_key_bytes(mut to: &mut [u8], from: &[u8]) {
    debug_assert!(to.len() >= from.len(), "the key buffer is too short");
    let (chunks, tail) = from.as_chunks::<16>();
    for chunk in chunks {
        let Some((head, rest)) = std::mem::take(&mut to).split_first_chunk_mut::<16>() else {
            return;
        };
        *head = *chunk;
        to = rest;
    }
    for (to, &from) in to.iter_mut().zip(tail) {
        *to = from;
    }
}

/// What a point lookup found in a block (see [`BlockRef::seek_point`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PointSeek {
    /// Every entry sorts before the target.
    PastEnd,
    /// The first entry at or after the target.
    Entry {
        /// Whether the entry's user key is the target's.
        same_user_key: bool,
        /// The entry's trailer; `None` if its key is too short to hold one (damage that
        /// callers report).
        trailer: Option<u64>,
        /// Where the entry lies in the block.
        pos: EntryPos,
    },
}

/// The internal key a point lookup seeks: a user key and a trailer, with the user key's
/// first eight bytes as an integer, which decide most comparisons without a `memcmp`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'k> {
    user_key: &'k [u8],
    prefix: u64,
    trailer: u64,
}

impl<'k> Target<'k> {
    /// The internal key `(user_key, trailer)`.
    #[inline]
    pub(crate) fn new(user_key: &'k [u8], trailer: u64) -> Target<'k> {
        Target {
            user_key,
            prefix: key_prefix(user_key),
            trailer,
        }
    }

    /// Whether the encoded internal key `encoded` sorts before the target, in the order of
    /// [`compare_encoded`].
    #[inline]
    fn is_before(&self, encoded: &[u8]) -> bool {
        if let Some((user_key, _)) = split_internal_key(encoded) {
            let prefix = key_prefix(user_key);
            if prefix != self.prefix {
                return prefix < self.prefix;
            }
        }
        compare_encoded(encoded, self.user_key, self.trailer).is_lt()
    }
}

/// Describes the entry `key` as a [`PointSeek::Entry`].
fn point_entry(key: &[u8], user_key: &[u8], pos: EntryPos) -> PointSeek {
    let split = split_internal_key(key);
    PointSeek::Entry {
        same_user_key: split.is_some_and(|(found, _)| found == user_key),
        trailer: split.map(|(_, trailer)| trailer),
        pos,
    }
}

impl Block {
    /// Checks the restart trailer of `contents`; `kind` and `file_offset` name the block in
    /// error messages.
    pub(crate) fn new(contents: Bytes, file_offset: u64, kind: &'static str) -> Result<Block> {
        let view = BlockRef::new(&contents, file_offset, kind)?;
        let (restarts_at, num_restarts) = (view.restarts_at, view.num_restarts);
        Ok(Block {
            contents,
            restarts_at,
            num_restarts,
            file_offset,
            kind,
        })
    }

    /// The borrowed view that every decoding method works on.
    #[inline]
    pub(crate) fn view(&self) -> BlockRef<'_> {
        BlockRef {
            contents: &self.contents,
            restarts_at: self.restarts_at,
            num_restarts: self.num_restarts,
            file_offset: self.file_offset,
            kind: self.kind,
        }
    }

    /// The block's contents.
    pub(crate) fn contents(&self) -> &Bytes {
        &self.contents
    }

    /// Whether the block holds no entry.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.restarts_at == 0
    }

    /// The offset where entries end (and the restart array begins).
    pub(crate) fn entries_end(&self) -> usize {
        self.restarts_at
    }

    /// See [`BlockRef::decode_at`].
    #[inline]
    pub(crate) fn decode_at(&self, offset: usize, key: &mut Vec<u8>) -> Result<EntryPos> {
        self.view().decode_at(offset, key)
    }

    /// See [`BlockRef::seek`].
    pub(crate) fn seek(
        &self,
        key: &mut Vec<u8>,
        before: impl FnMut(&[u8]) -> bool,
    ) -> Result<Option<EntryPos>> {
        self.view().seek(key, before)
    }

    /// See [`BlockRef::for_each`].
    pub(crate) fn for_each(&self, f: impl FnMut(&[u8], EntryPos) -> Result<()>) -> Result<()> {
        self.view().for_each(f)
    }

    /// The bytes of a value found by `decode_at`, sharing the block's memory.
    pub(crate) fn value(&self, pos: EntryPos) -> Bytes {
        self.contents.slice(pos.value_start..pos.value_end)
    }
}

impl<'a> BlockRef<'a> {
    /// Checks the restart trailer of `contents`; `kind` and `file_offset` name the block in
    /// error messages.
    #[inline]
    pub(crate) fn new(
        contents: &'a [u8],
        file_offset: u64,
        kind: &'static str,
    ) -> Result<BlockRef<'a>> {
        let len = contents.len();
        let corrupt =
            |why: String| Error::corruption(format!("{kind} at byte {file_offset}: {why}"));
        let Some((before_count, count)) = contents.split_last_chunk::<4>() else {
            return Err(corrupt(format!("{len} bytes cannot hold a restart count")));
        };
        let num_restarts = u32::from_le_bytes(*count) as usize;
        let array_len = num_restarts
            .checked_mul(4)
            .filter(|&n| n <= before_count.len())
            .ok_or_else(|| {
                corrupt(format!(
                    "{num_restarts} restart points do not fit in {len} bytes"
                ))
            })?;
        let restarts_at = before_count.len() - array_len;
        if (restarts_at == 0) != (num_restarts == 0) {
            return Err(corrupt(format!(
                "{num_restarts} restart points for {restarts_at} bytes of entries"
            )));
        }
        let block = BlockRef {
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

    /// Whether the block holds no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.restarts_at == 0
    }

    #[cold]
    fn corrupt(&self, at: usize, why: &str) -> Error {
        Error::corruption(format!(
            "{} at byte {}: {why} (at offset {at} of its contents)",
            self.kind, self.file_offset
        ))
    }

    /// The entries: the contents before the restart array.
    #[inline]
    fn entries(&self) -> &'a [u8] {
        // `new` checked that `restarts_at` lies within the contents.
        self.contents.get(..self.restarts_at).unwrap_or_default()
    }

    /// The offset of restart point `i` (`i < num_restarts`), checked to lie among the
    /// entries.
    #[inline]
    fn restart(&self, i: usize) -> Result<usize> {
        let at = self.restarts_at + 4 * i;
        let raw = self.contents.get(at..).and_then(<[u8]>::first_chunk::<4>);
        match raw.map(|raw| u32::from_le_bytes(*raw) as usize) {
            Some(offset) if offset < self.restarts_at => Ok(offset),
            _ => Err(self.corrupt(at, "a restart point lies outside the entries")),
        }
    }

    /// Decodes and checks the header of the entry at `offset`.
    // Always inlined, for the same reason as `varint_at`: in a cached table the header
    // decoding of the point lookup's scan is most of its work.
    #[inline(always)]
    fn header(&self, offset: usize) -> Result<Header<'a>> {
        let entries = self.entries();
        let mut at = offset;
        let (Some(shared), Some(unshared), Some(value_len)) = (
            varint_at(entries, &mut at),
            varint_at(entries, &mut at),
            varint_at(entries, &mut at),
        ) else {
            return Err(self.corrupt(offset, "truncated entry header"));
        };
        // The unshared key bytes, and then the value, must lie within the entries.
        let fits = entries
            .get(at..)
            .and_then(|rest| rest.split_at_checked(usize::try_from(unshared).ok()?))
            .filter(|(_, rest)| value_len <= rest.len() as u64);
        let Some((unshared, _)) = fits else {
            return Err(self.corrupt(offset, "an entry runs past the end of the block"));
        };
        // `value_len` is now at most the block's length, so it fits in usize; `shared` is
        // checked against the previous key by each caller.
        let value_start = at + unshared.len();
        let value_end = value_start + value_len as usize;
        Ok(Header {
            shared: usize::try_from(shared).unwrap_or(usize::MAX),
            unshared,
            pos: EntryPos {
                offset,
                next: value_end,
                value_start,
                value_end,
            },
        })
    }

    /// Decodes the entry at `offset`, whose predecessor's key is in `key`; leaves the
    /// entry's key in `key`.
    #[inline]
    pub(crate) fn decode_at(&self, offset: usize, key: &mut Vec<u8>) -> Result<EntryPos> {
        let header = self.header(offset)?;
        if header.shared > key.len() {
            return Err(self.corrupt(
                offset,
                "an entry shares more bytes than the previous key has",
            ));
        }
        key.truncate(header.shared);
        key.extend_from_slice(header.unshared);
        Ok(header.pos)
    }

    /// The key of restart point `i`, read in place: a restart entry shares nothing with
    /// the entry before it, so its whole key lies in the block.
    #[inline]
    fn restart_key(&self, i: usize) -> Result<(&'a [u8], EntryPos)> {
        let offset = self.restart(i)?;
        let header = self.header(offset)?;
        if header.shared != 0 {
            return Err(self.corrupt(
                offset,
                "an entry shares more bytes than the previous key has",
            ));
        }
        Ok((header.unshared, header.pos))
    }

    /// The last restart point whose key is `before` (or restart 0 if none is), found by
    /// binary search on keys read in place. The first entry that is not before lies at or
    /// after it, within its restart interval or at the start of the next.
    #[inline]
    fn search_restarts(&self, mut before: impl FnMut(&[u8]) -> bool) -> Result<usize> {
        let (mut lo, mut hi) = (0usize, self.num_restarts);

        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if before(self.restart_key(mid)?.0) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
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
        let lo = self.search_restarts(&mut before)?;
        let (restart_key, mut pos) = self.restart_key(lo)?;
        key.clear();
        key.extend_from_slice(restart_key);
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

    /// The first entry at or after `target`: the same answer as [`BlockRef::seek`] with a
    /// `compare_encoded` predicate, without allocating. Keys within a restart interval are
    /// rebuilt in a buffer on the stack; a key longer than the buffer hands the lookup to
    /// `seek`.
    #[inline]
    pub(crate) fn seek_point(&self, target: &Target<'_>) -> Result<PointSeek> {
        if self.is_empty() {
            return Ok(PointSeek::PastEnd);
        }
        let lo = self.search_restarts(|k| target.is_before(k))?;
        let (restart_key, mut pos) = self.restart_key(lo)?;
        if !target.is_before(restart_key) {
            return Ok(point_entry(restart_key, target.user_key, pos));
        }
        // The key of the entry at `pos`, rebuilt: `buf[..len]`.
        let mut buf = [0u8; INLINE_KEY];
        let mut len = restart_key.len();
        let Some(start) = buf.get_mut(..len) else {
            return self.seek_point_slow(target);
        };
        start.copy_from_slice(restart_key);
        loop {
            if pos.next >= self.restarts_at {
                return Ok(PointSeek::PastEnd);
            }
            let header = self.header(pos.next)?;
            if header.shared > len {
                return Err(self.corrupt(
                    pos.next,
                    "an entry shares more bytes than the previous key has",
                ));
            }
            len = header.shared + header.unshared.len();
            let Some(to) = buf.get_mut(header.shared..len) else {
                return self.seek_point_slow(target);
            };
            copy_key_bytes(to, header.unshared);
            pos = header.pos;
            let Some(key) = buf.get(..len) else {
                return self.seek_point_slow(target);
            };
            if !target.is_before(key) {
                return Ok(point_entry(key, target.user_key, pos));
            }
        }
    }

    /// [`BlockRef::seek_point`] for blocks with keys too long for the stack buffer.
    #[cold]
    fn seek_point_slow(&self, target: &Target<'_>) -> Result<PointSeek> {
        let mut key = Vec::new();
        Ok(match self.seek(&mut key, |k| target.is_before(k))? {
            Some(pos) => point_entry(&key, target.user_key, pos),
            None => PointSeek::PastEnd,
        })
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
}

#[cfg(test)]
#[expect(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "a test panics to fail"
)]
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
        // Fewer keys under Miri, which interprets every seek; 24 still gives the 16-entry
        // interval two restarts and leaves the 1000-entry one a single restart.
        let count: u32 = if cfg!(miri) { 24 } else { 100 };
        let keys: Vec<Vec<u8>> = (0..count)
            .map(|i| format!("key{:04}", i * 2).into_bytes())
            .collect();
        let entries: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (&k[..], &k[3..])).collect();
        for interval in [1, 2, 3, 16, 1000] {
            let block = Block::new(build(&entries, interval), 0, "data block").unwrap();
            let decoded = decode_all(&block).unwrap();
            assert_eq!(decoded.len(), keys.len());
            for ((k, v), (ek, ev)) in decoded.iter().zip(&entries) {
                assert_eq!((&k[..], &v[..]), (*ek, *ev));
            }
            let mut key = Vec::new();
            for i in 0..=2 * count {
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

    /// Asserts that `result` is a `Corruption` error of a damaged block: an intact one
    /// must decode.
    fn assert_corruption<T>(result: Result<T>, intact: bool, context: &str) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                assert!(err.is_corruption(), "{context}: {err} is not Corruption");
                assert!(!intact, "{context}: the intact block fails with {err}");
                None
            }
        }
    }

    /// Asserts that `pos` lies among the entries of `block`, its value inside it.
    fn assert_within(block: &Block, pos: EntryPos, context: &str) {
        assert!(
            pos.offset < pos.value_start
                && pos.value_start <= pos.value_end
                && pos.value_end == pos.next
                && pos.next <= block.entries_end(),
            "{context}: {pos:?} is not an entry among {} bytes",
            block.entries_end()
        );
    }

    /// A clean decode of a damaged block: either `Corruption` from every decoder that
    /// touches the damage, or entries that tile the entries region in order, a general
    /// seek that lands on one of them, and a point seek that gives the general seek's
    /// answer. Setting a byte to the value it had must leave the block decoding exactly
    /// as before.
    #[test]
    fn every_damaged_byte_is_an_error_or_a_clean_decode() {
        let keys: Vec<Vec<u8>> = (0..20u32)
            .map(|i| format!("k{i:03}").into_bytes())
            .collect();
        let entries: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (&k[..], &b"value"[..])).collect();
        let contents = build(&entries, 4);
        let original = decode_all(&Block::new(contents.clone(), 0, "data block").unwrap()).unwrap();
        let target = Target::new(b"k010", 0);
        let mut intact_cases = 0;
        // Every seventeenth byte under Miri, which interprets each decode.
        for at in (0..contents.len()).step_by(if cfg!(miri) { 17 } else { 1 }) {
            for byte in [0u8, 0x7f, 0x80, 0xff] {
                let context = format!("byte {at} set to {byte:#04x}");
                let intact = contents[at] == byte;
                intact_cases += usize::from(intact);
                let mut damaged = contents.to_vec();
                damaged[at] = byte;
                let block = Block::new(Bytes::from(damaged), 0, "data block");
                let Some(block) = assert_corruption(block, intact, &context) else {
                    continue;
                };

                let mut next = 0;
                let walk = block.for_each(|_, pos| {
                    assert_eq!(pos.offset, next, "{context}: entries do not tile the block");
                    assert_within(&block, pos, &context);
                    next = pos.next;
                    Ok(())
                });
                if assert_corruption(walk, intact, &context).is_some() {
                    assert_eq!(next, block.entries_end(), "{context}: entries end early");
                }
                if intact {
                    assert_eq!(decode_all(&block).unwrap(), original, "{context}");
                }

                let mut key = Vec::new();
                let found = block.seek(&mut key, |k| target.is_before(k));
                let general = assert_corruption(found, intact, &context).map(|found| {
                    found.map_or(PointSeek::PastEnd, |pos| {
                        assert_within(&block, pos, &context);
                        point_entry(&key, target.user_key, pos)
                    })
                });
                if intact {
                    assert_eq!(key, b"k010", "{context}");
                }
                let point = block.view().seek_point(&target);
                match (assert_corruption(point, intact, &context), general) {
                    (Some(point), Some(general)) => assert_eq!(point, general, "{context}"),
                    (None, None) => {}
                    (point, general) => panic!(
                        "{context}: the point seek found {point:?}, the general seek {general:?}"
                    ),
                }
            }
        }
        assert!(
            intact_cases > 0,
            "no case rewrites a byte with its own value"
        );
    }

    /// The point seek agrees with the general seek on every target, in blocks whose keys
    /// share prefixes, repeat user keys with several versions, and run longer than the
    /// stack buffer (so the fallback runs too).
    #[test]
    fn point_seek_agrees_with_seek() {
        use crate::format::{compare_encoded, put_internal_key};
        use floe_core::{ValueKind, pack_trailer};

        // Under Miri, which interprets every seek, fewer keys, snapshots and restart
        // intervals: eight keys still include long keys on both sides of the stack
        // buffer's length, the snapshots still fall below, on, between and above the
        // versions, and the intervals still include one restart per entry, several
        // entries per restart, and a single restart for the whole block.
        let count: u32 = if cfg!(miri) { 8 } else { 40 };
        let (seqnos, intervals): (&[u64], &[usize]) = if cfg!(miri) {
            (&[0, 10, 15, 100], &[1, 16, 1000])
        } else {
            (&[0, 5, 10, 15, 30, 100], &[1, 2, 3, 16, 1000])
        };
        let mut user_keys: Vec<Vec<u8>> = Vec::new();
        for i in 0..count {
            user_keys.push(
                format!("k{:02}", i % 7)
                    .repeat(1 + (i as usize % 3))
                    .into_bytes(),
            );
            user_keys.push(format!("user{i:03}").into_bytes());
            user_keys.push(vec![b'x'; 100 + i as usize * 3]);
        }
        user_keys.push(Vec::new());
        user_keys.push(b"abc".to_vec());
        user_keys.sort();
        user_keys.dedup();
        let mut encoded = Vec::new();
        for (i, user_key) in user_keys.iter().enumerate() {
            // One to three versions of each user key, newest first.
            for seqno in (1..=(1 + i as u64 % 3)).rev() {
                let mut key = Vec::new();
                put_internal_key(&mut key, user_key, seqno * 10, ValueKind::Put);
                encoded.push(key);
            }
        }
        let entries: Vec<(&[u8], &[u8])> = encoded.iter().map(|k| (&k[..], &b"v"[..])).collect();
        let mut targets: Vec<(Vec<u8>, u64)> = Vec::new();
        for user_key in user_keys.iter().chain([&b"zzz".to_vec(), &b"k".to_vec()]) {
            for &seqno in seqnos {
                targets.push((user_key.clone(), pack_trailer(seqno, ValueKind::Put)));
            }
            let mut longer = user_key.clone();
            longer.push(0);
            targets.push((longer, pack_trailer(7, ValueKind::Put)));
        }
        for &interval in intervals {
            let block = Block::new(build(&entries, interval), 0, "data block").unwrap();
            let view = block.view();
            for (user_key, trailer) in &targets {
                let mut key = Vec::new();
                let expected =
                    match view.seek(&mut key, |k| compare_encoded(k, user_key, *trailer).is_lt()) {
                        Ok(Some(pos)) => point_entry(&key, user_key, pos),
                        Ok(None) => PointSeek::PastEnd,
                        Err(err) => panic!("{err}"),
                    };
                let found = view.seek_point(&Target::new(user_key, *trailer)).unwrap();
                assert_eq!(
                    found, expected,
                    "interval {interval} target {user_key:?}/{trailer}"
                );
            }
        }
    }
}
