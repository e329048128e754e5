//! The properties block and [`TableMeta`], the facts about a table that the engine keeps.
//!
//! Contents of the properties block, in order: `entries varint | data_blocks varint |
//! min_seqno varint | max_seqno varint | smallest (varint length, encoded internal key) |
//! largest (varint length, encoded internal key)`.

use bytes::Bytes;
use floe_core::coding::{Decoder, put_length_prefixed, put_varint};
use floe_core::{InternalKey, MAX_SEQNO, SeqNo};

use crate::error::{Error, Result};
use crate::format::{compare_encoded_keys, parse_internal_key, put_internal_key};

/// What a finished table holds: returned by `TableBuilder::finish` and `Table::meta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMeta {
    /// The table's size in bytes, footer included.
    pub file_size: u64,
    /// The number of entries (every version of every key counts).
    pub entries: u64,
    /// The first internal key of the table.
    pub smallest: InternalKey,
    /// The last internal key of the table.
    pub largest: InternalKey,
    /// The lowest sequence number of any entry.
    pub min_seqno: SeqNo,
    /// The highest sequence number of any entry.
    pub max_seqno: SeqNo,
}

/// The decoded properties block: the meta plus the block count that the reader checks
/// against the index.
#[derive(Debug, Clone)]
pub(crate) struct Properties {
    pub(crate) meta: TableMeta,
    pub(crate) data_blocks: u64,
}

impl Properties {
    /// The contents of the properties block.
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
        out
    }

    /// Decodes and checks the properties block's contents; `file_size` fills the meta and
    /// `offset` locates the block in error messages.
    pub(crate) fn decode(contents: &[u8], file_size: u64, offset: u64) -> Result<Properties> {
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
        };
        if entries == 0 || data_blocks == 0 || data_blocks > entries {
            return Err(corrupt("impossible entry or block count"));
        }
        if min_seqno > max_seqno || max_seqno > MAX_SEQNO {
            return Err(corrupt("impossible sequence-number range"));
        }
        if compare_encoded_keys(smallest, largest).is_gt() {
            return Err(corrupt("the smallest key sorts after the largest"));
        }
        Ok(Properties { meta, data_blocks })
    }
}
