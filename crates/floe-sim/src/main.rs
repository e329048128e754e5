//! The `floe-sim` binary: runs seeds of the deterministic simulation on every core for a
//! bounded time, or one seed to replay it, and prints one closing line.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use floe_sim::{Tally, run_seed};

/// Deterministic simulation of floe: seeded workloads on a simulated disk, power-loss
/// images, injected I/O errors, and an oracle after every recovery.
#[derive(Debug, Parser)]
#[command(name = "floe-sim")]
struct Args {
    /// Run seeds for this many seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Run this one seed only (to replay a failure).
    #[arg(long)]
    seed: Option<u64>,
    /// The first seed of a timed run (default: drawn from the clock, and printed).
    #[arg(long)]
    start: Option<u64>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Stop at the first failure (a planted bug's run).
    #[arg(long)]
    first_failure: bool,
    /// How a failure says to replay it (the command before `--seed`).
    #[arg(long, default_value = "cargo xtask sim")]
    replay: String,
}

/// The closing line (after lines with the keyspace counts, the range deletions and the
/// damaged-file count, which it leaves out so that its shape stays fixed for scripts).
fn closing_line(tally: &Tally, failures: usize) -> String {
    format!(
        "sim: {} keyspaces created, {} dropped, {} writes synced on their own\n\
         sim: {} range deletions ({} of them empty or inverted) in {} write operations\n\
         sim: {} damaged files checked\n\
         sim: {} seeds, {} crash images, {} injected errors, {failures} failures",
        tally.created,
        tally.dropped,
        tally.synced,
        tally.ranges,
        tally.empty_ranges,
        tally.ops,
        tally.flips,
        tally.seeds,
        tally.images,
        tally.injected
    )
}

fn main() {
    let args = Args::parse();
    // An engine panic is caught and reported as the seed's failure; the default hook
    // would print it a second time from the worker.
    std::panic::set_hook(Box::new(|_| {}));
    if let Some(seed) = args.seed {
        let (tally, failures) = match run_seed(seed) {
            Ok(tally) => (tally, 0),
            Err(message) => {
                println!("sim: seed {seed} failed: {message}");
                (Tally::default(), 1)
            }
        };
        println!("{}", closing_line(&tally, failures));
        std::process::exit(i32::from(failures > 0));
    }
    let start = args.start.unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos % 1_000_000_000_000
    });
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!(
        "sim: seeds from {start} for {} s on {threads} threads",
        args.seconds
    );
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let next = AtomicU64::new(start);
    let total = Mutex::new(Tally::default());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while Instant::now() < deadline {
                    if args.first_failure && !failures.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
                        return;
                    }
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    match run_seed(seed) {
                        Ok(tally) => total.lock().unwrap_or_else(|p| p.into_inner()).add(&tally),
                        Err(message) => {
                            let seeds_before = seed - start + 1;
                            println!(
                                "sim: seed {seed} failed (after {seeds_before} seeds): {message}\n  replay: {} --seed {seed}",
                                args.replay
                            );
                            failures.lock().unwrap_or_else(|p| p.into_inner()).push(seed);
                        }
                    }
                }
            });
        }
    });
    let tally = *total.lock().unwrap_or_else(|p| p.into_inner());
    let failed = failures.lock().unwrap_or_else(|p| p.into_inner()).len();
    println!("{}", closing_line(&tally, failed));
    std::process::exit(i32::from(failed > 0));
}
