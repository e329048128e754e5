//! The report of a loom model: how many executions it explored, under which preemption
//! bound, in how long.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Counts the executions a loom model explores, from the moment it was started.
///
/// The count lives outside loom (a `std` atomic), so it survives a model that fails, and
/// a model that is expected to fail can still report how far it searched. Clones share
/// the count and the start time: the model's closure records into a clone.
#[derive(Debug, Clone)]
pub struct Executions {
    count: Arc<AtomicUsize>,
    started: Instant,
}

impl Executions {
    /// A count of zero, with the clock started now.
    #[must_use]
    pub fn start() -> Executions {
        Executions {
            count: Arc::new(AtomicUsize::new(0)),
            started: Instant::now(),
        }
    }

    /// Records one more execution; the model calls it at the start of each.
    pub fn record(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The executions recorded so far.
    #[must_use]
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Prints `{name}: {count} executions, preemption bound {bound}, {elapsed}`.
    pub fn report(&self, name: &str, bound: usize) {
        println!(
            "{name}: {} executions, preemption bound {bound}, {:.2?}",
            self.count(),
            self.started.elapsed()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_count() {
        let executions = Executions::start();
        let clone = executions.clone();
        clone.record();
        clone.record();
        executions.record();
        assert_eq!((executions.count(), clone.count()), (3, 3));
    }
}
