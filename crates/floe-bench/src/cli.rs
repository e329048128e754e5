//! The command line of the `floe-bench` binary, parsed into a [`Command`] (kept in the
//! library so that it is tested like the rest).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail, ensure};

use crate::Config;
use crate::dbbench::DbBenchOptions;
use crate::dbbench::progress::Display;
use crate::scale::{self, ScaleOptions};

/// The suites the binary can run; `all` runs every one but `scale`, in this order.
pub const SUITES: [&str; 5] = ["dbbench", "memtable", "sstable", "engine", "scale"];

/// The suites `all` runs: `scale` loads 10M keys into each engine and is asked for by name.
const ALL: [&str; 4] = ["dbbench", "memtable", "sstable", "engine"];

/// The usage text of `--help`.
pub const USAGE: &str = "\
floe-bench [SUITE ...] [OPTIONS]

SUITE: dbbench (the default) | memtable | sstable | engine | scale | all (all but scale)

dbbench and scale options:
  --engines a,b        engines to compare: floe, fjall, rocksdb (default floe,fjall;
                       rocksdb needs a build with --features rocksdb)
  --value-kind KIND    random (incompressible, the default), half (compresses to 0.5,
                       as db_bench's default) or text (JSON-like records)
  --compression C      every engine's block compression at every level: none (the
                       default), lz4, zstd or zstd:LEVEL (RocksDB and floe; not fjall)
  --background-writer R  a thread dirties the page cache at R MiB/s (unsynced writes to
                       a file of its own) while dbbench runs, for every engine alike
  --cache-mb N         every engine's block cache in MiB: fjall's cache, RocksDB's block
                       cache, and floe reads tables through a block cache instead of
                       mapping them (default: each engine's own; floe maps)
  --write-buffer SIZE  memtable size of every engine, e.g. 64MiB (default 64MiB)
  --seek-nexts N       entries read after each seek (default 10)
  --dir PATH           where the per-run databases go (default target/bench/tmp)
  --quiet              no progress bars
  --trace-info         a tracing subscriber at INFO formats floe's events (into
                       nothing): what a subscriber costs
dbbench options:
  --workloads a,b      fillseq, fillrandom, overwrite, readrandom, readmissing,
                       seekrandom, readseq, readwhilewriting, fillsync (the
                       default), keyspaces (8 keyspaces: writes, batches, reads),
                       deleterange (reads, delete a tenth of the keys, reads; its
                       two targets where the engine has a range delete),
                       transactions (2-key read-modify-write transactions at low
                       and high contention: commits/s, conflict rate)
  --sync-ops N         fsynced writes per thread in fillsync (default 1000)
  --sync-rounds N      fillsync in N rounds, the engines taking turns (default 4)
scale options (each engine in processes of its own: one loads, one reopens):
  --large              50M keys (unless --keys says otherwise)
  --reads N            operations of each cold-read, warm-read and seek phase (default
                       100k)
  --read-seconds S     each of those phases stops after S seconds (default 60)
  --mixed-minutes M    also a mixed run of M minutes per engine (a reader and a writer),
                       RssAnon sampled every second into a CSV and a chart beside --json
options of every suite:
  --keys N             number of keys, e.g. 1000000 or 1M (default 1M; scale: 10M,
                       and at most 10M without --large)
  --key-size N         key length in bytes, at least 8 (default 16)
  --value-size N       value length in bytes (default 100)
  --threads 1,2,4      thread counts (dbbench: overrides each workload's defaults)
  --seed N             seed of every random choice
  --json PATH          also write the results as JSON there (and an SVG chart beside it)
";

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Command {
    /// Print [`USAGE`] and stop.
    Help,
    /// Run benchmarks (boxed: the arguments are large next to `Help`).
    Run(Box<Args>),
}

/// A benchmark run as the command line describes it.
#[derive(Debug, Clone)]
pub struct Args {
    /// Suite names from [`SUITES`], in order, without repeats.
    pub suites: Vec<String>,
    /// What every suite is asked to do.
    pub config: Config,
    /// What the `dbbench` suite is asked to do, beyond `config`; the `scale` suite takes
    /// its engine settings from here too.
    pub dbbench: DbBenchOptions,
    /// What the `scale` suite is asked to do, beyond `config` and `dbbench`.
    pub scale: ScaleOptions,
    /// Where to write the JSON results, if anywhere.
    pub json: Option<PathBuf>,
    /// Whether a `tracing` subscriber at INFO formats every event (into nothing), to
    /// measure what a subscriber costs (`--trace-info`).
    pub trace_info: bool,
}

/// Parses the arguments that follow the program name.
///
/// # Errors
/// An unknown argument, a flag without its value, or a value that does not parse.
pub fn parse(args: impl IntoIterator<Item = String>) -> anyhow::Result<Command> {
    let mut parsed = Args {
        suites: Vec::new(),
        config: Config::default(),
        dbbench: DbBenchOptions::default(),
        scale: ScaleOptions::default(),
        json: None,
        trace_info: false,
    };
    let mut keys = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Both `--flag value` and `--flag=value` are accepted.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = || -> anyhow::Result<String> {
            match inline.clone() {
                Some(value) => Ok(value),
                None => args.next().with_context(|| format!("{flag} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--keys" => keys = Some(count(&value()?).context("--keys")? as usize),
            "--key-size" => {
                parsed.config.key_size = count(&value()?).context("--key-size")? as usize
            }
            "--value-size" => parsed.config.value_size = size(&value()?).context("--value-size")?,
            "--seed" => parsed.config.seed = value()?.parse().context("--seed")?,
            "--threads" => {
                let threads = list(&value()?, |t| Ok(count(t)? as usize))
                    .context("--threads takes a list like 1,2,4")?;
                ensure!(
                    threads.iter().all(|&t| t > 0),
                    "--threads: thread counts must be at least 1"
                );
                parsed.config.threads.clone_from(&threads);
                parsed.dbbench.threads = Some(threads);
            }
            "--engines" => {
                parsed.dbbench.engines = list(&value()?, str::parse).context("--engines")?
            }
            "--workloads" => {
                parsed.dbbench.workloads = list(&value()?, str::parse).context("--workloads")?
            }
            "--write-buffer" => {
                parsed.dbbench.write_buffer = size(&value()?).context("--write-buffer")?
            }
            "--sync-ops" => parsed.dbbench.sync_ops = count(&value()?).context("--sync-ops")?,
            "--sync-rounds" => {
                parsed.dbbench.sync_rounds =
                    count(&value()?).context("--sync-rounds")?.max(1) as usize
            }
            "--seek-nexts" => {
                parsed.dbbench.seek_nexts = count(&value()?).context("--seek-nexts")? as usize
            }
            "--value-kind" => {
                parsed.config.value_kind = value()?.parse().context("--value-kind")?
            }
            "--background-writer" => {
                parsed.dbbench.background_writer =
                    Some(count(&value()?).context("--background-writer")?)
            }
            "--compression" => {
                parsed.dbbench.compression =
                    crate::dbbench::parse_compression(&value()?).context("--compression")?
            }
            "--cache-mb" => {
                let mib = count(&value()?).context("--cache-mb")?;
                let bytes = mib
                    .checked_mul(1 << 20)
                    .and_then(|bytes| usize::try_from(bytes).ok())
                    .context("--cache-mb is too large")?;
                parsed.dbbench.cache_bytes = Some(bytes);
            }
            "--large" => parsed.scale.large = true,
            "--reads" => parsed.scale.reads = count(&value()?).context("--reads")?,
            "--read-seconds" => {
                parsed.scale.read_time = seconds(&value()?, 1.0).context("--read-seconds")?
            }
            "--mixed-minutes" => {
                parsed.scale.mixed = Some(seconds(&value()?, 60.0).context("--mixed-minutes")?)
            }
            "--dir" => parsed.dbbench.dir = PathBuf::from(value()?),
            "--quiet" => parsed.dbbench.display = Display::Quiet,
            "--trace-info" => parsed.trace_info = true,
            "--json" => parsed.json = Some(PathBuf::from(value()?)),
            "all" => parsed.suites.extend(ALL.iter().map(|s| s.to_string())),
            suite if SUITES.contains(&suite) || scale::CHILD_SUITES.contains(&suite) => {
                parsed.suites.push(suite.to_string())
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if parsed.suites.is_empty() {
        parsed.suites.push("dbbench".to_string());
    }
    let mut seen = Vec::new();
    parsed.suites.retain(|suite| {
        let first = !seen.contains(suite);
        seen.push(suite.clone());
        first
    });
    if let Some(keys) = keys {
        parsed.config.keys = keys;
        parsed.scale.keys = keys;
    } else if parsed.scale.large {
        parsed.scale.keys = scale::LARGE_KEYS;
    }
    ensure!(parsed.config.keys > 0, "--keys must be at least 1");
    ensure!(parsed.scale.reads > 0, "--reads must be at least 1");
    if parsed.suites.iter().any(|s| s == "scale") {
        ensure!(
            parsed.scale.keys <= scale::DEFAULT_KEYS || parsed.scale.large,
            "the scale suite loads more than {} keys only with --large",
            scale::DEFAULT_KEYS
        );
    }
    if let Some(child) = parsed
        .suites
        .iter()
        .find(|s| scale::CHILD_SUITES.contains(&s.as_str()))
    {
        ensure!(
            parsed.suites.len() == 1 && parsed.dbbench.engines.len() == 1,
            "{child} runs alone, on one engine"
        );
    }
    ensure!(
        parsed.config.key_size >= 8,
        "--key-size must be at least 8 so that keys are distinct"
    );
    Ok(Command::Run(Box::new(parsed)))
}

/// Parses a comma-separated list, refusing empty items and repeats.
fn list<T: PartialEq>(
    text: &str,
    item: impl Fn(&str) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        ensure!(!part.is_empty(), "an empty item in {text:?}");
        let value = item(part)?;
        ensure!(!out.contains(&value), "{part:?} is listed twice");
        out.push(value);
    }
    Ok(out)
}

/// A count with an optional decimal suffix: `1000`, `1_000`, `10k`, `1M`, `2G`.
fn count(text: &str) -> anyhow::Result<u64> {
    let cleaned = text.replace('_', "");
    let (digits, scale) = match cleaned.char_indices().last() {
        Some((i, 'k' | 'K')) => (&cleaned[..i], 1_000),
        Some((i, 'm' | 'M')) => (&cleaned[..i], 1_000_000),
        Some((i, 'g' | 'G')) => (&cleaned[..i], 1_000_000_000),
        _ => (cleaned.as_str(), 1),
    };
    let number: u64 = digits
        .parse()
        .with_context(|| format!("{text:?} is not a count"))?;
    number
        .checked_mul(scale)
        .with_context(|| format!("{text:?} is too large"))
}

/// A positive, finite number of `unit` seconds (`1.0` for seconds, `60.0` for minutes),
/// decimals allowed: `0.5`, `90`.
fn seconds(text: &str, unit: f64) -> anyhow::Result<Duration> {
    let number: f64 = text
        .parse()
        .with_context(|| format!("{text:?} is not a number"))?;
    ensure!(
        number.is_finite() && number > 0.0,
        "{text:?} is not a positive number"
    );
    Duration::try_from_secs_f64(number * unit).with_context(|| format!("{text:?} is too large"))
}

/// A size in bytes with an optional binary suffix: `4096`, `64K`, `64KiB`, `64M`, `1GiB`.
fn size(text: &str) -> anyhow::Result<usize> {
    let cleaned = text.replace('_', "");
    let lower = cleaned.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches("ib").trim_end_matches('b');
    let (digits, shift) = match trimmed.char_indices().last() {
        Some((i, 'k')) => (&trimmed[..i], 10),
        Some((i, 'm')) => (&trimmed[..i], 20),
        Some((i, 'g')) => (&trimmed[..i], 30),
        _ => (trimmed, 0),
    };
    let number: usize = digits
        .parse()
        .with_context(|| format!("{text:?} is not a size"))?;
    number
        .checked_mul(1 << shift)
        .with_context(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dbbench::{EngineKind, Workload};

    fn run(args: &[&str]) -> anyhow::Result<Args> {
        match parse(args.iter().map(|a| a.to_string()))? {
            Command::Run(args) => Ok(*args),
            Command::Help => bail!("help"),
        }
    }

    #[test]
    fn no_arguments_is_dbbench_of_floe_and_fjall_on_a_million_keys() {
        let args = run(&[]).expect("parses");
        assert_eq!(args.suites, ["dbbench"]);
        assert_eq!(args.config.keys, 1_000_000);
        assert_eq!(args.config.key_size, 16);
        assert_eq!(args.config.value_size, 100);
        assert_eq!(args.dbbench.engines, [EngineKind::Floe, EngineKind::Fjall]);
        assert_eq!(args.dbbench.workloads, Workload::DEFAULT);
        assert_eq!(args.dbbench.write_buffer, 64 << 20);
        assert_eq!(args.dbbench.threads, None);
        assert_eq!(args.dbbench.cache_bytes, None);
        assert_eq!(args.config.value_kind, crate::values::ValueKind::Random);
        assert_eq!(args.scale, ScaleOptions::default());
        assert!(args.json.is_none());
    }

    #[test]
    fn flags_set_what_they_name() {
        let args = run(&[
            "--keys",
            "10k",
            "--value-size=256",
            "--threads",
            "1,3",
            "--engines",
            "fjall,floe",
            "--workloads",
            "readrandom,fillsync",
            "--write-buffer",
            "4MiB",
            "--sync-ops",
            "50",
            "--sync-rounds",
            "2",
            "--json",
            "out/x.json",
            "--quiet",
            "--key-size",
            "24",
            "--seek-nexts",
            "5",
            "--seed",
            "9",
        ])
        .expect("parses");
        assert_eq!(args.config.keys, 10_000);
        assert_eq!(args.config.value_size, 256);
        assert_eq!(args.config.key_size, 24);
        assert_eq!(args.config.seed, 9);
        assert_eq!(args.config.threads, [1, 3]);
        assert_eq!(args.dbbench.threads, Some(vec![1, 3]));
        assert_eq!(args.dbbench.engines, [EngineKind::Fjall, EngineKind::Floe]);
        assert_eq!(
            args.dbbench.workloads,
            [Workload::ReadRandom, Workload::FillSync]
        );
        assert_eq!(args.dbbench.write_buffer, 4 << 20);
        assert_eq!(args.dbbench.sync_ops, 50);
        assert_eq!(args.dbbench.sync_rounds, 2);
        assert_eq!(args.dbbench.seek_nexts, 5);
        assert_eq!(args.dbbench.display, Display::Quiet);
        assert_eq!(args.json, Some(PathBuf::from("out/x.json")));
    }

    #[test]
    fn compression_flag_parses_each_codec_and_refuses_others() {
        use ::floe::Compression;

        for (text, want) in [
            ("none", Compression::None),
            ("lz4", Compression::Lz4),
            ("zstd", Compression::Zstd(3)),
            ("zstd:-2", Compression::Zstd(-2)),
        ] {
            let args = run(&["--compression", text]).expect("parses");
            assert_eq!(args.dbbench.compression, want);
            assert_eq!(args.dbbench.engine_options(false).compression, want);
            assert_eq!(
                crate::dbbench::parse_compression(&crate::dbbench::compression_name(want)).unwrap(),
                want
            );
        }
        assert_eq!(
            run(&[]).expect("parses").dbbench.compression,
            Compression::None
        );
        for bad in ["snappy", "zstd:x", "lz4:1"] {
            assert!(run(&["--compression", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn scale_and_value_flags() {
        use crate::values::ValueKind;

        let args = run(&[
            "scale",
            "--value-kind",
            "half",
            "--cache-mb",
            "64",
            "--reads",
            "5k",
            "--read-seconds",
            "2.5",
            "--mixed-minutes=0.5",
        ])
        .expect("parses");
        assert_eq!(args.suites, ["scale"]);
        assert_eq!(args.config.value_kind, ValueKind::Half);
        assert_eq!(args.dbbench.cache_bytes, Some(64 << 20));
        assert_eq!(
            args.dbbench.engine_options(false).cache_bytes,
            Some(64 << 20)
        );
        assert_eq!(args.scale.keys, scale::DEFAULT_KEYS);
        assert_eq!(args.config.keys, 1_000_000, "the other suites keep theirs");
        assert_eq!(args.scale.reads, 5000);
        assert_eq!(args.scale.read_time, Duration::from_millis(2500));
        assert_eq!(args.scale.mixed, Some(Duration::from_secs(30)));

        let large = run(&["scale", "--large"]).expect("parses");
        assert_eq!(large.scale.keys, scale::LARGE_KEYS);
        let small = run(&["scale", "--keys", "2000", "--large"]).expect("parses");
        assert_eq!((small.scale.keys, small.config.keys), (2000, 2000));
        assert!(
            run(&["scale", "--keys", "20M"]).is_err(),
            "20M needs --large"
        );
        assert!(run(&["scale", "--keys", "20M", "--large"]).is_ok());
        assert!(
            run(&["dbbench", "--keys", "20M"]).is_ok(),
            "only scale is held back"
        );
        for bad in [
            &["--value-kind", "zeros"][..],
            &["--cache-mb", "lots"],
            &["--read-seconds", "0"],
            &["--mixed-minutes", "-1"],
            &["--mixed-minutes", "inf"],
            &["--reads", "0"],
            &["scale-load", "--engines", "floe,fjall"],
            &["scale-reads", "dbbench", "--engines", "floe"],
            &["scale-load", "scale-reads", "--engines", "floe"],
        ] {
            assert!(run(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(run(&["scale-load", "--engines", "fjall"]).is_ok());
        assert!(run(&["scale-reads", "--engines", "floe"]).is_ok());
    }

    #[test]
    fn suites_by_name_and_all() {
        assert_eq!(
            run(&["memtable", "sstable"]).expect("parses").suites,
            ["memtable", "sstable"]
        );
        assert_eq!(
            run(&["engine", "all"]).expect("parses").suites,
            ["engine", "dbbench", "memtable", "sstable"]
        );
        assert!(matches!(parse(["--help".to_string()]), Ok(Command::Help)));
    }

    #[test]
    fn bad_arguments_are_refused() {
        for bad in [
            &["--keys"][..],
            &["--keys", "many"],
            &["--keys", "0"],
            &["--key-size", "4"],
            &["--threads", "1,,2"],
            &["--threads", "0"],
            &["--engines", "leveldb"],
            &["--engines", "floe,floe"],
            &["--workloads", "fillrandomly"],
            &["--write-buffer", "lots"],
            &["bogus"],
        ] {
            assert!(run(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            run(&["--engines", "rocksdb"]).is_ok(),
            cfg!(feature = "rocksdb")
        );
    }

    #[test]
    fn counts_and_sizes() {
        assert_eq!(count("1_000").expect("count"), 1000);
        assert_eq!(count("2M").expect("count"), 2_000_000);
        assert!(count("99999999999G").is_err());
        assert_eq!(size("64MiB").expect("size"), 64 << 20);
        assert_eq!(size("64m").expect("size"), 64 << 20);
        assert_eq!(size("32KB").expect("size"), 32 << 10);
        assert_eq!(size("100").expect("size"), 100);
        assert_eq!(size("1GiB").expect("size"), 1 << 30);
    }
}
