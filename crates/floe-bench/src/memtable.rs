//! The memtable workloads: `config.keys` random keys inserted by 1, 2, 4… threads, then
//! read back, on floe's memtable and on three baselines: a raw `SkipMap` (the floor of
//! floe's overhead), a `Mutex<BTreeMap>` and a `BTreeMap` sharded 16 ways by key hash.
//!
//! Each thread takes an equal share of the keys. floe passes its writer gate once per
//! write, as the engine does for a one-write batch, so the gate's shared counter is part
//! of the measured cost.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;
use floe_memtable::Memtable;

use crate::keys::{random_keys, random_value};
use crate::{Config, Measurement};

/// The number of shards of the sharded baseline.
const SHARDS: usize = 16;

/// A structure under test: concurrent insert and get of byte keys.
trait Subject: Sync {
    const NAME: &'static str;
    fn new() -> Self;
    fn insert(&self, seqno: u64, key: &Bytes, value: &Bytes);
    fn get(&self, key: &[u8]) -> bool;
    /// Bytes per entry by the structure's own accounting, where it has one.
    fn accounted_bytes(&self) -> Option<usize> {
        None
    }
}

impl Subject for Memtable {
    const NAME: &'static str = "floe";
    fn new() -> Self {
        Memtable::new(usize::MAX / 2)
    }
    fn insert(&self, seqno: u64, key: &Bytes, value: &Bytes) {
        let guard = self.enter().expect("the bench never freezes");
        guard
            .put(key.clone(), seqno, value.clone())
            .expect("the bench memtable has room");
    }
    fn get(&self, key: &[u8]) -> bool {
        self.get(key, floe_core::MAX_SEQNO).is_some()
    }
    fn accounted_bytes(&self) -> Option<usize> {
        Some(self.approximate_size())
    }
}

impl Subject for SkipMap<Bytes, Bytes> {
    const NAME: &'static str = "skipmap";
    fn new() -> Self {
        SkipMap::new()
    }
    fn insert(&self, _seqno: u64, key: &Bytes, value: &Bytes) {
        SkipMap::insert(self, key.clone(), value.clone());
    }
    fn get(&self, key: &[u8]) -> bool {
        SkipMap::get(self, key).is_some()
    }
}

impl Subject for Mutex<BTreeMap<Bytes, Bytes>> {
    const NAME: &'static str = "mutex-btreemap";
    fn new() -> Self {
        Mutex::new(BTreeMap::new())
    }
    fn insert(&self, _seqno: u64, key: &Bytes, value: &Bytes) {
        self.lock()
            .expect("no panics while locked")
            .insert(key.clone(), value.clone());
    }
    fn get(&self, key: &[u8]) -> bool {
        self.lock()
            .expect("no panics while locked")
            .contains_key(key)
    }
}

/// A `BTreeMap` split into [`SHARDS`] mutexes by key hash.
struct Sharded {
    hasher: RandomState,
    shards: Vec<Mutex<BTreeMap<Bytes, Bytes>>>,
}

impl Sharded {
    fn shard(&self, key: &[u8]) -> &Mutex<BTreeMap<Bytes, Bytes>> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }
}

impl Subject for Sharded {
    const NAME: &'static str = "sharded-btreemap";
    fn new() -> Self {
        Sharded {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(BTreeMap::new())).collect(),
        }
    }
    fn insert(&self, _seqno: u64, key: &Bytes, value: &Bytes) {
        self.shard(key)
            .lock()
            .expect("no panics while locked")
            .insert(key.clone(), value.clone());
    }
    fn get(&self, key: &[u8]) -> bool {
        self.shard(key)
            .lock()
            .expect("no panics while locked")
            .contains_key(key)
    }
}

/// Runs the memtable workloads.
///
/// # Errors
/// None at present; the signature matches the other suites.
pub fn run(config: &Config) -> anyhow::Result<Vec<Measurement>> {
    let keys: Vec<Bytes> = random_keys(config.keys, config.key_size.max(8), config.seed)
        .into_iter()
        .map(Bytes::from)
        .collect();
    let value = Bytes::from(random_value(config.value_size, config.seed));
    let mut out = Vec::new();
    for &threads in &config.threads {
        let threads = threads.max(1);
        out.extend(measure::<Memtable>(&keys, &value, threads));
        out.extend(measure::<SkipMap<Bytes, Bytes>>(&keys, &value, threads));
        out.extend(measure::<Mutex<BTreeMap<Bytes, Bytes>>>(
            &keys, &value, threads,
        ));
        out.extend(measure::<Sharded>(&keys, &value, threads));
    }
    Ok(out)
}

/// Resident set size of this process in bytes, if the platform reports it.
fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Runs `work(thread, share)` on `threads` threads, each with its share of `keys`, and
/// returns the wall time from a common start to the last finish.
fn timed<F>(keys: &[Bytes], threads: usize, work: F) -> Duration
where
    F: Fn(usize, &[Bytes]) + Sync,
{
    let share = keys.len().div_ceil(threads).max(1);
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        for (thread, chunk) in keys.chunks(share).enumerate() {
            let (barrier, work) = (&barrier, &work);
            scope.spawn(move || {
                barrier.wait();
                work(thread * share, chunk);
            });
        }
        // Threads without a chunk (more threads than keys) still meet the barrier.
        for _ in keys.chunks(share).count()..threads {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        // The scope joins every thread before returning.
        start
    })
    .elapsed()
}

fn measure<S: Subject>(keys: &[Bytes], value: &Bytes, threads: usize) -> Vec<Measurement> {
    let rss_before = rss_bytes();
    let subject = S::new();
    let insert_time = timed(keys, threads, |first, chunk| {
        for (i, key) in chunk.iter().enumerate() {
            subject.insert((first + i) as u64 + 1, key, value);
        }
    });
    let rss_growth = rss_before
        .zip(rss_bytes())
        .map(|(b, a)| a.saturating_sub(b));
    let get_time = timed(keys, threads, |_, chunk| {
        for key in chunk {
            black_box(subject.get(key));
        }
    });
    let entries = keys.len().max(1) as f64;
    let mut insert = Measurement::new(
        "memtable/insert",
        S::NAME,
        threads,
        keys.len() as u64,
        insert_time,
    );
    match subject.accounted_bytes() {
        Some(accounted) => {
            insert.bytes_per_entry = Some(accounted as f64 / entries);
            insert
                .notes
                .push(("bytes_per_entry".into(), "size accounting".into()));
        }
        None => {
            insert.bytes_per_entry = rss_growth.map(|growth| growth as f64 / entries);
            insert.notes.push((
                "bytes_per_entry".into(),
                "RSS growth (understated when freed memory is reused)".into(),
            ));
        }
    }
    if let Some(growth) = rss_growth {
        insert.notes.push((
            "rss_bytes_per_entry".into(),
            format!("{:.1}", growth as f64 / entries),
        ));
    }
    let get = Measurement::new(
        "memtable/get",
        S::NAME,
        threads,
        keys.len() as u64,
        get_time,
    );
    drop(subject);
    vec![insert, get]
}
