//! A `kill -9` harness. The test binary re-executes itself as a child that opens the
//! database and applies a deterministic sequence of operations (puts, deletes, range
//! deletes and batches), printing `ack <i>` after each one returns; the parent kills it
//! at a random moment (some kills land during `open`), reopens the database and checks
//! that it holds exactly the effect of operations `0..k` for some `k` after the last
//! acknowledged one: every acknowledged write is there, and there are no holes, no half batches and no resurrected deletes.
//! The next cycle continues the sequence on the same directory.
//!
//! A second harness runs several writer threads in the child, each with its own keys and
//! its own sequence, so that kills land in the middle of group commits: each writer's
//! keys must then hold exactly the effect of a prefix of that writer's sequence.
//!
//! The seed is printed; `FLOE_SEED` replays the operations and the parent's choices
//! (the timing of a kill is not replayable), and `FLOE_CRASH_CYCLES` sets the number of
//! cycles.

pub mod common;
pub mod kill_harness;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Child;
use std::thread;

use common::Model;
use floe::{Db, Options, WriteBatch};
use floe_testkit::env_required;
use kill_harness::{KillAt, say};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const CHILD_DIR: &str = "FLOE_CRASH_CHILD_DIR";
const CHILD_SEED: &str = "FLOE_CRASH_CHILD_SEED";
const CHILD_START: &str = "FLOE_CRASH_CHILD_START";
const CHILD_SYNC: &str = "FLOE_CRASH_CHILD_SYNC";
const CHILD_BUFFER: &str = "FLOE_CRASH_CHILD_BUFFER";
const CHILD_WRITERS: &str = "FLOE_CRASH_CHILD_WRITERS";

/// How many operations one child applies at most; the parent kills it long before.
const CHILD_OPS: usize = 100_000;
/// How many distinct keys the operations touch, so that overwrites and deletes of present
/// keys are common.
const KEY_SPACE: u64 = 120;

/// One operation of the sequence.
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    /// The deletion of every key in `[start, end)`.
    DeleteRange(Vec<u8>, Vec<u8>),
    /// Puts (`Some`) and deletes (`None`), applied atomically.
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
}

/// The `n`th key of `writer`'s key space.
fn key_of(writer: usize, n: u64) -> Vec<u8> {
    format!("w{writer}-key{n:03}").into_bytes()
}

/// Operation `i` of `writer`'s sequence under `seed`: a pure function of the three, so
/// the child can start anywhere and the parent can compute the model independently.
/// Every value names its writer and operation, so a failure message shows where a value
/// came from.
fn op(seed: u64, writer: usize, i: usize) -> Op {
    let mut rng = SmallRng::seed_from_u64(
        seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (writer as u64 + 1).wrapping_mul(0xd1b5_4a32_d192_ed03),
    );
    let key = |rng: &mut SmallRng| key_of(writer, rng.random_range(0..KEY_SPACE));
    let value = |rng: &mut SmallRng, part: usize| {
        let mut v = format!("w{writer}op{i}.{part}:").into_bytes();
        let pad = rng.random_range(0..160);
        v.extend((0..pad).map(|n| b'a' + (n % 26) as u8));
        v
    };
    match rng.random_range(0..10) {
        0..5 => Op::Put(key(&mut rng), value(&mut rng, 0)),
        5 => Op::Delete(key(&mut rng)),
        6 => {
            let start = rng.random_range(0..KEY_SPACE);
            let end = start + rng.random_range(1..30);
            Op::DeleteRange(key_of(writer, start), key_of(writer, end))
        }
        _ => Op::Batch(
            (0..rng.random_range(2..12))
                .map(|part| {
                    let k = key(&mut rng);
                    let v = rng.random_bool(0.75).then(|| value(&mut rng, part));
                    (k, v)
                })
                .collect(),
        ),
    }
}

/// A readable form of an operation for failure messages.
fn describe(op: &Op) -> String {
    let entry = |k: &[u8], v: Option<&Vec<u8>>| match v {
        Some(v) => format!("put {} = {}", common::show(k), common::show(v)),
        None => format!("delete {}", common::show(k)),
    };
    match op {
        Op::Put(k, v) => entry(k, Some(v)),
        Op::Delete(k) => entry(k, None),
        Op::DeleteRange(start, end) => {
            format!(
                "delete range {}..{}",
                common::show(start),
                common::show(end)
            )
        }
        Op::Batch(entries) => {
            let parts: Vec<_> = entries.iter().map(|(k, v)| entry(k, v.as_ref())).collect();
            format!("batch [{}]", parts.join(", "))
        }
    }
}

fn apply_to_model(model: &mut Model, op: &Op) {
    match op {
        Op::Put(k, v) => {
            model.insert(k.clone(), v.clone());
        }
        Op::Delete(k) => {
            model.remove(k);
        }
        Op::DeleteRange(start, end) => {
            model.retain(|k, _| k < start || k >= end);
        }
        Op::Batch(entries) => {
            for (k, v) in entries {
                match v {
                    Some(v) => model.insert(k.clone(), v.clone()),
                    None => model.remove(k),
                };
            }
        }
    }
}

fn apply_to_db(db: &Db, op: Op) -> floe::Result<()> {
    match op {
        Op::Put(k, v) => db.put(k, v),
        Op::Delete(k) => db.delete(k),
        Op::DeleteRange(start, end) => db.delete_range(start..end),
        Op::Batch(entries) => {
            let mut batch = WriteBatch::new();
            for (k, v) in entries {
                match v {
                    Some(v) => batch.put(k, v),
                    None => batch.delete(k),
                }
            }
            db.write(batch)
        }
    }
}

fn options(sync: bool, buffer: usize) -> Options {
    Options::default()
        .write_buffer_size(buffer)
        .sync(sync)
        .block_size(128)
}

/// The child half of the harnesses: it runs only when the parent re-executes this binary
/// with `FLOE_CRASH_CHILD_DIR` set; in a normal run it has nothing to do.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let seed: u64 = env_required(CHILD_SEED);
    let starts = kill_harness::child_starts(CHILD_START);
    let sync = env_required::<u8>(CHILD_SYNC) == 1;
    let buffer: usize = env_required(CHILD_BUFFER);
    assert_eq!(starts.len(), env_required::<usize>(CHILD_WRITERS));
    // The test harness has already printed "test crash_child ... " without a newline;
    // an empty line first keeps every line below whole.
    say("");
    say("opening");
    let db = Db::open_with(&dir, options(sync, buffer)).expect("child: open");
    say("opened");
    thread::scope(|scope| {
        for (writer, &start) in starts.iter().enumerate() {
            let db = &db;
            scope.spawn(move || {
                for i in start..start + CHILD_OPS {
                    apply_to_db(db, op(seed, writer, i))
                        .unwrap_or_else(|e| panic!("child: writer {writer} op {i}: {e}"));
                    say(&format!("ack {writer} {i}"));
                    // Manual flushes and compactions now and then (from any writer, racing
                    // the others), so that kills also land in the middle of writing tables,
                    // editing the manifest and deleting obsolete files.
                    if i % 331 == 330 {
                        db.compact()
                            .unwrap_or_else(|e| panic!("child: compact after op {i}: {e}"));
                    } else if i % 97 == 96 {
                        db.flush()
                            .unwrap_or_else(|e| panic!("child: flush after op {i}: {e}"));
                    }
                }
            });
        }
    });
    db.close().expect("child: close");
    say("done");
}

/// Records in `last` the operation an ack line (`<writer> <i>`) acknowledges.
fn record_ack(last: &mut [Option<usize>], rest: &str) {
    let mut parts = rest
        .split(' ')
        .map(|p| p.parse::<usize>().expect("an ack line"));
    let (writer, n) = (parts.next().unwrap(), parts.next().unwrap());
    last[writer] = Some(n);
}

fn spawn_child(dir: &Path, seed: u64, starts: &[usize], sync: bool, buffer: usize) -> Child {
    kill_harness::spawn_child(
        "crash_child",
        &[
            (CHILD_DIR, dir.as_os_str()),
            (CHILD_SEED, OsStr::new(&seed.to_string())),
            (CHILD_START, OsStr::new(&kill_harness::join_starts(starts))),
            (CHILD_WRITERS, OsStr::new(&starts.len().to_string())),
            (CHILD_SYNC, OsStr::new(if sync { "1" } else { "0" })),
            (CHILD_BUFFER, OsStr::new(&buffer.to_string())),
        ],
    )
}

/// Reads the whole state of `db` and checks that reverse iteration agrees with it.
fn read_state(db: &Db, what: &str) -> Model {
    let forward = common::collect(db.iter(), what);
    let mut backward = common::collect_rev(db.iter(), what);
    backward.reverse();
    common::assert_pairs(&backward, &forward, &format!("{what}: reverse iteration"));
    forward.into_iter().collect()
}

#[test]
fn kill_9_keeps_every_acknowledged_write_and_a_consistent_prefix() {
    let seed = floe_testkit::seed("kill_9_keeps_every_acknowledged_write_and_a_consistent_prefix");
    harness(seed, 1, floe_testkit::env_usize("FLOE_CRASH_CYCLES", 30));
}

#[test]
fn kill_9_during_group_commits_keeps_each_writers_prefix() {
    let seed = floe_testkit::seed("kill_9_during_group_commits_keeps_each_writers_prefix");
    harness(
        seed,
        4,
        floe_testkit::env_usize("FLOE_CRASH_CYCLES", 30).div_ceil(2),
    );
}

/// Runs `cycles` kill cycles of a child with `writers` writer threads on one directory.
fn harness(seed: u64, writers: usize, cycles: usize) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    // models[w] is the effect of writer w's first applied[w] operations: what the
    // directory must hold in w's keys.
    let mut models = vec![Model::new(); writers];
    let mut applied = vec![0usize; writers];
    let mut kills_during_open = 0;

    for cycle in 0..cycles {
        let sync = rng.random_bool(0.3);
        let buffer = [1024, 2048, 4096][rng.random_range(0..3)];
        let kill_at = KillAt::pick(&mut rng, 4, 1..300, 0..2000);
        let in_place = rng.random_bool(0.25);
        let what = format!(
            "seed {seed} writers {writers} cycle {cycle} (start at ops {applied:?}, sync {sync}, \
             buffer {buffer}, kill {kill_at:?}, checked in place {in_place})"
        );
        let child = spawn_child(dir.path(), seed, &applied, sync, buffer);
        let killed = kill_harness::kill_at(child, kill_at, vec![None; writers], |last, rest| {
            record_ack(last, rest)
        });
        let last_acks = &killed.acks;
        if !killed.opened && last_acks.iter().all(Option::is_none) {
            kills_during_open += 1;
        }
        killed.assert_killed(&what);

        // Usually the check runs on a copy, so that the next child recovers from exactly
        // what the kill left (and may itself be killed while recovering it); sometimes it
        // runs in place, so that the next child opens a directory recovered and closed.
        let scratch = tempfile::tempdir().unwrap();
        let check_dir = kill_harness::check_dir(dir.path(), in_place, scratch.path());
        let db = Db::open_with(check_dir, options(sync, buffer))
            .unwrap_or_else(|e| panic!("{what}: reopen after the kill: {e}"));
        let state = read_state(&db, &what);
        let mut seen_keys = 0;
        for writer in 0..writers {
            let what = format!("{what}, writer {writer}");
            let prefix = format!("w{writer}-").into_bytes();
            let mine: Model = state
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            seen_keys += mine.len();
            // Every acknowledged operation must be there; at most the one in flight beyond.
            let last_ack = last_acks[writer];
            let acked_end = last_ack.map_or(applied[writer], |n| n + 1);
            assert!(
                acked_end >= applied[writer],
                "{what}: ack {last_ack:?} before the start"
            );
            let model = &mut models[writer];
            for i in applied[writer]..acked_end {
                apply_to_model(model, &op(seed, writer, i));
            }
            let in_flight = op(seed, writer, acked_end);
            let mut with_next = model.clone();
            apply_to_model(&mut with_next, &in_flight);
            if mine == *model {
                applied[writer] = acked_end;
            } else if mine == with_next {
                applied[writer] = acked_end + 1;
                *model = with_next;
            } else {
                let got: Vec<_> = mine.into_iter().collect();
                panic!(
                    "{what}: after the kill (last ack {last_ack:?}) the writer's keys are neither \
                     the effect of its ops 0..{acked_end} ({}) nor of its ops 0..{} ({}); the op \
                     in flight was {}",
                    common::first_difference(&got, &common::model_all(model)).unwrap_or_default(),
                    acked_end + 1,
                    common::first_difference(&got, &common::model_all(&with_next))
                        .unwrap_or_default(),
                    describe(&in_flight),
                );
            }
            // Point reads agree with the scan, for present and deleted keys alike.
            for n in 0..KEY_SPACE {
                let key = key_of(writer, n);
                let got = db
                    .get(&key)
                    .unwrap_or_else(|e| panic!("{what}: get: {e}"))
                    .map(|v| v.to_vec());
                assert_eq!(
                    got.as_ref(),
                    model.get(&key),
                    "{what}: get({})",
                    common::show(&key)
                );
            }
        }
        assert_eq!(seen_keys, state.len(), "{what}: keys no writer wrote");
        db.close().unwrap_or_else(|e| panic!("{what}: close: {e}"));
    }
    println!(
        "seed {seed}: {writers} writers, {cycles} cycles, {applied:?} operations applied, \
         {kills_during_open} kills before the database opened"
    );
    assert!(
        applied.iter().all(|&n| n > 0),
        "a writer never had an operation acknowledged in {cycles} cycles: {applied:?}"
    );
}
