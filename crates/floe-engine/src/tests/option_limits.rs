//! Every option at its extremes: open either refuses it with `InvalidArgument` before
//! touching the disk, or gives a database that works (writes, reads, flushes, reopens).

use std::sync::mpsc;
use std::time::Duration;

use crate::{Db, Error, Options};

/// A setter applied to the default options, with a name for the failure message.
type Case = (String, Box<dyn Fn(Options) -> Options + Send>);

/// Pushes one case per value, named `setter(value)`.
macro_rules! cases {
    ($cases:ident, $setter:ident, [$($value:expr),+ $(,)?]) => {
        $(
            let value = $value;
            $cases.push((
                format!("{}({value:?})", stringify!($setter)),
                Box::new(move |options: Options| options.$setter(value)),
            ));
        )+
    };
}

fn all_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    cases!(cases, write_buffer_size, [0, 1, usize::MAX]);
    cases!(cases, sync, [false, true]);
    cases!(cases, block_size, [0, 1, usize::MAX]);
    cases!(cases, max_immutable_memtables, [0, 1, usize::MAX]);
    cases!(cases, bloom_bits_per_key, [0, 1, u32::MAX]);
    cases!(cases, target_file_size, [0, 1, u64::MAX]);
    cases!(cases, l0_compaction_trigger, [0, 1, usize::MAX]);
    cases!(cases, l0_slowdown_trigger, [0, 1, usize::MAX]);
    cases!(cases, l0_stop_trigger, [0, 1, usize::MAX]);
    cases!(cases, level_size_multiplier, [0, 1, u64::MAX]);
    cases!(cases, max_bytes_for_level_base, [0, 1, u64::MAX]);
    cases!(cases, dynamic_level_bytes, [false, true]);
    cases!(cases, num_levels, [0, 1, usize::MAX]);
    cases!(cases, wal_bytes_per_sync, [0, 1, u64::MAX]);
    cases!(
        cases,
        wal_sync_interval,
        [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_secs(1),
            Duration::MAX
        ]
    );
    cases
}

/// Opens a database under `configure(Options::default())` and checks the outcome: a
/// refusal names the setter and leaves no directory behind; an open database keeps a
/// flushed and an unflushed write across a reopen. Returns whether open refused.
fn check(name: &str, configure: &dyn Fn(Options) -> Options) -> bool {
    let setter = name.split('(').next().unwrap_or(name);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let options = configure(Options::default());
    let db = match Db::open_with(&dir, options.clone()) {
        Ok(db) => db,
        Err(Error::InvalidArgument { message }) => {
            assert!(message.contains(setter), "{name}: {message}");
            assert!(!dir.exists(), "{name}: refused after touching the disk");
            return true;
        }
        Err(other) => panic!("{name}: open failed with {other}"),
    };
    db.put("flushed", "one").unwrap();
    assert_eq!(db.get("flushed").unwrap().as_deref(), Some(&b"one"[..]));
    db.flush().unwrap();
    db.put("logged", "two").unwrap();
    db.close().unwrap();
    let db = Db::open_with(&dir, options).unwrap_or_else(|err| panic!("{name}: reopen: {err}"));
    assert_eq!(db.get("flushed").unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(db.get("logged").unwrap().as_deref(), Some(&b"two"[..]));
    db.close().unwrap();
    false
}

// The expected refusals spell `usize::MAX` as a 64-bit number, and a 32-bit `usize::MAX`
// is a valid memtable size.
#[cfg(target_pointer_width = "64")]
#[test]
fn every_setter_at_zero_one_and_its_maximum_works_or_is_refused_at_open() {
    let mut refused = Vec::new();
    for (name, configure) in all_cases() {
        // On a thread with a deadline, so that a case that hangs fails the test instead
        // of blocking it (a panic on the thread drops the sender: a failure too).
        let (tx, rx) = mpsc::channel();
        let case = name.clone();
        std::thread::spawn(move || {
            let _ = tx.send(check(&case, &*configure));
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(true) => refused.push(name),
            Ok(false) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name} did not finish in 60 s"),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{name} panicked"),
        }
    }
    // The refusals are exactly the values outside the documented ranges.
    assert_eq!(
        refused,
        [
            "write_buffer_size(0)",
            "write_buffer_size(18446744073709551615)",
            "block_size(0)",
            "block_size(1)",
            "block_size(18446744073709551615)",
            "bloom_bits_per_key(4294967295)",
            "target_file_size(18446744073709551615)",
            "wal_bytes_per_sync(18446744073709551615)",
            "wal_sync_interval(1ns)",
            "wal_sync_interval(18446744073709551615.999999999s)",
        ]
    );
}
