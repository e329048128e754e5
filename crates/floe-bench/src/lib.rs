//! db_bench-style workloads for floe and the engines it is compared with.
//!
//! Each workload module exposes `run(&Config) -> anyhow::Result<Vec<Measurement>>`; the
//! `floe-bench` binary (driven by `cargo xtask bench`) picks the modules, prints a table
//! and writes the measurements as JSON. Workloads measure; they never assert a speed.

pub mod engine;
pub mod keys;
pub mod memtable;
pub mod report;
pub mod sstable;

pub use report::{Config, Measurement};
