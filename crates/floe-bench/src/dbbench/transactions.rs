//! The `transactions` workload: read-modify-write transactions of two random keys on each
//! engine's optimistic transactions, at low and at high contention.
//!
//! Every value is a counter (8 bytes, little-endian) followed by the rest of the key's
//! generation-0 value, so values keep the run's size. A phase loads its keys with every
//! counter at 0 (untimed, then a flush), then commits [`transactions`] transactions: each
//! reads two distinct random keys, writes both back with their counters one higher and
//! commits; a commit that conflicts applied nothing, and the same transaction runs again
//! until it commits. Throughput counts committed transactions (commits/s); each conflict
//! is counted, and the conflict rate is conflicts per attempted commit. The latency of a
//! transaction includes its retries.
//!
//! Two phases, each on a database of its own: `transactions-low` picks the keys among all
//! of the run's keys (1M by default), where two concurrent transactions rarely meet, and
//! `transactions-high` among [`HOT_KEYS`], where they often do.
//!
//! After each phase an untimed check reads every counter outside any transaction: each
//! must equal the number of committed transactions that picked its key, so their sum is
//! twice the number of commits. A lost update, a commit applied twice, or one applied in
//! part fails the run.
//!
//! The row of floe at low contention on [`TARGET_THREADS`] threads carries the target:
//! floe's commits/s over fjall's, at least [`TARGET_MIN`].

pub(super) mod engines;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, ensure};

use self::engines::{Commit, Tx, TxEngine};
use super::data::{Data, pick};
use super::engine::{EngineKind, EngineOptions};
use super::progress::{self, Display};
use super::workloads::{Outcome, parallel_with};
use super::{Phase, Run, Workload, settle_disk};
use crate::Measurement;

/// The keys the high-contention phase picks from (fewer if the run has fewer).
pub(super) const HOT_KEYS: u64 = 100;

/// The least floe/fjall ratio of commits/s at low contention that meets the target.
pub(super) const TARGET_MIN: f64 = 2.0;

/// The thread count of the target.
pub(super) const TARGET_THREADS: usize = 2;

/// Bytes of a value that hold its counter.
const COUNTER: usize = 8;

/// Attempts of one transaction after which the phase gives up: livelock, not contention.
const MAX_ATTEMPTS: u64 = 100_000;

/// Salts of the two keys a transaction picks.
const SALT_FIRST: u64 = 0x7c1;
const SALT_SECOND: u64 = 0x7c2;

/// The least key count (a transaction needs two distinct keys) and value size (a value
/// holds its counter) the workload runs with.
pub(super) const MIN_KEYS: u64 = 2;
pub(super) const MIN_VALUE_SIZE: usize = COUNTER;

/// How many transactions each phase commits on a run of `keys` keys: a fifth as many as
/// keys, so that at low contention most keys are touched at most once.
pub(super) fn transactions(keys: u64) -> u64 {
    (keys / 5).max(1)
}

/// The two phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contention {
    Low,
    High,
}

impl Contention {
    fn name(self) -> &'static str {
        match self {
            Contention::Low => "low",
            Contention::High => "high",
        }
    }

    /// The keys the phase's transactions pick from, on a run of `keys` keys.
    fn keys(self, keys: u64) -> u64 {
        match self {
            Contention::Low => keys,
            Contention::High => HOT_KEYS.min(keys),
        }
    }
}

/// The two distinct key indexes below `keys` (at least 2) that transaction `tx` updates.
fn pair(tx: u64, keys: u64) -> (u64, u64) {
    let first = pick(tx, SALT_FIRST, keys);
    let second = pick(tx, SALT_SECOND, keys - 1);
    (first, second + u64::from(second >= first))
}

/// Everything a phase needs to run on one engine.
struct Context<'a> {
    engine: &'a dyn TxEngine,
    data: &'a Data,
    /// How many keys the database holds and the transactions pick from.
    keys: u64,
    /// How many transactions the phase commits.
    transactions: u64,
    threads: usize,
    display: Display,
    label: &'a str,
}

/// Writes into `out` the value of key `index` with counter `counter`.
fn encode(data: &Data, index: u64, counter: u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&counter.to_le_bytes());
    out.extend_from_slice(&data.value(index, 0)[COUNTER..]);
}

/// The counter of key `index` in `value`, or an error if `value` is not one of the key's.
fn decode(data: &Data, index: u64, value: &[u8]) -> anyhow::Result<u64> {
    ensure!(
        value.len() == data.value_size() && value[COUNTER..] == data.value(index, 0)[COUNTER..],
        "key #{index} holds a value that was never written for it"
    );
    let mut counter = [0; COUNTER];
    counter.copy_from_slice(&value[..COUNTER]);
    Ok(u64::from_le_bytes(counter))
}

/// Writes every key with its counter at 0, in batches, then flushes (untimed).
fn load(ctx: &Context<'_>) -> anyhow::Result<()> {
    const BATCH: u64 = 1000;
    progress::show(
        ctx.display,
        &format!("{} (load)", ctx.label),
        ctx.keys,
        |progress| {
            let mut batch = Vec::with_capacity(BATCH as usize);
            let mut first = 0;
            while first < ctx.keys {
                let last = (first + BATCH).min(ctx.keys);
                batch.clear();
                for index in first..last {
                    let (mut key, mut value) = (Vec::new(), Vec::new());
                    ctx.data.random_key(index, &mut key);
                    encode(ctx.data, index, 0, &mut value);
                    batch.push((key, value));
                }
                ctx.engine.load(&batch)?;
                progress.add(last - first);
                first = last;
            }
            ctx.engine.flush()
        },
    )
    .with_context(|| format!("{}: loading {} keys", ctx.label, ctx.keys))
}

/// Per-thread buffers.
#[derive(Debug, Default)]
struct Scratch {
    keys: [Vec<u8>; 2],
    value: Vec<u8>,
}

/// Reads the counter of key `index` (at `key`) in `tx`.
fn read(
    tx: &mut dyn Tx,
    data: &Data,
    index: u64,
    key: &[u8],
    value: &mut Vec<u8>,
) -> anyhow::Result<u64> {
    ensure!(tx.get(key, value)?, "key #{index} is missing");
    decode(data, index, value)
}

/// The timed phase: [`Context::transactions`] committed read-modify-writes.
fn run(ctx: &Context<'_>) -> anyhow::Result<Outcome> {
    let (data, engine, keys) = (ctx.data, ctx.engine, ctx.keys);
    let conflicts = AtomicU64::new(0);
    let mut outcome = parallel_with(
        ctx.display,
        ctx.label,
        ctx.threads,
        ctx.transactions,
        |i, s: &mut Scratch| {
            let indexes = pair(i, keys);
            let [first, second] = &mut s.keys;
            data.random_key(indexes.0, first);
            data.random_key(indexes.1, second);
            for attempt in 1.. {
                let mut tx = engine.begin()?;
                let a = read(&mut *tx, data, indexes.0, first, &mut s.value)?;
                let b = read(&mut *tx, data, indexes.1, second, &mut s.value)?;
                encode(data, indexes.0, a + 1, &mut s.value);
                tx.put(first, &s.value)?;
                encode(data, indexes.1, b + 1, &mut s.value);
                tx.put(second, &s.value)?;
                match tx.commit()? {
                    Commit::Done => return Ok(()),
                    Commit::Conflict => {
                        conflicts.fetch_add(1, Ordering::Relaxed);
                        ensure!(
                            attempt < MAX_ATTEMPTS,
                            "transaction {i} conflicted {attempt} times in a row"
                        );
                    }
                }
            }
            unreachable!("the attempts loop returns or fails")
        },
    )?;
    let conflicts = conflicts.into_inner();
    let attempts = outcome.ops + conflicts;
    outcome.notes.extend([
        ("keys".to_string(), keys.to_string()),
        ("commits".to_string(), outcome.ops.to_string()),
        ("conflicts".to_string(), conflicts.to_string()),
        ("attempts".to_string(), attempts.to_string()),
        (
            "conflict_rate".to_string(),
            format!("{:.4}", conflicts as f64 / attempts.max(1) as f64),
        ),
    ]);
    Ok(outcome)
}

/// Reads every counter outside any transaction (untimed) and fails unless each equals
/// the number of the `committed` transactions that picked its key; returns their sum.
fn check(ctx: &Context<'_>, committed: u64) -> anyhow::Result<u64> {
    let mut expected = vec![0u32; ctx.keys as usize];
    for tx in 0..committed {
        let (a, b) = pair(tx, ctx.keys);
        expected[a as usize] += 1;
        expected[b as usize] += 1;
    }
    let (mut key, mut value) = (Vec::new(), Vec::new());
    let (mut sum, mut wrong, mut examples) = (0u64, 0u64, Vec::new());
    for (index, &want) in (0..ctx.keys).zip(&expected) {
        ctx.data.random_key(index, &mut key);
        ensure!(
            ctx.engine.get(&key, &mut value)?,
            "{}: key #{index} is missing after the transactions",
            ctx.label
        );
        let counter = decode(ctx.data, index, &value).with_context(|| ctx.label.to_string())?;
        sum += counter;
        if counter != u64::from(want) {
            wrong += 1;
            if examples.len() < 5 {
                examples.push(format!("#{index}: {counter}, not {want}"));
            }
        }
    }
    ensure!(
        sum == 2 * committed && wrong == 0,
        "{}: the counters sum to {sum} after {committed} committed transactions (expected \
         {}); {wrong} keys are off, e.g. {}",
        ctx.label,
        2 * committed,
        examples.join(", ")
    );
    Ok(sum)
}

/// The `transactions` workload on one engine, its databases under `dir`: the low- and
/// then the high-contention phase, each on a fresh database, loaded, timed, checked and
/// removed.
pub(super) fn run_transactions(
    phase: &Phase<'_>,
    dir: &Path,
    engine_options: EngineOptions,
) -> anyhow::Result<Vec<Run>> {
    let Phase {
        config,
        options,
        data,
        threads,
        kind,
        label,
    } = *phase;
    let mut runs = Vec::new();
    for contention in [Contention::Low, Contention::High] {
        let name = format!("{}-{}", Workload::Transactions, contention.name());
        let label = format!("{label} ({} contention)", contention.name());
        let path = dir.join(contention.name());
        let engine = engines::open(kind, &path, engine_options)
            .with_context(|| format!("{label}: opening"))?;
        let ctx = Context {
            engine: &*engine,
            data,
            keys: contention.keys(config.keys as u64),
            transactions: transactions(config.keys as u64),
            threads,
            display: options.display,
            label: &label,
        };
        load(&ctx)?;
        settle_disk();
        let outcome = run(&ctx).with_context(|| label.clone())?;
        let sum = check(&ctx, outcome.ops)?;
        engine
            .close()
            .with_context(|| format!("{label}: closing"))?;
        std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        let mut measurement =
            Measurement::new(&name, kind.name(), threads, outcome.ops, outcome.elapsed);
        measurement.notes = outcome.notes;
        measurement
            .notes
            .push(("counter_sum".to_string(), sum.to_string()));
        runs.push(Run {
            measurement,
            samples: outcome.samples,
        });
    }
    Ok(runs)
}

/// Adds the target to floe's low-contention row at [`TARGET_THREADS`] threads: its
/// commits/s over fjall's in the same run. Nothing if either row is missing.
pub(super) fn add_target(measurements: &mut [Measurement]) {
    let low = format!("{}-{}", Workload::Transactions, Contention::Low.name());
    let find = |kind: EngineKind| {
        measurements.iter().position(|m| {
            m.workload == low && m.threads == TARGET_THREADS && m.subject == kind.name()
        })
    };
    let (Some(floe), Some(fjall)) = (find(EngineKind::Floe), find(EngineKind::Fjall)) else {
        return;
    };
    let ratio = measurements[floe].ops_per_sec() / measurements[fjall].ops_per_sec().max(1e-9);
    let met = if ratio >= TARGET_MIN { "yes" } else { "no" };
    measurements[floe].notes.extend([
        ("target".to_string(), "floe/fjall commits/s".to_string()),
        ("target_ratio".to_string(), format!("{ratio:.2}")),
        ("target_min".to_string(), format!("{TARGET_MIN:.2}")),
        ("target_met".to_string(), met.to_string()),
    ]);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;
    use crate::values::ValueKind;

    #[test]
    fn pairs_are_distinct_and_in_range() {
        for keys in [2, 3, 100, 1_000_000] {
            for tx in 0..10_000 {
                let (a, b) = pair(tx, keys);
                assert!(a != b && a < keys && b < keys, "{keys} keys: {a}, {b}");
            }
        }
        // Both keys of a pair spread over all of a small key set.
        let mut seen = [false; 100];
        for tx in 0..10_000 {
            let (a, b) = pair(tx, 100);
            seen[a as usize] = true;
            seen[b as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn counters_round_trip_and_foreign_values_are_refused() {
        let data = Data::new(16, 100, ValueKind::Random, 7);
        let mut value = Vec::new();
        encode(&data, 3, 41, &mut value);
        assert_eq!(value.len(), 100);
        assert_eq!(decode(&data, 3, &value).expect("its own value"), 41);
        assert!(decode(&data, 4, &value).is_err());
        assert!(decode(&data, 3, &value[..50]).is_err());
    }

    /// An engine that acknowledges every commit but applies only some of them: the
    /// check after the phase must catch it.
    #[derive(Default)]
    struct Lossy {
        map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
        commits: AtomicU64,
    }

    struct LossyTx<'a> {
        engine: &'a Lossy,
        writes: Vec<(Vec<u8>, Vec<u8>)>,
    }

    impl TxEngine for Lossy {
        fn load(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> anyhow::Result<()> {
            self.map.lock().unwrap().extend(entries.iter().cloned());
            Ok(())
        }
        fn begin(&self) -> anyhow::Result<Box<dyn Tx + '_>> {
            Ok(Box::new(LossyTx {
                engine: self,
                writes: Vec::new(),
            }))
        }
        fn get(&self, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool> {
            let map = self.map.lock().unwrap();
            Ok(super::super::engine::copy_found(map.get(key), value))
        }
        fn flush(&self) -> anyhow::Result<()> {
            Ok(())
        }
        fn close(self: Box<Self>) -> anyhow::Result<()> {
            Ok(())
        }
    }

    impl Tx for LossyTx<'_> {
        fn get(&mut self, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool> {
            self.engine.get(key, value)
        }
        fn put(&mut self, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
            self.writes.push((key.to_vec(), value.to_vec()));
            Ok(())
        }
        fn commit(self: Box<Self>) -> anyhow::Result<Commit> {
            // Every 10th commit keeps only its first write.
            let n = self.engine.commits.fetch_add(1, Ordering::Relaxed);
            let keep = if n % 10 == 9 { 1 } else { self.writes.len() };
            let mut map = self.engine.map.lock().unwrap();
            map.extend(self.writes.into_iter().take(keep));
            Ok(Commit::Done)
        }
    }

    #[test]
    fn the_check_catches_commits_applied_in_part() {
        let data = Data::new(16, 32, ValueKind::Random, 1);
        let engine = Lossy::default();
        let ctx = Context {
            engine: &engine,
            data: &data,
            keys: 50,
            transactions: 100,
            threads: 1,
            display: Display::Quiet,
            label: "lossy",
        };
        load(&ctx).expect("load");
        let outcome = run(&ctx).expect("the phase itself sees nothing wrong");
        assert_eq!(outcome.ops, 100);
        let err = check(&ctx, outcome.ops).expect_err("lost writes are caught");
        assert!(err.to_string().contains("sum to 190"), "{err}");
    }
}
