//! `cargo xtask sim`: the deterministic simulation (`crates/floe-sim`), built in release.
//!
//! ```text
//! cargo xtask sim [--seconds N] [--seed S] [--threads T]   seeds for N s (default 60), or one seed
//! cargo xtask sim --planted [BUG] [--seconds N]            each planted bug (or one) must be caught
//! ```
//!
//! `--planted` builds the simulation once per planted durability bug, each with its own
//! `--cfg floe_planted="BUG"` in a target directory of its own (in the dev profile: six
//! optimized builds of the whole tree cost CI far more than the slower runs), runs it from
//! seed 0 until
//! the first failure (at most N seconds, default 120), and reports after how many seeds
//! each bug was caught; it fails if one is not.

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::util::{cargo, project_root, run as run_command};

/// The planted bugs, each a `floe_planted` value (declared in the workspace's `check-cfg`).
pub(crate) const PLANTED: [(&str, &str); 6] = [
    (
        "segment_dir_unsynced",
        "no directory sync after creating a log segment",
    ),
    (
        "current_renamed_before_sync",
        "CURRENT renamed into place before it is synced",
    ),
    (
        "ack_before_fdatasync",
        "a synced write acknowledged before its fdatasync",
    ),
    (
        "segment_deleted_before_edit",
        "a log segment deleted before the edit that obsoletes it is durable",
    ),
    (
        "replay_past_checksum_failure",
        "replay goes on past a checksum failure",
    ),
    (
        "tear_taken_as_end",
        "damage under a durable-offset marker taken as the end of the log",
    ),
];

/// Runs the simulation as `args` say.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    if let Some(at) = args.iter().position(|a| a == "--planted") {
        let mut rest = args.to_vec();
        rest.remove(at);
        let only = rest.get(at).filter(|name| !name.starts_with("--")).cloned();
        if only.is_some() {
            rest.remove(at);
        }
        return planted(only.as_deref(), &rest);
    }
    let mut command = cargo();
    command.args(["run", "--release", "--quiet", "--package", "floe-sim", "--"]);
    command.args(args);
    run_command(&mut command)
}

/// The value of `--flag VALUE` in `args`, if given.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|at| args.get(at + 1))
        .map(String::as_str)
}

fn planted(only: Option<&str>, args: &[String]) -> anyhow::Result<()> {
    let bugs: Vec<(&str, &str)> = match only {
        Some(name) => {
            let Some(bug) = PLANTED.iter().find(|(bug, _)| *bug == name) else {
                bail!(
                    "unknown planted bug {name:?}; the bugs are: {}",
                    PLANTED.map(|(bug, _)| bug).join(", ")
                );
            };
            vec![*bug]
        }
        None => PLANTED.to_vec(),
    };
    let seconds = flag(args, "--seconds").unwrap_or("120");
    let mut rows = Vec::new();
    for (bug, what) in bugs {
        let target = project_root().join("target").join("planted").join(bug);
        let rustflags = format!(
            "{} --cfg floe_planted=\"{bug}\"",
            std::env::var("RUSTFLAGS").unwrap_or_default()
        );
        run_command(
            cargo()
                .args(["build", "--quiet", "--package", "floe-sim", "--target-dir"])
                .arg(&target)
                .env("RUSTFLAGS", rustflags.trim()),
        )?;
        let binary = target.join("debug").join("floe-sim");
        let mut sim = Command::new(&binary);
        sim.args(["--first-failure", "--seconds", seconds])
            .args(["--replay", &format!("cargo xtask sim --planted {bug}")])
            .stderr(Stdio::inherit());
        match flag(args, "--seed") {
            Some(seed) => sim.args(["--seed", seed]),
            None => sim.args(["--start", "0"]),
        };
        let started = Instant::now();
        let output = sim
            .output()
            .with_context(|| format!("running {}", binary.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let caught = stdout.lines().find(|line| line.contains(" failed"));
        let after = caught
            .and_then(|line| line.split("(after ").nth(1))
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or("-")
            .to_string();
        if let Some(line) = caught {
            println!(
                "planted {bug}: caught: {}",
                line.chars().take(400).collect::<String>()
            );
        } else {
            println!("planted {bug}: NOT caught\n{stdout}");
        }
        rows.push((
            bug,
            what,
            caught.is_some(),
            after,
            started.elapsed().as_secs_f64(),
        ));
    }
    println!();
    println!("| planted bug | what it does | caught | after seeds | seconds |");
    println!("|---|---|---|---:|---:|");
    for (bug, what, caught, after, secs) in &rows {
        println!(
            "| `{bug}` | {what} | {} | {after} | {secs:.1} |",
            if *caught { "yes" } else { "**no**" }
        );
    }
    let missed: Vec<&str> = rows
        .iter()
        .filter(|(_, _, caught, ..)| !caught)
        .map(|(bug, ..)| *bug)
        .collect();
    if !missed.is_empty() {
        bail!("planted bugs not caught: {}", missed.join(", "));
    }
    println!("sim --planted: all {} planted bugs caught", rows.len());
    Ok(())
}
