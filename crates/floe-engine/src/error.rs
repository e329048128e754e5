//! The engine's error type: what went wrong, in words a user can act on.

use std::fmt;
use std::io;
use std::sync::Arc;

/// Everything that can go wrong in floe.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed; the message says which operation on which file.
    Io(Arc<io::Error>),
    /// Stored data is damaged: a checksum mismatch, a truncated structure, a missing file
    /// the manifest needs. The message names the file and what is wrong with it.
    Corruption {
        /// What is damaged and where.
        message: String,
    },
    /// The caller passed something floe refuses, such as a key longer than the limit.
    InvalidArgument {
        /// What was refused and why.
        message: String,
    },
    /// An earlier I/O error on a write path (log, flush, manifest) made the database
    /// refuse writes, so that it never acknowledges a write it cannot keep. Reopen the
    /// database to recover what was acknowledged.
    Poisoned {
        /// The first failure, which every later write reports.
        first: Arc<Error>,
    },
    /// The directory is already open, in this process or another.
    Locked {
        /// The lock file that is held.
        path: String,
    },
    /// The database was closed (or is closing) and accepts no more work.
    Closed,
    /// The keyspace was dropped ([`crate::Db::drop_keyspace`]); a handle to it reads and
    /// writes nothing any more. Open the keyspace again to create a new, empty one.
    KeyspaceDropped {
        /// The keyspace's name.
        name: String,
    },
    /// A transaction's commit found that a write after the transaction began touched a
    /// key it read or wrote, or a key inside a range it scanned; nothing of the
    /// transaction was applied. Run the transaction again.
    Conflict {
        /// What was written, and where.
        message: String,
    },
    /// A write (or a flush, compaction or keyspace change) on a database opened with
    /// [`crate::Db::open_read_only`].
    ReadOnly {
        /// What was refused.
        operation: String,
    },
}

/// `std::result::Result` with floe's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A [`Error::Corruption`] with `message`.
    pub(crate) fn corruption(message: impl Into<String>) -> Error {
        Error::Corruption {
            message: message.into(),
        }
    }

    /// A [`Error::InvalidArgument`] with `message`.
    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidArgument {
            message: message.into(),
        }
    }

    /// An [`Error::Io`] whose message says what floe was doing (`context`) when `err` happened.
    pub(crate) fn io(context: impl fmt::Display, err: io::Error) -> Error {
        Error::Io(Arc::new(io::Error::new(
            err.kind(),
            format!("{context}: {err}"),
        )))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(err) => write!(f, "I/O error: {err}"),
            Error::Corruption { message } => write!(f, "corruption: {message}"),
            Error::InvalidArgument { message } => write!(f, "invalid argument: {message}"),
            Error::Poisoned { first } => {
                write!(
                    f,
                    "the database refuses writes after an earlier failure ({first}); reopen it to recover"
                )
            }
            Error::Locked { path } => {
                write!(
                    f,
                    "the database is already open: the lock {path} is held by another handle or process"
                )
            }
            Error::Closed => write!(f, "the database is closed"),
            Error::KeyspaceDropped { name } => write!(f, "keyspace {name:?} was dropped"),
            Error::Conflict { message } => write!(
                f,
                "transaction conflict: {message}; nothing of it was applied, run it again"
            ),
            Error::ReadOnly { operation } => write!(
                f,
                "{operation} refused: the database is open read-only (Db::open_read_only)"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(err) => Some(err.as_ref()),
            Error::Poisoned { first } => Some(first.as_ref()),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Error {
        Error::Io(Arc::new(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_readable_and_sources_chain() {
        let io = Error::io("writing 000001.log", io::Error::other("disk full"));
        assert_eq!(io.to_string(), "I/O error: writing 000001.log: disk full");
        let poisoned = Error::Poisoned {
            first: Arc::new(io),
        };
        assert!(poisoned.to_string().contains("disk full"));
        assert!(std::error::Error::source(&poisoned).is_some());
        assert!(matches!(Error::corruption("x"), Error::Corruption { .. }));
    }
}
