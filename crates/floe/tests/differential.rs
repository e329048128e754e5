//! A randomized run of floe against a `BTreeMap` model: puts, deletes, range deletes,
//! batches mixing all three, point reads, range scans both ways, prefix scans, flushes, compactions, close and reopen,
//! and snapshots and iterators checked long after they were taken against a cloned model.
//!
//! The seed is printed; `FLOE_SEED` replays a run and `FLOE_DIFF_OPS` sets its length.

pub mod common;

use std::ops::Bound;

use common::{Model, Pair, assert_pairs, model_all, model_prefix, model_range};
use floe::{Db, Iter, Snapshot, WriteBatch};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// How many distinct numbered keys the run draws from: small enough that overwrites,
/// deletes of present keys and dense ranges are common.
const KEY_SPACE: u32 = 400;

fn random_key(rng: &mut SmallRng) -> Vec<u8> {
    match rng.random_range(0..20) {
        0 => Vec::new(),
        1 => vec![0xff; rng.random_range(1..4)],
        _ => {
            let mut key = format!("{:03}", rng.random_range(0..KEY_SPACE)).into_bytes();
            match rng.random_range(0..8) {
                0 => key.push(0xff),
                1 => key.push(0x00),
                2 => key.truncate(2),
                _ => {}
            }
            key
        }
    }
}

fn random_value(rng: &mut SmallRng, op: usize) -> Vec<u8> {
    let mut value = format!("v{op}.").into_bytes();
    // Mostly small values; now and then one larger than a whole memtable (1 KiB) and
    // many times a block (64 bytes).
    let pad = match rng.random_range(0..100) {
        0..10 => 0,
        10..20 => rng.random_range(100..400),
        20..22 => rng.random_range(1000..6000),
        _ => rng.random_range(0..40),
    };
    value.extend((0..pad).map(|i| b'a' + (i % 26) as u8));
    if rng.random_range(0..50) == 0 {
        value.clear();
    }
    value
}

fn random_bound(rng: &mut SmallRng) -> Bound<Vec<u8>> {
    match rng.random_range(0..5) {
        0 => Bound::Unbounded,
        1 | 2 => Bound::Included(random_key(rng)),
        _ => Bound::Excluded(random_key(rng)),
    }
}

/// A range of borrowed keys, as `range` takes it.
type SliceRange<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

fn as_slices(range: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> SliceRange<'_> {
    (
        range.0.as_ref().map(Vec::as_slice),
        range.1.as_ref().map(Vec::as_slice),
    )
}

/// Removes from `model` every key within `bounds` (nothing for an empty or inverted
/// range), as `delete_range` does.
fn remove_range(model: &mut Model, bounds: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) {
    let doomed: Vec<Vec<u8>> = model_range(model, as_slices(bounds))
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    for key in doomed {
        model.remove(&key);
    }
}

/// Drains `iter` forwards or backwards into pairs, panicking with `what` on an error.
fn drain(iter: Iter, backwards: bool, what: &str) -> Vec<Pair> {
    if backwards {
        common::collect_rev(iter, what)
    } else {
        common::collect(iter, what)
    }
}

/// A snapshot kept alive across later operations, with the model as it was when taken.
struct HeldSnapshot {
    snapshot: Snapshot,
    model: Model,
    taken_at: usize,
}

/// An iterator created at some operation and drained later, with what it must yield.
struct HeldIter {
    iter: Iter,
    want: Vec<Pair>,
    backwards: bool,
    created_at: usize,
}

/// Checks a random read of `model` through `get`, `range` or `prefix` of the reader.
fn random_read(
    rng: &mut SmallRng,
    model: &Model,
    get: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
    range: &dyn Fn(SliceRange<'_>) -> Iter,
    prefix: &dyn Fn(&[u8]) -> Iter,
    what: &str,
) {
    match rng.random_range(0..4) {
        0 | 1 => {
            let key = random_key(rng);
            assert_eq!(
                get(&key),
                model.get(&key).cloned(),
                "{what}: get({})",
                common::show(&key)
            );
        }
        2 => {
            let bounds = (random_bound(rng), random_bound(rng));
            let backwards = rng.random_bool(0.5);
            let mut want = model_range(model, as_slices(&bounds));
            if backwards {
                want.reverse();
            }
            let label = format!("{what}: range {bounds:?} backwards={backwards}");
            assert_pairs(
                &drain(range(as_slices(&bounds)), backwards, &label),
                &want,
                &label,
            );
        }
        _ => {
            let mut p = random_key(rng);
            p.truncate(rng.random_range(0..=p.len()));
            let backwards = rng.random_bool(0.5);
            let mut want = model_prefix(model, &p);
            if backwards {
                want.reverse();
            }
            let label = format!("{what}: prefix {} backwards={backwards}", common::show(&p));
            assert_pairs(&drain(prefix(&p), backwards, &label), &want, &label);
        }
    }
}

#[test]
fn differential_against_a_btreemap_model() {
    let seed = floe_testkit::seed("differential_against_a_btreemap_model");
    let ops = floe_testkit::env_usize("FLOE_DIFF_OPS", 9000);
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let open = || Db::open_with(dir.path(), common::tiny_options()).expect("open");
    let mut db = open();
    let mut model = Model::new();
    let mut snapshots: Vec<HeldSnapshot> = Vec::new();
    let mut iters: Vec<HeldIter> = Vec::new();
    let mut counts = [0usize; 13];

    for op in 0..ops {
        let what = format!("seed {seed} op {op}");
        let choice = rng.random_range(0..1000);
        let kind = match choice {
            0..300 => 0,
            300..400 => 1,
            400..480 => 2,
            480..650 => 3,
            650..760 => 4,
            760..800 => 5,
            800..806 => 6,
            806..809 => 7,
            809..811 => 8,
            811..830 => 9,
            830..880 => 10,
            880..910 => 12,
            _ => 11,
        };
        counts[kind] += 1;
        match kind {
            0 => {
                let (key, value) = (random_key(&mut rng), random_value(&mut rng, op));
                db.put(&key, &value)
                    .unwrap_or_else(|e| panic!("{what}: put: {e}"));
                model.insert(key, value);
            }
            1 => {
                // Deleting a present key is more interesting than deleting an absent one.
                let key = if !model.is_empty() && rng.random_bool(0.7) {
                    let n = rng.random_range(0..model.len());
                    model.keys().nth(n).unwrap().clone()
                } else {
                    random_key(&mut rng)
                };
                db.delete(&key)
                    .unwrap_or_else(|e| panic!("{what}: delete: {e}"));
                model.remove(&key);
            }
            2 => {
                let mut batch = WriteBatch::new();
                let mut next = model.clone();
                for _ in 0..rng.random_range(1..10) {
                    if rng.random_bool(0.1) {
                        // Later operations of the batch apply over it.
                        let bounds = (random_bound(&mut rng), random_bound(&mut rng));
                        batch.delete_range::<&[u8], _>(as_slices(&bounds));
                        remove_range(&mut next, &bounds);
                        continue;
                    }
                    let key = random_key(&mut rng);
                    if rng.random_bool(0.3) {
                        batch.delete(&key);
                        next.remove(&key);
                    } else {
                        let value = random_value(&mut rng, op);
                        batch.put(&key, &value);
                        next.insert(key, value);
                    }
                }
                db.write(batch)
                    .unwrap_or_else(|e| panic!("{what}: write: {e}"));
                model = next;
            }
            3 | 4 => random_read(
                &mut rng,
                &model,
                &|k| {
                    db.get(k)
                        .unwrap_or_else(|e| panic!("{what}: get: {e}"))
                        .map(|v| v.to_vec())
                },
                &|r| db.range::<&[u8], _>(r),
                &|p| db.prefix(p),
                &what,
            ),
            5 => {
                let Some(held) = (!snapshots.is_empty())
                    .then(|| rng.random_range(0..snapshots.len()))
                    .map(|i| &snapshots[i])
                else {
                    continue;
                };
                let label = format!("{what}: snapshot taken at op {}", held.taken_at);
                random_read(
                    &mut rng,
                    &held.model,
                    &|k| {
                        held.snapshot
                            .get(k)
                            .unwrap_or_else(|e| panic!("{label}: get: {e}"))
                            .map(|v| v.to_vec())
                    },
                    &|r| held.snapshot.range::<&[u8], _>(r),
                    &|p| held.snapshot.prefix(p),
                    &label,
                );
            }
            6 => db.flush().unwrap_or_else(|e| panic!("{what}: flush: {e}")),
            7 => db
                .compact()
                .unwrap_or_else(|e| panic!("{what}: compact: {e}")),
            8 => {
                // Everything held must be checked and released before the close.
                check_and_release(&mut snapshots, &mut iters, &what);
                db.close().unwrap_or_else(|e| panic!("{what}: close: {e}"));
                db = open();
                let label = format!("{what}: after reopen");
                assert_pairs(
                    &common::collect(db.iter(), &label),
                    &model_all(&model),
                    &label,
                );
            }
            9 => {
                if snapshots.len() >= 4 {
                    let held = snapshots.remove(rng.random_range(0..snapshots.len()));
                    check_snapshot(&held, &what);
                }
                snapshots.push(HeldSnapshot {
                    snapshot: db.snapshot(),
                    model: model.clone(),
                    taken_at: op,
                });
            }
            10 => {
                if iters.len() >= 4 {
                    let held = iters.remove(rng.random_range(0..iters.len()));
                    check_iter(held, &what);
                }
                let backwards = rng.random_bool(0.5);
                let (iter, mut want) = match rng.random_range(0..3) {
                    0 => (db.iter(), model_all(&model)),
                    1 => {
                        let bounds = (random_bound(&mut rng), random_bound(&mut rng));
                        (
                            db.range::<&[u8], _>(as_slices(&bounds)),
                            model_range(&model, as_slices(&bounds)),
                        )
                    }
                    _ => {
                        let mut p = random_key(&mut rng);
                        p.truncate(rng.random_range(0..=p.len()));
                        (db.prefix(&p), model_prefix(&model, &p))
                    }
                };
                if backwards {
                    want.reverse();
                }
                iters.push(HeldIter {
                    iter,
                    want,
                    backwards,
                    created_at: op,
                });
            }
            12 => {
                let bounds = (random_bound(&mut rng), random_bound(&mut rng));
                db.delete_range::<&[u8], _>(as_slices(&bounds))
                    .unwrap_or_else(|e| panic!("{what}: delete_range: {e}"));
                remove_range(&mut model, &bounds);
            }
            _ => {
                let key = random_key(&mut rng);
                let got = db
                    .get(&key)
                    .unwrap_or_else(|e| panic!("{what}: get: {e}"))
                    .map(|v| v.to_vec());
                assert_eq!(
                    got,
                    model.get(&key).cloned(),
                    "{what}: get({})",
                    common::show(&key)
                );
            }
        }
    }
    let what = format!("seed {seed} at the end");
    check_and_release(&mut snapshots, &mut iters, &what);
    assert_pairs(
        &common::collect(db.iter(), &what),
        &model_all(&model),
        &what,
    );
    db.compact().unwrap();
    assert_pairs(
        &common::collect(db.iter(), &what),
        &model_all(&model),
        &what,
    );
    db.close().unwrap();
    let db = open();
    let mut rev = model_all(&model);
    rev.reverse();
    assert_pairs(&common::collect_rev(db.iter(), &what), &rev, &what);
    db.close().unwrap();
    println!(
        "seed {seed}: {ops} operations, by kind {counts:?}, {} keys at the end",
        model.len()
    );
}

fn check_snapshot(held: &HeldSnapshot, what: &str) {
    let label = format!("{what}: snapshot taken at op {}", held.taken_at);
    assert_pairs(
        &common::collect(held.snapshot.iter(), &label),
        &model_all(&held.model),
        &label,
    );
}

fn check_iter(held: HeldIter, what: &str) {
    let label = format!(
        "{what}: iterator created at op {} (backwards={})",
        held.created_at, held.backwards
    );
    assert_pairs(
        &drain(held.iter, held.backwards, &label),
        &held.want,
        &label,
    );
}

fn check_and_release(snapshots: &mut Vec<HeldSnapshot>, iters: &mut Vec<HeldIter>, what: &str) {
    for held in snapshots.drain(..) {
        check_snapshot(&held, what);
    }
    for held in iters.drain(..) {
        check_iter(held, what);
    }
}
