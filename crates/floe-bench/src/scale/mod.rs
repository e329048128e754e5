//! The `scale` suite: each engine loaded with many keys (10M by default) and measured for
//! space on disk, open time, cold and warm point reads, seeks, peak resident memory per
//! phase and, if asked, a long mixed run, each engine in a process of its own.
//!
//! The parent ([`run`]) starts the `floe-bench` binary twice per engine, with the run's
//! settings as flags ([`child_args`]) and a run directory of the engine's own, and reads
//! the one JSON line each child prints. The first, the hidden `scale-load` suite
//! ([`child::load`]), loads the keys, waits for the compactions the load left, closes the
//! engine and measures its directory. The second, `scale-reads` ([`child::reopen`]), drops
//! the directory from the page cache ([`page_cache`]), reopens it (the cold open), reads
//! random keys twice (cold, then warm), seeks, closes and reopens (the warm open), and runs
//! the mixed phase. Processes of their own keep one engine's heap, mappings and page cache
//! (its directory is removed before the next engine starts) from counting against another,
//! and the reads from counting what the load's heap kept. A sampler thread ([`memory`])
//! keeps each phase's peak `RssAnon` and `RssFile`. [`table`] turns the runs into a
//! markdown table with ratios, measurements for the JSON results, and the mixed run's
//! samples as CSV and a chart.

pub mod child;
pub mod memory;
pub mod page_cache;
pub mod table;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, ensure};

pub use self::child::EngineRun;
pub use self::table::ScaleReport;
use crate::Config;
use crate::dbbench::DbBenchOptions;
use crate::dbbench::progress::Display;

/// The keys a scale run loads unless `--keys` says otherwise.
pub const DEFAULT_KEYS: usize = 10_000_000;
/// The keys of `--large`, and the most a run loads without it.
pub const LARGE_KEYS: usize = 50_000_000;

/// The hidden suite of the child that loads an engine ([`child::load`]).
pub const LOAD_SUITE: &str = "scale-load";
/// The hidden suite of the child that reopens and reads it ([`child::reopen`]).
pub const READS_SUITE: &str = "scale-reads";
/// Both hidden suites.
pub const CHILD_SUITES: [&str; 2] = [LOAD_SUITE, READS_SUITE];

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

/// Runs the suite: two child processes per engine of `options.engines`, in order, each
/// engine on a run directory of its own under `options.dir`, removed once its reading
/// child is done.
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
    std::fs::create_dir_all(&options.dir)
        .with_context(|| format!("creating {}", options.dir.display()))?;
    let mut runs = Vec::new();
    for &kind in &options.engines {
        let dir = tempfile::Builder::new()
            .prefix(&format!("scale-{kind}-"))
            .tempdir_in(&options.dir)
            .with_context(|| format!("creating a directory under {}", options.dir.display()))?;
        let child = DbBenchOptions {
            engines: vec![kind],
            dir: dir.path().to_path_buf(),
            ..options.clone()
        };
        // Whatever an earlier child left dirty is written back before each one starts.
        crate::dbbench::settle_disk();
        let loaded: child::Loaded = run_child(&exe, config, &child, scale, LOAD_SUITE)?;
        crate::dbbench::settle_disk();
        let reopened: child::Reopened = run_child(&exe, config, &child, scale, READS_SUITE)?;
        dir.close()
            .with_context(|| format!("removing the {kind} directory"))?;
        let entry = (config.key_size + config.value_size) as u64;
        runs.push(EngineRun::new(
            kind.name(),
            scale.keys as u64,
            entry,
            loaded,
            reopened,
        ));
    }
    Ok(ScaleReport {
        runs,
        value_kind: config.value_kind,
        seek_nexts: options.seek_nexts,
    })
}

/// Runs `exe` as the child `suite` ([`child_args`]) and returns what it printed on its
/// last line that starts a JSON object.
fn run_child<T: serde::de::DeserializeOwned>(
    exe: &Path,
    config: &Config,
    options: &DbBenchOptions,
    scale: &ScaleOptions,
    suite: &str,
) -> anyhow::Result<T> {
    let args = child_args(config, options, scale, suite)?;
    let kind = options
        .engines
        .first()
        .map_or("no engine", |kind| kind.name());
    let output = Command::new(exe)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {} for {kind}", exe.display()))?;
    ensure!(
        output.status.success(),
        "{suite} of {kind} failed ({}); its error is above",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .with_context(|| format!("{suite} of {kind} printed no result"))?;
    serde_json::from_str(line).with_context(|| format!("reading the result of {suite} of {kind}"))
}

/// The command line of the child `suite` ([`LOAD_SUITE`] or [`READS_SUITE`]) for the one
/// engine of `options.engines`: the suite and every setting the child needs, written so
/// that [`crate::cli::parse`] reads back the same values.
///
/// # Errors
/// Not exactly one engine, or a cache size that is not a whole number of MiB
/// (`--cache-mb` counts in MiB).
pub fn child_args(
    config: &Config,
    options: &DbBenchOptions,
    scale: &ScaleOptions,
    suite: &str,
) -> anyhow::Result<Vec<String>> {
    let &[kind] = options.engines.as_slice() else {
        anyhow::bail!("a scale child runs exactly one engine");
    };
    let mut args: Vec<String> = vec![suite.to_string()];
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
    flag(
        "--compression",
        crate::dbbench::compression_name(options.compression),
    );
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
