//! criterion micro-benchmarks of `Readable::multi_get` against one `get` per key: 1,000
//! keys (one in ten absent), drawn from the whole database or from one stretch of it,
//! over a database whose data lies in the last level, a level-0 table and the memtable.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use floe::{Db, Options, Readable, WriteBatch};
use floe_bench::keys::{random_keys, random_value};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Keys compacted into the last level.
const COMPACTED: usize = 200_000;
/// Keys in a level-0 table above them, and keys left in the memtable.
const FLUSHED: usize = 20_000;
const UNFLUSHED: usize = 5_000;
/// Keys per lookup, and the number of different lookups the benchmarks cycle through.
const BATCH: usize = 1_000;
const BATCHES: usize = 64;

fn load(db: &Db, keys: &[Vec<u8>], value: &[u8]) {
    for chunk in keys.chunks(1_000) {
        let mut batch = WriteBatch::new();
        for key in chunk {
            batch.put(key, value);
        }
        db.write(batch).unwrap();
    }
}

fn multi_get(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .write_buffer_size(8 << 20)
        .target_file_size(2 << 20);
    let db = Db::open_with(dir.path(), options).unwrap();
    let keys = random_keys(COMPACTED + FLUSHED + UNFLUSHED, 16, 11);
    let value = random_value(100, 11);
    let (compacted, rest) = keys.split_at(COMPACTED);
    let (flushed, unflushed) = rest.split_at(FLUSHED);
    load(&db, compacted, &value);
    db.compact().unwrap();
    load(&db, flushed, &value);
    db.flush().unwrap();
    load(&db, unflushed, &value);
    let tables: Vec<usize> = db.stats().levels.iter().map(|l| l.tables).collect();
    eprintln!("readable: tables per level {tables:?}");

    // One in ten probes is absent (a key of the same shape that was never written).
    let absent = random_keys(COMPACTED + FLUSHED + UNFLUSHED + BATCH * BATCHES, 16, 11);
    let absent = &absent[keys.len()..];
    let mut rng = SmallRng::seed_from_u64(11);
    let mut batch_of = |pick: &mut dyn FnMut(&mut SmallRng) -> Vec<u8>| -> Vec<Vec<u8>> {
        (0..BATCH)
            .map(|_| {
                if rng.random_range(0..10) == 0 {
                    absent[rng.random_range(0..absent.len())].clone()
                } else {
                    pick(&mut rng)
                }
            })
            .collect()
    };
    // Random keys of the whole database, and keys of one stretch of 2,000 neighbours in
    // key order (in random order), where probes share tables and blocks.
    let random: Vec<Vec<Vec<u8>>> = (0..BATCHES)
        .map(|_| batch_of(&mut |rng| keys[rng.random_range(0..keys.len())].clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    let clustered: Vec<Vec<Vec<u8>>> = (0..BATCHES)
        .map(|_| {
            let start = (sorted.len() - 2_000) * 7 / 13;
            batch_of(&mut |rng| sorted[start + rng.random_range(0..2_000)].clone())
        })
        .collect();

    for (name, batches) in [("random", &random), ("clustered", &clustered)] {
        let mut group = c.benchmark_group(format!("readable/{name}"));
        group.throughput(Throughput::Elements(BATCH as u64));
        let mut i = 0;
        group.bench_function("get-1000", |b| {
            b.iter(|| {
                i = (i + 1) % BATCHES;
                for key in &batches[i] {
                    black_box(db.get(key).unwrap());
                }
            });
        });
        group.bench_function("multi_get-1000", |b| {
            b.iter(|| {
                i = (i + 1) % BATCHES;
                black_box(db.multi_get(&batches[i]).unwrap())
            });
        });
        group.finish();
    }
}

// What `criterion_group!` and `criterion_main!` expand to, written out so that no
// undocumented public function is generated.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    multi_get(&mut criterion);
    criterion.final_summary();
}
