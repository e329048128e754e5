//! The error type of the memtable.

use std::fmt;

use floe_core::{MAX_SEQNO, SeqNo};

/// Why the memtable refused a write.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The memtable is full: the write would raise the approximate size past the limit
    /// that applies to it (the capacity for a key the memtable does not hold, the hard
    /// ceiling for one it holds). Nothing was changed; the engine freezes this memtable
    /// and retries on a new one.
    Full {
        /// The approximate size when the write was refused, in bytes.
        size: usize,
        /// The bytes the write would have charged.
        charge: usize,
        /// The limit that applied, in bytes.
        limit: usize,
    },
    /// The writer gate is closed: the memtable was frozen and takes no more writes.
    Frozen,
    /// The memtable already holds an entry with this user key, sequence number and kind.
    /// Sequence numbers are unique, so this is a bug in the caller; nothing was changed.
    Duplicate {
        /// The sequence number that was written twice.
        seqno: SeqNo,
    },
    /// The key or the value is 4 GiB or longer, more than an entry can record.
    TooLarge {
        /// The length of the key, in bytes.
        key_len: usize,
        /// The length of the value, in bytes.
        value_len: usize,
    },
    /// The sequence number is above [`MAX_SEQNO`] and cannot be stored.
    SeqnoTooLarge {
        /// The sequence number that was refused.
        seqno: SeqNo,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Full {
                size,
                charge,
                limit,
            } => write!(
                f,
                "memtable full: {size} bytes used, the write needs {charge} more, the limit is {limit}"
            ),
            Error::Frozen => f.write_str("memtable is frozen and takes no more writes"),
            Error::Duplicate { seqno } => write!(
                f,
                "memtable already holds this key at sequence number {seqno}"
            ),
            Error::TooLarge { key_len, value_len } => write!(
                f,
                "an entry with a {key_len}-byte key and a {value_len}-byte value is too large: \
                 keys and values must be under 4 GiB"
            ),
            Error::SeqnoTooLarge { seqno } => {
                write!(f, "sequence number {seqno} exceeds the maximum {MAX_SEQNO}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // No variant wraps another error: the memtable does no I/O.
        None
    }
}

/// The result type of the memtable.
pub type Result<T, E = Error> = std::result::Result<T, E>;
