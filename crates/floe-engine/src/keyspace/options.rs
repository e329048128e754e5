//! [`KeyspaceOptions`]: the tree options of one keyspace (memtable size, table layout,
//! level sizes), and their encoding in the manifest, which keeps them across reopens.

use floe_core::coding::{Decoder, put_varint};

use crate::error::{Error, Result};
use crate::options::Options;

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
        } = self.clone();
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
        ];
        for (tag, value) in fields {
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
                _ => {
                    return Err(corrupt(&format!(
                        "unknown option tag {tag} or value {value}"
                    )));
                }
            }
        }
        Ok(options)
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
