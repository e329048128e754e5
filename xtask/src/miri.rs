//! `cargo xtask miri`: runs the tests of the crates with `unsafe` code (floe-memtable,
//! floe-sstable, floe-core) under Miri on the nightly toolchain, installing the toolchain
//! and its miri component first if they are missing, in a target directory of its own.
//!
//! Tests that need a foreign function Miri cannot run (a file `mmap`, `flock`) are marked
//! `#[cfg_attr(miri, ignore = ...)]` where they are defined; the rest run with smaller
//! iteration counts under `cfg!(miri)`.

use std::process::Command;

use crate::util::{output, project_root, run as run_command};

/// Flags for every run. Replaying a randomized test needs its seed variable inside the
/// interpreter, which isolates the program from the host environment otherwise.
const COMMON_FLAGS: &str = "-Zmiri-env-forward=FLOE_SEED";

/// One Miri run: a package, the libtest arguments that select its library's tests (none:
/// the library's and every integration test), and the flags beyond [`COMMON_FLAGS`].
struct Suite {
    package: &'static str,
    test_args: &'static [&'static str],
    flags: &'static str,
}

/// The runs, in order.
///
/// crossbeam-epoch and crossbeam-skiplist, which floe-memtable is built on, each violate
/// one aliasing model as this Miri checks it, in code of theirs that floe cannot change:
/// - Stacked Borrows: crossbeam-epoch's intrusive list of thread records
///   (`IsElement::element_of`, crossbeam-rs/crossbeam#545), on the first `epoch::pin`.
/// - Tree Borrows with precise interior mutability: crossbeam-skiplist 0.1.3 frees every
///   node in `Drop for SkipList` through the `&Node` it walked the list with.
///
/// So the memtable's tests run under Tree Borrows with interior mutability tracked per
/// type rather than per byte (which accepts that free, since a node holds an atomic), and
/// the memtable's own unit tests that never touch crossbeam (the arena, the keys, the
/// writer gate) run under Stacked Borrows as well. The epoch collector's garbage is still
/// queued when the test process exits, hence `-Zmiri-ignore-leaks` there.
///
/// floe-sstable reads a fixture table file with `std::fs::read`, which Miri performs only
/// with host access (`-Zmiri-disable-isolation`).
const SUITES: &[Suite] = &[
    Suite {
        package: "floe-memtable",
        test_args: &[],
        flags: "-Zmiri-tree-borrows -Zmiri-tree-borrows-no-precise-interior-mut \
                -Zmiri-ignore-leaks",
    },
    Suite {
        package: "floe-memtable",
        // `key::` alone would also select `atomic_key::`, which pins an epoch.
        test_args: &["arena::", "key::", "gate::", "--skip", "atomic_key::"],
        flags: "",
    },
    Suite {
        package: "floe-sstable",
        test_args: &[],
        flags: "-Zmiri-disable-isolation",
    },
    Suite {
        package: "floe-core",
        test_args: &[],
        flags: "",
    },
];

/// Installs Miri if needed and runs every suite, stopping at the first failure.
pub(crate) fn run() -> anyhow::Result<()> {
    install()?;
    let root = project_root();
    for suite in SUITES {
        let mut command = Command::new("cargo");
        command
            .args(["+nightly", "miri", "test", "--package", suite.package])
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", root.join("target").join("miri"))
            .env(
                "MIRIFLAGS",
                format!("{COMMON_FLAGS} {}", suite.flags).trim_end(),
            );
        if suite.test_args.is_empty() {
            // The library's unit tests and every integration test; the loom models
            // (`tests/loom_*.rs`) compile to nothing without `--cfg floe_loom`.
            command.args(["--lib", "--tests"]);
        } else {
            command.args(["--lib", "--"]).args(suite.test_args);
        }
        run_command(&mut command)?;
    }
    Ok(())
}

/// Installs the nightly toolchain and its miri component if either is missing, then has
/// Miri build its standard library (a no-op once built).
fn install() -> anyhow::Result<()> {
    if output(Command::new("cargo").args(["+nightly", "--version"])).is_none() {
        run_command(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    if output(Command::new("cargo").args(["+nightly", "miri", "--version"])).is_none() {
        run_command(Command::new("rustup").args([
            "component",
            "add",
            "--toolchain",
            "nightly",
            "miri",
            "rust-src",
        ]))?;
    }
    run_command(Command::new("cargo").args(["+nightly", "miri", "setup"]))
}
