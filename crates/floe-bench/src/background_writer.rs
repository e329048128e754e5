//! Writeback pressure for `--background-writer MIB_PER_SEC`: a thread that dirties the page
//! cache at a steady rate (unsynced writes into a file of its own, rewritten from the start
//! every GiB) for as long as the benchmark runs, the same for every engine, as another
//! process writing on the same disk would.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Bytes per write call.
const CHUNK: usize = 1 << 20;

/// The file is rewritten from its start once it holds this many bytes, so that the disk
/// space it takes stays bounded.
const FILE_BYTES: u64 = 1 << 30;

/// A running background writer; dropping it stops the thread and removes its file.
#[derive(Debug)]
pub struct BackgroundWriter {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
    started: Instant,
}

impl BackgroundWriter {
    /// Starts writing `mib_per_sec` MiB a second into a file in `dir`.
    ///
    /// # Errors
    /// The file cannot be created, or the rate is 0.
    pub fn start(dir: &Path, mib_per_sec: u64) -> anyhow::Result<BackgroundWriter> {
        anyhow::ensure!(mib_per_sec > 0, "--background-writer needs a rate above 0");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("background-writer.dat");
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, written) = (Arc::clone(&stop), Arc::clone(&written));
            std::thread::Builder::new()
                .name("background-writer".to_owned())
                .spawn(move || write_steadily(file, mib_per_sec << 20, &stop, &written))
                .context("starting the background writer")?
        };
        Ok(BackgroundWriter {
            stop,
            written,
            thread: Some(thread),
            path,
            started: Instant::now(),
        })
    }

    /// The rate achieved so far, in MiB a second.
    #[must_use]
    pub fn achieved_mib_per_sec(&self) -> f64 {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
        self.written.load(Ordering::Relaxed) as f64 / f64::from(1 << 20) / seconds
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes `bytes_per_sec` into `file` in chunks, sleeping between them to keep the rate,
/// until `stop`; a write error ends it quietly (the benchmark goes on without pressure).
fn write_steadily(mut file: File, bytes_per_sec: u64, stop: &AtomicBool, written: &AtomicU64) {
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 31 % 251) as u8).collect();
    let start = Instant::now();
    let mut total = 0u64;
    let mut in_file = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if in_file >= FILE_BYTES {
            if file.seek(SeekFrom::Start(0)).is_err() {
                return;
            }
            in_file = 0;
        }
        if file.write_all(&chunk).is_err() {
            return;
        }
        total += CHUNK as u64;
        in_file += CHUNK as u64;
        written.store(total, Ordering::Relaxed);
        // Where the schedule says this many bytes are due.
        let due = Duration::from_secs_f64(total as f64 / bytes_per_sec as f64);
        if let Some(ahead) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(ahead.min(Duration::from_millis(100)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_at_about_its_rate_and_cleans_up() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let writer = BackgroundWriter::start(dir.path(), 64).expect("starts");
        let path = dir.path().join("background-writer.dat");
        std::thread::sleep(Duration::from_millis(300));
        assert!(path.exists());
        // Not a timing assertion: the writer must not outrun its schedule by much.
        assert!(writer.achieved_mib_per_sec() < 64.0 * 2.0 + 8.0);
        assert!(writer.written.load(Ordering::Relaxed) > 0);
        drop(writer);
        assert!(!path.exists());
        assert!(BackgroundWriter::start(dir.path(), 0).is_err());
    }
}
