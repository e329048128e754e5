//! The command line of the `floe-bench` binary, parsed into a [`Command`] (kept in the
//! library so that it is tested like the rest).

use std::path::PathBuf;

use anyhow::{Context, bail, ensure};

use crate::Config;
use crate::dbbench::DbBenchOptions;
use crate::dbbench::progress::Display;

/// The suites the binary can run, in the order `all` runs them.
pub const SUITES: [&str; 4] = ["dbbench", "memtable", "sstable", "engine"];

/// The usage text of `--help`.
pub const USAGE: &str = "\
floe-bench [SUITE ...] [OPTIONS]

SUITE: dbbench (the default) | memtable | sstable | engine | all

dbbench options:
  --engines a,b        engines to compare: floe, fjall, rocksdb (default floe,fjall;
                       rocksdb needs a build with --features rocksdb)
  --workloads a,b      fillseq, fillrandom, overwrite, readrandom, readmissing,
                       seekrandom, readseq, readwhilewriting, fillsync (the
                       default), keyspaces (8 keyspaces: writes, batches, reads),
                       deleterange (reads, delete a tenth of the keys, reads; its
                       two targets where the engine has a range delete),
                       transactions (2-key read-modify-write transactions at low
                       and high contention: commits/s, conflict rate)
  --write-buffer SIZE  memtable size of every engine, e.g. 64MiB (default 64MiB)
  --sync-ops N         fsynced writes per thread in fillsync (default 1000)
  --sync-rounds N      fillsync in N rounds, the engines taking turns (default 4)
  --seek-nexts N       entries read after each seek in seekrandom (default 10)
  --dir PATH           where the per-run databases go (default target/bench/tmp)
  --quiet              no progress bars
options of every suite:
  --keys N             number of keys, e.g. 1000000 or 1M (default 1M)
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
    /// What the `dbbench` suite is asked to do, beyond `config`.
    pub dbbench: DbBenchOptions,
    /// Where to write the JSON results, if anywhere.
    pub json: Option<PathBuf>,
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
        json: None,
    };
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
            "--keys" => parsed.config.keys = count(&value()?).context("--keys")? as usize,
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
            "--dir" => parsed.dbbench.dir = PathBuf::from(value()?),
            "--quiet" => parsed.dbbench.display = Display::Quiet,
            "--json" => parsed.json = Some(PathBuf::from(value()?)),
            "all" => parsed.suites.extend(SUITES.iter().map(|s| s.to_string())),
            suite if SUITES.contains(&suite) => parsed.suites.push(suite.to_string()),
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
    ensure!(parsed.config.keys > 0, "--keys must be at least 1");
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
