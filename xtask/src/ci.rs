//! `cargo xtask ci`: what `.ci/run` checks, in order: formatting, clippy on every target,
//! the README's test command, the loom models, the documentation build, a bounded run of
//! the deterministic simulation and the planted-bug check.

use crate::util::{cargo, run as run_command};

/// How long CI runs the simulation.
const SIM_SECONDS: u64 = 150;

/// The most CI gives the simulation to catch each planted bug.
const PLANTED_SECONDS: u64 = 60;

/// Runs every CI step, stopping at the first failure.
pub(crate) fn run() -> anyhow::Result<()> {
    run_command(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run_command(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The README's test command.
    run_command(cargo().args(["test", "--workspace", "--locked"]))?;
    crate::loom::run()?;
    run_command(
        cargo()
            .args(["doc", "--workspace", "--no-deps", "--locked"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    // The simulation for a bounded time, then every planted bug must be caught.
    crate::sim::run(&["--seconds".to_string(), SIM_SECONDS.to_string()])?;
    crate::sim::run(&[
        "--planted".to_string(),
        "--seconds".to_string(),
        PLANTED_SECONDS.to_string(),
    ])?;
    Ok(())
}
