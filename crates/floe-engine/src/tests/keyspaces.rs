//! Keyspaces inside the engine: the shared log's segments kept for a quiet keyspace, the
//! bounds on memtable memory and kept segments, options kept across reopens, drops, and
//! batches across keyspaces replayed whole.

use std::path::Path;
use std::sync::Arc;

use super::{open, tiny};
use crate::keyspace::DEFAULT_ID;
use crate::{Db, Error, KeyspaceOptions, Options, WriteBatch};

/// Copies every file of `from` into `to` while the database in `from` is open: the image
/// a process crash leaves (the log's appended bytes are in the page cache).
fn copy_live(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The numbers of the log segments in `dir`.
fn segments(dir: &Path) -> Vec<u64> {
    let mut numbers: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    numbers.sort_unstable();
    numbers
}

#[test]
fn a_busy_keyspace_flushing_keeps_the_segment_of_a_quiet_keyspaces_writes() {
    let dir = tempfile::tempdir().unwrap();
    // A large budget and log bound: only the busy keyspace's own capacity freezes. No
    // background threads, so that the live copy is one moment's image.
    let options = tiny()
        .db_write_buffer_size(1 << 30)
        .max_total_wal_size(1 << 30)
        .manual_background(true);
    let db = open(dir.path(), options);
    let quiet = db.keyspace("quiet").unwrap();
    let busy = db.keyspace("busy").unwrap();
    quiet.put("q1", "kept").unwrap();
    let first_segment = segments(dir.path())[0];
    for i in 0..2000u32 {
        busy.put(format!("b{i:05}"), [7u8; 40]).unwrap();
    }
    db.step_or_wait();
    assert!(db.stats().flushes > 10, "the busy keyspace flushed often");
    // The quiet keyspace's write is in no table yet: its segment stays.
    assert!(segments(dir.path()).contains(&first_segment));
    quiet.put("q2", "also kept").unwrap();

    let copy = tempfile::tempdir().unwrap();
    copy_live(dir.path(), copy.path());
    let reopened = open(copy.path(), Options::default());
    let quiet_again = reopened.keyspace("quiet").unwrap();
    assert_eq!(
        quiet_again.get("q1").unwrap().as_deref(),
        Some(&b"kept"[..])
    );
    assert_eq!(
        quiet_again.get("q2").unwrap().as_deref(),
        Some(&b"also kept"[..])
    );
    assert_eq!(reopened.keyspace("busy").unwrap().iter().count(), 2000);

    // Once the quiet keyspace flushes too, the old segments go.
    db.flush().unwrap();
    let left = segments(dir.path());
    assert!(!left.contains(&first_segment), "{left:?}");
    assert!(left.len() <= 2, "{left:?}");
}

#[test]
fn the_log_bound_flushes_the_keyspace_that_holds_the_oldest_segment() {
    let dir = tempfile::tempdir().unwrap();
    let options = tiny()
        .db_write_buffer_size(1 << 30)
        .max_total_wal_size(16 << 10);
    let db = open(dir.path(), options);
    let quiet = db.keyspace("quiet").unwrap();
    let busy = db.keyspace("busy").unwrap();
    quiet.put("q", "v").unwrap();
    for i in 0..4000u32 {
        busy.put(format!("b{i:05}"), [7u8; 40]).unwrap();
    }
    db.step_or_wait();
    // The quiet keyspace was flushed for the log's sake, so few segments are left.
    let quiet_tables = db.shared().state.load().trees[1].version.tables().count();
    assert_eq!(quiet_tables, 1);
    assert!(
        segments(dir.path()).len() < 10,
        "{:?}",
        segments(dir.path())
    );
    assert_eq!(quiet.get("q").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn the_memory_budget_freezes_the_largest_memtable() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 64 << 10;
    let options = Options::default()
        .write_buffer_size(1 << 20)
        .db_write_buffer_size(budget)
        .block_size(256);
    let db = open(dir.path(), options);
    let spaces: Vec<_> = (0..8)
        .map(|i| db.keyspace(&format!("ks{i}")).unwrap())
        .collect();
    let mut peak = 0;
    for i in 0..4000u32 {
        let space = &spaces[(i % 8) as usize];
        space.put(format!("k{i:05}"), [1u8; 64]).unwrap();
        peak = peak.max(db.stats().memtable_bytes);
    }
    let stats = db.stats();
    assert!(stats.budget_flushes > 0, "{stats:?}");
    // Active memtables stay within the budget (plus one group's overshoot); frozen ones
    // waiting for their flush come on top, at most `max_immutable_memtables` of them,
    // each below the budget.
    let bound = (budget + 4096) * (1 + 2);
    assert!(peak as usize <= bound, "peak {peak} over {bound}");
    for (n, space) in spaces.iter().enumerate() {
        assert_eq!(space.iter().count(), 500, "keyspace {n}");
    }
}

#[test]
fn keyspace_options_are_kept_across_reopens_and_the_default_follows_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), Options::default());
    let special = KeyspaceOptions::default()
        .write_buffer_size(8192)
        .block_size(128)
        .bloom_bits_per_key(3);
    db.keyspace_with("special", special)
        .unwrap()
        .put("k", "v")
        .unwrap();
    db.keyspace("plain").unwrap();
    db.close().unwrap();
    let db = open(dir.path(), Options::default().block_size(1024));
    // Options given for an existing keyspace are ignored.
    db.keyspace_with("special", KeyspaceOptions::default().block_size(4096))
        .unwrap();
    let state = db.shared().state.load();
    let by_name = |name: &str| {
        state
            .trees
            .iter()
            .find(|t| &*t.name == name)
            .map(|t| {
                (
                    t.options.write_buffer_size,
                    t.options.block_size,
                    t.options.bloom_bits_per_key,
                )
            })
            .unwrap()
    };
    assert_eq!(by_name("special"), (8192, 128, 3));
    // Created with the first open's options, kept.
    assert_eq!(by_name("plain"), (64 << 20, 4096, 10));
    assert_eq!(by_name("default").1, 1024);
    assert_eq!(db.keyspace_names(), ["default", "plain", "special"]);
}

#[test]
fn a_dropped_keyspace_is_gone_with_its_files_and_its_handles_fail() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), tiny());
    let doomed = db.keyspace("doomed").unwrap();
    for i in 0..500u32 {
        doomed.put(format!("k{i:04}"), [3u8; 50]).unwrap();
    }
    db.flush().unwrap();
    let tables_before = db.stats().levels.iter().map(|l| l.tables).sum::<usize>();
    assert!(tables_before > 0);
    let held = doomed.iter();
    db.drop_keyspace("doomed").unwrap();
    assert!(matches!(
        doomed.get("k0001"),
        Err(Error::KeyspaceDropped { .. })
    ));
    assert!(matches!(
        doomed.put("k", "v"),
        Err(Error::KeyspaceDropped { .. })
    ));
    assert!(matches!(
        doomed.iter().next(),
        Some(Err(Error::KeyspaceDropped { .. }))
    ));
    let mut batch = WriteBatch::new();
    batch.put_in(&doomed, "k", "v");
    assert!(matches!(
        db.write(batch),
        Err(Error::KeyspaceDropped { .. })
    ));
    // An iterator taken before the drop reads what it saw.
    assert_eq!(held.count(), 500);
    for bad in ["default", "never-was"] {
        assert!(matches!(
            db.drop_keyspace(bad),
            Err(Error::InvalidArgument { .. })
        ));
    }
    db.close().unwrap();
    let db = open(dir.path(), tiny());
    assert_eq!(db.keyspace_names(), ["default"]);
    let tables: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sst")
        })
        .collect();
    assert!(tables.is_empty(), "{tables:?}");
    // The name can be used again: a new, empty keyspace with a new id.
    let again = db.keyspace("doomed").unwrap();
    assert_eq!(again.iter().count(), 0);
    assert!(again.handle().id > 1);
}

#[test]
fn a_batch_across_keyspaces_replays_whole_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), tiny().manual_background(true));
    let a = db.keyspace("a").unwrap();
    let b = db.keyspace("b").unwrap();
    for i in 0..300u32 {
        let mut batch = WriteBatch::new();
        batch.put_in(&a, format!("k{i:04}"), i.to_string());
        batch.put_in(&b, format!("k{i:04}"), i.to_string());
        batch.put(format!("k{i:04}"), i.to_string());
        db.write(batch).unwrap();
    }
    let copy = tempfile::tempdir().unwrap();
    copy_live(dir.path(), copy.path());
    let reopened = open(copy.path(), tiny());
    let dump = |iter: crate::Iter| iter.map(|r| r.unwrap()).collect::<Vec<_>>();
    let a_again = dump(reopened.keyspace("a").unwrap().iter());
    assert_eq!(a_again.len(), 300);
    assert_eq!(a_again, dump(reopened.keyspace("b").unwrap().iter()));
    assert_eq!(a_again, dump(reopened.iter()));
    assert_eq!(reopened.default_keyspace().handle().id, DEFAULT_ID);
}

#[test]
fn keyspace_names_are_checked_and_other_databases_keyspaces_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), Options::default());
    for bad in ["", "a/b", "line\nbreak", &"n".repeat(256)] {
        assert!(
            matches!(db.keyspace(bad), Err(Error::InvalidArgument { .. })),
            "{bad:?}"
        );
    }
    let other_dir = tempfile::tempdir().unwrap();
    let other = open(other_dir.path(), Options::default());
    let foreign = other.keyspace("x").unwrap();
    let mut batch = WriteBatch::new();
    batch.put_in(&foreign, "k", "v");
    assert!(matches!(
        db.write(batch),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        db.snapshot().keyspace(&foreign).get("k"),
        Err(Error::InvalidArgument { .. })
    ));
}

impl Db {
    /// Runs the background work to completion: flushes and compactions.
    fn step_or_wait(&self) {
        self.wait_for_compactions().unwrap();
    }
}

#[test]
fn a_flush_syncs_the_older_segments_it_makes_obsolete_before_sealing_a_newer_one() {
    // Segment 2 holds only the writes of a keyspace dropped since; the default keyspace
    // holds segment 1 back, another keyspace holds the active segment. The default
    // keyspace's flush seals the active segment (the other keyspace needs it) with a
    // durable marker, and only its manifest edit makes segments 1 and 2 obsolete. Until
    // that edit is durable, recovery reads segment 2, and the marker says it was synced:
    // so it must be, whatever a power loss keeps.
    use floe_core::sim_fs::{SimError, SimFs, SimOp};

    let fs = SimFs::new();
    let dir = Path::new("/db");
    // Small memtables keep the segments' reserved room (and the images) small.
    let options = Options::default()
        .write_buffer_size(16 << 10)
        .manual_background(true)
        .max_immutable_memtables(8)
        .file_system(Arc::new(fs.clone()));
    let db = open(dir, options);
    let doomed = db
        .keyspace_with("doomed", KeyspaceOptions::default().write_buffer_size(4096))
        .unwrap();
    let other = db.keyspace("other").unwrap();
    db.put("d1", "in segment 1").unwrap();
    let log_files = |fs: &SimFs| -> Vec<String> {
        let mut names = fs.file_names(dir).unwrap();
        names.retain(|name| name.ends_with(".log"));
        names
    };
    // Two freezes of the doomed keyspace: its writes fill segment 1's tail and all of
    // segment 2, and segment 3 becomes the active one.
    let mut i = 0;
    while log_files(&fs).len() < 3 {
        doomed.put(format!("x{i:05}"), [b'x'; 200]).unwrap();
        i += 1;
    }
    db.drop_keyspace("doomed").unwrap();
    other.put("o1", "in segment 3").unwrap();
    let segments = log_files(&fs);
    let older = dir.join(&segments[1]);
    assert!(
        fs.durable_len(&older).unwrap() < fs.len(&older).unwrap(),
        "{segments:?}"
    );

    // The flush stops at its manifest edit: the seal of the newer segment is done, the
    // edit is not durable.
    fs.fail_nth(SimOp::Sync, 0, Some("MANIFEST"), SimError::Eio, true);
    assert!(db.flush().is_err());
    assert_eq!(
        fs.durable_contents(&older).unwrap().len() as u64,
        fs.len(&older).unwrap(),
        "segment {} is not durable, while a newer one holds a marker",
        segments[1]
    );
    for seed in 0..64 {
        let image = fs.crash(seed);
        let reopened = Db::open_with(
            dir,
            Options::default()
                .write_buffer_size(16 << 10)
                .file_system(Arc::new(image)),
        )
        .unwrap_or_else(|err| panic!("image {seed}: {err}"));
        assert!(
            reopened
                .keyspace_names()
                .iter()
                .all(|name| name != "doomed")
        );
    }
}
