//! The engine workloads (filled in with the engine crate).

use crate::{Config, Measurement};

/// Runs the engine workloads.
///
/// # Errors
/// None yet.
pub fn run(_config: &Config) -> anyhow::Result<Vec<Measurement>> {
    Ok(Vec::new())
}
