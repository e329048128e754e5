//! Damage sweeps: every single-bit flip and every truncation of a small table (with and
//! without range tombstones, and of range tombstones alone) either yields `Corruption`
//! (from open or from the read that touches the damage) or leaves every answer exactly
//! right; never a wrong value, a panic, or a huge allocation.

mod common;

use std::ops::Bound;

use bytes::Bytes;
use common::{
    Model, build, build_with, expected_meta, fragments, model_get, model_range, scan, scan_back,
};
use floe_core::range_del::Fragments;
use floe_core::{InternalKey, MAX_SEQNO, ValueKind};
use floe_sstable::{Compression, Table, TableOptions};
use floe_testkit::LargestAlloc;

/// Records the largest single allocation, so the sweeps can prove that no damaged length
/// makes the reader allocate more than the file could justify.
#[global_allocator]
static ALLOC: LargestAlloc = LargestAlloc::new();

fn small_model() -> Model {
    let mut model = Model::new();
    for i in 0..12u8 {
        let key = vec![b'k', i];
        model.insert(
            InternalKey::new(key.clone(), 20 + u64::from(i), ValueKind::Put),
            Bytes::from(vec![i; 6]),
        );
        if i % 3 == 0 {
            model.insert(InternalKey::new(key, 10, ValueKind::Delete), Bytes::new());
        }
    }
    model
}

/// Range tombstones around and among the keys of [`small_model`].
fn small_tombstones() -> Fragments {
    fragments(&[
        (b"a", b"k\x02", 30),
        (b"k\x01", b"k\x05", 15),
        (b"k\x04", b"k\x08", 5),
        (b"k\x0b", b"z\0", MAX_SEQNO),
    ])
}

/// The tables the sweeps damage: points alone, points and range tombstones, and range
/// tombstones alone, each with its model.
fn sweep_tables() -> Vec<(&'static str, Model, Fragments, Bytes)> {
    let options = || TableOptions::default().block_size(64);
    let mut tables: Vec<_> = [
        ("points", small_model(), Fragments::default()),
        ("points and tombstones", small_model(), small_tombstones()),
        ("tombstones", Model::new(), small_tombstones()),
    ]
    .into_iter()
    .map(|(name, model, tombstones)| {
        let (bytes, _) = build_with(&model, &tombstones, options());
        (name, model, tombstones, bytes)
    })
    .collect();
    for (name, compression) in [
        ("lz4 blocks", Compression::Lz4),
        ("zstd blocks", Compression::Zstd(3)),
    ] {
        let model = compressible_model();
        let options = TableOptions::default()
            .block_size(256)
            .compression(compression);
        let (bytes, _) = build_with(&model, &Fragments::default(), options);
        let (raw, _) = build_with(
            &model,
            &Fragments::default(),
            TableOptions::default().block_size(256),
        );
        assert!(bytes.len() < raw.len(), "{name}: the blocks are compressed");
        tables.push((name, model, Fragments::default(), bytes));
    }
    tables
}

/// Entries whose values compress, for the sweeps of tables with compressed blocks.
fn compressible_model() -> Model {
    let mut model = Model::new();
    for i in 0..24u8 {
        model.insert(
            InternalKey::new(vec![b'c', i], 40 + u64::from(i), ValueKind::Put),
            Bytes::from(format!("value {i} of a table whose blocks compress well")),
        );
    }
    model
}

/// The byte range of the range tombstone block's frame: between the filter's end and the
/// index's start, as the footer places them.
fn range_block_frame(bytes: &[u8]) -> std::ops::Range<usize> {
    let footer = &bytes[bytes.len() - floe_sstable::FOOTER_LEN..];
    let field =
        |i: usize| u64::from_le_bytes(footer[i * 8..i * 8 + 8].try_into().unwrap()) as usize;
    let filter_end = field(0) + field(1) + 9;
    filter_end..field(2)
}

/// Rewrites the footer's version field and its checksum.
fn set_footer_version(bytes: &[u8], version: u32) -> Bytes {
    let mut file = bytes.to_vec();
    let at = file.len() - floe_sstable::FOOTER_LEN;
    file[at + 48..at + 52].copy_from_slice(&version.to_le_bytes());
    let crc = floe_core::checksum::crc32(&[&file[at..at + 52], &file[at + 56..]]);
    file[at + 52..at + 56].copy_from_slice(&crc.to_le_bytes());
    Bytes::from(file)
}

/// Asserts that `result` is exactly `expected` or a `Corruption` error.
fn right_or_corruption<T: PartialEq + std::fmt::Debug>(
    result: floe_sstable::Result<T>,
    expected: &T,
    what: &str,
) {
    match result {
        Ok(actual) => assert_eq!(
            &actual, expected,
            "{what}: a wrong answer instead of Corruption"
        ),
        Err(err) => assert!(err.is_corruption(), "{what}: {err} is not Corruption"),
    }
}

/// Opens the damaged `bytes` and checks every read against the model and the range
/// tombstones.
fn check_damaged(model: &Model, tombstones: &Fragments, bytes: Bytes, what: &str) {
    let file_size = bytes.len() as u64;
    let table = match Table::open(bytes) {
        Ok(table) => table,
        Err(err) => {
            assert!(
                err.is_corruption(),
                "{what}: open failed with {err}, not Corruption"
            );
            return;
        }
    };
    // Open verified every block but the data blocks: what they hold is right.
    assert_eq!(table.range_tombstones(), tombstones, "{what}");
    assert_eq!(
        table.meta(),
        &expected_meta(model, tombstones, file_size),
        "{what}"
    );
    let all = model_range(model, Bound::Unbounded, Bound::Unbounded);
    right_or_corruption(scan(&table, Bound::Unbounded, Bound::Unbounded), &all, what);
    right_or_corruption(
        scan_back(&table, Bound::Unbounded, Bound::Unbounded),
        &all,
        what,
    );
    let (lower, upper) = (
        Bound::Included(&b"k\x03"[..]),
        Bound::Excluded(&b"k\x09"[..]),
    );
    right_or_corruption(
        scan(&table, lower, upper),
        &model_range(model, lower, upper),
        what,
    );
    // Under Miri, which interprets every lookup, two snapshots: the newest, and one that
    // sees the deletions.
    let snapshots: &[u64] = if cfg!(miri) {
        &[MAX_SEQNO, 15]
    } else {
        &[MAX_SEQNO, 15, 5]
    };
    for key in model.keys() {
        for &snapshot in snapshots {
            let expected = model_get(model, &key.user_key, snapshot);
            right_or_corruption(table.get(&key.user_key, snapshot), &expected, what);
        }
    }
    for absent in [&b""[..], b"k", b"k\x0c", b"z"] {
        right_or_corruption(table.get(absent, MAX_SEQNO), &None, what);
    }
}

#[test]
fn every_single_bit_flip_is_detected_or_harmless() {
    for (name, model, tombstones, bytes) in sweep_tables() {
        if !model.is_empty() {
            assert!(Table::open(bytes.clone()).unwrap().data_blocks() > 3);
        }
        check_damaged(&model, &tombstones, bytes.clone(), "undamaged");
        let ((), largest) = ALLOC.measure(|| {
            // Every 389th bit under Miri, which interprets each open and read; 389 is
            // prime, so the flips still land on every bit position within a byte.
            for bit in (0..bytes.len() * 8).step_by(if cfg!(miri) { 389 } else { 1 }) {
                let mut damaged = bytes.to_vec();
                damaged[bit / 8] ^= 1 << (bit % 8);
                let what = format!("{name}: bit {bit} flipped");
                check_damaged(&model, &tombstones, Bytes::from(damaged), &what);
            }
        });
        assert!(
            largest < 64 << 10,
            "{name}: an allocation of {largest} bytes for a {}-byte table",
            bytes.len()
        );
    }
}

#[test]
fn every_byte_of_the_range_block_damaged_is_detected_or_harmless() {
    for (name, _, tombstones, bytes) in sweep_tables() {
        let frame = range_block_frame(&bytes);
        if tombstones.is_empty() {
            assert!(frame.is_empty(), "{name}: a range block without tombstones");
            continue;
        }
        assert_eq!(bytes[frame.start], 5, "{name}: the frame's type byte");
        for at in frame.clone() {
            for xor in [0x01, 0x80, 0xff, 0x5a] {
                let mut damaged = bytes.to_vec();
                damaged[at] ^= xor;
                let what = format!("{name}: byte {at} of the range block ^ {xor:#x}");
                let err = Table::open(Bytes::from(damaged.clone())).unwrap_err();
                assert!(err.is_corruption(), "{what}: {err}");
                // Damage the checksum cannot see: whatever opens holds a valid list.
                assert!(refresh_frame_checksums(&mut damaged) || at < frame.start + 5);
                if let Ok(table) = Table::open(Bytes::from(damaged)) {
                    let fragments = table.range_tombstones().fragments().to_vec();
                    assert!(Fragments::from_fragments(fragments).is_ok(), "{what}");
                    assert!(fragments_have_ends(table.range_tombstones()), "{what}");
                    let _ = scan(&table, Bound::Unbounded, Bound::Unbounded);
                    let _ = table.get(b"k\x03", MAX_SEQNO);
                }
            }
        }
    }
}

fn fragments_have_ends(fragments: &Fragments) -> bool {
    fragments.fragments().iter().all(|f| f.end.is_some())
}

#[test]
fn every_truncation_is_detected() {
    for (name, _, _, bytes) in sweep_tables() {
        for len in (0..bytes.len()).step_by(if cfg!(miri) { 13 } else { 1 }) {
            let err = Table::open(bytes.slice(..len)).unwrap_err();
            assert!(err.is_corruption(), "{name} truncated to {len}: {err}");
        }
        // Extra bytes at the end are damage too: the footer must be the last 64 bytes.
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(
            Table::open(Bytes::from(longer))
                .unwrap_err()
                .is_corruption()
        );
    }
}

#[test]
fn a_version_1_table_has_no_range_block_and_no_range_counts() {
    let tables = sweep_tables();
    // Points and tombstones, relabelled version 1: the gap before the index is refused.
    let (_, _, _, with_tombstones) = &tables[1];
    let err = Table::open(set_footer_version(with_tombstones, 1)).unwrap_err();
    assert!(err.is_corruption());
    assert!(err.to_string().contains("version-1"), "{err}");
    // Points alone, relabelled: the version-2 properties block has bytes version 1 lacks.
    let (_, _, _, points) = &tables[0];
    let err = Table::open(set_footer_version(points, 1)).unwrap_err();
    assert!(err.to_string().contains("properties block"), "{err}");
    // Versions this reader does not know.
    for version in [0, floe_sstable::FORMAT_VERSION + 1] {
        let err = Table::open(set_footer_version(points, version)).unwrap_err();
        assert!(err.to_string().contains("format version"), "{err}");
    }
    assert!(Table::open(set_footer_version(points, 2)).is_ok());
}

#[test]
fn corruption_messages_name_the_block_and_offset() {
    let model = small_model();
    let (bytes, _) = build(&model, TableOptions::default().block_size(64));
    let mut damaged = bytes.to_vec();
    damaged[10] ^= 0x40;
    let table = Table::open(Bytes::from(damaged)).unwrap();
    let err = scan(&table, Bound::Unbounded, Bound::Unbounded).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("data block at byte 0") && message.contains("checksum"),
        "{message}"
    );
    let err = Table::open(bytes.slice(..100)).unwrap_err().to_string();
    assert!(err.contains("magic"), "{err}");

    // The range tombstone block: a bad checksum, then a bad list behind a good one.
    let (bytes, _) = build_with(&Model::new(), &small_tombstones(), TableOptions::default());
    let frame = range_block_frame(&bytes);
    let mut damaged = bytes.to_vec();
    damaged[frame.start + 6] ^= 0x01;
    let err = Table::open(Bytes::from(damaged.clone()))
        .unwrap_err()
        .to_string();
    let at = format!("range tombstone block at byte {}", frame.start);
    assert!(err.contains(&at) && err.contains("checksum"), "{err}");
    // The first fragment, [a, k\x01) at 30, lists no sequence number: after the frame
    // header, the count, the start and the end comes its seqno count, 1, made 0.
    let mut damaged = bytes.to_vec();
    let count_at = frame.start + 5 + 1 + 2 + 3;
    assert_eq!(damaged[count_at], 1);
    damaged[count_at] = 0;
    assert!(refresh_frame_checksums(&mut damaged));
    let err = Table::open(Bytes::from(damaged)).unwrap_err().to_string();
    assert!(err.contains(&at), "{err}");
    // A gap too short for a frame.
    let mut short = bytes.to_vec();
    short.drain(frame.start..frame.start + 1);
    let err = Table::open(Bytes::from(short)).unwrap_err();
    assert!(err.is_corruption());
}

/// Recomputes the checksum of every block frame, so that damage reaches the decoders;
/// `false` if a damaged length breaks the walk over the frames.
fn refresh_frame_checksums(file: &mut [u8]) -> bool {
    let footer_at = file.len() - floe_sstable::FOOTER_LEN;
    let mut at = 0;
    while at < footer_at {
        let len =
            u32::from_le_bytes([file[at + 1], file[at + 2], file[at + 3], file[at + 4]]) as usize;
        let end = at + 5 + len;
        if end + 4 > footer_at {
            return false;
        }
        let crc = floe_core::checksum::crc32(&[&file[at..end]]);
        file[end..end + 4].copy_from_slice(&crc.to_le_bytes());
        at = end + 4;
    }
    true
}

#[test]
fn damage_behind_valid_checksums_never_panics_or_allocates_wildly() {
    // With every checksum made valid again, a flipped bit reaches the structural
    // decoders; answers may then be wrong (the checksum is what catches that), but no
    // decoder may panic or allocate beyond what the file justifies.
    for (name, model, _, bytes) in sweep_tables() {
        let footer_at = bytes.len() - floe_sstable::FOOTER_LEN;
        let (opened, largest) = ALLOC.measure(|| {
            let mut opened = 0;
            // Every 193rd bit under Miri, which interprets each open and read.
            for bit in (0..footer_at * 8).step_by(if cfg!(miri) { 193 } else { 1 }) {
                let mut damaged = bytes.to_vec();
                damaged[bit / 8] ^= 1 << (bit % 8);
                // A flip in a frame's length field breaks the walk; leave those to the
                // sweep above.
                if !refresh_frame_checksums(&mut damaged) {
                    continue;
                }
                let Ok(table) = Table::open(Bytes::from(damaged)) else {
                    continue;
                };
                opened += 1;
                let tombstones = table.range_tombstones();
                assert!(Fragments::from_fragments(tombstones.fragments().to_vec()).is_ok());
                assert!(fragments_have_ends(tombstones));
                let _ = tombstones.max_covering(b"k\x03", MAX_SEQNO);
                let _ = scan(&table, Bound::Unbounded, Bound::Unbounded);
                let _ = scan_back(&table, Bound::Unbounded, Bound::Unbounded);
                for key in model.keys() {
                    let _ = table.get(&key.user_key, MAX_SEQNO);
                }
            }
            opened
        });
        assert!(
            opened > 0,
            "{name}: some damage must get past open for this test to mean anything"
        );
        assert!(
            largest < 64 << 10,
            "{name}: an allocation of {largest} bytes for a {}-byte table",
            bytes.len()
        );
    }
}
