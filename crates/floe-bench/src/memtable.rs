//! The memtable workloads (filled in with the memtable crate).

use crate::{Config, Measurement};

/// Runs the memtable workloads.
///
/// # Errors
/// None yet.
pub fn run(_config: &Config) -> anyhow::Result<Vec<Measurement>> {
    Ok(Vec::new())
}
