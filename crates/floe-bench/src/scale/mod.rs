//! The `scale` suite: each engine loaded with many keys (10M by default) and measured for
//! space on disk, open time, cold and warm point reads, seeks, peak resident memory per
//! phase and, if asked, a long mixed run, each engine in a process of its own.
//!
//! The parent ([`run`]) starts the `floe-bench` binary once per engine with the hidden
//! `scale-child` suite and the run's settings as flags ([`child_args`]), and reads the one
//! JSON line the child prints ([`child::EngineRun`]). A process per engine keeps one
//! engine's heap, mappings and page cache (its directory is removed when it ends) from
//! counting against the next. The child ([`child::run_engine`]) loads the keys, waits for
//! the compactions the load left, closes the engine and measures its directory, drops the
//! directory from the page cache ([`page_cache`]), reopens it (the cold open), reads random
//! keys twice (cold, then warm), seeks, closes and reopens (the warm open), and runs the
//! mixed phase. A sampler thread ([`memory`]) keeps each phase's peak `RssAnon` and
//! `RssFile`. [`table`] turns the runs into a markdown table with ratios, measurements for
//! the JSON results, and the mixed run's samples as CSV and a chart.

pub mod child;
pub mod memory;
pub mod page_cache;
pub mod table;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, ensure};

pub use self::child::EngineRun;
pub use self::table::ScaleReport;
use crate::Config;
use crate::dbbench::progress::Display;
use crate::dbbench::{DbBenchOptions, EngineKind};

/// The keys a scale run loads unless `--keys` says otherwise.
pub const DEFAULT_KEYS: usize = 10_000_000;
/// The keys of `--large`, and the most a run loads without it.
pub const LARGE_KEYS: usize = 50_000_000;

/// The name of the hidden suite a child runs.
pub const CHILD_SUITE: &str = "scale-child";

/// How the `scale` suite runs, beyond [`Config`] (key and value sizes, value kind, seed)
/// and the engine settings of [`DbBenchOptions`] (engines, write buffer, cache, seek
/// length, directory, display).
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleOptions {
    /// Keys loaded into each engine ([`DEFAULT_KEYS`] by default, [`LARGE_KEYS`] with
    /// `--large`; more than [`DEFAULT_KEYS`] only with `--large`).
    pub keys: usize,
    /// Whether `--large` was given: it allows more than [`DEFAULT_KEYS`] keys.
    pub large: bool,
    /// Operations in each of the cold-read, warm-read and seek phases, at most (100,000 by
    /// default).
    pub reads: u64,
    /// How long each of those phases runs at most (60 s by default), should the
    /// operations take longer.
    pub read_time: Duration,
    /// The length of the mixed read/write run (`--mixed-minutes`; none by default).
    pub mixed: Option<Duration>,
    /// The `floe-bench` binary the children are started from (`None`: this process's own
    /// executable, which is the binary when the suite runs from it).
    pub exe: Option<PathBuf>,
}

impl Default for ScaleOptions {
    fn default() -> ScaleOptions {
        ScaleOptions {
            keys: DEFAULT_KEYS,
            large: false,
            reads: 100_000,
            read_time: Duration::from_secs(60),
            mixed: None,
            exe: None,
        }
    }
}

/// Runs the suite: one child process per engine of `options.engines`, in order.
///
/// # Errors
/// Options out of range, a child that cannot be started or fails (its error is on the
/// inherited stderr), or one whose output is not the expected JSON line.
pub fn run(
    config: &Config,
    options: &DbBenchOptions,
    scale: &ScaleOptions,
) -> anyhow::Result<ScaleReport> {
    ensure!(scale.keys > 0, "--keys must be at least 1");
    ensure!(
        scale.keys <= DEFAULT_KEYS || scale.large,
        "the scale suite loads more than {DEFAULT_KEYS} keys only with --large"
    );
    ensure!(!options.engines.is_empty(), "no engines chosen");
    let exe = match &scale.exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().context("finding the floe-bench binary")?,
    };
    let mut runs = Vec::new();
    for &kind in &options.engines {
        // Whatever the previous child left dirty is written back before this one starts.
        crate::dbbench::settle_disk();
        let args = child_args(config, options, scale, kind)?;
        let output = Command::new(&exe)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("starting {} for {kind}", exe.display()))?;
        ensure!(
            output.status.success(),
            "the scale run of {kind} failed ({}); its error is above",
            output.status
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .rev()
            .find(|line| line.starts_with('{'))
            .with_context(|| format!("the scale run of {kind} printed no result"))?;
        let run: EngineRun = serde_json::from_str(line)
            .with_context(|| format!("reading the result of the scale run of {kind}"))?;
        runs.push(run);
    }
    Ok(ScaleReport {
        runs,
        value_kind: config.value_kind,
        seek_nexts: options.seek_nexts,
    })
}

/// The command line of the child that runs `kind`: the hidden suite and every setting the
/// child needs, written so that [`crate::cli::parse`] reads back the same values.
///
/// # Errors
/// A cache size that is not a whole number of MiB (`--cache-mb` counts in MiB).
pub fn child_args(
    config: &Config,
    options: &DbBenchOptions,
    scale: &ScaleOptions,
    kind: EngineKind,
) -> anyhow::Result<Vec<String>> {
    let mut args: Vec<String> = vec![CHILD_SUITE.to_string()];
    let mut flag = |name: &str, value: String| {
        args.push(name.to_string());
        args.push(value);
    };
    flag("--engines", kind.name().to_string());
    flag("--keys", scale.keys.to_string());
    flag("--key-size", config.key_size.to_string());
    flag("--value-size", config.value_size.to_string());
    flag("--value-kind", config.value_kind.name().to_string());
    flag("--seed", config.seed.to_string());
    flag("--write-buffer", options.write_buffer.to_string());
    flag("--seek-nexts", options.seek_nexts.to_string());
    flag("--dir", options.dir.display().to_string());
    flag("--reads", scale.reads.to_string());
    // `Display` of an `f64` is the shortest text that parses back to the same value.
    flag("--read-seconds", scale.read_time.as_secs_f64().to_string());
    if let Some(bytes) = options.cache_bytes {
        ensure!(
            bytes % (1 << 20) == 0,
            "a cache of {bytes} bytes is not a whole number of MiB"
        );
        flag("--cache-mb", (bytes >> 20).to_string());
    }
    if let Some(mixed) = scale.mixed {
        flag("--mixed-minutes", (mixed.as_secs_f64() / 60.0).to_string());
    }
    if scale.large {
        args.push("--large".to_string());
    }
    if options.display == Display::Quiet {
        args.push("--quiet".to_string());
    }
    Ok(args)
}

#[cfg(test)]
mod tests;
