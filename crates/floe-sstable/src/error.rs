//! The table crate's error type: what went wrong, in words a user can act on.

use std::fmt;
use std::io;

/// Everything that can go wrong while writing or reading a table.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Writing, syncing or reading the table file failed.
    Io(io::Error),
    /// The table's bytes are damaged: a checksum mismatch, a truncated file, an offset
    /// outside the file. The message names the damaged structure and its byte offset.
    Corruption {
        /// What is damaged and where.
        message: String,
    },
    /// The caller asked for something the table refuses, such as keys out of order.
    InvalidArgument {
        /// What was refused and why.
        message: String,
    },
}

/// `std::result::Result` with the table crate's [`Error`].
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

    /// Whether this is [`Error::Corruption`].
    #[must_use]
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(err) => write!(f, "I/O error on a table file: {err}"),
            Error::Corruption { message } => write!(f, "table corruption: {message}"),
            Error::InvalidArgument { message } => write!(f, "invalid argument: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(err) => Some(err),
            Error::Corruption { .. } | Error::InvalidArgument { .. } => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Error {
        Error::Io(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_human_and_source_is_the_io_error() {
        let err = Error::corruption("data block at byte 42: checksum mismatch");
        assert_eq!(
            err.to_string(),
            "table corruption: data block at byte 42: checksum mismatch"
        );
        assert!(err.is_corruption());
        assert!(std::error::Error::source(&err).is_none());
        let io = Error::from(io::Error::other("disk on fire"));
        assert!(std::error::Error::source(&io).is_some());
        assert!(!io.is_corruption());
    }
}
