//! `cargo xtask ci`: what `.ci/run` checks, in order: formatting, clippy on every target,
//! the README's test command, the loom models and the documentation build.

use crate::util::{cargo, run as run_command};

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
    Ok(())
}
