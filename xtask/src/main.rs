//! `cargo xtask`: the project's automation, one module per subcommand.
//!
//! ```text
//! cargo xtask bench [ARGS...]   benchmark workloads (see `cargo xtask bench --help`)
//! cargo xtask loom              run the loom models of every lock-free protocol
//! cargo xtask fuzz [SECONDS]    smoke-run every cargo-fuzz target (installs cargo-fuzz on nightly)
//! cargo xtask miri              the tests of the crates with unsafe code under Miri (nightly)
//! cargo xtask crash [CYCLES]    the kill -9 crash harness with many cycles, in release
//! cargo xtask sim [ARGS...]     the deterministic simulation of power loss and I/O errors
//!                               (`--seconds N`, `--seed S`; `--planted` checks the planted bugs)
//! cargo xtask ci                everything `.ci/run` checks
//! ```

mod bench;
mod ci;
mod crash;
mod fuzz;
mod loom;
mod miri;
mod sim;
mod util;

use anyhow::bail;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match command.as_str() {
        "bench" => bench::run(&rest),
        "loom" => loom::run(),
        "fuzz" => fuzz::run(&rest),
        "miri" => miri::run(),
        "crash" => crash::run(&rest),
        "sim" => sim::run(&rest),
        "ci" => ci::run(),
        "" | "help" | "-h" | "--help" => {
            println!(
                "usage: cargo xtask <bench [ARGS...] | loom | fuzz [SECONDS] | miri | crash [CYCLES] | sim [ARGS...] | ci>"
            );
            Ok(())
        }
        other => bail!("unknown xtask command {other:?}; try `cargo xtask help`"),
    }
}
