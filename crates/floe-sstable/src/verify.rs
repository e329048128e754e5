//! [`Table::verify`]: reads a whole table file and reports every damaged structure with its
//! byte offset, for tools that check a database at rest (`floe verify`).
//!
//! A lookup or a scan checks only the blocks it reads and stops at the first damage; this
//! reads every data block, checks each checksum, decodes every entry and checks the entries'
//! order within and across blocks against the index, and goes on past a damaged block, so
//! that one pass names all of them. It decodes with the reader's own functions (the footer,
//! the frame check, the block and index decoders); nothing here re-implements the format.

use bytes::Bytes;

use crate::block::Block;
use crate::compression::decompress;
use crate::error::Error;
use crate::format::{
    BlockHandle, BlockType, COMPRESSION_VERSION, FOOTER_LEN, FRAME_OVERHEAD, Footer,
    check_data_frame_in, check_frame_in, compare_encoded_keys, parse_internal_key,
};
use crate::index::Index;
use crate::properties::TableMeta;
use crate::table::Table;

/// One damaged structure of a table: where it starts and what is wrong.
#[derive(Debug)]
#[non_exhaustive]
pub struct TableDamage {
    /// The byte offset of the damaged structure (a block frame's type byte, or the
    /// footer) in the file.
    pub offset: u64,
    /// What is wrong, as a `Corruption` error that names the structure.
    pub error: Error,
}

/// What [`Table::verify`] found in one table file.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct TableVerification {
    /// The table's properties, when its footer and meta blocks are sound (the data blocks
    /// are checked only then: without the index nothing says where they lie).
    pub meta: Option<TableMeta>,
    /// The data blocks read, damaged ones included.
    pub data_blocks: u64,
    /// The entries decoded from sound data blocks.
    pub entries: u64,
    /// Every damage found, in file order.
    pub damages: Vec<TableDamage>,
}

impl TableVerification {
    /// Whether nothing is damaged.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.damages.is_empty()
    }
}

impl Table {
    /// Checks every byte of the table file `file`: opens it as [`Table::open`] does (the
    /// footer, the meta blocks and their cross-checks), then reads every data block,
    /// checking its frame and checksum, decoding each entry's key, and checking that the
    /// keys strictly increase and that each block ends at its index key; the entry count
    /// must match the properties. A damaged data block is reported and skipped, and
    /// the check goes on with the next one. `progress` is called with the file bytes each
    /// step covered; together they add up to the file's length.
    ///
    /// Never panics and never allocates more than the input justifies, whatever the bytes.
    #[must_use]
    pub fn verify(file: Bytes, mut progress: impl FnMut(u64)) -> TableVerification {
        let file_len = file.len() as u64;
        let mut found = TableVerification::default();
        let table = match Table::open(file.clone()) {
            Ok(table) => table,
            Err(error) => {
                found.damages.push(TableDamage {
                    offset: meta_damage_offset(&file),
                    error,
                });
                progress(file_len);
                return found;
            }
        };
        let meta = table.meta().clone();
        // The open succeeded, so the footer and the index decode again; `None` cannot
        // happen, and would only leave the data blocks unchecked.
        let Some((index, data_end, compressed_ok)) = decode_index(&file) else {
            found.damages.push(TableDamage {
                offset: file_len.saturating_sub(FOOTER_LEN as u64),
                error: Error::corruption("the index decodes on open but not on a second read"),
            });
            progress(file_len);
            return found;
        };
        let mut prev: Vec<u8> = Vec::new();
        for i in 0..index.len() {
            let handle = index.handle(i);
            found.data_blocks += 1;
            match check_data_block(&file, handle, compressed_ok, &prev, index.last_key(i)) {
                Ok(entries) => found.entries += entries,
                Err(error) => found.damages.push(TableDamage {
                    offset: handle.offset,
                    error,
                }),
            }
            // The next block's keys must follow this block's index key, whether or not
            // the block itself was sound (the index's keys were checked on open).
            prev.clear();
            prev.extend_from_slice(index.last_key(i));
            progress(handle.len + FRAME_OVERHEAD as u64);
        }
        if found.damages.is_empty() && found.entries != meta.entries {
            found.damages.push(TableDamage {
                offset: data_end,
                error: Error::corruption(format!(
                    "the data blocks hold {} entries, but the properties say {}",
                    found.entries, meta.entries
                )),
            });
        }
        progress(file_len - data_end);
        found.meta = Some(meta);
        found
    }
}

/// The decoded index of a table that [`Table::open`] accepted, where its data region
/// ends, and whether its format allows compressed data blocks.
fn decode_index(file: &Bytes) -> Option<(Index, u64, bool)> {
    let footer = Footer::decode(file).ok()?;
    let range = check_frame_in(file, 0, file.len() as u64, footer.index, BlockType::Index).ok()?;
    let block = Block::new(file.slice(range), footer.index.offset, "index block").ok()?;
    let index = Index::decode(&block, footer.filter.offset, footer.index.offset).ok()?;
    let compressed_ok = footer.version >= COMPRESSION_VERSION;
    Some((index, footer.filter.offset, compressed_ok))
}

/// Reads the data block at `handle` (decompressing it if it is compressed, which a table of
/// format version 3 on may be: `compressed_ok`) and decodes its entries: every key is a
/// valid internal key sorting after the one before (`prev`, the previous block's index
/// key, empty for the first block), and the last is `last_key`, the block's index key.
/// Returns the number of entries.
fn check_data_block(
    file: &Bytes,
    handle: BlockHandle,
    compressed_ok: bool,
    prev: &[u8],
    last_key: &[u8],
) -> Result<u64, Error> {
    let at = handle.offset;
    let (range, compressed) =
        check_data_frame_in(file, 0, file.len() as u64, handle, compressed_ok)?;
    let contents = if compressed {
        decompress(file.get(range).unwrap_or_default(), at)?
    } else {
        file.slice(range)
    };
    let block = Block::new(contents, at, "data block")?;
    let mut entries = 0u64;
    // The previous key, kept in one buffer swapped with the decoder's, so that no entry
    // allocates.
    let mut before = prev.to_vec();
    let mut first = prev.is_empty();
    block.for_each(|key, pos| {
        if parse_internal_key(key).is_none() {
            return Err(Error::corruption(format!(
                "data block at byte {at}: the entry at offset {} has a malformed key",
                pos.offset
            )));
        }
        if !first && compare_encoded_keys(&before, key).is_ge() {
            return Err(Error::corruption(format!(
                "data block at byte {at}: the entry at offset {} is out of order",
                pos.offset
            )));
        }
        first = false;
        before.clear();
        before.extend_from_slice(key);
        entries += 1;
        Ok(())
    })?;
    if entries == 0 || before != last_key {
        return Err(Error::corruption(format!(
            "data block at byte {at}: its last key differs from its index key"
        )));
    }
    Ok(entries)
}

/// Where the structure lies that made [`Table::open`] refuse `file`: the footer if it does
/// not decode, else the first meta block whose frame fails its check (properties, filter,
/// range tombstones, index), else (the frames are sound but disagree with each other) the
/// properties block, which the cross-checks compare everything with.
fn meta_damage_offset(file: &Bytes) -> u64 {
    let footer_at = (file.len() as u64).saturating_sub(FOOTER_LEN as u64);
    let Ok(footer) = Footer::decode(file) else {
        return footer_at;
    };
    let mut frames = vec![
        (footer.properties, BlockType::Properties),
        (footer.filter, BlockType::Filter),
    ];
    // The range tombstone block has no handle of its own: it fills the gap between the
    // filter and the index, if there is one.
    if let Some(end) = footer.filter.end()
        && let Some(len) = footer
            .index
            .offset
            .checked_sub(end)
            .and_then(|gap| gap.checked_sub(FRAME_OVERHEAD as u64))
    {
        frames.push((BlockHandle { offset: end, len }, BlockType::RangeTombstones));
    }
    frames.push((footer.index, BlockType::Index));
    frames
        .into_iter()
        .find(|&(handle, block_type)| {
            check_frame_in(file, 0, file.len() as u64, handle, block_type).is_err()
        })
        .map_or(footer.properties.offset, |(handle, _)| handle.offset)
}

#[cfg(test)]
#[expect(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "a test panics to fail"
)]
mod tests {
    use std::sync::{Arc, Mutex};

    use floe_core::{InternalKey, ValueKind};

    use super::*;
    use crate::{Compression, TableBuilder, TableOptions};

    #[derive(Debug, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl floe_core::fs::WritableFile for Buf {
        fn sync_data(&mut self) -> std::io::Result<()> {
            Ok(())
        }
        fn sync_all(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Every codec a table's data blocks may use.
    const CODECS: [Compression; 3] = [Compression::None, Compression::Lz4, Compression::Zstd(3)];

    /// A table of 2,000 entries in 256-byte blocks, compressed with `compression`.
    fn table_bytes(compression: Compression) -> Vec<u8> {
        let out = Buf::default();
        let bytes = Arc::clone(&out.0);
        let options = TableOptions {
            block_size: 256,
            ..TableOptions::default()
        }
        .compression(compression);
        let mut builder = TableBuilder::new(Box::new(out), options);
        for i in 0..2000u32 {
            let key = format!("key{i:06}");
            builder
                .add(&InternalKey::new(key, 1, ValueKind::Put), b"value")
                .unwrap();
        }
        builder.finish().unwrap();
        bytes.lock().unwrap().clone()
    }

    #[test]
    fn a_sound_table_is_clean_and_progress_covers_the_file() {
        for codec in CODECS {
            let bytes = table_bytes(codec);
            let mut covered = 0;
            let found = Table::verify(Bytes::from(bytes.clone()), |n| covered += n);
            assert!(found.is_clean(), "{codec:?}: {:?}", found.damages);
            assert_eq!(found.entries, 2000, "{codec:?}");
            assert!(found.data_blocks > 10, "{codec:?}");
            assert_eq!(covered, bytes.len() as u64, "{codec:?}");
            assert_eq!(found.meta.unwrap().entries, 2000, "{codec:?}");
        }
    }

    #[test]
    fn every_damaged_data_block_is_named_by_its_offset() {
        for codec in CODECS {
            let bytes = table_bytes(codec);
            let table = Table::open(Bytes::from(bytes.clone())).unwrap();
            assert!(table.data_blocks() > 10);
            let (index, _, _) = decode_index(&Bytes::from(bytes.clone())).unwrap();
            let (second, fifth) = (index.handle(1).offset, index.handle(4).offset);
            let mut damaged = bytes.clone();
            damaged[second as usize + 20] ^= 0x08;
            damaged[fifth as usize + 40] ^= 0x01;
            let found = Table::verify(Bytes::from(damaged), |_| {});
            let offsets: Vec<u64> = found.damages.iter().map(|d| d.offset).collect();
            assert_eq!(offsets, [second, fifth], "{codec:?}");
            assert!(found.damages.iter().all(|d| d.error.is_corruption()));
            assert!(found.meta.is_some());
        }
    }

    #[test]
    fn damage_to_the_meta_blocks_or_footer_names_them() {
        let bytes = table_bytes(Compression::None);
        let footer = Footer::decode(&bytes).unwrap();
        for (at, expected) in [
            (footer.index.offset + 7, footer.index.offset),
            (footer.properties.offset + 6, footer.properties.offset),
            (footer.filter.offset + 9, footer.filter.offset),
            (
                bytes.len() as u64 - 20,
                bytes.len() as u64 - FOOTER_LEN as u64,
            ),
        ] {
            let mut damaged = bytes.clone();
            damaged[at as usize] ^= 0x10;
            let found = Table::verify(Bytes::from(damaged), |_| {});
            assert_eq!(found.damages.len(), 1, "flip at {at}");
            assert_eq!(found.damages[0].offset, expected, "flip at {at}");
            assert!(found.meta.is_none());
        }
    }

    #[test]
    fn every_bit_flip_is_found() {
        for codec in CODECS {
            let bytes = table_bytes(codec);
            // A stride through the file keeps the sweep fast; each flip must be damage.
            for at in (0..bytes.len()).step_by(37) {
                let mut damaged = bytes.clone();
                damaged[at] ^= 0x04;
                let found = Table::verify(Bytes::from(damaged), |_| {});
                assert!(
                    !found.is_clean(),
                    "{codec:?}: a flip at byte {at} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn compressed_blocks_are_decompressed_and_checked() {
        let bytes = table_bytes(Compression::Lz4);
        // Repetitive keys and values compress: the table is smaller than the raw one.
        assert!(bytes.len() < table_bytes(Compression::None).len());
        let found = Table::verify(Bytes::from(bytes), |_| {});
        assert!(found.is_clean(), "{:?}", found.damages);
        assert_eq!(found.entries, 2000);
    }
}
