//! An I/O error on a write path poisons the database: later writes fail with
//! `Poisoned` naming the first failure, and a reopen recovers every acknowledged write.

use std::sync::Arc;

use super::{dump, open, temp_files, tiny};
use crate::testing::{FaultOp, FaultyFs};
use crate::{Db, Error, Options};

fn on(fs: &FaultyFs, base: Options) -> Options {
    base.file_system(Arc::new(fs.clone()))
}

fn assert_poisoned_by_injected(err: &Error) {
    match err {
        Error::Poisoned { first } => assert!(first.to_string().contains("injected"), "{err}"),
        other => panic!("expected Poisoned, got {other}"),
    }
}

/// Writes keys, calling `arm` before write number `armed_at`, until a write fails;
/// returns the acknowledged keys.
fn write_until_failure(db: &Db, armed_at: u32, arm: impl Fn()) -> Vec<String> {
    let mut acked = Vec::new();
    for i in 0..2000u32 {
        if i == armed_at {
            arm();
        }
        let key = format!("key{i:05}");
        match db.put(&key, format!("v{i}")) {
            Ok(()) => acked.push(key),
            Err(_) => break,
        }
    }
    acked
}

/// Reopens on the real file system; every acknowledged key must be there. Returns the
/// number of keys recovered.
fn check_recovered(dir: &std::path::Path, acked: &[String]) -> usize {
    let db = open(dir, tiny());
    let all = dump(&db);
    for key in acked {
        assert!(
            all.iter().any(|(k, _)| k == key.as_bytes()),
            "lost acknowledged {key}"
        );
    }
    db.close().unwrap();
    all.len()
}

#[test]
fn failed_log_write_poisons_and_reopen_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let db = open(dir.path(), on(&fs, Options::default()));
    let acked = write_until_failure(&db, 50, || {
        fs.fail_always_on(FaultOp::Write, Some(".log"));
    });
    assert_eq!(acked.len(), 50);
    fs.heal();
    assert_poisoned_by_injected(&db.put("later", "x").unwrap_err());
    assert!(matches!(db.flush(), Err(Error::Poisoned { .. })));
    assert!(matches!(db.sync(), Err(Error::Poisoned { .. })));
    // Reads still work.
    assert_eq!(db.get("key00000").unwrap().as_deref(), Some(&b"v0"[..]));
    assert!(db.close().is_err());
    assert_eq!(check_recovered(dir.path(), &acked), 50);
}

#[test]
fn torn_log_write_leaves_a_torn_tail_that_reopen_drops() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let db = open(dir.path(), on(&fs, Options::default()));
    let acked = write_until_failure(&db, 30, || fs.tear_nth_write_on(1, Some(".log")));
    assert_eq!(acked.len(), 30);
    fs.heal();
    assert_poisoned_by_injected(&db.put("later", "x").unwrap_err());
    drop(db);
    // Half a record is in the log: a torn tail, dropped; nothing else is lost or added.
    assert_eq!(check_recovered(dir.path(), &acked), 30);
}

#[test]
fn failed_log_sync_poisons_and_is_never_retried() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let db = open(dir.path(), on(&fs, Options::default().sync(true)));
    db.put("a", "1").unwrap();
    fs.fail_nth_on(FaultOp::Sync, 1, Some(".log"));
    let first = db.put("b", "2").unwrap_err();
    assert!(matches!(first, Error::Io(_)), "{first}");
    let syncs = fs.count(FaultOp::Sync);
    assert_poisoned_by_injected(&db.put("c", "3").unwrap_err());
    assert_poisoned_by_injected(&db.sync().unwrap_err());
    assert_eq!(fs.count(FaultOp::Sync), syncs, "a failed sync was retried");
    drop(db);
    check_recovered(dir.path(), &["a".to_string()]);
}

#[test]
fn failed_flush_sync_poisons_and_reopen_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let db = open(dir.path(), on(&fs, tiny()));
    let acked = write_until_failure(&db, 20, || fs.fail_always_on(FaultOp::Sync, Some(".sst")));
    // Writes go on until back-pressure meets the poisoned flush worker.
    assert!(acked.len() >= 20);
    assert!(
        acked.len() < 2000,
        "the flush failure never reached a writer"
    );
    fs.heal();
    assert_poisoned_by_injected(&db.put("later", "x").unwrap_err());
    drop(db);
    check_recovered(dir.path(), &acked);
}

#[test]
fn failed_manifest_append_poisons_and_reopen_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let db = open(dir.path(), on(&fs, tiny()));
    let acked = write_until_failure(&db, 20, || {
        fs.fail_always_on(FaultOp::Write, Some("MANIFEST"));
    });
    assert!(
        acked.len() < 2000,
        "the manifest failure never reached a writer"
    );
    fs.heal();
    assert_poisoned_by_injected(&db.put("later", "x").unwrap_err());
    drop(db);
    check_recovered(dir.path(), &acked);
}

/// Opens a database on `fs` whose level 0 holds at least two tables of 200 acknowledged
/// keys while the compaction worker is held off, then arms a fault on `op` for every path
/// containing `path` and releases the worker; returns the database once a write fails, the
/// error of that write and the acknowledged keys. The compaction started on release is
/// what meets the fault first.
fn fail_a_paused_compaction(
    dir: &std::path::Path,
    fs: &FaultyFs,
    op: FaultOp,
    path: &str,
) -> (Db, Error, Vec<String>) {
    let db = open(
        dir,
        on(fs, tiny().l0_compaction_trigger(2).l0_stop_trigger(1000)),
    );
    let paused = crate::sync::lock(&db.shared().compaction);
    let mut acked = Vec::new();
    for i in 0..200u32 {
        let key = format!("key{i:05}");
        db.put(&key, format!("v{i}")).unwrap();
        acked.push(key);
    }
    db.flush().unwrap();
    assert!(db.stats().levels[0].tables >= 2);
    fs.fail_always_on(op, Some(path));
    drop(paused);
    let err = loop {
        match db.put("after", "the failure") {
            Ok(()) => std::thread::sleep(std::time::Duration::from_millis(1)),
            Err(err) => break err,
        }
    };
    (db, err, acked)
}

#[test]
fn failed_background_compaction_poisons_and_reopen_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    // Every table creation fails.
    let (db, err, acked) = fail_a_paused_compaction(dir.path(), &fs, FaultOp::Create, ".sst");
    assert_poisoned_by_injected(&err);
    // Reads keep working on the tables that were never replaced.
    assert_eq!(db.get("key00007").unwrap().as_deref(), Some(&b"v7"[..]));
    drop(db);
    assert!(check_recovered(dir.path(), &acked) >= acked.len());
}

#[test]
fn a_compaction_that_fails_mid_table_removes_its_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    // The compaction creates its first output, then every write into a table fails.
    let (db, err, _) = fail_a_paused_compaction(dir.path(), &fs, FaultOp::Write, ".sst.tmp");
    assert_poisoned_by_injected(&err);
    assert!(fs.injected() > 0);
    // Checked before any reopen, which would remove orphans itself.
    assert_eq!(temp_files(dir.path()), Vec::<String>::new());
    drop(db);
    assert_eq!(temp_files(dir.path()), Vec::<String>::new());
}
