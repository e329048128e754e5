//! The `floe-bench` binary: runs the chosen workload suites, prints a table and writes
//! the measurements as JSON. `cargo xtask bench` is the usual way to run it.
//!
//! ```text
//! floe-bench [SUITE ...] [--keys N] [--value-size N] [--threads 1,2,4] [--seed N] [--json PATH]
//! SUITE: memtable | sstable | engine | all (default: all)
//! ```

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use floe_bench::{Config, Measurement};

type Suite = fn(&Config) -> anyhow::Result<Vec<Measurement>>;

const SUITES: [(&str, Suite); 3] = [
    ("memtable", floe_bench::memtable::run),
    ("sstable", floe_bench::sstable::run),
    ("engine", floe_bench::engine::run),
];

struct Args {
    suites: Vec<String>,
    config: Config,
    json: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args { suites: Vec::new(), config: Config::default(), json: None };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--keys" => args.config.keys = value("--keys")?.parse().context("--keys")?,
            "--value-size" => args.config.value_size = value("--value-size")?.parse().context("--value-size")?,
            "--seed" => args.config.seed = value("--seed")?.parse().context("--seed")?,
            "--threads" => {
                args.config.threads = value("--threads")?
                    .split(',')
                    .map(|t| t.trim().parse::<usize>().context("--threads takes a list like 1,2,4"))
                    .collect::<anyhow::Result<_>>()?;
            }
            "--json" => args.json = Some(PathBuf::from(value("--json")?)),
            "-h" | "--help" => {
                println!(
                    "floe-bench [memtable|sstable|engine|all ...] [--keys N] [--value-size N] \
                     [--threads 1,2,4] [--seed N] [--json PATH]"
                );
                std::process::exit(0);
            }
            "all" => args.suites.extend(SUITES.iter().map(|(name, _)| name.to_string())),
            suite if SUITES.iter().any(|(name, _)| *name == suite) => args.suites.push(suite.to_string()),
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if args.suites.is_empty() {
        args.suites.extend(SUITES.iter().map(|(name, _)| name.to_string()));
    }
    Ok(args)
}

fn print_table(measurements: &[Measurement]) {
    println!(
        "{:<22} {:<18} {:>7} {:>14} {:>10} {:>28}  notes",
        "workload", "subject", "threads", "ops/s", "B/entry", "p50 / p99 / p99.9 (ns)"
    );
    for m in measurements {
        let bytes = m.bytes_per_entry.map_or_else(|| "-".to_string(), |b| format!("{b:.1}"));
        let latency = m.latency_ns.map_or_else(|| "-".to_string(), |[p50, p99, p999]| format!("{p50} / {p99} / {p999}"));
        let notes: Vec<String> = m.notes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "{:<22} {:<18} {:>7} {:>14.0} {:>10} {:>28}  {}",
            m.workload,
            m.subject,
            m.threads,
            m.ops_per_sec(),
            bytes,
            latency,
            notes.join(" ")
        );
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let mut all = Vec::new();
    for suite in &args.suites {
        let (_, run) = SUITES.iter().find(|(name, _)| name == suite).expect("suite names were checked");
        eprintln!("== {suite} ({} keys) ==", args.config.keys);
        let measurements = run(&args.config).with_context(|| format!("suite {suite}"))?;
        print_table(&measurements);
        println!();
        all.extend(measurements);
    }
    if let Some(path) = args.json {
        let report = serde_json::json!({
            "host": std::env::var("FLOE_BENCH_HOST").unwrap_or_default(),
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "git_revision": std::env::var("FLOE_BENCH_REV").unwrap_or_default(),
            "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "config": args.config,
            "measurements": all,
        });
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("results written to {}", path.display());
    }
    Ok(())
}
