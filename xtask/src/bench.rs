//! `cargo xtask bench`: builds `floe-bench` in release, runs it and keeps the JSON results
//! (with host, git revision and time) under `target/bench/`.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::util::{cargo, output, project_root, run as run_command};

/// Runs the benchmark binary with `args` (suites and flags, see `floe-bench --help`).
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let root = project_root();
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let json = root.join("target").join("bench").join(format!("bench-{stamp}.json"));
    let revision = output(std::process::Command::new("git").args(["rev-parse", "--short", "HEAD"]).current_dir(&root))
        .unwrap_or_else(|| "unknown".to_string());
    let dirty = output(std::process::Command::new("git").args(["status", "--porcelain"]).current_dir(&root))
        .is_some_and(|s| !s.is_empty());
    let host = output(&mut std::process::Command::new("hostname")).unwrap_or_else(|| "unknown".to_string());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| info.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_default();

    let mut command = cargo();
    command
        .args(["run", "--release", "--quiet", "--package", "floe-bench", "--bin", "floe-bench", "--"])
        .args(args)
        .arg("--json")
        .arg(&json)
        .env("FLOE_BENCH_REV", if dirty { format!("{revision}-dirty") } else { revision })
        .env("FLOE_BENCH_HOST", format!("{host} ({cpu})"));
    run_command(&mut command)
}
