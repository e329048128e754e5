//! The format-version fixture: `fixtures/v1.sst` was written by the first version of the
//! format and is checked in. This test reads it and checks every entry, so a change that
//! breaks reading old tables fails here. Regenerate it only for a new format version,
//! with `FLOE_WRITE_FIXTURE=1 cargo test -p floe-sstable --test fixture`, and keep the old
//! file's test.

mod common;

use std::ops::Bound;
use std::path::PathBuf;

use bytes::Bytes;
use common::{Model, build, model_get, model_range, scan, scan_back};
use floe_core::{InternalKey, MAX_SEQNO, ValueKind};
use floe_sstable::{FORMAT_VERSION, Table, TableOptions};

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

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1.sst")
}

#[test]
fn reads_the_v1_fixture() {
    let model = v1_model();
    let path = fixture_path();
    if std::env::var_os("FLOE_WRITE_FIXTURE").is_some() {
        assert_eq!(
            FORMAT_VERSION, 1,
            "write a new fixture file for a new version"
        );
        let (bytes, _) = build(&model, TableOptions::default().block_size(128));
        std::fs::write(&path, &bytes).unwrap();
    }
    let bytes = Bytes::from(std::fs::read(&path).unwrap());
    let table = Table::open(bytes).unwrap();
    let meta = table.meta();
    assert_eq!(meta.entries, model.len() as u64);
    assert_eq!(Some(&meta.smallest), model.keys().next());
    assert_eq!(Some(&meta.largest), model.keys().next_back());
    assert_eq!((meta.min_seqno, meta.max_seqno), (1, MAX_SEQNO));
    assert!(table.data_blocks() > 10);

    let all = model_range(&model, Bound::Unbounded, Bound::Unbounded);
    assert_eq!(
        scan(&table, Bound::Unbounded, Bound::Unbounded).unwrap(),
        all
    );
    assert_eq!(
        scan_back(&table, Bound::Unbounded, Bound::Unbounded).unwrap(),
        all
    );
    for key in model.keys() {
        for snapshot in [MAX_SEQNO, key.seqno, key.seqno.saturating_sub(1)] {
            assert_eq!(
                table.get(&key.user_key, snapshot).unwrap(),
                model_get(&model, &key.user_key, snapshot)
            );
        }
    }
    assert_eq!(table.get(b"key-040", MAX_SEQNO).unwrap(), None);
    let (kind, value) = table.get(b"key-005", 60).unwrap().unwrap();
    assert_eq!((kind, &value[..]), (ValueKind::Delete, &b""[..]));
    let (kind, value) = table.get(b"key-005", 54).unwrap().unwrap();
    assert_eq!((kind, &value[..]), (ValueKind::Put, &b"old-5"[..]));
}
