//! The sstable workloads: build a table, then point lookups that hit and that miss, seek
//! plus ten nexts, and a full scan, all on a table whose pages are cached.

use std::hint::black_box;
use std::ops::Bound;
use std::time::{Duration, Instant};

use anyhow::Context;
use floe_core::fs::{FileSystem, StdFs};
use floe_core::{InternalKey, MAX_SEQNO, ValueKind};
use floe_sstable::{Table, TableBuilder, TableOptions};

use crate::keys::{random_keys, random_value};
use crate::report::percentiles;
use crate::{Config, Measurement};

/// Operations timed one by one for latency percentiles (the rest are timed in bulk, so
/// the clock's cost does not distort the throughput).
const LATENCY_SAMPLES: usize = 100_000;

/// Runs the sstable workloads.
///
/// # Errors
/// If the table cannot be written, mapped or read.
pub fn run(config: &Config) -> anyhow::Result<Vec<Measurement>> {
    let mut keys = random_keys(config.keys, config.key_size.max(8), config.seed);
    let lookup_order = keys.clone();
    keys.sort_unstable();
    let value = random_value(config.value_size, config.seed);

    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let fs = StdFs;
    let path = dir.path().join("000001.sst");
    let start = Instant::now();
    let mut builder = TableBuilder::new(fs.create(&path)?, TableOptions::default());
    for (i, key) in keys.iter().enumerate() {
        builder.add(
            &InternalKey::new(key.clone(), i as u64 + 1, ValueKind::Put),
            &value,
        )?;
    }
    let meta = builder.finish()?;
    let build_time = start.elapsed();
    let mut build = Measurement::new("sstable/build", "floe", 1, meta.entries, build_time);
    let mb_per_sec = meta.file_size as f64 / 1e6 / build_time.as_secs_f64().max(1e-9);
    build.bytes_per_entry = Some(meta.file_size as f64 / meta.entries.max(1) as f64);
    build
        .notes
        .push(("MB/s".into(), format!("{mb_per_sec:.1}")));
    build
        .notes
        .push(("file bytes".into(), meta.file_size.to_string()));

    let table = Table::open(fs.map(&path)?)?;
    // Read every block once so that the page cache holds the table and every block's
    // checksum is verified: the lookups below measure a cached table.
    let scanned = table.iter(Bound::Unbounded, Bound::Unbounded).count();
    anyhow::ensure!(scanned == keys.len(), "the table lost entries");

    let mut results = vec![build];
    results.push(lookups("sstable/get-hit", &table, &lookup_order, true)?);
    let misses: Vec<Vec<u8>> = lookup_order
        .iter()
        .map(|key| {
            let mut miss = key.clone();
            miss.push(0);
            miss
        })
        .collect();
    results.push(lookups("sstable/get-miss", &table, &misses, false)?);
    results.push(seeks(&table, &lookup_order)?);

    let start = Instant::now();
    let mut entries = 0u64;
    for entry in table.iter(Bound::Unbounded, Bound::Unbounded) {
        black_box(entry?);
        entries += 1;
    }
    results.push(Measurement::new(
        "sstable/scan",
        "floe",
        1,
        entries,
        start.elapsed(),
    ));
    Ok(results)
}

fn lookups(
    workload: &str,
    table: &Table,
    keys: &[Vec<u8>],
    hit: bool,
) -> anyhow::Result<Measurement> {
    let start = Instant::now();
    for key in keys {
        let found = table.get(black_box(key), MAX_SEQNO)?;
        anyhow::ensure!(found.is_some() == hit, "{workload}: wrong answer for a key");
    }
    let mut measurement = Measurement::new(workload, "floe", 1, keys.len() as u64, start.elapsed());
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES.min(keys.len()));
    for key in keys.iter().take(LATENCY_SAMPLES) {
        let start = Instant::now();
        black_box(table.get(black_box(key), MAX_SEQNO)?);
        samples.push(duration_ns(start.elapsed()));
    }
    measurement.latency_ns = percentiles(&mut samples);
    if !hit {
        let passed = keys.iter().filter(|key| table.may_contain(key)).count();
        measurement.notes.push((
            "bloom false positives".into(),
            format!("{:.3}%", 100.0 * passed as f64 / keys.len().max(1) as f64),
        ));
    }
    Ok(measurement)
}

fn seeks(table: &Table, keys: &[Vec<u8>]) -> anyhow::Result<Measurement> {
    let count = keys.len().min(200_000);
    let mut samples = Vec::with_capacity(count);
    let start = Instant::now();
    for key in &keys[..count] {
        let op = Instant::now();
        for entry in table
            .iter(Bound::Included(&key[..]), Bound::Unbounded)
            .take(11)
        {
            black_box(entry?);
        }
        samples.push(duration_ns(op.elapsed()));
    }
    let mut measurement = Measurement::new(
        "sstable/seek+10next",
        "floe",
        1,
        count as u64,
        start.elapsed(),
    );
    measurement.latency_ns = percentiles(&mut samples);
    Ok(measurement)
}

fn duration_ns(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}
