//! Every command of the `floe` binary on a real database in a temporary directory, in
//! human form and with `--json` parsed back.

mod common;

use common::{command, files_ending, floe, name, new_db, synced_segment};
use floe::Db;
use serde_json::{Value, json};

/// The keys of a `scan --json` result.
fn keys(scan: &Value) -> Vec<String> {
    scan.as_array()
        .expect("an array")
        .iter()
        .map(|pair| pair["key"].as_str().expect("a key").to_owned())
        .collect()
}

#[test]
fn put_get_delete_and_scan() {
    let (_tmp, db) = new_db();
    for (key, value) in [("apple", "red"), ("avocado", "green"), ("banana", "yellow")] {
        floe(&db, &["put", key, value]).ok();
    }
    assert_eq!(floe(&db, &["get", "apple"]).ok(), "red\n");
    assert_eq!(
        floe(&db, &["--json", "get", "banana"]).json(),
        json!({"key": "banana", "value": "yellow"})
    );
    floe(&db, &["delete", "banana"]).ok();
    let missing = floe(&db, &["get", "banana"]);
    assert!(missing.fails(1).contains("not found"), "{missing:?}");
    assert_eq!(missing.stdout, "");

    assert_eq!(
        floe(&db, &["scan"]).ok(),
        "apple\tred\navocado\tgreen\nseed\t1\n"
    );
    let all = floe(&db, &["--json", "scan"]).json();
    assert_eq!(all[1], json!({"key": "avocado", "value": "green"}));
    assert_eq!(keys(&all), ["apple", "avocado", "seed"]);
    assert_eq!(
        keys(&floe(&db, &["--json", "scan", "--prefix", "a"]).json()),
        ["apple", "avocado"]
    );
    assert_eq!(
        keys(&floe(&db, &["--json", "scan", "--from", "ap", "--to", "s"]).json()),
        ["apple", "avocado"]
    );
    assert_eq!(
        keys(&floe(&db, &["--json", "scan", "--reverse", "--limit", "2"]).json()),
        ["seed", "avocado"]
    );
    assert_eq!(
        keys(&floe(&db, &["--json", "scan", "--from", "z", "--to", "a"]).json()),
        Vec::<String>::new()
    );
}

#[test]
fn delete_range_deletes_from_included_to_excluded() {
    let (_tmp, db) = new_db();
    for key in ["a", "b", "c", "d"] {
        floe(&db, &["put", key, "v"]).ok();
    }
    floe(&db, &["delete-range", "b", "d"]).ok();
    assert_eq!(
        keys(&floe(&db, &["--json", "scan"]).json()),
        ["a", "d", "seed"]
    );
}

#[test]
fn hex_and_base64_switch_input_and_output() {
    let (_tmp, db) = new_db();
    floe(&db, &["--hex", "put", "00ff", "0a0b"]).ok();
    // The same key in the three notations.
    assert_eq!(floe(&db, &["--hex", "get", "00FF"]).ok(), "0a0b\n");
    assert_eq!(floe(&db, &["--base64", "get", "AP8="]).ok(), "Cgs=\n");
    assert_eq!(floe(&db, &["get", "\\x00\\xff"]).ok(), "\\n\\x0b\n");
    let scan = floe(&db, &["--base64", "--json", "scan", "--limit", "1"]).json();
    assert_eq!(scan, json!([{"key": "AP8=", "value": "Cgs="}]));
    // Text that is printable shows as itself, whatever the script.
    floe(&db, &["put", "clé", "värde"]).ok();
    assert_eq!(floe(&db, &["get", "clé"]).ok(), "värde\n");
}

#[test]
fn keyspaces_are_created_only_when_asked() {
    let (_tmp, db) = new_db();
    let refused = floe(&db, &["put", "--keyspace", "users", "u1", "Ada"]);
    assert!(
        refused.fails(1).contains("no keyspace \"users\""),
        "{refused:?}"
    );
    floe(
        &db,
        &["--create", "put", "--keyspace", "users", "u1", "Ada"],
    )
    .ok();
    assert_eq!(
        floe(&db, &["get", "--keyspace", "users", "u1"]).ok(),
        "Ada\n"
    );
    floe(&db, &["get", "u1"]).fails(1);
    assert_eq!(floe(&db, &["keyspaces"]).ok(), "default\nusers\n");
    assert_eq!(
        floe(&db, &["--json", "keyspaces"]).json(),
        json!(["default", "users"])
    );
    let scan = floe(&db, &["--json", "scan", "--keyspace", "users"]).json();
    assert_eq!(scan, json!([{"key": "u1", "value": "Ada"}]));
}

#[test]
fn stats_flush_and_compact() {
    let (_tmp, db) = new_db();
    for i in 0..50 {
        floe(&db, &["put", &format!("key{i:03}"), "value"]).ok();
    }
    assert_eq!(floe(&db, &["flush"]).ok(), "flushed\n");
    let stats = floe(&db, &["--json", "stats"]).json();
    assert_eq!(stats["levels"].as_array().map(Vec::len), Some(7));
    assert!(stats["tables"].as_u64() >= Some(1), "{stats}");
    assert!(stats["table_bytes"].as_u64() > Some(0), "{stats}");
    assert_eq!(stats["keyspaces"], json!(["default"]));
    assert!(
        stats["space_amplification"].as_f64() >= Some(1.0),
        "{stats}"
    );
    let human = floe(&db, &["stats"]);
    assert!(human.ok().starts_with("level "), "{human:?}");
    assert!(human.ok().contains("space amplification"), "{human:?}");

    assert!(
        floe(&db, &["compact"])
            .ok()
            .starts_with("compacted: 1 tables")
    );
    let stats = floe(&db, &["--json", "stats"]).json();
    let levels = stats["levels"].as_array().expect("levels");
    let occupied: Vec<u64> = levels
        .iter()
        .filter(|level| level["tables"].as_u64() > Some(0))
        .map(|level| level["level"].as_u64().expect("a level"))
        .collect();
    assert_eq!(occupied, [6], "{stats}");
    assert_eq!(floe(&db, &["get", "key049"]).ok(), "value\n");
}

#[test]
fn a_checkpoint_opens_with_the_data() {
    let (tmp, db) = new_db();
    floe(&db, &["put", "k", "v"]).ok();
    let copy = tmp.path().join("copy");
    let copy_arg = copy.to_str().expect("a UTF-8 path");
    let run = floe(&db, &["checkpoint", copy_arg]);
    assert!(run.ok().contains("checkpoint written"), "{run:?}");
    assert_eq!(floe(&copy, &["get", "k"]).ok(), "v\n");
    // The directory must not exist yet.
    floe(&db, &["checkpoint", copy_arg]).fails(1);
}

#[test]
fn manifest_lists_the_edits_and_the_tables_they_leave() {
    let (_tmp, db) = new_db();
    floe(
        &db,
        &["--create", "put", "--keyspace", "users", "u1", "Ada"],
    )
    .ok();
    floe(&db, &["flush"]).ok();
    let manifest = floe(&db, &["--json", "manifest"]).json();
    let edits = manifest["edits"].as_array().expect("edits");
    assert!(!edits.is_empty());
    assert_eq!(edits[0]["offset"], json!(0));
    assert!(
        edits
            .iter()
            .any(|e| e["created_keyspace"] == json!("users"))
    );
    let spaces = manifest["keyspaces"].as_array().expect("keyspaces");
    let names: Vec<&str> = spaces.iter().filter_map(|k| k["name"].as_str()).collect();
    assert_eq!(names, ["default", "users"]);
    // Every table the manifest leaves is a file of the directory, of the recorded size.
    let mut listed = 0;
    for keyspace in spaces {
        for table in keyspace["tables"].as_array().expect("tables") {
            let number = table["number"].as_u64().expect("a number");
            let path = db.join(format!("{number:06}.sst"));
            let len = std::fs::metadata(&path).expect("the table exists").len();
            assert_eq!(table["bytes"].as_u64(), Some(len));
            listed += 1;
        }
    }
    assert!(listed >= 2, "{manifest}");
    let human = floe(&db, &["manifest"]);
    assert!(human.ok().starts_with("MANIFEST-"), "{human:?}");
    assert!(human.ok().contains("create \"users\""), "{human:?}");
}

#[test]
fn dump_table_shows_entries_and_range_tombstones() {
    let (_tmp, db) = new_db();
    floe(&db, &["put", "apple", "red"]).ok();
    floe(&db, &["delete", "pear"]).ok();
    floe(&db, &["delete-range", "x", "z"]).ok();
    // Each open flushes what the log holds, so the newest table holds the last write.
    floe(&db, &["flush"]).ok();
    let tables = files_ending(&db, ".sst");
    let dumps: Vec<Value> = tables
        .iter()
        .map(|table| {
            let path = table.to_str().expect("a UTF-8 path");
            floe(&db, &["--json", "dump-table", path]).json()
        })
        .collect();
    let entries: Vec<(String, String, String)> = dumps
        .iter()
        .flat_map(|dump| dump["listed"].as_array().expect("entries").clone())
        .map(|entry| {
            let field = |name: &str| entry[name].as_str().expect("a string").to_owned();
            (field("key"), field("kind"), field("value"))
        })
        .collect();
    assert!(entries.contains(&("apple".into(), "put".into(), "red".into())));
    assert!(entries.contains(&("pear".into(), "delete".into(), String::new())));
    let fragments: Vec<&Value> = dumps
        .iter()
        .flat_map(|dump| dump["range_tombstones"].as_array().expect("fragments"))
        .collect();
    assert_eq!(fragments.len(), 1, "{dumps:?}");
    assert_eq!(fragments[0]["start"], json!("x"));
    assert_eq!(fragments[0]["end"], json!("z"));
    for dump in &dumps {
        let listed = dump["listed"].as_array().map(Vec::len);
        assert_eq!(dump["entries"].as_u64(), listed.map(|n| n as u64));
        assert!(dump["bytes"].as_u64() > Some(64));
    }
    let apple_table = tables
        .iter()
        .zip(&dumps)
        .find(|(_, dump)| dump["smallest"]["key"] == json!("apple"))
        .map(|(path, _)| path.to_str().expect("a UTF-8 path"))
        .expect("a table starts at apple");
    let human = floe(&db, &["dump-table", apple_table]);
    assert!(human.ok().contains("  apple @"), "{human:?}");
    assert!(human.ok().contains(" put = red"), "{human:?}");
    assert_eq!(
        floe(&db, &["--json", "dump-table", "--limit", "0", apple_table]).json()["listed"],
        json!([])
    );
}

#[test]
fn dump_log_shows_each_record_with_its_offset_and_writes() {
    let (_tmp, db) = new_db();
    let segment = synced_segment(&db, 3);
    let path = segment.to_str().expect("a UTF-8 path");
    let dump = floe(&db, &["--json", "dump-log", path]).json();
    let records = dump["records"].as_array().expect("records");
    assert_eq!(records.len(), 3, "{dump}");
    assert_eq!(records[0]["offset"], json!(0));
    let mut last_offset = None;
    for (i, record) in records.iter().enumerate() {
        let offset = record["offset"].as_u64().expect("an offset");
        assert!(last_offset < Some(offset));
        last_offset = Some(offset);
        let writes = record["writes"].as_array().expect("writes");
        assert_eq!(writes.len(), 2);
        assert_eq!(writes[0]["kind"], json!("put"));
        assert_eq!(writes[0]["key"], json!(format!("k{i}")));
        assert_eq!(writes[0]["value"], json!(format!("v{i}")));
        assert_eq!(writes[0]["keyspace_name"], json!("default"));
        assert_eq!(
            writes[1]["seqno"].as_u64(),
            writes[0]["seqno"].as_u64().map(|s| s + 1)
        );
    }
    // A clean close synced the whole segment and says so.
    assert_eq!(
        dump["durable_through"].as_u64(),
        dump["bytes"].as_u64().map(|b| b - 15)
    );
    let human = floe(&db, &["dump-log", path]);
    assert!(human.ok().contains("record at offset 0 ("), "{human:?}");
    assert!(human.ok().contains(" put [default] k1 = v1"), "{human:?}");
    assert!(name(&segment).ends_with(".log"));
}

#[test]
fn the_directory_comes_from_floe_db_too() {
    let (_tmp, db) = new_db();
    let output = command()
        .env("FLOE_DB", &db)
        .args(["get", "seed"])
        .output()
        .expect("the binary runs");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "1\n");
    assert!(output.status.success());
}

#[test]
fn read_only_reads_while_another_process_holds_the_database() {
    let (_tmp, db) = new_db();
    let handle = Db::open(&db).expect("the database opens");
    handle.put("live", "yes").expect("a write");
    handle.sync().expect("a sync");
    assert_eq!(floe(&db, &["--read-only", "get", "live"]).ok(), "yes\n");
    assert_eq!(
        keys(&floe(&db, &["--read-only", "--json", "scan"]).json()),
        ["live", "seed"]
    );
    assert_eq!(floe(&db, &["--read-only", "keyspaces"]).ok(), "default\n");
    floe(&db, &["--read-only", "--json", "stats"]).json();
    floe(&db, &["--read-only", "--json", "manifest"]).json();
    // A write through a read-only open is refused.
    let refused = floe(&db, &["--read-only", "put", "a", "b"]);
    assert!(refused.fails(1).contains("read-only"), "{refused:?}");
    handle.close().expect("a clean close");
}
