//! db_bench-style workloads for floe and the engines it is compared with.
//!
//! The `dbbench` suite ([`dbbench`]) runs db_bench's workloads against floe, fjall and
//! (with the cargo feature `rocksdb`) RocksDB through one [`dbbench::Engine`] trait; the
//! `scale` suite ([`scale`]) loads each of them with many keys, each in a process of its
//! own, and measures space, open time, cold and warm reads and memory. Values are
//! incompressible, half compressible or JSON-like text ([`values`]). The component suites
//! ([`memtable`], [`sstable`], [`engine`]) each expose `run(&Config) ->
//! anyhow::Result<Vec<Measurement>>`. The `floe-bench` binary (driven by `cargo xtask
//! bench`) picks the suites ([`cli`]), prints a table and writes the measurements as JSON
//! with an SVG chart ([`chart`]). Workloads measure; they never assert a speed.

pub mod background_writer;
pub mod chart;
pub mod cli;
pub mod dbbench;
pub mod engine;
pub mod keys;
pub mod level_writes;
pub mod memtable;
pub mod report;
pub mod scale;
pub mod sstable;
pub mod values;

pub use report::{Config, Measurement};
