//! The life of a keyspace through the public API: the rules for names, creation made
//! durable, drop made durable with the keyspace's files deleted and its name reusable,
//! and handles of a dropped keyspace that fail with `Error::KeyspaceDropped` instead of
//! panicking or reaching the keyspace that reuses the name.

pub mod common;
pub mod keyspace_common;

use common::Model;
use floe::{Bytes, KeyspaceOptions, Result, WriteBatch};
use keyspace_common::{
    DEFAULT, bytes_besides_manifests, check_keyspace, files_under, is_dropped, is_invalid,
    keyspace, keyspace_with_tiny, open_tiny, tables_under,
};

/// Catches a name check that lets through what the contract refuses (empty, over 255
/// bytes, a `/`, a control character) or refuses what it allows (255 bytes, multi-byte
/// characters, spaces), and a refused name that still leaves a trace.
#[test]
fn invalid_keyspace_names_are_invalid_argument_and_edge_names_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    // 254 ASCII bytes and a two-byte character: 256 bytes in 255 characters.
    let over_by_a_char = format!("{}é", "x".repeat(254));
    let invalid: Vec<String> = vec![
        String::new(),
        "x".repeat(256),
        "y".repeat(1000),
        over_by_a_char,
        "/".to_owned(),
        "a/b".to_owned(),
        "trailing/".to_owned(),
        "new\nline".to_owned(),
        "nul\0".to_owned(),
        "\t".to_owned(),
        "bell\x07".to_owned(),
        "del\x7f".to_owned(),
        "next line\u{85}".to_owned(),
    ];
    for name in &invalid {
        match db.keyspace(name) {
            Err(e) if is_invalid(&e) => {}
            Err(e) => panic!("keyspace({name:?}) failed with {e:?}, not InvalidArgument"),
            Ok(_) => panic!("keyspace({name:?}) accepted an invalid name"),
        }
        match db.keyspace_with(name, KeyspaceOptions::default()) {
            Err(e) if is_invalid(&e) => {}
            other => panic!(
                "keyspace_with({name:?}) returned {:?}, not InvalidArgument",
                other.map(|ks| ks.name().to_owned())
            ),
        }
        match db.drop_keyspace(name) {
            Err(e) if is_invalid(&e) => {}
            other => panic!("drop_keyspace({name:?}) returned {other:?}, not InvalidArgument"),
        }
    }
    assert_eq!(
        db.keyspace_names(),
        vec![DEFAULT.to_owned()],
        "refused names left a trace"
    );

    // 253 ASCII bytes and a two-byte character: exactly 255 bytes.
    let valid: Vec<String> = vec![
        "v".repeat(255),
        format!("{}é", "x".repeat(253)),
        "a".to_owned(),
        "with spaces".to_owned(),
        "dots.and-dashes_and~tildes".to_owned(),
        "\\backslash".to_owned(),
        "日本語のキー".to_owned(),
        "emoji 🦀".to_owned(),
        "..".to_owned(),
        ".".to_owned(),
    ];
    for name in &valid {
        let ks = db
            .keyspace(name)
            .unwrap_or_else(|e| panic!("keyspace({name:?}) refused a valid name: {e}"));
        assert_eq!(ks.name(), name);
        ks.put(name, name).unwrap();
    }
    let mut want: Vec<String> = valid.clone();
    want.push(DEFAULT.to_owned());
    want.sort();
    assert_eq!(db.keyspace_names(), want, "names before reopen");
    db.close().unwrap();
    let db = open_tiny(dir.path());
    assert_eq!(db.keyspace_names(), want, "names after reopen");
    for name in &valid {
        let ks = keyspace(&db, name);
        assert_eq!(
            ks.get(name).unwrap().as_deref(),
            Some(name.as_bytes()),
            "{name:?}: its key after reopen"
        );
    }
}

/// Catches `drop_keyspace` removing the default keyspace or succeeding on a name that
/// does not exist (or no longer does).
#[test]
fn dropping_default_or_an_unknown_keyspace_is_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    db.put("k", "v").unwrap();
    match db.drop_keyspace(DEFAULT) {
        Err(e) if is_invalid(&e) => {}
        other => panic!("drop_keyspace(\"default\") returned {other:?}, not InvalidArgument"),
    }
    match db.drop_keyspace("never-created") {
        Err(e) if is_invalid(&e) => {}
        other => panic!("drop_keyspace of an unknown name returned {other:?}"),
    }
    let ks = keyspace(&db, "once");
    db.drop_keyspace("once").unwrap();
    match db.drop_keyspace("once") {
        Err(e) if is_invalid(&e) => {}
        other => panic!("a second drop_keyspace of one name returned {other:?}"),
    }
    drop(ks);
    assert_eq!(db.keyspace_names(), vec![DEFAULT.to_owned()]);
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(
        db.default_keyspace().get("k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    // "default" through `keyspace` is the default keyspace, not a new one.
    let default = keyspace(&db, DEFAULT);
    assert_eq!(default.name(), DEFAULT);
    assert_eq!(default.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(db.keyspace_names(), vec![DEFAULT.to_owned()]);
    drop(default);
    db.close().unwrap();
    let db = open_tiny(dir.path());
    assert_eq!(db.keyspace_names(), vec![DEFAULT.to_owned()]);
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
}

/// Catches a creation that is not durable: a keyspace created and left empty, and one
/// written and flushed, are both there after reopen, each with exactly its own data.
#[test]
fn a_created_keyspace_survives_reopen_empty_or_with_its_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    drop(keyspace(&db, "empty"));
    let full = keyspace(&db, "full");
    let unflushed = keyspace_with_tiny(&db, "unflushed");
    let mut model = Model::new();
    for i in 0..300u32 {
        let (key, value) = (format!("k{i:04}"), format!("value {i} {}", "p".repeat(20)));
        full.put(&key, &value).unwrap();
        model.insert(key.into_bytes(), value.into_bytes());
    }
    db.flush().unwrap();
    unflushed.put("only", "in the log").unwrap();
    drop((full, unflushed));
    db.close().unwrap();

    let db = open_tiny(dir.path());
    assert_eq!(
        db.keyspace_names(),
        vec![
            DEFAULT.to_owned(),
            "empty".into(),
            "full".into(),
            "unflushed".into()
        ]
    );
    check_keyspace(&keyspace(&db, "empty"), &Model::new(), "after reopen");
    check_keyspace(&keyspace(&db, "full"), &model, "after reopen");
    check_keyspace(
        &keyspace(&db, "unflushed"),
        &Model::from([(b"only".to_vec(), b"in the log".to_vec())]),
        "after reopen",
    );
    check_keyspace(&db.default_keyspace(), &Model::new(), "after reopen");
}

/// Catches a drop that leaves the keyspace's tables on disk, that a reopen undoes, or
/// whose data comes back when the name is created again.
#[test]
fn a_dropped_keyspace_stays_gone_after_reopen_and_its_files_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    db.close().unwrap();
    let db = open_tiny(dir.path());
    let files_before = files_under(dir.path());
    let bytes_before = bytes_besides_manifests(dir.path());
    assert!(
        tables_under(dir.path()).is_empty(),
        "an empty database has no tables"
    );

    let doomed = keyspace_with_tiny(&db, "doomed");
    for i in 0..2000u32 {
        doomed
            .put(format!("k{i:05}"), format!("value {i} {}", "d".repeat(40)))
            .unwrap();
    }
    db.flush().unwrap();
    let tables = tables_under(dir.path());
    let bytes_full = bytes_besides_manifests(dir.path());
    assert!(
        !tables.is_empty() && bytes_full > bytes_before + 50_000,
        "the keyspace's writes made no tables: {tables:?}, {bytes_full} bytes"
    );

    db.drop_keyspace("doomed").unwrap();
    assert_eq!(db.keyspace_names(), vec![DEFAULT.to_owned()]);
    drop(doomed);
    let again = keyspace(&db, "doomed");
    check_keyspace(&again, &Model::new(), "recreated before reopen");
    drop(again);
    db.drop_keyspace("doomed").unwrap();
    db.close().unwrap();

    let db = open_tiny(dir.path());
    assert_eq!(
        db.keyspace_names(),
        vec![DEFAULT.to_owned()],
        "after reopen"
    );
    db.close().unwrap();
    let db = open_tiny(dir.path());
    let remaining = tables_under(dir.path());
    let files_after = files_under(dir.path());
    let bytes_after = bytes_besides_manifests(dir.path());
    println!(
        "besides manifests: {bytes_before} bytes before, {bytes_full} bytes in {} tables and \
         the rest with the keyspace, {bytes_after} bytes after the drop and two reopens; \
         files now {files_after:?}",
        tables.len()
    );
    assert!(
        remaining.is_empty(),
        "tables of the dropped keyspace remain after reopen: {remaining:?}"
    );
    // The log may hold the creation and drop records; the 2000 entries (over 100 KB)
    // must be gone.
    assert!(
        bytes_after < bytes_before + 20_000,
        "the directory holds {bytes_after} bytes besides manifests after the drop, \
         {bytes_before} before the keyspace existed: {files_after:?} now, {files_before:?} then"
    );
    let again = keyspace(&db, "doomed");
    check_keyspace(&again, &Model::new(), "recreated after reopen");
}

/// Catches a handle of a dropped keyspace that panics, reads or writes anything (in
/// particular the new keyspace of the same name), or half-applies a batch that names it.
#[test]
fn a_handle_used_after_drop_returns_keyspace_dropped_and_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    let old = keyspace_with_tiny(&db, "gone");
    let live = keyspace(&db, "live");
    for i in 0..500u32 {
        old.put(format!("k{i:04}"), format!("old {i}")).unwrap();
    }
    db.flush().unwrap();
    old.put("in memtable", "old").unwrap();
    let clone = old.clone();
    let snapshot = old.snapshot();
    // An iterator created before the drop may finish or fail, but never panic.
    let mut early = old.iter();
    let _ = early.next();
    db.drop_keyspace("gone").unwrap();
    for item in early {
        if item.is_err() {
            break;
        }
    }

    // Recreated under the same name: the old handles must not reach the new keyspace.
    let new = keyspace(&db, "gone");
    new.put("k0000", "new").unwrap();

    for (what, handle) in [("the dropped handle", &old), ("its clone", &clone)] {
        assert_eq!(handle.name(), "gone", "{what}: name");
        expect_dropped(handle.get("k0000"), what, "get");
        expect_dropped(handle.get("in memtable"), what, "get");
        expect_dropped(handle.put("k0001", "after drop"), what, "put");
        expect_dropped(handle.delete("k0000"), what, "delete");
        expect_dropped_iter(handle.iter(), what, "iter");
        expect_dropped_iter(handle.iter().rev(), what, "iter backwards");
        expect_dropped_iter(handle.range("k0"..), what, "range");
        expect_dropped_iter(handle.prefix("k"), what, "prefix");
        expect_dropped(handle.snapshot().get("k0000"), what, "a new snapshot's get");
        expect_dropped_iter(handle.snapshot().iter(), what, "a new snapshot's iter");
        expect_dropped(
            db.snapshot().keyspace(handle).get("k0000"),
            what,
            "Snapshot::keyspace then get",
        );
    }
    // A snapshot taken before the drop: reads fail or see the old data, never panic.
    if let Ok(value) = snapshot.get("k0000") {
        assert_eq!(
            value.as_deref(),
            Some(&b"old 0"[..]),
            "the old snapshot read new data"
        );
    }

    // A batch naming the dropped handle fails as a whole.
    let mut batch = WriteBatch::new();
    batch.put_in(&live, "from the batch", "must not land");
    batch.put_in(&old, "k0002", "must not land");
    batch.put("default key", "must not land");
    match db.write(batch) {
        Err(e) if is_dropped(&e) || is_invalid(&e) => {}
        other => panic!("a batch with a dropped keyspace's entry returned {other:?}"),
    }
    assert_eq!(
        live.get("from the batch").unwrap(),
        None,
        "half a failed batch was applied"
    );
    assert_eq!(
        db.get("default key").unwrap(),
        None,
        "half a failed batch was applied"
    );

    let want = Model::from([(b"k0000".to_vec(), b"new".to_vec())]);
    check_keyspace(&new, &want, "the recreated keyspace");
    assert_eq!(
        db.keyspace_names(),
        vec![DEFAULT.to_owned(), "gone".into(), "live".into()]
    );
    drop((new, live));
    // After reopen the old handles still fail cleanly (they outlived their database).
    db.close().unwrap();
    expect_dropped_or_closed(old.get("k0000"), "the dropped handle after close");
    let db = open_tiny(dir.path());
    check_keyspace(
        &keyspace(&db, "gone"),
        &want,
        "the recreated keyspace after reopen",
    );
}

#[track_caller]
fn expect_dropped<T: std::fmt::Debug>(result: Result<T>, what: &str, call: &str) {
    match result {
        Err(e) if is_dropped(&e) => {
            assert!(
                !e.to_string().is_empty(),
                "{what}: {call}: an empty message"
            );
        }
        other => panic!("{what}: {call} returned {other:?}, not Error::KeyspaceDropped"),
    }
}

#[track_caller]
fn expect_dropped_iter(iter: impl Iterator<Item = Result<(Bytes, Bytes)>>, what: &str, call: &str) {
    let items: Vec<_> = iter.take(3).collect();
    match items.as_slice() {
        [Err(e)] if is_dropped(e) => {}
        other => panic!(
            "{what}: {call} yielded {other:?}, not one Error::KeyspaceDropped and nothing after"
        ),
    }
}

/// A handle used after its database closed may report the drop or the closed database,
/// but nothing else.
#[track_caller]
fn expect_dropped_or_closed<T: std::fmt::Debug>(result: Result<T>, what: &str) {
    if let Ok(value) = result {
        panic!("{what}: returned Ok({value:?})");
    }
}
