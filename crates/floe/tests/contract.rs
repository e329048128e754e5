//! The public contract of `floe`, item by item: opening, point reads and writes, batches,
//! every form of range, prefixes, double-ended iteration, snapshot isolation, durability
//! across close and reopen, the auto traits of the public types and single ownership of a
//! directory (within this process and from another one).

pub mod common;

use std::ops::Bound;
use std::process::Command;

use common::{
    Model, Pair, assert_pairs, collect, collect_rev, model_all, model_prefix, model_range,
};
use floe::{Bytes, Db, Error, Iter, Options, Result, Snapshot, WriteBatch};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A read view: the methods `Db` and `Snapshot` share, so one checker covers both.
trait Reader {
    fn get_value(&self, key: &[u8]) -> Result<Option<Bytes>>;
    fn all(&self) -> Iter;
    fn bounded(&self, range: (Bound<&[u8]>, Bound<&[u8]>)) -> Iter;
    fn with_prefix(&self, prefix: &[u8]) -> Iter;
}

impl Reader for Db {
    fn get_value(&self, key: &[u8]) -> Result<Option<Bytes>> {
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

impl Reader for Snapshot {
    fn get_value(&self, key: &[u8]) -> Result<Option<Bytes>> {
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

/// Keys used as range bounds and prefixes: present ones, absent ones between them, the
/// empty key and keys made of `0xff` bytes.
const PROBES: &[&[u8]] = &[
    b"",
    b"\x00",
    b"a",
    b"ab",
    b"b",
    b"c",
    b"m",
    b"zz",
    b"\xff",
    b"\xff\xff",
    b"\xff\xff\xff",
];

/// Checks every read of `reader` against `model`: each probe and model key with `get`,
/// the whole space both ways, every bound combination over the probes both ways, and
/// every probe (and its one-byte extensions) as a prefix both ways.
fn check_reader(reader: &impl Reader, model: &Model, what: &str) {
    for key in model
        .keys()
        .map(Vec::as_slice)
        .chain(PROBES.iter().copied())
    {
        let got = reader
            .get_value(key)
            .unwrap_or_else(|e| panic!("{what}: get error {e}"));
        assert_eq!(
            got.as_deref(),
            model.get(key).map(Vec::as_slice),
            "{what}: get({})",
            common::show(key)
        );
    }
    let all = model_all(model);
    assert_pairs(&collect(reader.all(), what), &all, &format!("{what}: iter"));
    let mut rev = all.clone();
    rev.reverse();
    assert_pairs(
        &collect_rev(reader.all(), what),
        &rev,
        &format!("{what}: iter rev"),
    );

    let mut bounds: Vec<Bound<&[u8]>> = vec![Bound::Unbounded];
    for probe in PROBES {
        bounds.push(Bound::Included(probe));
        bounds.push(Bound::Excluded(probe));
    }
    for &lo in &bounds {
        for &hi in &bounds {
            let want = model_range(model, (lo, hi));
            let label = format!("{what}: range ({lo:?}, {hi:?})");
            assert_pairs(&collect(reader.bounded((lo, hi)), &label), &want, &label);
            let mut want_rev = want;
            want_rev.reverse();
            let label = format!("{label} rev");
            assert_pairs(
                &collect_rev(reader.bounded((lo, hi)), &label),
                &want_rev,
                &label,
            );
        }
    }

    let mut prefixes: Vec<Vec<u8>> = Vec::new();
    for probe in PROBES {
        prefixes.push(probe.to_vec());
        for last in [0x00, b'a', b'b', 0xfe, 0xff] {
            let mut p = probe.to_vec();
            p.push(last);
            prefixes.push(p);
        }
    }
    for prefix in &prefixes {
        let want = model_prefix(model, prefix);
        let label = format!("{what}: prefix {}", common::show(prefix));
        assert_pairs(&collect(reader.with_prefix(prefix), &label), &want, &label);
        let mut want_rev = want;
        want_rev.reverse();
        assert_pairs(
            &collect_rev(reader.with_prefix(prefix), &label),
            &want_rev,
            &format!("{label} rev"),
        );
    }
}

/// Fills `db` and `model` with keys that make ranges and prefixes interesting: the empty
/// key, keys around every probe and keys of `0xff` bytes.
fn fill(db: &Db, model: &mut Model, tag: &str) {
    let keys: &[&[u8]] = &[
        b"",
        b"\x00",
        b"\x00\x00",
        b"a",
        b"a\x00",
        b"aa",
        b"ab",
        b"ab\xff",
        b"abc",
        b"b",
        b"ba",
        b"c",
        b"ca",
        b"m",
        b"y",
        b"z",
        b"zz",
        b"zzz",
        b"\xfe",
        b"\xfe\xff",
        b"\xff",
        b"\xff\x00",
        b"\xff\xfe",
        b"\xff\xff",
        b"\xff\xff\x01",
        b"\xff\xff\xff",
        b"\xff\xff\xff\xff",
    ];
    for key in keys {
        let value = format!("{tag}:{}", common::show(key)).into_bytes();
        db.put(key, &value).unwrap();
        model.insert(key.to_vec(), value);
    }
}

fn open_tiny(dir: &std::path::Path) -> Db {
    Db::open_with(dir, common::tiny_options()).expect("open_with tiny options")
}

#[test]
fn open_put_get_delete_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).expect("open with default options");
    assert_eq!(db.get("missing").unwrap(), None);
    db.put("k", "v1").unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v1"[..]));
    db.put("k", "v2").unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v2"[..]));
    db.delete("k").unwrap();
    assert_eq!(db.get("k").unwrap(), None);
    // Deleting a key that was never written is not an error.
    db.delete("never").unwrap();
    assert_eq!(db.get("never").unwrap(), None);
    db.put("k", "v3").unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v3"[..]));
    db.close().unwrap();
}

#[test]
fn keys_and_values_accept_every_as_ref_form() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    db.put("str", "a").unwrap();
    db.put(&b"slice"[..], &b"b"[..]).unwrap();
    // Owned vectors are passed by value, moved into the call.
    let (vec_key, vec_value) = (Vec::from("vec"), Vec::from("c"));
    db.put(vec_key, vec_value).unwrap();
    db.put([1u8, 2, 3], [4u8, 5]).unwrap();
    db.put(Bytes::from_static(b"bytes"), Bytes::from_static(b"d"))
        .unwrap();
    db.put(String::from("string"), String::from("e")).unwrap();
    assert_eq!(db.get("str").unwrap().as_deref(), Some(&b"a"[..]));
    assert_eq!(db.get(b"slice").unwrap().as_deref(), Some(&b"b"[..]));
    assert_eq!(
        db.get(Vec::from("vec")).unwrap().as_deref(),
        Some(&b"c"[..])
    );
    assert_eq!(db.get([1u8, 2, 3]).unwrap().as_deref(), Some(&[4u8, 5][..]));
    assert_eq!(
        db.get(Bytes::from_static(b"bytes")).unwrap().as_deref(),
        Some(&b"d"[..])
    );
    assert_eq!(db.get("string").unwrap().as_deref(), Some(&b"e"[..]));
    db.delete(Bytes::from_static(b"bytes")).unwrap();
    db.delete(Vec::from("vec")).unwrap();
    assert_eq!(db.get("bytes").unwrap(), None);
    assert_eq!(db.get("vec").unwrap(), None);
    db.close().unwrap();
}

#[test]
fn empty_key_and_empty_value_are_valid_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    db.put("", "empty key").unwrap();
    db.put("k", "").unwrap();
    let check = |db: &Db, stage: &str| {
        assert_eq!(
            db.get("").unwrap().as_deref(),
            Some(&b"empty key"[..]),
            "{stage}: empty key"
        );
        // An empty value is a present key, never `None`.
        assert_eq!(
            db.get("k").unwrap().as_deref(),
            Some(&b""[..]),
            "{stage}: empty value"
        );
        let all = collect(db.iter(), stage);
        assert_eq!(
            all,
            vec![
                (b"".to_vec(), b"empty key".to_vec()),
                (b"k".to_vec(), b"".to_vec())
            ],
            "{stage}: iter"
        );
        assert_eq!(
            collect(db.prefix(""), stage).len(),
            2,
            "{stage}: empty prefix"
        );
        assert_eq!(
            collect(db.range::<&[u8], _>(..=&b""[..]), stage),
            vec![(b"".to_vec(), b"empty key".to_vec())],
            "{stage}: ..=empty"
        );
        assert!(
            collect(db.range::<&[u8], _>(..&b""[..]), stage).is_empty(),
            "{stage}: ..empty is empty"
        );
    };
    check(&db, "memtable");
    db.flush().unwrap();
    check(&db, "after flush");
    db.compact().unwrap();
    check(&db, "after compact");
    db.close().unwrap();
    let db = open_tiny(dir.path());
    check(&db, "after reopen");
    db.delete("").unwrap();
    assert_eq!(db.get("").unwrap(), None);
    db.flush().unwrap();
    assert_eq!(db.get("").unwrap(), None);
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b""[..]));
    db.close().unwrap();
}

#[test]
fn large_keys_and_values_are_accepted_and_larger_ones_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let big_key: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let big_value: Vec<u8> = (0..64 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
    db.put(&big_key, "small").expect("a 64 KiB key is accepted");
    db.put("big", &big_value)
        .expect("a 64 MiB value is accepted");
    db.put("after", "x").unwrap();
    let check = |db: &Db, stage: &str| {
        assert_eq!(
            db.get(&big_key).unwrap().as_deref(),
            Some(&b"small"[..]),
            "{stage}: 64 KiB key"
        );
        let got = db.get("big").unwrap().expect("64 MiB value present");
        assert!(got == big_value, "{stage}: 64 MiB value differs");
        assert_eq!(db.get("after").unwrap().as_deref(), Some(&b"x"[..]));
    };
    check(&db, "memtable");
    db.flush().unwrap();
    check(&db, "after flush");
    db.close().unwrap();
    let db = Db::open(dir.path()).unwrap();
    check(&db, "after reopen");

    // Larger keys may be refused, but only with InvalidArgument, and a refused write
    // leaves no trace.
    for len in [64 * 1024 + 1, 1024 * 1024, 16 * 1024 * 1024] {
        let key = vec![b'k'; len];
        match db.put(&key, "v") {
            Ok(()) => assert_eq!(db.get(&key).unwrap().as_deref(), Some(&b"v"[..])),
            Err(Error::InvalidArgument { .. }) => {}
            Err(e) => panic!("a {len}-byte key failed with {e}, not InvalidArgument"),
        }
    }
    let mut huge = big_value;
    huge.push(7);
    match db.put("huge", &huge) {
        Ok(()) => assert!(db.get("huge").unwrap().is_some_and(|v| v == huge)),
        Err(Error::InvalidArgument { .. }) => assert_eq!(db.get("huge").unwrap(), None),
        Err(e) => panic!("a 64 MiB + 1 value failed with {e}, not InvalidArgument"),
    }
    db.close().unwrap();
}

#[test]
fn entries_larger_than_a_tiny_write_buffer_and_block() {
    // A 1 KiB memtable and 64-byte blocks must still take a 64 KiB key and a 1 MiB value:
    // an entry larger than a whole memtable may not be refused or loop forever.
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    let big_key = vec![b'k'; 64 * 1024];
    let big_value: Vec<u8> = (0..1024 * 1024).map(|i| (i % 241) as u8).collect();
    db.put("a", "before").unwrap();
    db.put(&big_key, "big key").unwrap();
    db.put("big value", &big_value).unwrap();
    let mut batch = WriteBatch::new();
    batch.put("b1", &big_value);
    batch.put("b2", &big_value);
    db.write(batch).unwrap();
    db.put("z", "after").unwrap();
    let check = |db: &Db, stage: &str| {
        assert_eq!(
            db.get("a").unwrap().as_deref(),
            Some(&b"before"[..]),
            "{stage}"
        );
        assert_eq!(
            db.get(&big_key).unwrap().as_deref(),
            Some(&b"big key"[..]),
            "{stage}: 64 KiB key"
        );
        for key in ["big value", "b1", "b2"] {
            let got = db.get(key).unwrap();
            assert!(got.is_some_and(|v| v == big_value), "{stage}: {key}");
        }
        assert_eq!(
            db.get("z").unwrap().as_deref(),
            Some(&b"after"[..]),
            "{stage}"
        );
        let keys: Vec<Vec<u8>> = collect(db.iter(), stage)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let want: Vec<Vec<u8>> = vec![
            b"a".to_vec(),
            b"b1".to_vec(),
            b"b2".to_vec(),
            b"big value".to_vec(),
            big_key.clone(),
            b"z".to_vec(),
        ];
        assert_eq!(keys, want, "{stage}: keys in order");
    };
    check(&db, "as written");
    db.flush().unwrap();
    check(&db, "after flush");
    db.compact().unwrap();
    check(&db, "after compact");
    db.close().unwrap();
    let db = open_tiny(dir.path());
    check(&db, "after reopen");
    db.close().unwrap();
}

#[test]
fn an_empty_database_flushes_compacts_syncs_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    db.flush().unwrap();
    db.compact().unwrap();
    db.sync().unwrap();
    assert!(collect(db.iter(), "empty").is_empty());
    assert!(collect_rev(db.iter(), "empty").is_empty());
    assert_eq!(db.get("").unwrap(), None);
    db.close().unwrap();
    let db = open_tiny(dir.path());
    assert!(collect(db.iter(), "empty after reopen").is_empty());
    // Deletes alone, flushed and compacted, leave nothing behind either.
    for i in 0..50 {
        db.delete(format!("k{i}")).unwrap();
    }
    db.flush().unwrap();
    db.compact().unwrap();
    assert!(collect(db.iter(), "only deletes").is_empty());
    db.close().unwrap();
}

#[test]
fn write_batch_basics_and_atomic_application() {
    let mut batch = WriteBatch::default();
    assert!(batch.is_empty());
    assert_eq!(batch.len(), 0);
    batch.put("a", "1");
    batch.put(Vec::from("b"), Vec::from("2"));
    batch.delete("c");
    assert_eq!(batch.len(), 3);
    assert!(!batch.is_empty());
    batch.clear();
    assert!(batch.is_empty());
    assert_eq!(batch.len(), 0);

    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    db.put("c", "old").unwrap();
    db.put("d", "old").unwrap();
    db.write(WriteBatch::new()).expect("an empty batch is fine");
    let mut batch = WriteBatch::new();
    batch.put("a", "1");
    batch.put("b", "2");
    batch.delete("c");
    db.write(batch).unwrap();
    assert_eq!(db.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(db.get("b").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(db.get("c").unwrap(), None);
    assert_eq!(db.get("d").unwrap().as_deref(), Some(&b"old"[..]));

    // A batch that may be refused (its key is far beyond the 64 KiB the contract
    // promises) is applied entirely or not at all.
    let mut batch = WriteBatch::new();
    batch.put("x", "1");
    batch.delete("d");
    batch.put(vec![b'k'; 16 * 1024 * 1024], "huge key");
    batch.put("y", "2");
    match db.write(batch) {
        Ok(()) => {
            assert_eq!(db.get("x").unwrap().as_deref(), Some(&b"1"[..]));
            assert_eq!(db.get("d").unwrap(), None);
            assert_eq!(db.get("y").unwrap().as_deref(), Some(&b"2"[..]));
        }
        Err(Error::InvalidArgument { .. }) => {
            assert_eq!(db.get("x").unwrap(), None, "half a refused batch applied");
            assert_eq!(db.get("d").unwrap().as_deref(), Some(&b"old"[..]));
            assert_eq!(db.get("y").unwrap(), None, "half a refused batch applied");
        }
        Err(e) => panic!("a batch with a 16 MiB key failed with {e}, not InvalidArgument"),
    }
    db.close().unwrap();
}

#[test]
fn write_batch_applies_its_operations_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    db.put("gone", "old").unwrap();
    let mut batch = WriteBatch::new();
    batch.put("k", "first");
    batch.put("k", "second");
    batch.put("gone", "new");
    batch.delete("gone");
    batch.delete("back");
    batch.put("back", "again");
    db.write(batch).unwrap();
    let check = |db: &Db, stage: &str| {
        assert_eq!(
            db.get("k").unwrap().as_deref(),
            Some(&b"second"[..]),
            "{stage}"
        );
        assert_eq!(db.get("gone").unwrap(), None, "{stage}");
        assert_eq!(
            db.get("back").unwrap().as_deref(),
            Some(&b"again"[..]),
            "{stage}"
        );
        assert_eq!(collect(db.iter(), stage).len(), 2, "{stage}");
    };
    check(&db, "memtable");
    db.close().unwrap();
    let db = open_tiny(dir.path());
    check(&db, "after reopen (log replay)");
    db.flush().unwrap();
    check(&db, "after flush");
    db.close().unwrap();
}

#[test]
fn ranges_of_every_form_and_prefixes_in_every_layer() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    let mut model = Model::new();
    check_reader(&db, &model, "empty db");
    fill(&db, &mut model, "one");
    check_reader(&db, &model, "memtable");
    db.flush().unwrap();
    check_reader(&db, &model, "after flush");
    // Overwrite and delete some keys so that the newest versions sit above older ones in
    // other layers, then read through the mix.
    for key in [&b"ab"[..], b"", b"\xff\xff", b"m"] {
        db.delete(key).unwrap();
        model.remove(key);
    }
    for key in [&b"a"[..], b"zz", b"\xff", b"\x00\x00"] {
        db.put(key, "two").unwrap();
        model.insert(key.to_vec(), b"two".to_vec());
    }
    check_reader(&db, &model, "memtable over table");
    db.flush().unwrap();
    check_reader(&db, &model, "two tables");
    db.compact().unwrap();
    check_reader(&db, &model, "after compact");
    db.put("ab", "three").unwrap();
    model.insert(b"ab".to_vec(), b"three".to_vec());
    db.close().unwrap();
    let db = open_tiny(dir.path());
    check_reader(&db, &model, "after reopen");
    db.close().unwrap();
}

#[test]
fn range_accepts_every_range_bounds_type() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    for key in ["a", "b", "c", "d", "e"] {
        db.put(key, key.to_uppercase()).unwrap();
    }
    let keys = |iter: Iter| -> Vec<String> {
        collect(iter, "range")
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect()
    };
    let keys_rev = |iter: Iter| -> Vec<String> {
        collect_rev(iter, "range")
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect()
    };
    assert_eq!(keys(db.range::<&[u8], _>(..)), ["a", "b", "c", "d", "e"]);
    assert_eq!(keys(db.range("b".."d")), ["b", "c"]);
    assert_eq!(keys(db.range("b"..="d")), ["b", "c", "d"]);
    assert_eq!(keys(db.range("b"..)), ["b", "c", "d", "e"]);
    assert_eq!(keys(db.range(.."c")), ["a", "b"]);
    assert_eq!(keys(db.range(..="c")), ["a", "b", "c"]);
    assert_eq!(
        keys(db.range::<&str, _>((Bound::Excluded("a"), Bound::Included("c")))),
        ["b", "c"]
    );
    assert_eq!(
        keys(db.range((Bound::Excluded(b"b".to_vec()), Bound::Unbounded))),
        ["c", "d", "e"]
    );
    assert_eq!(keys(db.range(&b"bb"[..]..&b"dd"[..])), ["c", "d"]);
    // Empty and reversed ranges yield nothing, in either direction, and do not panic.
    assert!(keys(db.range("c".."c")).is_empty());
    assert!(keys(db.range("d".."b")).is_empty());
    assert!(keys(db.range("d"..="b")).is_empty());
    assert!(keys_rev(db.range("d".."b")).is_empty());
    assert!(keys(db.range::<&str, _>((Bound::Excluded("c"), Bound::Included("c")))).is_empty());
    assert!(keys(db.range::<&str, _>((Bound::Excluded("c"), Bound::Excluded("c")))).is_empty());
    assert_eq!(keys(db.range("c"..="c")), ["c"]);
    assert_eq!(keys_rev(db.range("b"..="d")), ["d", "c", "b"]);
    assert_eq!(
        keys_rev(db.range::<&[u8], _>(..)),
        ["e", "d", "c", "b", "a"]
    );

    let snapshot = db.snapshot();
    assert_eq!(keys(snapshot.range("b".."d")), ["b", "c"]);
    assert_eq!(keys(snapshot.range::<&[u8], _>(..)).len(), 5);
    assert!(keys(snapshot.range("d".."b")).is_empty());
    db.close().unwrap();
}

#[test]
fn prefixes_ending_in_0xff_and_the_empty_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    let keys: &[&[u8]] = &[
        b"",
        b"\x01",
        b"\x01\xfe",
        b"\x01\xff",
        b"\x01\xff\x00",
        b"\x01\xff\xff",
        b"\x01\xff\xff\xff",
        b"\x02",
        b"\x02\x00",
        b"\xff",
        b"\xff\xff",
        b"\xff\xff\x01",
    ];
    let mut model = Model::new();
    for key in keys {
        db.put(key, key).unwrap();
        model.insert(key.to_vec(), key.to_vec());
    }
    let prefixes: &[&[u8]] = &[
        b"",
        b"\x01",
        b"\x01\xff",
        b"\x01\xff\xff",
        b"\xff",
        b"\xff\xff",
        b"\xff\xff\xff",
        b"\x00",
        b"\x03",
    ];
    for stage in ["memtable", "table"] {
        for prefix in prefixes {
            let want = model_prefix(&model, prefix);
            let label = format!("{stage}: prefix {}", common::show(prefix));
            assert_pairs(&collect(db.prefix(prefix), &label), &want, &label);
            let mut want_rev = want;
            want_rev.reverse();
            assert_pairs(&collect_rev(db.prefix(prefix), &label), &want_rev, &label);
        }
        db.flush().unwrap();
    }
    assert_eq!(collect(db.prefix(""), "empty prefix").len(), keys.len());
    db.close().unwrap();
}

/// Drives `iter` with a random mix of `next` and `next_back` and checks it against `want`.
fn check_double_ended(mut iter: Iter, want: &[Pair], rng: &mut SmallRng, what: &str) {
    let (mut front, mut back) = (0, want.len());
    let mut steps = 0;
    loop {
        let from_back = rng.random_bool(0.5);
        let item = if from_back {
            iter.next_back()
        } else {
            iter.next()
        };
        steps += 1;
        match item {
            None => {
                assert_eq!(
                    front, back,
                    "{what}: iterator ended early after {steps} steps"
                );
                break;
            }
            Some(item) => {
                let (k, v) = item.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(
                    front < back,
                    "{what}: iterator yielded {} after the ends met",
                    common::show(&k)
                );
                let expected = if from_back {
                    back -= 1;
                    &want[back]
                } else {
                    front += 1;
                    &want[front - 1]
                };
                assert_eq!((k.to_vec(), v.to_vec()), *expected, "{what}: step {steps}");
            }
        }
    }
    // A finished iterator stays finished from both ends.
    for _ in 0..3 {
        assert!(iter.next().is_none(), "{what}: next after the end");
        assert!(
            iter.next_back().is_none(),
            "{what}: next_back after the end"
        );
    }
}

#[test]
fn double_ended_iteration_mixing_next_and_next_back() {
    let seed = floe_testkit::seed("double_ended_iteration_mixing_next_and_next_back");
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    let mut model = Model::new();
    for i in 0..300u32 {
        let key = format!("key{:04}", (i * 7) % 200).into_bytes();
        if i % 11 == 5 {
            db.delete(&key).unwrap();
            model.remove(&key);
        } else {
            let value = format!("v{i}").into_bytes();
            db.put(&key, &value).unwrap();
            model.insert(key, value);
        }
        if i == 150 {
            db.flush().unwrap();
        }
    }
    let all = model_all(&model);
    for round in 0..20 {
        check_double_ended(db.iter(), &all, &mut rng, &format!("iter round {round}"));
        let want = model_range(
            &model,
            (Bound::Included(b"key0050"), Bound::Excluded(b"key0120")),
        );
        check_double_ended(
            db.range(&b"key0050"[..]..&b"key0120"[..]),
            &want,
            &mut rng,
            &format!("range round {round}"),
        );
        let want = model_prefix(&model, b"key01");
        check_double_ended(
            db.prefix("key01"),
            &want,
            &mut rng,
            &format!("prefix round {round}"),
        );
    }
    // A single-element and an empty iterator from both ends.
    let one = model_prefix(&model, b"key0007");
    check_double_ended(db.prefix("key0007"), &one, &mut rng, "one element");
    check_double_ended(db.prefix("nothing"), &[], &mut rng, "empty");
    db.close().unwrap();
}

#[test]
fn snapshots_are_unaffected_by_later_writes_flushes_and_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    let mut model = Model::new();
    fill(&db, &mut model, "one");
    db.flush().unwrap();
    db.put("memtable-only", "yes").unwrap();
    model.insert(b"memtable-only".to_vec(), b"yes".to_vec());
    let snapshot = db.snapshot();
    let frozen = model.clone();
    check_reader(&snapshot, &frozen, "snapshot at creation");

    // Rewrite everything, delete half, and add new keys, with flushes and compactions.
    for (i, key) in frozen.keys().enumerate() {
        if i % 2 == 0 {
            db.delete(key).unwrap();
            model.remove(key);
        } else {
            db.put(key, "two").unwrap();
            model.insert(key.clone(), b"two".to_vec());
        }
    }
    for i in 0..200 {
        let key = format!("new{i:03}").into_bytes();
        db.put(&key, vec![b'n'; 40]).unwrap();
        model.insert(key, vec![b'n'; 40]);
    }
    check_reader(&snapshot, &frozen, "snapshot after writes");
    check_reader(&db, &model, "db after writes");
    db.flush().unwrap();
    check_reader(&snapshot, &frozen, "snapshot after flush");
    db.compact().unwrap();
    check_reader(&snapshot, &frozen, "snapshot after compact");
    check_reader(&db, &model, "db after compact");
    let second = db.snapshot();
    db.put("a", "three").unwrap();
    db.compact().unwrap();
    check_reader(&second, &model, "second snapshot");
    check_reader(&snapshot, &frozen, "first snapshot at the end");
    drop(snapshot);
    drop(second);
    model.insert(b"a".to_vec(), b"three".to_vec());
    db.compact().unwrap();
    check_reader(&db, &model, "db after snapshots are released");
    db.close().unwrap();
}

#[test]
fn an_iterator_never_shows_writes_made_after_it_was_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    let mut model = Model::new();
    for i in 0..100 {
        let key = format!("k{i:03}").into_bytes();
        db.put(&key, b"old").unwrap();
        model.insert(key, b"old".to_vec());
    }
    db.flush().unwrap();
    let want = model_all(&model);
    let want_range = model_range(&model, (Bound::Included(b"k020"), Bound::Excluded(b"k080")));
    let want_prefix = model_prefix(&model, b"k05");

    let mut iter = db.iter();
    let mut rev = db.iter().rev();
    let range = db.range("k020".."k080");
    let prefix = db.prefix("k05");
    let snapshot = db.snapshot();
    let snapshot_iter = snapshot.iter();
    // Consume a little before the writes so that the iterator has started reading.
    let head: Vec<Pair> = (&mut iter)
        .take(10)
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect();
    let tail_first = rev.next().unwrap().unwrap();

    for i in 0..100 {
        let key = format!("k{i:03}");
        if i % 3 == 0 {
            db.delete(&key).unwrap();
        } else {
            db.put(&key, "new").unwrap();
        }
        db.put(format!("k{i:03}x"), "inserted").unwrap();
    }
    db.put("a-before-all", "new").unwrap();
    db.put("z-after-all", "new").unwrap();
    db.flush().unwrap();
    db.compact().unwrap();

    let mut got = head;
    got.extend(collect(iter, "iter"));
    assert_pairs(&got, &want, "iter created before the writes");
    let mut got_rev = vec![(tail_first.0.to_vec(), tail_first.1.to_vec())];
    got_rev.extend(rev.map(|r| {
        let (k, v) = r.unwrap();
        (k.to_vec(), v.to_vec())
    }));
    let mut want_rev = want.clone();
    want_rev.reverse();
    assert_pairs(
        &got_rev,
        &want_rev,
        "reverse iter created before the writes",
    );
    assert_pairs(
        &collect(range, "range"),
        &want_range,
        "range created before the writes",
    );
    assert_pairs(
        &collect(prefix, "prefix"),
        &want_prefix,
        "prefix created before the writes",
    );
    assert_pairs(
        &collect(snapshot_iter, "snapshot iter"),
        &want,
        "snapshot iter",
    );
    drop(snapshot);
    assert_eq!(db.get("k001").unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(db.get("k003").unwrap(), None);
    db.close().unwrap();
}

#[test]
fn flush_compact_sync_close_and_reopen_keep_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    {
        let db = open_tiny(dir.path());
        for i in 0..500u32 {
            let key = format!("key{:03}", i % 250).into_bytes();
            let value = format!("value-{i}-{}", "x".repeat((i % 30) as usize)).into_bytes();
            db.put(&key, &value).unwrap();
            model.insert(key, value);
            if i % 97 == 0 {
                let key = format!("key{:03}", (i * 3) % 250).into_bytes();
                db.delete(&key).unwrap();
                model.remove(&key);
            }
            match i {
                100 => db.flush().unwrap(),
                200 => db.compact().unwrap(),
                300 => db.sync().unwrap(),
                _ => {}
            }
        }
        check_reader(&db, &model, "before close");
        db.sync().unwrap();
        db.close().unwrap();
    }
    let db = open_tiny(dir.path());
    check_reader(&db, &model, "after close and reopen");
    // Dropping every handle without `close` releases the directory too.
    let clone = db.clone();
    clone.put("via clone", "1").unwrap();
    model.insert(b"via clone".to_vec(), b"1".to_vec());
    drop(db);
    assert_eq!(clone.get("via clone").unwrap().as_deref(), Some(&b"1"[..]));
    drop(clone);
    let db = Db::open(dir.path()).expect("reopen after dropping every handle");
    check_reader(&db, &model, "after drop and reopen with default options");
    db.close().unwrap();
}

#[test]
fn iterators_and_snapshots_outliving_every_handle_stay_correct_or_fail_cleanly() {
    // The contract does not say what reading through an iterator or a snapshot whose
    // database handles are all gone yields, but it must be the right data or an error,
    // never a panic or a crash (the files it reads may be closed or deleted by then).
    let dir = tempfile::tempdir().unwrap();
    let db = open_tiny(dir.path());
    let mut model = Model::new();
    for i in 0..300u32 {
        let key = format!("k{:03}", i % 150).into_bytes();
        let value = format!("v{i}").into_bytes();
        db.put(&key, &value).unwrap();
        model.insert(key, value);
    }
    db.flush().unwrap();
    let iter = db.iter();
    let snapshot = db.snapshot();
    db.compact().unwrap();
    drop(db);
    let want = model_all(&model);
    let mut got = Vec::new();
    for item in iter {
        match item {
            Ok((k, v)) => got.push((k.to_vec(), v.to_vec())),
            Err(_) => break,
        }
    }
    assert!(
        want.starts_with(&got),
        "an iterator outliving its database yielded wrong data: {}",
        common::first_difference(&got, &want).unwrap_or_default()
    );
    // An error is allowed here; a wrong value is not.
    if let Ok(v) = snapshot.get("k007") {
        assert_eq!(v.as_deref(), model.get(&b"k007"[..]).map(Vec::as_slice));
    }
}

#[test]
fn public_types_have_the_promised_traits() {
    fn db<T: Clone + Send + Sync + 'static>() {}
    fn snapshot<T: Send + Sync>() {}
    fn iter<T: Iterator<Item = Result<(Bytes, Bytes)>> + DoubleEndedIterator + Send>() {}
    fn error<T: std::error::Error + Send + Sync + 'static>() {}
    fn options<T: Default + Clone + std::fmt::Debug>() {}
    fn batch<T: Default>() {}
    db::<Db>();
    snapshot::<Snapshot>();
    iter::<Iter>();
    error::<Error>();
    options::<Options>();
    batch::<WriteBatch>();
    let result: Result<()> = Ok(());
    let _: std::result::Result<(), Error> = result;

    let options = Options::default()
        .write_buffer_size(4096)
        .sync(true)
        .block_size(128);
    let copy = options.clone();
    assert!(!format!("{copy:?}").is_empty());

    // A clone is a handle to the same database, usable from another thread.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), options).unwrap();
    let other = db.clone();
    std::thread::spawn(move || other.put("from thread", "yes").unwrap())
        .join()
        .unwrap();
    assert_eq!(db.get("from thread").unwrap().as_deref(), Some(&b"yes"[..]));
    let snapshot = db.snapshot();
    let iter = db.iter();
    let handle = std::thread::spawn(move || {
        let n = iter.count();
        (snapshot.get("from thread").unwrap().is_some(), n)
    });
    assert_eq!(handle.join().unwrap(), (true, 1));
    db.close().unwrap();
}

#[test]
fn a_second_open_in_the_same_process_fails_with_a_readable_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("k", "v").unwrap();
    let err = match Db::open(dir.path()) {
        Ok(_) => panic!("a second open of an open directory succeeded"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(!text.is_empty(), "Display of {err:?} is empty");
    assert_ne!(text, format!("{err:?}"), "Display is the Debug form");
    let boxed: Box<dyn std::error::Error + Send + Sync + 'static> = Box::new(err);
    assert!(!boxed.to_string().is_empty());
    assert!(Db::open_with(dir.path(), common::tiny_options()).is_err());
    // The first handle is unaffected by the refused open.
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    db.close().unwrap();
    let db = Db::open(dir.path()).expect("open after close");
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    db.close().unwrap();
}

const LOCK_CHILD_ENV: &str = "FLOE_LOCK_CHILD_DIR";

/// The child half of [`a_second_open_from_another_process_fails`]: it runs only when the
/// parent re-executes this binary with the database path in `FLOE_LOCK_CHILD_DIR`, and
/// reports whether its open succeeded; in a normal run it has nothing to do.
#[test]
fn lock_child_process() {
    let Ok(dir) = std::env::var(LOCK_CHILD_ENV) else {
        return;
    };
    match Db::open(&dir) {
        Ok(db) => {
            println!("child-open-ok");
            db.close().unwrap();
        }
        Err(e) => println!("child-open-refused: {e}"),
    }
}

/// Runs [`lock_child_process`] in a new process on `dir` and returns its stdout.
fn open_in_child(dir: &std::path::Path) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LOCK_CHILD_ENV, dir)
        .output()
        .expect("re-execute the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the child process failed: status {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn a_second_open_from_another_process_fails() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("k", "v").unwrap();
    let stdout = open_in_child(dir.path());
    assert!(
        stdout.contains("child-open-refused") && !stdout.contains("child-open-ok"),
        "another process could open a directory this process holds:\n{stdout}"
    );
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    db.close().unwrap();
    // Once released, another process may open it.
    let stdout = open_in_child(dir.path());
    assert!(
        stdout.contains("child-open-ok"),
        "after close another process could not open the directory:\n{stdout}"
    );
}
