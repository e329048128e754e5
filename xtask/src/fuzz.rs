//! `cargo xtask fuzz [SECONDS]`: a smoke run of every cargo-fuzz target in `fuzz/`, on the
//! nightly toolchain, installing cargo-fuzz first if it is missing.

use std::process::Command;

use anyhow::Context;

use crate::util::{output, project_root, run as run_command};

/// Runs each target for `SECONDS` (default 20).
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let seconds: u64 = args
        .first()
        .map(|s| s.parse())
        .transpose()
        .context("SECONDS must be a number")?
        .unwrap_or(20);
    let fuzz_dir = project_root().join("fuzz");
    if output(Command::new("cargo").args(["+nightly", "fuzz", "--version"])).is_none() {
        run_command(Command::new("cargo").args(["+nightly", "install", "cargo-fuzz", "--locked"]))?;
    }
    let targets = output(
        Command::new("cargo")
            .args(["+nightly", "fuzz", "list"])
            .current_dir(&fuzz_dir),
    )
    .context("`cargo +nightly fuzz list` failed")?;
    for target in targets.lines().map(str::trim).filter(|t| !t.is_empty()) {
        run_command(
            Command::new("cargo")
                .args([
                    "+nightly",
                    "fuzz",
                    "run",
                    target,
                    "--",
                    &format!("-max_total_time={seconds}"),
                ])
                .current_dir(&fuzz_dir),
        )?;
    }
    Ok(())
}
