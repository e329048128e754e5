//! The checksum that covers every byte floe writes: CRC-32 (IEEE), via `crc32fast`.
//!
//! Each on-disk structure checksums its type and length together with its payload, so a
//! damaged length cannot make a reader trust the wrong extent. The parts are hashed in
//! order, as if concatenated, without building the concatenation.

/// The CRC-32 of the concatenation of `parts`.
#[must_use]
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_hash_as_their_concatenation() {
        assert_eq!(crc32(&[b"hello ", b"world"]), crc32(&[b"hello world"]));
        assert_ne!(crc32(&[b"hello world"]), crc32(&[b"hello worle"]));
        // The standard CRC-32 check value.
        assert_eq!(crc32(&[b"123456789"]), 0xcbf4_3926);
    }
}
