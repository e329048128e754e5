//! A `kill -9` harness for keyspaces, after the one in `crash.rs`: the test binary
//! re-executes itself as a child that applies a deterministic sequence of keyspace
//! operations (creations, drops, writes and batches across keyspaces, flushes), printing
//! `ack <i>` after each one returns; the parent kills it at a random moment, reopens the
//! database and checks that every keyspace and its contents are exactly the effect of
//! operations `0..k`, for `k` the end of the acknowledged ones or one more (the operation
//! in flight). The next cycle continues the sequence on the same directory.
//!
//! Three scenarios:
//! - a quiet keyspace that never fills its memtable beside a busy one that flushes all
//!   the time: the busy one's flushes must not delete the log segments that hold the
//!   quiet one's unflushed writes;
//! - batches across three keyspaces with separate tiny buffers: after a kill they agree
//!   (all or none of each batch) and hold a prefix;
//! - keyspaces created, written and dropped in a loop: each is whole or gone after a
//!   kill, and once everything is dropped no table file remains.
//!
//! The seed is printed; `FLOE_SEED` replays the operations and the parent's choices (the
//! timing of a kill is not replayable), and `FLOE_CRASH_CYCLES` sets the number of
//! cycles.

pub mod common;
pub mod keyspace_common;
pub mod kill_harness;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Child;

use common::Model;
use floe::{Db, Keyspace, KeyspaceOptions, Options, WriteBatch};
use floe_testkit::env_required;
use keyspace_common::{DEFAULT, tables_under};
use kill_harness::{KillAt, say};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const CHILD_DIR: &str = "FLOE_KS_CRASH_CHILD_DIR";
const CHILD_SEED: &str = "FLOE_KS_CRASH_CHILD_SEED";
const CHILD_START: &str = "FLOE_KS_CRASH_CHILD_START";
const CHILD_SCENARIO: &str = "FLOE_KS_CRASH_CHILD_SCENARIO";

/// How many operations one child applies at most; the parent kills it long before.
const CHILD_OPS: usize = 1_000_000;

/// Every keyspace's contents by name, `default` included: what the directory must hold.
type World = BTreeMap<String, Model>;

fn empty_world() -> World {
    World::from([(DEFAULT.to_owned(), Model::new())])
}

/// One operation of a sequence.
#[derive(Debug, Clone)]
enum Op {
    /// Creates the keyspace with this write buffer size.
    Create(String, usize),
    Drop(String),
    /// One entry is a plain `put` or `delete` on the keyspace's handle; more are one batch.
    Write(Vec<(String, Vec<u8>, Option<Vec<u8>>)>),
    Flush,
}

/// A readable form of an operation for failure messages.
fn describe(op: &Op) -> String {
    match op {
        Op::Create(name, buffer) => format!("create {name:?} (write buffer {buffer})"),
        Op::Drop(name) => format!("drop {name:?}"),
        Op::Flush => "flush".to_owned(),
        Op::Write(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|(ks, k, v)| match v {
                    Some(v) => format!("{ks}: put {} = {}", common::show(k), common::show(v)),
                    None => format!("{ks}: delete {}", common::show(k)),
                })
                .collect();
            format!("write [{}]", parts.join(", "))
        }
    }
}

fn apply_to_world(world: &mut World, op: &Op) {
    match op {
        Op::Create(name, _) => {
            world.entry(name.clone()).or_default();
        }
        Op::Drop(name) => {
            world.remove(name);
        }
        Op::Write(entries) => {
            for (ks, key, value) in entries {
                let model = world.get_mut(ks).expect("a write into a live keyspace");
                match value {
                    Some(value) => model.insert(key.clone(), value.clone()),
                    None => model.remove(key),
                };
            }
        }
        Op::Flush => {}
    }
}

fn apply_to_db(db: &Db, handles: &mut BTreeMap<String, Keyspace>, op: &Op) -> floe::Result<()> {
    match op {
        Op::Create(name, buffer) => {
            let options = KeyspaceOptions::default()
                .write_buffer_size(*buffer)
                .block_size(128);
            handles.insert(name.clone(), db.keyspace_with(name, options)?);
            Ok(())
        }
        Op::Drop(name) => {
            db.drop_keyspace(name)?;
            handles.remove(name);
            Ok(())
        }
        Op::Write(entries) if entries.len() == 1 => {
            let (ks, key, value) = &entries[0];
            match value {
                Some(value) => handles[ks].put(key, value),
                None => handles[ks].delete(key),
            }
        }
        Op::Write(entries) => {
            let mut batch = WriteBatch::new();
            for (ks, key, value) in entries {
                match value {
                    Some(value) => batch.put_in(&handles[ks], key, value),
                    None => batch.delete_in(&handles[ks], key),
                }
            }
            db.write(batch)
        }
        Op::Flush => db.flush(),
    }
}

fn padded(text: String, pad: usize) -> Vec<u8> {
    let mut value = text.into_bytes();
    value.extend((0..pad).map(|n| b'a' + (n % 26) as u8));
    value
}

/// The names the create-and-drop scenario draws from: plain ones, one with a space, one
/// in Cyrillic and one of the longest valid length.
fn churn_names() -> Vec<String> {
    vec![
        "ks0".to_owned(),
        "ks1".to_owned(),
        "ks2".to_owned(),
        "with space".to_owned(),
        "ключ".to_owned(),
        "L".repeat(255),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    QuietAndBusy,
    AtomicBatches,
    CreateAndDrop,
}

impl Scenario {
    fn code(self) -> &'static str {
        match self {
            Scenario::QuietAndBusy => "quiet-busy",
            Scenario::AtomicBatches => "batches",
            Scenario::CreateAndDrop => "create-drop",
        }
    }

    fn from_code(code: &str) -> Scenario {
        [
            Scenario::QuietAndBusy,
            Scenario::AtomicBatches,
            Scenario::CreateAndDrop,
        ]
        .into_iter()
        .find(|s| s.code() == code)
        .unwrap_or_else(|| panic!("child: unknown scenario {code:?}"))
    }

    fn options(self) -> Options {
        match self {
            // The database's buffer is the quiet keyspace's: it never fills. The busy one
            // has its own small one (16 KiB), and the total budget stays far away.
            Scenario::QuietAndBusy => Options::default()
                .write_buffer_size(1 << 20)
                .db_write_buffer_size(64 << 20)
                .block_size(128),
            // Each keyspace flushes when its own buffer fills (they differ), not when a
            // shared budget of a few KiB does.
            Scenario::AtomicBatches | Scenario::CreateAndDrop => Options::default()
                .write_buffer_size(1024)
                .db_write_buffer_size(1 << 20)
                .block_size(128),
        }
    }

    /// Operation `i` of the sequence under `seed`, given the world the operations before
    /// it made: a pure function of the three, so that a child can start anywhere and the
    /// parent can compute the model independently. Every value names its operation.
    fn op(self, seed: u64, i: usize, world: &World) -> Op {
        let mut rng =
            SmallRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        match self {
            Scenario::QuietAndBusy => match i {
                0 => Op::Create("quiet".to_owned(), 1 << 20),
                1 => Op::Create("busy".to_owned(), 16 << 10),
                _ if rng.random_range(0..25) == 0 => Op::Write(vec![(
                    "quiet".to_owned(),
                    format!("q{:02}", rng.random_range(0..30)).into_bytes(),
                    Some(padded(format!("quiet op {i}:"), rng.random_range(0..20))),
                )]),
                _ => {
                    let key = format!("b{:03}", rng.random_range(0..200)).into_bytes();
                    let value = rng
                        .random_bool(0.85)
                        .then(|| padded(format!("busy op {i}:"), rng.random_range(40..200)));
                    Op::Write(vec![("busy".to_owned(), key, value)])
                }
            },
            Scenario::AtomicBatches => match i {
                0 => Op::Create("A".to_owned(), 1024),
                1 => Op::Create("B".to_owned(), 6000),
                2 => Op::Create("C".to_owned(), 12_000),
                _ if rng.random_range(0..150) == 0 => Op::Flush,
                _ => {
                    let mut entries: Vec<_> = ["A", "B", "C"]
                        .into_iter()
                        .map(|ks| {
                            let value = padded(format!("{i:09}|{ks}|"), rng.random_range(0..40));
                            (ks.to_owned(), b"counter".to_vec(), Some(value))
                        })
                        .collect();
                    for part in 0..rng.random_range(1..7) {
                        let ks = ["A", "B", "C"][rng.random_range(0..3)].to_owned();
                        let key = format!("k{:02}", rng.random_range(0..40)).into_bytes();
                        let value = rng
                            .random_bool(0.8)
                            .then(|| padded(format!("op {i}.{part}:"), rng.random_range(20..120)));
                        entries.push((ks, key, value));
                    }
                    Op::Write(entries)
                }
            },
            Scenario::CreateAndDrop => {
                let names = churn_names();
                let live: Vec<&String> = names.iter().filter(|n| world.contains_key(*n)).collect();
                let missing: Vec<&String> =
                    names.iter().filter(|n| !world.contains_key(*n)).collect();
                let create = |rng: &mut SmallRng| {
                    let name = missing[rng.random_range(0..missing.len())].clone();
                    Op::Create(name, [1024, 10_000][rng.random_range(0..2)])
                };
                match rng.random_range(0..100) {
                    0..8 if !missing.is_empty() => create(&mut rng),
                    8..14 if !live.is_empty() => {
                        Op::Drop(live[rng.random_range(0..live.len())].clone())
                    }
                    14..17 => Op::Flush,
                    _ if live.is_empty() => create(&mut rng),
                    _ => Op::Write(
                        (0..rng.random_range(1..5))
                            .map(|part| {
                                let ks = live[rng.random_range(0..live.len())].clone();
                                let key = format!("k{:02}", rng.random_range(0..50)).into_bytes();
                                let value = rng.random_bool(0.8).then(|| {
                                    padded(format!("op {i}.{part}:"), rng.random_range(20..150))
                                });
                                (ks, key, value)
                            })
                            .collect(),
                    ),
                }
            }
        }
    }
}

/// The world after operations `0..end` of the scenario's sequence.
fn world_after(scenario: Scenario, seed: u64, end: usize) -> World {
    let mut world = empty_world();
    for i in 0..end {
        let op = scenario.op(seed, i, &world);
        apply_to_world(&mut world, &op);
    }
    world
}

/// The child half of the harnesses: it runs only when the parent re-executes this binary
/// with `FLOE_KS_CRASH_CHILD_DIR` set; in a normal run it has nothing to do.
#[test]
fn crash_keyspaces_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let seed: u64 = env_required(CHILD_SEED);
    let start: usize = env_required(CHILD_START);
    let scenario = Scenario::from_code(&env_required::<String>(CHILD_SCENARIO));
    // The test harness has already printed "test crash_keyspaces_child ... " without a
    // newline; an empty line first keeps every line below whole.
    say("");
    let mut world = world_after(scenario, seed, start);
    say("opening");
    let db = Db::open_with(&dir, scenario.options()).expect("child: open");
    say("opened");
    let names: Vec<String> = world.keys().cloned().collect();
    assert_eq!(db.keyspace_names(), names, "child: the names at open");
    let mut handles: BTreeMap<String, Keyspace> = names
        .iter()
        .map(|name| {
            (
                name.clone(),
                db.keyspace(name).expect("child: a live keyspace"),
            )
        })
        .collect();
    for i in start..start + CHILD_OPS {
        let op = scenario.op(seed, i, &world);
        apply_to_db(&db, &mut handles, &op)
            .unwrap_or_else(|e| panic!("child: op {i} ({}): {e}", describe(&op)));
        apply_to_world(&mut world, &op);
        say(&format!("ack {i}"));
    }
    drop(handles);
    db.close().expect("child: close");
    say("done");
}

fn spawn_child(dir: &Path, scenario: Scenario, seed: u64, start: usize) -> Child {
    kill_harness::spawn_child(
        "crash_keyspaces_child",
        &[
            (CHILD_DIR, dir.as_os_str()),
            (CHILD_SEED, OsStr::new(&seed.to_string())),
            (CHILD_START, OsStr::new(&start.to_string())),
            (CHILD_SCENARIO, OsStr::new(scenario.code())),
        ],
    )
}

/// Reads every keyspace of `db` (forwards, checked against backwards), with a handle to
/// each. Only listed names are opened, so the read creates nothing.
fn read_world(db: &Db, what: &str) -> (World, BTreeMap<String, Keyspace>) {
    let mut world = World::new();
    let mut handles = BTreeMap::new();
    for name in db.keyspace_names() {
        let ks = db
            .keyspace(&name)
            .unwrap_or_else(|e| panic!("{what}: open the listed keyspace {name:?}: {e}"));
        let label = format!("{what}: keyspace {name:?}");
        let forward = common::collect(ks.iter(), &label);
        let mut backward = common::collect_rev(ks.iter(), &label);
        backward.reverse();
        common::assert_pairs(&backward, &forward, &format!("{label}: reverse iteration"));
        world.insert(name.clone(), forward.into_iter().collect());
        handles.insert(name, ks);
    }
    (world, handles)
}

/// Describes how `got` differs from `want`: the names, then the first keyspace whose
/// contents differ.
fn world_difference(got: &World, want: &World) -> String {
    let got_names: Vec<&String> = got.keys().collect();
    let want_names: Vec<&String> = want.keys().collect();
    if got_names != want_names {
        return format!("keyspaces {got_names:?} instead of {want_names:?}");
    }
    for (name, model) in want {
        let got_pairs = common::model_all(&got[name]);
        if let Some(diff) = common::first_difference(&got_pairs, &common::model_all(model)) {
            return format!("keyspace {name:?}: {diff}");
        }
    }
    "no difference".to_owned()
}

/// What the quiet keyspace lost: its acknowledged pairs that are missing or older.
fn quiet_losses(got: &World, want: &World) -> String {
    let (Some(got), Some(want)) = (got.get("quiet"), want.get("quiet")) else {
        return String::new();
    };
    let lost: Vec<String> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(*v))
        .map(|(k, v)| {
            format!(
                "{} = {} (found {})",
                common::show(k),
                common::show(v),
                got.get(k).map_or("nothing".to_owned(), |g| common::show(g))
            )
        })
        .collect();
    if lost.is_empty() {
        return String::new();
    }
    format!(
        "; the quiet keyspace lost {} acknowledged writes while the busy one flushed: {}",
        lost.len(),
        lost.join(", ")
    )
}

/// Runs `cycles` kill cycles of `scenario` on one directory.
fn harness(scenario: Scenario, seed: u64, cycles: usize, acks: std::ops::Range<usize>) -> World {
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    // `world` is the effect of the first `applied` operations: what the directory holds.
    let mut world = empty_world();
    let mut applied = 0usize;
    let mut kills_during_open = 0;
    let mut most_tables = 0;

    for cycle in 0..cycles {
        let kill_at = KillAt::pick(&mut rng, 5, acks.clone(), 0..2000);
        let in_place = rng.random_bool(0.25);
        let what = format!(
            "scenario {} seed {seed} cycle {cycle} (start at op {applied}, kill {kill_at:?}, \
             checked in place {in_place})",
            scenario.code()
        );
        let child = spawn_child(dir.path(), scenario, seed, applied);
        // The last operation acknowledged, from ack lines `<i>`.
        let killed = kill_harness::kill_at(child, kill_at, None, |last, n| {
            *last = Some(n.parse::<usize>().expect("an ack line"));
        });
        let last_ack = killed.acks;
        if !killed.opened && last_ack.is_none() {
            kills_during_open += 1;
        }
        killed.assert_killed(&what);
        most_tables = most_tables.max(tables_under(dir.path()).len());

        // Usually the check runs on a copy, so that the next child recovers from exactly
        // what the kill left (and may itself be killed while recovering it); sometimes it
        // runs in place, so that the next child opens a directory recovered and closed.
        let scratch = tempfile::tempdir().unwrap();
        let check_dir = kill_harness::check_dir(dir.path(), in_place, scratch.path());
        let db = Db::open_with(check_dir, scenario.options())
            .unwrap_or_else(|e| panic!("{what}: reopen after the kill: {e}"));
        let (got, handles) = read_world(&db, &what);

        // Every acknowledged operation must be there; at most the one in flight beyond.
        let acked_end = last_ack.map_or(applied, |n| n + 1);
        assert!(
            acked_end >= applied,
            "{what}: ack {last_ack:?} before the start"
        );
        let mut acked = world.clone();
        for i in applied..acked_end {
            let op = scenario.op(seed, i, &acked);
            apply_to_world(&mut acked, &op);
        }
        let in_flight = scenario.op(seed, acked_end, &acked);
        let mut with_next = acked.clone();
        apply_to_world(&mut with_next, &in_flight);
        if got == acked {
            applied = acked_end;
            world = acked;
        } else if got == with_next {
            applied = acked_end + 1;
            world = with_next;
        } else {
            panic!(
                "{what}: after the kill (last ack {last_ack:?}) the database is neither the \
                 effect of ops 0..{acked_end} ({}{}) nor of ops 0..{} ({}); the op in flight \
                 was {}",
                world_difference(&got, &acked),
                quiet_losses(&got, &acked),
                acked_end + 1,
                world_difference(&got, &with_next),
                describe(&in_flight),
            );
        }
        // Point reads agree with the scans, for present and absent keys alike.
        for (name, model) in &world {
            let ks = &handles[name];
            let probes = model
                .keys()
                .cloned()
                .chain([b"absent".to_vec(), b"k99".to_vec()]);
            for key in probes {
                let value = ks
                    .get(&key)
                    .unwrap_or_else(|e| panic!("{what}: {name}: get: {e}"))
                    .map(|v| v.to_vec());
                assert_eq!(
                    value.as_ref(),
                    model.get(&key),
                    "{what}: {name:?}: get({})",
                    common::show(&key)
                );
            }
        }
        if scenario == Scenario::AtomicBatches {
            let counters: Vec<Option<&[u8]>> = ["A", "B", "C"]
                .iter()
                .map(|ks| {
                    world
                        .get(*ks)
                        .and_then(|m| m.get(&b"counter"[..]))
                        .map(|v| &v[..9])
                })
                .collect();
            assert!(
                counters.iter().all(|c| *c == counters[0]),
                "{what}: half a batch: the counters of A, B and C are {counters:?}"
            );
        }
        drop(handles);
        if scenario == Scenario::CreateAndDrop && !in_place {
            // On the copy: dropping every keyspace must leave no table behind, neither the
            // dropped keyspaces' own nor orphans of a drop the kill interrupted.
            for name in world.keys().filter(|n| *n != DEFAULT) {
                db.drop_keyspace(name)
                    .unwrap_or_else(|e| panic!("{what}: drop {name:?} on the copy: {e}"));
            }
            db.close().unwrap_or_else(|e| panic!("{what}: close: {e}"));
            let db = Db::open_with(check_dir, scenario.options())
                .unwrap_or_else(|e| panic!("{what}: reopen after dropping everything: {e}"));
            assert_eq!(db.keyspace_names(), vec![DEFAULT.to_owned()], "{what}");
            db.close().unwrap();
            let tables = tables_under(check_dir);
            assert!(
                tables.is_empty(),
                "{what}: after dropping every keyspace and reopening, {} tables remain: {tables:?}",
                tables.len()
            );
        } else {
            db.close().unwrap_or_else(|e| panic!("{what}: close: {e}"));
        }
    }
    println!(
        "scenario {} seed {seed}: {cycles} cycles, {applied} operations applied, \
         {kills_during_open} kills before the database opened, at most {most_tables} tables \
         after a kill, keyspaces at the end {:?}",
        scenario.code(),
        world
            .iter()
            .map(|(n, m)| (n.chars().take(12).collect::<String>(), m.len()))
            .collect::<Vec<_>>()
    );
    assert!(
        applied > 3,
        "only {applied} operations were acknowledged in {cycles} cycles"
    );
    world
}

/// The classic shared-log bug: the busy keyspace's flush deletes the log segment that
/// still holds the quiet keyspace's unflushed writes, which a kill then loses.
#[test]
fn kill_9_keeps_a_quiet_keyspaces_writes_while_a_busy_one_flushes() {
    let seed = floe_testkit::seed("kill_9_keeps_a_quiet_keyspaces_writes_while_a_busy_one_flushes");
    let cycles = floe_testkit::env_usize("FLOE_CRASH_CYCLES", 10);
    let world = harness(Scenario::QuietAndBusy, seed, cycles, 200..1500);
    // A run whose kills never found acknowledged writes in the quiet keyspace could not
    // have caught the bug.
    assert!(
        !world["quiet"].is_empty(),
        "no write into the quiet keyspace was acknowledged in {cycles} cycles"
    );
}

/// Catches a batch across keyspaces that recovery applies to some of its keyspaces only,
/// or a recovery that keeps a later batch in one keyspace and loses an earlier one in
/// another (each keyspace flushing on its own schedule).
#[test]
fn kill_9_keeps_cross_keyspace_batches_whole_and_a_prefix() {
    let seed = floe_testkit::seed("kill_9_keeps_cross_keyspace_batches_whole_and_a_prefix");
    let cycles = floe_testkit::env_usize("FLOE_CRASH_CYCLES", 10);
    harness(Scenario::AtomicBatches, seed, cycles, 50..600);
}

/// Catches a creation or a drop that a kill leaves half done (a keyspace listed without
/// its writes, a dropped one back, a recreated name showing old data) and table files of
/// dropped keyspaces that nothing ever deletes.
#[test]
fn kill_9_during_keyspace_creates_and_drops_leaves_each_whole_or_gone() {
    let seed =
        floe_testkit::seed("kill_9_during_keyspace_creates_and_drops_leaves_each_whole_or_gone");
    let cycles = floe_testkit::env_usize("FLOE_CRASH_CYCLES", 10);
    harness(Scenario::CreateAndDrop, seed, cycles, 30..400);
}
