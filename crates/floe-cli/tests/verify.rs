//! `floe verify` on real databases: clean ones exit 0, a planted bit flip in a table or in
//! a synced log segment exits 2 naming the file and the offset of the damaged structure,
//! and verification changes no file, also while another process holds the database.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{files_ending, flip, floe, name, new_db, synced_segment};
use floe::{Compression, Db, Options};
use serde_json::{Value, json};

/// A database of a few thousand entries in small blocks, flushed to tables and closed.
fn db_with_tables() -> (tempfile::TempDir, PathBuf) {
    db_with_tables_in(Compression::None)
}

/// [`db_with_tables`] with data blocks compressed with `compression`.
fn db_with_tables_in(compression: Compression) -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = new_db();
    let options = Options::default().block_size(512).compression(compression);
    let db = Db::open_with(&dir, options).expect("the database opens");
    for i in 0..5000 {
        db.put(format!("key{i:06}"), format!("value {i}"))
            .expect("a write");
    }
    db.delete_range("key001000".."key001100")
        .expect("a range delete");
    db.flush().expect("a flush");
    db.close().expect("a clean close");
    (tmp, dir)
}

/// The offsets of the data blocks of a table: frames of type 1 (or 6, compressed) laid end
/// to end from byte 0, each `type | len: u32 LE | contents | crc: u32` (`docs/format.md`).
fn data_block_offsets(table: &Path) -> Vec<u64> {
    let bytes = std::fs::read(table).expect("the table reads");
    let mut offsets = Vec::new();
    let mut at = 0usize;
    while matches!(bytes.get(at), Some(&1 | &6)) {
        offsets.push(at as u64);
        let len = u32::from_le_bytes(bytes[at + 1..at + 5].try_into().expect("4 bytes"));
        at += 9 + len as usize;
    }
    offsets
}

/// Every file of `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("the directory lists")
        .map(|entry| {
            let path = entry.expect("an entry").path();
            (name(&path), std::fs::read(&path).expect("the file reads"))
        })
        .collect()
}

/// The damages of a `verify --json` report.
fn damages(report: &Value) -> Vec<(String, u64)> {
    report["files"]
        .as_array()
        .expect("files")
        .iter()
        .flat_map(|file| file["damages"].as_array().expect("damages").clone())
        .chain(report["database"].as_array().expect("database").clone())
        .map(|damage| {
            (
                damage["file"].as_str().expect("a file").to_owned(),
                damage["offset"].as_u64().expect("an offset"),
            )
        })
        .collect()
}

/// Runs `verify --json`, expecting exit status `code`, and parses the report.
fn verify_json(dir: &Path, code: i32) -> Value {
    let run = floe(dir, &["--json", "verify"]);
    assert_eq!(run.code, code, "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    serde_json::from_str(&run.stdout).expect("the report is JSON")
}

#[test]
fn a_clean_database_verifies_and_nothing_changes() {
    let (_tmp, dir) = db_with_tables();
    synced_segment(&dir, 4);
    let before = snapshot(&dir);
    let report = verify_json(&dir, 0);
    assert_eq!(report["clean"], json!(true));
    assert_eq!(damages(&report), []);
    let files = report["files"].as_array().expect("files");
    let kinds: Vec<&str> = files.iter().filter_map(|f| f["kind"].as_str()).collect();
    for kind in ["current", "manifest", "log", "table"] {
        assert!(kinds.contains(&kind), "no {kind} checked: {report}");
    }
    let entries: u64 = files
        .iter()
        .filter(|f| f["kind"] == json!("table"))
        .filter_map(|f| f["entries"].as_u64())
        .sum();
    assert!(entries >= 4900, "{report}");
    let writes: u64 = files
        .iter()
        .filter(|f| f["kind"] == json!("log"))
        .filter_map(|f| f["entries"].as_u64())
        .sum();
    assert_eq!(writes, 8, "{report}");
    let human = floe(&dir, &["verify"]);
    assert!(human.ok().contains("no damage found"), "{human:?}");
    assert!(human.ok().contains("checked "), "{human:?}");
    assert_eq!(snapshot(&dir), before, "verify changed a file");
}

#[test]
fn a_bit_flip_in_a_table_names_the_table_and_the_block() {
    let (_tmp, dir) = db_with_tables();
    let table = files_ending(&dir, ".sst")
        .into_iter()
        .max_by_key(|table| std::fs::metadata(table).map(|m| m.len()).unwrap_or(0))
        .expect("a table");
    let blocks = data_block_offsets(&table);
    assert!(blocks.len() > 10, "{blocks:?}");
    // Two damaged blocks: both are named, and the check went on past the first.
    flip(&table, blocks[3] + 40);
    flip(&table, blocks[7] + 100);
    let report = verify_json(&dir, 2);
    assert_eq!(report["clean"], json!(false));
    assert_eq!(
        damages(&report),
        [(name(&table), blocks[3]), (name(&table), blocks[7])]
    );
    let human = floe(&dir, &["verify"]);
    assert_eq!(human.code, 2, "{human:?}");
    let line = format!("DAMAGED: {} at offset {}: ", name(&table), blocks[3]);
    assert!(human.stdout.contains(&line), "{human:?}");
    assert!(human.stdout.contains("checksum mismatch"), "{human:?}");
}

#[test]
fn a_compressed_database_verifies_and_a_flip_in_a_compressed_block_is_named() {
    for compression in [Compression::Lz4, Compression::Zstd(3)] {
        let (_tmp, dir) = db_with_tables_in(compression);
        verify_json(&dir, 0);
        let table = files_ending(&dir, ".sst")
            .into_iter()
            .max_by_key(|table| std::fs::metadata(table).map(|m| m.len()).unwrap_or(0))
            .expect("a table");
        let bytes = std::fs::read(&table).expect("the table reads");
        let blocks = data_block_offsets(&table);
        let compressed: Vec<u64> = blocks
            .iter()
            .copied()
            .filter(|&at| bytes[at as usize] == 6)
            .collect();
        assert!(compressed.len() > 5, "{compression:?}: {blocks:?}");
        flip(&table, compressed[2] + 12);
        assert_eq!(
            damages(&verify_json(&dir, 2)),
            [(name(&table), compressed[2])],
            "{compression:?}"
        );
    }
}

#[test]
fn a_bit_flip_in_a_table_footer_names_the_footer() {
    let (_tmp, dir) = db_with_tables();
    let table = files_ending(&dir, ".sst").pop().expect("a table");
    let len = std::fs::metadata(&table).expect("metadata").len();
    flip(&table, len - 30);
    assert_eq!(damages(&verify_json(&dir, 2)), [(name(&table), len - 64)]);
}

#[test]
fn a_bit_flip_in_a_synced_log_segment_names_the_segment_and_the_record() {
    let (_tmp, dir) = new_db();
    let segment = synced_segment(&dir, 5);
    let path = segment.to_str().expect("a UTF-8 path");
    let dump = floe(&dir, &["--json", "dump-log", path]).json();
    let offsets: Vec<u64> = dump["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|record| record["offset"].as_u64().expect("an offset"))
        .collect();
    assert_eq!(offsets.len(), 5, "{dump}");
    verify_json(&dir, 0);
    // A payload byte of the third record (past its 7-byte fragment header).
    flip(&segment, offsets[2] + 9);
    let report = verify_json(&dir, 2);
    assert_eq!(damages(&report), [(name(&segment), offsets[2])]);
    let human = floe(&dir, &["verify"]);
    assert_eq!(human.code, 2, "{human:?}");
    let line = format!("DAMAGED: {} at offset {}: ", name(&segment), offsets[2]);
    assert!(human.stdout.contains(&line), "{human:?}");
    assert!(human.stdout.contains("synced"), "{human:?}");
}

#[test]
fn a_missing_table_is_damage_to_the_database() {
    let (_tmp, dir) = db_with_tables();
    let table = files_ending(&dir, ".sst").pop().expect("a table");
    std::fs::remove_file(&table).expect("the table is removed");
    let report = verify_json(&dir, 2);
    assert_eq!(damages(&report), [(name(&table), 0)]);
}

#[test]
fn verify_runs_beside_a_process_that_holds_the_database() {
    let (_tmp, dir) = db_with_tables();
    let db = Db::open(&dir).expect("the database opens");
    db.put("while", "open").expect("a write");
    db.sync().expect("a sync");
    let before = snapshot(&dir);
    let report = verify_json(&dir, 0);
    assert_eq!(report["clean"], json!(true), "{report}");
    assert_eq!(snapshot(&dir), before, "verify changed a file");
    // One thread checks the same files as many.
    let run = floe(&dir, &["--json", "verify", "--threads", "1"]);
    assert_eq!(run.code, 0, "{run:?}");
    db.close().expect("a clean close");
}
