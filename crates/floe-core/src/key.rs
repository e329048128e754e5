//! Internal keys: a user key tagged with the sequence number and kind of the write.
//!
//! Every write gets a fresh sequence number, so every write is a new internal key and no
//! stored entry is ever overwritten. Internal keys sort by user key ascending, then by
//! sequence number *descending*, so that a forward scan meets the newest version of a
//! user key first; a read at snapshot `s` takes the first entry whose seqno is `<= s`.

use std::cmp::Ordering;

use bytes::Bytes;

/// A sequence number: the position of a write in the total order of all writes.
///
/// Only the low 56 bits are used, so that a sequence number and a [`ValueKind`] pack
/// into one `u64` trailer on disk.
pub type SeqNo = u64;

/// The largest sequence number a write may carry; reading at `MAX_SEQNO` sees everything.
pub const MAX_SEQNO: SeqNo = (1 << 56) - 1;

/// What an internal key records: a value or the deletion of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ValueKind {
    /// A tombstone: the key was deleted at this sequence number.
    Delete = 0,
    /// A value: the key was set at this sequence number.
    Put = 1,
}

impl ValueKind {
    /// Decodes a kind from its on-disk byte; `None` for any unknown byte.
    #[must_use]
    pub fn from_u8(byte: u8) -> Option<ValueKind> {
        match byte {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Put),
            _ => None,
        }
    }
}

/// Packs a sequence number and a kind into the 8-byte trailer used on disk.
///
/// `seqno` must be at most [`MAX_SEQNO`]; higher bits would be lost.
#[must_use]
pub fn pack_trailer(seqno: SeqNo, kind: ValueKind) -> u64 {
    debug_assert!(
        seqno <= MAX_SEQNO,
        "sequence number {seqno} exceeds MAX_SEQNO"
    );
    (seqno << 8) | kind as u64
}

/// Unpacks a trailer written by [`pack_trailer`]; `None` if its kind byte is unknown.
#[must_use]
pub fn unpack_trailer(trailer: u64) -> Option<(SeqNo, ValueKind)> {
    let kind = ValueKind::from_u8((trailer & 0xff) as u8)?;
    Some((trailer >> 8, kind))
}

/// A user key tagged with the sequence number and kind of the write that made it.
///
/// Ordering: user key ascending (bytewise), then sequence number descending, then kind
/// descending (a `Put` and a `Delete` never share a sequence number in practice, but the
/// order must be total).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InternalKey {
    /// The key the user wrote.
    pub user_key: Bytes,
    /// The sequence number of the write.
    pub seqno: SeqNo,
    /// Whether the write set or deleted the key.
    pub kind: ValueKind,
}

impl InternalKey {
    /// Builds an internal key.
    #[must_use]
    pub fn new(user_key: impl Into<Bytes>, seqno: SeqNo, kind: ValueKind) -> InternalKey {
        InternalKey {
            user_key: user_key.into(),
            seqno,
            kind,
        }
    }

    /// The on-disk trailer of this key (see [`pack_trailer`]).
    #[must_use]
    pub fn trailer(&self) -> u64 {
        pack_trailer(self.seqno, self.kind)
    }
}

impl Ord for InternalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_internal(
            &self.user_key,
            self.seqno,
            self.kind,
            &other.user_key,
            other.seqno,
            other.kind,
        )
    }
}

impl PartialOrd for InternalKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two internal keys given by parts, in the order documented on [`InternalKey`].
#[must_use]
pub fn compare_internal(
    a_key: &[u8],
    a_seqno: SeqNo,
    a_kind: ValueKind,
    b_key: &[u8],
    b_seqno: SeqNo,
    b_kind: ValueKind,
) -> Ordering {
    a_key
        .cmp(b_key)
        .then_with(|| b_seqno.cmp(&a_seqno))
        .then_with(|| b_kind.cmp(&a_kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_versions_sort_first() {
        let old = InternalKey::new("k", 1, ValueKind::Put);
        let new = InternalKey::new("k", 2, ValueKind::Delete);
        let next = InternalKey::new("k\0", 0, ValueKind::Put);
        assert!(new < old);
        assert!(old < next);
        assert!(
            InternalKey::new("", MAX_SEQNO, ValueKind::Put)
                < InternalKey::new("", 0, ValueKind::Put)
        );
    }

    #[test]
    fn trailer_round_trips() {
        for (seqno, kind) in [
            (0, ValueKind::Put),
            (MAX_SEQNO, ValueKind::Delete),
            (12345, ValueKind::Put),
        ] {
            assert_eq!(
                unpack_trailer(pack_trailer(seqno, kind)),
                Some((seqno, kind))
            );
        }
        assert_eq!(unpack_trailer(7), None);
    }
}
