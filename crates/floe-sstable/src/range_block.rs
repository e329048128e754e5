//! The range tombstone block (format version 2 on): a table's range tombstones, already
//! fragmented, stored whole and decoded whole on open.
//!
//! Contents: `count varint`, then per fragment `start (varint length, bytes) | end
//! (varint length, bytes) | n varint | n seqnos as varints, strictly descending`. Every
//! end is finite. The decoder trusts no count: each is bounded by the bytes left before
//! anything is allocated for it.

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use bytes::Bytes;
use floe_core::coding::{Decoder, put_length_prefixed, put_varint};
use floe_core::range_del::{Fragment, Fragments, inclusive_end};
use floe_core::{InternalKey, MAX_SEQNO, SeqNo, ValueKind};

use crate::error::{Error, Result};

/// The fewest bytes a fragment takes: an empty start (1), an end of one byte (2), a
/// sequence number count (1) and one sequence number (1). A count above the bytes left
/// divided by this is impossible.
const MIN_FRAGMENT_LEN: usize = 5;

/// The number of (fragment, sequence number) pairs of `fragments`.
pub(crate) fn pair_count(fragments: &Fragments) -> u64 {
    fragments
        .fragments()
        .iter()
        .map(|f| f.seqnos.len() as u64)
        .sum()
}

/// The smallest and largest internal keys that `fragments` reach, for a table's key range:
/// `(first start, MAX_SEQNO, Delete)`, sorting before every version of that key, and
/// `(inclusive_end(last end), 0, Delete)`, sorting after every version of the largest key
/// the fragments can cover. `None` if there is no fragment or the last has no end.
pub(crate) fn key_range(fragments: &Fragments) -> Option<(InternalKey, InternalKey)> {
    let start = fragments.smallest()?;
    let end = fragments.end()??;
    Some((
        InternalKey::new(start.clone(), MAX_SEQNO, ValueKind::Delete),
        InternalKey::new(inclusive_end(end), 0, ValueKind::Delete),
    ))
}

/// The contents of the range tombstone block holding `fragments`, whose ends must all be
/// finite (the builder checks).
pub(crate) fn encode(fragments: &Fragments) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, fragments.len() as u64);
    for fragment in fragments.fragments() {
        put_length_prefixed(&mut out, &fragment.start);
        put_length_prefixed(&mut out, fragment.end.as_deref().unwrap_or_default());
        put_varint(&mut out, fragment.seqnos.len() as u64);
        for &seqno in &fragment.seqnos {
            put_varint(&mut out, seqno);
        }
    }
    out
}

/// Decodes and checks the contents of the range tombstone block at byte `offset` of the
/// file. Keys are slices of `contents`, not copies.
pub(crate) fn decode(contents: &Bytes, offset: u64) -> Result<Fragments> {
    let mut dec = Decoder::new(contents);
    // The offset within the contents of what `dec` reads next.
    let at = |dec: &Decoder<'_>| contents.len() - dec.remaining().len();
    let corrupt = |pos: usize, why: &str| {
        Error::corruption(format!(
            "range tombstone block at byte {offset}: {why} (at offset {pos} of its contents)"
        ))
    };
    let Some(count) = dec.varint() else {
        return Err(corrupt(0, "truncated fragment count"));
    };
    let max_count = dec.remaining().len() / MIN_FRAGMENT_LEN;
    let count = usize::try_from(count)
        .ok()
        .filter(|&count| count <= max_count)
        .ok_or_else(|| {
            corrupt(
                0,
                &format!(
                    "{count} fragments cannot fit in {} bytes",
                    dec.remaining().len()
                ),
            )
        })?;
    if count == 0 {
        // The writer writes the block only for a table with range tombstones.
        return Err(corrupt(0, "no fragments"));
    }
    let mut fragments = Vec::with_capacity(count);
    for i in 0..count {
        let pos = at(&dec);
        let (Some(start), Some(end)) = (dec.length_prefixed(), dec.length_prefixed()) else {
            return Err(corrupt(pos, &format!("fragment {i} has a truncated key")));
        };
        let seqno_at = at(&dec);
        let Some(n) = dec.varint() else {
            return Err(corrupt(
                seqno_at,
                &format!("fragment {i} has a truncated sequence number count"),
            ));
        };
        // Every sequence number takes at least one byte.
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= dec.remaining().len())
            .ok_or_else(|| {
                corrupt(
                    seqno_at,
                    &format!(
                        "fragment {i} claims {n} sequence numbers in {} bytes",
                        dec.remaining().len()
                    ),
                )
            })?;
        let mut seqnos: Vec<SeqNo> = Vec::with_capacity(n);
        for _ in 0..n {
            let seqno_at = at(&dec);
            match dec.varint() {
                Some(seqno) if seqno <= MAX_SEQNO => seqnos.push(seqno),
                Some(seqno) => {
                    return Err(corrupt(
                        seqno_at,
                        &format!("fragment {i} has sequence number {seqno} above MAX_SEQNO"),
                    ));
                }
                None => {
                    return Err(corrupt(
                        seqno_at,
                        &format!("fragment {i} has a truncated sequence number"),
                    ));
                }
            }
        }
        fragments.push(Fragment {
            start: contents.slice_ref(start),
            end: Some(contents.slice_ref(end)),
            seqnos,
        });
    }
    if !dec.is_empty() {
        return Err(corrupt(at(&dec), "trailing bytes"));
    }
    Fragments::from_fragments(fragments)
        .map_err(|err| Error::corruption(format!("range tombstone block at byte {offset}: {err}")))
}

#[cfg(test)]
#[expect(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "a test panics to fail"
)]
mod tests {
    use floe_core::range_del::RangeTombstone;

    use super::*;

    fn sample() -> Fragments {
        Fragments::new([
            RangeTombstone::new("b", Some(Bytes::from_static(b"f")), 5),
            RangeTombstone::new("d", Some(Bytes::from_static(b"h")), 9),
            RangeTombstone::new("", Some(Bytes::from_static(b"\0")), MAX_SEQNO),
        ])
    }

    fn encoded(parts: &[&[u8]]) -> Bytes {
        Bytes::from(parts.concat())
    }

    #[test]
    fn round_trips_without_copying_keys() {
        let fragments = sample();
        assert_eq!(fragments.len(), 4);
        assert_eq!(pair_count(&fragments), 5);
        let contents = Bytes::from(encode(&fragments));
        let decoded = decode(&contents, 7).unwrap();
        assert_eq!(decoded, fragments);
        let range = contents.as_ptr_range();
        for fragment in decoded.fragments() {
            assert!(range.contains(&fragment.end.as_ref().unwrap().as_ptr()));
        }
    }

    #[test]
    fn every_truncation_and_trailing_byte_is_corruption() {
        let contents = encode(&sample());
        for len in 0..contents.len() {
            let err = decode(&Bytes::copy_from_slice(&contents[..len]), 7).unwrap_err();
            assert!(err.is_corruption(), "truncated to {len}: {err}");
            assert!(
                err.to_string().contains("range tombstone block at byte 7"),
                "{err}"
            );
        }
        let mut longer = contents.clone();
        longer.push(0);
        let err = decode(&Bytes::from(longer), 7).unwrap_err().to_string();
        assert!(err.contains("trailing bytes"), "{err}");
    }

    #[test]
    fn refuses_impossible_counts_and_invalid_lists() {
        let cases: [(&str, Bytes); 9] = [
            ("no fragments", encoded(&[&[0]])),
            (
                "cannot fit",
                encoded(&[&[0xff, 0xff, 0xff, 0xff, 0x0f], &[0; 20]]),
            ),
            ("cannot fit", encoded(&[&[2], b"\x00\x01a\x01\x01"])),
            ("claims", encoded(&[&[1], b"\x00\x01a\x05\x01"])),
            (
                "above MAX_SEQNO",
                encoded(&[&[1], b"\x00\x01a\x01", &[0x80; 8], &[0x80, 0x01]]),
            ),
            ("ends at or before", encoded(&[&[1], b"\x01a\x01a\x01\x01"])),
            ("not strictly descending", {
                encoded(&[&[1], b"\x00\x01a\x02\x03\x03"])
            }),
            (
                "no sequence number",
                encoded(&[&[2], b"\x00\x01a\x00", b"\x01b\x01c\x01\x01"]),
            ),
            (
                "overlap",
                encoded(&[&[2], b"\x00\x01b\x01\x01", b"\x01a\x01c\x01\x01"]),
            ),
        ];
        for (why, contents) in cases {
            let err = decode(&contents, 3).unwrap_err();
            assert!(err.is_corruption());
            assert!(err.to_string().contains(why), "{why}: {err}");
        }
        // The smallest valid fragment is MIN_FRAGMENT_LEN bytes.
        let smallest = encoded(&[&[1], b"\x00\x01a\x01\x00"]);
        assert_eq!(smallest.len(), 1 + MIN_FRAGMENT_LEN);
        assert_eq!(decode(&smallest, 0).unwrap().len(), 1);
    }
}
