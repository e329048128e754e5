//! `Db::open_read_only` through the public API: the last durable state of a closed
//! database, every change refused, and a reader in another process beside this one's
//! writer.

pub mod common;

use std::process::Command;

use common::{Model, collect, tiny_options};
use floe::{Db, Error, WriteBatch, WriteOptions};

/// Asserts that `result` failed with `Error::ReadOnly`.
#[track_caller]
fn assert_read_only<T: std::fmt::Debug>(result: floe::Result<T>) {
    assert!(
        matches!(result, Err(Error::ReadOnly { .. })),
        "expected Error::ReadOnly, got {result:?}"
    );
}

/// Writes `count` keys into `db`, flushing halfway so that the database holds tables and
/// a log; returns them.
fn fill(db: &Db, count: u32) -> Model {
    let mut model = Model::new();
    for i in 0..count {
        let (key, value) = (format!("key{i:05}"), format!("value {i}"));
        db.put(&key, &value).unwrap();
        model.insert(key.into_bytes(), value.into_bytes());
        if i == count / 2 {
            db.flush().unwrap();
        }
    }
    model
}

#[test]
fn reads_the_last_durable_state_and_refuses_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), tiny_options()).unwrap();
    let mut model = fill(&db, 400);
    let index = db.keyspace("index").unwrap();
    index.put("i", "in index").unwrap();
    db.delete("key00000").unwrap();
    model.remove(&b"key00000"[..]);
    db.close().unwrap();

    let db = Db::open_read_only(dir.path()).unwrap();
    let all = collect(db.iter(), "read-only iter");
    assert_eq!(all, model.clone().into_iter().collect::<Vec<_>>());
    let snapshot = db.snapshot();
    assert_eq!(
        snapshot.get("key00001").unwrap().as_deref(),
        Some(&b"value 1"[..])
    );
    assert_eq!(snapshot.get("key00000").unwrap(), None);
    assert_eq!(db.keyspace_names(), ["default", "index"]);
    let index = db.keyspace("index").unwrap();
    assert_eq!(index.get("i").unwrap().as_deref(), Some(&b"in index"[..]));

    assert_read_only(db.put("k", "v"));
    assert_read_only(db.delete("key00001"));
    let mut batch = WriteBatch::new();
    batch.put_in(&index, "k", "v");
    assert_read_only(db.write_with(batch, &WriteOptions::default().sync(true)));
    assert_read_only(index.put("k", "v"));
    assert_read_only(db.flush());
    assert_read_only(db.compact());
    assert_read_only(db.drop_keyspace("index"));
    assert_read_only(db.keyspace("new"));
    db.sync().unwrap();
    db.wait_for_compactions().unwrap();
    assert_eq!(collect(snapshot.iter(), "snapshot").len(), model.len());
    db.close().unwrap();

    // The database opens for writing again as it was.
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(collect(db.iter(), "reopened").len(), model.len());
    db.close().unwrap();
}

const READER_CHILD_ENV: &str = "FLOE_READ_ONLY_CHILD_DIR";

/// The child half of [`a_reader_in_another_process_opens_beside_this_writer`]: it runs
/// only when the parent re-executes this binary with the database path in
/// `FLOE_READ_ONLY_CHILD_DIR`, opens it read-only and reports what it sees; in a normal
/// run it has nothing to do.
#[test]
fn read_only_child_process() {
    let Ok(dir) = std::env::var(READER_CHILD_ENV) else {
        return;
    };
    match Db::open_read_only(&dir) {
        Ok(db) => {
            let pairs = collect(db.iter(), "child iter");
            println!("child-sees {}", pairs.len());
            let last = db.get("last").unwrap();
            println!(
                "child-last {:?}",
                last.as_deref().map(String::from_utf8_lossy)
            );
            match db.put("child", "write") {
                Err(Error::ReadOnly { .. }) => println!("child-put-refused"),
                other => println!("child-put-not-refused: {other:?}"),
            }
            db.close().unwrap();
        }
        Err(e) => println!("child-open-failed: {e}"),
    }
}

/// Runs [`read_only_child_process`] in a new process on `dir` and returns its stdout.
fn read_in_child(dir: &std::path::Path) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "read_only_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(READER_CHILD_ENV, dir)
        .output()
        .expect("re-execute the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the child process failed: status {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn a_reader_in_another_process_opens_beside_this_writer() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), tiny_options()).unwrap();
    let model = fill(&db, 300);
    db.put("last", "one").unwrap();
    // The writer holds the directory's lock; the reader takes none.
    let stdout = read_in_child(dir.path());
    let expected = format!("child-sees {}", model.len() + 1);
    assert!(
        stdout.contains(&expected)
            && stdout.contains("child-last Some(\"one\")")
            && stdout.contains("child-put-refused"),
        "the reader beside the writer saw something else:\n{stdout}"
    );
    // The writer is unaffected, and a later reader sees its later writes.
    db.put("last", "two").unwrap();
    db.flush().unwrap();
    let stdout = read_in_child(dir.path());
    assert!(
        stdout.contains("child-last Some(\"two\")"),
        "a later reader missed the writer's later write:\n{stdout}"
    );
    db.close().unwrap();
    assert!(Db::open(dir.path()).is_ok());
}
