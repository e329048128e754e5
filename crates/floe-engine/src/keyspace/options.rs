//! [`KeyspaceOptions`]: the tree options of one keyspace (memtable size, table layout,
//! level sizes), and their encoding in the manifest, which keeps them across reopens.

use std::sync::Arc;

use floe_core::coding::{Decoder, put_varint};
use floe_sstable::Compression;

use crate::error::{Error, Result};
use crate::filter::{CompactionFilter, FilterRef};
use crate::options::{MAX_LEVELS, Options};

/// The tree options of a keyspace created with [`crate::Db::keyspace_with`]: what its
/// memtables, tables and levels look like. Every option left unset takes the value of the
/// database's [`Options`] at the moment the keyspace is created; the resolved values are
/// recorded in the manifest with the keyspace, so a reopen with other [`Options`] keeps
/// them. The `"default"` keyspace takes its tree options from the [`Options`] of each open.
///
/// Each setter means what the [`Options`] setter of the same name means, with the same
/// range; a value outside it makes `keyspace_with` fail with
/// [`Error::InvalidArgument`].
///
/// ```
/// let options = floe_engine::KeyspaceOptions::default()
///     .write_buffer_size(4 << 20)
///     .bloom_bits_per_key(16);
/// # let _ = options;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyspaceOptions {
    write_buffer_size: Option<usize>,
    block_size: Option<usize>,
    bloom_bits_per_key: Option<u32>,
    target_file_size: Option<u64>,
    l0_compaction_trigger: Option<usize>,
    l0_slowdown_trigger: Option<usize>,
    l0_stop_trigger: Option<usize>,
    level_size_multiplier: Option<u64>,
    max_bytes_for_level_base: Option<u64>,
    dynamic_level_bytes: Option<bool>,
    compression: Option<Compression>,
    compression_per_level: Option<Vec<Compression>>,
    /// Not recorded in the manifest: given at each open.
    compaction_filter: Option<FilterRef>,
}

impl KeyspaceOptions {
    /// The keyspace's memtable capacity (see [`Options::write_buffer_size`]).
    #[must_use]
    pub fn write_buffer_size(mut self, bytes: usize) -> KeyspaceOptions {
        self.write_buffer_size = Some(bytes);
        self
    }

    /// The target size of its tables' data blocks (see [`Options::block_size`]).
    #[must_use]
    pub fn block_size(mut self, bytes: usize) -> KeyspaceOptions {
        self.block_size = Some(bytes);
        self
    }

    /// Bloom filter bits per key of its tables (see [`Options::bloom_bits_per_key`]).
    #[must_use]
    pub fn bloom_bits_per_key(mut self, bits: u32) -> KeyspaceOptions {
        self.bloom_bits_per_key = Some(bits);
        self
    }

    /// Where compaction cuts its tables (see [`Options::target_file_size`]).
    #[must_use]
    pub fn target_file_size(mut self, bytes: u64) -> KeyspaceOptions {
        self.target_file_size = Some(bytes.max(1));
        self
    }

    /// Level-0 tables that start a compaction (see [`Options::l0_compaction_trigger`]).
    #[must_use]
    pub fn l0_compaction_trigger(mut self, tables: usize) -> KeyspaceOptions {
        self.l0_compaction_trigger = Some(tables.max(1));
        self
    }

    /// Level-0 tables that slow writes down (see [`Options::l0_slowdown_trigger`]).
    #[must_use]
    pub fn l0_slowdown_trigger(mut self, tables: usize) -> KeyspaceOptions {
        self.l0_slowdown_trigger = Some(tables);
        self
    }

    /// Level-0 tables that stop writes (see [`Options::l0_stop_trigger`]).
    #[must_use]
    pub fn l0_stop_trigger(mut self, tables: usize) -> KeyspaceOptions {
        self.l0_stop_trigger = Some(tables);
        self
    }

    /// The growth factor between levels (see [`Options::level_size_multiplier`]).
    #[must_use]
    pub fn level_size_multiplier(mut self, factor: u64) -> KeyspaceOptions {
        self.level_size_multiplier = Some(factor.max(2));
        self
    }

    /// The base level's target size (see [`Options::max_bytes_for_level_base`]).
    #[must_use]
    pub fn max_bytes_for_level_base(mut self, bytes: u64) -> KeyspaceOptions {
        self.max_bytes_for_level_base = Some(bytes.max(1));
        self
    }

    /// Whether level targets follow the data (see [`Options::dynamic_level_bytes`]).
    #[must_use]
    pub fn dynamic_level_bytes(mut self, on: bool) -> KeyspaceOptions {
        self.dynamic_level_bytes = Some(on);
        self
    }

    /// How its tables' data blocks are compressed, at every level (see
    /// [`Options::compression`]; clears a per-level list set before).
    #[must_use]
    pub fn compression(mut self, compression: Compression) -> KeyspaceOptions {
        self.compression = Some(compression);
        self.compression_per_level = Some(Vec::new());
        self
    }

    /// Its tables' compression by level (see [`Options::compression_per_level`]).
    #[must_use]
    pub fn compression_per_level(mut self, levels: &[Compression]) -> KeyspaceOptions {
        self.compression_per_level = Some(levels.to_vec());
        self
    }

    /// The keyspace's compaction filter (default none; see [`Options::compaction_filter`]).
    /// Unlike the other options it is not recorded in the database: give it whenever the
    /// keyspace is opened with [`crate::Db::keyspace_with`], which sets it on an existing
    /// keyspace too.
    #[must_use]
    pub fn compaction_filter(mut self, filter: impl CompactionFilter) -> KeyspaceOptions {
        self.compaction_filter = Some(FilterRef(Arc::new(filter)));
        self
    }

    /// The compaction filter set, if any.
    pub(crate) fn filter(&self) -> Option<&FilterRef> {
        self.compaction_filter.as_ref()
    }

    /// The database options `base` with this keyspace's tree options put in, checked
    /// against their ranges.
    pub(crate) fn resolve(&self, base: &Options) -> Result<Options> {
        let mut options = base.clone();
        let KeyspaceOptions {
            write_buffer_size,
            block_size,
            bloom_bits_per_key,
            target_file_size,
            l0_compaction_trigger,
            l0_slowdown_trigger,
            l0_stop_trigger,
            level_size_multiplier,
            max_bytes_for_level_base,
            dynamic_level_bytes,
            compression,
            compression_per_level,
            compaction_filter,
        } = self.clone();
        // A keyspace never inherits the default keyspace's filter.
        options.compaction_filter = compaction_filter;
        set(&mut options.write_buffer_size, write_buffer_size);
        set(&mut options.block_size, block_size);
        set(&mut options.bloom_bits_per_key, bloom_bits_per_key);
        set(&mut options.target_file_size, target_file_size);
        set(&mut options.l0_compaction_trigger, l0_compaction_trigger);
        set(&mut options.l0_slowdown_trigger, l0_slowdown_trigger);
        set(&mut options.l0_stop_trigger, l0_stop_trigger);
        set(&mut options.level_size_multiplier, level_size_multiplier);
        set(
            &mut options.max_bytes_for_level_base,
            max_bytes_for_level_base,
        );
        set(&mut options.dynamic_level_bytes, dynamic_level_bytes);
        set(&mut options.compression, compression);
        set(&mut options.compression_per_level, compression_per_level);
        options.validate().map_err(|err| match err {
            Error::InvalidArgument { message } => {
                Error::invalid(message.replacen("Options::", "KeyspaceOptions::", 1))
            }
            other => other,
        })?;
        Ok(options)
    }

    /// The tree options of `options`, every one set (what the manifest records).
    pub(crate) fn of(options: &Options) -> KeyspaceOptions {
        KeyspaceOptions {
            write_buffer_size: Some(options.write_buffer_size),
            block_size: Some(options.block_size),
            bloom_bits_per_key: Some(options.bloom_bits_per_key),
            target_file_size: Some(options.target_file_size),
            l0_compaction_trigger: Some(options.l0_compaction_trigger),
            l0_slowdown_trigger: Some(options.l0_slowdown_trigger),
            l0_stop_trigger: Some(options.l0_stop_trigger),
            level_size_multiplier: Some(options.level_size_multiplier),
            max_bytes_for_level_base: Some(options.max_bytes_for_level_base),
            dynamic_level_bytes: Some(options.dynamic_level_bytes),
            compression: Some(options.compression),
            compression_per_level: Some(options.compression_per_level.clone()),
            compaction_filter: None,
        }
    }

    /// The manifest encoding: a tagged varint per option that is set (see
    /// `docs/format-log.md`, "Keyspaces").
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let fields = [
            (1, self.write_buffer_size.map(as_u64)),
            (2, self.block_size.map(as_u64)),
            (3, self.bloom_bits_per_key.map(u64::from)),
            (4, self.target_file_size),
            (5, self.l0_compaction_trigger.map(as_u64)),
            (6, self.l0_slowdown_trigger.map(as_u64)),
            (7, self.l0_stop_trigger.map(as_u64)),
            (8, self.level_size_multiplier),
            (9, self.max_bytes_for_level_base),
            (10, self.dynamic_level_bytes.map(u64::from)),
            (11, self.compression.map(compression_code)),
            (
                12,
                self.compression_per_level.as_ref().map(|l| as_u64(l.len())),
            ),
        ];
        let levels = self.compression_per_level.iter().flatten();
        let per_level = (PER_LEVEL_TAG..).zip(levels.map(|&c| Some(compression_code(c))));
        for (tag, value) in fields.into_iter().chain(per_level) {
            if let Some(value) = value {
                put_varint(&mut out, tag);
                put_varint(&mut out, value);
            }
        }
        out
    }

    /// Decodes [`KeyspaceOptions::encode`]; an unknown tag, a repeated one or a value that
    /// does not fit its option is `Corruption`.
    pub(crate) fn decode(bytes: &[u8]) -> Result<KeyspaceOptions> {
        let corrupt = |what: &str| Error::corruption(format!("keyspace options: {what}"));
        let mut options = KeyspaceOptions::default();
        let mut decoder = Decoder::new(bytes);
        let mut seen = 0u32;
        // The per-level compressions that tag 12 announced.
        let mut levels = 0;
        let bad_codec = || corrupt("unknown compression");
        while !decoder.is_empty() {
            let tag = decoder
                .varint()
                .ok_or_else(|| corrupt("a tag is truncated"))?;
            let value = decoder
                .varint()
                .ok_or_else(|| corrupt(&format!("the value of option {tag} is truncated")))?;
            let bit = u32::try_from(tag)
                .ok()
                .and_then(|tag| 1u32.checked_shl(tag))
                .ok_or_else(|| corrupt(&format!("unknown option tag {tag}")))?;
            if seen & bit != 0 {
                return Err(corrupt(&format!("option {tag} appears twice")));
            }
            seen |= bit;
            let size = || usize::try_from(value).map_err(|_| corrupt("a size is too large"));
            match tag {
                1 => options.write_buffer_size = Some(size()?),
                2 => options.block_size = Some(size()?),
                3 => {
                    options.bloom_bits_per_key = Some(
                        u32::try_from(value).map_err(|_| corrupt("bloom bits are too large"))?,
                    );
                }
                4 => options.target_file_size = Some(value),
                5 => options.l0_compaction_trigger = Some(size()?),
                6 => options.l0_slowdown_trigger = Some(size()?),
                7 => options.l0_stop_trigger = Some(size()?),
                8 => options.level_size_multiplier = Some(value),
                9 => options.max_bytes_for_level_base = Some(value),
                10 if value <= 1 => options.dynamic_level_bytes = Some(value == 1),
                11 => options.compression = Some(compression_of(value).ok_or_else(bad_codec)?),
                12 if value <= MAX_LEVELS as u64 => {
                    options.compression_per_level = Some(Vec::with_capacity(value as usize));
                    levels = value;
                }
                tag if (PER_LEVEL_TAG..PER_LEVEL_TAG + MAX_LEVELS as u64).contains(&tag) => {
                    let list = options
                        .compression_per_level
                        .as_mut()
                        .filter(|list| list.len() as u64 == tag - PER_LEVEL_TAG)
                        .ok_or_else(|| corrupt(&format!("option {tag} is out of order")))?;
                    list.push(compression_of(value).ok_or_else(bad_codec)?);
                }
                _ => {
                    return Err(corrupt(&format!(
                        "unknown option tag {tag} or value {value}"
                    )));
                }
            }
        }
        if options
            .compression_per_level
            .as_ref()
            .is_some_and(|list| list.len() as u64 != levels)
        {
            return Err(corrupt("the compression of some level is missing"));
        }
        Ok(options)
    }
}

/// The first manifest tag of the per-level compressions: level `i` has tag
/// `PER_LEVEL_TAG + i`.
const PER_LEVEL_TAG: u64 = 16;

/// The manifest code of a compression: the kind in the low two bits (0 none, 1 LZ4,
/// 2 Zstandard), and a Zstandard level zigzag-encoded above them.
fn compression_code(compression: Compression) -> u64 {
    match compression {
        Compression::Lz4 => 1,
        Compression::Zstd(level) => {
            let zigzag = ((level << 1) ^ (level >> 31)) as u32;
            2 | (u64::from(zigzag) << 2)
        }
        _ => 0,
    }
}

/// Decodes [`compression_code`]; `None` for a code it never gives.
fn compression_of(code: u64) -> Option<Compression> {
    match (code & 3, code >> 2) {
        (0, 0) => Some(Compression::None),
        (1, 0) => Some(Compression::Lz4),
        (2, zigzag) => {
            let zigzag = u32::try_from(zigzag).ok()?;
            Some(Compression::Zstd(
                ((zigzag >> 1) as i32) ^ -((zigzag & 1) as i32),
            ))
        }
        _ => None,
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

fn as_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_and_resolve_over_the_database_options() {
        let set = KeyspaceOptions::default()
            .write_buffer_size(8192)
            .block_size(128)
            .bloom_bits_per_key(0)
            .dynamic_level_bytes(false);
        assert_eq!(KeyspaceOptions::decode(&set.encode()).unwrap(), set);
        let base = Options::default().block_size(512);
        let resolved = set.resolve(&base).unwrap();
        assert_eq!(
            (
                resolved.write_buffer_size,
                resolved.block_size,
                resolved.bloom_bits_per_key
            ),
            (8192, 128, 0)
        );
        assert_eq!(resolved.target_file_size, base.target_file_size);
        let all = KeyspaceOptions::of(&resolved);
        assert_eq!(KeyspaceOptions::decode(&all.encode()).unwrap(), all);
        assert!(KeyspaceOptions::default().encode().is_empty());
    }

    #[test]
    fn compression_settings_round_trip_through_the_manifest() {
        let levels = [
            Compression::None,
            Compression::Lz4,
            Compression::Zstd(-7),
            Compression::Zstd(22),
        ];
        for set in [
            KeyspaceOptions::default().compression(Compression::Zstd(3)),
            KeyspaceOptions::default().compression_per_level(&levels),
            KeyspaceOptions::default().compression_per_level(&[]),
        ] {
            assert_eq!(KeyspaceOptions::decode(&set.encode()).unwrap(), set);
        }
        let resolved = KeyspaceOptions::default()
            .compression_per_level(&levels)
            .resolve(&Options::default().compression(Compression::Lz4))
            .unwrap();
        assert_eq!(resolved.compression_at(3), Compression::Zstd(22));
        assert_eq!(resolved.compression_at(6), Compression::Zstd(22));
        let all = KeyspaceOptions::of(&resolved);
        assert_eq!(KeyspaceOptions::decode(&all.encode()).unwrap(), all);
        let err = KeyspaceOptions::default()
            .compression(Compression::Zstd(40))
            .resolve(&Options::default())
            .unwrap_err();
        assert!(
            err.to_string().contains("KeyspaceOptions::compression"),
            "{err}"
        );
        for bytes in [
            &[11u8, 3][..],
            &[12, 2, 16, 1],
            &[17, 1],
            &[12, 1, 16, 1, 17, 1],
            &[12, 8],
        ] {
            let err = KeyspaceOptions::decode(bytes).unwrap_err();
            assert!(matches!(err, Error::Corruption { .. }), "{bytes:?}: {err}");
        }
    }

    #[test]
    fn bad_options_are_invalid_and_bad_bytes_corruption() {
        let err = KeyspaceOptions::default()
            .block_size(1 << 20)
            .resolve(&Options::default())
            .unwrap_err();
        assert!(
            err.to_string().contains("KeyspaceOptions::block_size"),
            "{err}"
        );
        for bytes in [
            &[99u8, 1][..],
            &[1, 5, 1, 6],
            &[10, 2],
            &[1],
            &[3, 0xff, 0xff, 0xff, 0xff, 0x7f],
        ] {
            let err = KeyspaceOptions::decode(bytes).unwrap_err();
            assert!(matches!(err, Error::Corruption { .. }), "{bytes:?}: {err}");
        }
    }
}
