//! Serializable optimistic transactions: each anomaly a weaker isolation level allows,
//! prevented (named after it), reads of a transaction's own writes in every read path,
//! conflicts with plain writes and range deletes, across flushes, keyspaces, the size
//! limit, and a bank of concurrent transfers whose total never changes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use floe::{Bytes, Db, Error, Keyspace, Options, Transaction};

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    (dir, db)
}

fn get(tx: &mut Transaction, ks: &Keyspace, key: &str) -> Option<String> {
    tx.get(ks, key)
        .unwrap()
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
}

fn num(tx: &mut Transaction, ks: &Keyspace, key: &str) -> i64 {
    get(tx, ks, key).map_or(0, |v| v.parse().unwrap())
}

fn is_conflict(result: floe::Result<()>) -> bool {
    matches!(result, Err(Error::Conflict { .. }))
}

fn keys(iter: floe::Iter) -> Vec<String> {
    iter.map(|kv| String::from_utf8(kv.unwrap().0.to_vec()).unwrap())
        .collect()
}

#[test]
fn dirty_read_is_prevented() {
    let (_dir, db) = open();
    let ks = db.default_keyspace();
    let mut writer = db.transaction();
    writer.put(&ks, "k", "uncommitted");
    let mut reader = db.transaction();
    assert_eq!(get(&mut reader, &ks, "k"), None);
    assert_eq!(db.get("k").unwrap(), None);
    writer.rollback();
    assert_eq!(db.get("k").unwrap(), None);
}

#[test]
fn non_repeatable_read_is_prevented() {
    let (_dir, db) = open();
    let ks = db.default_keyspace();
    db.put("k", "1").unwrap();
    let mut tx = db.transaction();
    assert_eq!(get(&mut tx, &ks, "k").as_deref(), Some("1"));
    db.put("k", "2").unwrap();
    // The same read inside the transaction sees the same value.
    assert_eq!(get(&mut tx, &ks, "k").as_deref(), Some("1"));
    tx.put(&ks, "other", "x");
    // And a transaction that acted on the old value cannot commit.
    assert!(is_conflict(tx.commit()));
    assert_eq!(db.get("other").unwrap(), None);
}

#[test]
fn lost_update_is_prevented() {
    let (_dir, db) = open();
    let ks = db.default_keyspace();
    db.put("counter", "10").unwrap();
    let mut a = db.transaction();
    let mut b = db.transaction();
    let va = num(&mut a, &ks, "counter");
    let vb = num(&mut b, &ks, "counter");
    a.put(&ks, "counter", (va + 1).to_string());
    b.put(&ks, "counter", (vb + 1).to_string());
    a.commit().unwrap();
    assert!(is_conflict(b.commit()));
    assert_eq!(db.get("counter").unwrap().as_deref(), Some(&b"11"[..]));
}

#[test]
fn read_skew_is_prevented() {
    let (_dir, db) = open();
    let ks = db.default_keyspace();
    db.put("x", "50").unwrap();
    db.put("y", "50").unwrap();
    let mut reader = db.transaction();
    let x = num(&mut reader, &ks, "x");
    // A transfer commits between the two reads.
    let mut transfer = db.transaction();
    let (tx_x, tx_y) = (num(&mut transfer, &ks, "x"), num(&mut transfer, &ks, "y"));
    transfer.put(&ks, "x", (tx_x - 30).to_string());
    transfer.put(&ks, "y", (tx_y + 30).to_string());
    transfer.commit().unwrap();
    let y = num(&mut reader, &ks, "y");
    assert_eq!(x + y, 100, "the reader sees one point in time");
    reader.put(&ks, "sum", (x + y).to_string());
    assert!(
        is_conflict(reader.commit()),
        "its reads are stale by commit time"
    );
}

#[test]
fn write_skew_is_prevented() {
    let (_dir, db) = open();
    let ks = db.default_keyspace();
    // At least one doctor must stay on call.
    db.put("alice", "on").unwrap();
    db.put("bob", "on").unwrap();
    let on_call = |tx: &mut Transaction| {
        ["alice", "bob"]
            .iter()
            .filter(|d| get(tx, &ks, d).as_deref() == Some("on"))
            .count()
    };
    let mut a = db.transaction();
    let mut b = db.transaction();
    assert_eq!(on_call(&mut a), 2);
    assert_eq!(on_call(&mut b), 2);
    a.put(&ks, "alice", "off");
    b.put(&ks, "bob", "off");
    a.commit().unwrap();
    assert!(is_conflict(b.commit()));
    assert_eq!(db.get("bob").unwrap().as_deref(), Some(&b"on"[..]));
}

#[test]
fn phantoms_in_ranges_and_prefixes_are_prevented() {
    let (_dir, db) = open();
    let ks = db.default_keyspace();
    db.put("order/1", "10").unwrap();
    // A range scan: an insert into the range after the scan conflicts.
    let mut tx = db.transaction();
    assert_eq!(keys(tx.range(&ks, "order/".."order0")), ["order/1"]);
    db.put("order/2", "20").unwrap();
    tx.put(&ks, "total", "10");
    assert!(is_conflict(tx.commit()));
    // A prefix scan, the same.
    let mut tx = db.transaction();
    assert_eq!(keys(tx.prefix(&ks, "order/")), ["order/1", "order/2"]);
    db.put("order/3", "30").unwrap();
    tx.put(&ks, "total", "30");
    assert!(is_conflict(tx.commit()));
    // An insert outside the scanned range does not.
    let mut tx = db.transaction();
    assert_eq!(keys(tx.prefix(&ks, "order/")).len(), 3);
    db.put("other", "x").unwrap();
    tx.put(&ks, "total", "60");
    tx.commit().unwrap();
    // A full iteration conflicts with any write into the keyspace.
    let mut tx = db.transaction();
    assert_eq!(keys(tx.iter(&ks)).len(), 5);
    db.delete("other").unwrap();
    tx.put(&ks, "total", "0");
    assert!(is_conflict(tx.commit()));
}

#[test]
fn a_transaction_reads_its_own_writes_everywhere() {
    let (_dir, db) = open();
    let ks = db.default_keyspace();
    for k in ["a", "c", "e"] {
        db.put(k, "db").unwrap();
    }
    let mut tx = db.transaction();
    tx.put(&ks, "b", "tx");
    tx.delete(&ks, "c");
    tx.put(&ks, "e", "tx");
    assert_eq!(get(&mut tx, &ks, "b").as_deref(), Some("tx"));
    assert_eq!(get(&mut tx, &ks, "c"), None);
    assert_eq!(keys(tx.iter(&ks)), ["a", "b", "e"]);
    let backwards: Vec<_> = tx
        .iter(&ks)
        .rev()
        .map(|kv| {
            let (k, v) = kv.unwrap();
            format!(
                "{}={}",
                String::from_utf8_lossy(&k),
                String::from_utf8_lossy(&v)
            )
        })
        .collect();
    assert_eq!(backwards, ["e=tx", "b=tx", "a=db"]);
    assert_eq!(keys(tx.range(&ks, "b"..="c")), ["b"]);
    assert_eq!(
        db.get("b").unwrap(),
        None,
        "nothing is visible before the commit"
    );
    tx.commit().unwrap();
    assert_eq!(db.get("b").unwrap().as_deref(), Some(&b"tx"[..]));
    assert_eq!(db.get("c").unwrap(), None);
}

#[test]
fn read_only_transactions_never_conflict_and_blind_writes_do() {
    let (_dir, db) = open();
    let ks = db.default_keyspace();
    db.put("k", "1").unwrap();
    let mut reader = db.transaction();
    assert_eq!(get(&mut reader, &ks, "k").as_deref(), Some("1"));
    db.put("k", "2").unwrap();
    reader.commit().unwrap();
    // A write to a key someone else wrote since the transaction began conflicts too.
    let mut blind = db.transaction();
    db.put("k", "3").unwrap();
    blind.put(&ks, "k", "4");
    assert!(is_conflict(blind.commit()));
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"3"[..]));
}

#[test]
fn range_deletes_and_flushes_are_seen_by_validation() {
    let (_dir, db) = open();
    let ks = db.default_keyspace();
    db.put("k", "1").unwrap();
    let mut tx = db.transaction();
    assert_eq!(get(&mut tx, &ks, "k").as_deref(), Some("1"));
    db.delete_range("a".."z").unwrap();
    tx.put(&ks, "x", "y");
    assert!(is_conflict(tx.commit()));

    // The conflicting write is flushed into a table before the commit.
    let mut tx = db.transaction();
    assert_eq!(get(&mut tx, &ks, "k"), None);
    db.put("k", "2").unwrap();
    db.flush().unwrap();
    db.put("unrelated", "filler").unwrap();
    db.flush().unwrap();
    tx.put(&ks, "k", "3");
    assert!(is_conflict(tx.commit()));

    // A flush of unrelated keys does not make a transaction conflict.
    let mut tx = db.transaction();
    assert_eq!(get(&mut tx, &ks, "k").as_deref(), Some("2"));
    db.put("zzz", "1").unwrap();
    db.flush().unwrap();
    tx.put(&ks, "k", "4");
    tx.commit().unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"4"[..]));
}

#[test]
fn a_transaction_older_than_the_history_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), Options::default().transaction_history_bytes(1)).unwrap();
    let ks = db.default_keyspace();
    let mut tx = db.transaction();
    assert_eq!(get(&mut tx, &ks, "k"), None);
    db.put("elsewhere", "1").unwrap();
    db.flush().unwrap();
    tx.put(&ks, "k", "v");
    let err = tx.commit().unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert!(
        err.to_string().contains("transaction_history_bytes"),
        "{err}"
    );
}

#[test]
fn transactions_span_keyspaces_and_respect_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), Options::default().max_transaction_bytes(100)).unwrap();
    let (a, b) = (db.keyspace("a").unwrap(), db.keyspace("b").unwrap());
    let mut tx = db.transaction();
    tx.put(&a, "k", "in a");
    tx.put(&b, "k", "in b");
    tx.commit().unwrap();
    assert_eq!(a.get("k").unwrap().as_deref(), Some(&b"in a"[..]));
    assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"in b"[..]));
    let mut big = db.transaction();
    big.put(&a, "big", vec![0u8; 200]);
    let err = big.commit().unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert!(err.to_string().contains("max_transaction_bytes"), "{err}");
    assert_eq!(a.get("big").unwrap(), None);
    // A write in one keyspace does not conflict with a read of the same key in another.
    let mut tx = db.transaction();
    assert_eq!(tx.get(&a, "k").unwrap().as_deref(), Some(&b"in a"[..]));
    b.put("k", "changed").unwrap();
    tx.put(&a, "k", "again");
    tx.commit().unwrap();
}

/// 8 threads move money between 100 accounts in two keyspaces, retrying on conflict; a
/// checker thread sums all accounts at snapshots meanwhile. The total never changes.
#[test]
fn a_bank_of_concurrent_transfers_keeps_its_total() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Db::open_with(dir.path(), Options::default().write_buffer_size(64 << 10)).unwrap(),
    );
    let banks = [db.keyspace("east").unwrap(), db.keyspace("west").unwrap()];
    let account = |n: usize| (&banks[n % 2], format!("acct{n:03}"));
    for n in 0..100 {
        let (ks, name) = account(n);
        ks.put(&name, "1000").unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (committed, conflicts) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let checker = {
        let (db, stop, banks) = (Arc::clone(&db), Arc::clone(&stop), banks.clone());
        thread::spawn(move || {
            let mut checks = 0;
            while !stop.load(Ordering::Relaxed) || checks == 0 {
                let snapshot = db.snapshot();
                let total: i64 = banks
                    .iter()
                    .map(|ks| {
                        snapshot
                            .keyspace(ks)
                            .iter()
                            .map(|kv| {
                                std::str::from_utf8(&kv.unwrap().1)
                                    .unwrap()
                                    .parse::<i64>()
                                    .unwrap()
                            })
                            .sum::<i64>()
                    })
                    .sum();
                assert_eq!(total, 100_000, "at a snapshot");
                checks += 1;
            }
        })
    };
    let workers: Vec<_> = (0..8u64)
        .map(|w| {
            let (db, banks) = (Arc::clone(&db), banks.clone());
            let (committed, conflicts) = (Arc::clone(&committed), Arc::clone(&conflicts));
            thread::spawn(move || {
                let mut state = w.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                let mut next = move || {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state
                };
                for _ in 0..300 {
                    let (from, to) = ((next() % 100) as usize, (next() % 100) as usize);
                    if from == to {
                        continue;
                    }
                    let amount = (next() % 50) as i64;
                    loop {
                        let mut tx = db.transaction();
                        let (fks, fname) = (&banks[from % 2], format!("acct{from:03}"));
                        let (tks, tname) = (&banks[to % 2], format!("acct{to:03}"));
                        let f = num(&mut tx, fks, &fname);
                        let t = num(&mut tx, tks, &tname);
                        tx.put(fks, &fname, (f - amount).to_string());
                        tx.put(tks, &tname, (t + amount).to_string());
                        match tx.commit() {
                            Ok(()) => {
                                committed.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Err(Error::Conflict { .. }) => {
                                conflicts.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(err) => panic!("commit: {err}"),
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    checker.join().unwrap();
    let total: i64 = banks
        .iter()
        .flat_map(|ks| ks.iter())
        .map(|kv| {
            std::str::from_utf8(&kv.unwrap().1)
                .unwrap()
                .parse::<i64>()
                .unwrap()
        })
        .sum();
    assert_eq!(total, 100_000);
    let _ = Bytes::new();
    println!(
        "{} transfers committed, {} conflicts retried",
        committed.load(Ordering::Relaxed),
        conflicts.load(Ordering::Relaxed)
    );
}
