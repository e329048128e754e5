//! Keyspaces through the public API: each keyspace against its own `BTreeMap` model
//! through flushes, compactions, reopens, creations and drops; isolation between
//! keyspaces; reads through `Db`, `Keyspace` and `Snapshot`; batches across keyspaces that no snapshot or iterator sees
//! half of; snapshots that are one point in time for every keyspace; and per-write sync.
//! Names, creation, drop and dropped handles have their own suite,
//! `keyspaces_lifecycle.rs`.
//!
//! Randomized tests print their seed; `FLOE_SEED` replays one (the interleaving of
//! threads is not replayable). `FLOE_KS_OPS` sets the length of the model run and
//! `FLOE_KS_BATCHES` the number of batches each writer commits in the concurrent test.

pub mod common;
pub mod keyspace_common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;

use common::{
    Model, Pair, assert_pairs, collect, collect_rev, model_all, model_prefix, model_range,
};
use floe::{
    Bytes, Db, Iter, Keyspace, KeyspaceOptions, Options, Snapshot, WriteBatch, WriteOptions,
};
use keyspace_common::{
    DEFAULT, check_keyspace, is_dropped, keyspace, keyspace_with_tiny, open_tiny,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

// ---------------------------------------------------------------------------------------
// The model run.
// ---------------------------------------------------------------------------------------

/// How many distinct numbered keys each keyspace draws from.
const KEY_SPACE: u32 = 200;

/// The names the model run creates and drops besides `default`: plain ones, one with
/// spaces and punctuation, one in Cyrillic and one of the longest valid length.
fn pool_names() -> Vec<String> {
    vec![
        "a".to_owned(),
        "b".to_owned(),
        "ks with spaces.-_~!".to_owned(),
        "ключи".to_owned(),
        "n".repeat(255),
    ]
}

fn random_key(rng: &mut SmallRng) -> Vec<u8> {
    match rng.random_range(0..20) {
        0 => Vec::new(),
        1 => vec![0xff; rng.random_range(1..4)],
        _ => {
            let mut key = format!("{:03}", rng.random_range(0..KEY_SPACE)).into_bytes();
            match rng.random_range(0..8) {
                0 => key.push(0xff),
                1 => key.push(0x00),
                _ => {}
            }
            key
        }
    }
}

/// A value that names its keyspace and operation, so that a value showing up in the
/// wrong keyspace says where it came from.
fn random_value(rng: &mut SmallRng, keyspace: &str, op: usize) -> Vec<u8> {
    let tag: String = keyspace.chars().take(8).collect();
    let mut value = format!("{tag}#{op}.").into_bytes();
    // Mostly small values; now and then one larger than a whole memtable (one 4 KiB page)
    // and many times a block (64 bytes).
    let pad = match rng.random_range(0..100) {
        0..10 => 0,
        10..20 => rng.random_range(100..400),
        20..22 => rng.random_range(1000..6000),
        _ => rng.random_range(0..40),
    };
    value.extend((0..pad).map(|i| b'a' + (i % 26) as u8));
    value
}

fn random_bound(rng: &mut SmallRng) -> Bound<Vec<u8>> {
    match rng.random_range(0..5) {
        0 => Bound::Unbounded,
        1 | 2 => Bound::Included(random_key(rng)),
        _ => Bound::Excluded(random_key(rng)),
    }
}

/// Random options for a new keyspace, each within its documented range: small buffers
/// and blocks so that the keyspace flushes and compacts on its own schedule, unlike its
/// neighbours'.
fn random_keyspace_options(rng: &mut SmallRng) -> KeyspaceOptions {
    let mut options = KeyspaceOptions::default();
    if rng.random_bool(0.7) {
        options = options.write_buffer_size([1024, 8192, 20_000][rng.random_range(0..3)]);
    }
    if rng.random_bool(0.5) {
        options = options.block_size([64, 128, 4096][rng.random_range(0..3)]);
    }
    if rng.random_bool(0.3) {
        options = options.bloom_bits_per_key([0, 4, 10][rng.random_range(0..3)]);
    }
    if rng.random_bool(0.3) {
        options = options.target_file_size([512, 4096, 1 << 20][rng.random_range(0..3)]);
    }
    if rng.random_bool(0.3) {
        options = options.l0_compaction_trigger(rng.random_range(1..6));
    }
    if rng.random_bool(0.3) {
        options = options
            .max_bytes_for_level_base([2048, 16 << 10][rng.random_range(0..2)])
            .level_size_multiplier(rng.random_range(2..6));
    }
    options
}

/// The run's view of the database: each live keyspace's model and a handle to it.
struct World {
    models: BTreeMap<String, Model>,
    handles: BTreeMap<String, Keyspace>,
}

impl World {
    fn live_names(&self) -> Vec<String> {
        self.models.keys().cloned().collect()
    }

    fn random_live(&self, rng: &mut SmallRng) -> String {
        let names = self.live_names();
        names[rng.random_range(0..names.len())].clone()
    }

    /// Checks `keyspace_names` and every keyspace, the default one also through `Db`.
    fn check(&self, db: &Db, what: &str) {
        assert_eq!(
            db.keyspace_names(),
            self.live_names(),
            "{what}: keyspace_names"
        );
        for (name, model) in &self.models {
            let ks = &self.handles[name];
            assert_eq!(ks.name(), name, "{what}: the handle's name");
            check_keyspace(ks, model, what);
        }
        let label = format!("{what}: the default keyspace through Db::iter");
        assert_pairs(
            &collect(db.iter(), &label),
            &model_all(&self.models[DEFAULT]),
            &label,
        );
    }
}

/// A snapshot kept across later operations, with the models of the keyspaces it can
/// still be checked in: those that existed when it was taken and have not been dropped.
struct HeldSnapshot {
    snapshot: Snapshot,
    models: BTreeMap<String, Model>,
    taken_at: usize,
}

impl HeldSnapshot {
    fn check(&self, world: &World, what: &str) {
        let what = format!("{what}: snapshot taken at op {}", self.taken_at);
        for (name, model) in &self.models {
            let view = self.snapshot.keyspace(&world.handles[name]);
            let label = format!("{what}, keyspace {name:?}");
            assert_pairs(&collect(view.iter(), &label), &model_all(model), &label);
        }
        let label = format!("{what}, the default keyspace through the snapshot itself");
        assert_pairs(
            &collect(self.snapshot.iter(), &label),
            &model_all(&self.models[DEFAULT]),
            &label,
        );
    }
}

/// Checks a random read of one keyspace: a point read, a range or a prefix, either way.
fn random_read(rng: &mut SmallRng, ks: &Keyspace, model: &Model, what: &str) {
    let what = format!("{what}: keyspace {:?}", ks.name());
    match rng.random_range(0..3) {
        0 => {
            let key = random_key(rng);
            let got = ks
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
        1 => {
            let bounds = (random_bound(rng), random_bound(rng));
            let slices = (
                bounds.0.as_ref().map(Vec::as_slice),
                bounds.1.as_ref().map(Vec::as_slice),
            );
            let backwards = rng.random_bool(0.5);
            let mut want = model_range(model, slices);
            let label = format!("{what}: range {bounds:?} backwards={backwards}");
            let got = if backwards {
                want.reverse();
                collect_rev(ks.range::<&[u8], _>(slices), &label)
            } else {
                collect(ks.range::<&[u8], _>(slices), &label)
            };
            assert_pairs(&got, &want, &label);
        }
        _ => {
            let mut prefix = random_key(rng);
            prefix.truncate(rng.random_range(0..=prefix.len()));
            let backwards = rng.random_bool(0.5);
            let mut want = model_prefix(model, &prefix);
            let label = format!(
                "{what}: prefix {} backwards={backwards}",
                common::show(&prefix)
            );
            let got = if backwards {
                want.reverse();
                collect_rev(ks.prefix(&prefix), &label)
            } else {
                collect(ks.prefix(&prefix), &label)
            };
            assert_pairs(&got, &want, &label);
        }
    }
}

/// Catches a keyspace that leaks into another (shared key encoding, a merged iterator
/// over the wrong tables), loses writes when a neighbour flushes, compacts or is dropped,
/// resurrects a dropped keyspace's data under a recreated name, forgets a creation or a
/// drop across reopen, or lists its names wrongly.
#[test]
fn every_keyspace_matches_its_own_model_through_flushes_compactions_reopens_creates_and_drops() {
    let seed = floe_testkit::seed(
        "every_keyspace_matches_its_own_model_through_flushes_compactions_reopens_creates_and_drops",
    );
    let ops = floe_testkit::env_usize("FLOE_KS_OPS", 1000);
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut db = open_tiny(dir.path());
    let mut world = World {
        models: BTreeMap::from([(DEFAULT.to_owned(), Model::new())]),
        handles: BTreeMap::from([(DEFAULT.to_owned(), db.default_keyspace())]),
    };
    let pool = pool_names();
    let mut snapshots: Vec<HeldSnapshot> = Vec::new();
    let mut counts = BTreeMap::<&str, usize>::new();

    for op in 0..ops {
        let what = format!("seed {seed} op {op}");
        let name = world.random_live(&mut rng);
        let kind = match rng.random_range(0..1000) {
            0..300 => "put",
            300..400 => "delete",
            400..520 => "batch",
            520..720 => "read",
            720..740 => "flush",
            740..748 => "compact",
            748..758 => "reopen",
            758..782 => "create",
            782..797 => "drop",
            797..820 => "snapshot",
            820..835 => "reopen handle",
            _ => "get",
        };
        *counts.entry(kind).or_default() += 1;
        match kind {
            "put" => {
                let (key, value) = (random_key(&mut rng), random_value(&mut rng, &name, op));
                if name == DEFAULT && rng.random_bool(0.5) {
                    db.put(&key, &value)
                } else {
                    world.handles[&name].put(&key, &value)
                }
                .unwrap_or_else(|e| panic!("{what}: put in {name:?}: {e}"));
                world.models.get_mut(&name).unwrap().insert(key, value);
            }
            "delete" => {
                let model = &world.models[&name];
                let key = if !model.is_empty() && rng.random_bool(0.7) {
                    model
                        .keys()
                        .nth(rng.random_range(0..model.len()))
                        .unwrap()
                        .clone()
                } else {
                    random_key(&mut rng)
                };
                if name == DEFAULT && rng.random_bool(0.5) {
                    db.delete(&key)
                } else {
                    world.handles[&name].delete(&key)
                }
                .unwrap_or_else(|e| panic!("{what}: delete in {name:?}: {e}"));
                world.models.get_mut(&name).unwrap().remove(&key);
            }
            "batch" => {
                // Entries in several keyspaces, the default one also through the plain
                // `put` and `delete`; they apply in order, so the model applies them to
                // a copy that replaces it only once the batch is acknowledged.
                let mut batch = WriteBatch::new();
                let mut next = world.models.clone();
                for _ in 0..rng.random_range(1..12) {
                    let target = world.random_live(&mut rng);
                    let ks = &world.handles[&target];
                    let key = random_key(&mut rng);
                    let plain = target == DEFAULT && rng.random_bool(0.5);
                    if rng.random_bool(0.3) {
                        if plain {
                            batch.delete(&key);
                        } else {
                            batch.delete_in(ks, &key);
                        }
                        next.get_mut(&target).unwrap().remove(&key);
                    } else {
                        let value = random_value(&mut rng, &target, op);
                        if plain {
                            batch.put(&key, &value);
                        } else {
                            batch.put_in(ks, &key, &value);
                        }
                        next.get_mut(&target).unwrap().insert(key, value);
                    }
                }
                if rng.random_bool(0.5) {
                    db.write(batch)
                } else {
                    db.write_with(batch, &WriteOptions::default())
                }
                .unwrap_or_else(|e| panic!("{what}: batch: {e}"));
                world.models = next;
            }
            "read" => random_read(&mut rng, &world.handles[&name], &world.models[&name], &what),
            "flush" => {
                db.flush().unwrap_or_else(|e| panic!("{what}: flush: {e}"));
                world.check(&db, &format!("{what}: after a flush"));
            }
            "compact" => {
                db.compact()
                    .unwrap_or_else(|e| panic!("{what}: compact: {e}"));
                world.check(&db, &format!("{what}: after a compaction"));
            }
            "reopen" => {
                for held in snapshots.drain(..) {
                    held.check(&world, &what);
                }
                world.handles.clear();
                db.close().unwrap_or_else(|e| panic!("{what}: close: {e}"));
                db = open_tiny(dir.path());
                // The names must be checked before any `keyspace` call, which would
                // create a missing one.
                assert_eq!(
                    db.keyspace_names(),
                    world.live_names(),
                    "{what}: keyspace_names after reopen"
                );
                for name in world.live_names() {
                    let ks = if name == DEFAULT {
                        db.default_keyspace()
                    } else {
                        keyspace(&db, &name)
                    };
                    world.handles.insert(name, ks);
                }
                world.check(&db, &format!("{what}: after reopen"));
            }
            "create" => {
                let missing: Vec<&String> = pool
                    .iter()
                    .filter(|n| !world.models.contains_key(*n))
                    .collect();
                if missing.is_empty() {
                    continue;
                }
                let new = missing[rng.random_range(0..missing.len())].clone();
                let ks = if rng.random_bool(0.5) {
                    db.keyspace(&new)
                } else {
                    db.keyspace_with(&new, random_keyspace_options(&mut rng))
                }
                .unwrap_or_else(|e| panic!("{what}: create {new:?}: {e}"));
                assert_eq!(ks.name(), new, "{what}: the new handle's name");
                // A name may have been dropped before: none of its old data may show.
                world.models.insert(new.clone(), Model::new());
                world.handles.insert(new, ks);
                world.check(&db, &format!("{what}: after creating a keyspace"));
            }
            "drop" => {
                let droppable: Vec<String> = world
                    .live_names()
                    .into_iter()
                    .filter(|n| n != DEFAULT)
                    .collect();
                if droppable.is_empty() {
                    continue;
                }
                let doomed = droppable[rng.random_range(0..droppable.len())].clone();
                db.drop_keyspace(&doomed)
                    .unwrap_or_else(|e| panic!("{what}: drop {doomed:?}: {e}"));
                let old = world.handles.remove(&doomed).unwrap();
                world.models.remove(&doomed);
                for held in &mut snapshots {
                    held.models.remove(&doomed);
                }
                match old.get(b"000") {
                    Err(e) if is_dropped(&e) => {}
                    other => panic!(
                        "{what}: get on a handle of the dropped {doomed:?} returned {other:?}, \
                         not Error::KeyspaceDropped"
                    ),
                }
                world.check(&db, &format!("{what}: after dropping {doomed:?}"));
            }
            "snapshot" => {
                if snapshots.len() >= 3 {
                    let held = snapshots.remove(rng.random_range(0..snapshots.len()));
                    held.check(&world, &what);
                }
                snapshots.push(HeldSnapshot {
                    snapshot: db.snapshot(),
                    models: world.models.clone(),
                    taken_at: op,
                });
            }
            "reopen handle" => {
                // A second handle to a live keyspace reads and writes the same data.
                let ks = if name == DEFAULT && rng.random_bool(0.5) {
                    db.default_keyspace()
                } else {
                    keyspace(&db, &name)
                };
                check_keyspace(&ks, &world.models[&name], &format!("{what}: a new handle"));
                world.handles.insert(name, ks);
            }
            _ => {
                let key = random_key(&mut rng);
                let got = world.handles[&name]
                    .get(&key)
                    .unwrap_or_else(|e| panic!("{what}: get: {e}"))
                    .map(|v| v.to_vec());
                assert_eq!(
                    got.as_ref(),
                    world.models[&name].get(&key),
                    "{what}: get({}) in {name:?}",
                    common::show(&key)
                );
            }
        }
    }
    let what = format!("seed {seed} at the end");
    for held in snapshots.drain(..) {
        held.check(&world, &what);
    }
    world.check(&db, &what);
    db.compact().unwrap();
    world.check(&db, &format!("{what}, compacted"));
    world.handles.clear();
    db.close().unwrap();
    let db = open_tiny(dir.path());
    assert_eq!(
        db.keyspace_names(),
        world.live_names(),
        "{what}: names after reopen"
    );
    for name in world.live_names() {
        let ks = keyspace(&db, &name);
        world.handles.insert(name, ks);
    }
    world.check(&db, &format!("{what}, reopened"));
    let sizes: Vec<usize> = world.models.values().map(Model::len).collect();
    println!("seed {seed}: {ops} operations, by kind {counts:?}, keys per keyspace {sizes:?}");
    world.handles.clear();
    db.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// Isolation and the read trait.
// ---------------------------------------------------------------------------------------

/// Catches keyspaces that share a key encoding or a merged read path: the same keys with
/// different values in three keyspaces, each read back alone (points, ranges, prefixes,
/// both ways) in the memtable, in tables and after a compaction and a reopen, while a
/// delete in one leaves the others alone.
#[test]
fn a_keyspace_never_sees_another_keyspaces_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut models: BTreeMap<String, Model> = BTreeMap::new();
    let names = [DEFAULT, "left", "right"];
    let keys: [&[u8]; 8] = [b"", b"\x00", b"a", b"ab", b"b", b"zz", b"\xff", b"\xff\xff"];

    for phase in ["memtable", "flushed", "compacted", "reopened"] {
        let db = open_tiny(dir.path());
        let handles: Vec<Keyspace> = names.iter().map(|n| keyspace(&db, n)).collect();
        if phase == "memtable" {
            for (ks, name) in handles.iter().zip(names) {
                let model = models.entry(name.to_owned()).or_default();
                for key in keys {
                    let value = format!("{name}:{}", common::show(key)).into_bytes();
                    ks.put(key, &value).unwrap();
                    model.insert(key.to_vec(), value);
                }
                // Keys only this keyspace has.
                let own = format!("only-{name}").into_bytes();
                ks.put(&own, b"mine").unwrap();
                model.insert(own, b"mine".to_vec());
            }
            // A delete in one keyspace must leave the same key in the others.
            handles[1].delete(b"a").unwrap();
            models.get_mut("left").unwrap().remove(&b"a"[..]);
            db.delete(b"zz").unwrap();
            models.get_mut(DEFAULT).unwrap().remove(&b"zz"[..]);
        }
        match phase {
            "flushed" => db.flush().unwrap(),
            "compacted" => db.compact().unwrap(),
            _ => {}
        }
        let what = format!("after the keys were {phase}");
        for (ks, name) in handles.iter().zip(names) {
            let model = &models[name];
            check_keyspace(ks, model, &what);
            for prefix in [&b""[..], b"a", b"only-", b"\xff"] {
                let label = format!("{what}: {name} prefix {}", common::show(prefix));
                assert_pairs(
                    &collect(ks.prefix(prefix), &label),
                    &model_prefix(model, prefix),
                    &label,
                );
            }
            let range = (Bound::Included(&b"a"[..]), Bound::Excluded(&b"only-z"[..]));
            let label = format!("{what}: {name} range a..only-z backwards");
            let mut want = model_range(model, range);
            want.reverse();
            assert_pairs(
                &collect_rev(ks.range::<&[u8], _>(range), &label),
                &want,
                &label,
            );
        }
        let label = format!("{what}: Db::iter reads only the default keyspace");
        assert_pairs(
            &collect(db.iter(), &label),
            &model_all(&models[DEFAULT]),
            &label,
        );
        drop(handles);
        db.close().unwrap();
    }
}

/// The read methods that `Db`, `Keyspace` and `Snapshot` share, so that one checker
/// covers all three.
trait View {
    fn get_value(&self, key: &[u8]) -> floe::Result<Option<Bytes>>;
    fn all(&self) -> Iter;
    fn bounded(&self, range: (Bound<&[u8]>, Bound<&[u8]>)) -> Iter;
    fn with_prefix(&self, prefix: &[u8]) -> Iter;
}

macro_rules! view {
    ($($t:ty),*) => {$(
        impl View for $t {
            fn get_value(&self, key: &[u8]) -> floe::Result<Option<Bytes>> {
                self.get(key)
            }
            fn all(&self) -> Iter {
                self.iter()
            }
            fn bounded(&self, range: (Bound<&[u8]>, Bound<&[u8]>)) -> Iter {
                self.range::<&[u8], _>(range)
            }
            fn with_prefix(&self, prefix: &[u8]) -> Iter {
                self.prefix(prefix)
            }
        }
    )*};
}
view!(Db, Keyspace, Snapshot);

/// Reads `view` through every read method and compares with `model`.
fn check_view(view: &impl View, model: &Model, what: &str) {
    let all = model_all(model);
    assert_pairs(&collect(view.all(), what), &all, &format!("{what}: iter"));
    let mut reversed = all.clone();
    reversed.reverse();
    assert_pairs(
        &collect_rev(view.all(), what),
        &reversed,
        &format!("{what}: iter backwards"),
    );
    let range = (Bound::Excluded(&b"a"[..]), Bound::Unbounded);
    assert_pairs(
        &collect(view.bounded(range), what),
        &model_range(model, range),
        &format!("{what}: range"),
    );
    assert_pairs(
        &collect(view.with_prefix(b"b"), what),
        &model_prefix(model, b"b"),
        &format!("{what}: prefix"),
    );
    for key in [&b"a"[..], b"b0", b"b1", b"missing", b"c", b"z"] {
        assert_eq!(
            view.get_value(key).unwrap().map(|v| v.to_vec()).as_ref(),
            model.get(key),
            "{what}: get({})",
            common::show(key)
        );
    }
}

/// Catches a read that goes to the wrong keyspace or the wrong point in time: `Db` reads
/// the default keyspace, a `Keyspace` its own, a `Snapshot` the keyspace it was made for
/// (`Keyspace::snapshot`, `Snapshot::keyspace`) as of when it was taken.
#[test]
fn reads_go_to_the_right_keyspace_and_point_in_time_through_db_keyspace_and_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    let other = keyspace(&db, "other");
    let mut default_model = Model::new();
    let mut other_model = Model::new();
    for (key, value) in [("a", "1"), ("b1", "2"), ("b2", "3"), ("c", "4")] {
        db.put(key, format!("default {value}")).unwrap();
        default_model.insert(key.into(), format!("default {value}").into_bytes());
    }
    for (key, value) in [("b1", "x"), ("z", "y")] {
        other.put(key, format!("other {value}")).unwrap();
        other_model.insert(key.into(), format!("other {value}").into_bytes());
    }
    let snapshot = db.snapshot();
    let other_snapshot = other.snapshot();
    db.put("b0", "later").unwrap();
    other.put("a", "later").unwrap();
    other.delete("z").unwrap();
    let mut default_now = default_model.clone();
    default_now.insert(b"b0".to_vec(), b"later".to_vec());
    let mut other_now = other_model.clone();
    other_now.insert(b"a".to_vec(), b"later".to_vec());
    other_now.remove(&b"z"[..]);
    db.flush().unwrap();

    check_view(&db, &default_now, "Db");
    check_view(&db.default_keyspace(), &default_now, "the default keyspace");
    check_view(&other, &other_now, "keyspace other");
    check_view(&snapshot, &default_model, "Db::snapshot");
    check_view(
        &snapshot.keyspace(&other),
        &other_model,
        "Db::snapshot, keyspace other",
    );
    check_view(&other_snapshot, &other_model, "Keyspace::snapshot");
    check_view(
        &other_snapshot.keyspace(&db.default_keyspace()),
        &default_model,
        "Keyspace::snapshot, then the default keyspace",
    );
}

/// Catches a public keyspace type that lost an auto trait or a derive the contract
/// promises; this test fails by not compiling.
#[test]
fn keyspace_types_have_the_promised_traits() {
    fn handle<T: Clone + Send + Sync + 'static>() {}
    fn options<T: Default + Clone + std::fmt::Debug>() {}
    handle::<Keyspace>();
    options::<KeyspaceOptions>();
    options::<WriteOptions>();
    // Handles move to other threads and outlive the scope that made them.
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    let ks = keyspace(&db, "moved");
    let copy = ks.clone();
    thread::spawn(move || copy.put("k", "v").unwrap())
        .join()
        .unwrap();
    assert_eq!(ks.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    let _ = format!(
        "{:?} {:?}",
        KeyspaceOptions::default(),
        WriteOptions::default().sync(true)
    );
}

// ---------------------------------------------------------------------------------------
// Batches across keyspaces, snapshots across keyspaces, per-write sync.
// ---------------------------------------------------------------------------------------

/// The keys each cross-keyspace batch writes, in each of its three keyspaces.
const BATCH_KEYS: usize = 4;

fn batch_key(i: usize) -> String {
    format!("key{i}")
}

/// The counter value a batch writes, padded so that memtables fill fast.
fn counter_value(n: u64) -> Vec<u8> {
    let mut value = format!("{n:012}|").into_bytes();
    value.resize(value.len() + 48, b'.');
    value
}

fn counter_of(value: &[u8], what: &str) -> u64 {
    std::str::from_utf8(&value[..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{what}: not a counter value: {}", common::show(value)))
}

/// The single counter value that every key of `pairs` holds, or `None` if there are no
/// pairs; panics if the view holds anything but exactly the batch keys with one value.
fn one_value(pairs: &[Pair], what: &str) -> Option<u64> {
    if pairs.is_empty() {
        return None;
    }
    let keys: Vec<Vec<u8>> = pairs.iter().map(|(k, _)| k.clone()).collect();
    let want: Vec<Vec<u8>> = (0..BATCH_KEYS).map(|i| batch_key(i).into_bytes()).collect();
    assert_eq!(
        keys, want,
        "{what}: the keys of a view mid-way through the batches"
    );
    let values: Vec<u64> = pairs.iter().map(|(_, v)| counter_of(v, what)).collect();
    assert!(
        values.iter().all(|v| *v == values[0]),
        "{what}: half a batch is visible: the keys hold {values:?}"
    );
    Some(values[0])
}

/// Catches a batch across keyspaces that becomes visible one keyspace (or one key) at a
/// time: writers commit batches that put one counter value into the same keys of A, B and
/// C while the keyspaces flush on their own tiny buffers; readers take snapshots and
/// check that A, B and C agree through them, and that a plain iterator of one keyspace
/// shows all its batch keys with one value.
#[test]
fn cross_keyspace_batches_are_never_seen_half_applied() {
    const WRITERS: usize = 3;
    const READERS: usize = 2;
    let seed = floe_testkit::seed("cross_keyspace_batches_are_never_seen_half_applied");
    let batches = floe_testkit::env_usize("FLOE_KS_BATCHES", 120);
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(
        dir.path(),
        Options::default().write_buffer_size(2048).block_size(64),
    )
    .unwrap();
    // Different buffer sizes (rounded up to whole 4 KiB pages), so that the three
    // keyspaces flush at different moments.
    let keyspaces: Arc<Vec<Keyspace>> = Arc::new(
        [("A", 1024), ("B", 6000), ("C", 12_000)]
            .into_iter()
            .map(|(name, buffer)| {
                db.keyspace_with(
                    name,
                    KeyspaceOptions::default()
                        .write_buffer_size(buffer)
                        .block_size(64),
                )
                .unwrap()
            })
            .collect(),
    );
    let counter = Arc::new(AtomicU64::new(1));
    let done = Arc::new(AtomicBool::new(false));
    let checks = Arc::new(AtomicUsize::new(0));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (db, keyspaces, counter) =
                (db.clone(), Arc::clone(&keyspaces), Arc::clone(&counter));
            thread::spawn(move || {
                for round in 0..batches {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let mut batch = WriteBatch::new();
                    for ks in keyspaces.iter() {
                        for i in 0..BATCH_KEYS {
                            batch.put_in(ks, batch_key(i), counter_value(n));
                        }
                    }
                    db.write(batch)
                        .unwrap_or_else(|e| panic!("writer {w} round {round}: {e}"));
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (db, keyspaces, done, checks) = (
                db.clone(),
                Arc::clone(&keyspaces),
                Arc::clone(&done),
                Arc::clone(&checks),
            );
            thread::spawn(move || {
                let mut rng = SmallRng::seed_from_u64(seed ^ r as u64);
                loop {
                    // Read the flag first, so that one full pass happens after the writers end.
                    let finished = done.load(Ordering::Acquire);
                    let what = format!("seed {seed} reader {r}");
                    match rng.random_range(0..3) {
                        0 => {
                            // Point reads through one snapshot.
                            let snapshot = db.snapshot();
                            let key = batch_key(rng.random_range(0..BATCH_KEYS));
                            let seen: Vec<Option<u64>> = keyspaces
                                .iter()
                                .map(|ks| {
                                    snapshot
                                        .keyspace(ks)
                                        .get(&key)
                                        .unwrap_or_else(|e| panic!("{what}: get: {e}"))
                                        .map(|v| counter_of(&v, &what))
                                })
                                .collect();
                            assert!(
                                seen.iter().all(|v| *v == seen[0]),
                                "{what}: one snapshot sees {key} as {seen:?} in A, B and C"
                            );
                        }
                        1 => {
                            // Whole keyspaces through one snapshot, in either direction.
                            let snapshot = db.snapshot();
                            let backwards = rng.random_bool(0.5);
                            let seen: Vec<Option<u64>> = keyspaces
                                .iter()
                                .map(|ks| {
                                    let view = snapshot.keyspace(ks);
                                    let mut pairs = if backwards {
                                        collect_rev(view.iter(), &what)
                                    } else {
                                        collect(view.iter(), &what)
                                    };
                                    if backwards {
                                        pairs.reverse();
                                    }
                                    one_value(
                                        &pairs,
                                        &format!("{what}: snapshot scan of {}", ks.name()),
                                    )
                                })
                                .collect();
                            assert!(
                                seen.iter().all(|v| *v == seen[0]),
                                "{what}: one snapshot scans A, B and C as {seen:?}"
                            );
                        }
                        _ => {
                            // A plain iterator of one keyspace is a consistent view too.
                            let ks = &keyspaces[rng.random_range(0..keyspaces.len())];
                            let pairs = collect(ks.iter(), &what);
                            one_value(&pairs, &format!("{what}: iterator of {}", ks.name()));
                        }
                    }
                    checks.fetch_add(1, Ordering::Relaxed);
                    if finished {
                        break;
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
        reader.join().expect("a reader panicked");
    }
    // Every key of every keyspace ends with one and the same value, before and after
    // a reopen.
    let last: Vec<Option<u64>> = keyspaces
        .iter()
        .map(|ks| {
            one_value(
                &collect(ks.iter(), "final"),
                &format!("final scan of {}", ks.name()),
            )
        })
        .collect();
    assert!(
        last[0].is_some() && last.iter().all(|v| *v == last[0]),
        "final values {last:?}"
    );
    drop(keyspaces);
    db.close().unwrap();
    let db = Db::open_with(dir.path(), Options::default())
        .unwrap_or_else(|e| panic!("seed {seed}: reopen after the batches: {e}"));
    for name in ["A", "B", "C"] {
        let ks = keyspace(&db, name);
        let value = one_value(
            &collect(ks.iter(), "reopened"),
            &format!("after reopen, {name}"),
        );
        assert_eq!(value, last[0], "after reopen, keyspace {name}");
    }
    println!(
        "seed {seed}: {WRITERS} writers x {batches} batches, {} reader checks",
        checks.load(Ordering::Relaxed)
    );
}

/// Catches a snapshot that is a point in time for the default keyspace only: writes,
/// deletes and a cross-keyspace batch made after it in several keyspaces (and a keyspace
/// created after it) are invisible through it in every keyspace, however the data moved
/// meanwhile (flush, compaction).
#[test]
fn a_snapshot_sees_no_write_made_after_it_in_any_keyspace() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    let names = ["first", "second", "third"];
    let handles: Vec<Keyspace> = names.iter().map(|n| keyspace_with_tiny(&db, n)).collect();
    let mut before: BTreeMap<&str, Model> = BTreeMap::new();
    for (ks, name) in handles.iter().zip(names) {
        let model = before.entry(name).or_default();
        for i in 0..100u32 {
            let (key, value) = (format!("k{i:03}"), format!("{name} before {i}"));
            ks.put(&key, &value).unwrap();
            model.insert(key.into_bytes(), value.into_bytes());
        }
    }
    db.put("k000", "default before").unwrap();
    let default_before = Model::from([(b"k000".to_vec(), b"default before".to_vec())]);
    // Some of it in tables, some in memtables.
    db.flush().unwrap();
    handles[0].put("k100", "first before, unflushed").unwrap();
    before
        .get_mut("first")
        .unwrap()
        .insert(b"k100".to_vec(), b"first before, unflushed".to_vec());

    let snapshot = db.snapshot();

    for (ks, name) in handles.iter().zip(names) {
        for i in (0..120u32).step_by(3) {
            ks.put(format!("k{i:03}"), format!("{name} after {i}"))
                .unwrap();
        }
        for i in (1..100u32).step_by(7) {
            ks.delete(format!("k{i:03}")).unwrap();
        }
    }
    let mut batch = WriteBatch::new();
    for ks in &handles {
        batch.put_in(ks, "k050", "batch after");
        batch.delete_in(ks, "k051");
        batch.put_in(ks, "zzz", "batch after");
    }
    batch.put("k000", "default after");
    batch.put("new default key", "after");
    db.write(batch).unwrap();
    let late = keyspace(&db, "created after the snapshot");
    late.put("k000", "late").unwrap();

    let check = |what: &str| {
        for (ks, name) in handles.iter().zip(names) {
            let view = snapshot.keyspace(ks);
            let label = format!("{what}: snapshot in {name}");
            assert_pairs(
                &collect(view.iter(), &label),
                &model_all(&before[name]),
                &label,
            );
            let mut reversed = model_all(&before[name]);
            reversed.reverse();
            assert_pairs(&collect_rev(view.iter(), &label), &reversed, &label);
            assert_eq!(
                view.get("k050").unwrap().as_deref(),
                Some(format!("{name} before 50").as_bytes()),
                "{label}: get k050"
            );
            assert_eq!(view.get("zzz").unwrap(), None, "{label}: get zzz");
            // A view of another keyspace, taken from a view, is the same point in time.
            let back = view.keyspace(&db.default_keyspace());
            assert_pairs(
                &collect(back.iter(), &label),
                &model_all(&default_before),
                &label,
            );
        }
        let label = format!("{what}: snapshot in the default keyspace");
        assert_pairs(
            &collect(snapshot.iter(), &label),
            &model_all(&default_before),
            &label,
        );
        let label = format!("{what}: snapshot in a keyspace created after it");
        assert_pairs(
            &collect(snapshot.keyspace(&late).iter(), &label),
            &[],
            &label,
        );
        assert_eq!(
            snapshot.keyspace(&late).get("k000").unwrap(),
            None,
            "{label}"
        );
    };
    check("before any flush");
    db.flush().unwrap();
    check("after a flush");
    db.compact().unwrap();
    check("after a compaction");
    // The writes themselves are all visible outside the snapshot.
    assert_eq!(
        handles[2].get("zzz").unwrap().as_deref(),
        Some(&b"batch after"[..])
    );
    assert_eq!(handles[1].get("k051").unwrap(), None);
    assert_eq!(
        db.get("k000").unwrap().as_deref(),
        Some(&b"default after"[..])
    );
    assert_eq!(late.get("k000").unwrap().as_deref(), Some(&b"late"[..]));
}

/// Catches `WriteOptions::sync` being ignored (or failing) on a database opened without
/// sync: the synced write is applied, counted as a log sync, and survives reopen, in
/// every keyspace of its batch.
#[test]
fn a_synced_write_on_an_unsynced_database_is_applied_and_syncs_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), Options::default().sync(false)).unwrap();
    let other = keyspace(&db, "other");
    db.put("warm", "up").unwrap();

    let before = db.stats().log_syncs;
    let mut batch = WriteBatch::new();
    batch.put("synced", "default");
    batch.put_in(&other, "synced", "other");
    db.write_with(batch, &WriteOptions::default().sync(true))
        .unwrap();
    let after = db.stats().log_syncs;
    assert!(
        after > before,
        "a write with WriteOptions::sync(true) made no log sync ({before} before, {after} after)"
    );
    assert_eq!(db.get("synced").unwrap().as_deref(), Some(&b"default"[..]));
    assert_eq!(other.get("synced").unwrap().as_deref(), Some(&b"other"[..]));

    // Unsynced and explicitly unsynced writes work alike.
    let mut batch = WriteBatch::new();
    batch.put_in(&other, "unsynced", "x");
    db.write_with(batch, &WriteOptions::default().sync(false))
        .unwrap();
    let mut batch = WriteBatch::new();
    batch.delete_in(&other, "unsynced");
    batch.put("default-only", "y");
    db.write_with(batch, &WriteOptions::default()).unwrap();
    assert_eq!(other.get("unsynced").unwrap(), None);

    // A second synced write is counted again.
    let before = db.stats().log_syncs;
    let mut batch = WriteBatch::new();
    batch.put_in(&other, "synced again", "z");
    db.write_with(batch, &WriteOptions::default().sync(true))
        .unwrap();
    assert!(
        db.stats().log_syncs > before,
        "the second synced write made no log sync"
    );
    drop(other);
    db.close().unwrap();

    let db = Db::open(dir.path()).unwrap();
    let other = keyspace(&db, "other");
    assert_eq!(db.get("synced").unwrap().as_deref(), Some(&b"default"[..]));
    assert_eq!(db.get("default-only").unwrap().as_deref(), Some(&b"y"[..]));
    check_keyspace(
        &other,
        &Model::from([
            (b"synced".to_vec(), b"other".to_vec()),
            (b"synced again".to_vec(), b"z".to_vec()),
        ]),
        "after reopen",
    );
}

/// Catches a log whose synced writes it cannot read back: every synced write group starts
/// with a durable-offset marker, so writes of sizes that sweep the position in the log's
/// 32 KiB blocks put a marker at every distance from a block's end; the database must then
/// reopen cleanly, after a clean close and with every write in place.
#[test]
fn synced_writes_at_every_offset_in_a_log_block_reopen_without_corruption() {
    const WRITES: usize = 3000;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), Options::default().sync(false)).unwrap();
    let other = keyspace(&db, "other");
    let value = |i: usize| vec![b'v'; i % 23];
    for i in 0..WRITES {
        let mut batch = WriteBatch::new();
        batch.put_in(&other, format!("k{i:05}"), value(i));
        db.write_with(batch, &WriteOptions::default().sync(true))
            .unwrap_or_else(|e| panic!("synced write {i}: {e}"));
    }
    drop(other);
    db.close().unwrap();
    let db =
        Db::open(dir.path()).unwrap_or_else(|e| panic!("reopen after {WRITES} synced writes: {e}"));
    let other = keyspace(&db, "other");
    let model: Model = (0..WRITES)
        .map(|i| (format!("k{i:05}").into_bytes(), value(i)))
        .collect();
    check_keyspace(&other, &model, "after reopen");
}
