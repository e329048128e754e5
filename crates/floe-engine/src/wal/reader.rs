//! [`read_log`]: recovers the records of a log, telling a torn tail from corruption.
//!
//! A crash can cut the log anywhere inside the last write, and a file system may leave
//! zeros where the cut write's blocks were allocated but never filled. Neither is damage
//! to acknowledged data, so both are dropped. A damaged record that valid fragments follow
//! cannot be explained by a crash cutting the tail, and is reported as corruption rather
//! than silently dropping the acknowledged records after it.

use std::ops::Range;

use bytes::Bytes;

use super::{BLOCK_SIZE, FragmentType, HEADER_SIZE, fragment_crc};
use crate::error::{Error, Result};

/// The records recovered from one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogReplay {
    /// The complete, checksum-valid records, in order. A record that fits in one fragment
    /// is a zero-copy slice of the log's bytes.
    pub(crate) records: Vec<Bytes>,
    /// The offset of the first incomplete or damaged record, when the log ended in a torn
    /// tail that was dropped; `None` when every byte belonged to a complete record.
    pub(crate) torn_tail_at: Option<u64>,
}

/// A fragment that passed every check: its type and the extent of its payload.
struct Fragment {
    ty: FragmentType,
    payload: Range<usize>,
}

/// Parses and checks the fragment whose header starts at `pos`, which must leave at least
/// a header's room in its block. The checks run cheapest first, because the corruption
/// scan calls this at every offset of the damaged region.
fn parse_fragment(data: &[u8], pos: usize) -> Result<Fragment, &'static str> {
    let Some(header) = data.get(pos..pos + HEADER_SIZE) else {
        return Err("the fragment header is cut short");
    };
    let Some(ty) = FragmentType::from_u8(header[6]) else {
        return Err("the fragment type is unknown (zero-filled or damaged)");
    };
    let len = u16::from_le_bytes([header[4], header[5]]);
    let start = pos + HEADER_SIZE;
    let end = start + usize::from(len);
    let block_end = (pos / BLOCK_SIZE + 1) * BLOCK_SIZE;
    if end > block_end {
        return Err("the fragment length crosses the block boundary");
    }
    let Some(payload) = data.get(start..end) else {
        return Err("the fragment payload is cut short");
    };
    let stored = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if stored != fragment_crc(header[6], len, payload) {
        return Err("the fragment checksum does not match");
    }
    Ok(Fragment {
        ty,
        payload: start..end,
    })
}

/// The offset of the first checksum-valid fragment that starts at or after `from`, if any.
fn find_valid_fragment(data: &[u8], from: usize) -> Option<usize> {
    let mut pos = from;
    while pos < data.len() {
        let block_left = BLOCK_SIZE - pos % BLOCK_SIZE;
        if block_left < HEADER_SIZE {
            pos += block_left;
            continue;
        }
        if parse_fragment(data, pos).is_ok() {
            return Some(pos);
        }
        // A fragment's type (byte 6 of its header) is never zero, so no fragment starts
        // more than 6 bytes before the next nonzero byte: a run of zeros, such as the
        // unused reserved room at the end of a segment, is skipped at once.
        let next_nonzero = data[pos + 1..].iter().position(|&b| b != 0)?;
        pos = (pos + 1 + next_nonzero)
            .saturating_sub(HEADER_SIZE - 1)
            .max(pos + 1);
    }
    None
}

/// Recovers the records of a log (segment or manifest) from its whole contents.
///
/// Reading stops at the first damaged or incomplete record. If no checksum-valid fragment
/// starts anywhere after the damage, the damage is a torn tail: it and everything after it
/// are dropped and its offset is reported in [`LogReplay::torn_tail_at`]. Otherwise the
/// log is damaged in the middle and the result is `Corruption` naming `file_name` and the
/// offset. Never panics, whatever the bytes.
pub(crate) fn read_log(data: Bytes, file_name: &str) -> Result<LogReplay> {
    let mut records = Vec::new();
    // The start offset and gathered bytes of a record whose FIRST fragment has been read.
    let mut pending: Option<(usize, Vec<u8>)> = None;
    let mut pos = 0;
    // Where reading stopped: the start of the bad record, the offset from which to look
    // for valid fragments, and why.
    let (bad_record, scan_from, reason) = loop {
        if pos >= data.len() {
            match pending {
                None => {
                    return Ok(LogReplay {
                        records,
                        torn_tail_at: None,
                    });
                }
                Some((start, _)) => {
                    break (start, data.len(), "the log ends inside a fragmented record");
                }
            }
        }
        let block_left = BLOCK_SIZE - pos % BLOCK_SIZE;
        if block_left < HEADER_SIZE {
            // Zero padding at the end of a block; its contents carry nothing.
            pos += block_left;
            continue;
        }
        let fragment = match parse_fragment(&data, pos) {
            Ok(fragment) => fragment,
            Err(reason) => {
                let start = pending.as_ref().map_or(pos, |(start, _)| *start);
                break (start, pos, reason);
            }
        };
        let payload = &data[fragment.payload.clone()];
        match (fragment.ty, pending.as_mut()) {
            (FragmentType::Full, None) => records.push(data.slice(fragment.payload.clone())),
            (FragmentType::First, None) => pending = Some((pos, payload.to_vec())),
            (FragmentType::Middle, Some((_, gathered))) => gathered.extend_from_slice(payload),
            (FragmentType::Last, Some((_, gathered))) => {
                gathered.extend_from_slice(payload);
                if let Some((_, whole)) = pending.take() {
                    records.push(Bytes::from(whole));
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
    // The fragment at `scan_from` may itself be valid (a fragment out of sequence); it
    // counts as valid data after the damage, since a crash never writes out of order.
    if let Some(valid) = find_valid_fragment(&data, scan_from) {
        return Err(Error::corruption(format!(
            "log {file_name}: the record at offset {bad_record} is damaged ({reason}), \
             and a valid fragment follows at offset {valid}"
        )));
    }
    Ok(LogReplay {
        records,
        torn_tail_at: Some(bad_record as u64),
    })
}

#[cfg(test)]
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

    #[test]
    fn a_valid_fragment_after_a_run_of_zeros_is_found_and_reported_as_corruption() {
        // The zero skip of the tail scan must not jump over a fragment that follows zeros,
        // wherever in the block it starts and whatever its checksum's leading bytes are.
        for gap in [0, 1, 5, 6, 7, 100, 4093] {
            let mut data = encode_log([&b"one"[..], b"two"]);
            data.resize(BLOCK_SIZE + gap, 0);
            data.extend(encode_log([&b"three"[..]]));
            match read_log(Bytes::from(data), "000006.log") {
                Err(Error::Corruption { .. }) => {}
                other => panic!("gap {gap}: expected Corruption, got {other:?}"),
            }
        }
    }

    #[test]
    fn every_bit_flip_is_corruption_or_drops_only_the_last_record() {
        let records: Vec<Vec<u8>> = vec![
            b"alpha".to_vec(),
            vec![1; 40],
            Vec::new(),
            b"gamma".to_vec(),
            b"omega".to_vec(),
        ];
        let records = refs(&records);
        let data = encode_log(records.clone());
        let last_start = data.len() - (HEADER_SIZE + records[4].len());
        for byte in 0..data.len() {
            for bit in 0..8 {
                let mut damaged = data.clone();
                damaged[byte] ^= 1 << bit;
                let context = format!("flip of bit {bit} of byte {byte}");
                match read_log(Bytes::from(damaged), "000005.log") {
                    Err(Error::Corruption { message }) => {
                        assert!(message.contains("000005.log"), "{context}: {message}");
                        assert!(byte < last_start, "{context}: the last record is a tail");
                    }
                    Err(other) => panic!("{context}: unexpected error {other}"),
                    Ok(replay) => {
                        assert!(byte >= last_start, "{context}: damage was not detected");
                        assert_prefix(&replay, &records, &context);
                        assert_eq!(replay.records.len(), 4, "{context}");
                        assert_eq!(replay.torn_tail_at, Some(last_start as u64));
                    }
                }
            }
        }
    }

    #[test]
    fn damage_in_an_early_block_is_corruption_even_far_from_the_end() {
        let records: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 3000]).collect();
        let records = refs(&records);
        let mut data = encode_log(records);
        data[HEADER_SIZE + 10] ^= 0x40;
        let err = read_log(Bytes::from(data), "000006.log").unwrap_err();
        assert!(err.to_string().contains("offset 0"), "{err}");
    }

    #[test]
    fn fragments_out_of_sequence_are_corruption() {
        let big = vec![5u8; BLOCK_SIZE * 2];
        let data = encode_log([&big[..], b"tail"]);
        // A FIRST fragment followed by a FULL one: the record in progress lost its end,
        // and valid data follows, so no crash can explain it. (A lost MIDDLE block between
        // a FIRST and a LAST is invisible to the framing; the payload decoders catch it.)
        let mut spliced = data[..BLOCK_SIZE].to_vec();
        spliced.extend_from_slice(&encode_log([&b"tail"[..]]));
        assert!(matches!(
            read_log(Bytes::from(spliced), "a.log"),
            Err(Error::Corruption { .. })
        ));
        // A log that starts with a MIDDLE fragment.
        let orphan = data[BLOCK_SIZE..].to_vec();
        assert!(matches!(
            read_log(Bytes::from(orphan), "b.log"),
            Err(Error::Corruption { .. })
        ));
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
        let seed = std::env::var("FLOE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random::<u64>);
        println!("FLOE_SEED={seed}");
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
