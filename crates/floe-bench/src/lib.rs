//! Benchmark workloads for floe.
