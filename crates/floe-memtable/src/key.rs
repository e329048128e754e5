//! The key type of the skiplist and its borrowed form, so that lookups never allocate.
//!
//! The skiplist orders [`Key`]s exactly like [`floe_core::InternalKey`]: user key ascending,
//! then the packed trailer (`seqno << 8 | kind`) descending, which is sequence number
//! descending and then kind descending. Lookups probe with a [`Probe`] that borrows the
//! user key; both are compared through the [`KeyView`] trait object, which
//! `crossbeam_skiplist` accepts through `Borrow<dyn KeyView>`.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::ops::Bound;

use bytes::Bytes;
use floe_core::{InternalKey, ValueKind, unpack_trailer};

/// The trailer that sorts before every stored version of a user key.
///
/// Valid trailers are at most `MAX_SEQNO << 8 | 1 < u64::MAX`, so this probe is never equal
/// to a stored key.
pub(crate) const TRAILER_FIRST: u64 = u64::MAX;
/// The trailer that sorts after or equal to every stored version of a user key
/// (`pack_trailer(0, Delete)`).
pub(crate) const TRAILER_LAST: u64 = 0;

/// A stored key: the user key and the packed trailer of the write.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub(crate) user_key: Bytes,
    pub(crate) trailer: u64,
}

impl Key {
    /// The internal key this entry stores.
    pub(crate) fn to_internal(&self) -> InternalKey {
        // Stored trailers are built by `pack_trailer` from a valid kind, so unpacking them
        // cannot fail; the fallback only keeps this path free of panics.
        let (seqno, kind) =
            unpack_trailer(self.trailer).unwrap_or((self.trailer >> 8, ValueKind::Put));
        InternalKey {
            user_key: self.user_key.clone(),
            seqno,
            kind,
        }
    }

    /// The sequence number of the write.
    pub(crate) fn seqno(&self) -> u64 {
        self.trailer >> 8
    }

    /// Whether the write was a deletion.
    pub(crate) fn is_tombstone(&self) -> bool {
        self.trailer & 0xff == ValueKind::Delete as u64
    }
}

/// A key as the skiplist compares it: a user key and a trailer, fetched in one call so a
/// comparison through the trait object costs one indirect call per side.
pub(crate) trait KeyView {
    /// The user key and the packed trailer.
    fn parts(&self) -> (&[u8], u64);
}

impl KeyView for Key {
    fn parts(&self) -> (&[u8], u64) {
        (&self.user_key, self.trailer)
    }
}

/// A borrowed lookup key; it never allocates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe<'a> {
    pub(crate) user_key: &'a [u8],
    pub(crate) trailer: u64,
}

impl KeyView for Probe<'_> {
    fn parts(&self) -> (&[u8], u64) {
        (self.user_key, self.trailer)
    }
}

/// The one comparison every key goes through: user key ascending, trailer descending.
#[inline]
fn compare(a: &dyn KeyView, b: &dyn KeyView) -> Ordering {
    let ((a_key, a_trailer), (b_key, b_trailer)) = (a.parts(), b.parts());
    compare_user_keys(a_key, b_key).then_with(|| b_trailer.cmp(&a_trailer))
}

/// Bytewise order of two user keys, deciding most comparisons without a `memcmp` call.
///
/// A skiplist search compares the probe with some twenty keys, and the first eight bytes
/// almost always differ: read as big-endian integers they order exactly as the bytes do,
/// so an inequality there is the answer. Equal prefixes (or short keys) fall back to the
/// full slice comparison, which re-checks the prefix and stays the single source of truth.
#[inline]
fn compare_user_keys(a: &[u8], b: &[u8]) -> Ordering {
    if let (Some(a8), Some(b8)) = (a.first_chunk::<8>(), b.first_chunk::<8>()) {
        let (x, y) = (u64::from_be_bytes(*a8), u64::from_be_bytes(*b8));
        if x != y {
            return x.cmp(&y);
        }
    }
    a.cmp(b)
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        compare(self, other) == Ordering::Equal
    }
}

impl Eq for dyn KeyView + '_ {}

impl PartialOrd for dyn KeyView + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn KeyView + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(self, other)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.trailer == other.trailer && self.user_key == other.user_key
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        // The same comparison as the trait object's, so that `Borrow` keeps its contract:
        // a key and its borrowed form order identically.
        compare(self, other)
    }
}

impl<'a> Borrow<dyn KeyView + 'a> for Key {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

/// Converts a lower bound on user keys into one on stored keys.
pub(crate) fn lower_internal(bound: Bound<Bytes>) -> Bound<Key> {
    match bound {
        // The first version of `k` sorts first among its versions.
        Bound::Included(user_key) => Bound::Included(Key {
            user_key,
            trailer: TRAILER_FIRST,
        }),
        // Every version of `k` sorts at or before `(k, 0)`, so excluding it excludes them all.
        Bound::Excluded(user_key) => Bound::Excluded(Key {
            user_key,
            trailer: TRAILER_LAST,
        }),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Converts an upper bound on user keys into one on stored keys.
pub(crate) fn upper_internal(bound: Bound<Bytes>) -> Bound<Key> {
    match bound {
        Bound::Included(user_key) => Bound::Included(Key {
            user_key,
            trailer: TRAILER_LAST,
        }),
        Bound::Excluded(user_key) => Bound::Excluded(Key {
            user_key,
            trailer: TRAILER_FIRST,
        }),
        Bound::Unbounded => Bound::Unbounded,
    }
}

#[cfg(test)]
mod tests {
    use floe_core::{MAX_SEQNO, pack_trailer};

    use super::*;

    fn key(user_key: &'static [u8], seqno: u64, kind: ValueKind) -> Key {
        Key {
            user_key: Bytes::from_static(user_key),
            trailer: pack_trailer(seqno, kind),
        }
    }

    #[test]
    fn orders_like_internal_keys() {
        let keys = [
            key(b"", MAX_SEQNO, ValueKind::Put),
            key(b"", 0, ValueKind::Delete),
            key(b"a", 7, ValueKind::Put),
            key(b"a", 7, ValueKind::Delete),
            key(b"a", 3, ValueKind::Put),
            key(b"a\0", 9, ValueKind::Put),
            key(b"b", 1, ValueKind::Delete),
        ];
        for a in &keys {
            for b in &keys {
                assert_eq!(
                    a.cmp(b),
                    a.to_internal().cmp(&b.to_internal()),
                    "{a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn the_prefix_fast_path_orders_exactly_like_bytes() {
        // Keys around the 8-byte boundary: shorter, equal prefixes, 0x00 and 0xff bytes,
        // and bytes whose order differs from their order as signed values.
        let keys: [&[u8]; 12] = [
            b"",
            b"\x00",
            b"abcdefg",
            b"abcdefgh",
            b"abcdefgh\x00",
            b"abcdefgh\xff",
            b"abcdefgi",
            b"abcdefg\xff\x00",
            b"\x7f\xff\xff\xff\xff\xff\xff\xff",
            b"\x80\x00\x00\x00\x00\x00\x00\x00",
            b"\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\x01",
        ];
        for a in keys {
            for b in keys {
                assert_eq!(compare_user_keys(a, b), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn probes_bracket_every_version() {
        let first = Probe {
            user_key: b"a",
            trailer: TRAILER_FIRST,
        };
        let last = Probe {
            user_key: b"a",
            trailer: TRAILER_LAST,
        };
        for version in [
            key(b"a", MAX_SEQNO, ValueKind::Put),
            key(b"a", 0, ValueKind::Delete),
        ] {
            let version: &dyn KeyView = &version;
            let (first, last): (&dyn KeyView, &dyn KeyView) = (&first, &last);
            assert!(first < version);
            assert!(last >= version);
        }
    }

    #[test]
    fn decodes_parts() {
        let k = key(b"x", 42, ValueKind::Delete);
        assert_eq!(k.seqno(), 42);
        assert!(k.is_tombstone());
        assert!(!key(b"x", 42, ValueKind::Put).is_tombstone());
    }
}
