//! Open, reopen, recovery edge cases and orphan removal.

use super::{dump, open, tiny};
use crate::filename::{FileKind, parse_file_name};
use crate::{Db, Error, Options};

fn files(dir: &std::path::Path) -> Vec<FileKind> {
    let mut kinds: Vec<FileKind> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| parse_file_name(e.unwrap().file_name().to_str().unwrap()))
        .collect();
    kinds.sort_by_key(|k| format!("{k:?}"));
    kinds
}

#[test]
fn empty_database_opens_reopens_and_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), Options::default());
    assert_eq!(db.get("a").unwrap(), None);
    assert!(dump(&db).is_empty());
    db.close().unwrap();
    let db = open(dir.path(), Options::default());
    assert!(dump(&db).is_empty());
    db.close().unwrap();
}

#[test]
fn unflushed_writes_survive_reopen_and_are_flushed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), Options::default());
    db.put("k1", "v1").unwrap();
    db.put("k2", "v2").unwrap();
    db.delete("k1").unwrap();
    drop(db);
    let db = open(dir.path(), Options::default());
    assert_eq!(db.get("k1").unwrap(), None);
    assert_eq!(db.get("k2").unwrap().as_deref(), Some(&b"v2"[..]));
    db.put("k3", "v3").unwrap();
    drop(db);
    let db = open(dir.path(), Options::default());
    assert_eq!(
        dump(&db),
        vec![
            (b"k2".to_vec(), b"v2".to_vec()),
            (b"k3".to_vec(), b"v3".to_vec())
        ]
    );
    // The replayed segments became a table; only the new active segment is left.
    let logs = files(dir.path())
        .into_iter()
        .filter(|k| matches!(k, FileKind::Log(_)))
        .count();
    assert_eq!(logs, 1);
}

#[test]
fn reopen_after_flush_and_with_frozen_unflushed_memtables() {
    const HALF: u32 = 1000;
    let dir = tempfile::tempdir().unwrap();
    // No background compaction: its manifest rolls would race with the file listing.
    let options = tiny()
        .max_immutable_memtables(8)
        .l0_compaction_trigger(1000);
    let db = open(dir.path(), options);
    // Enough keys for a few dozen flushes, so that the manifest rolls over several times.
    for i in 0..HALF {
        db.put(format!("key{i:05}"), format!("value{i}")).unwrap();
    }
    db.flush().unwrap();
    // Many flushes rolled the manifest over to new files; only the live one is left.
    // Compaction is off, and a flush rolls the manifest under the manifest mutex after
    // installing its state (which is what `flush()` waits for), so taking the mutex waits
    // for the last roll to finish before the directory is listed.
    drop(crate::sync::lock(&db.shared().manifest));
    let manifests: Vec<_> = files(dir.path())
        .into_iter()
        .filter(|k| matches!(k, FileKind::Manifest(_)))
        .collect();
    assert!(
        matches!(manifests[..], [FileKind::Manifest(n)] if n > 3),
        "{manifests:?}"
    );
    for i in HALF..2 * HALF {
        db.put(format!("key{i:05}"), format!("value{i}")).unwrap();
    }
    // Dropped without close: whatever is frozen but not flushed is replayed from its segment.
    drop(db);
    let db = open(dir.path(), tiny());
    let all = dump(&db);
    assert_eq!(all.len(), 2 * HALF as usize);
    for (i, (k, v)) in all.iter().enumerate() {
        assert_eq!(k, format!("key{i:05}").as_bytes());
        assert_eq!(v, format!("value{i}").as_bytes());
    }
    db.close().unwrap();
}

#[test]
fn orphans_are_removed_and_a_missing_table_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), tiny());
    for i in 0..100u32 {
        db.put(format!("k{i:03}"), "v").unwrap();
    }
    db.flush().unwrap();
    db.close().unwrap();
    std::fs::write(dir.path().join("999990.sst"), b"orphan").unwrap();
    std::fs::write(dir.path().join("999991.sst.tmp"), b"debris").unwrap();
    std::fs::write(dir.path().join("000000.log"), b"").unwrap();
    let db = open(dir.path(), tiny());
    let kinds = files(dir.path());
    assert!(!kinds.contains(&FileKind::Table(999_990)));
    assert!(!kinds.iter().any(|k| matches!(k, FileKind::Temp(_))));
    assert!(!kinds.contains(&FileKind::Log(0)));
    db.close().unwrap();

    let table = files(dir.path())
        .into_iter()
        .find_map(|k| match k {
            FileKind::Table(n) => Some(n),
            _ => None,
        })
        .expect("a table");
    std::fs::remove_file(crate::filename::table_path(dir.path(), table)).unwrap();
    let err = Db::open_with(dir.path(), tiny()).unwrap_err();
    assert!(matches!(err, Error::Corruption { .. }), "{err}");
}

#[test]
fn second_open_is_locked_and_close_releases_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), Options::default());
    let err = Db::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    let clone = db.clone();
    db.close().unwrap();
    assert!(matches!(clone.put("a", "b"), Err(Error::Closed)));
    let again = open(dir.path(), Options::default());
    drop(clone);
    again.put("a", "b").unwrap();
    drop(again);
    // Dropping the last handle released the lock too.
    open(dir.path(), Options::default()).close().unwrap();
}

#[test]
fn compaction_keeps_snapshots_and_drops_deleted_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), tiny().target_file_size(512));
    for i in 0..200u32 {
        db.put(format!("k{i:03}"), "old").unwrap();
    }
    let snapshot = db.snapshot();
    for i in 0..200u32 {
        if i % 2 == 0 {
            db.delete(format!("k{i:03}")).unwrap();
        } else {
            db.put(format!("k{i:03}"), "new").unwrap();
        }
    }
    db.compact().unwrap();
    assert_eq!(snapshot.iter().count(), 200);
    assert_eq!(snapshot.get("k000").unwrap().as_deref(), Some(&b"old"[..]));
    let now = dump(&db);
    assert_eq!(now.len(), 100);
    assert!(now.iter().all(|(_, v)| v == b"new"));
    drop(snapshot);
    db.compact().unwrap();
    assert_eq!(dump(&db), now);
    let state = db.shared().state.load();
    assert!(state.default_tree().version.levels[0].is_empty());
    assert!(state.default_tree().version.levels[crate::version::NUM_LEVELS - 1].len() > 1);
    drop(state);
    db.close().unwrap();
    let db = open(dir.path(), tiny());
    assert_eq!(dump(&db), now);
    assert_eq!(
        dump(&db).into_iter().rev().collect::<Vec<_>>(),
        db.iter()
            .rev()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_missing_log_or_current_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), tiny());
    for i in 0..100u32 {
        db.put(format!("k{i:03}"), "v").unwrap();
    }
    db.flush().unwrap();
    db.put("unflushed", "only in the log").unwrap();
    drop(db);
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }

    let log = files(dir.path())
        .into_iter()
        .find_map(|k| match k {
            FileKind::Log(n) => Some(n),
            _ => None,
        })
        .expect("a log");
    std::fs::remove_file(crate::filename::log_path(dir.path(), log)).unwrap();
    let err = Db::open_with(dir.path(), tiny()).unwrap_err();
    assert!(matches!(err, Error::Corruption { .. }), "{err}");

    std::fs::remove_file(crate::filename::current_path(copy.path())).unwrap();
    let err = Db::open_with(copy.path(), tiny()).unwrap_err();
    assert!(matches!(err, Error::Corruption { .. }), "{err}");
    // Nothing was removed by the refused opens.
    assert!(
        files(copy.path())
            .iter()
            .any(|k| matches!(k, FileKind::Table(_)))
    );
}

#[test]
fn log_segments_reserve_room_and_close_gives_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let buffer = 4 << 20;
    let db = open(dir.path(), Options::default().write_buffer_size(buffer));
    db.put("k", "v").unwrap();
    let log_sizes = || -> Vec<u64> {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
            .map(|path| std::fs::metadata(path).unwrap().len())
            .collect()
    };
    assert_eq!(
        log_sizes(),
        vec![buffer as u64],
        "the active segment reserves a buffer"
    );
    db.close().unwrap();
    let sizes = log_sizes();
    assert_eq!(sizes.len(), 1);
    assert!(
        sizes[0] < 64,
        "the closed segment keeps only its record: {sizes:?}"
    );
    let db = open(dir.path(), Options::default());
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
}
