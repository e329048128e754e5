//! The `floe-bench` binary: runs the chosen suites, prints a table (and the ratios of floe
//! to the other engines), and writes the measurements as JSON with an SVG chart beside it.
//! `cargo xtask bench` is the usual way to run it; `floe-bench --help` lists the flags.
//! The `scale` suite starts this binary again, twice per engine, with the hidden
//! `scale-load` and `scale-reads` suites, each of which prints its results as one JSON
//! line.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use floe_bench::cli::{self, Args, Command};
use floe_bench::dbbench::EngineKind;
use floe_bench::{Measurement, chart, report};

fn run_suite(name: &str, args: &Args) -> anyhow::Result<Vec<Measurement>> {
    match name {
        "dbbench" => floe_bench::dbbench::run(&args.config, &args.dbbench),
        "memtable" => floe_bench::memtable::run(&args.config),
        "sstable" => floe_bench::sstable::run(&args.config),
        "engine" => floe_bench::engine::run(&args.config),
        other => anyhow::bail!("unknown suite {other:?}"),
    }
}

fn main() -> anyhow::Result<()> {
    let args = match cli::parse(std::env::args().skip(1))? {
        Command::Help => {
            print!("{}", cli::USAGE);
            return Ok(());
        }
        Command::Run(args) => args,
    };
    if args.trace_info {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(std::io::sink)
            .init();
    }
    // The hidden suites of the scale suite's children print one JSON line and nothing else.
    let (config, dbbench, scale) = (&args.config, &args.dbbench, &args.scale);
    if args
        .suites
        .iter()
        .any(|s| s == floe_bench::scale::LOAD_SUITE)
    {
        let loaded = floe_bench::scale::child::load(config, dbbench, scale)?;
        println!("{}", serde_json::to_string(&loaded)?);
        return Ok(());
    }
    if args
        .suites
        .iter()
        .any(|s| s == floe_bench::scale::READS_SUITE)
    {
        let reopened = floe_bench::scale::child::reopen(config, dbbench, scale)?;
        println!("{}", serde_json::to_string(&reopened)?);
        return Ok(());
    }
    let mut all = Vec::new();
    for suite in &args.suites {
        if suite == "scale" {
            all.extend(run_scale(&args)?);
            continue;
        }
        if suite == "dbbench" {
            let engines: Vec<&str> = args.dbbench.engines.iter().map(|e| e.name()).collect();
            eprintln!(
                "== dbbench: {} on {} keys of {} + {} bytes, write buffer {} bytes ==",
                engines.join(", "),
                args.config.keys,
                args.config.key_size,
                args.config.value_size,
                args.dbbench.write_buffer
            );
        } else {
            eprintln!("== {suite} ({} keys) ==", args.config.keys);
        }
        let measurements = run_suite(suite, &args).with_context(|| format!("suite {suite}"))?;
        println!("{}", report::table(&measurements));
        let targets = report::targets(&measurements);
        if !targets.is_empty() {
            println!("{}", report::target_table(&targets));
        }
        if suite == "dbbench" {
            for other in args
                .dbbench
                .engines
                .iter()
                .filter(|&&e| e != EngineKind::Floe)
            {
                let ratios = report::ratios(&measurements, "floe", other.name());
                if !ratios.is_empty() {
                    println!("{}", report::ratio_table(&ratios, "floe", other.name()));
                }
            }
        }
        all.extend(measurements);
    }
    if let Some(path) = &args.json {
        let ratios: Vec<_> = args
            .dbbench
            .engines
            .iter()
            .filter(|&&e| e != EngineKind::Floe)
            .map(|other| {
                (
                    format!("floe/{}", other.name()),
                    report::ratios(&all, "floe", other.name()),
                )
            })
            .filter(|(_, ratios)| !ratios.is_empty())
            .collect();
        let report = serde_json::json!({
            "host": std::env::var("FLOE_BENCH_HOST").unwrap_or_default(),
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "git_revision": revision().unwrap_or_default(),
            "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "suites": args.suites,
            "config": args.config,
            "dbbench": {
                "engines": args.dbbench.engines.iter().map(|e| e.name()).collect::<Vec<_>>(),
                "workloads": args.dbbench.workloads.iter().map(|w| w.name()).collect::<Vec<_>>(),
                "write_buffer": args.dbbench.write_buffer,
                "sync_ops_per_thread": args.dbbench.sync_ops,
                "sync_rounds": args.dbbench.sync_rounds,
                "seek_nexts": args.dbbench.seek_nexts,
                "cache_bytes": args.dbbench.cache_bytes,
            },
            "scale": args.suites.iter().any(|s| s == "scale").then(|| serde_json::json!({
                "keys": args.scale.keys,
                "reads": args.scale.reads,
                "read_seconds": args.scale.read_time.as_secs_f64(),
                "mixed_seconds": args.scale.mixed.map(|d| d.as_secs_f64()),
            })),
            "measurements": all,
            "ratios": ratios.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            "targets": report::targets(&all),
        });
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("results written to {}", path.display());
        let dbbench: Vec<Measurement> = all
            .iter()
            .filter(|m| !m.workload.contains('/'))
            .cloned()
            .collect();
        let charted = if dbbench.is_empty() { &all } else { &dbbench };
        let title = format!(
            "floe-bench {} ({} keys, rev {})",
            args.suites.join(" "),
            args.config.keys,
            revision().unwrap_or_else(|| "unknown".to_string())
        );
        let svg_path = path.with_extension("svg");
        std::fs::write(&svg_path, chart::svg(charted, &title))
            .with_context(|| format!("writing {}", svg_path.display()))?;
        eprintln!("chart written to {}", svg_path.display());
    }
    Ok(())
}

/// The `scale` suite: runs it, prints its table, writes the mixed run's samples (CSV and
/// chart) beside the JSON results or else into the run directory, and returns its
/// measurements.
fn run_scale(args: &Args) -> anyhow::Result<Vec<Measurement>> {
    let engines: Vec<&str> = args.dbbench.engines.iter().map(|e| e.name()).collect();
    eprintln!(
        "== scale: {} on {} keys of {} + {} bytes ({} values) ==",
        engines.join(", "),
        args.scale.keys,
        args.config.key_size,
        args.config.value_size,
        args.config.value_kind,
    );
    let report =
        floe_bench::scale::run(&args.config, &args.dbbench, &args.scale).context("suite scale")?;
    println!("{}", report.markdown());
    let base: PathBuf = match &args.json {
        Some(json) => json.with_extension(""),
        None => args.dbbench.dir.join("scale"),
    };
    let beside = |suffix: &str| -> PathBuf {
        let mut name = base.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        base.with_file_name(name)
    };
    if let Some(csv) = report.mixed_csv() {
        write(&beside("-mixed-rss.csv"), csv.as_bytes())?;
        let title = format!(
            "RssAnon during the mixed run ({} keys, rev {})",
            args.scale.keys,
            revision().unwrap_or_else(|| "unknown".to_string())
        );
        if let Some(svg) = report.mixed_svg(&title) {
            write(&beside("-mixed-rss.svg"), svg.as_bytes())?;
        }
    }
    Ok(report.measurements())
}

/// Writes `bytes` to `path`, creating its directory, and says so on stderr.
fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("written to {}", path.display());
    Ok(())
}

/// The git revision the results belong to: `FLOE_BENCH_REV` as `cargo xtask bench` sets
/// it, else what `git rev-parse --short HEAD` says in the working directory (when the
/// binary is run directly), else `None`.
fn revision() -> Option<String> {
    if let Ok(rev) = std::env::var("FLOE_BENCH_REV") {
        return Some(rev);
    }
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    let rev = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (output.status.success() && !rev.is_empty()).then_some(rev)
}
