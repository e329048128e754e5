//! Block compression: [`Compression`], the codec a table writer compresses data blocks
//! with, and the encoding of a compressed block's contents.
//!
//! A compressed data block is framed as type 6 (`docs/format.md`, "Compressed data
//! blocks"); its contents are `codec: u8 | raw_len: u32 | payload`, where `payload` is
//! the codec's output for the `raw_len` bytes of the data block it stands for. The frame's
//! checksum covers those stored bytes, so damage is caught before the decoder sees it.
//! The writer keeps a block raw unless compressing saves at least an eighth of it, and
//! never compresses a block longer than [`MAX_COMPRESSED_RAW_LEN`]; the reader refuses a
//! `raw_len` above that bound, or one that does not exceed the stored payload, before it
//! allocates anything, and a payload that decodes to any other length is corruption.

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use std::cell::RefCell;

use bytes::Bytes;

use crate::error::{Error, Result};

/// How a table writer compresses data blocks. Index, filter, range tombstone and
/// properties blocks are never compressed: they are decoded once, on open.
///
/// Data written with any setting reads back with any other: every block records its own
/// codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Blocks are stored as they are (the default).
    #[default]
    None,
    /// LZ4 (the block format, through `lz4_flex`): fast to compress and to decompress.
    Lz4,
    /// Zstandard at the given level (the `zstd` crate; 1 to 22 trade speed for size, and
    /// negative levels down to -7 are faster still, 3 is zstd's own default).
    Zstd(i32),
}

impl Compression {
    /// The Zstandard levels a table writer accepts.
    pub const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = -7..=22;

    /// Whether the setting is one a writer can use: always, except a Zstandard level
    /// outside [`Compression::ZSTD_LEVELS`].
    #[must_use]
    pub fn is_valid(self) -> bool {
        match self {
            Compression::None | Compression::Lz4 => true,
            Compression::Zstd(level) => Compression::ZSTD_LEVELS.contains(&level),
        }
    }
}

/// The largest data block the writer compresses, and the largest `raw_len` a reader
/// accepts: a block holding a single larger entry is stored raw.
pub const MAX_COMPRESSED_RAW_LEN: usize = 4 << 20;

/// The bytes before a compressed block's payload: the codec and the raw length.
const HEADER_LEN: usize = 5;

/// The most raw bytes one stored byte of LZ4 can stand for.
const LZ4_MAX_RATIO: usize = 255;

/// The codec byte of a compressed block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Codec {
    Lz4 = 1,
    Zstd = 2,
}

/// A table writer's compressor: the codec, its reusable context and the output buffer.
pub(crate) struct Compressor {
    compression: Compression,
    /// The Zstandard context, made at the first block.
    zstd: Option<zstd::bulk::Compressor<'static>>,
    /// The compressed contents of the last block compressed.
    out: Vec<u8>,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("compression", &self.compression)
            .finish_non_exhaustive()
    }
}

impl Compressor {
    /// A compressor for `compression`.
    ///
    /// # Errors
    /// `InvalidArgument` for a Zstandard level outside [`Compression::ZSTD_LEVELS`].
    pub(crate) fn new(compression: Compression) -> Result<Compressor> {
        if !compression.is_valid() {
            return Err(Error::invalid(format!(
                "{compression:?}: Zstandard levels run from {} to {}",
                Compression::ZSTD_LEVELS.start(),
                Compression::ZSTD_LEVELS.end()
            )));
        }
        Ok(Compressor {
            compression,
            zstd: None,
            out: Vec::new(),
        })
    }

    /// Whether the compressor compresses at all.
    pub(crate) fn is_on(&self) -> bool {
        self.compression != Compression::None
    }

    /// The contents of a compressed block standing for `raw`, if compression is on, `raw`
    /// is at most [`MAX_COMPRESSED_RAW_LEN`] long and compressing saves at least an eighth
    /// of it; `None` means the block is stored raw.
    ///
    /// # Errors
    /// `Io` if the Zstandard context cannot be made (out of memory).
    pub(crate) fn compress(&mut self, raw: &[u8]) -> Result<Option<&[u8]>> {
        if raw.is_empty() || raw.len() > MAX_COMPRESSED_RAW_LEN {
            return Ok(None);
        }
        let Ok(raw_len) = u32::try_from(raw.len()) else {
            return Ok(None);
        };
        let budget = raw.len() - raw.len() / 8;
        self.out.clear();
        let codec = match self.compression {
            Compression::None => return Ok(None),
            Compression::Lz4 => {
                let bound = lz4_flex::block::get_maximum_output_size(raw.len());
                self.out.resize(HEADER_LEN + bound, 0);
                let Some(room) = self.out.get_mut(HEADER_LEN..) else {
                    return Ok(None);
                };
                let Ok(len) = lz4_flex::block::compress_into(raw, room) else {
                    return Ok(None);
                };
                self.out.truncate(HEADER_LEN + len);
                Codec::Lz4
            }
            Compression::Zstd(level) => {
                let context = match &mut self.zstd {
                    Some(context) => context,
                    None => self.zstd.insert(zstd::bulk::Compressor::new(level)?),
                };
                let bound = zstd::zstd_safe::compress_bound(raw.len());
                self.out.resize(HEADER_LEN + bound, 0);
                let Some(room) = self.out.get_mut(HEADER_LEN..) else {
                    return Ok(None);
                };
                let Ok(len) = context.compress_to_buffer(raw, room) else {
                    return Ok(None);
                };
                self.out.truncate(HEADER_LEN + len);
                Codec::Zstd
            }
        };
        if self.out.len() > budget {
            return Ok(None);
        }
        let [b0, b1, b2, b3] = raw_len.to_le_bytes();
        if let Some(header) = self.out.get_mut(..HEADER_LEN) {
            header.copy_from_slice(&[codec as u8, b0, b1, b2, b3]);
        }
        Ok(Some(&self.out))
    }
}

thread_local! {
    /// Each reading thread's Zstandard context, kept across blocks.
    static ZSTD: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// The data block that the compressed contents `stored` (of the frame at `offset`) stand
/// for, decompressed; every failure is `Corruption` naming the offset.
pub(crate) fn decompress(stored: &[u8], offset: u64) -> Result<Bytes> {
    let corrupt =
        |why: &str| Error::corruption(format!("compressed data block at byte {offset}: {why}"));
    let Some((&[codec, l0, l1, l2, l3], payload)) = stored.split_first_chunk::<HEADER_LEN>() else {
        return Err(corrupt("shorter than its header"));
    };
    let raw_len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    if raw_len > MAX_COMPRESSED_RAW_LEN || raw_len <= payload.len() {
        return Err(corrupt(&format!(
            "a raw length of {raw_len} bytes for {} stored bytes is impossible",
            payload.len()
        )));
    }
    let raw = match codec {
        c if c == Codec::Lz4 as u8 => {
            // An LZ4 sequence of a token and a run of 255-valued length bytes stands for
            // at most 255 bytes per stored byte.
            if raw_len > payload.len().saturating_mul(LZ4_MAX_RATIO) {
                return Err(corrupt(&format!(
                    "{} stored bytes of LZ4 cannot hold {raw_len}",
                    payload.len()
                )));
            }
            match lz4_flex::block::decompress(payload, raw_len) {
                Ok(raw) if raw.len() == raw_len => raw,
                Ok(raw) => {
                    return Err(corrupt(&format!(
                        "the LZ4 payload holds {} bytes, not {raw_len}",
                        raw.len()
                    )));
                }
                Err(err) => return Err(corrupt(&format!("the LZ4 payload is damaged ({err})"))),
            }
        }
        c if c == Codec::Zstd as u8 => {
            // The writer's frames state their content size: it must agree before anything
            // is allocated for it.
            match zstd::zstd_safe::get_frame_content_size(payload) {
                Ok(Some(size)) if size == raw_len as u64 => {}
                _ => {
                    return Err(corrupt(&format!(
                        "the Zstandard frame does not state a content size of {raw_len} bytes"
                    )));
                }
            }
            let mut raw = Vec::with_capacity(raw_len);
            let result = ZSTD.with(|cell| {
                let mut slot = cell.borrow_mut();
                let context = match &mut *slot {
                    Some(context) => context,
                    None => slot.insert(zstd::bulk::Decompressor::new()?),
                };
                context.decompress_to_buffer(payload, &mut raw)
            });
            match result {
                Ok(len) if len == raw_len => raw,
                Ok(len) => {
                    return Err(corrupt(&format!(
                        "the Zstandard payload holds {len} bytes, not {raw_len}"
                    )));
                }
                Err(err) => {
                    return Err(corrupt(&format!(
                        "the Zstandard payload is damaged ({err})"
                    )));
                }
            }
        }
        other => return Err(corrupt(&format!("unknown codec {other}"))),
    };
    Ok(Bytes::from(raw))
}

#[cfg(test)]
#[expect(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "a test panics to fail"
)]
mod tests {
    use super::*;

    fn compressible(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| b"floe compresses blocks "[i % 23])
            .collect()
    }

    #[test]
    fn every_codec_round_trips_and_incompressible_blocks_stay_raw() {
        let raw = compressible(4000);
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(7);
        let noise: Vec<u8> = (0..4000).map(|_| rand::Rng::random(&mut rng)).collect();
        for compression in [
            Compression::Lz4,
            Compression::Zstd(3),
            Compression::Zstd(-3),
        ] {
            let mut compressor = Compressor::new(compression).unwrap();
            let stored = compressor.compress(&raw).unwrap().unwrap().to_vec();
            assert!(
                stored.len() < raw.len() / 4,
                "{compression:?}: {}",
                stored.len()
            );
            assert_eq!(&decompress(&stored, 0).unwrap()[..], &raw[..]);
            assert!(
                compressor.compress(&noise).unwrap().is_none(),
                "{compression:?}"
            );
            assert!(compressor.compress(&[]).unwrap().is_none());
            let huge = vec![0u8; MAX_COMPRESSED_RAW_LEN + 1];
            assert!(compressor.compress(&huge).unwrap().is_none());
        }
        let mut off = Compressor::new(Compression::None).unwrap();
        assert!(!off.is_on());
        assert!(off.compress(&raw).unwrap().is_none());
        // The most compressible block there is stays within the readers' bounds.
        let zeros = vec![0u8; MAX_COMPRESSED_RAW_LEN];
        for compression in [Compression::Lz4, Compression::Zstd(19)] {
            let stored = Compressor::new(compression)
                .unwrap()
                .compress(&zeros)
                .unwrap()
                .unwrap()
                .to_vec();
            assert_eq!(
                decompress(&stored, 0).unwrap().len(),
                zeros.len(),
                "{compression:?}"
            );
        }
        assert!(Compressor::new(Compression::Zstd(23)).is_err());
        assert!(Compressor::new(Compression::Zstd(-8)).is_err());
    }

    #[test]
    fn damaged_compressed_contents_are_corruption_without_a_large_allocation() {
        let raw = compressible(4000);
        for compression in [Compression::Lz4, Compression::Zstd(1)] {
            let stored = Compressor::new(compression)
                .unwrap()
                .compress(&raw)
                .unwrap()
                .unwrap()
                .to_vec();
            // Every single-byte change and every cut: an error or, where a codec cannot
            // tell, the right length (the frame's checksum catches those in a table).
            for at in 0..stored.len() {
                for xor in [0x01u8, 0x80, 0xff] {
                    let mut damaged = stored.clone();
                    damaged[at] ^= xor;
                    if let Ok(block) = decompress(&damaged, 7) {
                        assert_eq!(block.len(), raw.len());
                    }
                }
                assert!(decompress(&stored[..at], 7).is_err(), "cut at {at}");
            }
            let mut huge = stored.clone();
            huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
            let err = decompress(&huge, 7).unwrap_err();
            assert!(err.to_string().contains("byte 7"), "{err}");
            let mut unknown = stored.clone();
            unknown[0] = 9;
            assert!(
                decompress(&unknown, 7)
                    .unwrap_err()
                    .to_string()
                    .contains("codec 9")
            );
        }
    }
}
