//! Test support for the engine: a file system that fails on command.
//!
//! Compiled for unit tests and under the `fault-injection` feature, never in a default build.

mod faulty_fs;

pub use faulty_fs::{FaultOp, FaultyFs};
