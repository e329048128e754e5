//! Leveled compaction: a randomized differential run against a `BTreeMap` model with
//! compactions interleaved, deleted keys that must never come back, trivial moves, space
//! reclamation, write stalls, and readers and writers running beside compactions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{dump, leveled, open};
use crate::version::NUM_LEVELS;
use crate::{Db, Options, WriteBatch};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Waits until the background workers have nothing left to do, so a test can inspect a
/// settled tree.
fn settle(db: &Db) {
    db.wait_for_compactions()
        .expect("the background workers settle");
}

/// Checks that every level below 0 is sorted and its tables share no user key.
fn check_levels(db: &Db) {
    let state = db.shared().state.load();
    for (level, tables) in state
        .default_tree()
        .version
        .levels
        .iter()
        .enumerate()
        .skip(1)
    {
        for pair in tables.windows(2) {
            assert!(
                pair[0].file.largest.user_key < pair[1].file.smallest.user_key,
                "level {level} overlaps: {:?} and {:?}",
                pair[0].file,
                pair[1].file
            );
        }
    }
}

fn check_model(db: &Db, model: &Model, context: &str) {
    let got = dump(db);
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(got.len(), want.len(), "{context}: key count");
    assert_eq!(got, want, "{context}: contents");
    // Point reads walk the levels one by one, unlike the merged iteration: a version left
    // below an older one shows here.
    for (key, value) in model {
        let got = db.get(key).unwrap();
        assert_eq!(got.as_deref(), Some(&value[..]), "{context}: get {key:?}");
    }
}

/// Checks a point read of every key of the randomized run (`key0000` to `key0599`),
/// absent ones included: a deleted key must read as absent at every level.
fn check_every_get(db: &Db, model: &Model, context: &str) {
    for key in (0..600u32).map(|i| format!("key{i:04}").into_bytes()) {
        let got = db.get(&key).unwrap().map(|v| v.to_vec());
        assert_eq!(got.as_ref(), model.get(&key), "{context}: get {key:?}");
    }
}

#[test]
fn randomized_run_with_compactions_matches_a_model() {
    let seed = floe_testkit::seed("randomized_run_with_compactions_matches_a_model");
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    // Each reopen switches between dynamic and static level targets, so that each finds
    // levels the other shaped and must drain them without losing or resurrecting a key.
    let mut reopens = 0u32;
    let options = |reopens: u32| leveled().dynamic_level_bytes(reopens.is_multiple_of(2));
    let mut db = open(dir.path(), options(reopens));
    let mut model = Model::new();
    // A snapshot taken early and held across every compaction of the run.
    let mut held: Option<(crate::Snapshot, Model)> = None;
    // Compactions of the handles closed so far (the counters start over at each open).
    let mut compacted = 0;
    for step in 0..4000u32 {
        let key = format!("key{:04}", rng.random_range(0..600u32)).into_bytes();
        match rng.random_range(0..100u32) {
            0..60 => {
                let value = format!("v{step}-{}", "x".repeat(rng.random_range(0..40))).into_bytes();
                db.put(&key, &value).unwrap();
                model.insert(key, value);
            }
            60..80 => {
                db.delete(&key).unwrap();
                model.remove(&key);
            }
            80..90 => {
                let mut batch = WriteBatch::new();
                for _ in 0..rng.random_range(1..8) {
                    let k = format!("key{:04}", rng.random_range(0..600u32)).into_bytes();
                    if rng.random_bool(0.3) {
                        batch.delete(&k);
                        model.remove(&k);
                    } else {
                        let v = format!("b{step}").into_bytes();
                        batch.put(&k, &v);
                        model.insert(k, v);
                    }
                }
                db.write(batch).unwrap();
            }
            90..96 => {
                let got = db.get(&key).unwrap().map(|v| v.to_vec());
                assert_eq!(
                    got.as_ref(),
                    model.get(&key),
                    "seed {seed} step {step}: get"
                );
            }
            96 => db.flush().unwrap(),
            97 => db.compact().unwrap(),
            98 => {
                if held.is_none() && step > 200 {
                    held = Some((db.snapshot(), model.clone()));
                }
            }
            _ => {
                if rng.random_bool(0.5) {
                    // Reopen; the held snapshot belongs to the old handle and goes first.
                    held = None;
                    let stats = db.stats();
                    compacted += stats.compactions + stats.trivial_moves;
                    db.close().unwrap();
                    reopens += 1;
                    db = open(dir.path(), options(reopens));
                }
            }
        }
        if step % 500 == 499 {
            check_model(&db, &model, &format!("seed {seed} step {step}"));
            check_every_get(&db, &model, &format!("seed {seed} step {step}"));
            check_levels(&db);
            if let Some((snapshot, old)) = &held {
                let got: Model = snapshot
                    .iter()
                    .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                    .collect();
                assert_eq!(&got, old, "seed {seed} step {step}: the held snapshot");
            }
        }
    }
    let stats = db.stats();
    compacted += stats.compactions + stats.trivial_moves;
    assert!(
        compacted > 10,
        "seed {seed}: too few compactions ran: {stats:?}"
    );
    settle(&db);
    check_levels(&db);
    check_model(&db, &model, &format!("seed {seed} settled"));
    check_every_get(&db, &model, &format!("seed {seed} settled"));
    db.close().unwrap();
    let db = open(dir.path(), options(reopens + 1));
    check_model(&db, &model, &format!("seed {seed} reopened"));
    settle(&db);
    check_levels(&db);
    check_model(&db, &model, &format!("seed {seed} reopened and settled"));
    check_every_get(&db, &model, &format!("seed {seed} reopened and settled"));
}

#[test]
fn background_compaction_goes_deep_and_snapshots_keep_their_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), leveled());
    for i in 0..600u32 {
        db.put(format!("k{i:04}"), "old").unwrap();
    }
    let snapshot = db.snapshot();
    for round in 0..20u32 {
        for i in 0..600u32 {
            db.put(format!("k{i:04}"), format!("new{round}")).unwrap();
        }
    }
    db.flush().unwrap();
    settle(&db);
    let stats = db.stats();
    assert!(stats.compactions > 0, "{stats:?}");
    // Level 0 compacted below its trigger, and the data went past the base level (8 KiB
    // at most, less than the live data) into deeper levels.
    assert!(stats.levels[0].tables < 2, "{stats:?}");
    assert!(stats.levels[2..].iter().any(|l| l.tables > 0), "{stats:?}");
    check_levels(&db);
    for i in (0..600u32).step_by(7) {
        let key = format!("k{i:04}");
        assert_eq!(snapshot.get(&key).unwrap().as_deref(), Some(&b"old"[..]));
        assert_eq!(db.get(&key).unwrap().as_deref(), Some(&b"new19"[..]));
    }
    assert_eq!(snapshot.iter().count(), 600);
    assert!(snapshot.iter().all(|r| r.unwrap().1 == "old"));
}

#[test]
fn deleted_keys_never_come_back() {
    let seed = floe_testkit::seed("deleted_keys_never_come_back");
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let options = leveled().num_levels(4);
    let mut db = open(dir.path(), options.clone());
    let mut live: Model = Model::new();
    for round in 0..12u32 {
        // Old versions sink to the bottom; their deletes then pass through every level.
        for i in 0..150u32 {
            let key = format!("k{:03}", rng.random_range(0..200u32)).into_bytes();
            if rng.random_bool(0.4) {
                db.delete(&key).unwrap();
                live.remove(&key);
            } else {
                let value = format!("r{round}i{i}").into_bytes();
                db.put(&key, &value).unwrap();
                live.insert(key, value);
            }
        }
        match round % 4 {
            0 => db.compact().unwrap(),
            1 => db.flush().unwrap(),
            2 => {
                db.close().unwrap();
                db = open(dir.path(), options.clone());
            }
            _ => settle(&db),
        }
        for key in (0..200u32).map(|i| format!("k{i:03}").into_bytes()) {
            let got = db.get(&key).unwrap().map(|v| v.to_vec());
            assert_eq!(got.as_ref(), live.get(&key), "seed {seed} round {round}");
        }
        check_model(&db, &live, &format!("seed {seed} round {round}"));
    }
    // After a full compaction no tombstone is left: every entry on disk is a live key.
    db.compact().unwrap();
    let state = db.shared().state.load();
    let entries: u64 = state
        .default_tree()
        .version
        .tables()
        .map(|t| t.file.entries)
        .sum();
    assert_eq!(entries, live.len() as u64, "seed {seed}");
    assert!(
        state.default_tree().version.levels[..3]
            .iter()
            .all(Vec::is_empty)
    );
}

#[test]
fn a_tombstone_above_older_data_is_kept_until_the_bottom() {
    let dir = tempfile::tempdir().unwrap();
    // Static targets: the deletes stop in level 1, above the bottom. (With dynamic ones
    // this small tree's level 0 would merge straight into the bottom.)
    let db = open(dir.path(), leveled().dynamic_level_bytes(false));
    for i in 0..100u32 {
        db.put(format!("k{i:03}"), "at the bottom").unwrap();
    }
    db.compact().unwrap();
    // The deletes go to level 0, then to level 1 by background compactions that must keep
    // them, since the bottom level still holds the keys.
    for i in 0..100u32 {
        db.delete(format!("k{i:03}")).unwrap();
        db.put(format!("other{i:03}"), "x").unwrap();
    }
    db.flush().unwrap();
    settle(&db);
    assert!(db.stats().levels[NUM_LEVELS - 1].tables > 0);
    assert_eq!(db.prefix("k").count(), 0);
    for i in 0..100u32 {
        assert_eq!(db.get(format!("k{i:03}")).unwrap(), None);
    }
    db.compact().unwrap();
    assert_eq!(db.prefix("k").count(), 0);
    assert_eq!(db.iter().count(), 100);
}

/// Writes `keys` keys in ascending order (so every flushed table covers a range of its
/// own), flushes, waits for compaction to settle and returns the stats.
fn load_sequentially(db: &Db, keys: u32) -> crate::Stats {
    for i in 0..keys {
        db.put(format!("k{i:05}"), "sequential").unwrap();
    }
    db.flush().unwrap();
    settle(db);
    db.stats()
}

#[test]
fn disjoint_tables_move_down_without_a_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), leveled().l0_compaction_trigger(4));
    let stats = load_sequentially(&db, 2000);
    assert!(stats.trivial_moves > 0, "{stats:?}");
    check_levels(&db);
    assert_eq!(db.iter().count(), 2000);
    // A move keeps the table's file: no table was deleted by it, so every table on disk
    // is one the version lists.
    let state = db.shared().state.load();
    let listed = state.default_tree().version.tables().count();
    drop(state);
    let on_disk = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sst")
        })
        .count();
    assert_eq!(listed, on_disk);
}

#[test]
fn dynamic_targets_keep_a_small_tree_at_the_bottom_and_grow_levels_upward() {
    let dir = tempfile::tempdir().unwrap();
    let base = 128 << 10;
    let db = open(
        dir.path(),
        leveled()
            .l0_compaction_trigger(4)
            .max_bytes_for_level_base(base),
    );
    // A sequential load smaller than the base size: every flushed table moves straight
    // to the bottom, unrewritten, and no level in between is used.
    let stats = load_sequentially(&db, 2000);
    assert!(stats.trivial_moves > 0, "{stats:?}");
    assert_eq!(stats.compaction_bytes_written, 0, "{stats:?}");
    assert!(stats.levels[NUM_LEVELS - 1].bytes < base, "{stats:?}");
    assert!(
        stats.levels[1..NUM_LEVELS - 1]
            .iter()
            .all(|l| l.tables == 0),
        "{stats:?}"
    );
    // The bottom is the base level: no level has a target.
    assert!(
        stats.levels.iter().all(|l| l.target_bytes == 0),
        "{stats:?}"
    );
    // More keys in random order: the bottom outgrows the base size, so levels above it
    // take level 0's merges, each a multiplier smaller than the one below; the base
    // level stays within the base size and the bottom stays the largest.
    let mut keys: Vec<u32> = (2000..12_000).collect();
    let mut rng = SmallRng::seed_from_u64(floe_testkit::seed(
        "dynamic_targets_keep_a_small_tree_at_the_bottom_and_grow_levels_upward",
    ));
    for i in (1..keys.len()).rev() {
        keys.swap(i, rng.random_range(0..=i));
    }
    for i in keys {
        db.put(format!("k{i:05}"), "random").unwrap();
    }
    db.flush().unwrap();
    settle(&db);
    check_levels(&db);
    let stats = db.stats();
    let shape: Vec<u64> = stats.levels.iter().map(|l| l.bytes).collect();
    // The base level is the highest one with a target. (Not the highest one that holds
    // data: once a compaction has pushed the base level's tables down, it can be empty
    // at the moment the stats are read.)
    let targets: Vec<u64> = stats.levels.iter().map(|l| l.target_bytes).collect();
    let base_level = (1..NUM_LEVELS)
        .find(|&l| targets[l] > 0)
        .unwrap_or_else(|| panic!("no level above the bottom has a target: {targets:?}"));
    // The stats report the targets: none above the base level or at the bottom, the base
    // level's within the base size, each level's below the one beneath it; and no level
    // between level 0 and the base level holds anything.
    assert!(targets[..base_level].iter().all(|&t| t == 0), "{targets:?}");
    assert!(targets[base_level] <= base, "{targets:?}");
    assert!(
        shape[1..base_level].iter().all(|&bytes| bytes == 0),
        "a level above the base level holds data: {shape:?}"
    );
    assert!(
        targets[base_level..NUM_LEVELS - 1]
            .windows(2)
            .all(|pair| pair[0] < pair[1]),
        "{targets:?}"
    );
    assert_eq!(targets[NUM_LEVELS - 1], 0, "{targets:?}");
    assert!(
        base_level < NUM_LEVELS - 1,
        "no level above the bottom: {shape:?}"
    );
    // Settled: the base level is within its target (at most `base`) plus what level 0
    // holds for it.
    assert!(
        shape[base_level] <= base + shape[0],
        "the base level is past its size: {shape:?}"
    );
    assert_eq!(
        shape[1..].iter().max(),
        Some(&shape[NUM_LEVELS - 1]),
        "the bottom is not the largest level: {shape:?}"
    );
    assert_eq!(db.iter().count(), 12_000);
}

#[test]
fn compaction_inputs_stay_on_disk_while_an_iterator_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), leveled());
    for i in 0..500u32 {
        db.put(format!("k{i:04}"), format!("v{i}")).unwrap();
    }
    db.flush().unwrap();
    let mut iter = db.iter();
    let first = iter.next().unwrap().unwrap();
    assert_eq!(first.0, "k0000");
    for i in 0..500u32 {
        db.put(format!("k{i:04}"), "newer").unwrap();
    }
    db.compact().unwrap();
    // The iterator still reads its own view from files the version no longer lists.
    let rest: Vec<_> = iter.map(Result::unwrap).collect();
    assert_eq!(rest.len(), 499);
    for (key, value) in &rest {
        let i: u32 = std::str::from_utf8(&key[1..]).unwrap().parse().unwrap();
        assert_eq!(value, format!("v{i}").as_bytes());
    }
    // Now that it is gone, only listed tables remain.
    let state = db.shared().state.load();
    let listed = state.default_tree().version.tables().count();
    drop(state);
    let on_disk = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sst")
        })
        .count();
    assert_eq!(listed, on_disk);
}

/// Overwrites the same keys ten times: after `compact()` the disk holds no more than
/// 1.2 times what the live data needs on its own.
///
/// 100,000 keys of 10 bytes with 24-byte values (3.4 MB of live keys and values, 34 MB
/// written), in batches of 1,000 so that the debug build finishes in seconds.
#[test]
fn overwriting_ten_times_then_compacting_leaves_only_the_live_data() {
    const KEYS: u32 = 100_000;
    // Stalls are not under test here, and a debug build compacts slowly: triggers high.
    let options = Options::default()
        .write_buffer_size(4 << 20)
        .target_file_size(1 << 20)
        .max_bytes_for_level_base(4 << 20)
        .l0_slowdown_trigger(40)
        .l0_stop_trigger(60);
    let value = |round: u32, i: u32| format!("value-{round:02}-{i:016}");
    let load = |dir: &std::path::Path, rounds: std::ops::Range<u32>| {
        let db = open(dir, options.clone());
        for round in rounds {
            for start in (0..KEYS).step_by(1000) {
                let mut batch = WriteBatch::new();
                for i in start..start + 1000 {
                    batch.put(format!("key{i:07}"), value(round, i));
                }
                db.write(batch).unwrap();
            }
        }
        db.compact().unwrap();
        db
    };
    let disk = |dir: &std::path::Path| -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    };

    let overwritten = tempfile::tempdir().unwrap();
    let db = load(overwritten.path(), 0..10);
    let stats = db.stats();
    assert_eq!(db.get("key0012345").unwrap().unwrap(), value(9, 12345));
    db.close().unwrap();
    // The same live data written once.
    let once = tempfile::tempdir().unwrap();
    load(once.path(), 9..10).close().unwrap();

    let (used, live) = (disk(overwritten.path()), disk(once.path()));
    let user_live = u64::from(KEYS) * (10 + 24);
    println!(
        "overwritten: {used} B on disk, written once: {live} B, keys and values: {user_live} B, {stats:?}"
    );
    assert!(used as f64 <= 1.2 * live as f64, "{used} > 1.2 x {live}");
    assert!(
        used as f64 <= 1.2 * user_live as f64,
        "{used} > 1.2 x {user_live}"
    );
    assert!(
        (stats.space_amplification() - 1.0).abs() < 1e-9,
        "{stats:?}"
    );
}

#[test]
fn writers_stall_while_level_0_is_full_and_resume_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let options = leveled()
        .l0_compaction_trigger(2)
        .l0_slowdown_trigger(3)
        .l0_stop_trigger(4);
    let db = open(dir.path(), options);
    // Holding the compaction mutex keeps the background worker from running.
    let paused = crate::sync::lock(&db.shared().compaction);
    // Three writers, so that stalled leaders and the writers queued behind them all wait.
    let finished = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writers: Vec<_> = (0..3u32)
        .map(|w| {
            let db = db.clone();
            let finished = Arc::clone(&finished);
            std::thread::spawn(move || {
                for i in 0..1000u32 {
                    let key = format!("w{w}-{:05}", (i * 7919) % 1000);
                    db.put(key, format!("v{i}")).unwrap();
                }
                finished.fetch_add(1, Ordering::Release);
            })
        })
        .collect();
    // The writers must reach the stop trigger and wait there: they cannot finish while
    // compaction is paused, since 3000 writes fill far more than four memtables.
    while db.stats().stops == 0 {
        assert!(
            finished.load(Ordering::Acquire) < 3,
            "the writers were never stopped"
        );
        std::thread::yield_now();
    }
    assert!(db.stats().levels[0].tables >= 4);
    assert!(finished.load(Ordering::Acquire) < 3);
    drop(paused);
    for writer in writers {
        writer.join().unwrap();
    }
    let stats = db.stats();
    assert!(stats.slowdowns > 0 && stats.stops > 0, "{stats:?}");
    assert!(!stats.stall_time.is_zero());
    assert_eq!(db.iter().count(), 3000);
}

#[test]
fn a_memtable_switch_waiting_for_a_flush_counts_as_a_stall() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), leveled().max_immutable_memtables(1));
    // Holding the manifest mutex keeps the flush worker from installing its table, so the
    // one frozen memtable allowed stays, and the next switch must wait.
    let paused = crate::sync::lock(&db.shared().manifest);
    let finished = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, finished) = (db.clone(), Arc::clone(&finished));
        std::thread::spawn(move || {
            for i in 0..200u32 {
                db.put(format!("k{i:04}"), "v".repeat(64)).unwrap();
            }
            finished.store(true, Ordering::Release);
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db.stats().memtable_stops == 0 {
        assert!(
            !finished.load(Ordering::Acquire),
            "200 writes of 64 bytes fill far more than two 1 KiB memtables"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never waited for the flush"
        );
        std::thread::yield_now();
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(!finished.load(Ordering::Acquire));
    drop(paused);
    writer.join().unwrap();
    let stats = db.stats();
    assert!(stats.memtable_stops > 0 && stats.stops == 0, "{stats:?}");
    // The wait lasted at least the 20 ms the flush was held up.
    assert!(
        stats.stall_time >= std::time::Duration::from_millis(20),
        "{stats:?}"
    );
    assert_eq!(db.iter().count(), 200);
}

#[test]
fn readers_and_writers_run_beside_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), leveled());
    let stop = Arc::new(AtomicBool::new(false));
    // Writer w owns keys w*1000.. and bumps each key's counter; a reader checks that the
    // counters it sees never go backwards and that each scan is sorted and complete.
    let writers: Vec<_> = (0..2u32)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for round in 1..=8u32 {
                    for i in 0..150u32 {
                        db.put(format!("w{w}-{i:04}"), format!("{round:03}"))
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2u32)
        .map(|_| {
            let db = db.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut seen: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
                while !stop.load(Ordering::Acquire) {
                    let snapshot = db.snapshot();
                    let scan: Vec<_> = snapshot.iter().map(Result::unwrap).collect();
                    assert!(scan.windows(2).all(|p| p[0].0 < p[1].0));
                    for (k, v) in scan {
                        if let Some(old) = seen.get(k.as_ref()) {
                            assert!(old.as_slice() <= v.as_ref(), "{k:?} went back");
                        }
                        // A point read of the same snapshot agrees with its scan.
                        assert_eq!(snapshot.get(&k).unwrap().as_ref(), Some(&v));
                        seen.insert(k.to_vec(), v.to_vec());
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    db.compact().unwrap();
    stop.store(true, Ordering::Release);
    for reader in readers {
        reader.join().unwrap();
    }
    assert!(db.stats().compactions > 1);
    let all = dump(&db);
    assert_eq!(all.len(), 300);
    assert!(all.iter().all(|(_, v)| v == b"008"));
}

#[test]
fn default_triggers_compact_a_database_with_a_tiny_write_buffer() {
    // The crash and contract suites set only the write buffer, sync and block size: with
    // a 1 KiB buffer the default level-0 trigger must still make compactions happen.
    let dir = tempfile::tempdir().unwrap();
    let db = open(
        dir.path(),
        Options::default().write_buffer_size(1024).block_size(128),
    );
    for i in 0..600u32 {
        db.put(format!("k{:04}", (i * 37) % 600), format!("v{i}"))
            .unwrap();
    }
    db.flush().unwrap();
    settle(&db);
    let stats = db.stats();
    assert!(stats.compactions > 0, "{stats:?}");
    assert!(stats.levels[0].tables < 4, "{stats:?}");
    assert_eq!(db.iter().count(), 600);
}

#[test]
fn close_during_a_manual_compaction_abandons_it_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .write_buffer_size(256 << 10)
        .l0_compaction_trigger(100);
    let db = open(dir.path(), options.clone());
    for start in (0..40_000u32).step_by(1000) {
        let mut batch = WriteBatch::new();
        for i in start..start + 1000 {
            batch.put(format!("k{i:06}"), format!("v{i}"));
        }
        db.write(batch).unwrap();
    }
    db.flush().unwrap();
    let compacting = {
        let db = db.clone();
        std::thread::spawn(move || db.compact())
    };
    // Give the merge a moment to start (it takes far longer in a debug build), then close:
    // whether close lands before, during or after it, the database must stay whole.
    std::thread::sleep(std::time::Duration::from_millis(20));
    db.close().unwrap();
    match compacting.join().unwrap() {
        Ok(()) | Err(crate::Error::Closed) => {}
        Err(other) => panic!("compact failed with {other}"),
    }
    // An abandoned merge leaves no temporary table behind (before any reopen, which
    // would remove one itself).
    let temps = super::temp_files(dir.path());
    assert!(temps.is_empty(), "{temps:?}");
    let db = open(dir.path(), options);
    assert_eq!(db.iter().count(), 40_000);
    assert_eq!(db.get("k012345").unwrap().as_deref(), Some(&b"v12345"[..]));
}

#[test]
fn wait_for_compactions_returns_a_settled_tree_and_fails_once_closed() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), leveled());
    let value = [7u8; 64];
    for i in 0..3000u32 {
        db.put(i.wrapping_mul(2_654_435_761).to_be_bytes(), value)
            .unwrap();
    }
    db.wait_for_compactions().unwrap();
    let shared = db.shared();
    let state = shared.state.load();
    assert!(
        state.default_tree().frozen.is_empty(),
        "a frozen memtable is left"
    );
    let scores = crate::compaction::pick::scores(&state.default_tree().version, &shared.options);
    assert!(scores.iter().all(|score| *score < 1.0), "{scores:?}");
    // It waited for real work: the writes went through several levels.
    let stats = db.stats();
    assert!(stats.compactions > 0, "{stats:?}");
    assert!(
        stats.levels.iter().filter(|l| l.tables > 0).count() >= 2,
        "{stats:?}"
    );
    // Per-level accounting adds up to the totals.
    let written: u64 = stats.levels.iter().map(|l| l.bytes_written).sum();
    assert_eq!(
        written,
        stats.flush_bytes_written + stats.compaction_bytes_written
    );
    let read: u64 = stats
        .levels
        .iter()
        .map(|l| l.bytes_moved_in + l.bytes_rewritten)
        .sum();
    assert_eq!(read, stats.compaction_bytes_read);
    assert_eq!(stats.levels[0].bytes_written, stats.flush_bytes_written);

    let other = db.clone();
    db.close().unwrap();
    assert!(matches!(
        other.wait_for_compactions(),
        Err(crate::Error::Closed)
    ));
}

#[test]
fn the_flush_of_the_log_at_open_counts_as_level_0_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), Options::default());
    for i in 0..100u32 {
        db.put(i.to_be_bytes(), [1u8; 32]).unwrap();
    }
    // Closing leaves the writes in the log; the next open flushes them into a table.
    db.close().unwrap();
    let db = open(dir.path(), Options::default());
    let stats = db.stats();
    assert_eq!(stats.flushes, 1, "{stats:?}");
    assert!(stats.flush_bytes_written > 0, "{stats:?}");
    assert_eq!(stats.levels[0].bytes_written, stats.flush_bytes_written);
    assert_eq!(
        stats.table_bytes(),
        stats.flush_bytes_written,
        "the one table on disk is the one the open wrote"
    );
}

#[test]
fn subcompactions_split_a_large_compaction_and_keep_every_answer() {
    // The same writes, range deletes and snapshots, compacted on one thread and split
    // into up to four subcompactions: the same data, in non-overlapping tables.
    let mut results = Vec::new();
    for threads in [1, 4] {
        let dir = tempfile::tempdir().unwrap();
        let options = leveled()
            .max_subcompactions(threads)
            .l0_compaction_trigger(8)
            .l0_slowdown_trigger(40)
            .l0_stop_trigger(60);
        let db = open(dir.path(), options);
        let mut rng = SmallRng::seed_from_u64(17);
        let mut snapshot = None;
        for i in 0..6000u32 {
            let key = format!("k{:05}", rng.random_range(0..3000u32));
            if i % 97 == 0 {
                // Wide enough that some cross the split points.
                let from = rng.random_range(0..3000u32);
                let (start, end) = (format!("k{from:05}"), format!("k{:05}", from + 40));
                db.delete_range(start..end).unwrap();
            } else if i % 13 == 0 {
                db.delete(&key).unwrap();
            } else {
                db.put(&key, format!("value {i} {}", "x".repeat(20)))
                    .unwrap();
            }
            if i == 3000 {
                snapshot = Some(db.snapshot());
            }
        }
        db.flush().unwrap();
        let before = db.stats().levels[0].tables;
        db.compact().unwrap();
        let state = db.shared().state.load();
        let version = &state.default_tree().version;
        for tables in &version.levels[1..] {
            for pair in tables.windows(2) {
                assert!(
                    pair[0].file.largest.user_key < pair[1].file.smallest.user_key,
                    "{threads} threads: tables overlap"
                );
            }
        }
        let bottom: usize = version.levels.iter().map(Vec::len).sum();
        let old = snapshot.take().unwrap();
        let old_view: Vec<_> = old.iter().map(|kv| kv.unwrap()).collect();
        // Point lookups find the level's one table by key: every key the scans see must
        // be found, and no key the scans miss.
        for i in 0..3000u32 {
            let key = format!("k{i:05}");
            let scanned = db
                .range(key.clone()..=key.clone())
                .next()
                .map(|kv| kv.unwrap().1);
            assert_eq!(db.get(&key).unwrap(), scanned, "{threads} threads: {key}");
        }
        let subcompactions = db.stats().subcompactions;
        if threads == 1 {
            assert_eq!(subcompactions, 0);
        } else {
            assert!(
                subcompactions >= 4,
                "the full compaction was split: {subcompactions}"
            );
        }
        results.push((dump(&db), old_view, before, bottom));
    }
    let (one, four) = (&results[0], &results[1]);
    assert_eq!(one.0, four.0, "the latest data");
    assert_eq!(one.1, four.1, "the snapshot's data");
    assert!(one.2 > 0, "level 0 held tables to compact");
    assert!(
        one.3 > 1 && four.3 > 1,
        "the compaction wrote several tables"
    );
}

#[test]
fn split_points_divide_the_input_bytes_and_fall_between_keys() {
    let t = super::Tables::new();
    // Eight base-level tables of about equal size, and one level-0 table over them all.
    let mut inputs: Vec<(u32, Arc<crate::version::TableHandle>)> = (0..8)
        .map(|i| (1, t.table(i * 100, i * 100 + 99, 100)))
        .collect();
    inputs.insert(0, (0, t.table(0, 799, 2)));
    let size: u64 = inputs.iter().map(|(_, t)| t.file.size).sum();
    let job = crate::compaction::pick::Job {
        inputs,
        output_level: 1,
        bottommost: true,
        trivial: false,
        grandparents: Vec::new(),
    };
    let split = |max: usize, target: u64| -> Vec<String> {
        crate::compaction::compact::split_points(&job, max, target)
            .iter()
            .map(|k| String::from_utf8(k.to_vec()).unwrap())
            .collect()
    };
    assert!(split(1, 1).is_empty(), "one thread: no split");
    assert!(split(4, size).is_empty(), "the inputs fill one output");
    assert_eq!(split(2, 1), ["k400\0"]);
    assert_eq!(split(4, 1), ["k200\0", "k400\0", "k600\0"]);
    // No more ranges than whole outputs.
    assert_eq!(split(8, size / 3).len(), 2);
}
