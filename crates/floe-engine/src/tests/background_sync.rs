//! The background log sync of an unsynced write path: it bounds by bytes and by time how
//! much of the log waits unsynced, a failure of it poisons the database, it stays idle
//! when it has nothing to do, and it never holds up close or drop.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{dump, open};
use crate::filename::log_path;
use crate::testing::{FaultOp, FaultyFs};
use crate::{Db, Error, Options};

/// The byte window of the tests that use one.
const WINDOW: u64 = 64 << 10;

/// An upper bound on the log bytes of one `put` of a 1 KiB value under a short key: the
/// value and key, the batch header and lengths, the record header and block padding.
const LOGGED_PER_PUT: u64 = 1100;

fn on(fs: &FaultyFs, base: Options) -> Options {
    base.file_system(Arc::new(fs.clone()))
}

/// Options with the byte window `bytes` and the interval `interval` (either 0 for off).
fn bounds(bytes: u64, interval: Duration) -> Options {
    Options::default()
        .wal_bytes_per_sync(bytes)
        .wal_sync_interval(interval)
}

/// Polls `done` until it holds. The limit only keeps a broken build from hanging the
/// suite; nothing here measures speed.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "gave up waiting for {what}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

fn background_syncs(db: &Db) -> u64 {
    db.stats().log_background_syncs
}

fn is_poisoned(db: &Db) -> bool {
    db.shared().is_poisoned()
}

/// Puts `count` keys `{prefix}{i:05}` with 1 KiB values; returns them.
fn put_kib(db: &Db, prefix: &str, count: u32) -> Vec<String> {
    let value = [b'v'; 1024];
    (0..count)
        .map(|i| {
            let key = format!("{prefix}{i:05}");
            db.put(&key, value).unwrap();
            key
        })
        .collect()
}

/// Asserts `err` is `Poisoned` by a failure whose message contains every one of `parts`.
fn assert_poisoned_naming(err: &Error, parts: &[&str]) {
    match err {
        Error::Poisoned { first } => {
            let message = first.to_string();
            for part in parts {
                assert!(message.contains(part), "{part:?} not in {message:?}");
            }
        }
        other => panic!("expected Poisoned, got {other}"),
    }
}

/// Asserts a reopen of `dir` on the real file system has every key of `keys`.
fn assert_recovered(dir: &std::path::Path, keys: &[String]) {
    let db = open(dir, Options::default());
    let all = dump(&db);
    for key in keys {
        assert!(
            all.iter().any(|(k, _)| k == key.as_bytes()),
            "lost acknowledged {key}"
        );
    }
    db.close().unwrap();
}

/// The byte bound: once every log sync fails, writes fail with `Poisoned` within a few
/// windows of bytes, though nothing but the background sync syncs; a reopen recovers
/// every write acknowledged before the last successful `Db::sync` (and, since the data
/// is still in the page cache, every acknowledged write).
#[test]
fn a_failed_background_sync_poisons_within_the_byte_window() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    // A 64 MiB memtable: no flush or switch comes anywhere near the window.
    let db = open(dir.path(), on(&fs, bounds(WINDOW, Duration::ZERO)));
    // Less than a window, so no background round is pending when the fault is armed.
    let synced = put_kib(&db, "synced", 16);
    db.sync().unwrap();
    fs.fail_always_on(FaultOp::Sync, Some(".log"));

    let value = [b'v'; 1024];
    let mut acked = Vec::new();
    let err = loop {
        let key = format!("after{:05}", acked.len());
        match db.put(&key, value) {
            Ok(()) => acked.push(key),
            Err(err) => break err,
        }
        assert!(
            acked.len() as u64 * 1024 <= 4 * WINDOW,
            "{} writes acknowledged after every sync started failing",
            acked.len()
        );
        // Paced, so that the syncer gets a core on a busy machine: the bound above is
        // about bytes, not about how fast the thread is scheduled.
        thread::sleep(Duration::from_millis(2));
    };
    assert_poisoned_naming(&err, &[".log", "in the background", "injected"]);
    // Nothing synced before the window was full: the byte bound is what noticed.
    assert!(
        acked.len() as u64 * LOGGED_PER_PUT >= WINDOW,
        "poisoned after only {} writes",
        acked.len()
    );
    assert_eq!(background_syncs(&db), 0, "a background sync succeeded");
    assert!(matches!(db.sync(), Err(Error::Poisoned { .. })));
    assert!(matches!(db.flush(), Err(Error::Poisoned { .. })));
    fs.heal();
    drop(db);
    assert_recovered(dir.path(), &synced);
    assert_recovered(dir.path(), &acked);
}

/// The time bound: with the byte bound off, a lone write is synced in the background
/// within the interval, and a failure of that sync poisons the database without any
/// write after it.
#[test]
fn the_interval_syncs_a_lone_write_and_a_failure_poisons_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let db = open(dir.path(), on(&fs, bounds(0, Duration::from_millis(50))));
    let syncs = fs.count(FaultOp::Sync);
    db.put("lone", "write").unwrap();
    wait_until("the background sync", || background_syncs(&db) >= 1);
    assert!(fs.count(FaultOp::Sync) > syncs);
    // Nothing is unsynced any more: the rounds that follow sync nothing.
    let after = background_syncs(&db);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(background_syncs(&db), after);

    fs.fail_always_on(FaultOp::Sync, Some(".log"));
    db.put("second", "write").unwrap();
    let active = log_path(dir.path(), db.shared().state.load().log_number);
    wait_until("the poisoning", || is_poisoned(&db));
    let err = db.put("third", "write").unwrap_err();
    let name = active.file_name().unwrap().to_string_lossy().into_owned();
    assert_poisoned_naming(&err, &[&name, "in the background"]);
    fs.heal();
    drop(db);
    assert_recovered(dir.path(), &["lone".to_string(), "second".to_string()]);
}

/// A file without a [`floe_core::fs::FileSyncer`] is synced under the log mutex instead,
/// with the same poisoning.
#[test]
fn a_file_without_a_syncer_is_synced_under_the_log_mutex() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    fs.hide_syncers();
    let db = open(dir.path(), on(&fs, bounds(0, Duration::from_millis(20))));
    db.put("a", "1").unwrap();
    wait_until("the background sync", || background_syncs(&db) >= 1);
    fs.fail_always_on(FaultOp::Sync, Some(".log"));
    db.put("b", "2").unwrap();
    wait_until("the poisoning", || is_poisoned(&db));
    let err = db.put("c", "3").unwrap_err();
    assert_poisoned_naming(&err, &["syncing log", ".log", "injected"]);
    fs.heal();
    drop(db);
    assert_recovered(dir.path(), &["a".to_string(), "b".to_string()]);
}

/// The segment of a frozen memtable that is not flushed yet is synced too: here the
/// first round comes only after the switch, and its sync of the frozen segment fails.
#[test]
fn a_frozen_segment_is_synced_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    // A 64 KiB memtable switches before the 96 KiB window is full.
    let window = 96 << 10;
    let db = open(
        dir.path(),
        on(
            &fs,
            bounds(window, Duration::ZERO)
                .write_buffer_size(64 << 10)
                .max_immutable_memtables(8),
        ),
    );
    let first = db.shared().state.load().log_number;
    let first_name = log_path(dir.path(), first)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    fs.fail_always_on(FaultOp::Sync, Some(&first_name));
    // The flush of the frozen memtable stops at the manifest lock, so its segment stays.
    let flush_held = crate::sync::lock(&db.shared().manifest);
    let value = [b'v'; 1024];
    let mut acked = Vec::new();
    let mut switched_after = None;
    let err = loop {
        let key = format!("key{:05}", acked.len());
        match db.put(&key, value) {
            Ok(()) => acked.push(key),
            Err(err) => break err,
        }
        if switched_after.is_none() && db.shared().state.load().log_number != first {
            switched_after = Some(acked.len());
        }
        // Far below the eight switches that would block on the held flush.
        assert!(acked.len() < 400, "the frozen segment's sync never failed");
        thread::sleep(Duration::from_millis(1));
    };
    drop(flush_held);
    let switched_after = switched_after.expect("the memtable switched");
    // Rounds start only at the window, which the first segment alone never fills.
    assert!((switched_after as u64) * 1024 < window);
    assert!(acked.len() as u64 * LOGGED_PER_PUT >= window);
    assert_poisoned_naming(&err, &[&first_name, "in the background"]);
    fs.heal();
    drop(db);
    assert_recovered(dir.path(), &acked);
}

/// With both bounds off there is no background sync at all; the same writes under the
/// default bounds get one.
#[test]
fn with_both_bounds_off_nothing_syncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let db = open(dir.path(), on(&fs, bounds(0, Duration::ZERO)));
    let syncs = fs.count(FaultOp::Sync);
    // Three times the default window.
    put_kib(&db, "k", 3 << 10);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(background_syncs(&db), 0);
    assert_eq!(fs.count(FaultOp::Sync), syncs);
    drop(db);

    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), Options::default());
    put_kib(&db, "k", 3 << 10);
    wait_until("a background sync", || background_syncs(&db) >= 1);
}

/// With synced writes every group syncs itself; the background sync has nothing to do.
#[test]
fn synced_writes_leave_the_background_sync_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(
        dir.path(),
        bounds(4 << 10, Duration::from_millis(10)).sync(true),
    );
    put_kib(&db, "k", 100);
    thread::sleep(Duration::from_millis(100));
    let stats = db.stats();
    assert_eq!((stats.log_syncs, stats.log_background_syncs), (100, 0));
}

/// `Db::sync` starts the byte window afresh: after it, a window's worth more is needed
/// before the background sync runs.
#[test]
fn db_sync_starts_the_byte_window_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), bounds(WINDOW, Duration::ZERO));
    // About two thirds of the window each.
    let count = (WINDOW * 2 / 3 / LOGGED_PER_PUT) as u32;
    put_kib(&db, "a", count);
    db.sync().unwrap();
    put_kib(&db, "b", count);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(background_syncs(&db), 0);
    put_kib(&db, "c", count);
    wait_until("a background sync", || background_syncs(&db) >= 1);
}

/// Close and drop stop the syncer, whatever it is doing: writing threads keep it busy,
/// and a long interval keeps it asleep.
#[test]
fn close_and_drop_with_the_syncer_running_do_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let options = bounds(4 << 10, Duration::from_millis(5));
    let db = open(dir.path(), options.clone());
    let value = [b'x'; 512];
    thread::scope(|scope| {
        for writer in 0..2 {
            let db = db.clone();
            scope.spawn(move || {
                for i in 0..300 {
                    db.put(format!("w{writer}-{i:03}"), value).unwrap();
                }
            });
        }
        for _ in 0..5 {
            db.sync().unwrap();
            thread::sleep(Duration::from_millis(2));
        }
    });
    wait_until("a background sync", || background_syncs(&db) >= 1);
    db.close().unwrap();

    let db = open(dir.path(), options.clone());
    assert_eq!(dump(&db).len(), 600);
    // Dropped while writers keep the syncer busy.
    thread::scope(|scope| {
        let writer = db.clone();
        scope.spawn(move || {
            for i in 0..300 {
                writer.put(format!("late{i:03}"), value).unwrap();
            }
        });
    });
    drop(db);
    let db = open(dir.path(), bounds(0, Duration::from_secs(3600)));
    assert_eq!(dump(&db).len(), 900);
    // Asleep for an hour: close does not wait for the interval.
    db.put("one more", "write").unwrap();
    db.close().unwrap();
    let db = open(dir.path(), bounds(0, Duration::from_secs(3600)));
    db.put("and", "drop").unwrap();
    drop(db);
    assert_eq!(dump(&open(dir.path(), Options::default())).len(), 902);
}
