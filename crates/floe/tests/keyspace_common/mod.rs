//! Helpers shared by the keyspace suites: opening a database and keyspaces with tiny
//! buffers, checking a keyspace against its model, recognizing the keyspace errors, and
//! listing the files a database directory holds.
//!
//! A suite declares `pub mod common;` and `pub mod keyspace_common;`, so that helpers one
//! suite leaves unused are not reported as dead code.

use std::path::Path;

use floe::{Db, Error, Keyspace, KeyspaceOptions};

use crate::common::{self, Model, assert_pairs, collect, collect_rev, model_all};

/// The name of the keyspace that `Db::put`, `Db::get` and the other `Db` methods use.
pub const DEFAULT: &str = "default";

/// Opens `dir` with [`common::tiny_options`].
pub fn open_tiny(dir: &Path) -> Db {
    Db::open_with(dir, common::tiny_options()).expect("open with tiny options")
}

/// The keyspace `name` of `db`, which must open (creating it if missing).
pub fn keyspace(db: &Db, name: &str) -> Keyspace {
    db.keyspace(name)
        .unwrap_or_else(|e| panic!("keyspace({name:?}): {e}"))
}

/// Checks every pair of `ks` against `model`: the whole keyspace both ways, and `get` of
/// every model key and of a few absent ones.
#[track_caller]
pub fn check_keyspace(ks: &Keyspace, model: &Model, what: &str) {
    let label = format!("{what}: keyspace {:?}", ks.name());
    assert_pairs(&collect(ks.iter(), &label), &model_all(model), &label);
    let mut reversed = model_all(model);
    reversed.reverse();
    assert_pairs(
        &collect_rev(ks.iter(), &label),
        &reversed,
        &format!("{label}, iterated backwards"),
    );
    for (key, value) in model {
        let got = ks
            .get(key)
            .unwrap_or_else(|e| panic!("{label}: get({}): {e}", common::show(key)));
        assert_eq!(
            got.as_deref(),
            Some(value.as_slice()),
            "{label}: get({})",
            common::show(key)
        );
    }
    for absent in [&b"\x00absent"[..], b"~absent", b"\xff\xff\xff\xff\xff"] {
        if !model.contains_key(absent) {
            let got = ks
                .get(absent)
                .unwrap_or_else(|e| panic!("{label}: get: {e}"));
            assert_eq!(
                got,
                None,
                "{label}: get({}) of an absent key",
                common::show(absent)
            );
        }
    }
}

/// Every regular file under `dir`, at any depth, as its path below `dir` and its size,
/// sorted by path.
pub fn files_under(dir: &Path) -> Vec<(String, u64)> {
    fn walk(dir: &Path, below: &str, files: &mut Vec<(String, u64)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            let name = format!("{below}{}", entry.file_name().to_string_lossy());
            if kind.is_dir() {
                walk(&entry.path(), &format!("{name}/"), files);
            } else if kind.is_file() {
                files.push((name, entry.metadata().unwrap().len()));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, "", &mut files);
    files.sort();
    files
}

/// The bytes of the files under `dir` other than manifests, whose edit history may
/// legitimately grow with every flush, compaction, creation and drop.
pub fn bytes_besides_manifests(dir: &Path) -> u64 {
    files_under(dir)
        .iter()
        .filter(|(path, _)| {
            !path
                .rsplit('/')
                .next()
                .unwrap_or(path)
                .starts_with("MANIFEST")
        })
        .map(|(_, size)| size)
        .sum()
}

/// The names of the table files (`.sst`) under `dir`, at any depth.
pub fn tables_under(dir: &Path) -> Vec<String> {
    let mut tables = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            tables.extend(tables_under(&path));
        } else if path.extension().is_some_and(|e| e == "sst") {
            tables.push(path.display().to_string());
        }
    }
    tables.sort();
    tables
}

/// Whether `err` is [`Error::KeyspaceDropped`].
pub fn is_dropped(err: &Error) -> bool {
    matches!(err, Error::KeyspaceDropped { .. })
}

/// Whether `err` is [`Error::InvalidArgument`].
pub fn is_invalid(err: &Error) -> bool {
    matches!(err, Error::InvalidArgument { .. })
}

/// The keyspace `name` of `db`, created with a 1 KiB write buffer and 64-byte blocks if
/// missing.
pub fn keyspace_with_tiny(db: &Db, name: &str) -> Keyspace {
    db.keyspace_with(
        name,
        KeyspaceOptions::default()
            .write_buffer_size(1024)
            .block_size(64),
    )
    .unwrap_or_else(|e| panic!("keyspace_with({name:?}): {e}"))
}
