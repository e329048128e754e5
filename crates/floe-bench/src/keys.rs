//! Deterministic key and value generation shared by every workload.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// `count` distinct random keys of `len` bytes (at least 8), in random order.
///
/// The first 8 bytes are a bijective scramble of the index, so keys never collide; the
/// rest is random filler.
#[must_use]
pub fn random_keys(count: usize, len: usize, seed: u64) -> Vec<Vec<u8>> {
    assert!(len >= 8, "keys need at least 8 bytes to be distinct");
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..count as u64)
        .map(|i| {
            let mut key = vec![0u8; len];
            key[..8].copy_from_slice(&scramble(i).to_be_bytes());
            rng.fill(&mut key[8..]);
            key
        })
        .collect()
}

/// An incompressible value of `len` bytes.
#[must_use]
pub fn random_value(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut value = vec![0u8; len];
    rng.fill(&mut value[..]);
    value
}

/// A bijection on `u64` (the splitmix64 finalizer) that turns sequential indexes into
/// well-spread keys.
#[must_use]
pub fn scramble(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_repeatable() {
        let keys = random_keys(10_000, 16, 7);
        let unique: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len());
        assert_eq!(keys, random_keys(10_000, 16, 7));
    }
}
