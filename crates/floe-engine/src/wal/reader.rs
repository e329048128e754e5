//! [`read_log`]: recovers the records of a log, telling a tolerated tail from corruption.
//!
//! A process crash can cut the log anywhere inside the last write; a power loss can also
//! lose any page that was not synced, an earlier one while a later one survives, and a file
//! system may leave zeros where blocks were allocated but never filled. None of that is
//! damage to durable data, so reading stops at the first damaged record and drops the rest.
//! Damage is corruption only where a checksum-valid durable-offset marker after it (see
//! the `wal` module docs) states that a completed sync had made the damaged bytes durable:
//! then the records after it were durable too, and dropping them silently would lose them.

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use std::ops::Range;

use bytes::Bytes;

use super::{BLOCK_SIZE, FragmentType, HEADER_SIZE, SYNCED_PAYLOAD, fragment_crc};
use crate::error::{Error, Result};

/// The records recovered from one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogReplay {
    /// The complete, checksum-valid records, in order. A record that fits in one fragment
    /// is a zero-copy slice of the log's bytes.
    pub(crate) records: Vec<Bytes>,
    /// The offset of each record's first fragment, in the order of `records`.
    pub(crate) record_offsets: Vec<u64>,
    /// The offset of the first incomplete or damaged record, when the log ended in a torn
    /// tail that was dropped; `None` when every byte belonged to a complete record.
    pub(crate) torn_tail_at: Option<u64>,
    /// Why the torn tail was taken for one (`None` without a tail).
    pub(crate) tail_reason: Option<&'static str>,
    /// The largest durable length that a marker read before the end (or the tear) states:
    /// the first `durable_through` bytes were synced.
    pub(crate) durable_through: u64,
}

/// Damage to durable data that [`scan_log`] found: a damaged or incomplete record that a
/// checksum-valid durable-offset marker after it proves was synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogDamage {
    /// The offset of the damaged record's first fragment.
    pub(crate) offset: u64,
    /// What is wrong with it.
    pub(crate) reason: &'static str,
    /// The offset of the marker that proves the record was synced.
    pub(crate) marker: u64,
    /// The durable length the marker states.
    pub(crate) durable: u64,
}

impl LogDamage {
    /// The `Corruption` error that [`read_log`] reports for this damage in `file_name`.
    pub(crate) fn to_error(&self, file_name: &str) -> Error {
        let LogDamage {
            offset,
            reason,
            marker,
            durable,
        } = self;
        Error::corruption(format!(
            "log {file_name}: the record at offset {offset} is damaged ({reason}), \
             but the marker at offset {marker} says the first {durable} bytes were synced"
        ))
    }
}

/// A fragment that passed every check: its type, the extent of its payload, and the
/// payload's bytes.
struct Fragment<'a> {
    ty: FragmentType,
    payload: Range<usize>,
    bytes: &'a [u8],
}

/// Parses and checks the fragment whose header starts at `pos`, which must leave at least
/// a header's room in its block. The checks run cheapest first, because the corruption
/// scan calls this at every offset of the damaged region.
fn parse_fragment(data: &[u8], pos: usize) -> Result<Fragment<'_>, &'static str> {
    let Some(&[crc0, crc1, crc2, crc3, len0, len1, type_byte]) =
        data.get(pos..).and_then(<[u8]>::first_chunk::<HEADER_SIZE>)
    else {
        return Err("the fragment header is cut short");
    };
    let Some(ty) = FragmentType::from_u8(type_byte) else {
        return Err("the fragment type is unknown (zero-filled or damaged)");
    };
    let len = u16::from_le_bytes([len0, len1]);
    let start = pos + HEADER_SIZE;
    let end = start + usize::from(len);
    let block_end = (pos / BLOCK_SIZE + 1) * BLOCK_SIZE;
    if end > block_end {
        return Err("the fragment length crosses the block boundary");
    }
    let Some(payload) = data.get(start..end) else {
        return Err("the fragment payload is cut short");
    };
    let stored = u32::from_le_bytes([crc0, crc1, crc2, crc3]);
    if stored != fragment_crc(type_byte, len, payload) {
        return Err("the fragment checksum does not match");
    }
    Ok(Fragment {
        ty,
        payload: start..end,
        bytes: payload,
    })
}

/// The first checksum-valid durable-offset marker at or after `from` that states a durable
/// length beyond `damage`, as (its offset, the length it states), if any.
///
/// Every offset where a fragment may start is tried, since damage hides where the next
/// fragment begins; a valid fragment is stepped over whole.
fn find_marker_beyond(data: &[u8], from: usize, damage: usize) -> Option<(usize, u64)> {
    let mut pos = from;
    while pos < data.len() {
        let block_left = BLOCK_SIZE - pos % BLOCK_SIZE;
        if block_left < HEADER_SIZE {
            pos += block_left;
            continue;
        }
        if let Ok(fragment) = parse_fragment(data, pos) {
            if let Some(durable) = synced_claim(&fragment)
                && durable > damage as u64
            {
                return Some((pos, durable));
            }
            pos = fragment.payload.end;
            continue;
        }
        // A fragment's type (byte 6 of its header) is never zero, so no fragment starts
        // more than 6 bytes before the next nonzero byte: a run of zeros, such as the
        // unused reserved room at the end of a segment, is skipped at once.
        let next_nonzero = data.get(pos + 1..)?.iter().position(|&b| b != 0)?;
        pos = (pos + 1 + next_nonzero)
            .saturating_sub(HEADER_SIZE - 1)
            .max(pos + 1);
    }
    None
}

/// The offset of the first checksum-valid fragment at or after `from` (planted-bug builds
/// only).
#[cfg(floe_planted = "replay_past_checksum_failure")]
fn find_next_fragment(data: &[u8], from: usize) -> Option<usize> {
    (from..data.len()).find(|&pos| {
        BLOCK_SIZE - pos % BLOCK_SIZE >= HEADER_SIZE && parse_fragment(data, pos).is_ok()
    })
}

/// Whether the `block_left` bytes at `pos`, the rest of a block, are zeros that an older
/// writer left where a durable-offset marker did not fit (fewer than a marker's
/// `HEADER_SIZE + SYNCED_PAYLOAD` bytes), which it then wrote at the start of the next
/// block. (The writer now fills such a gap with a marker too short to state a length.)
/// Only between records, and only if a checksum-valid marker does start the next block.
fn is_legacy_marker_padding<T>(
    data: &[u8],
    pos: usize,
    block_left: usize,
    pending: &Option<T>,
) -> bool {
    pending.is_none()
        && block_left < HEADER_SIZE + SYNCED_PAYLOAD
        && data
            .get(pos..pos + block_left)
            .is_some_and(|tail| tail.iter().all(|&byte| byte == 0))
        && parse_fragment(data, pos + block_left).is_ok_and(|next| next.ty == FragmentType::Synced)
}

/// The durable length a marker fragment states; `None` for any other fragment.
fn synced_claim(fragment: &Fragment<'_>) -> Option<u64> {
    if fragment.ty != FragmentType::Synced {
        return None;
    }
    let bytes: [u8; SYNCED_PAYLOAD] = fragment.bytes.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Recovers the records of a log (segment or manifest) from its whole contents.
///
/// Reading stops at the first damaged or incomplete record. If a checksum-valid marker
/// after the damage states a durable length beyond the start of the damaged record, durable
/// data is damaged and the result is `Corruption` naming `file_name` and the offsets.
/// Otherwise the damage is a tolerated tail: it and everything after it are dropped and
/// its offset is reported in [`LogReplay::torn_tail_at`]. Never panics, whatever the bytes.
pub(crate) fn read_log(data: Bytes, file_name: &str) -> Result<LogReplay> {
    scan_log(data).map_err(|damage| damage.to_error(file_name))
}

/// [`read_log`] with the damage it finds as a [`LogDamage`] rather than an error, for
/// callers that report the offsets themselves (`crate::inspect`).
pub(crate) fn scan_log(data: Bytes) -> Result<LogReplay, LogDamage> {
    let mut records = Vec::new();
    let mut record_offsets = Vec::new();
    // The start offset and gathered bytes of a record whose FIRST fragment has been read.
    let mut pending: Option<(usize, Vec<u8>)> = None;
    let mut durable_through = 0;
    let mut pos = 0;
    // Where reading stopped: the start of the bad record, the offset from which to look
    // for valid fragments, and why.
    let (bad_record, scan_from, reason) = loop {
        if pos >= data.len() {
            match pending {
                None => {
                    return Ok(LogReplay {
                        records,
                        record_offsets,
                        torn_tail_at: None,
                        tail_reason: None,
                        durable_through,
                    });
                }
                Some((start, _)) => {
                    break (start, data.len(), "the log ends inside a fragmented record");
                }
            }
        }
        let block_left = BLOCK_SIZE - pos % BLOCK_SIZE;
        if block_left < HEADER_SIZE || is_legacy_marker_padding(&data, pos, block_left, &pending) {
            // Zero padding at the end of a block; its contents carry nothing.
            pos += block_left;
            continue;
        }
        let fragment = match parse_fragment(&data, pos) {
            Ok(fragment) => fragment,
            // Planted bug (simulation only): a damaged fragment is skipped and replay goes
            // on with the next valid one.
            #[cfg(floe_planted = "replay_past_checksum_failure")]
            Err(reason) => match find_next_fragment(&data, pos + 1) {
                Some(next) => {
                    pending = None;
                    pos = next;
                    continue;
                }
                None => break (pos, data.len(), reason),
            },
            Err(reason) => {
                let start = pending.as_ref().map_or(pos, |(start, _)| *start);
                break (start, pos, reason);
            }
        };
        let payload = fragment.bytes;
        match (fragment.ty, pending.as_mut()) {
            (FragmentType::Synced, None) => {
                if let Some(durable) = synced_claim(&fragment) {
                    durable_through = durable_through.max(durable);
                }
            }
            (FragmentType::Synced, Some((start, _))) => {
                break (*start, pos, "a marker interrupts a fragmented record");
            }
            (FragmentType::Full, None) => {
                records.push(data.slice(fragment.payload.clone()));
                record_offsets.push(pos as u64);
            }
            (FragmentType::First, None) => pending = Some((pos, payload.to_vec())),
            (FragmentType::Middle, Some((_, gathered))) => gathered.extend_from_slice(payload),
            (FragmentType::Last, Some((_, gathered))) => {
                gathered.extend_from_slice(payload);
                if let Some((start, whole)) = pending.take() {
                    records.push(Bytes::from(whole));
                    record_offsets.push(start as u64);
                }
            }
            (FragmentType::Full | FragmentType::First, Some((start, _))) => {
                break (
                    *start,
                    pos,
                    "a fragmented record is missing its last fragment",
                );
            }
            (FragmentType::Middle | FragmentType::Last, None) => {
                break (pos, pos, "a fragment continues a record that never started");
            }
        }
        pos = fragment.payload.end;
    };
    // The fragment at `scan_from` may itself be a valid marker (out of sequence inside a
    // record); it counts, since it was written after the sync it states. (Planted bug,
    // simulation only: the markers are ignored and every tear is taken as the end.)
    let marker = if cfg!(floe_planted = "tear_taken_as_end") {
        None
    } else {
        find_marker_beyond(&data, scan_from, bad_record)
    };
    if let Some((marker, durable)) = marker {
        return Err(LogDamage {
            offset: bad_record as u64,
            reason,
            marker: marker as u64,
            durable,
        });
    }
    Ok(LogReplay {
        records,
        record_offsets,
        torn_tail_at: Some(bad_record as u64),
        tail_reason: Some(reason),
        durable_through,
    })
}

#[cfg(test)]
#[expect(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "a test panics to fail"
)]
mod tests {
    use super::*;
    use crate::wal::encode_log;

    /// Records of assorted sizes: empty, small, one that spans blocks, and one whose
    /// fragments fill blocks almost exactly.
    fn sample_records() -> Vec<Vec<u8>> {
        vec![
            b"first".to_vec(),
            Vec::new(),
            (0..BLOCK_SIZE * 2 + 100)
                .map(|i| (i * 7 % 251) as u8)
                .collect(),
            b"after the big one".to_vec(),
            vec![0xab; BLOCK_SIZE - 40],
            b"last".to_vec(),
        ]
    }

    fn refs(records: &[Vec<u8>]) -> Vec<&[u8]> {
        records.iter().map(Vec::as_slice).collect()
    }

    fn assert_prefix(replay: &LogReplay, records: &[&[u8]], context: &str) {
        assert!(replay.records.len() <= records.len(), "{context}");
        for (got, want) in replay.records.iter().zip(records) {
            assert_eq!(&got[..], *want, "{context}: a record differs");
        }
    }

    #[test]
    fn round_trips_records_of_every_size() {
        let records = sample_records();
        let data = encode_log(refs(&records));
        let replay = read_log(Bytes::from(data), "000001.log").unwrap();
        assert_eq!(replay.torn_tail_at, None);
        assert_eq!(replay.records, records);
        let empty = read_log(Bytes::new(), "000002.log").unwrap();
        assert_eq!((empty.records.len(), empty.torn_tail_at), (0, None));
    }

    #[test]
    fn large_records_round_trip() {
        let big: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 253) as u8).collect();
        let records: Vec<&[u8]> = vec![b"x", &big, b"y", &big[..(1 << 20) + 3]];
        let replay = read_log(Bytes::from(encode_log(records.clone())), "big.log").unwrap();
        assert_eq!(replay.torn_tail_at, None);
        assert_eq!(replay.records.len(), 4);
        for (got, want) in replay.records.iter().zip(&records) {
            assert_eq!(&got[..], *want);
        }
    }

    /// Reads every given truncation of `records`' log and checks it yields a prefix.
    fn sweep_truncations(records: &[&[u8]], cuts: impl Iterator<Item = usize>) {
        let data = Bytes::from(encode_log(records.iter().copied()));
        for cut in cuts.filter(|&cut| cut <= data.len()) {
            let replay = read_log(data.slice(..cut), "000003.log")
                .unwrap_or_else(|err| panic!("cut at {cut}: {err}"));
            assert_prefix(&replay, records, &format!("cut at {cut}"));
            if cut == data.len() {
                assert_eq!(replay.records.len(), records.len());
            }
            if let Some(at) = replay.torn_tail_at {
                assert!(at <= cut as u64, "cut at {cut}: torn tail at {at}");
            }
        }
    }

    #[test]
    fn every_truncation_is_a_torn_tail_with_a_prefix_of_the_records() {
        let small: Vec<Vec<u8>> = vec![
            b"alpha".to_vec(),
            Vec::new(),
            vec![1; 300],
            b"beta".to_vec(),
            vec![3; 500],
            b"omega".to_vec(),
        ];
        sweep_truncations(&refs(&small), 0..2000);
        // A record fragmented across a block boundary: every cut near the record edges
        // and the block boundary, and a stride through the rest to keep the sweep fast.
        let spanning: Vec<Vec<u8>> = vec![
            b"alpha".to_vec(),
            vec![0xa5; BLOCK_SIZE - 400],
            vec![0x5a; 500],
            b"omega".to_vec(),
        ];
        let edges = (0..40)
            .chain(BLOCK_SIZE - 400..BLOCK_SIZE - 350)
            .chain(BLOCK_SIZE - 80..BLOCK_SIZE + 80)
            .chain(BLOCK_SIZE + 420..BLOCK_SIZE + 600);
        sweep_truncations(&refs(&spanning), edges);
        sweep_truncations(&refs(&spanning), (0..BLOCK_SIZE + 600).step_by(211));
    }

    #[test]
    fn payloads_that_look_like_fragment_headers_do_not_fool_the_tail_check() {
        // Bytes of 2 read as FIRST fragments of 514 bytes at every offset: the scan after a
        // cut must check (and reject) each of them, and still call the cut a torn tail.
        let records: Vec<Vec<u8>> = vec![b"head".to_vec(), vec![2; 3000], vec![1; 40]];
        let records = refs(&records);
        sweep_truncations(&records, (0..3100).step_by(37));
    }

    #[test]
    fn zero_filled_tails_are_torn_tails() {
        let records: Vec<&[u8]> = vec![b"one", b"two"];
        let mut data = encode_log(records.clone());
        let end = data.len() as u64;
        data.resize(data.len() + BLOCK_SIZE + 123, 0);
        let replay = read_log(Bytes::from(data), "000004.log").unwrap();
        assert_eq!(replay.torn_tail_at, Some(end));
        assert_eq!(replay.records.len(), 2);
    }

    /// Appends to `data` (a log) a marker stating that its first `durable` bytes were
    /// synced, as the writer does at the next append after a sync.
    fn push_marker(data: &mut Vec<u8>, durable: u64) {
        let mut block_offset = data.len() % BLOCK_SIZE;
        crate::wal::encode_synced_marker(&mut block_offset, durable, data);
    }

    #[test]
    fn a_hole_before_valid_data_is_a_tail_unless_a_later_marker_covers_it() {
        // A run of zeros (a page the power loss lost) and then valid data: without a marker
        // after it, nothing says the lost bytes were ever synced, so it is a tolerated tail;
        // with one that states a durable length past the hole it is corruption. The zero
        // skip of the scan must not jump over the marker, wherever in the block it starts.
        for gap in [0, 1, 5, 6, 7, 100, 4093] {
            let mut data = encode_log([&b"one"[..], b"two"]);
            let hole = data.len();
            data.resize(BLOCK_SIZE + gap, 0);
            data.extend(encode_log([&b"three"[..]]));
            let replay = read_log(Bytes::from(data.clone()), "000006.log").unwrap();
            assert_eq!(replay.records.len(), 2, "gap {gap}");
            assert_eq!(replay.torn_tail_at, Some(hole as u64), "gap {gap}");

            let durable = data.len() as u64;
            push_marker(&mut data, durable);
            match read_log(Bytes::from(data), "000006.log") {
                Err(Error::Corruption { message }) => {
                    assert!(message.contains("synced"), "gap {gap}: {message}");
                }
                other => panic!("gap {gap}: expected Corruption, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_marker_that_does_not_reach_the_damage_leaves_it_a_tail() {
        // Synced through the first two records, then an unsynced group whose first page
        // was lost while a later one (holding a marker from before the loss) survived.
        let mut data = encode_log([&b"one"[..], b"two"]);
        let synced = data.len() as u64;
        push_marker(&mut data, synced);
        let group_start = data.len();
        let big = vec![0x77u8; BLOCK_SIZE + 500];
        let mut block_offset = data.len() % BLOCK_SIZE;
        crate::wal::encode_record(&mut block_offset, &big, &mut data);
        crate::wal::encode_record(&mut block_offset, b"after", &mut data);
        // The marker after the hole states the same old durable length: it does not
        // reach the damaged record, so the damage is still a tail.
        push_marker(&mut data, synced);
        data[group_start + HEADER_SIZE..group_start + 4096].fill(0);
        let replay = read_log(Bytes::from(data), "000007.log").unwrap();
        assert_eq!(replay.records.len(), 2);
        assert_eq!(replay.torn_tail_at, Some(group_start as u64));
        assert_eq!(replay.durable_through, synced);
    }

    /// A marker at every offset near a block's end, records after it: the log reads back
    /// whole, with the marker's durable length, whatever room the block had left; and the
    /// raw zeros an older writer left there read back too.
    #[test]
    fn a_marker_at_the_end_of_a_block_leaves_a_readable_log() {
        for left in 0..=2 * (HEADER_SIZE + SYNCED_PAYLOAD) {
            let mut data = Vec::new();
            let mut block_offset = 0;
            let filler = vec![9u8; BLOCK_SIZE - HEADER_SIZE - left];
            crate::wal::encode_record(&mut block_offset, &filler, &mut data);
            assert_eq!(data.len(), BLOCK_SIZE - left);
            let durable = data.len() as u64;
            push_marker(&mut data, durable);
            let mut block_offset = data.len() % BLOCK_SIZE;
            crate::wal::encode_record(&mut block_offset, b"after", &mut data);
            let replay = read_log(Bytes::from(data.clone()), "000011.log").unwrap();
            assert_eq!(replay.records.len(), 2, "left {left}");
            assert_eq!(replay.torn_tail_at, None, "left {left}");
            assert_eq!(replay.durable_through, durable, "left {left}");

            // The zeros the older writer padded such a tail with.
            if (HEADER_SIZE..HEADER_SIZE + SYNCED_PAYLOAD).contains(&left) {
                let start = BLOCK_SIZE - left;
                data[start..BLOCK_SIZE].fill(0);
                let replay = read_log(Bytes::from(data), "000011.log").unwrap();
                assert_eq!(replay.records.len(), 2, "legacy, left {left}");
                assert_eq!(replay.durable_through, durable, "legacy, left {left}");
            }
        }
    }

    #[test]
    fn markers_are_not_records_and_state_the_durable_length() {
        let mut data = encode_log([&b"one"[..]]);
        let first = data.len() as u64;
        push_marker(&mut data, first);
        let mut block_offset = data.len() % BLOCK_SIZE;
        crate::wal::encode_record(&mut block_offset, b"two", &mut data);
        let replay = read_log(Bytes::from(data), "000008.log").unwrap();
        let got: Vec<&[u8]> = replay.records.iter().map(|r| &r[..]).collect();
        assert_eq!(got, [&b"one"[..], b"two"]);
        assert_eq!((replay.torn_tail_at, replay.durable_through), (None, first));
    }

    #[test]
    fn every_bit_flip_in_a_sealed_log_is_corruption_or_drops_only_the_marker() {
        let records: Vec<Vec<u8>> = vec![
            b"alpha".to_vec(),
            vec![1; 40],
            Vec::new(),
            b"gamma".to_vec(),
            b"omega".to_vec(),
        ];
        let records = refs(&records);
        let data = crate::wal::encode_sealed_log(records.clone());
        let marker_start = encode_log(records.clone()).len();
        for byte in 0..data.len() {
            for bit in 0..8 {
                let mut damaged = data.clone();
                damaged[byte] ^= 1 << bit;
                let context = format!("flip of bit {bit} of byte {byte}");
                match read_log(Bytes::from(damaged), "000005.log") {
                    Err(Error::Corruption { message }) => {
                        assert!(message.contains("000005.log"), "{context}: {message}");
                        assert!(byte < marker_start, "{context}: the marker is a tail");
                    }
                    Err(other) => panic!("{context}: unexpected error {other}"),
                    Ok(replay) => {
                        assert!(byte >= marker_start, "{context}: damage was not detected");
                        assert_eq!(replay.records.len(), records.len(), "{context}");
                        assert_prefix(&replay, &records, &context);
                        assert_eq!(replay.torn_tail_at, Some(marker_start as u64));
                    }
                }
            }
        }
    }

    #[test]
    fn damage_in_an_early_block_is_corruption_even_far_from_the_end() {
        let records: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 3000]).collect();
        let records = refs(&records);
        let mut data = crate::wal::encode_sealed_log(records);
        data[HEADER_SIZE + 10] ^= 0x40;
        let err = read_log(Bytes::from(data), "000006.log").unwrap_err();
        assert!(err.to_string().contains("offset 0"), "{err}");
    }

    #[test]
    fn fragments_out_of_sequence_under_a_marker_are_corruption() {
        let big = vec![5u8; BLOCK_SIZE * 2];
        let data = encode_log([&big[..], b"tail"]);
        // A FIRST fragment followed by a FULL one: the record in progress lost its end.
        // Synced data cannot lose a page, so under a marker that covers it this is damage;
        // without one it is what a power loss may leave, a tail.
        let mut spliced = data[..BLOCK_SIZE].to_vec();
        spliced.extend_from_slice(&encode_log([&b"tail"[..]]));
        let tail = read_log(Bytes::from(spliced.clone()), "a.log").unwrap();
        assert_eq!((tail.records.len(), tail.torn_tail_at), (0, Some(0)));
        let durable = spliced.len() as u64;
        push_marker(&mut spliced, durable);
        assert!(matches!(
            read_log(Bytes::from(spliced), "a.log"),
            Err(Error::Corruption { .. })
        ));
        // A log that starts with a MIDDLE fragment, and then a covering marker.
        let mut orphan = data[BLOCK_SIZE..].to_vec();
        let durable = orphan.len() as u64;
        push_marker(&mut orphan, durable);
        assert!(matches!(
            read_log(Bytes::from(orphan), "b.log"),
            Err(Error::Corruption { .. })
        ));
        // A marker inside a fragmented record is out of sequence (the writer never puts one
        // there), and it states that the broken record was synced.
        let mut interrupted = data[..BLOCK_SIZE].to_vec();
        push_marker(&mut interrupted, BLOCK_SIZE as u64);
        match read_log(Bytes::from(interrupted), "c.log") {
            Err(Error::Corruption { message }) => {
                assert!(message.contains("interrupts"), "{message}");
            }
            other => panic!("expected Corruption, got {other:?}"),
        }
    }

    #[test]
    fn a_fragmented_record_cut_at_a_block_boundary_is_a_torn_tail() {
        let big = vec![6u8; BLOCK_SIZE * 2];
        let data = Bytes::from(encode_log([&b"head"[..], &big]));
        let replay = read_log(data.slice(..BLOCK_SIZE), "c.log").unwrap();
        assert_eq!(replay.records.len(), 1);
        assert_eq!(replay.torn_tail_at, Some((HEADER_SIZE + 4) as u64));
    }

    #[test]
    fn random_garbage_never_panics() {
        let seed = floe_testkit::seed("random_garbage_never_panics");
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(seed);
        let records: Vec<&[u8]> = vec![b"a", b"bb", &[7; 100]];
        let good = encode_log(records);
        for _ in 0..2000 {
            let mut bytes = good.clone();
            let len = rand::Rng::random_range(&mut rng, 0..bytes.len() + 40);
            bytes.resize(len, 0);
            for _ in 0..rand::Rng::random_range(&mut rng, 0..4) {
                if !bytes.is_empty() {
                    let at = rand::Rng::random_range(&mut rng, 0..bytes.len());
                    bytes[at] = rand::Rng::random(&mut rng);
                }
            }
            let _ = read_log(Bytes::from(bytes), "r.log");
        }
    }
}
