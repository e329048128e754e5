//! Files in the database directory that the manifest does not know: strays with extreme
//! numbers, segments newer than the manifest, a FIFO; and file numbers running out.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use super::{dump, open};
use crate::filename::{FileKind, log_path, parse_file_name};
use crate::sync::lock;
use crate::version::manifest::{read_current, replay_manifest};
use crate::{Db, Error, Options};

/// Small memtables, so that every cycle of [`write_reopen_cycles`] freezes and flushes
/// several times and draws many file numbers.
fn small() -> Options {
    Options::default()
        .write_buffer_size(4 << 10)
        .block_size(256)
}

/// The numbered files in `dir`.
fn numbered_files(dir: &Path) -> Vec<FileKind> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| parse_file_name(e.unwrap().file_name().to_str().unwrap()))
        .filter(|kind| {
            matches!(
                kind,
                FileKind::Log(_) | FileKind::Table(_) | FileKind::Manifest(_)
            )
        })
        .collect()
}

/// Copies every regular file of `from` into `to`: what a crash at this instant leaves
/// (mapped log appends are in the page cache, which the copy reads).
fn crash_image(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Opens `dir` four times (the first open and three reopens), each time checking that
/// `gone` does not exist and that every write of the earlier cycles is there, then
/// writing enough for several flushes and, every other cycle, flushing explicitly.
/// `model` holds what the database holds before the first open.
fn write_reopen_cycles(dir: &Path, gone: &Path, mut model: BTreeMap<Vec<u8>, Vec<u8>>) {
    for cycle in 0..4u32 {
        let db = Db::open_with(dir, small())
            .unwrap_or_else(|err| panic!("open in cycle {cycle} failed: {err}"));
        assert!(
            !gone.exists(),
            "{} is still there after open {cycle}",
            gone.display()
        );
        assert_eq!(dump(&db), model.clone().into_iter().collect::<Vec<_>>());
        for i in 0..300u32 {
            let key = format!("c{cycle}-{i:04}").into_bytes();
            let value = format!("value {i} of cycle {cycle}").into_bytes();
            db.put(&key, &value).unwrap();
            model.insert(key, value);
        }
        if cycle % 2 == 0 {
            db.flush().unwrap();
        }
        db.close().unwrap();
    }
    let db = open(dir, small());
    assert_eq!(dump(&db), model.into_iter().collect::<Vec<_>>());
}

/// A database with one key, closed, with `name` (holding `contents`) put beside it.
fn live_database_with_stray(name: &str, contents: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), small());
    db.put("live", "data").unwrap();
    db.close().unwrap();
    std::fs::write(dir.path().join(name), contents).unwrap();
    dir
}

#[test]
fn a_stray_table_numbered_u64_max_is_removed_and_writes_go_on() {
    let name = "18446744073709551615.sst";
    let dir = live_database_with_stray(name, b"not a table");
    write_reopen_cycles(
        dir.path(),
        &dir.path().join(name),
        model_of(&[("live", "data")]),
    );
}

#[test]
fn an_empty_stray_log_numbered_u64_max_is_removed_and_writes_go_on() {
    let name = "18446744073709551615.log";
    let dir = live_database_with_stray(name, b"");
    write_reopen_cycles(
        dir.path(),
        &dir.path().join(name),
        model_of(&[("live", "data")]),
    );
}

#[test]
fn a_zero_filled_stray_log_numbered_u64_max_is_removed_and_writes_go_on() {
    // A log that is all zeros reads as a torn tail that holds no record.
    let name = "18446744073709551615.log";
    let dir = live_database_with_stray(name, &[0; 40 << 10]);
    write_reopen_cycles(
        dir.path(),
        &dir.path().join(name),
        model_of(&[("live", "data")]),
    );
}

#[test]
fn a_stray_manifest_numbered_u64_max_is_removed_and_writes_go_on() {
    let name = "MANIFEST-18446744073709551615";
    let dir = live_database_with_stray(name, b"not a manifest");
    write_reopen_cycles(
        dir.path(),
        &dir.path().join(name),
        model_of(&[("live", "data")]),
    );
}

/// Opens a database, writes `before`, then switches to a new segment while the flush of
/// the frozen memtable cannot record its manifest edit, so the new segment's number is
/// at or above the manifest's next file number; writes `after` (if any) into it and takes
/// a crash image into `image`. Returns the new segment's number.
fn crash_with_a_segment_newer_than_the_manifest(image: &Path, after: Option<&str>) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), small());
    db.put("before", "the switch").unwrap();
    let shared = db.shared();
    let segment = {
        let mut log = lock(&shared.log);
        // Held until the image is taken: the flush worker writes its table but blocks
        // before its manifest edit. Nothing here waits for the flush while holding the
        // log (one frozen memtable is within the limit), so the put below cannot deadlock.
        let manifest = lock(&shared.manifest);
        shared
            .freeze_locked(&mut log, &[crate::keyspace::DEFAULT_ID])
            .unwrap();
        let segment = log.number();
        drop(log);
        if let Some(value) = after {
            db.put("after", value).unwrap();
        }
        crash_image(dir.path(), image);
        drop(manifest);
        segment
    };
    db.close().unwrap();
    segment
}

/// The next file number the manifest of `dir` records.
fn manifest_next_file_number(dir: &Path) -> u64 {
    let fs = floe_core::fs::StdFs;
    let number = read_current(&fs, dir).unwrap().expect("CURRENT");
    replay_manifest(&fs, dir, number)
        .unwrap()
        .into_iter()
        .filter_map(|edit| edit.next_file_number)
        .max()
        .expect("a next file number")
}

#[test]
fn a_segment_newer_than_the_manifest_with_writes_is_replayed_and_its_number_not_reused() {
    let image = tempfile::tempdir().unwrap();
    let segment = crash_with_a_segment_newer_than_the_manifest(image.path(), Some("switch"));
    assert!(segment >= manifest_next_file_number(image.path()));
    let db = open(image.path(), small());
    assert_eq!(db.get("after").unwrap().as_deref(), Some(&b"switch"[..]));
    // The replayed segment is deleted, and every file open made is numbered past it
    // (the table of the replayed writes, the new segment).
    let state = db.shared().state.load();
    assert!(state.log_number > segment);
    assert!(
        state
            .default_tree()
            .version
            .tables()
            .all(|t| t.number() > segment)
    );
    drop(state);
    assert!(!log_path(image.path(), segment).exists());
    db.close().unwrap();
    let model = model_of(&[("before", "the switch"), ("after", "switch")]);
    write_reopen_cycles(image.path(), &log_path(image.path(), segment), model);
}

#[test]
fn a_segment_newer_than_the_manifest_without_writes_is_an_orphan() {
    let image = tempfile::tempdir().unwrap();
    let segment = crash_with_a_segment_newer_than_the_manifest(image.path(), None);
    assert!(segment >= manifest_next_file_number(image.path()));
    let orphan = log_path(image.path(), segment);
    assert!(orphan.exists());
    let db = open(image.path(), small());
    assert_eq!(
        db.get("before").unwrap().as_deref(),
        Some(&b"the switch"[..])
    );
    // The counter did not move past the orphan: its number went to the first file open
    // made, the table of the replayed writes.
    let version = Arc::clone(&db.shared().state.load().default_tree().version);
    assert!(version.tables().any(|t| t.number() == segment));
    db.close().unwrap();
    write_reopen_cycles(image.path(), &orphan, model_of(&[("before", "the switch")]));
}

fn model_of(pairs: &[(&str, &str)]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

#[test]
fn file_number_allocation_at_the_largest_number_is_an_error_not_a_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), small());
    let shared = db.shared();
    shared.file_numbers.set(u64::MAX - 1);
    assert_eq!(shared.file_numbers.allocate().unwrap(), u64::MAX - 1);
    for _ in 0..2 {
        let err = shared.file_numbers.allocate().unwrap_err();
        assert!(matches!(err, Error::Corruption { .. }), "{err}");
        assert!(err.to_string().contains("exhausted"), "{err}");
    }
    assert_eq!(shared.file_numbers.peek(), u64::MAX);
    db.close().unwrap();
}

#[test]
fn running_out_of_file_numbers_while_open_poisons_and_reopen_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), small());
    db.put("k", "v").unwrap();
    // One number is left: the switch takes it for its segment, the flush finds none.
    db.shared().file_numbers.set(u64::MAX - 1);
    let err = db.flush().unwrap_err();
    match &err {
        Error::Poisoned { first } => {
            assert!(matches!(**first, Error::Corruption { .. }), "{err}");
            assert!(first.to_string().contains("exhausted"), "{err}");
        }
        other => panic!("expected Poisoned, got {other}"),
    }
    assert!(matches!(db.put("k2", "v2"), Err(Error::Poisoned { .. })));
    drop(db);
    // The new segment, numbered u64::MAX - 1, holds no record: an orphan.
    let orphan = log_path(dir.path(), u64::MAX - 1);
    write_reopen_cycles(dir.path(), &orphan, model_of(&[("k", "v")]));
}

#[test]
fn a_manifest_whose_numbers_are_exhausted_fails_open_with_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), small());
    db.put("k", "v").unwrap();
    // The switch and the flush take the last numbers but one, and the flush's manifest
    // edit records the next file number u64::MAX - 1: the next open needs two numbers.
    db.shared().file_numbers.set(u64::MAX - 3);
    db.flush().unwrap();
    db.close().unwrap();
    let err = Db::open_with(dir.path(), small()).unwrap_err();
    assert!(matches!(err, Error::Corruption { .. }), "{err}");
    assert!(err.to_string().contains("exhausted"), "{err}");
    // The failed open created nothing.
    for kind in numbered_files(dir.path()) {
        if let FileKind::Log(n) | FileKind::Manifest(n) = kind {
            assert!(n < u64::MAX - 1, "{kind:?}");
        }
    }
}

#[test]
#[cfg(unix)]
fn a_fifo_named_like_a_log_fails_open_promptly_naming_it() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), small());
    db.put("k", "v").unwrap();
    db.close().unwrap();
    let fifo = dir.path().join("999999.log");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: `mkfifo` reads the NUL-terminated path, which outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let (tx, rx) = mpsc::channel();
    let path = dir.path().to_path_buf();
    // Opening a FIFO for reading blocks until a writer comes; if open did that, the
    // thread would hang, so the test waits for it with a timeout instead of joining it.
    std::thread::spawn(move || {
        let _ = tx.send(Db::open_with(&path, small()).map(drop));
    });
    let outcome = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("open blocked on the FIFO");
    let err = outcome.expect_err("open succeeded beside a FIFO named like a log");
    assert!(err.to_string().contains("999999.log"), "{err}");
    assert!(err.to_string().contains("not a regular file"), "{err}");
}
