//! This process's resident memory as `/proc/self/status` reports it (`RssAnon`, `RssFile`),
//! and a sampler thread that keeps the peak of each over a phase.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Resident memory in bytes: anonymous (heap, caches, memtables) and file-backed (mapped
/// files, the binary). The two are kept apart because a mapped table counts in the second
/// and a block cache in the first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resident {
    /// `RssAnon`, in bytes.
    pub anon: u64,
    /// `RssFile`, in bytes.
    pub file: u64,
}

impl Resident {
    /// The larger of each figure of `self` and `other`.
    #[must_use]
    pub fn max(self, other: Resident) -> Resident {
        Resident {
            anon: self.anon.max(other.anon),
            file: self.file.max(other.file),
        }
    }
}

/// `RssAnon` and `RssFile` from the text of a `/proc/<pid>/status` file; `None` if either
/// is missing or does not parse. The kernel reports both in kB (KiB, despite the name).
#[must_use]
pub fn parse_status(text: &str) -> Option<Resident> {
    let field = |name: &str| -> Option<u64> {
        let rest = text
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))?
            .trim();
        let kib = rest.strip_suffix("kB").unwrap_or(rest).trim();
        kib.parse::<u64>().ok()?.checked_mul(1024)
    };
    Some(Resident {
        anon: field("RssAnon")?,
        file: field("RssFile")?,
    })
}

/// This process's resident memory now; `None` where `/proc/self/status` does not say.
#[must_use]
pub fn resident() -> Option<Resident> {
    parse_status(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// A thread that reads [`resident`] every interval until [`PeakSampler::finish`], keeping
/// the peak of each figure.
#[derive(Debug)]
pub struct PeakSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Option<Resident>>,
}

impl PeakSampler {
    /// How often a phase's memory is read: often enough to catch a memtable's or a
    /// compaction's peak, rarely enough that reading `/proc` costs the phase nothing.
    pub const INTERVAL: Duration = Duration::from_millis(100);

    /// Starts sampling every `interval`, with a first sample at once.
    #[must_use]
    pub fn start(interval: Duration) -> PeakSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("rss-sampler".to_string())
            .spawn({
                let stop = Arc::clone(&stop);
                move || {
                    let mut peak = resident();
                    while !stop.load(Ordering::Acquire) {
                        std::thread::park_timeout(interval);
                        peak = match (peak, resident()) {
                            (Some(a), Some(b)) => Some(a.max(b)),
                            (a, b) => a.or(b),
                        };
                    }
                    peak
                }
            })
            .expect("spawning the memory sampler");
        PeakSampler { stop, thread }
    }

    /// Stops the sampler after one last sample and returns the peak of each figure over
    /// its life; `None` where the kernel does not report them.
    #[must_use]
    pub fn finish(self) -> Option<Resident> {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        self.thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head of a `/proc/self/status`, in the kernel's layout.
    const STATUS: &str = "\
Name:\tfloe-bench
Umask:\t0022
State:\tR (running)
VmPeak:\t  123456 kB
VmRSS:\t    9876 kB
RssAnon:\t    5120 kB
RssFile:\t    4740 kB
RssShmem:\t      16 kB
Threads:\t3
";

    #[test]
    fn status_fields_are_read_in_bytes() {
        assert_eq!(
            parse_status(STATUS),
            Some(Resident {
                anon: 5120 * 1024,
                file: 4740 * 1024,
            })
        );
    }

    #[test]
    fn a_status_without_both_fields_reads_as_none() {
        assert_eq!(parse_status("Name:\tx\nRssAnon:\t1 kB\n"), None);
        assert_eq!(parse_status("RssAnon:\tmany kB\nRssFile:\t1 kB\n"), None);
        // `RssAnonymous` is not `RssAnon`.
        assert_eq!(parse_status("RssAnonymous:\t1 kB\nRssFile:\t1 kB\n"), None);
        assert_eq!(
            parse_status("RssAnonymous:\t1 kB\nRssAnon:\t2 kB\nRssFile:\t3 kB\n"),
            Some(Resident {
                anon: 2048,
                file: 3072
            })
        );
        assert_eq!(parse_status(""), None);
    }

    #[test]
    fn peaks_take_each_figure_apart() {
        let a = Resident { anon: 5, file: 1 };
        let b = Resident { anon: 2, file: 9 };
        assert_eq!(a.max(b), Resident { anon: 5, file: 9 });
    }

    #[test]
    fn the_sampler_sees_this_process() {
        let sampler = PeakSampler::start(Duration::from_millis(1));
        let held = std::hint::black_box(vec![1u8; 8 << 20]);
        std::thread::sleep(Duration::from_millis(20));
        let peak = sampler.finish();
        if cfg!(target_os = "linux") {
            let peak = peak.expect("Linux reports resident memory");
            assert!(peak.anon >= held.len() as u64, "{peak:?}");
            assert!(peak.file > 0, "the binary itself is file-backed");
        }
        drop(held);
    }
}
