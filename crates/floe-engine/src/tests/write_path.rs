//! Group commit under concurrent writers, back-pressure, batches and limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use super::{dump, open, tiny};
use crate::{Error, MAX_KEY_SIZE, Options, WriteBatch};

#[test]
fn four_writers_with_a_tiny_write_buffer_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), tiny().max_immutable_memtables(1));
    let writers: Vec<_> = (0..4u32)
        .map(|w| {
            let db = db.clone();
            thread::spawn(move || {
                for i in 0..250u32 {
                    if i % 10 == 0 {
                        let mut batch = WriteBatch::new();
                        for j in 0..3u32 {
                            batch.put(format!("w{w}-{i:04}-{j}"), format!("{i}"));
                        }
                        db.write(batch).unwrap();
                    } else {
                        db.put(format!("w{w}-{i:04}"), format!("{i}")).unwrap();
                    }
                    // Read your own write at once, wherever it is.
                    let key = if i % 10 == 0 {
                        format!("w{w}-{i:04}-2")
                    } else {
                        format!("w{w}-{i:04}")
                    };
                    assert_eq!(
                        db.get(&key).unwrap().as_deref(),
                        Some(format!("{i}").as_bytes())
                    );
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let expected = 4 * (225 + 25 * 3);
    assert_eq!(dump(&db).len(), expected);
    // Several flushes happened (background compactions may have merged their tables).
    assert!(db.stats().flushes > 3, "{:?}", db.stats());
    db.close().unwrap();
    let db = open(dir.path(), Options::default());
    assert_eq!(dump(&db).len(), expected);
}

#[test]
fn back_pressure_blocks_writers_and_releases_them() {
    // With one frozen memtable allowed and a flush worker kept busy by many small tables,
    // writers must wait (not fail) and finish once flushes catch up.
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), tiny().max_immutable_memtables(1));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let db = db.clone();
        let done = Arc::clone(&done);
        thread::spawn(move || {
            for i in 0..2000u32 {
                db.put(format!("k{i:05}"), [7u8; 64]).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    // While the writer runs, the number of frozen memtables never exceeds the limit.
    while !done.load(Ordering::SeqCst) {
        assert!(db.shared().state.load().default_tree().frozen.len() <= 1);
        thread::yield_now();
    }
    writer.join().unwrap();
    assert_eq!(db.iter().count(), 2000);
}

#[test]
fn batches_are_atomic_and_empty_keys_and_values_work() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), Options::default());
    let mut batch = WriteBatch::new();
    batch.put("", "");
    batch.put("a", "1");
    batch.delete("a");
    batch.put("b", "2");
    db.write(batch).unwrap();
    db.write(WriteBatch::new()).unwrap();
    assert_eq!(db.get("").unwrap().as_deref(), Some(&b""[..]));
    assert_eq!(db.get("a").unwrap(), None);
    assert_eq!(
        dump(&db),
        vec![(vec![], vec![]), (b"b".to_vec(), b"2".to_vec())]
    );

    let long = vec![1u8; MAX_KEY_SIZE + 1];
    let err = db.put(&long, "v").unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    db.put(&long[..MAX_KEY_SIZE], "v").unwrap();
    db.sync().unwrap();
}

#[test]
fn sync_writes_are_durable_and_scans_respect_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), tiny().sync(true));
    for key in ["a", "ab", "ab\u{7f}", "abc", "b"] {
        db.put(key, key).unwrap();
    }
    db.put([b'a', 0xff], "ff").unwrap();
    db.put([b'a', 0xff, 0xff], "ffff").unwrap();
    let keys = |iter: crate::Iter| iter.map(|r| r.unwrap().0.to_vec()).collect::<Vec<_>>();
    assert_eq!(
        keys(db.prefix("ab")),
        vec![b"ab".to_vec(), b"abc".to_vec(), b"ab\x7f".to_vec()]
    );
    assert_eq!(
        keys(db.prefix([b'a', 0xff])),
        vec![vec![b'a', 0xff], vec![b'a', 0xff, 0xff]]
    );
    assert_eq!(keys(db.range("ab".."b")).len(), 5);
    assert_eq!(keys(db.range("b".."a")).len(), 0);
    assert_eq!(keys(db.range("ab"..="ab")), vec![b"ab".to_vec()]);
    assert_eq!(db.prefix("").next_back().unwrap().unwrap().0.as_ref(), b"b");
    let snapshot = db.snapshot();
    db.put("c", "c").unwrap();
    db.flush().unwrap();
    assert_eq!(snapshot.get("c").unwrap(), None);
    assert_eq!(keys(snapshot.range("b"..)), vec![b"b".to_vec()]);
    assert_eq!(keys(db.range("b"..)), vec![b"b".to_vec(), b"c".to_vec()]);
}

#[test]
fn writers_of_flushed_segments_are_released() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), tiny());
    for i in 0..3000u32 {
        db.put(format!("k{i:05}"), [1u8; 32]).unwrap();
    }
    db.flush().unwrap();
    db.put("one more", "switch").unwrap();
    db.flush().unwrap();
    // Only segments of memtables still waiting for a flush keep an open writer.
    let kept = crate::sync::lock(&db.shared().segments).closed.len();
    let frozen = db.shared().state.load().frozen_count();
    assert!(
        kept <= frozen,
        "{kept} writers kept for {frozen} frozen memtables"
    );
}

#[test]
fn a_flush_keeps_the_versions_live_snapshots_see_and_drops_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    // A buffer large enough that nothing freezes before the explicit flush.
    let db = open(dir.path(), Options::default().write_buffer_size(1 << 20));
    db.put("k", "v1").unwrap();
    db.put("k", "v2").unwrap();
    let snapshot = db.snapshot();
    db.put("k", "v3").unwrap();
    db.put("k", "v4").unwrap();
    db.delete("gone").unwrap();
    db.put("other", "x").unwrap();
    db.put("other", "y").unwrap();
    db.flush().unwrap();

    let state = db.shared().state.load_full();
    let tables = &state.default_tree().version.levels[0];
    assert_eq!(tables.len(), 1);
    // k@v2 (the snapshot's) and k@v4 (the newest), the tombstone of "gone" (it must keep
    // hiding older versions below), and other@y: v1, v3 and other@x are shadowed.
    assert_eq!(tables[0].file.entries, 4);
    assert_eq!(tables[0].file.max_seqno, 7);
    assert_eq!(snapshot.get("k").unwrap().as_deref(), Some(&b"v2"[..]));
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v4"[..]));
    assert_eq!(db.get("gone").unwrap(), None);
    assert_eq!(db.get("other").unwrap().as_deref(), Some(&b"y"[..]));
    drop(snapshot);
    drop(state);
    db.close().unwrap();

    // The sequence numbers carry on after a reopen, though versions were dropped.
    let db = open(dir.path(), Options::default());
    db.put("k", "v5").unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v5"[..]));
    assert_eq!(db.snapshot().get("k").unwrap().as_deref(), Some(&b"v5"[..]));
}

#[test]
fn stats_count_writes_groups_and_log_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), Options::default());
    db.put("a", "1").unwrap();
    db.delete("a").unwrap();
    let mut batch = WriteBatch::new();
    batch.put("b", "2");
    batch.put("c", "3");
    db.write(batch).unwrap();
    // An empty batch changes nothing and is not a write.
    db.write(WriteBatch::new()).unwrap();
    let stats = db.stats();
    assert_eq!(
        (stats.writes, stats.write_groups, stats.log_syncs),
        (3, 3, 0)
    );
    db.sync().unwrap();
    assert_eq!(db.stats().log_syncs, 1);
    drop(db);

    let db = open(dir.path(), Options::default().sync(true));
    db.put("d", "4").unwrap();
    db.put("e", "5").unwrap();
    let stats = db.stats();
    assert_eq!(
        (stats.writes, stats.write_groups, stats.log_syncs),
        (2, 2, 2)
    );
}

/// A synced write of nothing (a batch of empty ranges) still makes the writes before it
/// durable, as `WriteOptions::sync` promises.
#[test]
fn a_synced_empty_batch_syncs_the_writes_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), Options::default());
    db.put("a", "1").unwrap();
    let before = db.stats().log_syncs;
    let mut batch = WriteBatch::new();
    batch.delete_range("k".."k");
    assert!(batch.is_empty());
    db.write_with(batch, &crate::WriteOptions::default().sync(true))
        .unwrap();
    assert!(db.stats().log_syncs > before, "{:?}", db.stats());
    db.write(WriteBatch::new()).unwrap();
}
