//! `cargo xtask bench`: builds `floe-bench` in release, runs it and keeps the JSON results
//! (with host, git revision and time) under `target/bench/`.

use std::time::{SystemTime, UNIX_EPOCH};

use std::process::Command;

use crate::util::{cargo, output, project_root, run as run_command};

/// Runs the benchmark binary with `args` (suites and flags, see `floe-bench --help`).
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let root = project_root();
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let json = root
        .join("target")
        .join("bench")
        .join(format!("bench-{stamp}.json"));
    let revision = output(
        std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(&root),
    )
    .unwrap_or_else(|| "unknown".to_string());
    let dirty = output(
        std::process::Command::new("git")
            .args(["status", "--porcelain"])
            .current_dir(&root),
    )
    .is_some_and(|s| !s.is_empty());
    let host = output(&mut std::process::Command::new("hostname"))
        .unwrap_or_else(|| "unknown".to_string());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();

    let mut command = cargo();
    command.args([
        "run",
        "--release",
        "--quiet",
        "--package",
        "floe-bench",
        "--bin",
        "floe-bench",
    ]);
    if wants_rocksdb(args) {
        ensure_libclang()?;
        command.args(["--features", "floe-bench/rocksdb"]);
    }
    command
        .arg("--")
        .args(args)
        .arg("--json")
        .arg(&json)
        .env(
            "FLOE_BENCH_REV",
            if dirty {
                format!("{revision}-dirty")
            } else {
                revision
            },
        )
        .env("FLOE_BENCH_HOST", format!("{host} ({cpu})"));
    run_command(&mut command)
}

/// Whether the command line names RocksDB among the engines (`--engines a,rocksdb` or
/// `--engines=a,rocksdb`).
fn wants_rocksdb(args: &[String]) -> bool {
    let mut engines = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--engines" {
            engines.extend(it.next().cloned());
        } else if let Some(list) = arg.strip_prefix("--engines=") {
            engines.push(list.to_string());
        }
    }
    engines
        .iter()
        .flat_map(|list| list.split(','))
        .any(|engine| engine.trim() == "rocksdb")
}

/// The `rocksdb` crate compiles RocksDB's C++ and generates bindings with libclang:
/// install clang and libclang from Debian's packages when they are missing.
fn ensure_libclang() -> anyhow::Result<()> {
    let have_clang = output(Command::new("clang").arg("--version")).is_some();
    let have_libclang = output(Command::new("sh").args([
        "-c",
        "ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && echo yes",
    ]))
    .is_some_and(|s| s == "yes");
    if have_clang && have_libclang {
        return Ok(());
    }
    eprintln!(
        "RocksDB needs clang and libclang; installing them (this build then takes about 20 minutes)"
    );
    run_command(Command::new("apt-get").arg("update"))?;
    run_command(Command::new("apt-get").args(["install", "-y", "clang", "libclang-dev", "g++"]))
}

#[cfg(test)]
mod tests {
    use super::wants_rocksdb;

    #[test]
    fn rocksdb_is_detected_in_either_flag_form() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(wants_rocksdb(&args(&["--engines", "floe,rocksdb"])));
        assert!(wants_rocksdb(&args(&["--keys", "10", "--engines=rocksdb"])));
        assert!(!wants_rocksdb(&args(&["--engines", "floe,fjall"])));
        assert!(!wants_rocksdb(&args(&["rocksdb"])));
    }
}
