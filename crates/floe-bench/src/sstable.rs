//! The sstable workloads (filled in with the sstable crate).

use crate::{Config, Measurement};

/// Runs the sstable workloads.
///
/// # Errors
/// None yet.
pub fn run(_config: &Config) -> anyhow::Result<Vec<Measurement>> {
    Ok(Vec::new())
}
