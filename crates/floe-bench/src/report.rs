//! The shape of a benchmark run: its configuration and the measurements it produces.

use std::time::Duration;

use serde::Serialize;

/// What a workload is asked to do.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// How many distinct keys a workload writes or reads.
    pub keys: usize,
    /// Key length in bytes (16 by default).
    pub key_size: usize,
    /// Value length in bytes (100 by default, incompressible).
    pub value_size: usize,
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
