//! Failures of real file systems, not simulated ones: a full ext4 disk (`ENOSPC`), an
//! ext4 file system shut down under a running writer (a dying disk or a power cut), and
//! a FUSE file system whose reads of chosen files fail with `EIO`.
//!
//! The database that meets the failure always runs in a child process (this binary run
//! again, see `disk::child`), so that a signal such as `SIGBUS` shows up as a failure the
//! parent reports instead of killing the test runner. Each test needs root, a loop
//! device and `mkfs.ext4`, or `/dev/fuse`; without them it prints why to stderr and
//! passes. Every mount and loop device is undone by a guard, also when a test fails.
//!
//! Writes are `key{i:08}` = `value{i:08}:` padded, issued in order, so what a reopened
//! database holds must be the first `n` of them for some `n`: a prefix, checked value by
//! value.
#![cfg(target_os = "linux")]

pub mod common;
mod disk;

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use disk::child::{self, Finished, say};
use disk::ext4::{EXT4_GOING_FLAGS_NOLOGFLUSH, Ext4};
use disk::passthrough::{FailReads, Passthrough};
use floe::{Db, Error, Options};
use floe_testkit::env_required;

/// The test that runs a child's role; see [`real_disk_child`].
const CHILD: &str = "real_disk_child";
const DIR: &str = "FLOE_REAL_DISK_DIR";
const VALUE_LEN: &str = "FLOE_REAL_DISK_VALUE_LEN";
const SYNC_EVERY: &str = "FLOE_REAL_DISK_SYNC_EVERY";
const WRITE_BUFFER: &str = "FLOE_REAL_DISK_WRITE_BUFFER";
const BYTES_PER_SYNC: &str = "FLOE_REAL_DISK_BYTES_PER_SYNC";
const SYNC_INTERVAL_MS: &str = "FLOE_REAL_DISK_SYNC_INTERVAL_MS";
const PACE_US: &str = "FLOE_REAL_DISK_PACE_US";
const LIMIT_BYTES: &str = "FLOE_REAL_DISK_LIMIT_BYTES";
const LIMIT_MS: &str = "FLOE_REAL_DISK_LIMIT_MS";
const WAIT: &str = "FLOE_REAL_DISK_WAIT";

/// More writes than any child gets to: each one stops at its failure or its limit.
const MAX_WRITES: usize = 10_000_000;

fn key(i: usize) -> String {
    format!("key{i:08}")
}

/// The value of write `i`: distinct for every `i`, and `len` bytes long (at least the
/// 14 bytes that name it).
fn value(i: usize, len: usize) -> Vec<u8> {
    let mut v = format!("value{i:08}:").into_bytes();
    let fill = b'a' + (i % 26) as u8;
    v.resize(len.max(v.len()), fill);
    v
}

/// The OS error number behind `err`. floe's [`Error::Io`] keeps the kind and the message
/// of the OS error it wraps, so the number is read back from the message when the error
/// itself has none.
fn os_error(err: &io::Error) -> i32 {
    err.raw_os_error()
        .or_else(|| {
            let text = err.to_string();
            let at = text.rfind("(os error ")? + "(os error ".len();
            text[at..].split(')').next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// A one-word form of an error for the child's report: `io:<errno>`, `poisoned:<first>`,
/// or the variant's name.
fn classify(err: &Error) -> String {
    match err {
        Error::Io(io) => format!("io:{}", os_error(io)),
        Error::Poisoned { first } => format!("poisoned:{}", classify(first)),
        Error::Corruption { .. } => "corruption".into(),
        Error::InvalidArgument { .. } => "invalid-argument".into(),
        Error::Locked { .. } => "locked".into(),
        Error::Closed => "closed".into(),
        _ => "other".into(),
    }
}

fn outcome(result: &floe::Result<()>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(err) => classify(err),
    }
}

/// The children's roles. In a normal run (no role set) this test has nothing to do.
#[test]
fn real_disk_child() {
    let Ok(role) = std::env::var(child::ROLE) else {
        return;
    };
    // The harness has printed "test real_disk_child ... " with no newline; the parent
    // finds the report's marks anywhere in a line, but a fresh line keeps stdout readable.
    println!();
    match role.as_str() {
        "fill" => fill_until_failure(),
        "shutdown" => write_through_shutdown(),
        "open" => open_and_read_all(),
        "read" => read_tables(),
        other => panic!("child: unknown role {other:?}"),
    }
}

/// After the first failure, reports what a write, a sync and a flush get.
fn report_later_failures(db: &Db) {
    say(&format!(
        "then put {}",
        outcome(&db.put("after-the-failure", "x"))
    ));
    say(&format!("then sync {}", outcome(&db.sync())));
    say(&format!("then flush {}", outcome(&db.flush())));
}

// ---------------------------------------------------------------------------------------
// A full disk.

fn fill_options() -> Options {
    Options::default().write_buffer_size(1 << 20)
}

/// Child: writes in order until a write or a sync fails, syncing every `SYNC_EVERY`
/// writes and reporting each successful sync (`synced <n>`: writes `0..n` are durable).
fn fill_until_failure() {
    let dir: PathBuf = env_required(DIR);
    let value_len: usize = env_required(VALUE_LEN);
    let sync_every: usize = env_required(SYNC_EVERY);
    let db = Db::open_with(&dir, fill_options()).expect("child: open");
    say("opened");
    let mut failure = None;
    for i in 0..MAX_WRITES {
        if let Err(err) = db.put(key(i), value(i, value_len)) {
            failure = Some(("put", i, err));
            break;
        }
        let written = i + 1;
        if written % sync_every == 0 {
            match db.sync() {
                Ok(()) => say(&format!("synced {written}")),
                Err(err) => {
                    failure = Some(("sync", written, err));
                    break;
                }
            }
        }
    }
    match failure {
        // `failed put <i>`: writes 0..i were acknowledged and write i failed;
        // `failed sync <n>`: writes 0..n were acknowledged and the sync after them failed.
        Some((op, n, err)) => {
            say(&format!("failed {op} {n} {} | {err}", classify(&err)));
            report_later_failures(&db);
        }
        None => say("never-failed"),
    }
    say("done");
}

/// The last `synced <n>` of a report: writes `0..n` were acknowledged before a
/// successful `Db::sync`.
fn last_synced(run: &Finished) -> usize {
    run.lines_starting("synced ")
        .map(|n| n.parse().expect("a synced line"))
        .max()
        .unwrap_or(0)
}

/// The child's first failure: the operation, its count (see `fill_until_failure`), the
/// classified error and its message.
fn first_failure(run: &Finished) -> (String, usize, String, String) {
    let line = run
        .lines_starting("failed ")
        .next()
        .unwrap_or_else(|| panic!("the child reported no failure; {}", run.transcript()));
    let (head, message) = line.split_once(" | ").expect("a failed line");
    let mut words = head.split(' ');
    let op = words.next().expect("the operation").to_owned();
    let n = words.next().expect("the count").parse().expect("a count");
    let class = words.next().expect("the class").to_owned();
    (op, n, class, message.to_owned())
}

/// Asserts that every operation after the first failure was refused as poisoned.
fn assert_poisoned_after(run: &Finished) {
    for op in ["put", "sync", "flush"] {
        let prefix = format!("then {op} ");
        let got = run.lines_starting(&prefix).next().unwrap_or_else(|| {
            panic!(
                "no report of a {op} after the failure; {}",
                run.transcript()
            )
        });
        assert!(
            got.starts_with("poisoned:"),
            "a {op} after the first failure must fail with Error::Poisoned, got {got}; {}",
            run.transcript()
        );
    }
}

/// Checks what a reopened database holds: exactly writes `0..n` with their values for
/// some `n` in `at_least..=at_most` (`at_least` writes were acknowledged before the last
/// successful `Db::sync`; `at_most` writes were ever issued). Returns `n`.
fn check_recovered_prefix(
    db: &Db,
    at_least: usize,
    at_most: usize,
    value_len: usize,
    what: &str,
) -> usize {
    let got = common::collect(db.iter(), what);
    for (i, (k, v)) in got.iter().enumerate() {
        assert!(
            *k == key(i).as_bytes() && *v == value(i, value_len),
            "{what}: the recovered state is not a prefix of the writes: position {i} holds \
             ({}, {}) where write {i} is ({}, {})",
            common::show(k),
            common::show(v),
            key(i),
            common::show(&value(i, value_len)),
        );
    }
    let n = got.len();
    assert!(
        n >= at_least,
        "{what}: {n} writes recovered, but {at_least} were acknowledged before the last \
         successful Db::sync; the first missing one is {}",
        key(n)
    );
    assert!(
        n <= at_most,
        "{what}: {n} writes recovered, but only {at_most} were ever issued"
    );
    // Point reads agree with the scan at the edge of the prefix.
    if let Some(last) = n.checked_sub(1) {
        let got = db.get(key(last)).expect("get the last recovered write");
        assert_eq!(
            got.as_deref(),
            Some(&value(last, value_len)[..]),
            "{what}: get"
        );
    }
    assert_eq!(
        db.get(key(n)).expect("get past the prefix"),
        None,
        "{what}: get"
    );
    n
}

#[test]
fn full_ext4_disk_fails_writes_with_enospc_and_keeps_every_synced_write() {
    const TEST: &str = "full_ext4_disk_fails_writes_with_enospc_and_keeps_every_synced_write";
    const VALUE: usize = 1000;
    let _turn = disk::one_at_a_time();
    let fs = match Ext4::new(64) {
        Ok(fs) => fs,
        Err(reason) => return disk::skip(TEST, &reason),
    };
    // Room to give back once the disk is full, so that the database can be reopened
    // (recovery writes a table and a new log segment).
    let filler = fs.path().join("filler");
    let mut file = std::fs::File::create(&filler).expect("create the filler");
    for _ in 0..12 {
        file.write_all(&[0x5a; 1 << 20]).expect("write the filler");
    }
    file.sync_all().expect("sync the filler");
    drop(file);

    let dir = fs.path().join("db");
    let run = child::spawn(
        CHILD,
        "fill",
        fs.scratch(),
        &[
            (DIR, dir.display().to_string()),
            (VALUE_LEN, VALUE.to_string()),
            (SYNC_EVERY, "256".into()),
        ],
    )
    .finish();
    assert!(
        run.status.success(),
        "filling the disk must end in a typed error, not a panic or a signal; {}",
        run.transcript()
    );
    let synced = last_synced(&run);
    let (op, failed_at, class, message) = first_failure(&run);
    assert!(
        class == "io:28" || class == "poisoned:io:28",
        "the first failure on a full disk must be Error::Io with ENOSPC (os error 28), or \
         Error::Poisoned by one, got {class}: {message}"
    );
    assert!(
        synced > 0,
        "the disk filled before the first Db::sync; {}",
        run.transcript()
    );
    assert_poisoned_after(&run);
    // Writes 0..failed_at were acknowledged either way (see `fill_until_failure`).
    let acknowledged = failed_at;

    std::fs::remove_file(&filler).expect("free the filler's room");
    let what = format!("after ENOSPC at {op} {failed_at} (last synced {synced})");
    let db = Db::open_with(&dir, fill_options())
        .unwrap_or_else(|e| panic!("{what}: reopen once there is room again: {e}"));
    let recovered = check_recovered_prefix(&db, synced, acknowledged + 1, VALUE, &what);
    // No power was lost: the process ended normally, so every acknowledged write is in
    // the page cache or on disk, and must be back (the process-crash guarantee).
    assert!(
        recovered >= acknowledged,
        "{what}: {recovered} writes recovered, but {acknowledged} were acknowledged and \
         the machine never lost power"
    );
    db.put(key(recovered), value(recovered, VALUE))
        .and_then(|()| db.sync())
        .unwrap_or_else(|e| panic!("{what}: a write once there is room again: {e}"));
    db.close().expect("close");
    println!(
        "{TEST}: first failure at {op} {failed_at} ({class}: {message}); {synced} writes \
         synced, {recovered} recovered"
    );
}

// ---------------------------------------------------------------------------------------
// A disk shut down under a running writer.

/// Child: writes in order with `sync(false)`, calling `Db::sync` every `SYNC_EVERY`
/// writes (reporting `synced <n>`) until the parent says `quiesce` on stdin; from then
/// on it only writes, so that nothing but the engine itself can notice the disk. When
/// the parent says `shutdown` it counts the writes, bytes and time since, and stops at
/// the first failure or when it reaches `LIMIT_BYTES` bytes or `LIMIT_MS` milliseconds
/// (`gave-up`).
fn write_through_shutdown() {
    let dir: PathBuf = env_required(DIR);
    let value_len: usize = env_required(VALUE_LEN);
    let sync_every: usize = env_required(SYNC_EVERY);
    let pace = Duration::from_micros(env_required(PACE_US));
    let limit_bytes: u64 = env_required(LIMIT_BYTES);
    let limit = Duration::from_millis(env_required(LIMIT_MS));
    let options = Options::default()
        .write_buffer_size(env_required(WRITE_BUFFER))
        .wal_bytes_per_sync(env_required(BYTES_PER_SYNC))
        .wal_sync_interval(Duration::from_millis(env_required(SYNC_INTERVAL_MS)));
    let db = Db::open_with(&dir, options).expect("child: open");

    let quiesce = Arc::new(AtomicBool::new(false));
    let shutdown = Arc::new(AtomicBool::new(false));
    {
        let (quiesce, shutdown) = (Arc::clone(&quiesce), Arc::clone(&shutdown));
        thread::spawn(move || {
            for line in io::stdin().lines() {
                match line.as_deref() {
                    Ok("quiesce") => quiesce.store(true, Ordering::SeqCst),
                    Ok("shutdown") => shutdown.store(true, Ordering::SeqCst),
                    _ => {}
                }
            }
        });
    }
    say("opened");

    let mut quiesced = false;
    let mut bytes = 0u64;
    // (writes, bytes, time) when the shutdown was noticed.
    let mut since: Option<(usize, u64, Instant)> = None;
    let window = |since: Option<(usize, u64, Instant)>, i: usize, bytes: u64| match since {
        Some((i0, b0, t0)) => format!(
            "window {} writes {} bytes {} ms",
            i - i0,
            bytes - b0,
            t0.elapsed().as_millis()
        ),
        None => "window before the shutdown was noticed".into(),
    };
    let mut failure = None;
    for i in 0..MAX_WRITES {
        if !quiesced && quiesce.load(Ordering::SeqCst) {
            quiesced = true;
            say(&format!("quiesced {i}"));
        }
        if since.is_none() && shutdown.load(Ordering::SeqCst) {
            since = Some((i, bytes, Instant::now()));
            say(&format!("noticed {i}"));
        }
        if let Some((_, b0, t0)) = since
            && (bytes - b0 >= limit_bytes || t0.elapsed() >= limit)
        {
            say(&format!("gave-up {i} {}", window(since, i, bytes)));
            say("done");
            return;
        }
        let (k, v) = (key(i), value(i, value_len));
        if let Err(err) = db.put(&k, &v) {
            failure = Some(("put", i, err));
            break;
        }
        bytes += (k.len() + v.len()) as u64;
        let written = i + 1;
        if !quiesced && written % sync_every == 0 {
            match db.sync() {
                Ok(()) => say(&format!("synced {written}")),
                Err(err) => {
                    failure = Some(("sync", written, err));
                    break;
                }
            }
        }
        if !pace.is_zero() {
            thread::sleep(pace);
        }
    }
    match failure {
        Some((op, n, err)) => {
            say(&window(since, n, bytes));
            say(&format!("failed {op} {n} {} | {err}", classify(&err)));
            report_later_failures(&db);
        }
        None => say("never-failed"),
    }
    say("done");
}

/// How a shutdown test runs its writer.
struct ShutdownCase {
    test: &'static str,
    /// `Options::wal_bytes_per_sync` (0: off).
    bytes_per_sync: u64,
    /// `Options::wal_sync_interval` (zero: off).
    sync_interval: Duration,
    /// A pause after each write.
    pace: Duration,
    /// After the shutdown, the writer gives up once it has written this many bytes...
    limit_bytes: u64,
    /// ... or written for this long, whichever comes first, without an error.
    limit: Duration,
}

const SHUTDOWN_VALUE: usize = 100;
/// Large enough that the log segment (which reserves about one write buffer of room,
/// allocated and mapped, when it is created) never fills up within a test's limits:
/// the only way for the writer to learn of the dead disk is for the engine to sync.
const SHUTDOWN_WRITE_BUFFER: usize = 16 << 20;

fn run_shutdown_case(case: &ShutdownCase) {
    let test = case.test;
    let _turn = disk::one_at_a_time();
    let mut fs = match Ext4::new(64) {
        Ok(fs) => fs,
        Err(reason) => return disk::skip(test, &reason),
    };
    let dir = fs.path().join("db");
    let mut writer = child::spawn(
        CHILD,
        "shutdown",
        fs.scratch(),
        &[
            (DIR, dir.display().to_string()),
            (VALUE_LEN, SHUTDOWN_VALUE.to_string()),
            (SYNC_EVERY, "2000".into()),
            (WRITE_BUFFER, SHUTDOWN_WRITE_BUFFER.to_string()),
            (BYTES_PER_SYNC, case.bytes_per_sync.to_string()),
            (SYNC_INTERVAL_MS, case.sync_interval.as_millis().to_string()),
            (PACE_US, case.pace.as_micros().to_string()),
            (LIMIT_BYTES, case.limit_bytes.to_string()),
            (LIMIT_MS, case.limit.as_millis().to_string()),
        ],
    );
    // A few synced points first, then no more syncs from the writer, then the shutdown.
    for _ in 0..3 {
        if writer.wait_for(|l| l.starts_with("synced ")).is_none() {
            panic!(
                "the writer ended before syncing; {}",
                writer.finish().transcript()
            );
        }
    }
    writer.tell("quiesce");
    if writer.wait_for(|l| l.starts_with("quiesced ")).is_none() {
        panic!(
            "the writer ended before quiescing; {}",
            writer.finish().transcript()
        );
    }
    fs.shut_down(EXT4_GOING_FLAGS_NOLOGFLUSH)
        .expect("EXT4_IOC_SHUTDOWN on the mount point");
    assert!(
        std::fs::write(fs.path().join("probe"), "x").is_err(),
        "a write to the file system still worked after the shutdown"
    );
    writer.tell("shutdown");
    let run = writer.finish();
    assert!(
        run.status.success(),
        "writing to a shut-down disk must end in a typed error, not a panic or a signal; {}",
        run.transcript()
    );
    if let Some(gave_up) = run.lines_starting("gave-up ").next() {
        let bound = if case.limit_bytes == u64::MAX {
            format!("{:?}", case.limit)
        } else {
            format!("{} bytes or {:?}", case.limit_bytes, case.limit)
        };
        panic!(
            "after the disk was shut down the engine kept acknowledging writes without an \
             error ({gave_up}; the bound is {bound} of writing after the shutdown). With \
             sync(false) a write is a store into a shared map of the log, which cannot see \
             the disk; only the background log sync (wal_bytes_per_sync {}, \
             wal_sync_interval {:?}) can notice it. {}",
            case.bytes_per_sync,
            case.sync_interval,
            run.transcript()
        );
    }
    let synced = last_synced(&run);
    let (op, failed_at, class, message) = first_failure(&run);
    assert!(
        class.starts_with("io:") || class.starts_with("poisoned:io:"),
        "the first failure after the shutdown must be Error::Io, or Error::Poisoned by one, \
         got {class}: {message}"
    );
    assert_poisoned_after(&run);

    // The shutdown dropped what the journal had not committed; unmounting and mounting
    // again recovers the file system (with `e2fsck -y` if the kernel wants it).
    fs.unmount().expect("unmount the shut-down file system");
    fs.mount().expect("mount the file system again");
    let what =
        format!("{test}: after the shutdown (failed {op} {failed_at}, last synced {synced})");
    let db = Db::open_with(
        &dir,
        Options::default().write_buffer_size(SHUTDOWN_WRITE_BUFFER),
    )
    .unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
    let recovered = check_recovered_prefix(&db, synced, failed_at + 1, SHUTDOWN_VALUE, &what);
    db.close().expect("close");
    let window = run
        .lines_starting("window ")
        .next()
        .unwrap_or("?")
        .to_owned();
    println!(
        "{test}: failed {op} {failed_at} ({class}: {message}) after {window}; {synced} writes \
         synced, {recovered} recovered"
    );
}

#[test]
fn shut_down_ext4_fails_writes_within_the_default_log_sync_bounds() {
    run_shutdown_case(&ShutdownCase {
        test: "shut_down_ext4_fails_writes_within_the_default_log_sync_bounds",
        bytes_per_sync: 1 << 20,
        sync_interval: Duration::from_secs(1),
        pace: Duration::ZERO,
        limit_bytes: 4 << 20,
        limit: Duration::from_secs(5),
    });
}

#[test]
fn shut_down_ext4_fails_writes_within_the_log_sync_interval_alone() {
    // The byte bound off and slow writes: only the timed sync can notice.
    run_shutdown_case(&ShutdownCase {
        test: "shut_down_ext4_fails_writes_within_the_log_sync_interval_alone",
        bytes_per_sync: 0,
        sync_interval: Duration::from_secs(1),
        pace: Duration::from_micros(200),
        limit_bytes: u64::MAX,
        limit: Duration::from_secs(5),
    });
}

// ---------------------------------------------------------------------------------------
// Reads that fail with EIO, through FUSE.

const FUSE_VALUE: usize = 1000;
/// Writes in the database's table (written and compacted before the mount).
const TABLE_WRITES: usize = 4000;
/// Writes after them, left in the log segment.
const LOG_WRITES: usize = 20;

/// The options of the FUSE tests: tables read through a block cache, the reads that turn
/// a failing disk into errors (mapped tables, the default, die of `SIGBUS` instead).
fn fuse_options() -> Options {
    Options::default()
        .write_buffer_size(1 << 20)
        .block_cache_size(8 << 20)
}

/// A backing directory holding a database (writes `0..TABLE_WRITES` in one table at the
/// bottom level, the next `LOG_WRITES` in the log), made directly on the real file
/// system, and an empty mount point beside it.
struct FuseSetup {
    dir: tempfile::TempDir,
}

impl FuseSetup {
    fn new() -> FuseSetup {
        let dir = tempfile::Builder::new()
            .prefix("floe-real-disk-fuse-")
            .tempdir()
            .expect("temporary directory");
        std::fs::create_dir(dir.path().join("backing")).expect("backing directory");
        std::fs::create_dir(dir.path().join("mnt")).expect("mount point");
        let db = Db::open_with(dir.path().join("backing/db"), fuse_options()).expect("open");
        for i in 0..TABLE_WRITES {
            db.put(key(i), value(i, FUSE_VALUE)).expect("put");
        }
        db.compact().expect("compact");
        for i in TABLE_WRITES..TABLE_WRITES + LOG_WRITES {
            db.put(key(i), value(i, FUSE_VALUE)).expect("put");
        }
        db.close().expect("close");
        FuseSetup { dir }
    }

    fn backing(&self) -> PathBuf {
        self.dir.path().join("backing")
    }

    fn mountpoint(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// The database as seen through the mount.
    fn db(&self) -> PathBuf {
        self.mountpoint().join("db")
    }

    fn spawn(&self, role: &str, vars: &[(&str, String)]) -> child::Child {
        let mut all = vec![(DIR, self.db().display().to_string())];
        all.extend(vars.iter().cloned());
        child::spawn(CHILD, role, self.dir.path(), &all)
    }
}

/// Child: opens the database; on success reads every write back and reports
/// `read-all ok` (or the first write that came back wrong), otherwise
/// `open-failed <class> | <message>`.
fn open_and_read_all() {
    let dir: PathBuf = env_required(DIR);
    let db = match Db::open_with(&dir, fuse_options()) {
        Ok(db) => db,
        Err(err) => return say(&format!("open-failed {} | {err}", classify(&err))),
    };
    say("opened");
    let wrong = (0..TABLE_WRITES + LOG_WRITES).find(|&i| {
        db.get(key(i))
            .ok()
            .flatten()
            .is_none_or(|v| *v != value(i, FUSE_VALUE))
    });
    match wrong {
        None => say("read-all ok"),
        Some(i) => say(&format!("read-all wrong at {i}")),
    }
    db.close().expect("child: close");
}

/// Child: opens the database (`open-failed` as in `open_and_read_all`), and, with
/// `WAIT` set, reads write 0, reports `ready` and waits for `go` on stdin; then reads
/// writes spread over the table, reporting `got <i> <ok|wrong|absent|error class>` for
/// each, and `all-read` at the end.
fn read_tables() {
    let dir: PathBuf = env_required(DIR);
    let wait = env_required::<u8>(WAIT) == 1;
    say("opening");
    let db = match Db::open_with(&dir, fuse_options()) {
        Ok(db) => db,
        Err(err) => return say(&format!("open-failed {} | {err}", classify(&err))),
    };
    say("opened");
    let describe = |i: usize| match db.get(key(i)) {
        Ok(Some(v)) if *v == value(i, FUSE_VALUE) => "ok".to_owned(),
        Ok(Some(_)) => "wrong".to_owned(),
        Ok(None) => "absent".to_owned(),
        Err(err) => format!("error {}", classify(&err)),
    };
    if wait {
        say(&format!("got 0 {}", describe(0)));
        say("ready");
        let mut line = String::new();
        io::stdin().read_line(&mut line).expect("child: stdin");
    }
    for i in (1..TABLE_WRITES).step_by(97) {
        say(&format!("got {i} {}", describe(i)));
    }
    say("all-read");
}

#[test]
fn failing_reads_of_current_manifest_or_log_make_open_return_a_typed_io_error() {
    const TEST: &str = "failing_reads_of_current_manifest_or_log_make_open_return_a_typed_io_error";
    if let Some(reason) = Passthrough::unavailable() {
        return disk::skip(TEST, &reason);
    }
    let _turn = disk::one_at_a_time();
    let setup = FuseSetup::new();
    let mount = match Passthrough::mount(&setup.backing(), &setup.mountpoint(), true) {
        Ok(mount) => mount,
        Err(reason) => return disk::skip(TEST, &reason),
    };
    for (which, names) in [
        (FailReads::Current, "CURRENT"),
        (FailReads::Manifests, "MANIFEST-"),
        (FailReads::Logs, ".log"),
    ] {
        mount.fail_reads(which);
        let refused = mount.refused_reads();
        let run = setup.spawn("open", &[]).finish();
        assert!(
            run.status.success(),
            "open with failing reads of {which:?} must return an error, not panic or die; {}",
            run.transcript()
        );
        let failed = run
            .lines_starting("open-failed ")
            .next()
            .unwrap_or_else(|| {
                panic!(
                    "open succeeded although reads of {which:?} fail; {}",
                    run.transcript()
                )
            });
        let (class, message) = failed.split_once(" | ").expect("an open-failed line");
        assert_eq!(
            class, "io:5",
            "open with failing reads of {which:?} must return Error::Io with EIO: {message}"
        );
        assert!(
            message.contains(names),
            "the error of open with failing reads of {which:?} must name the file: {message}"
        );
        assert!(
            mount.refused_reads() > refused,
            "the file system refused no read of {which:?}, yet open failed: {message}"
        );
        println!("{TEST}: reads of {which:?} failing: open returned {class}: {message}");
    }
    // The failed opens changed nothing: with reads working again everything is there,
    // read through the mount (tables included).
    mount.fail_reads(FailReads::Nothing);
    let run = setup.spawn("open", &[]).finish();
    assert!(
        run.status.success() && run.lines.iter().any(|l| l == "read-all ok"),
        "once reads work again the database must open with every write; {}",
        run.transcript()
    );
}

/// Tables read through a block cache (`Options::block_cache_size`) are read with
/// positional reads, not through a map: a read error on a table is returned as
/// `Error::Io` with `EIO`, at open (which reads each
/// table's footer, index and filter) or from the first `get` that needs a block not in
/// the cache, and the reader lives on; it never dies of `SIGBUS`.
#[test]
fn table_read_eio_is_a_typed_io_error() {
    const TEST: &str = "table_read_eio_is_a_typed_io_error";
    if let Some(reason) = Passthrough::unavailable() {
        return disk::skip(TEST, &reason);
    }
    let _turn = disk::one_at_a_time();
    let setup = FuseSetup::new();
    let mount = match Passthrough::mount(&setup.backing(), &setup.mountpoint(), true) {
        Ok(mount) => mount,
        Err(reason) => return disk::skip(TEST, &reason),
    };

    // Reads of tables fail from the start: open reads each table's meta blocks.
    mount.fail_reads(FailReads::Tables);
    let run = setup.spawn("read", &[(WAIT, "0".into())]).finish();
    assert_eq!(
        run.signal(),
        None,
        "the reader died of a signal; {}",
        run.transcript()
    );
    assert!(
        run.status.success(),
        "with table reads failing, open must return an error, not die; {}",
        run.transcript()
    );
    let failed = run
        .lines_starting("open-failed ")
        .next()
        .unwrap_or_else(|| {
            panic!(
                "open succeeded although table reads fail; {}",
                run.transcript()
            )
        });
    let (class, message) = failed.split_once(" | ").expect("an open-failed line");
    assert!(
        class == "io:5" && message.contains(".sst"),
        "open with failing table reads must return Error::Io with EIO naming the table, \
         got {class}: {message}"
    );
    assert!(mount.refused_reads() > 0, "no table read was refused");
    println!("{TEST}: table reads failing from the start: open returned {class}: {message}");

    // Reads of tables fail after a successful open: every get of a block not yet cached.
    mount.fail_reads(FailReads::Nothing);
    let mut reader = setup.spawn("read", &[(WAIT, "1".into())]);
    if reader.wait_for(|l| l == "ready").is_none() {
        panic!(
            "the reader ended before it was ready; {}",
            reader.finish().transcript()
        );
    }
    let refused = mount.refused_reads();
    mount.fail_reads(FailReads::Tables);
    reader.tell("go");
    let run = reader.finish();
    assert_eq!(
        run.signal(),
        None,
        "the reader died of a signal; {}",
        run.transcript()
    );
    assert!(
        run.status.success() && run.lines.iter().any(|l| l == "all-read"),
        "gets whose blocks cannot be read must return errors, and the reader live on; {}",
        run.transcript()
    );
    assert!(
        run.lines.iter().any(|l| l == "got 0 ok"),
        "before table reads failed, a get must have worked; {}",
        run.transcript()
    );
    // Every get returned its value or the disk's error, never a wrong value.
    for got in run.lines_starting("got ") {
        assert!(
            got.ends_with(" ok") || got.ends_with(" error io:5"),
            "a get must return its value or Error::Io with EIO: got {got}; {}",
            run.transcript()
        );
    }
    let errors = run
        .lines_starting("got ")
        .filter(|l| l.ends_with(" error io:5"))
        .count();
    assert!(
        errors > 0,
        "no get failed although table reads fail; {}",
        run.transcript()
    );
    assert!(mount.refused_reads() > refused, "no table read was refused");
    println!(
        "{TEST}: table reads failing after open: {errors} gets returned Error::Io (EIO), \
         {} refused reads",
        mount.refused_reads() - refused
    );
}

/// Where a file system refuses shared maps (here FUSE direct I/O without
/// `FUSE_DIRECT_IO_ALLOW_MMAP`), tables are still read: they are never mapped.
#[test]
fn tables_are_read_where_shared_maps_are_refused() {
    const TEST: &str = "tables_are_read_where_shared_maps_are_refused";
    if let Some(reason) = Passthrough::unavailable() {
        return disk::skip(TEST, &reason);
    }
    let _turn = disk::one_at_a_time();
    let setup = FuseSetup::new();
    let mount = match Passthrough::mount(&setup.backing(), &setup.mountpoint(), false) {
        Ok(mount) => mount,
        Err(reason) => return disk::skip(TEST, &reason),
    };
    assert!(!mount.shared_maps());
    let run = setup.spawn("open", &[]).finish();
    assert!(
        run.status.success() && run.lines.iter().any(|l| l == "read-all ok"),
        "without shared maps the database must open and read every write; {}",
        run.transcript()
    );
    println!("{TEST}: without shared maps every write was read back");
}
