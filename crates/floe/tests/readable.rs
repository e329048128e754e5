//! The [`Readable`] trait over its three views, [`Db`], [`Keyspace`] and [`Snapshot`]:
//! every call on each against a `BTreeMap` model, code generic over the trait, and
//! `multi_get` against one `get` per key on randomized data spread over memtables, level 0
//! and deeper levels, at a snapshot while writes go on, at one point in time across a
//! batch, and on a dropped keyspace.
//!
//! The seed of each randomized test is printed; `FLOE_SEED` replays it.

pub mod common;

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{
    Model, Pair, assert_pairs, collect, collect_rev, model_all, model_prefix, model_range,
};
use floe::{Bytes, Db, Error, Keyspace, Options, Readable, Result, Snapshot, WriteBatch};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The number of live keys, whatever the view: the generic use the trait is for.
fn count<R: Readable>(view: &R) -> Result<usize> {
    view.iter().try_fold(0, |n, item| item.map(|_| n + 1))
}

/// The values of some keys, in their order, as plain vectors.
type Values = Vec<Option<Vec<u8>>>;

/// The values of `keys` as `multi_get` and as one `get` each.
fn both_ways<R: Readable>(view: &R, keys: &[Vec<u8>]) -> (Values, Values) {
    let plain = |values: Vec<Option<Bytes>>| -> Values {
        values.into_iter().map(|v| v.map(|v| v.to_vec())).collect()
    };
    let batched = view.multi_get(keys).expect("multi_get");
    let single = keys
        .iter()
        .map(|key| view.get(key))
        .collect::<Result<Vec<_>>>()
        .expect("get");
    (plain(batched), plain(single))
}

/// Checks every call of `view` against `model`, which holds exactly what it should show.
fn check_view<R: Readable>(view: &R, model: &Model, what: &str) {
    let present: Vec<&Vec<u8>> = model.keys().collect();
    for key in &present {
        let got = view.get(key).expect("get");
        assert_eq!(
            got.as_deref(),
            model.get(*key).map(Vec::as_slice),
            "{what}: get"
        );
        assert!(
            view.contains_key(key).expect("contains_key"),
            "{what}: contains_key"
        );
    }
    for absent in [&b""[..], b"absent", b"\xff\xff"] {
        assert!(!model.contains_key(absent));
        assert_eq!(
            view.get(absent).expect("get"),
            None,
            "{what}: get of an absent key"
        );
        assert!(
            !view.contains_key(absent).expect("contains_key"),
            "{what}: contains_key"
        );
    }

    assert_pairs(&collect(view.iter(), what), &model_all(model), what);
    let mut reversed = model_all(model);
    reversed.reverse();
    assert_pairs(&collect_rev(view.iter(), what), &reversed, what);
    let bounds = (Bound::Included(&b"b"[..]), Bound::Excluded(&b"d"[..]));
    assert_pairs(
        &collect(view.range::<&[u8], _>(bounds), what),
        &model_range(model, bounds),
        &format!("{what}: range"),
    );
    assert_pairs(
        &collect(view.range("b".."d"), what),
        &model_range(model, bounds),
        &format!("{what}: range of str"),
    );
    assert_pairs(
        &collect(view.prefix("c"), what),
        &model_prefix(model, b"c"),
        &format!("{what}: prefix"),
    );

    let pair = |(k, v): (Bytes, Bytes)| -> Pair { (k.to_vec(), v.to_vec()) };
    let first = model.iter().next().map(|(k, v)| (k.clone(), v.clone()));
    let last = model
        .iter()
        .next_back()
        .map(|(k, v)| (k.clone(), v.clone()));
    assert_eq!(
        view.first_key_value().expect("first").map(pair),
        first,
        "{what}: first"
    );
    assert_eq!(
        view.last_key_value().expect("last").map(pair),
        last,
        "{what}: last"
    );
    assert_eq!(count(view).expect("count"), model.len(), "{what}: count");

    let mut keys: Vec<Vec<u8>> = present.iter().rev().map(|k| k.to_vec()).collect();
    keys.extend([b"absent".to_vec(), b"".to_vec()]);
    keys.extend(present.first().map(|k| k.to_vec()));
    let want: Values = keys.iter().map(|k| model.get(k).cloned()).collect();
    let (batched, single) = both_ways(view, &keys);
    assert_eq!(batched, want, "{what}: multi_get");
    assert_eq!(single, want, "{what}: get of each key");
    let none: &[&str] = &[];
    assert!(
        view.multi_get(none).expect("multi_get").is_empty(),
        "{what}: multi_get of none"
    );
}

fn model_of(pairs: &[(&str, &str)]) -> Model {
    pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

#[test]
fn every_call_reads_the_same_on_every_view() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let empty = Model::new();
    check_view(&db, &empty, "empty db");
    let ks = db.keyspace("other").unwrap();
    check_view(&ks, &empty, "empty keyspace");
    check_view(&db.snapshot(), &empty, "empty snapshot");

    let default_pairs = [
        ("a", "1"),
        ("b", "2"),
        ("ba", "3"),
        ("c", "4"),
        ("cc", "5"),
        ("d", "6"),
    ];
    for (k, v) in default_pairs {
        db.put(k, v).unwrap();
    }
    let other_pairs = [("b", "x"), ("c", "y"), ("ca", "z")];
    for (k, v) in other_pairs {
        ks.put(k, v).unwrap();
    }
    db.put("gone", "soon").unwrap();
    db.delete("gone").unwrap();
    let defaults = model_of(&default_pairs);
    let others = model_of(&other_pairs);

    let snapshot: Snapshot = db.snapshot();
    let snapshot_of_ks = snapshot.keyspace(&ks);
    let ks_snapshot = ks.snapshot();
    // Later writes, which no snapshot above may show.
    db.put("a", "changed").unwrap();
    db.delete("b").unwrap();
    ks.put("cb", "new").unwrap();
    ks.delete("b").unwrap();

    check_view(&snapshot, &defaults, "snapshot");
    check_view(&snapshot_of_ks, &others, "snapshot.keyspace");
    check_view(&ks_snapshot, &others, "keyspace.snapshot");

    let mut defaults_now = defaults.clone();
    defaults_now.insert(b"a".to_vec(), b"changed".to_vec());
    defaults_now.remove(&b"b"[..]);
    let mut others_now = others.clone();
    others_now.insert(b"cb".to_vec(), b"new".to_vec());
    others_now.remove(&b"b"[..]);
    check_view(&db, &defaults_now, "db");
    check_view(&db.default_keyspace(), &defaults_now, "default keyspace");
    check_view(&ks, &others_now, "keyspace");
    check_view(
        &snapshot.keyspace(&db.default_keyspace()),
        &defaults,
        "snapshot.keyspace(default)",
    );

    // The same again from tables, at the snapshots and now.
    db.flush().unwrap();
    check_view(&snapshot, &defaults, "snapshot after flush");
    check_view(&snapshot_of_ks, &others, "snapshot.keyspace after flush");
    check_view(&db, &defaults_now, "db after flush");
    check_view(&ks, &others_now, "keyspace after flush");
    drop((snapshot, snapshot_of_ks, ks_snapshot));
    db.compact().unwrap();
    check_view(&db, &defaults_now, "db after compact");
    check_view(&ks, &others_now, "keyspace after compact");
}

/// Options that make the tree deep on little data: tiny memtables, tables and levels, and
/// compactions after two flushes.
fn leveled() -> Options {
    Options::default()
        .write_buffer_size(1024)
        .block_size(128)
        .target_file_size(2048)
        .l0_compaction_trigger(2)
        .max_bytes_for_level_base(8 << 10)
        .level_size_multiplier(2)
}

/// How many distinct keys the randomized tests write; probes also ask for some beyond.
const KEY_SPACE: u32 = 600;

fn key(i: u32) -> Vec<u8> {
    format!("key{i:04}").into_bytes()
}

/// A random put or delete of a key of the key space, applied to `view` and `model`.
fn random_write(
    rng: &mut SmallRng,
    put: impl Fn(&[u8], &[u8]),
    delete: impl Fn(&[u8]),
    model: &mut Model,
    op: usize,
) {
    let k = key(rng.random_range(0..KEY_SPACE));
    if rng.random_range(0..5) == 0 {
        delete(&k);
        model.remove(&k);
    } else {
        let mut value = format!("v{op}.").into_bytes();
        value.resize(value.len() + rng.random_range(0..60), b'x');
        put(&k, &value);
        model.insert(k, value);
    }
}

/// Random probes: keys of the key space and beyond it, the empty key and `0xff`, with
/// repeats, in random order.
fn random_probes(rng: &mut SmallRng) -> Vec<Vec<u8>> {
    let len = rng.random_range(0..400);
    let mut keys: Vec<Vec<u8>> = (0..len)
        .map(|_| match rng.random_range(0..20) {
            0 => Vec::new(),
            1 => vec![0xff],
            _ => key(rng.random_range(0..KEY_SPACE + 100)),
        })
        .collect();
    if let Some(first) = keys.first().cloned() {
        keys.push(first);
    }
    keys
}

/// Checks `multi_get` of random probes on `view` against one `get` per key and `model`.
fn check_multi_get<R: Readable>(rng: &mut SmallRng, view: &R, model: &Model, what: &str) {
    for round in 0..20 {
        let keys = random_probes(rng);
        let (batched, single) = both_ways(view, &keys);
        assert_eq!(
            batched, single,
            "{what}, round {round}: multi_get against gets"
        );
        let want: Values = keys.iter().map(|k| model.get(k).cloned()).collect();
        assert_eq!(
            batched, want,
            "{what}, round {round}: multi_get against the model"
        );
    }
}

/// Writes `ops` random writes into `"default"` and `ks`, half each.
fn fill(
    rng: &mut SmallRng,
    db: &Db,
    ks: &Keyspace,
    models: &mut [Model; 2],
    ops: std::ops::Range<usize>,
) {
    for op in ops {
        if rng.random() {
            random_write(
                rng,
                |k, v| db.put(k, v).unwrap(),
                |k| db.delete(k).unwrap(),
                &mut models[0],
                op,
            );
        } else {
            random_write(
                rng,
                |k, v| ks.put(k, v).unwrap(),
                |k| ks.delete(k).unwrap(),
                &mut models[1],
                op,
            );
        }
    }
}

#[test]
fn multi_get_answers_as_gets_over_memtables_and_levels() {
    let seed = floe_testkit::seed("multi_get_answers_as_gets_over_memtables_and_levels");
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), leveled()).unwrap();
    let ks = db.keyspace("second").unwrap();
    let mut models = [Model::new(), Model::new()];

    // Enough data for several levels, then a level-0 table on top, then writes that stay
    // in the memtable.
    fill(&mut rng, &db, &ks, &mut models, 0..6000);
    db.wait_for_compactions().unwrap();
    fill(&mut rng, &db, &ks, &mut models, 6000..6030);
    db.flush().unwrap();
    fill(&mut rng, &db, &ks, &mut models, 6030..6040);
    let stats = db.stats();
    let tables: Vec<usize> = stats.levels.iter().map(|level| level.tables).collect();
    println!("tables per level: {tables:?}");
    assert!(tables[0] > 0, "no table in level 0: {tables:?}");
    assert!(
        tables[1..].iter().filter(|&&n| n > 0).count() >= 2,
        "not two deeper levels with tables: {tables:?}"
    );

    check_multi_get(&mut rng, &db, &models[0], "db");
    check_multi_get(
        &mut rng,
        &db.default_keyspace(),
        &models[0],
        "default keyspace",
    );
    check_multi_get(&mut rng, &ks, &models[1], "keyspace");
    let snapshot = db.snapshot();
    check_multi_get(&mut rng, &snapshot, &models[0], "snapshot");
    check_multi_get(
        &mut rng,
        &snapshot.keyspace(&ks),
        &models[1],
        "snapshot.keyspace",
    );
}

#[test]
fn multi_get_at_a_snapshot_ignores_the_writes_that_go_on() {
    let seed = floe_testkit::seed("multi_get_at_a_snapshot_ignores_the_writes_that_go_on");
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), leveled()).unwrap();
    let ks = db.keyspace("second").unwrap();
    let mut models = [Model::new(), Model::new()];
    fill(&mut rng, &db, &ks, &mut models, 0..3000);

    let snapshot = db.snapshot();
    let snapshot_of_ks = snapshot.keyspace(&ks);
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, ks, done) = (db.clone(), ks.clone(), Arc::clone(&done));
        let mut models = models.clone();
        let mut rng = SmallRng::seed_from_u64(seed ^ 1);
        std::thread::spawn(move || {
            let mut op = 3000;
            while !done.load(Ordering::Relaxed) {
                fill(&mut rng, &db, &ks, &mut models, op..op + 100);
                op += 100;
                if op % 1000 == 0 {
                    db.flush().unwrap();
                }
            }
            op
        })
    };
    for _ in 0..5 {
        check_multi_get(&mut rng, &snapshot, &models[0], "snapshot");
        check_multi_get(&mut rng, &snapshot_of_ks, &models[1], "snapshot.keyspace");
    }
    done.store(true, Ordering::Relaxed);
    let ops = writer.join().unwrap();
    println!("{} writes went on meanwhile", ops - 3000);
    db.compact().unwrap();
    check_multi_get(&mut rng, &snapshot, &models[0], "snapshot after compact");
    check_multi_get(
        &mut rng,
        &snapshot_of_ks,
        &models[1],
        "snapshot.keyspace after compact",
    );
}

/// Sets every key of `"default"` and `ks` to `round`, in one batch.
fn write_round(db: &Db, ks: &Keyspace, keys: u32, round: u64) {
    let mut batch = WriteBatch::new();
    for i in 0..keys {
        batch.put(key(i), round.to_string());
        batch.put_in(ks, key(i), round.to_string());
    }
    db.write(batch).unwrap();
}

#[test]
fn multi_get_sees_one_point_in_time() {
    const KEYS: u32 = 10;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), leveled()).unwrap();
    let ks = db.keyspace("second").unwrap();
    write_round(&db, &ks, KEYS, 0);
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, ks, done) = (db.clone(), ks.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut round = 1;
            while !done.load(Ordering::Relaxed) {
                write_round(&db, &ks, KEYS, round);
                if round % 50 == 0 {
                    db.flush().unwrap();
                }
                round += 1;
            }
        })
    };
    // Keys out of order and repeated, so that the sorting and the copying of repeats are
    // exercised too.
    let keys: Vec<Vec<u8>> = [7, 3, 9, 0, 3, 5, 1, 8, 2, 6, 4, 7].map(key).to_vec();
    let mut last = [0u64; 2];
    for _ in 0..2000 {
        let views = [db.multi_get(&keys).unwrap(), ks.multi_get(&keys).unwrap()];
        for (which, values) in views.into_iter().enumerate() {
            let rounds: Vec<u64> = values
                .iter()
                .map(|value| {
                    let value = value.as_ref().expect("every key is set");
                    std::str::from_utf8(value).unwrap().parse().unwrap()
                })
                .collect();
            assert!(
                rounds.iter().all(|&r| r == rounds[0]),
                "half a batch: {rounds:?}"
            );
            assert!(
                rounds[0] >= last[which],
                "went back in time: {rounds:?} after {}",
                last[which]
            );
            last[which] = rounds[0];
        }
    }
    done.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(last[0] > 0, "the writer never got a batch in");
}

#[test]
fn multi_get_on_a_dropped_keyspace_fails() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let ks = db.keyspace("doomed").unwrap();
    ks.put("k", "v").unwrap();
    let snapshot_of_ks = db.snapshot().keyspace(&ks);
    assert_eq!(ks.multi_get(&["k"]).unwrap(), [Some(Bytes::from("v"))]);
    db.drop_keyspace("doomed").unwrap();

    let dropped = |result: Result<Vec<Option<Bytes>>>| matches!(result, Err(Error::KeyspaceDropped { ref name }) if name == "doomed");
    assert!(dropped(ks.multi_get(&["k"])));
    assert!(dropped(ks.clone().multi_get(&["k", "other"])));
    let none: &[&[u8]] = &[];
    assert!(
        dropped(ks.multi_get(none)),
        "no keys still checks the keyspace"
    );
    // A snapshot of the keyspace answers a multi-get as it answers a get.
    match snapshot_of_ks.get("k") {
        Ok(value) => assert_eq!(snapshot_of_ks.multi_get(&["k"]).unwrap(), [value]),
        Err(Error::KeyspaceDropped { .. }) => assert!(dropped(snapshot_of_ks.multi_get(&["k"]))),
        Err(other) => panic!("unexpected error {other}"),
    }
    assert!(matches!(
        ks.contains_key("k"),
        Err(Error::KeyspaceDropped { .. })
    ));
    assert!(matches!(
        ks.first_key_value(),
        Err(Error::KeyspaceDropped { .. })
    ));
    assert!(matches!(
        ks.last_key_value(),
        Err(Error::KeyspaceDropped { .. })
    ));
    // The database's other keyspaces are untouched.
    db.put("k", "default").unwrap();
    assert_eq!(
        db.multi_get(&["k"]).unwrap(),
        [Some(Bytes::from("default"))]
    );
}
