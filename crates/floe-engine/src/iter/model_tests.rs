//! Randomized tests of the iterators against a `BTreeMap` model.
//!
//! Each test prints its seed; `FLOE_SEED=<seed> cargo test -p floe-engine iter::model_tests`
//! replays a failure.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use floe_core::{InternalKey, MAX_SEQNO, SeqNo, ValueKind};
use floe_testkit::seed;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::test_util::source;
use super::{CompactionIter, Entry, MergingIter, VisibleIter};

const CASES: usize = 400;

/// A user key from a small space, so that keys have several versions; includes the
/// empty key and `0xff` bytes.
fn random_key(rng: &mut impl Rng) -> Bytes {
    const KEYS: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"a",
        b"ab",
        b"b",
        b"b\xff",
        b"\xff",
        b"\xff\xff",
    ];
    Bytes::from_static(KEYS[rng.random_range(0..KEYS.len())])
}

/// `count` entries with distinct seqnos from `seqnos`, in internal-key order. The value
/// names the seqno, so a wrong version is visible in a failure.
fn random_entries(rng: &mut impl Rng, count: usize, seqnos: std::ops::Range<SeqNo>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = (0..count)
        .map(|_| {
            let seqno = rng.random_range(seqnos.clone());
            let kind = if rng.random_bool(0.3) {
                ValueKind::Delete
            } else {
                ValueKind::Put
            };
            let value = match kind {
                ValueKind::Put => Bytes::from(format!("v{seqno}")),
                ValueKind::Delete => Bytes::new(),
            };
            (InternalKey::new(random_key(rng), seqno, kind), value)
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    // Every write has its own seqno; keep the first entry of any repeated one.
    let mut seen = std::collections::HashSet::new();
    entries.retain(|(key, _)| seen.insert(key.seqno));
    entries
}

/// Deals `entries` at random into `count` sources, each still in order.
fn deal(rng: &mut impl Rng, entries: &[Entry], count: usize) -> Vec<Vec<Entry>> {
    let mut sources = vec![Vec::new(); count];
    for entry in entries {
        sources[rng.random_range(0..count)].push(entry.clone());
    }
    sources
}

/// The model read: for each key the newest version `<= snapshot`, if it is a `Put`.
fn model_read<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
    snapshot: SeqNo,
) -> BTreeMap<Bytes, Bytes> {
    let mut newest: BTreeMap<Bytes, (SeqNo, ValueKind, Bytes)> = BTreeMap::new();
    for (key, value) in entries {
        if key.seqno > snapshot {
            continue;
        }
        let candidate = (key.seqno, key.kind, value.clone());
        newest
            .entry(key.user_key.clone())
            .and_modify(|current| {
                if candidate.0 > current.0 {
                    *current = candidate.clone();
                }
            })
            .or_insert(candidate);
    }
    newest
        .into_iter()
        .filter(|(_, (_, kind, _))| *kind == ValueKind::Put)
        .map(|(key, (_, _, value))| (key, value))
        .collect()
}

/// Drains `iter` with a random mix of `next` and `next_back`, checking each item against
/// the model deque, then checks that both ends stay empty.
fn drain_against<T, I>(rng: &mut impl Rng, mut iter: I, mut model: VecDeque<T>, context: &str)
where
    T: PartialEq + std::fmt::Debug,
    I: DoubleEndedIterator<Item = crate::Result<T>>,
{
    let front_bias = rng.random_range(0.0..=1.0);
    let mut step = 0;
    loop {
        let forward = rng.random_bool(front_bias);
        let (got, expected) = if forward {
            (iter.next(), model.pop_front())
        } else {
            (iter.next_back(), model.pop_back())
        };
        let got = got.map(|item| item.expect("test sources do not fail"));
        assert_eq!(got, expected, "{context}: step {step}, forward: {forward}");
        if got.is_none() {
            break;
        }
        step += 1;
    }
    assert!(iter.next().is_none(), "{context}: next after the end");
    assert!(
        iter.next_back().is_none(),
        "{context}: next_back after the end"
    );
}

#[test]
fn merging_and_visible_iterators_match_the_model() {
    let mut rng = SmallRng::seed_from_u64(seed("merging_and_visible_iterators_match_the_model"));
    for case in 0..CASES {
        let count = rng.random_range(0..60);
        let entries = random_entries(&mut rng, count, 1..100);
        let source_count = rng.random_range(1..=8);
        let sources = deal(&mut rng, &entries, source_count);
        let boxed = || sources.iter().cloned().map(source).collect::<Vec<_>>();

        drain_against(
            &mut rng,
            MergingIter::new(boxed()),
            entries.iter().cloned().collect(),
            &format!("merge case {case}"),
        );

        let snapshot = if rng.random_bool(0.2) {
            MAX_SEQNO
        } else {
            rng.random_range(0..101)
        };
        let expected = model_read(&entries, snapshot).into_iter().collect();
        drain_against(
            &mut rng,
            VisibleIter::new(MergingIter::new(boxed()), snapshot),
            expected,
            &format!("visible case {case} at snapshot {snapshot}"),
        );
    }
}

#[test]
fn compaction_keeps_every_snapshot_view_and_little_else() {
    let mut rng =
        SmallRng::seed_from_u64(seed("compaction_keeps_every_snapshot_view_and_little_else"));
    for case in 0..CASES {
        let count = rng.random_range(0..60);
        // The compaction inputs hold seqnos 100..200; when the output is not bottommost,
        // a lower level holds older versions (seqnos below 100) that it must keep hidden.
        let input = random_entries(&mut rng, count, 100..200);
        let bottommost = rng.random_bool(0.5);
        let lower = if bottommost {
            Vec::new()
        } else {
            let lower_count = rng.random_range(0..30);
            random_entries(&mut rng, lower_count, 1..100)
        };
        let mut snapshots: Vec<SeqNo> = (0..rng.random_range(0..5))
            .map(|_| rng.random_range(0..210))
            .collect();
        snapshots.sort_unstable();
        snapshots.dedup();
        let context = format!("case {case}, bottommost {bottommost}, snapshots {snapshots:?}");

        let source_count = rng.random_range(1..=4);
        let sources = deal(&mut rng, &input, source_count)
            .into_iter()
            .map(source)
            .collect();
        let output: Vec<Entry> =
            CompactionIter::new(MergingIter::new(sources), snapshots.clone(), bottommost)
                .map(|item| item.expect("test sources do not fail"))
                .collect();

        // The output is a subsequence of the input: in order, nothing invented.
        assert!(
            output.windows(2).all(|pair| pair[0].0 < pair[1].0),
            "{context}: output out of order"
        );
        assert!(
            output.iter().all(|kept| input.contains(kept)),
            "{context}: invented entry"
        );

        // Every live snapshot, and every read to come, sees exactly what it saw before,
        // through the levels below as well: no deleted key comes back, no old value lost.
        for read_at in snapshots.iter().copied().chain([MAX_SEQNO]) {
            assert_eq!(
                model_read(output.iter().chain(&lower), read_at),
                model_read(input.iter().chain(&lower), read_at),
                "{context}: read at {read_at}"
            );
        }

        // Little else: at most one version per stripe, and at the bottom no tombstone is
        // the oldest version kept of its key.
        let mut per_key: BTreeMap<&Bytes, Vec<&InternalKey>> = BTreeMap::new();
        for (key, _) in &output {
            per_key.entry(&key.user_key).or_default().push(key);
        }
        for (user_key, versions) in per_key {
            assert!(
                versions.len() <= snapshots.len() + 1,
                "{context}: {user_key:?} keeps {} versions",
                versions.len()
            );
            if bottommost {
                let oldest = versions.last().expect("at least one version");
                assert_eq!(
                    oldest.kind,
                    ValueKind::Put,
                    "{context}: {user_key:?} keeps a bottom tombstone"
                );
            }
        }
    }
}
