//! The keys and values of the db_bench workloads, computed from an index so that any
//! thread can produce any key without a shared table, and every read can be checked.

use crate::keys::scramble;
use crate::values::{ValueKind, ValuePool};

/// Generates the keys and values of one run.
///
/// A key's first 8 bytes are an injective function of its index, so distinct indexes
/// give distinct keys; the remaining bytes are filler derived from the index. Values are
/// slices of a pool of random bytes at an offset chosen by the index and a generation
/// number, so an overwrite (generation 1) stores a different value than the fill
/// (generation 0), and a reader can tell which one it saw.
#[derive(Debug, Clone)]
pub struct Data {
    key_size: usize,
    value_size: usize,
    seed: u64,
    pool: ValuePool,
}

impl Data {
    /// Keys of `key_size` bytes (at least 8) and values of `value_size` bytes of `kind`.
    ///
    /// # Panics
    /// If `key_size` is below 8: shorter keys cannot be distinct for every index.
    #[must_use]
    pub fn new(key_size: usize, value_size: usize, kind: ValueKind, seed: u64) -> Data {
        assert!(key_size >= 8, "keys need at least 8 bytes to be distinct");
        Data {
            key_size,
            value_size,
            seed,
            pool: ValuePool::new(kind, value_size, seed),
        }
    }

    /// The length of every value.
    #[must_use]
    pub fn value_size(&self) -> usize {
        self.value_size
    }

    /// Writes into `out` the key of `index` in the random key order: consecutive indexes
    /// give keys that are spread over the whole key space.
    pub fn random_key(&self, index: u64, out: &mut Vec<u8>) {
        self.key_with_prefix(scramble(index ^ self.seed), index, out);
    }

    /// Writes into `out` the key of `index` in ascending order: keys grow with the index.
    pub fn seq_key(&self, index: u64, out: &mut Vec<u8>) {
        self.key_with_prefix(index, index, out);
    }

    fn key_with_prefix(&self, prefix: u64, index: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&prefix.to_be_bytes());
        let filler = scramble(index.wrapping_add(self.seed)).to_le_bytes();
        while out.len() < self.key_size {
            let take = (self.key_size - out.len()).min(filler.len());
            out.extend_from_slice(&filler[..take]);
        }
    }

    /// The value written for key `index` by write generation `generation`.
    #[must_use]
    pub fn value(&self, index: u64, generation: u64) -> &[u8] {
        let mixed = index.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ generation.wrapping_mul(0xd6e8_feb8_6659_fd93);
        self.pool.value(scramble(mixed))
    }
}

/// A uniformly spread index in `0..count` for operation `op` of a workload with the given
/// `salt`: operations pick keys at random, with repeats, and every run picks the same ones.
#[must_use]
pub fn pick(op: u64, salt: u64, count: u64) -> u64 {
    scramble(op ^ salt.rotate_left(17)) % count.max(1)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn keys_are_distinct_sized_and_ordered_where_promised() {
        let data = Data::new(16, 100, ValueKind::Random, 3);
        let mut random = HashSet::new();
        let mut key = Vec::new();
        let mut previous = Vec::new();
        for i in 0..10_000 {
            data.random_key(i, &mut key);
            assert_eq!(key.len(), 16);
            assert!(random.insert(key.clone()), "random key {i} repeats");
            data.seq_key(i, &mut key);
            assert!(
                key > previous,
                "sequential key {i} is not above its predecessor"
            );
            previous.clone_from(&key);
        }
        let long = Data::new(37, 8, ValueKind::Random, 3);
        long.random_key(5, &mut key);
        assert_eq!(key.len(), 37);
    }

    #[test]
    fn values_differ_between_generations_and_repeat_within_one() {
        let data = Data::new(16, 100, ValueKind::Random, 3);
        assert_eq!(data.value(7, 0).len(), 100);
        assert_eq!(data.value(7, 0), data.value(7, 0));
        assert_ne!(data.value(7, 0), data.value(7, 1));
        assert_ne!(data.value(7, 0), data.value(8, 0));
        let huge = Data::new(16, 3 << 20, ValueKind::Random, 3);
        assert_eq!(huge.value(1, 1).len(), 3 << 20);
        for kind in [ValueKind::Half, ValueKind::Text] {
            let data = Data::new(16, 100, kind, 3);
            assert_ne!(data.value(7, 0), data.value(7, 1), "{kind}");
            assert_ne!(data.value(7, 0), data.value(8, 0), "{kind}");
        }
    }

    #[test]
    fn picks_stay_in_range() {
        assert!((0..1000).all(|op| pick(op, 9, 17) < 17));
        assert_eq!(pick(5, 1, 0), 0);
    }
}
