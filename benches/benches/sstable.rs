//! criterion micro-benchmarks of the table format: building a table, point lookups that
//! hit and that miss, a seek plus ten nexts, and a full scan, over a mapped table.

use std::hint::black_box;
use std::ops::Bound;

use criterion::{BatchSize, Criterion, Throughput};
use floe_bench::keys::{random_keys, random_value};
use floe_core::fs::{FileSystem, StdFs};
use floe_core::{InternalKey, MAX_SEQNO, ValueKind};
use floe_sstable::{Table, TableBuilder, TableOptions};

const ENTRIES: usize = 100_000;

/// Sorted keys and one value, the same for every benchmark.
fn workload() -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut keys = random_keys(ENTRIES, 16, 42);
    keys.sort_unstable();
    (keys, random_value(100, 42))
}

fn write_table(fs: &StdFs, path: &std::path::Path, keys: &[Vec<u8>], value: &[u8]) -> u64 {
    let mut builder = TableBuilder::new(fs.create(path).unwrap(), TableOptions::default());
    for (i, key) in keys.iter().enumerate() {
        builder
            .add(
                &InternalKey::new(key.clone(), i as u64 + 1, ValueKind::Put),
                value,
            )
            .unwrap();
    }
    builder.finish().unwrap().file_size
}

fn sstable(c: &mut Criterion) {
    let (keys, value) = workload();
    let dir = tempfile::tempdir().unwrap();
    let fs = StdFs;
    let path = dir.path().join("000001.sst");
    let file_size = write_table(&fs, &path, &keys, &value);

    let mut group = c.benchmark_group("sstable");
    group.throughput(Throughput::Bytes(file_size));
    group.sample_size(10);
    group.bench_function("build", |b| {
        let build_path = dir.path().join("build.sst");
        b.iter(|| write_table(&fs, &build_path, &keys, &value));
    });

    let table = Table::open(fs.map(&path).unwrap()).unwrap();
    // Touch every block once so the benchmarks measure a cached, verified table.
    assert_eq!(
        table.iter(Bound::Unbounded, Bound::Unbounded).count(),
        ENTRIES
    );
    let mut lookup_order = keys.clone();
    lookup_order.sort_by_key(|key| {
        floe_bench::keys::scramble(u64::from_le_bytes(key[8..16].try_into().unwrap()))
    });

    group.throughput(Throughput::Elements(1));
    group.sample_size(50);
    let mut i = 0;
    group.bench_function("get-hit", |b| {
        b.iter(|| {
            i = (i + 1) % lookup_order.len();
            black_box(table.get(&lookup_order[i], MAX_SEQNO).unwrap())
        });
    });
    let misses: Vec<Vec<u8>> = lookup_order
        .iter()
        .map(|key| {
            let mut miss = key.clone();
            miss.push(0);
            miss
        })
        .collect();
    group.bench_function("get-miss", |b| {
        b.iter(|| {
            i = (i + 1) % misses.len();
            black_box(table.get(&misses[i], MAX_SEQNO).unwrap())
        });
    });
    group.bench_function("seek+10next", |b| {
        b.iter(|| {
            i = (i + 1) % lookup_order.len();
            for entry in table
                .iter(Bound::Included(&lookup_order[i][..]), Bound::Unbounded)
                .take(11)
            {
                black_box(entry.unwrap());
            }
        });
    });

    group.throughput(Throughput::Elements(ENTRIES as u64));
    group.sample_size(10);
    group.bench_function("scan", |b| {
        b.iter_batched(
            || table.iter(Bound::Unbounded, Bound::Unbounded),
            |iter| {
                for entry in iter {
                    black_box(entry.unwrap());
                }
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

// What `criterion_group!` and `criterion_main!` expand to, written out so that no
// undocumented public function is generated.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    sstable(&mut criterion);
    criterion.final_summary();
}
