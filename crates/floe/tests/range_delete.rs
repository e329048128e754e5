//! `delete_range` against the contract: batch order, snapshots, empty and inverted
//! ranges, open ends, both scan directions over covered and partly covered ranges in
//! every layer (memtables, level 0, deeper levels), flush, compaction, reopen, keyspaces,
//! many overlapping range tombstones, and space reclaimed by compaction.

pub mod common;

use std::ops::Bound;

use common::{Model, assert_pairs, collect, collect_rev, model_all, model_range};
use floe::{Db, Options, WriteBatch};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn key(n: u32) -> Vec<u8> {
    format!("k{n:05}").into_bytes()
}

fn keys(db: &Db) -> Vec<String> {
    db.iter()
        .map(|kv| String::from_utf8(kv.unwrap().0.to_vec()).unwrap())
        .collect()
}

fn strs(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Checks every read path of `db` against `model`: a full scan both ways, ranges both
/// ways, and point reads of every key the run used.
fn check(db: &Db, model: &Model, universe: u32, what: &str) {
    assert_pairs(&collect(db.iter(), what), &model_all(model), what);
    let mut back = collect_rev(db.iter(), what);
    back.reverse();
    assert_pairs(&back, &model_all(model), what);
    for (lo, hi) in [
        (0, universe / 3),
        (universe / 4, universe),
        (universe / 2, universe / 2 + 7),
    ] {
        let (lo, hi) = (key(lo), key(hi));
        let range = (Bound::Included(&lo[..]), Bound::Excluded(&hi[..]));
        let want = model_range(model, range);
        assert_pairs(&collect(db.range::<&[u8], _>(range), what), &want, what);
        let mut back = collect_rev(db.range::<&[u8], _>(range), what);
        back.reverse();
        assert_pairs(&back, &want, what);
    }
    for n in 0..universe {
        let k = key(n);
        assert_eq!(
            db.get(&k).unwrap().map(|v| v.to_vec()),
            model.get(&k).cloned(),
            "{what}: get {n}"
        );
    }
}

fn remove_range(model: &mut Model, lo: &[u8], hi: &[u8]) {
    model.retain(|k, _| k.as_slice() < lo || k.as_slice() >= hi);
}

#[test]
fn a_batch_applies_in_order_and_a_snapshot_keeps_the_old_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    for k in ["a", "b", "c", "d", "e"] {
        db.put(k, "old").unwrap();
    }
    let before = db.snapshot();
    let mut batch = WriteBatch::new();
    batch.put("b", "before-the-range");
    batch.delete_range("b".."e");
    batch.put("c", "after-the-range");
    db.write(batch).unwrap();
    assert_eq!(keys(&db), strs(&["a", "c", "e"]));
    assert_eq!(
        db.get("c").unwrap().as_deref(),
        Some(&b"after-the-range"[..])
    );
    assert_eq!(db.get("b").unwrap(), None);
    // The snapshot taken before still sees every old key, in both directions.
    let old: Vec<_> = before.iter().map(|kv| kv.unwrap().0).collect();
    assert_eq!(old, ["a", "b", "c", "d", "e"]);
    let old_back: Vec<_> = before.iter().rev().map(|kv| kv.unwrap().0).collect();
    assert_eq!(old_back, ["e", "d", "c", "b", "a"]);
    assert_eq!(before.get("d").unwrap().as_deref(), Some(&b"old"[..]));
    // Later writes into the range are visible.
    db.put("d", "new").unwrap();
    assert_eq!(keys(&db), strs(&["a", "c", "d", "e"]));
}

#[test]
fn empty_inverted_and_open_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    for k in ["a", "b", "c", "d"] {
        db.put(k, "v").unwrap();
    }
    db.delete_range("c".."b").unwrap();
    db.delete_range("b".."b").unwrap();
    db.delete_range::<&str, _>((Bound::Excluded("b"), Bound::Included("b")))
        .unwrap();
    assert_eq!(keys(&db), strs(&["a", "b", "c", "d"]));
    db.delete_range::<&str, _>((Bound::Excluded("a"), Bound::Included("b")))
        .unwrap();
    assert_eq!(keys(&db), strs(&["a", "c", "d"]));
    db.delete_range("c"..).unwrap();
    assert_eq!(keys(&db), strs(&["a"]));
    db.put("zzz", "later").unwrap();
    db.flush().unwrap();
    assert_eq!(keys(&db), strs(&["a", "zzz"]));
    db.delete_range::<&str, _>(..).unwrap();
    assert!(keys(&db).is_empty());
    db.put("", "empty key").unwrap();
    assert_eq!(keys(&db), strs(&[""]));
    db.close().unwrap();
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(keys(&db), strs(&[""]));
}

/// Keys in the bottom level, in level 0 and in the memtable; ranges deleted in each of
/// them, partly overlapping the others; every read path checked after each step and
/// across reopen and full compaction.
#[test]
fn every_layer_respects_range_tombstones_in_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    let options = || {
        Options::default()
            .write_buffer_size(16 << 10)
            .block_size(256)
    };
    let mut db = Db::open_with(dir.path(), options()).unwrap();
    let mut model = Model::new();
    let universe = 3000;
    let put = |db: &Db, model: &mut Model, n: u32, tag: &str| {
        let value = format!("{tag}{n}").into_bytes();
        db.put(key(n), &value).unwrap();
        model.insert(key(n), value);
    };
    for n in (0..universe).step_by(2) {
        put(&db, &mut model, n, "bottom");
    }
    db.compact().unwrap();
    db.delete_range(key(100)..key(400)).unwrap();
    remove_range(&mut model, &key(100), &key(400));
    for n in (1..universe).step_by(3) {
        put(&db, &mut model, n, "l0-");
    }
    db.flush().unwrap();
    check(&db, &model, universe, "after level 0");
    db.delete_range(key(350)..key(1200)).unwrap();
    remove_range(&mut model, &key(350), &key(1200));
    for n in (900..1000).step_by(5) {
        put(&db, &mut model, n, "mem-");
    }
    db.delete_range(key(2000)..).unwrap();
    model.retain(|k, _| k.as_slice() < key(2000).as_slice());
    put(&db, &mut model, 2500, "after-open-end-");
    check(&db, &model, universe, "with the memtable");
    db.flush().unwrap();
    check(&db, &model, universe, "after flush");
    db.close().unwrap();
    db = Db::open_with(dir.path(), options()).unwrap();
    check(&db, &model, universe, "after reopen");
    db.compact().unwrap();
    check(&db, &model, universe, "after compaction");
    db.close().unwrap();
    db = Db::open_with(dir.path(), options()).unwrap();
    check(&db, &model, universe, "after compaction and reopen");
}

/// 10,000 overlapping range tombstones among 20,000 keys, in memtables and tables: every
/// point read and scan agrees with the model.
#[test]
fn ten_thousand_overlapping_range_tombstones() {
    let seed = floe_testkit::seed("ten_thousand_overlapping_range_tombstones");
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), Options::default().write_buffer_size(256 << 10)).unwrap();
    let universe = 20_000;
    let mut model = Model::new();
    for n in 0..universe {
        db.put(key(n), b"v").unwrap();
        model.insert(key(n), b"v".to_vec());
    }
    db.flush().unwrap();
    for i in 0..10_000u32 {
        let start = rng.random_range(0..universe);
        let end = start + rng.random_range(1..40);
        db.delete_range(key(start)..key(end)).unwrap();
        remove_range(&mut model, &key(start), &key(end));
        if i % 7 == 0 {
            let n = rng.random_range(0..universe);
            db.put(key(n), b"again").unwrap();
            model.insert(key(n), b"again".to_vec());
        }
        if i == 5_000 {
            db.flush().unwrap();
        }
    }
    check(&db, &model, universe, &format!("seed {seed}, live"));
    db.compact().unwrap();
    check(&db, &model, universe, &format!("seed {seed}, compacted"));
}

fn table_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "sst"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn compaction_reclaims_the_space_and_keeps_what_snapshots_see() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let value = vec![7u8; 100];
    for n in 0..20_000 {
        db.put(key(n), &value).unwrap();
    }
    db.compact().unwrap();
    let full = table_bytes(dir.path());
    let snapshot = db.snapshot();
    db.delete_range(key(0)..key(18_000)).unwrap();
    db.compact().unwrap();
    // The snapshot still reads every deleted key, so nothing could go.
    assert_eq!(snapshot.get(key(5)).unwrap().as_deref(), Some(&value[..]));
    assert_eq!(snapshot.iter().count(), 20_000);
    assert!(table_bytes(dir.path()) >= full * 9 / 10);
    drop(snapshot);
    db.compact().unwrap();
    let after = table_bytes(dir.path());
    assert!(
        after < full / 5,
        "{after} of {full} bytes left after the compaction"
    );
    assert_eq!(db.iter().count(), 2_000);
    assert_eq!(db.get(key(17_999)).unwrap(), None);
    assert_eq!(db.get(key(18_000)).unwrap().as_deref(), Some(&value[..]));
}

#[test]
fn keyspaces_delete_ranges_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let index = db.keyspace("index").unwrap();
    for k in ["a", "b", "c"] {
        db.put(k, "d").unwrap();
        index.put(k, "i").unwrap();
    }
    index.delete_range("a".."c").unwrap();
    assert_eq!(keys(&db), strs(&["a", "b", "c"]));
    let in_index: Vec<_> = index.iter().map(|kv| kv.unwrap().0).collect();
    assert_eq!(in_index, ["c"]);
    let mut batch = WriteBatch::new();
    batch.delete_range_in(&index, "c"..);
    batch.delete_range("a"..="a");
    db.write(batch).unwrap();
    assert_eq!(index.iter().count(), 0);
    assert_eq!(keys(&db), strs(&["b", "c"]));
    db.flush().unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let index = db.keyspace("index").unwrap();
    assert_eq!(index.iter().count(), 0);
    assert_eq!(keys(&db), strs(&["b", "c"]));
    db.drop_keyspace("index").unwrap();
    assert!(index.delete_range("a".."z").is_err());
    assert!(index.delete_range("z".."a").is_err());
}

/// Damages a data block of every table, then deletes everything with one range: the
/// compaction that follows must drop the tables without reading them (a read would hit
/// the damage and fail).
#[test]
fn a_table_wholly_inside_a_newer_range_tombstone_is_dropped_unread() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    for n in 0..5_000 {
        db.put(key(n), [3u8; 100]).unwrap();
    }
    db.compact().unwrap();
    db.close().unwrap();
    let mut damaged = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "sst") {
            // Byte 100 lies inside the first data block, which open does not read.
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[100] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
            damaged += 1;
        }
    }
    assert!(damaged > 0);
    let db = Db::open(dir.path()).unwrap();
    assert!(db.get(key(0)).is_err(), "the damage is real");
    db.delete_range::<&[u8], _>(..).unwrap();
    db.compact().unwrap();
    let stats = db.stats();
    assert_eq!(
        stats.tables_dropped_by_range_tombstones, damaged,
        "{stats:?}"
    );
    assert_eq!(db.get(key(0)).unwrap(), None);
    assert_eq!(db.iter().count(), 0);
    assert_eq!(table_bytes(dir.path()), 0);
}
