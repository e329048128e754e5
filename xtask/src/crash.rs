//! `cargo xtask crash [CYCLES]`: the kill -9 crash harness of `crates/floe/tests/crash.rs`
//! with many more cycles than CI runs (default 500), built in release.

use crate::util::{cargo, run as run_command};

/// Runs the harness for `CYCLES` kill-and-reopen cycles.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let cycles = args.first().cloned().unwrap_or_else(|| "500".to_string());
    let mut command = cargo();
    command
        .args([
            "test",
            "--release",
            "--package",
            "floe",
            "--test",
            "crash",
            "--",
            "--nocapture",
        ])
        .env("FLOE_CRASH_CYCLES", cycles);
    run_command(&mut command)
}
