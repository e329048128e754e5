//! The format-version fixtures: `fixtures/v1.sst` was written by the first version of
//! the format, `fixtures/v2.sst` by the second (points and range tombstones), and
//! `fixtures/v3-lz4.sst` and `fixtures/v3-zstd.sst` by the third (compressed data blocks
//! beside raw ones); all are checked in. These tests read them and check every entry and tombstone, so a change that
//! breaks reading old tables fails here. The writer writes only the current version:
//! `FLOE_WRITE_FIXTURE=1 cargo test -p floe-sstable --test fixture` rewrites the current
//! version's fixture, which should only happen when that version is new. For a new
//! format version, add a fixture and its test and keep every old one.

mod common;

use std::ops::Bound;
use std::path::PathBuf;

use bytes::Bytes;
use common::{Model, build_with, fragments, model_get, model_range, scan, scan_back};
use floe_core::range_del::{Fragment, Fragments};
use floe_core::{InternalKey, MAX_SEQNO, ValueKind};
use floe_sstable::{BlockCache, Compression, FORMAT_VERSION, Table, TableMeta, TableOptions};

/// The entries of the v1 fixture; this function must never change.
fn v1_model() -> Model {
    let mut model = Model::new();
    model.insert(
        InternalKey::new(Bytes::new(), 1, ValueKind::Put),
        Bytes::from_static(b"the empty key"),
    );
    model.insert(
        InternalKey::new(vec![0x00], 2, ValueKind::Put),
        Bytes::new(),
    );
    model.insert(
        InternalKey::new(vec![0x00, 0x00], 3, ValueKind::Delete),
        Bytes::new(),
    );
    for i in 0..40u64 {
        let key = format!("key-{i:03}");
        model.insert(
            InternalKey::new(key.clone(), 100 + i, ValueKind::Put),
            Bytes::from(format!("value-{i}")),
        );
        if i % 5 == 0 {
            model.insert(
                InternalKey::new(key.clone(), 50 + i, ValueKind::Delete),
                Bytes::new(),
            );
            model.insert(
                InternalKey::new(key, 10 + i, ValueKind::Put),
                Bytes::from(format!("old-{i}")),
            );
        }
    }
    model.insert(
        InternalKey::new("big", 7, ValueKind::Put),
        Bytes::from(vec![0xab; 1000]),
    );
    model.insert(
        InternalKey::new(vec![0xff; 300], MAX_SEQNO, ValueKind::Put),
        Bytes::from_static(b"last"),
    );
    model
}

fn fixture_path(version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/v{version}.sst"))
}

/// The format version in the footer of `bytes`.
fn footer_version(bytes: &[u8]) -> u32 {
    let at = bytes.len() - floe_sstable::FOOTER_LEN + 48;
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// Writes the fixture of the current format version when `FLOE_WRITE_FIXTURE` is set.
fn write_fixture_if_asked(version: u32, model: &Model, tombstones: &Fragments) {
    if std::env::var_os("FLOE_WRITE_FIXTURE").is_some() && version == FORMAT_VERSION {
        let (bytes, _) = build_with(model, tombstones, TableOptions::default().block_size(128));
        std::fs::write(fixture_path(version), &bytes).unwrap();
    }
}

/// Checks every point read of `table` against `model`.
fn check_points(table: &Table, model: &Model) {
    let all = model_range(model, Bound::Unbounded, Bound::Unbounded);
    assert_eq!(
        scan(table, Bound::Unbounded, Bound::Unbounded).unwrap(),
        all
    );
    assert_eq!(
        scan_back(table, Bound::Unbounded, Bound::Unbounded).unwrap(),
        all
    );
    for key in model.keys() {
        for snapshot in [MAX_SEQNO, key.seqno, key.seqno.saturating_sub(1)] {
            assert_eq!(
                table.get(&key.user_key, snapshot).unwrap(),
                model_get(model, &key.user_key, snapshot)
            );
        }
    }
}

#[test]
fn reads_the_v1_fixture() {
    let model = v1_model();
    // The current writer cannot write version 1: this fixture is never rewritten.
    let bytes = Bytes::from(std::fs::read(fixture_path(1)).unwrap());
    assert_eq!(footer_version(&bytes), 1);
    let table = Table::open(bytes).unwrap();
    assert!(table.range_tombstones().is_empty());
    assert_eq!(table.meta().range_tombstones, 0);
    let meta = table.meta();
    assert_eq!(meta.entries, model.len() as u64);
    assert_eq!(Some(&meta.smallest), model.keys().next());
    assert_eq!(Some(&meta.largest), model.keys().next_back());
    assert_eq!((meta.min_seqno, meta.max_seqno), (1, MAX_SEQNO));
    assert!(table.data_blocks() > 10);
    check_points(&table, &model);
    assert_eq!(table.get(b"key-040", MAX_SEQNO).unwrap(), None);
    let (kind, value) = table.get(b"key-005", 60).unwrap().unwrap();
    assert_eq!((kind, &value[..]), (ValueKind::Delete, &b""[..]));
    let (kind, value) = table.get(b"key-005", 54).unwrap().unwrap();
    assert_eq!((kind, &value[..]), (ValueKind::Put, &b"old-5"[..]));
}

/// The points of the v2 fixture; this function must never change.
fn v2_model() -> Model {
    let mut model = Model::new();
    model.insert(
        InternalKey::new(Bytes::new(), 4, ValueKind::Put),
        Bytes::from_static(b"the empty key"),
    );
    for i in 0..30u64 {
        let key = format!("key-{i:03}");
        model.insert(
            InternalKey::new(key.clone(), 100 + i, ValueKind::Put),
            Bytes::from(format!("value-{i}")),
        );
        if i % 4 == 0 {
            model.insert(
                InternalKey::new(key, 20 + i, ValueKind::Delete),
                Bytes::new(),
            );
        }
    }
    model.insert(
        InternalKey::new("big", 8, ValueKind::Put),
        Bytes::from(vec![0xcd; 700]),
    );
    model
}

/// The range tombstones of the v2 fixture, as written: overlapping, one from the empty
/// key, and one ending just past "zz" (so the table's largest key is `("zz", 0,
/// delete)`); this function must never change.
fn v2_tombstones() -> Fragments {
    fragments(&[
        (b"", b"\0", 2),
        (b"key-003", b"key-010", 120),
        (b"key-005", b"key-020", 60),
        (b"key-025", b"key-027", 90),
        (b"key-025", b"key-027", 10),
        (b"zz", b"zz\0", MAX_SEQNO - 1),
    ])
}

#[test]
fn reads_the_v2_fixture() {
    let (model, tombstones) = (v2_model(), v2_tombstones());
    write_fixture_if_asked(2, &model, &tombstones);
    let bytes = Bytes::from(std::fs::read(fixture_path(2)).unwrap());
    assert_eq!(footer_version(&bytes), 2);
    let file_size = bytes.len() as u64;
    let table = Table::open(bytes).unwrap();
    assert_eq!(
        table.meta(),
        &TableMeta {
            file_size,
            entries: 40,
            smallest: InternalKey::new(Bytes::new(), MAX_SEQNO, ValueKind::Delete),
            largest: InternalKey::new("zz", 0, ValueKind::Delete),
            min_seqno: 2,
            max_seqno: MAX_SEQNO - 1,
            range_tombstones: 8,
        }
    );
    assert_eq!(table.data_blocks(), 10);
    // The fragments, spelled out: the stored list is pinned, not just its round trip.
    let f = |start: &str, end: &str, seqnos: &[u64]| Fragment {
        start: Bytes::copy_from_slice(start.as_bytes()),
        end: Some(Bytes::copy_from_slice(end.as_bytes())),
        seqnos: seqnos.to_vec(),
    };
    let expected = [
        f("", "\0", &[2]),
        f("key-003", "key-005", &[120]),
        f("key-005", "key-010", &[120, 60]),
        f("key-010", "key-020", &[60]),
        f("key-025", "key-027", &[90, 10]),
        f("zz", "zz\0", &[MAX_SEQNO - 1]),
    ];
    assert_eq!(table.range_tombstones().fragments(), &expected);
    assert_eq!(table.range_tombstones(), &tombstones);
    assert_eq!(
        table.range_tombstones().max_covering(b"key-007", 100),
        Some(60)
    );
    assert_eq!(
        table.range_tombstones().max_covering(b"key-020", MAX_SEQNO),
        None
    );
    // The point reads return the points, tombstones or not.
    check_points(&table, &model);
    let (kind, value) = table.get(b"key-007", 107).unwrap().unwrap();
    assert_eq!((kind, &value[..]), (ValueKind::Put, &b"value-7"[..]));
    assert_eq!(table.get(b"key-007", 106).unwrap(), None);
    let (kind, value) = table.get(b"key-008", 50).unwrap().unwrap();
    assert_eq!((kind, &value[..]), (ValueKind::Delete, &b""[..]));
    assert_eq!(table.get(b"zz", MAX_SEQNO).unwrap(), None);
}

/// The points of the v3 fixtures: text that compresses, and one value of noise that gets
/// a raw block of its own; this function must never change.
fn v3_model() -> Model {
    let mut model = Model::new();
    for i in 0..200u64 {
        let key = format!("user:{i:05}");
        model.insert(
            InternalKey::new(key.clone(), 1000 + i, ValueKind::Put),
            Bytes::from(format!(
                "{{\"id\":{i},\"name\":\"user number {i}\",\"tags\":[\"alpha\",\"beta\"],\"active\":{}}}",
                i % 3 == 0
            )),
        );
        if i % 7 == 0 {
            model.insert(
                InternalKey::new(key, 500 + i, ValueKind::Delete),
                Bytes::new(),
            );
        }
    }
    // A fixed pseudo-random value that no codec shrinks by an eighth.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..3000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect();
    model.insert(
        InternalKey::new("user:noise", 9, ValueKind::Put),
        Bytes::from(noise),
    );
    model
}

/// The range tombstones of the v3 fixtures; this function must never change.
fn v3_tombstones() -> Fragments {
    fragments(&[
        (b"user:00010", b"user:00020", 1100),
        (b"user:00150", b"user:00160", 3),
    ])
}

#[test]
fn reads_the_v3_fixtures_with_compressed_blocks() {
    let (model, tombstones) = (v3_model(), v3_tombstones());
    let raw_options = TableOptions::default().block_size(1024);
    let (raw, _) = build_with(&model, &tombstones, raw_options.clone());
    for (name, compression) in [
        ("v3-lz4", Compression::Lz4),
        ("v3-zstd", Compression::Zstd(3)),
    ] {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{name}.sst"));
        if std::env::var_os("FLOE_WRITE_FIXTURE").is_some() && FORMAT_VERSION == 3 {
            let (bytes, _) = build_with(
                &model,
                &tombstones,
                raw_options.clone().compression(compression),
            );
            std::fs::write(&path, &bytes).unwrap();
        }
        let bytes = Bytes::from(std::fs::read(&path).unwrap());
        assert_eq!(footer_version(&bytes), 3, "{name}");
        // Compressed, with the noise block raw: well below the raw table's size.
        assert!(
            bytes.len() * 2 < raw.len(),
            "{name}: {} against {}",
            bytes.len(),
            raw.len()
        );
        let file_size = bytes.len() as u64;
        let plain = Table::open(bytes.clone()).unwrap();
        let cache = BlockCache::new(1 << 20);
        let cached = Table::open_mapped(bytes, &cache).unwrap();
        for table in [&plain, &cached] {
            assert_eq!(table.meta().file_size, file_size);
            assert_eq!(table.meta().entries, model.len() as u64);
            assert_eq!(table.range_tombstones(), &tombstones);
            check_points(table, &model);
            let (kind, value) = table.get(b"user:noise", MAX_SEQNO).unwrap().unwrap();
            assert_eq!((kind, value.len()), (ValueKind::Put, 3000));
        }
        assert!(cache.blocks() > 0, "{name}: decompressed blocks are cached");
        drop(cached);
        assert_eq!(
            cache.blocks(),
            0,
            "{name}: a dropped table's blocks leave the cache"
        );
    }
}
