//! Tables read through the block cache: failing and short reads are typed errors, a tiny
//! cache still reads everything right, and the stats report the cache and the pinned
//! bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::open;
use crate::testing::{FaultOp, FaultyFs};
use crate::{Db, Error, Options};

fn key(i: u32) -> String {
    format!("key{i:06}")
}

fn value(i: u32, round: u32) -> Vec<u8> {
    format!("value {i} of round {round} ")
        .repeat(1 + (i % 7) as usize)
        .into_bytes()
}

/// Options with small blocks and tables, so that a few thousand keys make many of both.
fn small() -> Options {
    Options::default()
        .write_buffer_size(64 << 10)
        .block_size(512)
        .target_file_size(64 << 10)
}

/// Writes keys `0..n` and flushes them into tables.
fn fill(db: &Db, n: u32) {
    for i in 0..n {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.flush().unwrap();
}

fn table_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut tables: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sst"))
        .collect();
    tables.sort();
    tables
}

/// A table read that fails with an I/O error is `Err(Io)` from `get` and from an
/// iterator, naming the table; the database stays usable, and once the disk heals the
/// same reads succeed.
#[test]
fn a_failing_table_read_is_an_io_error_from_get_and_iterators() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let options = small()
        .block_cache_size(0)
        .file_system(Arc::new(fs.clone()));
    let db = open(dir.path(), options.clone());
    fill(&db, 2000);
    db.close().unwrap();
    let db = open(dir.path(), options);
    assert_eq!(db.get(key(5)).unwrap().as_deref(), Some(&value(5, 0)[..]));

    fs.fail_always_on(FaultOp::Read, Some(".sst"));
    match db.get(key(1234)) {
        Err(Error::Io(err)) => assert!(err.to_string().contains(".sst"), "{err}"),
        other => panic!("get with failing table reads gave {other:?}"),
    }
    let mut iter = db.iter();
    match iter.next() {
        Some(Err(Error::Io(err))) => assert!(err.to_string().contains(".sst"), "{err}"),
        other => panic!("an iterator with failing table reads gave {other:?}"),
    }
    assert!(fs.injected() >= 2);
    // A failed read poisons nothing: writes go on.
    db.put("after", "the failure").unwrap();

    fs.heal();
    assert_eq!(
        db.get(key(1234)).unwrap().as_deref(),
        Some(&value(1234, 0)[..])
    );
    assert_eq!(db.iter().count(), 2001);
}

/// A table cut short under an open database (here with `set_len`, as a failing disk or
/// another process might) gives `Err(Corruption)` on the reads past its new end, never
/// a crash.
#[test]
fn a_table_truncated_under_an_open_database_reads_as_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), small().block_cache_size(0));
    fill(&db, 2000);
    db.close().unwrap();
    let db = open(dir.path(), small().block_cache_size(0));
    let tables = table_files(dir.path());
    assert!(!tables.is_empty());
    for table in &tables {
        std::fs::OpenOptions::new()
            .write(true)
            .open(table)
            .unwrap()
            .set_len(100)
            .unwrap();
    }
    let mut corrupt = 0;
    for i in (0..2000).step_by(37) {
        match db.get(key(i)) {
            Err(Error::Corruption { message }) => {
                assert!(message.contains(".sst"), "{message}");
                corrupt += 1;
            }
            other => panic!("get of a truncated table gave {other:?}"),
        }
    }
    assert!(corrupt > 0);
    let first = db.iter().next();
    assert!(
        matches!(first, Some(Err(Error::Corruption { .. }))),
        "{first:?}"
    );
    drop(db);
    // Reopening finds the damage at open.
    let reopened = Db::open_with(dir.path(), small());
    assert!(
        matches!(reopened, Err(Error::Corruption { .. })),
        "{reopened:?}"
    );
}

/// With a cache far smaller than the data, blocks are evicted and read again all the
/// time; every read still matches a model of the writes, through point lookups and
/// scans, across overwrites, deletes, flushes and compactions.
#[test]
fn a_tiny_cache_evicts_and_still_reads_everything_right() {
    let dir = tempfile::tempdir().unwrap();
    let options = small().block_cache_size(4096);
    let db = open(dir.path(), options);
    let mut model = BTreeMap::new();
    let mut rng = SmallRng::seed_from_u64(21);
    for round in 0..4 {
        for _ in 0..1500 {
            let i = rng.random_range(0..3000);
            if rng.random_bool(0.1) {
                db.delete(key(i)).unwrap();
                model.remove(&key(i));
            } else {
                db.put(key(i), value(i, round)).unwrap();
                model.insert(key(i), value(i, round));
            }
        }
        db.flush().unwrap();
        if round == 2 {
            db.compact().unwrap();
        }
        for _ in 0..1000 {
            let i = rng.random_range(0..3000);
            assert_eq!(
                db.get(key(i)).unwrap().as_deref(),
                model.get(&key(i)).map(Vec::as_slice),
                "{}",
                key(i)
            );
        }
        let all: Vec<(String, Vec<u8>)> = db
            .iter()
            .map(|entry| {
                let (k, v) = entry.unwrap();
                (String::from_utf8(k.to_vec()).unwrap(), v.to_vec())
            })
            .collect();
        assert!(all.iter().map(|(k, v)| (k, v)).eq(model.iter()));
        let back: Vec<_> = db
            .iter()
            .rev()
            .take(50)
            .map(|entry| entry.unwrap().0)
            .collect();
        let want: Vec<_> = model.keys().rev().take(50).collect();
        assert!(
            back.iter()
                .map(|k| &k[..])
                .eq(want.iter().map(|k| k.as_bytes()))
        );
        let stats = db.stats();
        assert_eq!(stats.block_cache_capacity, 4096);
        assert!(stats.block_cache_bytes <= 4096, "{stats:?}");
    }
}

/// The stats report the cache's capacity and bytes, and the bytes tables pin.
#[test]
fn stats_report_the_cache_and_the_pinned_table_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), small().block_cache_size(1 << 20));
    let empty = db.stats();
    assert_eq!(empty.block_cache_capacity, 1 << 20);
    assert_eq!((empty.block_cache_bytes, empty.pinned_table_bytes), (0, 0));
    fill(&db, 2000);
    for i in 0..2000 {
        db.get(key(i)).unwrap().unwrap();
    }
    let stats = db.stats();
    assert!(stats.block_cache_bytes > 0, "{stats:?}");
    assert!(stats.block_cache_bytes <= 1 << 20);
    assert!(stats.pinned_table_bytes > 0, "{stats:?}");
    assert_eq!(
        stats.memory_bytes(),
        stats.memtable_bytes + stats.block_cache_bytes + stats.pinned_table_bytes
    );
    // A live transaction keeps the memtables flushed after it began.
    let txn = db.transaction();
    fill(&db, 2000);
    db.flush().unwrap();
    let held = db.stats();
    assert!(held.transaction_history_bytes > 0, "{held:?}");
    assert!(held.memory_bytes() >= held.transaction_history_bytes + held.pinned_table_bytes);
    drop(txn);
    // Dropping the tables (by compacting them into new ones) gives their blocks back.
    db.compact().unwrap();
    assert!(db.stats().block_cache_bytes <= stats.block_cache_bytes);
}
