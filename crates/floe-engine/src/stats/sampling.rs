//! The counters of the read and write paths, kept cheap: exact counts in per-thread
//! stripes, and latencies and bloom filter outcomes measured on one call in
//! [`SAMPLE_EVERY`] per thread (the rest pay a thread-local decrement).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

/// One call in this many (per thread) is timed, and its bloom filter outcomes counted.
pub(crate) const SAMPLE_EVERY: u32 = 64;

/// Stripes of the exact counts: more than the threads that usually read at once.
const STRIPES: usize = 16;

thread_local! {
    /// Calls until this thread's next sampled one.
    static COUNTDOWN: Cell<u32> = const { Cell::new(0) };
    /// This thread's stripe, chosen at its first count.
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    /// The bloom filter outcomes of the sampled lookup under way on this thread, if one is.
    static PROBES: Cell<Option<Probes>> = const { Cell::new(None) };
}

/// Whether this call is the thread's sampled one.
#[inline]
fn sampled() -> bool {
    COUNTDOWN.with(|countdown| {
        let left = countdown.get();
        if left == 0 {
            countdown.set(SAMPLE_EVERY - 1);
            true
        } else {
            countdown.set(left - 1);
            false
        }
    })
}

/// This thread's stripe.
#[inline]
fn stripe() -> usize {
    STRIPE.with(|stripe| {
        let mine = stripe.get();
        if mine != usize::MAX {
            return mine;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let chosen = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
        stripe.set(chosen);
        chosen
    })
}

/// A count bumped by many threads: each adds to its own stripe (its own cache line),
/// and a read sums them.
#[derive(Debug, Default)]
pub(crate) struct Striped {
    stripes: [CachePadded<AtomicU64>; STRIPES],
}

impl Striped {
    #[inline]
    pub(crate) fn add(&self, amount: u64) {
        self.stripes[stripe()].fetch_add(amount, Ordering::Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

/// The bloom filter outcomes of one lookup, over the tables it consulted.
#[derive(Debug, Default, Clone, Copy)]
struct Probes {
    checked: u64,
    useful: u64,
    false_positive: u64,
}

/// Notes, for a sampled lookup under way on this thread, that a table's filter was
/// consulted: `passed` if it let the key through, `found` if the table then held it.
/// Nothing outside a sampled lookup.
#[inline]
pub(crate) fn note_filter(passed: impl FnOnce() -> bool, found: impl FnOnce() -> bool) {
    PROBES.with(|probes| {
        if let Some(mut tally) = probes.get() {
            tally.checked += 1;
            if !passed() {
                tally.useful += 1;
            } else if !found() {
                tally.false_positive += 1;
            }
            probes.set(Some(tally));
        }
    });
}

/// Whether a sampled lookup is under way on this thread (its table probes are counted).
#[inline]
pub(crate) fn counting_probes() -> bool {
    PROBES.with(|probes| probes.get().is_some())
}

/// Latencies in buckets of powers of two nanoseconds: bucket `i` holds samples below
/// `2^(i + 1)` ns, the last everything longer.
const BUCKETS: usize = 40;

/// A latency histogram of sampled calls.
#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    max_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            max_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    fn record(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
        let bucket = (63 - nanos.leading_zeros() as usize).min(BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.max_nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    /// What the histogram holds, for the stats.
    pub(crate) fn report(&self) -> Latency {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let samples: u64 = counts.iter().sum();
        let max = Duration::from_nanos(self.max_nanos.load(Ordering::Relaxed));
        // The upper end of the bucket holding the `q` quantile, capped by the maximum.
        let quantile = |q: f64| {
            if samples == 0 {
                return Duration::ZERO;
            }
            let rank = ((samples as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, count) in counts.iter().enumerate() {
                seen += count;
                if seen >= rank {
                    let upper = 1u64.checked_shl(i as u32 + 1).unwrap_or(u64::MAX);
                    return Duration::from_nanos(upper).min(max);
                }
            }
            max
        };
        Latency {
            samples,
            p50: quantile(0.5),
            p99: quantile(0.99),
            p999: quantile(0.999),
            max,
        }
    }
}

/// Latencies of sampled calls (one in 64 per thread): each quantile is the
/// upper end of the power-of-two bucket it falls in (so within a factor of two above the
/// true value), never above the largest sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Latency {
    /// Calls timed.
    pub samples: u64,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The 99.9th percentile.
    pub p999: Duration,
    /// The longest call timed.
    pub max: Duration,
}

/// The counters of the read and write paths.
#[derive(Debug, Default)]
pub(crate) struct PathCounters {
    pub(crate) gets: Striped,
    pub(crate) get_latency: Histogram,
    pub(crate) write_latency: Histogram,
    /// Bloom filter outcomes of sampled lookups (multiply by [`SAMPLE_EVERY`] for an
    /// estimate of all).
    pub(crate) bloom_checked: AtomicU64,
    pub(crate) bloom_useful: AtomicU64,
    pub(crate) bloom_false_positive: AtomicU64,
}

impl PathCounters {
    /// Runs the point lookup `get`, counting it, and timing it and counting its filter
    /// outcomes if it is this thread's sampled call.
    #[inline]
    pub(crate) fn get<T>(&self, get: impl FnOnce() -> T) -> T {
        self.gets.add(1);
        if !sampled() {
            return get();
        }
        self.sampled_get(get)
    }

    #[cold]
    #[inline(never)]
    fn sampled_get<T>(&self, get: impl FnOnce() -> T) -> T {
        let outer = PROBES.with(|probes| probes.replace(Some(Probes::default())));
        let start = Instant::now();
        let result = get();
        self.get_latency.record(start.elapsed());
        let probes = PROBES
            .with(|probes| probes.replace(outer))
            .unwrap_or_default();
        self.bloom_checked
            .fetch_add(probes.checked, Ordering::Relaxed);
        self.bloom_useful
            .fetch_add(probes.useful, Ordering::Relaxed);
        self.bloom_false_positive
            .fetch_add(probes.false_positive, Ordering::Relaxed);
        result
    }

    /// Runs the write `write`, timing it if it is this thread's sampled call.
    #[inline]
    pub(crate) fn write<T>(&self, write: impl FnOnce() -> T) -> T {
        if !sampled() {
            return write();
        }
        let start = Instant::now();
        let result = write();
        self.write_latency.record(start.elapsed());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_fall_in_the_right_power_of_two_bucket() {
        let histogram = Histogram::default();
        assert_eq!(histogram.report(), Latency::default());
        for _ in 0..990 {
            histogram.record(Duration::from_nanos(700));
        }
        for _ in 0..10 {
            histogram.record(Duration::from_micros(50));
        }
        let report = histogram.report();
        assert_eq!(report.samples, 1000);
        assert_eq!(report.p50, Duration::from_nanos(1024));
        assert_eq!(report.p99, Duration::from_nanos(1024));
        assert_eq!(report.p999, Duration::from_micros(50));
        assert_eq!(report.max, Duration::from_micros(50));
    }

    #[test]
    fn one_call_in_sample_every_is_sampled_and_stripes_sum() {
        let counters = PathCounters::default();
        for _ in 0..SAMPLE_EVERY * 10 {
            counters.get(|| ());
        }
        assert_eq!(counters.gets.sum(), u64::from(SAMPLE_EVERY) * 10);
        assert_eq!(counters.get_latency.report().samples, 10);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let striped = Striped::default();
                    for _ in 0..1000 {
                        striped.add(2);
                    }
                    striped.sum()
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap(), 2000);
        }
    }

    #[test]
    fn filter_outcomes_are_counted_only_inside_a_sampled_lookup() {
        let counters = PathCounters::default();
        note_filter(|| false, || false);
        assert!(!counting_probes());
        // The sampled call comes first on a fresh thread.
        std::thread::scope(|scope| {
            scope.spawn(|| {
                counters.get(|| {
                    assert!(counting_probes());
                    note_filter(|| false, || unreachable!());
                    note_filter(|| true, || false);
                    note_filter(|| true, || true);
                });
            });
        });
        assert_eq!(counters.bloom_checked.load(Ordering::Relaxed), 3);
        assert_eq!(counters.bloom_useful.load(Ordering::Relaxed), 1);
        assert_eq!(counters.bloom_false_positive.load(Ordering::Relaxed), 1);
    }
}
