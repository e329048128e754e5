//! Deterministic simulation of floe on a simulated disk: seeded workloads over several
//! keyspaces (puts, deletes and range deletions), power-loss images, injected I/O errors
//! and an oracle that checks every recovery.
//!
//! `cargo xtask sim` runs it (see `docs/durability.md`, "The simulated disk"): seeds are
//! run one after another on every core, each seed either a crash seed
//! ([`run_crash_seed`]) or an error sweep ([`run_sweep_seed`]), and a failing seed is
//! printed with the command that replays it.

pub mod model;
mod runner;

pub use runner::{Plan, Tally, run_crash_seed, run_sweep_seed};

/// How many calls of a sweep seed's workload are each made to fail, at most.
pub const SWEEP_CALLS: usize = 48;

/// Whether `seed` is an error-sweep seed (one in four) rather than a crash seed.
#[must_use]
pub fn is_sweep_seed(seed: u64) -> bool {
    seed % 4 == 3
}

/// Runs `seed` as a crash seed or an error sweep, catching a panic as a failure.
///
/// # Errors
/// The failure, with what the oracle saw.
pub fn run_seed(seed: u64) -> Result<Tally, String> {
    let outcome = std::panic::catch_unwind(|| {
        if is_sweep_seed(seed) {
            run_sweep_seed(seed, SWEEP_CALLS)
        } else {
            run_crash_seed(seed)
        }
    });
    match outcome {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "a panic".to_string());
            Err(format!("panicked: {message}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first seeds, crash seeds and error sweeps alike, pass on the engine as it is;
    /// a failure names its seed, which `cargo xtask sim --seed S` replays.
    #[test]
    fn the_first_seeds_pass() {
        let mut total = Tally::default();
        for seed in 0..24 {
            match run_seed(seed) {
                Ok(tally) => total.add(&tally),
                Err(message) => panic!("seed {seed} failed: {message}"),
            }
        }
        assert_eq!(total.seeds, 24);
        assert!(total.images > 0 && total.injected > 0 && total.created > 0);
        assert!(total.ranges > total.empty_ranges && total.empty_ranges > 0);
    }
}
