//! Round trips against a `BTreeMap` model: whatever a builder writes, the reader returns
//! exactly, through lookups at every snapshot, bounded scans from both ends, and mixed
//! front and back iteration, at every block size from 64 bytes to 64 KiB; range
//! tombstones come back exactly too, and count in the meta's key and sequence ranges.

mod common;

use std::ops::Bound;

use bytes::Bytes;
use common::{
    Model, build, build_with, expected_meta, fragments, model_get, model_range, scan, scan_back,
};
use floe_core::fs::{FileSystem, StdFs};
use floe_core::range_del::{Fragment, Fragments, RangeTombstone};
use floe_core::{InternalKey, MAX_SEQNO, SeqNo, ValueKind};
use floe_sstable::{BlockCache, Compression, Error, Table, TableBuilder, TableIter, TableOptions};
use floe_testkit::seed;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const BLOCK_SIZES: [usize; 17] = [
    64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 65, 100, 333, 1000, 4097, 10007,
];

/// The block sizes Miri, which interprets every read, checks: the smallest, an odd one,
/// and one that holds the whole table.
const MIRI_BLOCK_SIZES: [usize; 3] = [64, 333, 4096];

/// Random lookups and random bounded scans per table that [`check`] makes; fewer under
/// Miri.
const RANDOM_GETS: usize = if cfg!(miri) { 10 } else { 50 };
const RANDOM_SCANS: usize = if cfg!(miri) { 4 } else { 30 };

fn random_user_key(rng: &mut SmallRng) -> Vec<u8> {
    // A small alphabet with the extreme bytes makes shared prefixes, 0x00 and 0xff common.
    const ALPHABET: [u8; 6] = [0x00, 0x01, b'a', b'b', 0xfe, 0xff];
    let len = rng.random_range(0..12);
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
        .collect()
}

fn random_model(rng: &mut SmallRng, user_keys: usize, max_versions: usize) -> Model {
    let mut model = Model::new();
    model.insert(
        InternalKey::new(Bytes::new(), 3, ValueKind::Put),
        Bytes::from_static(b"empty key"),
    );
    while model.len() < user_keys {
        let user_key = Bytes::from(random_user_key(rng));
        for _ in 0..rng.random_range(1..=max_versions) {
            let seqno = if rng.random_bool(0.05) {
                MAX_SEQNO
            } else {
                rng.random_range(0..1000)
            };
            let kind = if rng.random_bool(0.2) {
                ValueKind::Delete
            } else {
                ValueKind::Put
            };
            let value_len = if rng.random_bool(0.02) {
                rng.random_range(0..3000)
            } else {
                rng.random_range(0..40)
            };
            let value: Vec<u8> = (0..value_len).map(|_| rng.random()).collect();
            model.insert(
                InternalKey::new(user_key.clone(), seqno, kind),
                Bytes::from(value),
            );
        }
    }
    model
}

fn random_bound(rng: &mut SmallRng, model: &Model) -> Bound<Vec<u8>> {
    let key = if rng.random_bool(0.5) && !model.is_empty() {
        let i = rng.random_range(0..model.len());
        model
            .keys()
            .nth(i)
            .map(|k| k.user_key.to_vec())
            .unwrap_or_default()
    } else {
        random_user_key(rng)
    };
    match rng.random_range(0..3) {
        0 => Bound::Unbounded,
        1 => Bound::Included(key),
        _ => Bound::Excluded(key),
    }
}

fn as_ref(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(key) => Bound::Included(&key[..]),
        Bound::Excluded(key) => Bound::Excluded(&key[..]),
    }
}

/// Takes entries from both ends at random and returns them in forward order.
fn mixed_scan(mut iter: TableIter, rng: &mut SmallRng) -> Vec<(InternalKey, Bytes)> {
    let (mut front, mut back) = (Vec::new(), Vec::new());
    loop {
        let next = if rng.random_bool(0.5) {
            iter.next().map(|e| front.push(e.unwrap()))
        } else {
            iter.next_back().map(|e| back.push(e.unwrap()))
        };
        if next.is_none() {
            // Once one end is exhausted, both are.
            assert!(iter.next().is_none() && iter.next_back().is_none());
            break;
        }
    }
    back.reverse();
    front.extend(back);
    front
}

/// Checks every read path of the table built from `model` against the model.
fn check(model: &Model, bytes: Bytes, rng: &mut SmallRng) {
    check_with(model, &Fragments::default(), bytes, rng);
}

/// Checks every read path of the table built from `model` and `tombstones` against them:
/// the tombstones come back exactly, and the point reads return the points alone.
fn check_with(model: &Model, tombstones: &Fragments, bytes: Bytes, rng: &mut SmallRng) {
    let file_size = bytes.len() as u64;
    let table = Table::open(bytes).unwrap();
    let meta = table.meta();
    assert_eq!(meta, &expected_meta(model, tombstones, file_size));
    if tombstones.is_empty() {
        assert_eq!(Some(&meta.smallest), model.keys().next());
        assert_eq!(Some(&meta.largest), model.keys().next_back());
        assert_eq!(Some(meta.min_seqno), model.keys().map(|k| k.seqno).min());
        assert_eq!(Some(meta.max_seqno), model.keys().map(|k| k.seqno).max());
    }
    assert_eq!(table.range_tombstones(), tombstones);
    assert_eq!(
        meta.range_tombstones,
        tombstones.tombstones().count() as u64
    );

    let all = model_range(model, Bound::Unbounded, Bound::Unbounded);
    assert_eq!(
        scan(&table, Bound::Unbounded, Bound::Unbounded).unwrap(),
        all
    );
    assert_eq!(
        scan_back(&table, Bound::Unbounded, Bound::Unbounded).unwrap(),
        all
    );

    for key in model.keys() {
        assert!(table.may_contain(&key.user_key));
        for snapshot in [
            MAX_SEQNO,
            u64::MAX,
            key.seqno,
            key.seqno.saturating_sub(1),
            key.seqno + 1,
            0,
        ] {
            assert_eq!(
                table.get(&key.user_key, snapshot).unwrap(),
                model_get(model, &key.user_key, snapshot.min(MAX_SEQNO)),
                "get {key:?} at {snapshot}"
            );
        }
    }
    for _ in 0..RANDOM_GETS {
        let user_key = random_user_key(rng);
        let snapshot: SeqNo = rng.random_range(0..1100);
        assert_eq!(
            table.get(&user_key, snapshot).unwrap(),
            model_get(model, &user_key, snapshot)
        );
    }
    for _ in 0..RANDOM_SCANS {
        let (lower, upper) = (random_bound(rng, model), random_bound(rng, model));
        let (lower, upper) = (as_ref(&lower), as_ref(&upper));
        let expected = model_range(model, lower, upper);
        assert_eq!(
            scan(&table, lower, upper).unwrap(),
            expected,
            "{lower:?}..{upper:?}"
        );
        assert_eq!(
            scan_back(&table, lower, upper).unwrap(),
            expected,
            "{lower:?}..{upper:?} back"
        );
        assert_eq!(
            mixed_scan(table.iter(lower, upper), rng),
            expected,
            "{lower:?}..{upper:?} mixed"
        );
    }
}

#[test]
fn random_tables_at_every_block_size() {
    let seed = seed("random_tables_at_every_block_size");
    let mut rng = SmallRng::seed_from_u64(seed);
    // Under Miri, which interprets every read, smaller tables at fewer block sizes; the
    // 64-byte blocks still hold few entries each.
    let (block_sizes, entries, min_blocks) = if cfg!(miri) {
        (&MIRI_BLOCK_SIZES[..], 20, 4)
    } else {
        (&BLOCK_SIZES[..], 150, 50)
    };
    for &block_size in block_sizes {
        let model = random_model(&mut rng, entries, 4);
        let options = TableOptions::default().block_size(block_size);
        let (bytes, meta) = build(&model, options);
        if block_size == 64 {
            let table = Table::open(bytes.clone()).unwrap();
            assert!(
                table.data_blocks() > min_blocks,
                "64-byte blocks hold few entries each"
            );
        }
        assert_eq!(meta.entries, model.len() as u64);
        check(&model, bytes, &mut rng);
    }
}

#[test]
fn random_tables_with_every_compression() {
    // Random values stay raw; text-like values with repeats compress: tables mix both
    // kinds of block, read without a cache and through one.
    let seed = seed("random_tables_with_every_compression");
    let mut rng = SmallRng::seed_from_u64(seed);
    let entries = if cfg!(miri) { 20 } else { 150 };
    for compression in [
        Compression::None,
        Compression::Lz4,
        Compression::Zstd(1),
        Compression::Zstd(-5),
    ] {
        for block_size in [64, 512, 4096] {
            let mut model = random_model(&mut rng, entries, 3);
            for (i, value) in model.values_mut().enumerate() {
                if i % 2 == 0 {
                    *value = Bytes::from(format!("{i}: {}", "repeated text ".repeat(i % 9)));
                }
            }
            let options = TableOptions::default()
                .block_size(block_size)
                .compression(compression);
            let (bytes, meta) = build(&model, options);
            assert_eq!(meta.entries, model.len() as u64, "{compression:?}");
            let cache = BlockCache::new(1 << 20);
            let mapped = Table::open_mapped(bytes.clone(), &cache).unwrap();
            for key in model.keys() {
                assert_eq!(
                    mapped.get(&key.user_key, key.seqno).unwrap(),
                    model_get(&model, &key.user_key, key.seqno),
                    "{compression:?}"
                );
            }
            check(&model, bytes, &mut rng);
        }
    }
}

#[test]
fn without_a_bloom_filter() {
    let mut rng = SmallRng::seed_from_u64(seed("without_a_bloom_filter"));
    let model = random_model(&mut rng, if cfg!(miri) { 20 } else { 100 }, 3);
    let (bytes, _) = build(
        &model,
        TableOptions::default()
            .bloom_bits_per_key(0)
            .block_size(256),
    );
    check(&model, bytes, &mut rng);
}

#[test]
fn keys_of_64_kib() {
    let mut rng = SmallRng::seed_from_u64(seed("keys_of_64_kib"));
    let mut model = Model::new();
    // Under Miri, which interprets every hash and copy of these keys, two pairs of 1 KiB
    // keys instead of three pairs of 64 KiB ones: still longer than every block, with
    // multi-byte length varints, sharing all but their last byte within a pair.
    let (keys, key_len, block_sizes) = if cfg!(miri) {
        (4u8, 1 << 10, &[64, 512][..])
    } else {
        (6u8, 64 << 10, &[64, 4096, 65536][..])
    };
    for i in 0..keys {
        let mut key = vec![i / 2; key_len];
        key[key_len - 1] = i;
        model.insert(
            InternalKey::new(key.clone(), 9, ValueKind::Put),
            Bytes::from(vec![i; 10]),
        );
        model.insert(InternalKey::new(key, 4, ValueKind::Delete), Bytes::new());
    }
    model.insert(
        InternalKey::new(vec![0xff; key_len], 1, ValueKind::Put),
        Bytes::from_static(b"last"),
    );
    for &block_size in block_sizes {
        let (bytes, _) = build(&model, TableOptions::default().block_size(block_size));
        check(&model, bytes, &mut rng);
    }
}

#[test]
fn many_versions_of_one_key() {
    let mut rng = SmallRng::seed_from_u64(seed("many_versions_of_one_key"));
    let mut model = Model::new();
    // Fewer versions under Miri, which interprets every lookup; 40 still span a dozen
    // 64-byte blocks.
    let versions: u64 = if cfg!(miri) { 40 } else { 2000 };
    for seqno in (0..versions).map(|s| s * 3) {
        let kind = if seqno % 7 == 0 {
            ValueKind::Delete
        } else {
            ValueKind::Put
        };
        model.insert(
            InternalKey::new("k", seqno, kind),
            Bytes::from(seqno.to_le_bytes().to_vec()),
        );
    }
    model.insert(
        InternalKey::new("j", 5, ValueKind::Put),
        Bytes::from_static(b"before"),
    );
    model.insert(
        InternalKey::new("l", 5, ValueKind::Put),
        Bytes::from_static(b"after"),
    );
    for block_size in [64, 4096] {
        let (bytes, _) = build(&model, TableOptions::default().block_size(block_size));
        let table = Table::open(bytes.clone()).unwrap();
        for snapshot in 0..versions * 3 {
            assert_eq!(
                table.get(b"k", snapshot).unwrap(),
                model_get(&model, b"k", snapshot)
            );
        }
        check(&model, bytes, &mut rng);
    }
}

#[test]
fn values_are_zero_copy_slices_of_the_file() {
    let mut model = Model::new();
    model.insert(
        InternalKey::new("key", 1, ValueKind::Put),
        Bytes::from(vec![7u8; 100]),
    );
    let (bytes, _) = build(&model, TableOptions::default());
    let file_range = bytes.as_ptr_range();
    let table = Table::open(bytes).unwrap();
    let (_, value) = table.get(b"key", MAX_SEQNO).unwrap().unwrap();
    assert!(file_range.contains(&value.as_ptr()));
    let (_, value) = table
        .iter(Bound::Unbounded, Bound::Unbounded)
        .next()
        .unwrap()
        .unwrap();
    assert!(file_range.contains(&value.as_ptr()));
}

#[test]
fn builder_refuses_bad_input() {
    let file = common::MemFile::default();
    let mut builder = TableBuilder::new(Box::new(file.clone()), TableOptions::default());
    builder
        .add(&InternalKey::new("b", 5, ValueKind::Put), b"v")
        .unwrap();
    for bad in [
        InternalKey::new("b", 5, ValueKind::Put),
        InternalKey::new("b", 6, ValueKind::Put),
        InternalKey::new("a", 1, ValueKind::Put),
        InternalKey::new("c", MAX_SEQNO + 1, ValueKind::Put),
    ] {
        assert!(
            matches!(builder.add(&bad, b"v"), Err(Error::InvalidArgument { .. })),
            "{bad:?}"
        );
    }
    builder
        .add(&InternalKey::new("b", 5, ValueKind::Delete), b"")
        .unwrap();
    builder
        .add(&InternalKey::new("c", 1, ValueKind::Put), b"v")
        .unwrap();
    assert!(builder.estimated_size() > 0);
    assert_eq!(builder.finish().unwrap().entries, 3);

    let empty = TableBuilder::new(
        Box::new(common::MemFile::default()),
        TableOptions::default(),
    );
    assert!(matches!(empty.finish(), Err(Error::InvalidArgument { .. })));
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot run `mmap` of a file (memmap2)")]
fn written_through_the_file_system_and_read_through_a_mapping() {
    let mut rng = SmallRng::seed_from_u64(seed("written_through_the_file_system"));
    let model = random_model(&mut rng, 500, 3);
    let dir = tempfile::tempdir().unwrap();
    let fs = StdFs;
    let tmp = dir.path().join("000001.sst.tmp");
    let path = dir.path().join("000001.sst");
    let mut builder = TableBuilder::new(
        fs.create(&tmp).unwrap(),
        TableOptions::default().block_size(512),
    );
    for (key, value) in &model {
        builder.add(key, value).unwrap();
    }
    let meta = builder.finish().unwrap();
    fs.rename(&tmp, &path).unwrap();
    fs.sync_dir(dir.path()).unwrap();
    assert_eq!(fs.file_size(&path).unwrap(), meta.file_size);
    let table = Table::open(fs.map(&path).unwrap()).unwrap();
    assert_eq!(table.meta(), &meta);
    check(&model, fs.map(&path).unwrap(), &mut rng);
}

#[test]
fn tables_and_iterators_cross_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    fn assert_send_static<T: Send + 'static>() {}
    assert_send_sync::<Table>();
    assert_send_static::<TableIter>();
    assert_send_sync::<Error>();

    // Fewer keys under Miri, which interprets every thread; 100 still fill many blocks.
    let count: u32 = if cfg!(miri) { 100 } else { 1000 };
    let mut model = Model::new();
    for i in 0..count {
        model.insert(
            InternalKey::new(i.to_be_bytes().to_vec(), 1, ValueKind::Put),
            Bytes::from(i.to_le_bytes().to_vec()),
        );
    }
    let (bytes, _) = build(&model, TableOptions::default().block_size(128));
    let table = Table::open(bytes).unwrap();
    // Debug output describes the table without dumping its bytes.
    assert!(format!("{table:?}").len() < 1000);
    let iter = table.iter(Bound::Unbounded, Bound::Unbounded);
    std::thread::scope(|scope| {
        for t in 0..4u32 {
            let table = table.clone();
            scope.spawn(move || {
                for i in (t..count).step_by(4) {
                    let (_, value) = table.get(&i.to_be_bytes(), MAX_SEQNO).unwrap().unwrap();
                    assert_eq!(&value[..], &i.to_le_bytes());
                }
            });
        }
    });
    drop(table);
    let scanned = std::thread::spawn(move || iter.map(Result::unwrap).count())
        .join()
        .unwrap();
    assert_eq!(scanned, count as usize);
}

/// A file whose writes or syncs fail, to prove the builder reports I/O errors.
#[derive(Debug)]
struct FailingFile {
    fail_writes: bool,
}

impl std::io::Write for FailingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.fail_writes {
            return Err(std::io::Error::other("injected write failure"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl floe_core::fs::WritableFile for FailingFile {
    fn sync_data(&mut self) -> std::io::Result<()> {
        Err(std::io::Error::other("injected sync failure"))
    }

    fn sync_all(&mut self) -> std::io::Result<()> {
        Err(std::io::Error::other("injected sync failure"))
    }
}

#[test]
fn io_failures_are_reported_and_stick() {
    // A failed write surfaces as `Io` from `add` (once the write buffer fills) or from
    // `finish`; after it, the builder refuses further work.
    let options = TableOptions::default().block_size(64);
    let mut builder = TableBuilder::new(Box::new(FailingFile { fail_writes: true }), options);
    let value = vec![0u8; 1000];
    let mut failed = None;
    for i in 0..1000u32 {
        if let Err(err) = builder.add(
            &InternalKey::new(i.to_be_bytes().to_vec(), 1, ValueKind::Put),
            &value,
        ) {
            failed = Some(err);
            break;
        }
    }
    assert!(matches!(failed, Some(Error::Io(_))), "{failed:?}");
    let again = builder.add(&InternalKey::new("zzzz", 1, ValueKind::Put), b"v");
    assert!(again.is_err());
    assert!(builder.finish().is_err());

    // A failed sync fails `finish`.
    let mut builder = TableBuilder::new(
        Box::new(FailingFile { fail_writes: false }),
        TableOptions::default(),
    );
    builder
        .add(&InternalKey::new("k", 1, ValueKind::Put), b"v")
        .unwrap();
    assert!(matches!(builder.finish(), Err(Error::Io(_))));
}

/// Random range tombstones over the key alphabet of [`random_user_key`], overlapping a lot.
fn random_tombstones(rng: &mut SmallRng, count: usize) -> Fragments {
    let tombstones: Vec<RangeTombstone> = (0..count)
        .map(|_| {
            let (a, b) = (random_user_key(rng), random_user_key(rng));
            let (start, end) = if a <= b { (a, b) } else { (b, a) };
            let seqno = if rng.random_bool(0.05) {
                MAX_SEQNO
            } else {
                rng.random_range(0..1000)
            };
            RangeTombstone::new(start, Some(Bytes::from(end)), seqno)
        })
        .collect();
    Fragments::new(tombstones)
}

#[test]
fn range_tombstones_round_trip_with_points_alone_and_without() {
    let mut rng = SmallRng::seed_from_u64(seed("range_tombstones_round_trip"));
    let block_sizes = if cfg!(miri) {
        &MIRI_BLOCK_SIZES[..]
    } else {
        &BLOCK_SIZES[..]
    };
    let entries = if cfg!(miri) { 20 } else { 150 };
    for &block_size in block_sizes {
        let options = TableOptions::default().block_size(block_size);
        let model = random_model(&mut rng, entries, 3);
        let count = rng.random_range(1..40);
        let mut tombstones = random_tombstones(&mut rng, count);
        while tombstones.is_empty() {
            tombstones = random_tombstones(&mut rng, 5);
        }
        // Points and tombstones.
        let (bytes, meta) = build_with(&model, &tombstones, options.clone());
        assert_eq!(meta, expected_meta(&model, &tombstones, bytes.len() as u64));
        check_with(&model, &tombstones, bytes, &mut rng);
        // Tombstones alone: no data block, and every point read finds nothing.
        let (bytes, meta) = build_with(&Model::new(), &tombstones, options.clone());
        assert_eq!(meta.entries, 0);
        let table = Table::open(bytes.clone()).unwrap();
        assert_eq!(table.data_blocks(), 0);
        check_with(&Model::new(), &tombstones, bytes, &mut rng);
        // Points alone: a version-2 table without a range tombstone block.
        let (bytes, meta) = build_with(&model, &Fragments::default(), options);
        assert_eq!(meta.range_tombstones, 0);
        check_with(&model, &Fragments::default(), bytes, &mut rng);
    }
}

#[test]
fn a_table_of_range_tombstones_alone_reads_as_empty() {
    let tombstones = fragments(&[(b"b", b"d", 5), (b"c", b"f", 9)]);
    for bloom_bits in [0, 10] {
        let options = TableOptions::default().bloom_bits_per_key(bloom_bits);
        let (bytes, meta) = build_with(&Model::new(), &tombstones, options);
        assert_eq!(meta.entries, 0);
        assert_eq!(meta.range_tombstones, 4);
        assert_eq!(
            (meta.smallest.clone(), meta.largest.clone()),
            (
                InternalKey::new("b", MAX_SEQNO, ValueKind::Delete),
                InternalKey::new("f", 0, ValueKind::Delete)
            )
        );
        assert_eq!((meta.min_seqno, meta.max_seqno), (5, 9));
        let table = Table::open(bytes).unwrap();
        assert_eq!(table.data_blocks(), 0);
        assert_eq!(table.range_tombstones(), &tombstones);
        assert_eq!(table.range_tombstones().max_covering(b"c", 100), Some(9));
        for key in [&b""[..], b"b", b"c", b"e", b"zz"] {
            assert_eq!(table.get(key, MAX_SEQNO).unwrap(), None);
        }
        for (lower, upper) in [
            (Bound::Unbounded, Bound::Unbounded),
            (Bound::Included(&b"c"[..]), Bound::Excluded(&b"e"[..])),
        ] {
            assert!(scan(&table, lower, upper).unwrap().is_empty());
            assert!(scan_back(&table, lower, upper).unwrap().is_empty());
            let mut iter = table.iter(lower, upper);
            assert!(iter.next_back().is_none() && iter.next().is_none());
        }
    }
}

#[test]
fn meta_covers_tombstones_before_after_and_around_the_points() {
    let mut model = Model::new();
    model.insert(InternalKey::new("m", 50, ValueKind::Put), Bytes::from("v"));
    model.insert(InternalKey::new("p", 60, ValueKind::Delete), Bytes::new());
    let key =
        |k: &str, seqno, kind| InternalKey::new(Bytes::copy_from_slice(k.as_bytes()), seqno, kind);
    let points = (
        key("m", 50, ValueKind::Put),
        key("p", 60, ValueKind::Delete),
    );
    let cases: [(Fragments, InternalKey, InternalKey, SeqNo, SeqNo); 7] = [
        // Before the points: the start is the smallest key.
        (
            fragments(&[(b"a", b"c", 70)]),
            key("a", MAX_SEQNO, ValueKind::Delete),
            points.1.clone(),
            50,
            70,
        ),
        // After them: the end is the largest (inclusive when it ends in a zero byte).
        (
            fragments(&[(b"x", b"z\0", 10)]),
            points.0.clone(),
            key("z", 0, ValueKind::Delete),
            10,
            60,
        ),
        // Around them.
        (
            fragments(&[(b"a", b"b", 3), (b"y", b"z", MAX_SEQNO)]),
            key("a", MAX_SEQNO, ValueKind::Delete),
            key("z", 0, ValueKind::Delete),
            3,
            MAX_SEQNO,
        ),
        // Inside them: the points decide both ends and the seqnos may widen.
        (
            fragments(&[(b"n", b"o", 55), (b"n", b"o", 1)]),
            points.0.clone(),
            points.1.clone(),
            1,
            60,
        ),
        // Starting at the first point's key: every version of it sorts after the start.
        (
            fragments(&[(b"m", b"n", 20)]),
            key("m", MAX_SEQNO, ValueKind::Delete),
            points.1.clone(),
            20,
            60,
        ),
        // Ending just past the last point's key: (p, 0, delete) sorts after (p, 60).
        (
            fragments(&[(b"o", b"p\0", 20)]),
            points.0.clone(),
            key("p", 0, ValueKind::Delete),
            20,
            60,
        ),
        // Ending at the last point's key, exclusive: keys below `p` come arbitrarily
        // close to it, so `p` itself stands in as the inclusive bound.
        (
            fragments(&[(b"o", b"p", 20)]),
            points.0.clone(),
            key("p", 0, ValueKind::Delete),
            20,
            60,
        ),
    ];
    for (tombstones, smallest, largest, min_seqno, max_seqno) in cases {
        for block_size in [64, 4096] {
            let options = TableOptions::default().block_size(block_size);
            let (bytes, meta) = build_with(&model, &tombstones, options);
            assert_eq!(
                (
                    &meta.smallest,
                    &meta.largest,
                    meta.min_seqno,
                    meta.max_seqno
                ),
                (&smallest, &largest, min_seqno, max_seqno),
                "{tombstones:?}"
            );
            let table = Table::open(bytes).unwrap();
            assert_eq!(table.meta(), &meta);
            assert_eq!(table.range_tombstones(), &tombstones);
        }
    }
}

#[test]
fn builder_refuses_bad_range_tombstones_and_keeps_the_last_set() {
    let file = common::MemFile::default();
    let mut builder = TableBuilder::new(Box::new(file.clone()), TableOptions::default());
    let unbounded = Fragments::new([RangeTombstone::new("a", None, 3)]);
    assert!(matches!(
        builder.set_range_tombstones(unbounded),
        Err(Error::InvalidArgument { .. })
    ));
    let too_new = Fragments::from_fragments(vec![Fragment {
        start: Bytes::from_static(b"a"),
        end: Some(Bytes::from_static(b"b")),
        seqnos: vec![MAX_SEQNO + 1],
    }])
    .unwrap();
    assert!(matches!(
        builder.set_range_tombstones(too_new),
        Err(Error::InvalidArgument { .. })
    ));
    // A later set replaces an earlier one; a refused set leaves it in place.
    builder
        .set_range_tombstones(fragments(&[(b"a", b"b", 1)]))
        .unwrap();
    let kept = fragments(&[(b"c", b"d", 2)]);
    builder.set_range_tombstones(kept.clone()).unwrap();
    assert!(
        builder
            .set_range_tombstones(Fragments::new([RangeTombstone::new("e", None, 3)]))
            .is_err()
    );
    let meta = builder.finish().unwrap();
    assert_eq!((meta.entries, meta.range_tombstones), (0, 1));
    let table = Table::open(Bytes::from(file.0.lock().unwrap().clone())).unwrap();
    assert_eq!(table.range_tombstones(), &kept);

    // An empty set clears them, and a table with neither points nor tombstones is refused.
    let mut builder = TableBuilder::new(
        Box::new(common::MemFile::default()),
        TableOptions::default(),
    );
    builder.set_range_tombstones(kept).unwrap();
    builder.set_range_tombstones(Fragments::default()).unwrap();
    assert!(matches!(
        builder.finish(),
        Err(Error::InvalidArgument { .. })
    ));
}
