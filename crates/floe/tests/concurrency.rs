//! Writers and readers at once on a tiny write buffer, so that memtables freeze and flush
//! all the time: no acknowledged write is lost, a read never sees half of a batch, and a
//! key never disappears (or goes back to an older value) while it moves from a memtable
//! to a table.
//!
//! Each test prints its seed; `FLOE_SEED` replays the readers' choices (the interleaving
//! of threads is, of course, not replayable).

pub mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use floe::{Db, Options, WriteBatch};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const WRITERS: usize = 4;
const READERS: usize = 2;

fn options(write_buffer: usize) -> Options {
    Options::default()
        .write_buffer_size(write_buffer)
        .block_size(64)
}

/// A value that names the writer and round that wrote it, padded so memtables fill fast.
fn tagged(writer: usize, round: usize) -> Vec<u8> {
    let mut value = format!("{writer}:{round}:").into_bytes();
    value.resize(value.len() + 40, b'.');
    value
}

/// The (writer, round) a [`tagged`] value names.
fn tag_of(value: &[u8]) -> (usize, usize) {
    let text = std::str::from_utf8(value).expect("a tagged value is text");
    let mut parts = text.split(':');
    let writer = parts.next().and_then(|p| p.parse().ok());
    let round = parts.next().and_then(|p| p.parse().ok());
    writer
        .zip(round)
        .unwrap_or_else(|| panic!("not a tagged value: {text:?}"))
}

fn single_key(writer: usize, index: usize) -> String {
    format!("w{writer}-{index:04}")
}

/// Writers overwrite their own keys round after round while readers look up keys whose
/// writes were already acknowledged: each must be found, with a value at least as new as
/// the acknowledged one; after the join every key holds its last value, before and after
/// a reopen.
#[test]
fn acknowledged_writes_are_never_lost_or_hidden_across_freezes() {
    const KEYS: usize = 300;
    const ROUNDS: usize = 6;
    let seed = floe_testkit::seed("acknowledged_writes_are_never_lost_or_hidden_across_freezes");
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), options(2048)).unwrap();
    // progress[w] = how many of writer w's writes (round * KEYS + index) are acknowledged.
    let progress: Arc<Vec<AtomicUsize>> =
        Arc::new((0..WRITERS).map(|_| AtomicUsize::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (db, progress) = (db.clone(), Arc::clone(&progress));
            thread::spawn(move || {
                for round in 0..ROUNDS {
                    for index in 0..KEYS {
                        db.put(single_key(w, index), tagged(w, round))
                            .unwrap_or_else(|e| {
                                panic!("writer {w} round {round} key {index}: {e}")
                            });
                        progress[w].store(round * KEYS + index + 1, Ordering::Release);
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (db, progress, done) = (db.clone(), Arc::clone(&progress), Arc::clone(&done));
            thread::spawn(move || {
                let mut rng = SmallRng::seed_from_u64(seed ^ r as u64);
                let mut checks = 0usize;
                loop {
                    // Read the flag first, so that one full pass happens after the writers end.
                    let finished = done.load(Ordering::Acquire);
                    let w = rng.random_range(0..WRITERS);
                    let acked = progress[w].load(Ordering::Acquire);
                    if acked > 0 {
                        if rng.random_bool(0.9) {
                            let n = rng.random_range(0..acked);
                            let (round, index) = (n / KEYS, n % KEYS);
                            let key = single_key(w, index);
                            let value = db
                                .get(&key)
                                .unwrap_or_else(|e| panic!("reader {r}: get {key}: {e}"))
                                .unwrap_or_else(|| {
                                    panic!("reader {r}: acknowledged key {key} (round {round}) is missing")
                                });
                            let seen = tag_of(&value);
                            assert!(
                                seen.0 == w && seen.1 >= round,
                                "reader {r}: {key} holds {seen:?}, older than the acknowledged round {round}"
                            );
                        } else {
                            // A scan must show every key acknowledged before it started.
                            let items = common::collect(db.prefix(format!("w{w}-")), "scan");
                            let want = acked.min(KEYS);
                            assert!(
                                items.len() >= want,
                                "reader {r}: prefix scan of writer {w} shows {} keys, {want} were acknowledged",
                                items.len()
                            );
                            let last_round = (acked - 1) / KEYS;
                            for (k, v) in &items {
                                let index: usize = std::str::from_utf8(&k[3..]).unwrap().parse().unwrap();
                                let floor = if index < acked - last_round * KEYS { last_round } else { last_round.saturating_sub(1) };
                                let seen = tag_of(v);
                                assert!(
                                    seen.1 >= floor,
                                    "reader {r}: scan shows {} at round {}, acknowledged round {floor}",
                                    common::show(k),
                                    seen.1
                                );
                            }
                        }
                        checks += 1;
                    }
                    if finished {
                        return checks;
                    }
                }
            })
        })
        .collect();
    // Manual flushes and compactions race with the background ones and with the writers.
    let maintenance = {
        let (db, done) = (db.clone(), Arc::clone(&done));
        thread::spawn(move || {
            let mut rounds = 0usize;
            while !done.load(Ordering::Acquire) {
                db.flush().unwrap_or_else(|e| panic!("flush: {e}"));
                if rounds % 4 == 3 {
                    db.compact().unwrap_or_else(|e| panic!("compact: {e}"));
                }
                rounds += 1;
                thread::yield_now();
            }
            rounds
        })
    };
    for writer in writers {
        writer.join().expect("a writer panicked");
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        let checks = reader.join().expect("a reader panicked");
        assert!(checks > 0, "a reader never checked anything");
    }
    maintenance.join().expect("the maintenance thread panicked");
    let check_final = |db: &Db, stage: &str| {
        for w in 0..WRITERS {
            for index in 0..KEYS {
                let key = single_key(w, index);
                let value = db
                    .get(&key)
                    .unwrap()
                    .unwrap_or_else(|| panic!("{stage}: {key} lost"));
                assert_eq!(
                    tag_of(&value),
                    (w, ROUNDS - 1),
                    "{stage}: {key} lost its last write"
                );
            }
        }
        assert_eq!(
            common::collect(db.iter(), stage).len(),
            WRITERS * KEYS,
            "{stage}"
        );
    };
    check_final(&db, "after join");
    db.close().unwrap();
    let db = Db::open_with(dir.path(), options(2048)).unwrap();
    check_final(&db, "after reopen");
    db.close().unwrap();
}

/// Writers with `sync(true)` share fsyncs through group commit; each reads its own write
/// as soon as the call returns (a synced group is inserted and published by its leader
/// before anyone in it returns), and every write they were told is durable is there, in
/// this handle and after a reopen.
#[test]
fn synced_writers_sharing_group_commits_lose_nothing() {
    const WRITES: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    let open = || Db::open_with(dir.path(), options(4096).sync(true)).unwrap();
    let db = open();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let db = db.clone();
            thread::spawn(move || {
                for i in 0..WRITES {
                    if i % 3 == 0 {
                        let mut batch = WriteBatch::new();
                        batch.put(single_key(w, i), tagged(w, i));
                        batch.put(format!("batch{w}-{i:04}"), tagged(w, i));
                        db.write(batch).unwrap();
                    } else {
                        db.put(single_key(w, i), tagged(w, i)).unwrap();
                    }
                    assert_eq!(
                        db.get(single_key(w, i)).unwrap().as_deref(),
                        Some(&tagged(w, i)[..]),
                        "writer {w} cannot read its write {i} back"
                    );
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("a writer panicked");
    }
    let stats = db.stats();
    let writes = (WRITERS * WRITES) as u64;
    assert_eq!(stats.writes, writes);
    assert!(
        (1..=writes).contains(&stats.write_groups) && stats.log_syncs == stats.write_groups,
        "every group of synced writes syncs once: {stats:?}"
    );
    let check = |db: &Db, stage: &str| {
        for w in 0..WRITERS {
            for i in 0..WRITES {
                let got = db.get(single_key(w, i)).unwrap();
                assert_eq!(
                    got.as_deref(),
                    Some(&tagged(w, i)[..]),
                    "{stage}: writer {w} write {i}"
                );
            }
        }
        let n = WRITERS * (WRITES + WRITES.div_ceil(3));
        assert_eq!(common::collect(db.iter(), stage).len(), n, "{stage}");
    };
    check(&db, "after join");
    drop(db);
    let db = open();
    check(&db, "after reopen");
    db.close().unwrap();
}

/// Checks that `items` (sorted pairs of one group of `GROUP` keys) are all from one batch:
/// all absent, or all present with the same tag. Returns that tag.
fn one_batch(items: &[(Vec<u8>, Vec<u8>)], group: usize, what: &str) -> Option<(usize, usize)> {
    if items.is_empty() {
        return None;
    }
    assert_eq!(
        items.len(),
        group,
        "{what}: {} of the {group} keys of one batch are visible: {:?}",
        items.len(),
        items
            .iter()
            .map(|(k, v)| (common::show(k), tag_of(v)))
            .collect::<Vec<_>>()
    );
    let first = tag_of(&items[0].1);
    for (k, v) in items {
        assert_eq!(
            tag_of(v),
            first,
            "{what}: {} is from another batch than {}",
            common::show(k),
            common::show(&items[0].0)
        );
    }
    Some(first)
}

/// Writers write batches that set (or, every fifth round, delete) a whole group of keys
/// with one tag: their own group and a group all writers share. Readers use snapshots,
/// iterators consumed slowly, prefixes and point reads, and must always see whole
/// batches, never older than the last batch acknowledged before the read started.
#[test]
fn readers_never_see_half_a_batch() {
    const GROUP: usize = 8;
    const ROUNDS: usize = 300;
    let seed = floe_testkit::seed("readers_never_see_half_a_batch");
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), options(1024)).unwrap();
    let acked: Arc<Vec<AtomicUsize>> =
        Arc::new((0..WRITERS).map(|_| AtomicUsize::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let own = |w: usize, i: usize| format!("own{w}-{i}");
    let shared = |i: usize| format!("shared-{i}");

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (db, acked) = (db.clone(), Arc::clone(&acked));
            thread::spawn(move || {
                // Round numbers start at 1 so that `acked == 0` means "nothing yet".
                for round in 1..=ROUNDS {
                    let mut batch = WriteBatch::new();
                    for i in 0..GROUP {
                        if round % 5 == 4 {
                            batch.delete(own(w, i));
                        } else {
                            batch.put(own(w, i), tagged(w, round));
                        }
                        batch.put(shared(i), tagged(w, round));
                    }
                    db.write(batch)
                        .unwrap_or_else(|e| panic!("writer {w} round {round}: {e}"));
                    acked[w].store(round, Ordering::Release);
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (db, acked, done) = (db.clone(), Arc::clone(&acked), Arc::clone(&done));
            thread::spawn(move || {
                let mut rng = SmallRng::seed_from_u64(seed ^ (r as u64) << 8);
                let mut checks = 0usize;
                loop {
                    let finished = done.load(Ordering::Acquire);
                    let floor: Vec<usize> = acked.iter().map(|a| a.load(Ordering::Acquire)).collect();
                    let check_own = |w: usize, tag: Option<(usize, usize)>, what: &str| {
                        if let Some((writer, round)) = tag {
                            assert_eq!(writer, w, "{what}");
                            assert!(
                                round >= floor[w],
                                "{what}: writer {w}'s group shows round {round}, round {} was acknowledged",
                                floor[w]
                            );
                        }
                    };
                    match rng.random_range(0..4) {
                        0 => {
                            // A snapshot, read key by key, after yielding to the writers.
                            let snapshot = db.snapshot();
                            thread::yield_now();
                            for w in 0..WRITERS {
                                let items: Vec<_> = (0..GROUP)
                                    .filter_map(|i| {
                                        snapshot
                                            .get(own(w, i))
                                            .unwrap()
                                            .map(|v| (own(w, i).into_bytes(), v.to_vec()))
                                    })
                                    .collect();
                                let what = format!("reader {r}: snapshot gets of writer {w}");
                                check_own(w, one_batch(&items, GROUP, &what), &what);
                            }
                            let items: Vec<_> = (0..GROUP)
                                .filter_map(|i| {
                                    snapshot
                                        .get(shared(i))
                                        .unwrap()
                                        .map(|v| (shared(i).into_bytes(), v.to_vec()))
                                })
                                .collect();
                            let tag = one_batch(&items, GROUP, &format!("reader {r}: snapshot shared gets"));
                            if floor.iter().any(|&f| f > 0) {
                                assert!(tag.is_some(), "reader {r}: shared group vanished");
                            }
                        }
                        1 => {
                            // A whole-space iterator consumed slowly while freezes go on.
                            let mut items: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                            let backwards = rng.random_bool(0.5);
                            let iter = db.iter();
                            let iter: Box<dyn Iterator<Item = _>> =
                                if backwards { Box::new(iter.rev()) } else { Box::new(iter) };
                            for item in iter {
                                let (k, v) = item.unwrap();
                                items.push((k.to_vec(), v.to_vec()));
                                thread::yield_now();
                            }
                            if backwards {
                                items.reverse();
                            }
                            for w in 0..WRITERS {
                                let prefix = format!("own{w}-");
                                let group: Vec<_> =
                                    items.iter().filter(|(k, _)| k.starts_with(prefix.as_bytes())).cloned().collect();
                                let what = format!("reader {r}: iterator over writer {w} (backwards={backwards})");
                                check_own(w, one_batch(&group, GROUP, &what), &what);
                            }
                            let group: Vec<_> =
                                items.iter().filter(|(k, _)| k.starts_with(b"shared-")).cloned().collect();
                            one_batch(&group, GROUP, &format!("reader {r}: iterator over shared"));
                        }
                        2 => {
                            let w = rng.random_range(0..WRITERS);
                            let items = common::collect(db.prefix(format!("own{w}-")), "prefix");
                            let what = format!("reader {r}: prefix of writer {w}");
                            check_own(w, one_batch(&items, GROUP, &what), &what);
                            let items = common::collect(db.range("shared-".."shared-\u{ff}"), "range");
                            one_batch(&items, GROUP, &format!("reader {r}: range over shared"));
                        }
                        _ => {
                            // A plain get of an acknowledged put round is never older.
                            let w = rng.random_range(0..WRITERS);
                            let i = rng.random_range(0..GROUP);
                            // Absence proves nothing here (a delete round may have landed
                            // since the read of `floor`); the whole-group checks above catch
                            // lost batches.
                            if let Some(v) = db.get(own(w, i)).unwrap() {
                                let what = format!("reader {r}: get {}", own(w, i));
                                check_own(w, Some(tag_of(&v)), &what);
                            }
                        }
                    }
                    checks += 1;
                    if finished {
                        return checks;
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("a writer panicked");
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().expect("a reader panicked") > 0);
    }
    // The final state: every own group at the last round (which puts), and the shared group
    // whole, from some writer's last round.
    assert_ne!(ROUNDS % 5, 4, "the last round must put");
    for w in 0..WRITERS {
        let items = common::collect(db.prefix(format!("own{w}-")), "final");
        assert_eq!(one_batch(&items, GROUP, "final"), Some((w, ROUNDS)));
    }
    let items = common::collect(db.prefix("shared-"), "final");
    assert_eq!(
        one_batch(&items, GROUP, "final shared").map(|t| t.1),
        Some(ROUNDS)
    );
    db.close().unwrap();
}
