//! On-disk integer coding: fixed-width little-endian integers and LEB128 varints.
//!
//! Architecture invariant: no on-disk format stores a `usize` or a native-endian integer;
//! every integer goes through this module. Decoding never panics: a [`Decoder`] returns
//! `None` when the input is too short or a varint is overlong, and the caller turns that
//! into its own corruption error.

/// Appends `value` as a little-endian `u32`.
#[inline]
pub fn put_u32(buf: &mut Vec<u8>, value: u32) {
    buf.extend_from_slice(&value.to_le_bytes());
}

/// Appends `value` as a little-endian `u64`.
#[inline]
pub fn put_u64(buf: &mut Vec<u8>, value: u64) {
    buf.extend_from_slice(&value.to_le_bytes());
}

/// The most bytes a varint of a `u64` takes.
pub const MAX_VARINT_LEN: usize = 10;

/// Appends `value` as an LEB128 varint (1 to [`MAX_VARINT_LEN`] bytes).
#[inline]
pub fn put_varint(buf: &mut Vec<u8>, value: u64) {
    let mut bytes = [0; MAX_VARINT_LEN];
    let len = write_varint(&mut bytes, value);
    buf.extend_from_slice(&bytes[..len]);
}

/// Writes `value` as an LEB128 varint at the front of `out` and returns its length (the
/// in-place form of [`put_varint`], for fields whose place is reserved ahead).
///
/// # Panics
/// If `out` is shorter than the varint ([`varint_len`]; [`MAX_VARINT_LEN`] always fits).
#[inline]
pub fn write_varint(out: &mut [u8], mut value: u64) -> usize {
    let mut len = 0;
    while value >= 0x80 {
        out[len] = (value as u8) | 0x80;
        value >>= 7;
        len += 1;
    }
    out[len] = value as u8;
    len + 1
}

/// Appends a varint length followed by `bytes`.
#[inline]
pub fn put_length_prefixed(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// The number of bytes [`put_varint`] writes for `value`.
#[must_use]
pub fn varint_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// A cursor over untrusted bytes that never reads past the end and never panics.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    rest: &'a [u8],
}

impl<'a> Decoder<'a> {
    /// A decoder positioned at the start of `bytes`.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Decoder<'a> {
        Decoder { rest: bytes }
    }

    /// The bytes not yet consumed.
    #[must_use]
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    /// Whether every byte has been consumed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Takes the next `n` bytes.
    #[inline]
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    /// Takes one byte.
    #[inline]
    pub fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }

    /// Takes a little-endian `u32`.
    #[inline]
    pub fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Takes a little-endian `u64`.
    #[inline]
    pub fn u64(&mut self) -> Option<u64> {
        self.bytes(8).map(|b| {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(b);
            u64::from_le_bytes(raw)
        })
    }

    /// Takes an LEB128 varint; `None` if truncated or longer than 10 bytes or overflowing.
    #[inline]
    pub fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for (i, &byte) in self.rest.iter().enumerate().take(10) {
            let low = u64::from(byte & 0x7f);
            if i == 9 && byte > 1 {
                return None;
            }
            value |= low << (7 * i);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[i + 1..];
                return Some(value);
            }
        }
        None
    }

    /// Takes a varint that must fit in a `u32`.
    #[inline]
    pub fn varint_u32(&mut self) -> Option<u32> {
        self.varint().and_then(|v| u32::try_from(v).ok())
    }

    /// Takes a varint length and then that many bytes.
    #[inline]
    pub fn length_prefixed(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        self.bytes(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width() {
        let mut values = vec![0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX];
        values.extend((0..64).map(|shift| 1u64 << shift));
        values.extend((1..64).map(|shift| (1u64 << shift) - 1));
        for value in values {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            assert_eq!(buf.len(), varint_len(value), "length of {value}");
            let mut dec = Decoder::new(&buf);
            assert_eq!(dec.varint(), Some(value));
            assert!(dec.is_empty());
            // Every strict prefix is truncated, never a different value.
            for cut in 0..buf.len() {
                assert_eq!(Decoder::new(&buf[..cut]).varint(), None);
            }
        }
    }

    #[test]
    fn overlong_and_overflowing_varints_are_refused() {
        assert_eq!(Decoder::new(&[0x80; 11]).varint(), None);
        let mut overflow = vec![0xff; 9];
        overflow.push(0x02);
        assert_eq!(Decoder::new(&overflow).varint(), None);
    }

    #[test]
    fn fixed_integers_and_lengths() {
        let mut buf = Vec::new();
        put_u32(&mut buf, 0xdead_beef);
        put_u64(&mut buf, 42);
        put_length_prefixed(&mut buf, b"abc");
        let mut dec = Decoder::new(&buf);
        assert_eq!(dec.u32(), Some(0xdead_beef));
        assert_eq!(dec.u64(), Some(42));
        assert_eq!(dec.length_prefixed(), Some(&b"abc"[..]));
        assert_eq!(dec.u8(), None);
        assert_eq!(Decoder::new(&[5, 1, 2]).length_prefixed(), None);
    }
}
