//! The properties block and [`TableMeta`], the facts about a table that the engine keeps.
//!
//! Contents of the properties block, in order: `entries varint | data_blocks varint |
//! min_seqno varint | max_seqno varint | smallest (varint length, encoded internal key) |
//! largest (varint length, encoded internal key)`, and from format version 2 on
//! `range_fragments varint | range_tombstones varint`.

use bytes::Bytes;
use floe_core::coding::{Decoder, put_length_prefixed, put_varint};
use floe_core::{InternalKey, MAX_SEQNO, SeqNo};

use crate::error::{Error, Result};
use crate::format::{
    RANGE_TOMBSTONE_VERSION, compare_encoded_keys, parse_internal_key, put_internal_key,
};

/// What a finished table holds: returned by `TableBuilder::finish` and `Table::meta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMeta {
    /// The table's size in bytes, footer included.
    pub file_size: u64,
    /// The number of point entries (every version of every key counts). Zero for a
    /// table that holds only range tombstones.
    pub entries: u64,
    /// The smallest internal key of the table: the first point entry's key or, if it
    /// sorts first, `(start, MAX_SEQNO, Delete)` for the first range tombstone fragment's
    /// start.
    pub smallest: InternalKey,
    /// The largest internal key of the table: the last point entry's key or, if it sorts
    /// last, `(inclusive_end(end), 0, Delete)` for the last range tombstone fragment's
    /// end (see `floe_core::range_del::inclusive_end`).
    pub largest: InternalKey,
    /// The lowest sequence number of any point entry or range tombstone.
    pub min_seqno: SeqNo,
    /// The highest sequence number of any point entry or range tombstone.
    pub max_seqno: SeqNo,
    /// The number of range tombstones: (fragment, sequence number) pairs in the range
    /// tombstone block. Zero for a table without one, and for every version-1 table.
    pub range_tombstones: u64,
}

/// The decoded properties block: the meta plus the counts that the reader checks against
/// the index and the range tombstone block.
#[derive(Debug, Clone)]
pub(crate) struct Properties {
    pub(crate) meta: TableMeta,
    pub(crate) data_blocks: u64,
    /// The number of range tombstone fragments (0 for version 1).
    pub(crate) range_fragments: u64,
}

impl Properties {
    /// The contents of the properties block, in the current format version.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let meta = &self.meta;
        let mut out = Vec::new();
        put_varint(&mut out, meta.entries);
        put_varint(&mut out, self.data_blocks);
        put_varint(&mut out, meta.min_seqno);
        put_varint(&mut out, meta.max_seqno);
        let mut key = Vec::new();
        for ikey in [&meta.smallest, &meta.largest] {
            key.clear();
            put_internal_key(&mut key, &ikey.user_key, ikey.seqno, ikey.kind);
            put_length_prefixed(&mut out, &key);
        }
        put_varint(&mut out, self.range_fragments);
        put_varint(&mut out, meta.range_tombstones);
        out
    }

    /// Decodes and checks the contents of a properties block of format `version`;
    /// `file_size` fills the meta and `offset` locates the block in error messages.
    pub(crate) fn decode(
        contents: &[u8],
        version: u32,
        file_size: u64,
        offset: u64,
    ) -> Result<Properties> {
        let corrupt =
            |why: &str| Error::corruption(format!("properties block at byte {offset}: {why}"));
        let mut dec = Decoder::new(contents);
        let (Some(entries), Some(data_blocks), Some(min_seqno), Some(max_seqno)) =
            (dec.varint(), dec.varint(), dec.varint(), dec.varint())
        else {
            return Err(corrupt("truncated counts"));
        };
        let (Some(smallest), Some(largest)) = (dec.length_prefixed(), dec.length_prefixed()) else {
            return Err(corrupt("truncated key range"));
        };
        let (range_fragments, range_tombstones) = if version >= RANGE_TOMBSTONE_VERSION {
            let (Some(fragments), Some(pairs)) = (dec.varint(), dec.varint()) else {
                return Err(corrupt("truncated range tombstone counts"));
            };
            (fragments, pairs)
        } else {
            (0, 0)
        };
        if !dec.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        let parse = |encoded: &[u8]| {
            parse_internal_key(encoded)
                .map(|(user_key, seqno, kind)| {
                    InternalKey::new(Bytes::copy_from_slice(user_key), seqno, kind)
                })
                .ok_or_else(|| corrupt("a boundary key is malformed"))
        };
        let meta = TableMeta {
            file_size,
            entries,
            smallest: parse(smallest)?,
            largest: parse(largest)?,
            min_seqno,
            max_seqno,
            range_tombstones,
        };
        // A table holds at least one point entry or range tombstone; data blocks hold the
        // point entries, at least one each.
        let blocks_fit = if entries == 0 {
            data_blocks == 0
        } else {
            (1..=entries).contains(&data_blocks)
        };
        if !blocks_fit || (entries == 0 && range_fragments == 0) {
            return Err(corrupt("impossible entry or block count"));
        }
        // Every fragment lists at least one sequence number.
        if range_fragments > range_tombstones || (range_fragments == 0) != (range_tombstones == 0) {
            return Err(corrupt("impossible range tombstone counts"));
        }
        if min_seqno > max_seqno || max_seqno > MAX_SEQNO {
            return Err(corrupt("impossible sequence-number range"));
        }
        if compare_encoded_keys(smallest, largest).is_gt() {
            return Err(corrupt("the smallest key sorts after the largest"));
        }
        Ok(Properties {
            meta,
            data_blocks,
            range_fragments,
        })
    }
}
