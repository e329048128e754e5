//! The byte layout of a table file: block frames, the footer, and encoded internal keys.
//!
//! `docs/format.md` draws every layout defined here. A table is
//! `data blocks | filter block | [range tombstone block] | index block | properties block |
//! footer`, laid end to end with no gaps (the range tombstone block only from format
//! version 2 on, and only when the table has range tombstones); the reader checks that the
//! handles in the footer and the index tile the file exactly, so no byte of a table
//! escapes both a checksum and a structural check.

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use floe_core::checksum::crc32;
use floe_core::coding::{Decoder, put_u32, put_u64};
use floe_core::{SeqNo, ValueKind, pack_trailer, unpack_trailer};
use std::cmp::Ordering;

use crate::error::{Error, Result};

/// The magic number in the last eight bytes of every table ("floe-sst" read as a
/// little-endian integer, so a hex dump of the file ends in that text).
pub const MAGIC: u64 = u64::from_le_bytes(*b"floe-sst");

/// The format version this crate writes. The reader reads this one, version 2 (no
/// compressed blocks) and version 1 (no range tombstones either).
pub const FORMAT_VERSION: u32 = 3;

/// The oldest format version the reader accepts: version 1 has no range tombstone block
/// and a shorter properties block.
pub(crate) const OLDEST_READABLE_VERSION: u32 = 1;

/// The first format version with a range tombstone block and range tombstone counts in
/// the properties block.
pub(crate) const RANGE_TOMBSTONE_VERSION: u32 = 2;

/// The first format version whose data blocks may be compressed (frames of type 6).
pub(crate) const COMPRESSION_VERSION: u32 = 3;

/// The size of the footer in bytes.
pub const FOOTER_LEN: usize = 64;

/// The bytes a block frame adds around its contents: a type byte and a `u32` length
/// before, a `u32` CRC after.
pub(crate) const FRAME_OVERHEAD: usize = 9;

/// The size of the trailer that ends every encoded internal key.
pub(crate) const TRAILER_LEN: usize = 8;

/// What a block frame holds; the type byte is covered by the frame's checksum, so a block
/// can never be read as a block of another kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum BlockType {
    /// Sorted entries of internal keys and values.
    Data = 1,
    /// The last key of each data block and the block's handle.
    Index = 2,
    /// The bloom filter over user keys.
    Filter = 3,
    /// Table-wide facts: key range, sequence range, counts.
    Properties = 4,
    /// The table's range tombstones, fragmented (format version 2 on).
    RangeTombstones = 5,
    /// A data block, compressed (format version 3 on; see `crate::compression`).
    CompressedData = 6,
}

impl BlockType {
    /// A lower-case name for error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            BlockType::Data => "data block",
            BlockType::Index => "index block",
            BlockType::Filter => "filter block",
            BlockType::Properties => "properties block",
            BlockType::RangeTombstones => "range tombstone block",
            BlockType::CompressedData => "compressed data block",
        }
    }
}

/// Where a block's frame lies in the file: its first byte and the length of its contents
/// (the frame is `len + FRAME_OVERHEAD` bytes long).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockHandle {
    /// The offset of the frame's type byte.
    pub(crate) offset: u64,
    /// The length of the block's contents, excluding the frame.
    pub(crate) len: u64,
}

impl BlockHandle {
    /// The offset one past the frame's last byte, or `None` on overflow.
    pub(crate) fn end(self) -> Option<u64> {
        self.offset
            .checked_add(self.len)?
            .checked_add(FRAME_OVERHEAD as u64)
    }
}

/// Appends a framed block: `type | len u32 | contents | crc32(type, len, contents)`.
///
/// The caller guarantees `contents.len() <= u32::MAX`.
pub(crate) fn put_frame(out: &mut Vec<u8>, block_type: BlockType, contents: &[u8]) {
    debug_assert!(u32::try_from(contents.len()).is_ok(), "block too large");
    let mut header = [0u8; 5];
    header[0] = block_type as u8;
    header[1..].copy_from_slice(&(contents.len() as u32).to_le_bytes());
    let crc = crc32(&[&header, contents]);
    out.extend_from_slice(&header);
    out.extend_from_slice(contents);
    put_u32(out, crc);
}

/// Checks the frame at `handle` in `file` and returns the range of its contents.
///
/// Every check uses checked arithmetic against the file's length, so a damaged handle can
/// neither panic nor reach outside the file.
#[cfg(test)]
pub(crate) fn check_frame(
    file: &[u8],
    handle: BlockHandle,
    block_type: BlockType,
) -> Result<std::ops::Range<usize>> {
    check_frame_in(file, 0, file.len() as u64, handle, block_type)
}

/// [`check_frame`] for a frame in `region`, the bytes of a `file_len`-byte file from
/// byte `base` on: the range returned is within `region`, and errors name file offsets.
pub(crate) fn check_frame_in(
    region: &[u8],
    base: u64,
    file_len: u64,
    handle: BlockHandle,
    block_type: BlockType,
) -> Result<std::ops::Range<usize>> {
    check_frame_of(region, base, file_len, handle, block_type, None).map(|(range, _)| range)
}

/// [`check_frame_in`] for a data block, which from format version 3 on may be compressed:
/// also returns whether it is (a frame of type 6), accepted only if `compressed_ok`.
pub(crate) fn check_data_frame_in(
    region: &[u8],
    base: u64,
    file_len: u64,
    handle: BlockHandle,
    compressed_ok: bool,
) -> Result<(std::ops::Range<usize>, bool)> {
    let also = compressed_ok.then_some(BlockType::CompressedData);
    check_frame_of(region, base, file_len, handle, BlockType::Data, also)
        .map(|(range, ty)| (range, ty == BlockType::CompressedData as u8))
}

/// Checks a frame of type `block_type` (or `also`, if given) and returns its contents'
/// range and its type byte.
fn check_frame_of(
    region: &[u8],
    base: u64,
    file_len: u64,
    handle: BlockHandle,
    block_type: BlockType,
    also: Option<BlockType>,
) -> Result<(std::ops::Range<usize>, u8)> {
    let name = block_type.name();
    let at = handle.offset;
    let frame = handle
        .end()
        .filter(|&end| end <= file_len)
        .and_then(|end| {
            let start = usize::try_from(at.checked_sub(base)?).ok()?;
            // `end >= at >= base`.
            let end = usize::try_from(end - base).ok()?;
            Some((start, region.get(start..end)?))
        })
        .ok_or_else(|| {
            Error::corruption(format!(
                "{name} at byte {at} with {} bytes of contents runs past the end of the {file_len}-byte file",
                handle.len,
            ))
        })?;
    let (start, frame) = frame;
    let mut dec = Decoder::new(frame);
    let (Some(type_byte), Some(len)) = (dec.u8(), dec.u32()) else {
        return Err(Error::corruption(format!(
            "{name} at byte {at}: frame too short"
        )));
    };
    if type_byte != block_type as u8 && also.is_none_or(|also| type_byte != also as u8) {
        return Err(Error::corruption(format!(
            "{name} at byte {at}: frame says type {type_byte}, expected {}",
            block_type as u8
        )));
    }
    if u64::from(len) != handle.len {
        return Err(Error::corruption(format!(
            "{name} at byte {at}: frame says {len} bytes of contents, its handle says {}",
            handle.len
        )));
    }
    // The frame is `len + FRAME_OVERHEAD` bytes long, so it holds its checksum.
    let Some((body, stored)) = frame.split_last_chunk::<4>() else {
        return Err(Error::corruption(format!(
            "{name} at byte {at}: frame too short"
        )));
    };
    let stored = u32::from_le_bytes(*stored);
    let actual = crc32(&[body]);
    // Fuzzing builds skip the comparison so that the fuzzer reaches the decoders behind it.
    if stored != actual && !cfg!(fuzzing) {
        return Err(Error::corruption(format!(
            "{name} at byte {at}: checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
        )));
    }
    Ok((start + 5..start + body.len(), type_byte))
}

/// The fixed-size record at the end of every table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub(crate) filter: BlockHandle,
    pub(crate) index: BlockHandle,
    pub(crate) properties: BlockHandle,
    /// The format version of the table: [`FORMAT_VERSION`] when writing, any readable
    /// version when read.
    pub(crate) version: u32,
}

impl Footer {
    /// Appends the 64-byte footer.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        // The checksummed first 52 bytes, gathered apart from `out` so that the checksum
        // needs no offsets into it.
        let mut head = Vec::with_capacity(52);
        for handle in [self.filter, self.index, self.properties] {
            put_u64(&mut head, handle.offset);
            put_u64(&mut head, handle.len);
        }
        put_u32(&mut head, self.version);
        debug_assert_eq!(head.len(), 52);
        let start = out.len();
        out.extend_from_slice(&head);
        put_u32(out, crc32(&[&head, &MAGIC.to_le_bytes()]));
        put_u64(out, MAGIC);
        debug_assert_eq!(out.len() - start, FOOTER_LEN);
    }

    /// Decodes and checks the footer at the end of `file`.
    pub(crate) fn decode(file: &[u8]) -> Result<Footer> {
        let len = file.len() as u64;
        let Some(raw) = file.last_chunk::<FOOTER_LEN>() else {
            return Err(too_short(len));
        };
        Footer::decode_at(raw, len - FOOTER_LEN as u64)
    }

    /// Decodes and checks the footer `raw`, read from byte `at` of its file.
    pub(crate) fn decode_at(raw: &[u8; FOOTER_LEN], at: u64) -> Result<Footer> {
        let mut dec = Decoder::new(raw);
        let mut next = || dec.u64().unwrap_or(0);
        let filter = BlockHandle {
            offset: next(),
            len: next(),
        };
        let index = BlockHandle {
            offset: next(),
            len: next(),
        };
        let properties = BlockHandle {
            offset: next(),
            len: next(),
        };
        let mut tail = Decoder::new(&raw[48..]);
        let version = tail.u32().unwrap_or(0);
        let stored_crc = tail.u32().unwrap_or(0);
        let magic = tail.u64().unwrap_or(0);
        if magic != MAGIC {
            return Err(Error::corruption(format!(
                "footer at byte {at}: bad magic number {magic:#018x}; this is not a floe table or its end is missing"
            )));
        }
        let crc = crc32(&[&raw[..52], &raw[56..]]);
        if crc != stored_crc && !cfg!(fuzzing) {
            return Err(Error::corruption(format!(
                "footer at byte {at}: checksum mismatch (stored {stored_crc:#010x}, computed {crc:#010x})"
            )));
        }
        if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(Error::corruption(format!(
                "footer at byte {at}: format version {version}; this reader knows versions {OLDEST_READABLE_VERSION} to {FORMAT_VERSION}"
            )));
        }
        Ok(Footer {
            filter,
            index,
            properties,
            version,
        })
    }
}

/// The error for a file too short to hold a footer.
pub(crate) fn too_short(len: u64) -> Error {
    Error::corruption(format!(
        "the file is {len} bytes, shorter than the {FOOTER_LEN}-byte footer"
    ))
}

/// Appends the encoded internal key `user_key | trailer u64 LE`.
pub(crate) fn put_internal_key(out: &mut Vec<u8>, user_key: &[u8], seqno: SeqNo, kind: ValueKind) {
    out.extend_from_slice(user_key);
    put_u64(out, pack_trailer(seqno, kind));
}

/// Splits an encoded internal key into its user key and trailer; `None` if it is shorter
/// than a trailer.
pub(crate) fn split_internal_key(encoded: &[u8]) -> Option<(&[u8], u64)> {
    let cut = encoded.len().checked_sub(TRAILER_LEN)?;
    let (user_key, trailer) = encoded.split_at(cut);
    let mut raw = [0u8; 8];
    raw.copy_from_slice(trailer);
    Some((user_key, u64::from_le_bytes(raw)))
}

/// Splits and checks an encoded internal key; `None` if it is too short or its kind byte
/// is unknown.
pub(crate) fn parse_internal_key(encoded: &[u8]) -> Option<(&[u8], SeqNo, ValueKind)> {
    let (user_key, trailer) = split_internal_key(encoded)?;
    let (seqno, kind) = unpack_trailer(trailer)?;
    Some((user_key, seqno, kind))
}

/// Compares an encoded internal key with one given by user key and trailer, in internal
/// key order (user key ascending, trailer descending). A key too short to hold a trailer
/// sorts by its bytes with trailer 0; callers reject such keys before they matter.
pub(crate) fn compare_encoded(encoded: &[u8], user_key: &[u8], trailer: u64) -> Ordering {
    let (a_user, a_trailer) = split_internal_key(encoded).unwrap_or((encoded, 0));
    a_user.cmp(user_key).then_with(|| trailer.cmp(&a_trailer))
}

/// A user key's first eight bytes as a big-endian integer, zero-padded. If two keys'
/// prefixes differ, they order the keys as the bytes do: at the first differing byte
/// either both keys have a byte, or the shorter key is a prefix of the longer. Equal
/// prefixes decide nothing.
#[inline]
pub(crate) fn key_prefix(user_key: &[u8]) -> u64 {
    // Most keys have eight bytes: one load, where the general case copies bytes one by one.
    if let Some(&head) = user_key.first_chunk::<8>() {
        return u64::from_be_bytes(head);
    }
    let mut raw = [0u8; 8];
    for (to, &from) in raw.iter_mut().zip(user_key) {
        *to = from;
    }
    u64::from_be_bytes(raw)
}

/// Compares two encoded internal keys in internal key order.
pub(crate) fn compare_encoded_keys(a: &[u8], b: &[u8]) -> Ordering {
    let (b_user, b_trailer) = split_internal_key(b).unwrap_or((b, 0));
    compare_encoded(a, b_user, b_trailer)
}

#[cfg(test)]
#[expect(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "a test panics to fail"
)]
mod tests {
    use super::*;

    #[test]
    fn footer_round_trips_and_detects_damage() {
        let footer = Footer {
            filter: BlockHandle {
                offset: 10,
                len: 20,
            },
            index: BlockHandle { offset: 39, len: 7 },
            properties: BlockHandle {
                offset: 55,
                len: 30,
            },
            version: FORMAT_VERSION,
        };
        let mut file = vec![0xaa; 3];
        footer.encode(&mut file);
        assert_eq!(file.len(), 3 + FOOTER_LEN);
        assert_eq!(&file[file.len() - 8..], b"floe-sst");
        assert_eq!(Footer::decode(&file).unwrap(), footer);
        // Every seventh bit under Miri, which interprets each decode; seven is coprime to
        // eight, so the flips still land on every bit position within a byte.
        for bit in (0..FOOTER_LEN * 8).step_by(if cfg!(miri) { 7 } else { 1 }) {
            let mut damaged = file.clone();
            damaged[3 + bit / 8] ^= 1 << (bit % 8);
            assert!(Footer::decode(&damaged).unwrap_err().is_corruption());
        }
        assert!(Footer::decode(&file[1..]).is_ok());
        assert!(Footer::decode(&file[..file.len() - 1]).is_err());
        assert!(Footer::decode(&[]).is_err());
        // Every readable version decodes; the ones around them do not.
        for version in [
            0,
            OLDEST_READABLE_VERSION,
            FORMAT_VERSION,
            FORMAT_VERSION + 1,
        ] {
            let mut file = Vec::new();
            Footer { version, ..footer }.encode(&mut file);
            let readable = (OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version);
            assert_eq!(Footer::decode(&file).is_ok(), readable, "version {version}");
        }
    }

    #[test]
    fn frames_check_type_length_bounds_and_checksum() {
        let mut file = vec![7u8; 5];
        put_frame(&mut file, BlockType::Index, b"contents");
        let handle = BlockHandle { offset: 5, len: 8 };
        let range = check_frame(&file, handle, BlockType::Index).unwrap();
        assert_eq!(&file[range], b"contents");
        assert!(check_frame(&file, handle, BlockType::Data).is_err());
        let long = BlockHandle { offset: 5, len: 9 };
        assert!(check_frame(&file, long, BlockType::Index).is_err());
        let huge = BlockHandle {
            offset: u64::MAX - 3,
            len: u64::MAX,
        };
        assert!(check_frame(&file, huge, BlockType::Index).is_err());
        for bit in 0..(file.len() - 5) * 8 {
            let mut damaged = file.clone();
            damaged[5 + bit / 8] ^= 1 << (bit % 8);
            assert!(check_frame(&damaged, handle, BlockType::Index).is_err());
        }
    }

    #[test]
    fn encoded_keys_order_like_internal_keys() {
        let mut a = Vec::new();
        put_internal_key(&mut a, b"k", 5, ValueKind::Put);
        let mut b = Vec::new();
        put_internal_key(&mut b, b"k", 4, ValueKind::Put);
        let mut c = Vec::new();
        put_internal_key(&mut c, b"k\0", 9, ValueKind::Delete);
        assert_eq!(compare_encoded_keys(&a, &b), Ordering::Less);
        assert_eq!(compare_encoded_keys(&b, &c), Ordering::Less);
        assert_eq!(compare_encoded_keys(&c, &c), Ordering::Equal);
        assert_eq!(
            parse_internal_key(&c),
            Some((&b"k\0"[..], 9, ValueKind::Delete))
        );
        assert_eq!(parse_internal_key(b"short"), None);
    }

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
