//! criterion micro-benchmarks of the memtable: insert and get against a raw `SkipMap`
//! (the floor of floe's overhead), and a full scan with floe's node cursor against
//! re-seeking from the last key on every step (the alternative design for `EntryIter`).

use std::hint::black_box;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput};
use crossbeam_skiplist::SkipMap;
use floe_bench::keys::{random_keys, random_value};
use floe_memtable::Memtable;

const INSERTS: usize = 10_000;
const PREFILLED: usize = 100_000;

fn keys(count: usize) -> Vec<Bytes> {
    random_keys(count, 16, 7)
        .into_iter()
        .map(Bytes::from)
        .collect()
}

fn filled_memtable(keys: &[Bytes], value: &Bytes) -> Arc<Memtable> {
    let memtable = Arc::new(Memtable::new(usize::MAX / 2));
    let guard = memtable.enter().unwrap();
    for (i, key) in keys.iter().enumerate() {
        guard.put(key.clone(), i as u64 + 1, value.clone()).unwrap();
    }
    drop(guard);
    memtable
}

fn insert(c: &mut Criterion) {
    let keys = keys(INSERTS);
    let value = Bytes::from(random_value(100, 7));
    let mut group = c.benchmark_group("memtable/insert");
    group.throughput(Throughput::Elements(INSERTS as u64));
    group.bench_function("floe", |b| {
        b.iter_batched(
            || Memtable::new(usize::MAX / 2),
            |memtable| {
                for (i, key) in keys.iter().enumerate() {
                    let guard = memtable.enter().unwrap();
                    guard.put(key.clone(), i as u64 + 1, value.clone()).unwrap();
                }
                memtable
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("skipmap", |b| {
        b.iter_batched(
            SkipMap::<Bytes, Bytes>::new,
            |map| {
                for key in &keys {
                    map.insert(key.clone(), value.clone());
                }
                map
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn get(c: &mut Criterion) {
    let keys = keys(PREFILLED);
    let value = Bytes::from(random_value(100, 7));
    let memtable = filled_memtable(&keys, &value);
    let map = SkipMap::new();
    for key in &keys {
        map.insert(key.clone(), value.clone());
    }
    let probes: Vec<Bytes> = keys.iter().step_by(PREFILLED / 1000).cloned().collect();
    let mut group = c.benchmark_group("memtable/get");
    group.throughput(Throughput::Elements(probes.len() as u64));
    group.bench_function("floe", |b| {
        b.iter(|| {
            for key in &probes {
                black_box(memtable.get(key, u64::MAX));
            }
        });
    });
    group.bench_function("skipmap", |b| {
        b.iter(|| {
            for key in &probes {
                black_box(map.get(key.as_ref()).map(|e| e.value().clone()));
            }
        });
    });
    group.finish();
}

fn scan(c: &mut Criterion) {
    let keys = keys(PREFILLED);
    let value = Bytes::from(random_value(100, 7));
    let memtable = filled_memtable(&keys, &value);
    let map = SkipMap::new();
    for key in &keys {
        map.insert(key.clone(), value.clone());
    }
    let mut group = c.benchmark_group("memtable/scan");
    group.throughput(Throughput::Elements(PREFILLED as u64));
    group.bench_function("floe-entries-cursor", |b| {
        b.iter(|| memtable.entries(Bound::Unbounded, Bound::Unbounded).count());
    });
    group.bench_function("floe-visible-cursor", |b| {
        b.iter(|| {
            memtable
                .range(Bound::Unbounded, Bound::Unbounded, u64::MAX)
                .count()
        });
    });
    group.bench_function("skipmap-cursor", |b| {
        b.iter(|| {
            let mut count = 0usize;
            let mut entry = map.front();
            while let Some(current) = entry {
                black_box((current.key().clone(), current.value().clone()));
                count += 1;
                entry = current.next();
            }
            count
        });
    });
    group.bench_function("skipmap-reseek", |b| {
        b.iter(|| {
            let mut count = 0usize;
            let mut last: Option<Bytes> = None;
            loop {
                let bound = match &last {
                    Some(key) => Bound::Excluded(key.as_ref()),
                    None => Bound::Unbounded,
                };
                let Some(entry) = map.lower_bound(bound) else {
                    break;
                };
                black_box(entry.value().clone());
                last = Some(entry.key().clone());
                count += 1;
            }
            count
        });
    });
    group.finish();
}

// What `criterion_group!` and `criterion_main!` expand to, written out so that no
// undocumented public function is generated. Short runs: the numbers are indicative, the
// point is to compare floe with the raw skiplist and the two cursor designs.
fn main() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    insert(&mut criterion);
    get(&mut criterion);
    scan(&mut criterion);
    criterion.final_summary();
}
