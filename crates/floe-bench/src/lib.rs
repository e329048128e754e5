//! db_bench-style workloads for floe and the engines it is compared with.
//!
//! The `dbbench` suite ([`dbbench`]) runs db_bench's workloads against floe, fjall and
//! (with the cargo feature `rocksdb`) RocksDB through one [`dbbench::Engine`] trait. The
//! component suites ([`memtable`], [`sstable`], [`engine`]) each expose
//! `run(&Config) -> anyhow::Result<Vec<Measurement>>`. The `floe-bench` binary (driven by
//! `cargo xtask bench`) picks the suites ([`cli`]), prints a table and writes the
//! measurements as JSON with an SVG chart ([`chart`]). Workloads measure; they never
//! assert a speed.

pub mod chart;
pub mod cli;
pub mod dbbench;
pub mod engine;
pub mod keys;
pub mod level_writes;
pub mod memtable;
pub mod report;
pub mod sstable;

pub use report::{Config, Measurement};
