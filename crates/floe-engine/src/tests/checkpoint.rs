//! Checkpoints: an openable copy holding every write acknowledged before the call, one
//! point in time for every keyspace, made of links, while writers go on.

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{open, tiny};
use crate::{Error, Options, WriteBatch};

#[test]
fn a_checkpoint_holds_every_acknowledged_write_of_every_keyspace_and_opens() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), tiny());
    let other = db.keyspace("other").unwrap();
    for i in 0..400u32 {
        db.put(format!("k{i:04}"), i.to_string()).unwrap();
        other.put(format!("o{i:04}"), i.to_string()).unwrap();
    }
    db.delete("k0007").unwrap();
    let copies = tempfile::tempdir().unwrap();
    let target = copies.path().join("cp");
    db.checkpoint(&target).unwrap();
    // The source goes on; the copy does not see it.
    db.put("after", "x").unwrap();
    let copy = open(&target, Options::default());
    assert_eq!(copy.iter().count(), 399);
    assert_eq!(copy.get("k0007").unwrap(), None);
    assert_eq!(copy.get("after").unwrap(), None);
    assert_eq!(copy.keyspace_names(), ["default", "other"]);
    assert_eq!(copy.keyspace("other").unwrap().iter().count(), 400);
    // Tables are links of the source's files.
    let linked = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "sst"))
        .filter(|e| e.metadata().unwrap().nlink() > 1)
        .count();
    assert!(linked > 0, "no table of the checkpoint is a link");
    // A second checkpoint into the same directory is refused.
    assert!(matches!(
        db.checkpoint(&target),
        Err(Error::InvalidArgument { .. })
    ));
    // The copy is a database of its own: writes to it leave the source alone.
    copy.put("only-in-copy", "1").unwrap();
    assert_eq!(db.get("only-in-copy").unwrap(), None);
}

#[test]
fn a_checkpoint_taken_while_batches_commit_holds_a_prefix_with_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), tiny());
    let a = db.keyspace("a").unwrap();
    let b = db.keyspace("b").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, a, b) = (db.clone(), a.clone(), b.clone());
        let (stop, acknowledged) = (Arc::clone(&stop), Arc::clone(&acknowledged));
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let mut batch = WriteBatch::new();
                batch.put_in(&a, "counter", n.to_string());
                batch.put_in(&b, "counter", n.to_string());
                batch.put_in(&a, format!("k{n:06}"), [0u8; 30]);
                db.write(batch).unwrap();
                acknowledged.store(n, Ordering::Release);
            }
        })
    };
    let copies = tempfile::tempdir().unwrap();
    for round in 0..5 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let before = acknowledged.load(Ordering::Acquire);
        let target = copies.path().join(format!("cp{round}"));
        db.checkpoint(&target).unwrap();
        let copy = open(&target, tiny());
        let value = |name: &str| {
            let keyspace = copy.keyspace(name).unwrap();
            keyspace.get("counter").unwrap().map_or(0, |v| {
                std::str::from_utf8(&v).unwrap().parse::<u64>().unwrap()
            })
        };
        let (in_a, in_b) = (value("a"), value("b"));
        assert_eq!(in_a, in_b, "round {round}: half a batch");
        assert!(
            in_a >= before,
            "round {round}: {in_a} < acknowledged {before}"
        );
        // A prefix: every batch up to the counter, none after.
        let keys = copy.keyspace("a").unwrap().iter().count() as u64;
        assert_eq!(keys, in_a + 1, "round {round}");
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn a_read_only_database_checkpoints_what_it_reads_its_replayed_log_included() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), tiny());
    let other = db.keyspace("other").unwrap();
    for i in 0..300u32 {
        db.put(format!("k{i:04}"), i.to_string()).unwrap();
    }
    db.flush().unwrap();
    other.put("only-in-log", "1").unwrap();
    db.put("k0000", "changed in the log").unwrap();
    let reader = crate::Db::open_read_only(dir.path()).unwrap();
    // The writer goes on; the reader, and so its checkpoint, stays at its open.
    db.put("after", "x").unwrap();
    let copies = tempfile::tempdir().unwrap();
    let target = copies.path().join("cp");
    reader.checkpoint(&target).unwrap();
    let copy = open(&target, Options::default());
    assert_eq!(copy.iter().count(), 300);
    assert_eq!(
        copy.get("k0000").unwrap().as_deref(),
        Some(&b"changed in the log"[..])
    );
    assert_eq!(copy.get("after").unwrap(), None);
    assert_eq!(
        copy.keyspace("other")
            .unwrap()
            .get("only-in-log")
            .unwrap()
            .as_deref(),
        Some(&b"1"[..])
    );
    copy.put("new", "write").unwrap();
    copy.close().unwrap();
    let again = open(&target, Options::default());
    assert_eq!(again.get("new").unwrap().as_deref(), Some(&b"write"[..]));
}
