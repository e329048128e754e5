//! `Db::open_read_only`: the durable state, read without touching a file, beside a writer
//! too, with every change refused.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use floe_core::fs::{DirLock, FileSystem, RandomAccessFile, StdFs, WritableFile};

use super::{dump, open};
use crate::filename::{FileKind, parse_file_name};
use crate::{Db, Error, Options, WriteBatch, WriteOptions};

/// Small memtables, so that a few hundred writes make several tables.
fn small() -> Options {
    Options::default()
        .write_buffer_size(4 << 10)
        .block_size(256)
}

/// What a database holds, by keyspace.
type Model = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

/// Writes a database in `dir` that holds tables in two keyspaces and, after the last
/// flush, writes that only the log holds (a delete of a flushed key among them); closes
/// it and returns what it holds. A third keyspace is created and dropped.
fn write_and_close(dir: &Path) -> Model {
    let db = open(dir, small());
    let index = db.keyspace("index").unwrap();
    let gone = db.keyspace("gone").unwrap();
    gone.put("g", "1").unwrap();
    let mut model = Model::new();
    for i in 0..300u32 {
        let (key, value) = (format!("k{i:04}"), format!("value {i}"));
        db.put(&key, &value).unwrap();
        model
            .entry("default".into())
            .or_default()
            .insert(key.clone().into_bytes(), value.into_bytes());
        if i % 3 == 0 {
            index.put(&key, "i").unwrap();
            model
                .entry("index".into())
                .or_default()
                .insert(key.into_bytes(), b"i".to_vec());
        }
    }
    db.flush().unwrap();
    db.drop_keyspace("gone").unwrap();
    // Only in the log from here.
    db.delete("k0001").unwrap();
    model.get_mut("default").unwrap().remove(&b"k0001"[..]);
    let mut batch = WriteBatch::new();
    batch.put("late", "in the log");
    batch.put_in(&index, "late", "in the log too");
    db.write(batch).unwrap();
    model
        .get_mut("default")
        .unwrap()
        .insert(b"late".to_vec(), b"in the log".to_vec());
    model
        .get_mut("index")
        .unwrap()
        .insert(b"late".to_vec(), b"in the log too".to_vec());
    db.close().unwrap();
    model
}

/// What `db` holds, by keyspace.
fn model_of(db: &Db) -> Model {
    db.keyspace_names()
        .into_iter()
        .map(|name| {
            let keyspace = db.keyspace(&name).unwrap();
            let pairs = keyspace
                .iter()
                .map(|item| {
                    let (k, v) = item.unwrap();
                    (k.to_vec(), v.to_vec())
                })
                .collect();
            (name, pairs)
        })
        .collect()
}

/// Every entry of a directory: name, contents, length and modification time, and the
/// directory's own modification time, which every creation, rename and removal moves.
#[derive(Debug, PartialEq, Eq)]
struct DirImage {
    modified: SystemTime,
    files: BTreeMap<String, (Vec<u8>, SystemTime)>,
}

impl DirImage {
    fn of(dir: &Path) -> DirImage {
        let files = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let metadata = entry.metadata().unwrap();
                let contents = std::fs::read(entry.path()).unwrap();
                assert_eq!(contents.len() as u64, metadata.len());
                (
                    entry.file_name().into_string().unwrap(),
                    (contents, metadata.modified().unwrap()),
                )
            })
            .collect();
        DirImage {
            modified: std::fs::metadata(dir).unwrap().modified().unwrap(),
            files,
        }
    }
}

/// Asserts that `result` failed with `Error::ReadOnly`.
#[track_caller]
fn assert_read_only<T: std::fmt::Debug>(result: crate::Result<T>) {
    match result {
        Err(Error::ReadOnly { operation }) => assert!(!operation.is_empty()),
        other => panic!("expected Error::ReadOnly, got {other:?}"),
    }
}

/// Tries every change through `db` (all refused), then every read and the calls that
/// have nothing to do.
fn exercise(db: &Db) {
    let index = db.keyspace("index").unwrap();
    assert_read_only(db.put("new", "value"));
    assert_read_only(db.delete("k0002"));
    let mut batch = WriteBatch::new();
    batch.put("new", "value");
    batch.put_in(&index, "new", "value");
    assert_read_only(db.write(batch.clone()));
    assert_read_only(db.write_with(batch, &WriteOptions::default().sync(true)));
    assert_read_only(index.put("new", "value"));
    assert_read_only(index.delete("k0003"));
    assert_read_only(db.flush());
    assert_read_only(db.compact());
    assert_read_only(db.drop_keyspace("index"));
    assert_read_only(db.drop_keyspace("default"));
    assert_read_only(db.drop_keyspace("missing"));
    assert_read_only(db.keyspace("missing"));
    assert_read_only(db.keyspace_with("missing", crate::KeyspaceOptions::default()));
    db.sync().unwrap();
    db.wait_for_compactions().unwrap();
    assert!(!db.step_background().unwrap());
    assert!(!db.shared().is_poisoned());
    assert_eq!(db.keyspace_names(), ["default", "index"]);

    let snapshot = db.snapshot();
    assert_eq!(
        snapshot.get("k0000").unwrap().as_deref(),
        Some(&b"value 0"[..])
    );
    assert_eq!(snapshot.get("k0001").unwrap(), None);
    assert_eq!(db.range("k0010".."k0013").count(), 3);
    assert_eq!(db.prefix("k02").count(), 100);
    assert_eq!(db.iter().next_back().unwrap().unwrap().0, &b"late"[..]);
    assert_eq!(
        index.snapshot().get("late").unwrap().as_deref(),
        Some(&b"in the log too"[..])
    );
    let _ = db.stats();
}

#[test]
fn sees_exactly_the_tables_and_the_replayed_log() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_and_close(dir.path());
    let db = Db::open_read_only(dir.path()).unwrap();
    assert_eq!(db.keyspace_names(), ["default", "index"]);
    assert_eq!(model_of(&db), model);
    assert_eq!(db.get("k0001").unwrap(), None);
    assert_eq!(db.get("late").unwrap().as_deref(), Some(&b"in the log"[..]));
    // Both halves are there: tables, and the log's writes in a memtable of each keyspace.
    let state = db.shared().state.load_full();
    for tree in &state.trees {
        assert!(
            tree.version.tables().count() > 0,
            "{} has no table",
            tree.name
        );
        assert_eq!(tree.frozen.len(), 1, "{}", tree.name);
        assert!(tree.active.mem.is_empty());
    }
    db.close().unwrap();
    // A writable open afterwards recovers the same.
    let db = open(dir.path(), small());
    assert_eq!(model_of(&db), model);
}

#[test]
fn refuses_every_change_and_changes_nothing_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_and_close(dir.path());
    let db = Db::open_read_only(dir.path()).unwrap();
    exercise(&db);
    assert_eq!(model_of(&db), model);
    let err = db.put("k", "v").unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    let err = db.keyspace("logs").unwrap_err();
    assert!(err.to_string().contains("\"logs\""), "{err}");
    db.clone().close().unwrap();
    // A clone still reads after close, and still refuses writes as read-only.
    assert_eq!(dump(&db).len(), model["default"].len());
    assert_read_only(db.put("k", "v"));
}

#[test]
fn leaves_every_file_and_the_directory_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    write_and_close(dir.path());
    let before = DirImage::of(dir.path());
    {
        let db = Db::open_read_only(dir.path()).unwrap();
        exercise(&db);
        let keep = db.snapshot();
        let iter = db.iter();
        assert_eq!(DirImage::of(dir.path()), before);
        drop((db, keep, iter));
    }
    assert_eq!(DirImage::of(dir.path()), before);
    let db = Db::open_read_only(dir.path()).unwrap();
    db.close().unwrap();
    assert_eq!(DirImage::of(dir.path()), before);
    // No lock is left behind either: a writable open goes ahead.
    open(dir.path(), small()).close().unwrap();
}

/// One call on a [`Spy`]: what it was and on which path.
type Call = (&'static str, PathBuf);

/// The real file system, recording every call.
#[derive(Debug, Default)]
struct Spy {
    calls: Mutex<Vec<Call>>,
}

impl Spy {
    fn record(&self, call: &'static str, path: &Path) {
        self.calls.lock().unwrap().push((call, path.to_path_buf()));
    }

    /// The calls other than reads.
    fn changes(&self) -> Vec<Call> {
        let reads = [
            "read",
            "map",
            "open_read",
            "file_size",
            "exists",
            "list_dir",
        ];
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(call, _)| !reads.contains(call))
            .cloned()
            .collect()
    }

    fn count(&self, call: &str) -> usize {
        let calls = self.calls.lock().unwrap();
        calls.iter().filter(|(c, _)| *c == call).count()
    }
}

impl FileSystem for Spy {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.record("create_dir_all", dir);
        StdFs.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.record("create", path);
        StdFs.create(path)
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.record("open_append", path);
        StdFs.open_append(path)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.record("read", path);
        StdFs.read(path)
    }
    fn map(&self, path: &Path) -> io::Result<Bytes> {
        self.record("map", path);
        StdFs.map(path)
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        self.record("open_read", path);
        StdFs.open_read(path)
    }
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        self.record("file_size", path);
        StdFs.file_size(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.record("exists", path);
        StdFs.exists(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.record("rename", from);
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.record("remove_file", path);
        StdFs.remove_file(path)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.record("list_dir", dir);
        StdFs.list_dir(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.record("sync_dir", dir);
        StdFs.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        self.record("lock", path);
        StdFs.lock(path)
    }
}

#[test]
fn no_call_that_changes_a_file_reaches_the_file_system() {
    // Root ignores file permissions, so this is the check that holds for every user: the
    // file system below the engine sees reads and nothing else.
    let dir = tempfile::tempdir().unwrap();
    let model = write_and_close(dir.path());
    let spy = Arc::new(Spy::default());
    let options = small().file_system(Arc::clone(&spy) as Arc<dyn FileSystem>);
    let db = Db::open_read_only_with(dir.path(), options).unwrap();
    exercise(&db);
    assert_eq!(model_of(&db), model);
    db.close().unwrap();
    assert_eq!(spy.changes(), []);
    assert!(spy.count("read") > 0 && spy.count("map") > 0);
    // With a block cache, tables are read by positional reads instead: reads as well.
    let spy = Arc::new(Spy::default());
    let options = small()
        .block_cache_size(1 << 20)
        .file_system(Arc::clone(&spy) as Arc<dyn FileSystem>);
    let db = Db::open_read_only_with(dir.path(), options).unwrap();
    exercise(&db);
    assert_eq!(model_of(&db), model);
    db.close().unwrap();
    assert_eq!(spy.changes(), []);
    assert!(spy.count("open_read") > 0);
}

#[cfg(unix)]
#[test]
fn opens_a_directory_it_cannot_write_to() {
    use std::os::unix::fs::PermissionsExt;

    // SAFETY: `geteuid` only returns the calling process's effective user id.
    if unsafe { libc::geteuid() } == 0 {
        println!(
            "skipped: running as root, which writes whatever the permissions say \
             (no_call_that_changes_a_file_reaches_the_file_system covers this)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = write_and_close(dir.path());
    let set_mode = |file_mode: u32, dir_mode: u32| {
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file_mode)).unwrap();
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(dir_mode)).unwrap();
    };
    set_mode(0o444, 0o555);
    // The directory really is out of reach for writing.
    assert!(matches!(Db::open(dir.path()), Err(Error::Io(_))));
    let before = DirImage::of(dir.path());
    let result = Db::open_read_only(dir.path()).map(|db| {
        exercise(&db);
        model_of(&db)
    });
    let after = DirImage::of(dir.path());
    // Writable again before any assertion, so that the directory can be removed.
    set_mode(0o644, 0o755);
    assert_eq!(result.unwrap(), model);
    assert_eq!(after, before);
}

#[test]
fn a_missing_or_empty_directory_is_an_error_and_stays_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let err = Db::open_read_only(&missing).unwrap_err();
    assert!(
        matches!(&err, Error::Io(io) if io.kind() == io::ErrorKind::NotFound),
        "{err}"
    );
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(!missing.exists());

    let err = Db::open_read_only(dir.path()).unwrap_err();
    assert!(
        matches!(&err, Error::Io(io) if io.kind() == io::ErrorKind::NotFound),
        "{err}"
    );
    assert!(err.to_string().contains("no database"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let err =
        Db::open_read_only_with(dir.path(), Options::default().write_buffer_size(0)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
}

/// The path of the newest file of `kind` in `dir`.
fn newest(dir: &Path, kind: fn(&FileKind) -> bool) -> PathBuf {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| parse_file_name(name).is_some_and(|k| kind(&k)))
        .collect();
    names.sort();
    dir.join(names.pop().expect("no such file"))
}

/// Flips one byte of `path`, `from_end` bytes before its end.
fn flip(path: &Path, from_end: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() - from_end;
    bytes[at] ^= 0x55;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn damaged_files_are_corruption_not_a_panic() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 5] = [
        ("CURRENT names nothing", |dir| {
            std::fs::write(dir.join("CURRENT"), "garbage\n").unwrap();
        }),
        ("a byte of the manifest", |dir| {
            flip(&newest(dir, |k| matches!(k, FileKind::Manifest(_))), 40);
        }),
        ("a byte of the sealed log", |dir| {
            let log = newest(dir, |k| matches!(k, FileKind::Log(_)));
            flip(&log, 40);
        }),
        ("a table cut short", |dir| {
            let table = newest(dir, |k| matches!(k, FileKind::Table(_)));
            let len = std::fs::metadata(&table).unwrap().len();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&table)
                .unwrap()
                .set_len(len - 10)
                .unwrap();
        }),
        ("a table the manifest lists is gone", |dir| {
            std::fs::remove_file(newest(dir, |k| matches!(k, FileKind::Table(_)))).unwrap();
        }),
    ];
    for (what, damage) in damages {
        let dir = tempfile::tempdir().unwrap();
        write_and_close(dir.path());
        damage(dir.path());
        let before = DirImage::of(dir.path());
        match Db::open_read_only(dir.path()) {
            Err(Error::Corruption { message }) => assert!(!message.is_empty()),
            other => panic!("{what}: expected Corruption, got {other:?}"),
        }
        assert_eq!(DirImage::of(dir.path()), before, "{what}");
    }

    // Damage inside a table's data is found when it is read, and is an error there.
    let dir = tempfile::tempdir().unwrap();
    write_and_close(dir.path());
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        if matches!(parse_file_name(name), Some(FileKind::Table(_))) {
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[10] ^= 0x55;
            std::fs::write(&path, bytes).unwrap();
        }
    }
    let db = Db::open_read_only(dir.path()).unwrap();
    let failed = db
        .iter()
        .find_map(Result::err)
        .expect("the damage was read");
    assert!(matches!(failed, Error::Corruption { .. }), "{failed}");
}

#[test]
fn opens_beside_a_writer_and_keeps_the_state_of_its_open() {
    let dir = tempfile::tempdir().unwrap();
    let writer = open(dir.path(), small());
    // The writer's lock keeps a second writer out, not a reader.
    assert!(matches!(
        Db::open_with(dir.path(), small()),
        Err(Error::Locked { .. })
    ));
    for i in 0..200u32 {
        writer.put(format!("k{i:04}"), "first").unwrap();
    }
    writer.flush().unwrap();
    writer.put("unflushed", "in the log").unwrap();
    writer.keyspace("index").unwrap().put("i", "1").unwrap();
    let reader = Db::open_read_only(dir.path()).unwrap();
    let seen = dump(&reader);
    assert_eq!(seen.len(), 201);
    assert_eq!(
        reader
            .keyspace("index")
            .unwrap()
            .get("i")
            .unwrap()
            .as_deref(),
        Some(&b"1"[..])
    );

    // The writer goes on: new values, flushes, a compaction that deletes the tables the
    // reader maps, and a keyspace the reader never saw.
    for i in 0..200u32 {
        writer.put(format!("k{i:04}"), "second").unwrap();
    }
    writer.put("more", "after the reader's open").unwrap();
    writer.compact().unwrap();
    writer.keyspace("later").unwrap().put("l", "1").unwrap();
    assert_eq!(dump(&reader), seen);
    assert_eq!(reader.keyspace_names(), ["default", "index"]);
    assert_read_only(reader.keyspace("later"));

    // A new reader sees the writer's state now.
    let now = Db::open_read_only(dir.path()).unwrap();
    assert_eq!(now.get("k0000").unwrap().as_deref(), Some(&b"second"[..]));
    assert_eq!(dump(&now), dump(&writer));
    assert_eq!(now.keyspace_names(), ["default", "index", "later"]);
    drop((reader, now));
    // The readers took nothing from the writer: it writes, closes and reopens as ever.
    writer.put("last", "1").unwrap();
    let expected = dump(&writer);
    writer.close().unwrap();
    assert_eq!(dump(&open(dir.path(), small())), expected);
}

#[test]
fn a_reader_beside_a_busy_writer_sees_a_prefix_with_every_acknowledged_write() {
    // The writer puts k0, k1, … in order, flushing and compacting as it goes (which
    // deletes segments, tables and manifests under the readers); each reader must see
    // exactly k0..km, with every write acknowledged before its open among them.
    const WRITES: u64 = 6000;
    let dir = tempfile::tempdir().unwrap();
    let writer = open(
        dir.path(),
        Options::default()
            .write_buffer_size(16 << 10)
            .block_size(256)
            .l0_compaction_trigger(2),
    );
    let acknowledged = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let thread = {
        let (writer, acknowledged, done) = (writer.clone(), acknowledged.clone(), done.clone());
        std::thread::spawn(move || {
            for i in 0..WRITES {
                writer
                    .put(format!("k{i:06}"), format!("value {i}"))
                    .unwrap();
                acknowledged.store(i + 1, Ordering::Release);
                if i % 1500 == 1499 {
                    writer.flush().unwrap();
                }
            }
            done.store(true, Ordering::Release);
        })
    };
    let mut opens = 0;
    while !done.load(Ordering::Acquire) || opens < 3 {
        let floor = acknowledged.load(Ordering::Acquire);
        let reader = Db::open_read_only(dir.path())
            .unwrap_or_else(|err| panic!("read-only open {opens} failed: {err}"));
        let keys: Vec<u64> = reader
            .iter()
            .map(|item| {
                let (key, _) = item.unwrap();
                std::str::from_utf8(&key[1..]).unwrap().parse().unwrap()
            })
            .collect();
        let seen = keys.len() as u64;
        assert!(
            keys.iter().copied().eq(0..seen),
            "open {opens}: not a prefix of the writes"
        );
        assert!(
            seen >= floor,
            "open {opens}: sees {seen} writes, {floor} were acknowledged before it"
        );
        opens += 1;
    }
    thread.join().unwrap();
    writer.close().unwrap();
}
