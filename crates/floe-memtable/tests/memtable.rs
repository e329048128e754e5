//! Behaviour of one memtable on one thread: versions and snapshots, capacity and the hard
//! ceiling, the writer gate, iterator bounds, the arena memory it holds, and range
//! tombstones.
#![cfg(not(floe_loom))]

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use floe_core::{InternalKey, ValueKind};
use floe_memtable::{ENTRY_OVERHEAD, Error, FIRST_CHUNK_SIZE, Lookup, Memtable, PAGE_SIZE, charge};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[test]
fn capacity_rounds_up_to_pages() {
    assert_eq!(Memtable::new(0).capacity(), PAGE_SIZE);
    assert_eq!(Memtable::new(1).capacity(), PAGE_SIZE);
    assert_eq!(Memtable::new(PAGE_SIZE).capacity(), PAGE_SIZE);
    assert_eq!(Memtable::new(PAGE_SIZE + 1).capacity(), 2 * PAGE_SIZE);
    assert_eq!(Memtable::with_pages(0).capacity(), PAGE_SIZE);
    let m = Memtable::with_pages(8);
    assert_eq!(m.capacity(), 8 * PAGE_SIZE);
    assert_eq!(m.hard_ceiling(), 10 * PAGE_SIZE);
}

#[test]
fn reads_at_snapshots() {
    let m = Memtable::new(1 << 20);
    assert_eq!(m.get(b"k", u64::MAX), None);
    let w = m.enter().unwrap();
    w.put(b("k"), 5, b("v5")).unwrap();
    w.delete(b("k"), 7).unwrap();
    w.put(b("k"), 9, b("v9")).unwrap();
    w.put(b("j"), 6, b("j6")).unwrap();
    drop(w);
    assert_eq!(m.get(b"k", 4), None);
    assert_eq!(m.get(b"k", 5), Some(Lookup::Value(b("v5"))));
    assert_eq!(m.get(b"k", 6), Some(Lookup::Value(b("v5"))));
    assert_eq!(m.get(b"k", 7), Some(Lookup::Deleted));
    assert_eq!(m.get(b"k", 8), Some(Lookup::Deleted));
    assert_eq!(m.get(b"k", 9), Some(Lookup::Value(b("v9"))));
    assert_eq!(m.get(b"k", u64::MAX), Some(Lookup::Value(b("v9"))));
    assert_eq!(m.get(b"j", 5), None);
    assert_eq!(m.get(b"k\0", 100), None);
    assert_eq!(m.get(b"", 100), None);
    assert_eq!(m.len(), 4);
    assert!(!m.is_empty());
    assert_eq!(m.min_key(), Some(b("j")));
    assert_eq!(m.max_key(), Some(b("k")));
    let expected =
        charge(b"k", b"v5") + charge(b"k", b"") + charge(b"k", b"v9") + charge(b"j", b"j6");
    assert_eq!(m.approximate_size(), expected);
}

#[test]
fn empty_key_and_value_are_valid() {
    let m = Memtable::new(PAGE_SIZE);
    m.enter()
        .unwrap()
        .put(Bytes::new(), 1, Bytes::new())
        .unwrap();
    assert_eq!(m.get(b"", 1), Some(Lookup::Value(Bytes::new())));
    assert_eq!(m.min_key(), Some(Bytes::new()));
    assert_eq!(m.max_key(), Some(Bytes::new()));
}

#[test]
fn duplicate_versions_are_refused_and_refunded() {
    let m = Memtable::new(PAGE_SIZE);
    let w = m.enter().unwrap();
    w.put(b("k"), 1, b("a")).unwrap();
    let size = m.approximate_size();
    assert_eq!(w.put(b("k"), 1, b("b")), Err(Error::Duplicate { seqno: 1 }));
    w.insert_unchecked(b("k"), 1, ValueKind::Put, b("c"));
    assert_eq!(m.approximate_size(), size);
    assert_eq!(m.get(b"k", 1), Some(Lookup::Value(b("a"))));
    assert!(matches!(
        w.put(b("k"), u64::MAX, b("x")),
        Err(Error::SeqnoTooLarge { .. })
    ));
}

#[test]
fn full_refuses_new_keys_and_admits_held_keys_up_to_the_ceiling() {
    let m = Memtable::with_pages(1);
    let w = m.enter().unwrap();
    let value = Bytes::from(vec![7u8; 200]);
    let mut seqno = 0;
    let mut keys = 0;
    loop {
        seqno += 1;
        match w.put(Bytes::from(format!("key{keys:04}")), seqno, value.clone()) {
            Ok(()) => keys += 1,
            Err(Error::Full { limit, .. }) => {
                assert_eq!(limit, m.capacity());
                break;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    let per_entry = charge(b"key0000", &value);
    assert_eq!(keys, m.capacity() / per_entry);
    let full_size = m.approximate_size();
    let len = m.len();
    // A refused write changed nothing: size, entries and key range.
    assert_eq!(m.get(format!("key{keys:04}").as_bytes(), u64::MAX), None);
    assert_eq!(
        m.max_key(),
        Some(Bytes::from(format!("key{:04}", keys - 1)))
    );
    // Keys that sort outside [min, max] are refused too. Their charge exceeds a whole
    // entry's, so they cannot fit in what is left, whatever `ENTRY_OVERHEAD` is.
    let long_key = |byte: u8| Bytes::from(vec![byte; per_entry]);
    assert!(matches!(
        w.delete(long_key(b'a'), seqno),
        Err(Error::Full { .. })
    ));
    assert!(matches!(
        w.delete(long_key(b'z'), seqno),
        Err(Error::Full { .. })
    ));
    assert_eq!((m.approximate_size(), m.len()), (full_size, len));
    assert_eq!(m.min_key(), Some(b("key0000")));
    // Overwrites of held keys go on up to the hard ceiling, never past it.
    let mut overwrites = 0;
    loop {
        seqno += 1;
        match w.put(b("key0000"), seqno, value.clone()) {
            Ok(()) => overwrites += 1,
            Err(Error::Full { limit, size, .. }) => {
                assert_eq!(limit, m.hard_ceiling());
                assert!(size <= m.hard_ceiling());
                break;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(overwrites >= 1);
    assert!(m.approximate_size() <= m.hard_ceiling());
    assert!(m.approximate_size() + per_entry > m.hard_ceiling());
    // Unchecked inserts are charged but never refused.
    w.insert_unchecked(b("new"), seqno + 1, ValueKind::Put, value.clone());
    assert_eq!(m.get(b"new", u64::MAX), Some(Lookup::Value(value)));
    assert!(m.approximate_size() > m.hard_ceiling());
}

#[test]
fn an_empty_memtable_admits_any_single_write() {
    let m = Memtable::with_pages(1);
    let w = m.enter().unwrap();
    let huge = Bytes::from(vec![1u8; 3 * PAGE_SIZE]);
    w.put(b("big"), 1, huge.clone()).unwrap();
    assert_eq!(m.approximate_size(), 3 * PAGE_SIZE + 3 + ENTRY_OVERHEAD);
    assert!(matches!(
        w.put(b("other"), 2, b("x")),
        Err(Error::Full { .. })
    ));
}

#[test]
fn the_gate_closes_for_good() {
    let m = Memtable::new(PAGE_SIZE);
    m.enter().unwrap().put(b("a"), 1, b("1")).unwrap();
    assert!(!m.is_frozen());
    m.freeze();
    assert!(m.is_frozen());
    assert_eq!(m.enter().err(), Some(Error::Frozen));
    assert_eq!(m.len(), 1);
    let message = Error::Frozen.to_string();
    assert!(message.contains("frozen"), "{message}");
}

fn filled() -> Arc<Memtable> {
    let m = Arc::new(Memtable::new(1 << 20));
    let w = m.enter().unwrap();
    // b: put@1, put@4; c: put@2, delete@5; d: put@3; f: delete@6, put@7.
    w.put(b("b"), 1, b("b1")).unwrap();
    w.put(b("c"), 2, b("c2")).unwrap();
    w.put(b("d"), 3, b("d3")).unwrap();
    w.put(b("b"), 4, b("b4")).unwrap();
    w.delete(b("c"), 5).unwrap();
    w.delete(b("f"), 6).unwrap();
    w.put(b("f"), 7, b("f7")).unwrap();
    drop(w);
    m
}

fn visible(
    m: &Arc<Memtable>,
    lower: Bound<&str>,
    upper: Bound<&str>,
    snapshot: u64,
) -> Vec<String> {
    let lower = lower.map(b);
    let upper = upper.map(b);
    let forward: Vec<String> = m
        .range(lower.clone(), upper.clone(), snapshot)
        .map(|(k, v)| {
            format!(
                "{}={}",
                String::from_utf8_lossy(&k),
                String::from_utf8_lossy(&v)
            )
        })
        .collect();
    let mut backward: Vec<String> = m
        .range(lower, upper, snapshot)
        .rev()
        .map(|(k, v)| {
            format!(
                "{}={}",
                String::from_utf8_lossy(&k),
                String::from_utf8_lossy(&v)
            )
        })
        .collect();
    backward.reverse();
    assert_eq!(forward, backward, "forward and backward disagree");
    forward
}

#[test]
fn visible_ranges_apply_snapshots_tombstones_and_bounds() {
    use Bound::{Excluded, Included, Unbounded};
    let m = filled();
    assert_eq!(
        visible(&m, Unbounded, Unbounded, 7),
        ["b=b4", "d=d3", "f=f7"]
    );
    assert_eq!(visible(&m, Unbounded, Unbounded, 6), ["b=b4", "d=d3"]);
    assert_eq!(
        visible(&m, Unbounded, Unbounded, 4),
        ["b=b4", "c=c2", "d=d3"]
    );
    assert_eq!(visible(&m, Unbounded, Unbounded, 2), ["b=b1", "c=c2"]);
    assert_eq!(visible(&m, Unbounded, Unbounded, 0), Vec::<String>::new());
    assert_eq!(
        visible(&m, Included("b"), Included("d"), 4),
        ["b=b4", "c=c2", "d=d3"]
    );
    assert_eq!(visible(&m, Excluded("b"), Excluded("d"), 4), ["c=c2"]);
    assert_eq!(visible(&m, Excluded("b"), Included("d"), 7), ["d=d3"]);
    assert_eq!(visible(&m, Included("bb"), Excluded("f"), 7), ["d=d3"]);
    assert_eq!(visible(&m, Included("c"), Included("c"), 4), ["c=c2"]);
    assert_eq!(
        visible(&m, Excluded("c"), Included("c"), 4),
        Vec::<String>::new()
    );
    assert_eq!(
        visible(&m, Included("c"), Excluded("c"), 4),
        Vec::<String>::new()
    );
    assert_eq!(
        visible(&m, Included("e"), Included("a"), 7),
        Vec::<String>::new()
    );
    assert_eq!(
        visible(&m, Included("g"), Unbounded, 7),
        Vec::<String>::new()
    );
    assert_eq!(
        visible(&m, Unbounded, Excluded("b"), 7),
        Vec::<String>::new()
    );
    assert_eq!(visible(&m, Unbounded, Included("b"), 7), ["b=b4"]);
}

#[test]
fn visible_range_alternating_ends_yields_each_key_once() {
    let m = filled();
    for snapshot in 0..=8 {
        let all: Vec<_> = m
            .range(Bound::Unbounded, Bound::Unbounded, snapshot)
            .collect();
        // Every interleaving of front and back pulls, encoded by the bits of `pattern`
        // (every seventh under Miri, which interprets each pull).
        for pattern in (0u32..64).step_by(if cfg!(miri) { 7 } else { 1 }) {
            let mut iter = m.range(Bound::Unbounded, Bound::Unbounded, snapshot);
            let (mut front, mut back) = (Vec::new(), Vec::new());
            for step in 0.. {
                let item = if pattern >> (step % 6) & 1 == 0 {
                    iter.next().map(|x| (true, x))
                } else {
                    iter.next_back().map(|x| (false, x))
                };
                match item {
                    Some((true, x)) => front.push(x),
                    Some((false, x)) => back.push(x),
                    None => break,
                }
            }
            assert_eq!(iter.next(), None);
            assert_eq!(iter.next_back(), None);
            back.reverse();
            front.extend(back);
            assert_eq!(front, all, "snapshot {snapshot}, pattern {pattern:b}");
        }
    }
}

#[test]
fn entries_show_every_version_in_internal_order() {
    let m = filled();
    let all: Vec<InternalKey> = m
        .entries(Bound::Unbounded, Bound::Unbounded)
        .map(|(k, _)| k)
        .collect();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted);
    assert_eq!(all.len(), 7);
    assert_eq!(all[0], InternalKey::new("b", 4, ValueKind::Put));
    assert_eq!(all[3], InternalKey::new("c", 2, ValueKind::Put));
    let back: Vec<InternalKey> = m
        .entries(Bound::Unbounded, Bound::Unbounded)
        .rev()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(back.into_iter().rev().collect::<Vec<_>>(), all);
    let c_only: Vec<_> = m
        .entries(Bound::Included(b("c")), Bound::Included(b("c")))
        .map(|(k, v)| (k.seqno, v))
        .collect();
    assert_eq!(c_only, [(5, Bytes::new()), (2, b("c2"))]);
    assert_eq!(
        m.entries(Bound::Excluded(b("c")), Bound::Excluded(b("d")))
            .count(),
        0
    );
    assert_eq!(
        m.entries(Bound::Included(b("z")), Bound::Included(b("a")))
            .count(),
        0
    );
    // Alternating ends meet without overlap.
    let mut iter = m.entries(Bound::Unbounded, Bound::Unbounded);
    let mut seen = Vec::new();
    while let Some(front) = iter.next() {
        seen.push(front.0);
        if let Some(back) = iter.next_back() {
            seen.push(back.0);
        }
    }
    seen.sort();
    assert_eq!(seen, all);
}

#[test]
fn iterators_are_static_and_send_and_outlive_the_handle() {
    fn assert_send_static<T: Send + 'static>(_: &T) {}
    let m = filled();
    let entries = m.entries(Bound::Unbounded, Bound::Unbounded);
    let visible = m.range(Bound::Unbounded, Bound::Unbounded, 7);
    assert_send_static(&entries);
    assert_send_static(&visible);
    drop(m);
    let handle = std::thread::spawn(move || (entries.count(), visible.count()));
    assert_eq!(handle.join().unwrap(), (7, 3));
}

#[test]
fn memtable_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Memtable>();
    assert_send_sync::<floe_memtable::AtomicKey>();
    assert_send_sync::<floe_memtable::WriterGate>();
}

/// Every read of a frozen memtable equals the same read before the freeze, and once frozen
/// the keys and values handed out are slices of the arena, not copies: two reads of the
/// same value share their bytes.
#[test]
fn a_frozen_memtable_reads_the_same_and_shares_its_arena() {
    // A small capacity, so that the arena's chunks are small and the entries spread over
    // several of them, plus values large enough for blocks of their own.
    let m = Arc::new(Memtable::new(64 * 1024));
    let w = m.enter().unwrap();
    let mut seqno = 0;
    for i in 0..200u32 {
        seqno += 1;
        let value = if i % 50 == 0 {
            vec![i as u8; 3000]
        } else {
            format!("value-{i}").into_bytes()
        };
        w.insert_unchecked(format!("key-{:04}", i % 150), seqno, ValueKind::Put, value);
        if i % 7 == 0 {
            seqno += 1;
            w.insert_unchecked(format!("key-{:04}", i % 150), seqno, ValueKind::Delete, b"");
        }
    }
    drop(w);
    let reads = |m: &Arc<Memtable>| {
        // Every key under Miri would be twenty times the interpreted lookups.
        let gets: Vec<_> = (0..160u32)
            .step_by(if cfg!(miri) { 8 } else { 1 })
            .flat_map(|i| [seqno / 2, seqno].map(|s| m.get(format!("key-{i:04}").as_bytes(), s)))
            .collect();
        let entries: Vec<_> = m.entries(Bound::Unbounded, Bound::Unbounded).collect();
        let back: Vec<_> = m
            .entries(Bound::Unbounded, Bound::Unbounded)
            .rev()
            .collect();
        let visible: Vec<_> = m.range(Bound::Unbounded, Bound::Unbounded, seqno).collect();
        (gets, entries, back, visible)
    };
    let before = reads(&m);
    assert_eq!(before.1.len(), 200 + 29);
    m.freeze();
    let after = reads(&m);
    assert_eq!(before, after);

    let value = |m: &Memtable| match m.get(b"key-0050", seqno) {
        Some(Lookup::Value(v)) => v,
        other => panic!("expected a value, got {other:?}"),
    };
    let (first, second) = (value(&m), value(&m));
    assert_eq!(first.len(), 3000);
    assert_eq!(
        first.as_ptr(),
        second.as_ptr(),
        "a frozen memtable copied a value"
    );
    // A value read from the frozen memtable outlives it.
    drop(m);
    drop(after);
    assert!(first.iter().all(|&b| b == 50));
}

/// A database of many keyspaces has a memtable per keyspace, most holding a few small
/// writes: each must hold arena memory in proportion to them, not a full chunk of its
/// large capacity.
#[test]
fn memtables_holding_a_few_small_entries_allocate_one_small_chunk() {
    let memtables: Vec<Memtable> = (0..if cfg!(miri) { 4 } else { 1000 })
        .map(|_| Memtable::new(64 << 20))
        .collect();
    for (i, m) in memtables.iter().enumerate() {
        assert_eq!(m.arena_bytes_allocated(), 0);
        let w = m.enter().unwrap();
        for seqno in 1..=3u64 {
            w.put(format!("key-{i}-{seqno}"), seqno, [7u8; 100])
                .unwrap();
        }
    }
    for m in &memtables {
        assert_eq!(m.arena_bytes_allocated(), FIRST_CHUNK_SIZE);
    }
    // As the memtable fills, its chunks grow with it: the arena holds at least the
    // entries' bytes and at most about twice them, since while the chunks double, the
    // newest one is as large as all the others together.
    let m = Memtable::new(64 << 20);
    let w = m.enter().unwrap();
    let entries = if cfg!(miri) { 100 } else { 10_000 };
    for seqno in 1..=entries {
        w.put(format!("key-{seqno:08}"), seqno, [7u8; 100]).unwrap();
    }
    let payload = entries as usize * (12 + 100);
    let allocated = m.arena_bytes_allocated();
    assert!(
        allocated >= payload && allocated <= 2 * payload.max(FIRST_CHUNK_SIZE),
        "{allocated} bytes of arena for {payload} bytes of entries"
    );
}

#[test]
fn reads_of_an_active_memtable_are_copies() {
    let m = Memtable::new(64 * 1024);
    m.enter().unwrap().put(b("k"), 1, b("v")).unwrap();
    let (Some(Lookup::Value(a)), Some(Lookup::Value(b))) = (m.get(b"k", 1), m.get(b"k", 1)) else {
        panic!("expected values");
    };
    assert_eq!(a, b);
    assert_ne!(a.as_ptr(), b.as_ptr());
}

/// Range tombstones: stored apart from the point entries, an empty range stored nowhere, a
/// sequence number stored once, an unbounded end, and the counts and key range they leave
/// alone.
#[test]
fn range_tombstones_sit_beside_the_point_entries() {
    let m = Memtable::new(1 << 20);
    assert_eq!(m.range_tombstones(), None);
    assert_eq!(m.range_tombstone_count(), 0);
    {
        let w = m.enter().unwrap();
        w.put(b("k"), 1, b("v")).unwrap();
        w.insert_range_tombstone(b"a", Some(b"m"), 5);
        // Empty ranges delete nothing and are not stored.
        w.insert_range_tombstone(b"q", Some(b"q"), 6);
        w.insert_range_tombstone(b"q", Some(b"p"), 7);
        w.insert_range_tombstone(b"x", None, 8);
        // A replayed sequence number is left as it is, whatever its range.
        w.insert_range_tombstone(b"a", Some(b"m"), 5);
        w.insert_range_tombstone(b"0", Some(b"z"), 8);
    }
    assert_eq!(m.range_tombstone_count(), 2);
    assert_eq!(m.len(), 1);
    // Points read as before: the reader applies the range tombstones.
    assert_eq!(m.get(b"k", 10), Some(Lookup::Value(b("v"))));
    assert_eq!(m.get(b"b", 10), None);
    assert_eq!(m.min_key(), Some(b("k")));
    assert_eq!(m.max_key(), Some(b("k")));
    let fragments = m.range_tombstones().unwrap();
    assert_eq!(fragments.max_covering(b"k", 10), Some(5));
    assert_eq!(fragments.max_covering(b"k", 4), None);
    assert_eq!(fragments.max_covering(b"m", 10), None);
    assert_eq!(fragments.max_covering(b"q", 10), None);
    assert_eq!(fragments.max_covering(b"x", 10), Some(8));
    assert_eq!(fragments.max_covering(b"\xff\xff\xff", 10), Some(8));
    assert_eq!(
        fragments.max_covering(b"1", 10),
        None,
        "the replay of 8 was stored"
    );
    assert!(fragments.covers(b"k", 1, 10));
}

#[test]
fn a_memtable_of_range_tombstones_only_is_not_empty() {
    let m = Memtable::new(1 << 20);
    assert!(m.is_empty());
    m.enter()
        .unwrap()
        .insert_range_tombstone(b"b", Some(b"b"), 1);
    assert!(m.is_empty(), "an empty range is stored nowhere");
    m.enter().unwrap().insert_range_tombstone(b"a", None, 2);
    assert!(!m.is_empty());
    assert_eq!(m.len(), 0);
    assert_eq!((m.min_key(), m.max_key()), (None, None));
    m.freeze();
    assert!(!m.is_empty());
    assert!(m.enter().is_err());
    assert_eq!(m.range_tombstone_count(), 1);
}

/// The fragments are cached: the same `Arc` until an insert, and once frozen for good.
#[test]
fn range_tombstone_fragments_are_cached_and_stable_once_frozen() {
    let m = Memtable::new(1 << 20);
    let w = m.enter().unwrap();
    w.insert_range_tombstone(b"a", Some(b"c"), 1);
    let first = m.range_tombstones().unwrap();
    assert!(Arc::ptr_eq(&first, &m.range_tombstones().unwrap()));
    w.insert_range_tombstone(b"b", Some(b"d"), 2);
    let second = m.range_tombstones().unwrap();
    assert!(!Arc::ptr_eq(&first, &second));
    assert_eq!(second.max_covering(b"c", 2), Some(2));
    w.insert_range_tombstone(b"e", Some(b"f"), 3);
    drop(w);
    m.freeze();
    let frozen = m.range_tombstones().unwrap();
    assert_eq!(frozen.max_covering(b"e", 3), Some(3));
    for _ in 0..3 {
        assert!(Arc::ptr_eq(&frozen, &m.range_tombstones().unwrap()));
    }
}

#[test]
#[should_panic(expected = "unchecked memtable insert failed")]
fn a_range_tombstone_above_max_seqno_panics() {
    let m = Memtable::new(1 << 20);
    m.enter()
        .unwrap()
        .insert_range_tombstone(b"a", None, floe_core::MAX_SEQNO + 1);
}

#[test]
fn range_tombstones_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<floe_memtable::RangeTombstones>();
}

/// A point lookup's question, asked without cloning the fragments, answers as the
/// fragments do, before and after inserts and after the freeze.
#[test]
fn max_covering_answers_as_the_fragments_do() {
    let memtable = Memtable::new(64 * 1024);
    assert_eq!(memtable.max_covering(b"k", u64::MAX >> 8), None);
    let check = |memtable: &Memtable| {
        let fragments = memtable.range_tombstones().unwrap();
        for key in [&b"a"[..], b"b", b"c", b"m", b"x", b"zz"] {
            for snapshot in [0, 3, 5, 10] {
                assert_eq!(
                    memtable.max_covering(key, snapshot),
                    fragments.max_covering(key, snapshot)
                );
            }
        }
    };
    {
        let writer = memtable.enter().unwrap();
        writer.insert_range_tombstone(b"b", Some(b"n"), 3);
        check(&memtable);
        writer.insert_range_tombstone(b"m", None, 5);
    }
    check(&memtable);
    assert_eq!(memtable.max_covering(b"m", 10), Some(5));
    assert_eq!(memtable.max_covering(b"c", 4), Some(3));
    memtable.freeze();
    check(&memtable);
}
