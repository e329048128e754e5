//! A one-line progress bar on stderr, redrawn in place with `\r` while a phase runs.
//!
//! Workers add to a shared counter every [`Progress::STRIDE`] operations (one relaxed
//! atomic add per stride, so the bar costs the measured loop nothing noticeable); a
//! drawing thread reads it a few times a second.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The counter that workers report to.
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
}

impl Progress {
    /// How many operations a worker completes between two reports.
    pub const STRIDE: u64 = 1024;

    /// Records `ops` more completed operations.
    pub fn add(&self, ops: u64) {
        self.done.fetch_add(ops, Ordering::Relaxed);
    }

    /// Records one operation, reporting every [`Progress::STRIDE`]-th (`op` counts from 0).
    pub fn tick(&self, op: u64) {
        if (op + 1).is_multiple_of(Progress::STRIDE) {
            self.add(Progress::STRIDE);
        }
    }

    fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

/// Whether and how progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// A bar redrawn in place when stderr is a terminal, else one line per phase.
    Auto,
    /// Nothing (tests).
    Quiet,
}

/// Runs `phase` while drawing a bar labelled `label` that expects `total` operations.
pub fn show<T>(display: Display, label: &str, total: u64, phase: impl FnOnce(&Progress) -> T) -> T {
    let progress = Progress::default();
    if display == Display::Quiet {
        return phase(&progress);
    }
    let live = std::io::stderr().is_terminal();
    let finished = AtomicBool::new(false);
    let start = Instant::now();
    let result = std::thread::scope(|scope| {
        if live {
            scope.spawn(|| {
                while !finished.load(Ordering::Acquire) {
                    draw(label, progress.done(), total, start.elapsed(), false);
                    std::thread::park_timeout(Duration::from_millis(200));
                }
            });
        }
        let result = phase(&progress);
        finished.store(true, Ordering::Release);
        result
    });
    draw(label, total, total, start.elapsed(), live);
    result
}

fn draw(label: &str, done: u64, total: u64, elapsed: Duration, last: bool) {
    const WIDTH: u64 = 30;
    let done = done.min(total);
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH) as usize;
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
    let bar = format!(
        "{}{}",
        "#".repeat(filled),
        "-".repeat(WIDTH as usize - filled)
    );
    let line = format!(
        "{label:<34} [{bar}] {percent:>3}% {:>10} ops/s {:>6.1} s",
        human(rate),
        elapsed.as_secs_f64()
    );
    let mut err = std::io::stderr().lock();
    // A progress line that cannot be written is not worth failing a benchmark for.
    let _ = if last || !std::io::stderr().is_terminal() {
        writeln!(err, "\r{line}")
    } else {
        write!(err, "\r{line}")
    };
    let _ = err.flush();
}

/// `1234567.0` as `1.23M`: short numbers for the bar.
#[must_use]
pub fn human(value: f64) -> String {
    if value >= 1e9 {
        format!("{:.2}G", value / 1e9)
    } else if value >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1}k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_report_whole_strides() {
        let progress = Progress::default();
        for op in 0..(3 * Progress::STRIDE + 5) {
            progress.tick(op);
        }
        assert_eq!(progress.done(), 3 * Progress::STRIDE);
    }

    #[test]
    fn quiet_runs_the_phase() {
        assert_eq!(show(Display::Quiet, "x", 10, |_| 42), 42);
    }

    #[test]
    fn human_numbers() {
        assert_eq!(human(999.0), "999");
        assert_eq!(human(1500.0), "1.5k");
        assert_eq!(human(2_340_000.0), "2.34M");
        assert_eq!(human(3e9), "3.00G");
    }
}
