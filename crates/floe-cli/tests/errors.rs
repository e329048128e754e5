//! How the `floe` binary fails: a missing directory, a locked database, a damaged file, a
//! bad argument or an unknown keyspace each give one readable line on stderr and a
//! non-zero exit status (2 for damaged data), never a panic.

mod common;

use common::{files_ending, flip, floe, floe_bare, new_db};
use floe::Db;

#[test]
fn a_missing_directory_is_named() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let missing = tmp.path().join("nowhere");
    for args in [
        &["get", "k"][..],
        &["put", "k", "v"],
        &["scan"],
        &["stats"],
        &["verify"],
        &["manifest"],
        &["keyspaces"],
        &["compact"],
        &["--read-only", "get", "k"],
    ] {
        let run = floe(&missing, args);
        let line = run.fails(1);
        assert!(line.contains("does not exist"), "{args:?}: {line}");
        assert!(line.contains("nowhere"), "{args:?}: {line}");
    }
    assert!(!missing.exists(), "a command created the directory");
    // An existing directory that holds no database is refused too, and left empty.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("a directory");
    assert!(
        floe(&empty, &["get", "k"])
            .fails(1)
            .contains("holds no floe database")
    );
    assert!(
        floe(&empty, &["verify"])
            .fails(1)
            .contains("holds no floe database")
    );
    assert_eq!(std::fs::read_dir(&empty).expect("lists").count(), 0);
    let none = floe_bare(&["get", "k"]);
    assert!(none.fails(1).contains("--db DIR"), "{none:?}");
}

#[test]
fn a_locked_database_is_refused_with_a_hint() {
    let (_tmp, dir) = new_db();
    let db = Db::open(&dir).expect("the database opens");
    for args in [&["get", "seed"][..], &["put", "a", "b"], &["compact"]] {
        let line = floe(&dir, args).fails(1).to_owned();
        assert!(line.contains("open in another process"), "{args:?}: {line}");
        assert!(line.contains("--read-only"), "{args:?}: {line}");
    }
    db.close().expect("a clean close");
    assert_eq!(floe(&dir, &["get", "seed"]).ok(), "1\n");
}

#[test]
fn a_damaged_table_fails_reads_with_status_2() {
    let (_tmp, dir) = new_db();
    floe(&dir, &["flush"]).ok();
    let table = files_ending(&dir, ".sst").pop().expect("a table");
    flip(&table, 3);
    let path = table.to_str().expect("a UTF-8 path");
    let run = floe(&dir, &["dump-table", path]);
    assert!(run.fails(2).contains("corruption"), "{run:?}");
    let run = floe(&dir, &["--read-only", "scan"]);
    assert!(run.fails(2).contains("corruption"), "{run:?}");
    // A damaged footer fails the open itself.
    let len = std::fs::metadata(&table).expect("metadata").len();
    flip(&table, len - 10);
    let run = floe(&dir, &["get", "seed"]);
    assert!(run.fails(2).contains("corruption"), "{run:?}");
}

#[test]
fn a_damaged_current_file_is_reported() {
    let (_tmp, dir) = new_db();
    std::fs::write(dir.join("CURRENT"), b"garbage").expect("CURRENT is written");
    let run = floe(&dir, &["get", "seed"]);
    assert!(run.fails(2).contains("CURRENT"), "{run:?}");
    let run = floe(&dir, &["manifest"]);
    assert!(run.fails(2).contains("CURRENT"), "{run:?}");
    let run = floe(&dir, &["verify"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains("DAMAGED: CURRENT at offset 0"),
        "{run:?}"
    );
}

#[test]
fn bad_arguments_are_named() {
    let (_tmp, dir) = new_db();
    let cases: [(&[&str], &str); 7] = [
        (&["--hex", "get", "zz"], "not a hexadecimal digit"),
        (&["--hex", "put", "abc", "00"], "not an even number"),
        (&["--hex", "put", "00", "0g"], "bad value"),
        (&["--base64", "get", "!!!"], "not base64"),
        (&["get", "a\\q"], "unknown escape"),
        (&["scan", "--prefix", "\\x4"], "bad prefix"),
        (&["delete-range", "a", "\\"], "lone backslash"),
    ];
    for (args, expected) in cases {
        let run = floe(&dir, args);
        let line = run.fails(1);
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    // Nothing was written by the refused commands.
    assert_eq!(floe(&dir, &["scan"]).ok(), "seed\t1\n");
}

#[test]
fn an_unknown_keyspace_is_named() {
    let (_tmp, dir) = new_db();
    for args in [
        &["get", "--keyspace", "ghost", "k"][..],
        &["scan", "--keyspace", "ghost"],
        &["delete", "--keyspace", "ghost", "k"],
        &["--read-only", "get", "--keyspace", "ghost", "k"],
    ] {
        let line = floe(&dir, args).fails(1).to_owned();
        assert!(line.contains("no keyspace \"ghost\""), "{args:?}: {line}");
    }
    assert_eq!(floe(&dir, &["keyspaces"]).ok(), "default\n");
}

#[test]
fn a_missing_file_to_dump_is_named() {
    let (_tmp, dir) = new_db();
    let missing = dir.join("999999.sst");
    let path = missing.to_str().expect("a UTF-8 path");
    assert!(
        floe(&dir, &["dump-table", path])
            .fails(1)
            .contains("999999.sst")
    );
    let missing = dir.join("999999.log");
    let path = missing.to_str().expect("a UTF-8 path");
    assert!(
        floe(&dir, &["dump-log", path])
            .fails(1)
            .contains("999999.log")
    );
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    let run = floe_bare(&["frobnicate"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("frobnicate"), "{run:?}");
    let help = floe_bare(&["--help"]);
    assert_eq!(help.code, 0, "{help:?}");
    assert!(help.stdout.contains("verify"), "{help:?}");
}
