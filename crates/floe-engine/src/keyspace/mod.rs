//! Keyspaces: separate, ordered key spaces inside one database (RocksDB's column families,
//! fjall's keyspaces), sharing one log and one sequence of writes.
//!
//! A keyspace is named by its user and numbered by the database: the number (a
//! [`KeyspaceId`], never reused) is what the log and the manifest record, so a keyspace
//! dropped and created again under the same name is a different keyspace, and log records
//! of the dropped one are skipped at replay. Keyspace `0` is `"default"`, which always
//! exists and is what `Db::put` and `Db::get` use. Each keyspace has its own memtables and
//! levels in the engine state (`version/state.rs`, [`crate::version::Tree`]); creating
//! and dropping one are manifest edits (`keyspace/registry.rs`).

mod handle;
mod options;
pub(crate) mod registry;

pub use handle::Keyspace;
pub(crate) use handle::KeyspaceRef;
pub use options::KeyspaceOptions;

use crate::error::{Error, Result};

/// The number of a keyspace, as the log and the manifest record it.
pub(crate) type KeyspaceId = u32;

/// The number of the `"default"` keyspace.
pub(crate) const DEFAULT_ID: KeyspaceId = 0;

/// The name of the keyspace that always exists.
pub(crate) const DEFAULT_NAME: &str = "default";

/// The longest keyspace name, in bytes.
pub(crate) const MAX_NAME_LEN: usize = 255;

/// Checks a keyspace name: 1 to [`MAX_NAME_LEN`] bytes of UTF-8 without control
/// characters or `/`, so that a name prints plainly in errors and tools, and could name a
/// directory.
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "a keyspace name has 1 to {MAX_NAME_LEN} bytes; {:?} has {}",
            truncated(name),
            name.len()
        )));
    }
    if let Some(bad) = name.chars().find(|c| c.is_control() || *c == '/') {
        return Err(Error::invalid(format!(
            "a keyspace name may not hold {bad:?}: {:?}",
            truncated(name)
        )));
    }
    Ok(())
}

/// The first 40 characters of `name`, for an error message.
fn truncated(name: &str) -> String {
    name.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in [
            "default",
            "a",
            "index/by-name".replace('/', "-").as_str(),
            "ünïcode",
            &"x".repeat(255),
        ] {
            check_name(good).unwrap();
        }
        for bad in ["", "a/b", "tab\there", "nul\0", &"x".repeat(256)] {
            let err = check_name(bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidArgument { .. }),
                "{bad:?}: {err}"
            );
        }
    }
}
