//! Power loss on a real file system, imitated by copying a live database and damaging the
//! copy's unsynced log pages the way a power cut may: a later page kept, an earlier one
//! lost. Open must succeed and recover a prefix that holds every synced write.

use std::path::Path;

use super::{dump, open};
use crate::{Db, Error, Options};

/// Copies every file of `from` into `to` while the database in `from` is still open, so
/// the log's unsynced bytes are in the copy as the page cache holds them.
fn copy_live(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name != "LOCK" {
            std::fs::copy(entry.path(), to.join(name)).unwrap();
        }
    }
}

/// The single log segment of `dir`.
fn only_log(dir: &Path) -> std::path::PathBuf {
    let logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    logs.into_iter().next().unwrap()
}

fn key(i: usize) -> String {
    format!("key{i:05}")
}

/// Writes `synced` writes and syncs them, then unsynced writes across several log blocks;
/// returns the database, still open.
fn synced_then_unsynced(dir: &Path, synced: usize, unsynced: usize, sync_writes: bool) -> Db {
    let db = open(
        dir,
        Options::default()
            .sync(sync_writes)
            .write_buffer_size(1 << 20),
    );
    for i in 0..synced {
        db.put(key(i), vec![b's'; 300]).unwrap();
    }
    db.sync().unwrap();
    // A batch larger than a block: one group whose record crosses block boundaries, as
    // an unacknowledged synced group may.
    let mut batch = crate::WriteBatch::new();
    for i in synced..synced + unsynced {
        batch.put(key(i), vec![b'u'; 300]);
    }
    db.write(batch).unwrap();
    db
}

/// Zeroes the 4 KiB page at `page` of `path` (a power loss that never wrote it back).
fn lose_page(path: &Path, page: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(page * 4096)).unwrap();
    file.write_all(&[0u8; 4096]).unwrap();
}

#[test]
fn a_lost_unsynced_page_before_a_kept_one_is_a_tail_not_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let db = synced_then_unsynced(dir.path(), 40, 300, false);
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().to_path_buf();
    copy_live(dir.path(), &copy);
    drop(db);
    // 40 synced writes of ~320 bytes end near 13 KiB; the unsynced batch runs to ~110 KiB.
    // Lose its second page of 4 KiB and keep everything after it.
    lose_page(&only_log(&copy), 4);
    let reopened = Db::open(&copy).expect("open after a power loss must succeed");
    let state = dump(&reopened);
    assert_eq!(state.len(), 40, "the synced writes, and not the torn batch");
    for (i, (k, v)) in state.iter().enumerate() {
        assert_eq!(k, key(i).as_bytes());
        assert_eq!(v, &vec![b's'; 300]);
    }
}

#[test]
fn damage_to_synced_bytes_that_a_later_marker_covers_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let db = synced_then_unsynced(dir.path(), 40, 300, false);
    // A second sync, then one more write: its append carries the marker that states the
    // whole batch durable.
    db.sync().unwrap();
    db.put("after", "x").unwrap();
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().to_path_buf();
    copy_live(dir.path(), &copy);
    drop(db);
    lose_page(&only_log(&copy), 4);
    match Db::open(&copy) {
        Err(Error::Corruption { message }) => assert!(message.contains("synced"), "{message}"),
        other => panic!("expected Corruption, got {other:?}"),
    }
}

#[test]
fn a_cleanly_closed_log_reports_damage_anywhere_as_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let db = synced_then_unsynced(dir.path(), 40, 300, false);
    db.close().unwrap();
    lose_page(&only_log(dir.path()), 4);
    assert!(matches!(
        Db::open(dir.path()),
        Err(Error::Corruption { .. })
    ));
}

#[test]
fn with_synced_writes_a_hole_in_the_unacknowledged_group_keeps_every_synced_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(
        dir.path(),
        Options::default().sync(true).write_buffer_size(1 << 20),
    );
    for i in 0..40 {
        db.put(key(i), vec![b's'; 300]).unwrap();
    }
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().to_path_buf();
    copy_live(dir.path(), &copy);
    drop(db);
    // Imitate a synced group that crossed a block boundary and lost its first page while
    // its later page survived: append it to the copy by hand with the engine's framing.
    let log = only_log(&copy);
    let mut bytes = std::fs::read(&log).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |at| at + 1);
    bytes.truncate(end);
    let mut batch = crate::WriteBatch::new();
    for i in 40..200 {
        batch.put(key(i), vec![b'u'; 300]);
    }
    batch.set_seqno(41);
    let record = batch.payload().to_vec();
    let group_start = bytes.len();
    bytes.extend_from_slice(&crate::wal::encode_log_at(group_start, &[&record[..]]));
    let page = (group_start as u64).div_ceil(4096);
    std::fs::write(&log, &bytes).unwrap();
    lose_page(&log, page);
    let reopened = Db::open(&copy).expect("open after a power loss must succeed");
    assert_eq!(dump(&reopened).len(), 40);
}

/// The log segments of `dir`, oldest first.
fn logs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    logs.sort();
    logs
}

/// Options with no background threads and a one-page memtable, so that a few writes
/// freeze it and the frozen segment stays until asked to flush.
fn manual() -> Options {
    Options::default()
        .write_buffer_size(4096)
        .max_immutable_memtables(3)
        .manual_background(true)
}

#[test]
fn an_older_segment_that_lost_all_its_records_ends_the_prefix_without_corruption() {
    // A power loss with `sync(false)` can lose an older segment's length (so all of its
    // records) while a newer segment's pages survived: the newer one's first batch then
    // starts past the next sequence number. Nothing of it was synced, so that is where
    // the recovered prefix ends, not corruption.
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), manual());
    for i in 0..40 {
        db.put(key(i), vec![b'x'; 300]).unwrap();
    }
    let copy_dir = tempfile::tempdir().unwrap();
    copy_live(dir.path(), copy_dir.path());
    drop(db);
    let segments = logs(copy_dir.path());
    assert!(segments.len() >= 3, "{segments:?}");
    std::fs::write(&segments[0], b"").unwrap();
    let reopened = Db::open(copy_dir.path()).expect("open after a power loss must succeed");
    assert_eq!(dump(&reopened), Vec::new());
}

#[test]
fn a_gap_before_a_segment_with_a_marker_is_corruption() {
    // The same loss, but the newer segment holds a marker: a sync covered it, and every
    // sync covers the older segments first, so the lost records were durable.
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), manual());
    for i in 0..40 {
        db.put(key(i), vec![b'x'; 300]).unwrap();
    }
    db.sync().unwrap();
    db.put("after the sync", "x").unwrap();
    let copy_dir = tempfile::tempdir().unwrap();
    copy_live(dir.path(), copy_dir.path());
    drop(db);
    let segments = logs(copy_dir.path());
    std::fs::write(&segments[0], b"").unwrap();
    assert!(matches!(
        Db::open(copy_dir.path()),
        Err(Error::Corruption { .. })
    ));
}

#[test]
fn damage_in_a_frozen_segment_left_at_a_clean_close_is_corruption() {
    // Close syncs the segments of frozen memtables it leaves behind and ends each with a
    // marker, so damage in one is reported, not dropped as a tail with the writes after it.
    // Writes stop right after a freeze, so the active segment is empty at close and the
    // newest frozen segment is the last that holds records: nothing after it would give
    // its damage away.
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), manual());
    let mut i = 0;
    while logs(dir.path()).len() < 3 {
        db.put(key(i), vec![b'x'; 300]).unwrap();
        i += 1;
    }
    db.close().unwrap();
    let segments = logs(dir.path());
    let newest = segments.last().unwrap();
    assert_eq!(std::fs::metadata(newest).unwrap().len(), 0, "{segments:?}");
    let frozen = &segments[segments.len() - 2];
    let mut bytes = std::fs::read(frozen).unwrap();
    bytes[20] ^= 0x10;
    std::fs::write(frozen, &bytes).unwrap();
    assert!(matches!(
        Db::open(dir.path()),
        Err(Error::Corruption { .. })
    ));
}
