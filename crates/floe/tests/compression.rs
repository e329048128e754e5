//! Compressed tables through the public API: data written with any compression reads back
//! byte-exact with any later setting, per-level and per-keyspace settings take effect,
//! compressed data takes less room, and a damaged compressed block is `Corruption`.

pub mod common;

use std::path::Path;

use common::{Model, collect};
use floe::{Compression, Db, Error, KeyspaceOptions, Options};

/// Every setting the tests cycle through.
const SETTINGS: [Compression; 4] = [
    Compression::None,
    Compression::Lz4,
    Compression::Zstd(3),
    Compression::Zstd(-3),
];

/// Small memtables and tables, so that a few thousand writes make several levels.
fn options(compression: Compression) -> Options {
    Options::default()
        .write_buffer_size(16 << 10)
        .target_file_size(32 << 10)
        .max_bytes_for_level_base(64 << 10)
        .compression(compression)
}

/// A value that compresses about as well as JSON does.
fn json(i: u32) -> String {
    format!(
        "{{\"id\":{i},\"name\":\"user {i}\",\"email\":\"user{i}@example.com\",\"tags\":[\"a\",\"b\"],\"score\":{}}}",
        i * 7 % 1000
    )
}

/// Writes `count` JSON values under `prefix` into `db`, with a delete every tenth key.
fn fill(db: &Db, model: &mut Model, prefix: &str, count: u32) {
    for i in 0..count {
        let key = format!("{prefix}{i:06}");
        if i % 10 == 9 {
            db.delete(&key).unwrap();
            model.remove(key.as_bytes());
        } else {
            db.put(&key, json(i)).unwrap();
            model.insert(key.into_bytes(), json(i).into_bytes());
        }
    }
}

fn check(db: &Db, model: &Model, what: &str) {
    assert_eq!(
        collect(db.iter(), what),
        model
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>(),
        "{what}"
    );
    for (key, value) in model.iter().step_by(37) {
        assert_eq!(db.get(key).unwrap().as_deref(), Some(&value[..]), "{what}");
    }
}

/// The bytes of the tables in `dir`.
fn table_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "sst"))
        .map(|entry| entry.metadata().unwrap().len())
        .sum()
}

#[test]
fn data_written_with_any_compression_reads_back_with_any_other() {
    for written in SETTINGS {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model::new();
        {
            let db = Db::open_with(dir.path(), options(written)).unwrap();
            fill(&db, &mut model, "a", 3000);
            db.flush().unwrap();
            check(&db, &model, &format!("written with {written:?}"));
            db.close().unwrap();
        }
        for reading in SETTINGS {
            let db = Db::open_with(dir.path(), options(reading)).unwrap();
            let what = format!("written with {written:?}, read with {reading:?}");
            check(&db, &model, &what);
            // Writes and a full compaction under the new setting: old and new tables mix,
            // then everything is rewritten with it.
            let mut more = model.clone();
            fill(&db, &mut more, "b", 500);
            check(&db, &more, &what);
            db.compact().unwrap();
            check(&db, &more, &format!("{what}, compacted"));
            db.close().unwrap();
            // Back to the state the outer loop expects for the next reading setting.
            let db = Db::open_with(dir.path(), options(reading)).unwrap();
            check(&db, &more, &format!("{what}, reopened"));
            let mut batch = floe::WriteBatch::new();
            for key in more.keys().filter(|k| k.starts_with(b"b")) {
                batch.delete(key);
            }
            db.write(batch).unwrap();
            check(&db, &model, &format!("{what}, b removed"));
            db.close().unwrap();
        }
    }
}

#[test]
fn compressed_tables_take_less_room_and_mapped_reads_cache_decompressed_blocks() {
    let mut sizes = Vec::new();
    for compression in SETTINGS {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_with(dir.path(), options(compression)).unwrap();
        let mut model = Model::new();
        fill(&db, &mut model, "k", 5000);
        db.compact().unwrap();
        check(&db, &model, &format!("{compression:?}"));
        let stats = db.stats();
        assert_eq!(
            stats.block_cache_capacity,
            floe::DECOMPRESSED_CACHE_SIZE as u64
        );
        if compression == Compression::None {
            assert_eq!(stats.block_cache_bytes, 0, "raw blocks are read in place");
        } else {
            assert!(stats.block_cache_bytes > 0, "{compression:?}: {stats:?}");
        }
        sizes.push((compression, table_bytes(dir.path())));
    }
    let raw = sizes[0].1;
    for &(compression, bytes) in &sizes[1..] {
        assert!(
            bytes * 2 < raw,
            "{compression:?}: {bytes} bytes of tables against {raw} uncompressed"
        );
    }
}

#[test]
fn compression_per_level_and_per_keyspace_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    // Raw at levels 0 and 1, compressed below: a flush writes raw tables, a full
    // compaction into the last level compressed ones.
    let base = options(Compression::None).compression_per_level(&[
        Compression::None,
        Compression::None,
        Compression::Lz4,
    ]);
    let db = Db::open_with(dir.path(), base.clone()).unwrap();
    let mut model = Model::new();
    fill(&db, &mut model, "k", 3000);
    db.flush().unwrap();
    let flushed = table_bytes(dir.path());
    db.compact().unwrap();
    let compacted = table_bytes(dir.path());
    assert!(
        compacted * 2 < flushed,
        "{compacted} bytes at the last level against {flushed} flushed"
    );
    check(&db, &model, "per level");

    // A keyspace with its own setting keeps it across reopens with other options.
    let zstd = db
        .keyspace_with(
            "zstd",
            KeyspaceOptions::default().compression(Compression::Zstd(5)),
        )
        .unwrap();
    for i in 0..2000u32 {
        zstd.put(format!("z{i:06}"), json(i)).unwrap();
    }
    drop(zstd);
    db.close().unwrap();
    let db = Db::open_with(dir.path(), Options::default()).unwrap();
    let zstd = db.keyspace("zstd").unwrap();
    db.flush().unwrap();
    for i in (0..2000u32).step_by(13) {
        assert_eq!(
            zstd.get(format!("z{i:06}")).unwrap().as_deref(),
            Some(json(i).as_bytes())
        );
    }
    check(&db, &model, "default keyspace after reopen");
}

#[test]
fn an_invalid_zstd_level_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let err = Db::open_with(
        dir.path(),
        Options::default().compression(Compression::Zstd(99)),
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert!(err.to_string().contains("compression"), "{err}");
}

#[test]
fn a_damaged_compressed_block_is_corruption() {
    for compression in [Compression::Lz4, Compression::Zstd(3)] {
        for block_cache in [None, Some(1 << 20)] {
            let dir = tempfile::tempdir().unwrap();
            let mut model = Model::new();
            {
                let db = Db::open_with(dir.path(), options(compression)).unwrap();
                fill(&db, &mut model, "k", 2000);
                db.compact().unwrap();
                db.close().unwrap();
            }
            // Damage the middle of the first compressed data block of the largest table.
            let table = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "sst"))
                .max_by_key(|path| std::fs::metadata(path).unwrap().len())
                .unwrap();
            let mut bytes = std::fs::read(&table).unwrap();
            assert_eq!(bytes[0], 6, "the first block is compressed");
            bytes[40] ^= 0x5a;
            std::fs::write(&table, &bytes).unwrap();

            let mut options = options(compression);
            if let Some(bytes) = block_cache {
                options = options.block_cache_size(bytes);
            }
            let db = Db::open_with(dir.path(), options).unwrap();
            let scanned: Result<Vec<_>, _> = db.iter().collect();
            let err = scanned.unwrap_err();
            assert!(
                matches!(err, Error::Corruption { .. }),
                "{compression:?}, cache {block_cache:?}: {err}"
            );
            let first = model.keys().next().unwrap();
            assert!(matches!(db.get(first), Err(Error::Corruption { .. })));
        }
    }
}
