//! The shape of a benchmark run: its configuration and the measurements it produces.

use std::time::Duration;

use serde::Serialize;

use crate::values::ValueKind;

/// What a workload is asked to do.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// How many distinct keys a workload writes or reads.
    pub keys: usize,
    /// Key length in bytes (16 by default).
    pub key_size: usize,
    /// Value length in bytes (100 by default).
    pub value_size: usize,
    /// What the values of the `dbbench` and `scale` suites look like (incompressible by
    /// default); the component suites always write random values.
    pub value_kind: ValueKind,
    /// The thread counts to measure multi-threaded workloads at.
    pub threads: Vec<usize>,
    /// The seed of every random choice, so a run can be repeated.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            keys: 1_000_000,
            key_size: 16,
            value_size: 100,
            value_kind: ValueKind::Random,
            threads: vec![1, 2, 4],
            seed: 0x5eed_f10e,
        }
    }
}

/// One measured workload on one subject (an engine or a data structure).
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// The workload, e.g. `memtable/insert` or `fillrandom`.
    pub workload: String,
    /// What was measured, e.g. `floe`, `skipmap`, `fjall`.
    pub subject: String,
    /// How many threads ran the operations.
    pub threads: usize,
    /// How many operations completed.
    pub ops: u64,
    /// Wall-clock time for all of them.
    #[serde(serialize_with = "serialize_secs")]
    pub elapsed: Duration,
    /// Bytes of memory or disk per entry, where the workload measures it.
    pub bytes_per_entry: Option<f64>,
    /// Latency percentiles in nanoseconds (p50, p99, p99.9), where measured.
    pub latency_ns: Option<[u64; 3]>,
    /// Anything else worth reporting, as name and value.
    pub notes: Vec<(String, String)>,
}

impl Measurement {
    /// A measurement of `ops` operations over `elapsed`, with no optional figures yet.
    #[must_use]
    pub fn new(
        workload: &str,
        subject: &str,
        threads: usize,
        ops: u64,
        elapsed: Duration,
    ) -> Measurement {
        Measurement {
            workload: workload.to_string(),
            subject: subject.to_string(),
            threads,
            ops,
            elapsed,
            bytes_per_entry: None,
            latency_ns: None,
            notes: Vec::new(),
        }
    }

    /// Operations per second.
    #[must_use]
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn serialize_secs<S: serde::Serializer>(
    elapsed: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(elapsed.as_secs_f64())
}

/// Latency percentiles (p50, p99, p99.9) of `samples`, in nanoseconds; sorts `samples`.
#[must_use]
pub fn percentiles(samples: &mut [u64]) -> Option<[u64; 3]> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Some([at(0.50), at(0.99), at(0.999)])
}

/// The measurements as a table, one line each, for the terminal.
#[must_use]
pub fn table(measurements: &[Measurement]) -> String {
    let mut out = format!(
        "{:<22} {:<10} {:>7} {:>12} {:>9} {:>30}  notes\n",
        "workload", "subject", "threads", "ops/s", "B/entry", "p50 / p99 / p99.9 (ns)"
    );
    for m in measurements {
        let bytes = m
            .bytes_per_entry
            .map_or_else(|| "-".to_string(), |b| format!("{b:.1}"));
        let latency = m.latency_ns.map_or_else(
            || "-".to_string(),
            |[p50, p99, p999]| format!("{p50} / {p99} / {p999}"),
        );
        let notes: Vec<String> = m.notes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!(
            "{:<22} {:<10} {:>7} {:>12.0} {:>9} {:>30}  {}\n",
            m.workload,
            m.subject,
            m.threads,
            m.ops_per_sec(),
            bytes,
            latency,
            notes.join(" ")
        ));
    }
    out
}

/// A target a measurement is held to, as its notes `target_ratio`, `target_min` and
/// `target_met` give it (the `deleterange` workload's rows have them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// The measured workload.
    pub workload: String,
    /// The measured subject.
    pub subject: String,
    /// The measured ratio.
    pub ratio: f64,
    /// The least ratio that meets the target.
    pub min: f64,
    /// Whether the ratio meets it.
    pub met: bool,
}

/// The targets of every measurement that has one, in order.
#[must_use]
pub fn targets(measurements: &[Measurement]) -> Vec<Target> {
    measurements
        .iter()
        .filter_map(|m| {
            let note = |name: &str| {
                m.notes
                    .iter()
                    .find(|(n, _)| n == name)
                    .and_then(|(_, value)| value.parse::<f64>().ok())
            };
            let (ratio, min) = (note("target_ratio")?, note("target_min")?);
            Some(Target {
                workload: m.workload.clone(),
                subject: m.subject.clone(),
                ratio,
                min,
                met: ratio >= min,
            })
        })
        .collect()
}

/// [`targets`] as lines for the terminal.
#[must_use]
pub fn target_table(targets: &[Target]) -> String {
    let mut out = format!(
        "{:<22} {:<10} {:>12} {:>12}  met\n",
        "target", "subject", "ratio", "at least"
    );
    for t in targets {
        out.push_str(&format!(
            "{:<22} {:<10} {:>12.2} {:>12.2}  {}\n",
            t.workload,
            t.subject,
            t.ratio,
            t.min,
            if t.met { "yes" } else { "NO" }
        ));
    }
    out
}

/// How one subject compares with another on one workload and thread count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratio {
    /// The workload both subjects ran.
    pub workload: String,
    /// The thread count both ran at.
    pub threads: usize,
    /// Throughput of the first subject over the second: above 1 means the first is faster.
    pub throughput: f64,
    /// Bytes per entry of the first over the second, where both measured it: below 1
    /// means the first uses less space.
    pub space: Option<f64>,
}

/// The ratios `ours / theirs` for every (workload, threads) that both subjects ran.
#[must_use]
pub fn ratios(measurements: &[Measurement], ours: &str, theirs: &str) -> Vec<Ratio> {
    measurements
        .iter()
        .filter(|m| m.subject == ours)
        .filter_map(|a| {
            let b = measurements.iter().find(|b| {
                b.subject == theirs && b.workload == a.workload && b.threads == a.threads
            })?;
            let space = match (a.bytes_per_entry, b.bytes_per_entry) {
                (Some(x), Some(y)) if y > 0.0 => Some(x / y),
                _ => None,
            };
            Some(Ratio {
                workload: a.workload.clone(),
                threads: a.threads,
                throughput: a.ops_per_sec() / b.ops_per_sec().max(1e-9),
                space,
            })
        })
        .collect()
}

/// [`ratios`] as a table for the terminal.
#[must_use]
pub fn ratio_table(ratios: &[Ratio], ours: &str, theirs: &str) -> String {
    let mut out = format!(
        "{:<22} {:>7} {:>16} {:>16}\n",
        "workload",
        "threads",
        format!("{ours}/{theirs} ops"),
        "space"
    );
    for r in ratios {
        let space = r
            .space
            .map_or_else(|| "-".to_string(), |s| format!("{s:.2}x"));
        out.push_str(&format!(
            "{:<22} {:>7} {:>15.2}x {:>16}\n",
            r.workload, r.threads, r.throughput, space
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        assert_eq!(percentiles(&mut []), None);
        assert_eq!(percentiles(&mut [7]), Some([7, 7, 7]));
        // 1..=1001 shuffled: index round(1000 * q) of the sorted samples.
        let mut samples: Vec<u64> = (1..=1001).rev().collect();
        assert_eq!(percentiles(&mut samples), Some([501, 991, 1000]));
        let mut two = vec![10, 20];
        assert_eq!(percentiles(&mut two), Some([20, 20, 20]));
    }

    #[test]
    fn ratios_pair_subjects_by_workload_and_threads() {
        let second = Duration::from_secs(1);
        let mut a = Measurement::new("fillrandom", "floe", 1, 300, second);
        a.bytes_per_entry = Some(120.0);
        let mut b = Measurement::new("fillrandom", "fjall", 1, 100, second);
        b.bytes_per_entry = Some(240.0);
        let c = Measurement::new("readrandom", "floe", 2, 50, second);
        let d = Measurement::new("readrandom", "fjall", 1, 50, second);
        let found = ratios(&[a, b, c, d], "floe", "fjall");
        assert_eq!(found.len(), 1, "readrandom ran at different thread counts");
        assert_eq!(found[0].workload, "fillrandom");
        assert!((found[0].throughput - 3.0).abs() < 1e-9);
        assert_eq!(found[0].space, Some(0.5));
        let text = ratio_table(&found, "floe", "fjall");
        assert!(text.contains("3.00x") && text.contains("0.50x"), "{text}");
        assert!(
            table(&[Measurement::new("w", "s", 1, 1, second)])
                .lines()
                .count()
                == 2
        );
    }

    #[test]
    fn targets_come_from_the_notes() {
        let second = Duration::from_secs(1);
        let mut a = Measurement::new("deleterange-perkey", "floe", 1, 1, second);
        a.notes = vec![
            ("target_ratio".to_string(), "250".to_string()),
            ("target_min".to_string(), "100.00".to_string()),
        ];
        let mut b = Measurement::new("deleterange-readtombs", "floe", 1, 1, second);
        b.notes = vec![
            ("target_ratio".to_string(), "0.75".to_string()),
            ("target_min".to_string(), "0.80".to_string()),
        ];
        let c = Measurement::new("readrandom", "floe", 1, 1, second);
        let found = targets(&[a, b, c]);
        assert_eq!(found.len(), 2);
        assert!(found[0].met && !found[1].met);
        let text = target_table(&found);
        assert!(text.contains("250.00") && text.contains("NO"), "{text}");
    }
}
