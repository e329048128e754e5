//! Randomized runs against a `BTreeMap` reference model: point reads and ranges in both
//! directions, with random bounds and snapshots. Seeded; replay with `FLOE_SEED=<seed>`.
#![cfg(not(floe_loom))]

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use floe_memtable::{Lookup, Memtable};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Every version ever written: (user key, seqno) -> value, `None` for a tombstone.
type Model = BTreeMap<(Vec<u8>, u64), Option<Vec<u8>>>;

fn model_get(model: &Model, key: &[u8], snapshot: u64) -> Option<Option<Vec<u8>>> {
    model
        .range((key.to_vec(), 0)..=(key.to_vec(), snapshot))
        .next_back()
        .map(|(_, v)| v.clone())
}

fn model_range(
    model: &Model,
    lower: &Bound<Vec<u8>>,
    upper: &Bound<Vec<u8>>,
    snapshot: u64,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut keys: Vec<Vec<u8>> = model.keys().map(|(k, _)| k.clone()).collect();
    keys.dedup();
    keys.into_iter()
        .filter(|k| within(lower, upper, k))
        .filter_map(|k| model_get(model, &k, snapshot).flatten().map(|v| (k, v)))
        .collect()
}

fn within(lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>, key: &[u8]) -> bool {
    let above = match lower {
        Bound::Included(l) => key >= l.as_slice(),
        Bound::Excluded(l) => key > l.as_slice(),
        Bound::Unbounded => true,
    };
    let below = match upper {
        Bound::Included(u) => key <= u.as_slice(),
        Bound::Excluded(u) => key < u.as_slice(),
        Bound::Unbounded => true,
    };
    above && below
}

/// The shape of the random user keys of one round.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// 0 to 2 bytes of `abcd`: few distinct keys, many versions of each.
    Short,
    /// Bytes 0x00, 0x01 and 0xff: mostly the first 12 to 16 bytes of one of two 16-byte
    /// stems and up to 4 more, so that keys collide in the 16 bytes the skiplist keeps
    /// inline and differ after them, or differ only by trailing zeros.
    AroundTheInlinePrefix,
}

fn random_key(rng: &mut SmallRng, shape: Shape) -> Vec<u8> {
    match shape {
        Shape::Short => {
            let len = rng.random_range(0..3);
            (0..len).map(|_| b"abcd"[rng.random_range(0..4)]).collect()
        }
        Shape::AroundTheInlinePrefix => {
            const STEMS: [&[u8; 16]; 2] = [
                b"\x00\x01\xff\x00\x00\x00\x00\x00\x01\x00\x00\xff\x00\x00\x00\x00",
                b"\x00\x01\xff\x00\x00\x00\x00\x00\x01\x00\x00\xff\xff\x01\x00\x00",
            ];
            let tiny = |rng: &mut SmallRng| [0x00, 0x01, 0xff][rng.random_range(0..3)];
            let mut key = if rng.random_bool(0.2) {
                Vec::new()
            } else {
                STEMS[rng.random_range(0..2)][..rng.random_range(12..=16)].to_vec()
            };
            for _ in 0..rng.random_range(0..=4) {
                key.push(tiny(rng));
            }
            key
        }
    }
}

fn random_bound(rng: &mut SmallRng, shape: Shape) -> Bound<Vec<u8>> {
    match rng.random_range(0..3) {
        0 => Bound::Unbounded,
        1 => Bound::Included(random_key(rng, shape)),
        _ => Bound::Excluded(random_key(rng, shape)),
    }
}

#[test]
fn matches_a_btreemap_model() {
    let mut rng = SmallRng::seed_from_u64(floe_testkit::seed("matches_a_btreemap_model"));
    // A few rounds of each shape and fewer reads per round under Miri, which interprets
    // every operation.
    let (rounds, reads) = if cfg!(miri) { (2, 10) } else { (80, 60) };
    for round in 0..rounds {
        let shape = if round % 2 == 0 {
            Shape::Short
        } else {
            Shape::AroundTheInlinePrefix
        };
        let memtable = Arc::new(Memtable::new(1 << 20));
        let mut model = Model::new();
        let writes = rng.random_range(0..60);
        {
            let guard = memtable.enter().unwrap();
            for seqno in 1..=writes {
                let key = random_key(&mut rng, shape);
                if rng.random_bool(0.3) {
                    guard.delete(Bytes::from(key.clone()), seqno).unwrap();
                    model.insert((key, seqno), None);
                } else {
                    let value = vec![rng.random::<u8>(); rng.random_range(0..4)];
                    guard
                        .put(Bytes::from(key.clone()), seqno, Bytes::from(value.clone()))
                        .unwrap();
                    model.insert((key, seqno), Some(value));
                }
            }
        }
        assert_eq!(memtable.len(), model.len());
        for _ in 0..reads {
            let snapshot = rng.random_range(0..=writes + 1);
            let key = random_key(&mut rng, shape);
            let expected = model_get(&model, &key, snapshot).map(|v| match v {
                Some(v) => Lookup::Value(Bytes::from(v)),
                None => Lookup::Deleted,
            });
            assert_eq!(
                memtable.get(&key, snapshot),
                expected,
                "{shape:?}: get {key:x?} at {snapshot}"
            );

            let (lower, upper) = (random_bound(&mut rng, shape), random_bound(&mut rng, shape));
            let expected = model_range(&model, &lower, &upper, snapshot);
            let to_bytes = |b: &Bound<Vec<u8>>| b.clone().map(Bytes::from);
            let mut iter = memtable.range(to_bytes(&lower), to_bytes(&upper), snapshot);
            // Pull from random ends and reassemble.
            let (mut front, mut back) = (Vec::new(), Vec::new());
            loop {
                let from_front = rng.random_bool(0.5);
                let item = if from_front {
                    iter.next()
                } else {
                    iter.next_back()
                };
                let Some((k, v)) = item else { break };
                let pair = (k.to_vec(), v.to_vec());
                if from_front {
                    front.push(pair)
                } else {
                    back.push(pair)
                }
            }
            back.reverse();
            front.extend(back);
            assert_eq!(front, expected, "range {lower:?}..{upper:?} at {snapshot}");

            let entries: Vec<_> = memtable
                .entries(to_bytes(&lower), to_bytes(&upper))
                .rev()
                .map(|(k, _)| (k.user_key.to_vec(), k.seqno))
                .collect();
            let mut expected_entries: Vec<_> = model
                .keys()
                .filter(|(k, _)| within(&lower, &upper, k))
                .map(|(k, s)| (k.clone(), *s))
                .collect();
            // Internal order is seqno descending within a key; reversed, ascending.
            expected_entries.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            assert_eq!(entries, expected_entries, "entries {lower:?}..{upper:?}");
        }
    }
}

/// `range_tombstones().max_covering(key, snapshot)` against testing every tombstone
/// inserted, over random tombstones (overlapping, unbounded, empty, replayed sequence
/// numbers) read at random points of the inserts, so that the cache is rebuilt and reused.
#[test]
fn range_tombstones_match_brute_force() {
    let mut rng = SmallRng::seed_from_u64(floe_testkit::seed("range_tombstones_match_brute_force"));
    let rounds = if cfg!(miri) { 3 } else { 100 };
    let key = |i: u32| format!("{i:02}").into_bytes();
    for _ in 0..rounds {
        let memtable = Memtable::new(1 << 20);
        let guard = memtable.enter().unwrap();
        // seqno -> (start, end): the first insert of a sequence number wins.
        let mut model: BTreeMap<u64, (Vec<u8>, Option<Vec<u8>>)> = BTreeMap::new();
        let mut charged = 0;
        for _ in 0..rng.random_range(0..40) {
            let seqno = rng.random_range(1..30);
            let start = key(rng.random_range(0..30));
            let end = rng.random_bool(0.85).then(|| key(rng.random_range(0..35)));
            guard.insert_range_tombstone(&start, end.as_deref(), seqno);
            let empty = end.as_ref().is_some_and(|end| *end <= start);
            if !empty && !model.contains_key(&seqno) {
                charged += floe_memtable::range_tombstone_charge(&start, end.as_deref());
                model.insert(seqno, (start, end));
            }
            if rng.random_bool(0.3) {
                check_range_tombstones(&memtable, &model, &mut rng);
            }
        }
        assert_eq!(memtable.range_tombstone_count(), model.len());
        assert_eq!(memtable.approximate_size(), charged);
        assert_eq!(memtable.is_empty(), model.is_empty());
        drop(guard);
        memtable.freeze();
        check_range_tombstones(&memtable, &model, &mut rng);
    }
}

fn check_range_tombstones(
    memtable: &Memtable,
    model: &BTreeMap<u64, (Vec<u8>, Option<Vec<u8>>)>,
    rng: &mut SmallRng,
) {
    let fragments = memtable.range_tombstones();
    assert_eq!(fragments.is_none(), model.is_empty());
    for _ in 0..50 {
        let key = format!("{:02}", rng.random_range(0..40)).into_bytes();
        let snapshot = rng.random_range(0..32);
        let expected = model
            .iter()
            .filter(|(seqno, (start, end))| {
                **seqno <= snapshot && *start <= key && end.as_ref().is_none_or(|end| key < *end)
            })
            .map(|(&seqno, _)| seqno)
            .max();
        let found = fragments
            .as_ref()
            .and_then(|f| f.max_covering(&key, snapshot));
        assert_eq!(found, expected, "key {key:?} at {snapshot}, {model:?}");
    }
}
