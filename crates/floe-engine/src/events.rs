//! What the database reports as it works: the [`EventListener`] trait and its info types,
//! and [`Events`], the one place that both calls the listeners and emits the matching
//! `tracing` event (with the `tracing` feature, on by default).
//!
//! Events are reported for background work and rare conditions only: open and recovery,
//! flushes, compactions, write stalls beginning and ending, the error that poisons the
//! database, and the deletion of obsolete files. Nothing is reported on the path of a
//! single write or read.

use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;

/// Called by the database after background work and on changes of its condition, as
/// RocksDB's `EventListener` is. Every method has an empty default, so a listener
/// implements only what it wants. Set with [`crate::Options::event_listener`].
///
/// Calls come on the thread where the event happened: a flush or compaction worker,
/// or a writer (a stall on too many memtables, an error that poisons the database), at
/// times while it holds the database's internal locks. A listener must return quickly
/// and must not write to the database, flush, compact, close it or drop a keyspace from
/// within a call (that can deadlock); reading and [`crate::Db::stats`] are fine. Hand
/// anything longer to a thread of your own.
pub trait EventListener: Send + Sync + 'static {
    /// A frozen memtable was written to a level-0 table and installed.
    fn on_flush_completed(&self, info: &FlushInfo) {
        let _ = info;
    }

    /// A compaction (background or [`crate::Db::compact`]) installed its result.
    fn on_compaction_completed(&self, info: &CompactionInfo) {
        let _ = info;
    }

    /// Writes began to be slowed down or stopped.
    fn on_stall_begin(&self, info: &StallInfo) {
        let _ = info;
    }

    /// A stall that [`EventListener::on_stall_begin`] reported ended.
    fn on_stall_end(&self, info: &StallInfo) {
        let _ = info;
    }

    /// Background work or a log write failed, and the database is poisoned: every later
    /// write fails with [`Error::Poisoned`]. Called once, for the first error.
    fn on_background_error(&self, info: &BackgroundErrorInfo) {
        let _ = info;
    }
}

/// A finished flush.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FlushInfo {
    /// The keyspace flushed.
    pub keyspace: String,
    /// The file number of the level-0 table written (`None` if the memtable held
    /// nothing a table keeps).
    pub table_number: Option<u64>,
    /// Point entries written.
    pub entries: u64,
    /// Bytes of the table.
    pub bytes: u64,
    /// From the start of the table write to the installed state.
    pub duration: Duration,
}

/// A finished compaction.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CompactionInfo {
    /// The keyspace compacted.
    pub keyspace: String,
    /// The level the compaction started from (the shallowest input level).
    pub input_level: u32,
    /// The level its outputs went to.
    pub output_level: u32,
    /// The file numbers of the input tables.
    pub inputs: Vec<u64>,
    /// The file numbers of the tables written.
    pub outputs: Vec<u64>,
    /// Bytes of the input tables.
    pub bytes_read: u64,
    /// Bytes of the tables written (0 for a trivial move).
    pub bytes_written: u64,
    /// Whether the inputs moved to the output level without being rewritten.
    pub trivial_move: bool,
    /// Whether [`crate::Db::compact`] asked for it.
    pub manual: bool,
    /// From the start of the merge to the installed state.
    pub duration: Duration,
}

/// Why writes stall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StallCause {
    /// Some keyspace's level 0 reached `l0_slowdown_trigger`: each commit group is
    /// delayed.
    Level0Slowdown,
    /// Some keyspace's level 0 reached `l0_stop_trigger`: writes wait for compaction.
    Level0Stop,
    /// `max_immutable_memtables` frozen memtables wait for their flush: writes wait.
    TooManyMemtables,
}

/// A stall beginning or ending.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StallInfo {
    /// Why writes stall.
    pub cause: StallCause,
    /// How long the stall lasted (`None` when it begins).
    pub duration: Option<Duration>,
}

/// The error that poisoned the database.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackgroundErrorInfo {
    /// The error, as later writes report it inside [`Error::Poisoned`].
    pub error: Error,
}

/// The listeners of a database, and the `tracing` events that go with their calls.
#[derive(Clone, Default)]
pub(crate) struct Events {
    listeners: Vec<Arc<dyn EventListener>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

/// Emits a `tracing` event with the `tracing` feature; nothing without it.
macro_rules! trace_event {
    ($level:ident, $($rest:tt)*) => {
        #[cfg(feature = "tracing")]
        tracing::$level!(target: "floe", $($rest)*);
    };
}

pub(crate) use trace_event;

/// Enters a `tracing` span at INFO for the rest of the enclosing scope, with the `tracing`
/// feature; nothing without it. Events emitted inside (by floe or by a compaction filter
/// or listener) belong to it.
macro_rules! trace_span {
    ($($rest:tt)*) => {
        #[cfg(feature = "tracing")]
        let _entered = tracing::info_span!(target: "floe", $($rest)*).entered();
    };
}

pub(crate) use trace_span;

impl Events {
    /// Adds `listener`; calls go to the listeners in the order they were added.
    pub(crate) fn add(&mut self, listener: Arc<dyn EventListener>) {
        self.listeners.push(listener);
    }

    pub(crate) fn flush_completed(&self, info: &FlushInfo) {
        trace_event!(
            info,
            keyspace = %info.keyspace,
            table = ?info.table_number,
            entries = info.entries,
            bytes = info.bytes,
            duration_ms = millis(info.duration),
            "flush completed"
        );
        for listener in &self.listeners {
            listener.on_flush_completed(info);
        }
    }

    pub(crate) fn compaction_completed(&self, info: &CompactionInfo) {
        trace_event!(
            info,
            keyspace = %info.keyspace,
            from_level = info.input_level,
            to_level = info.output_level,
            inputs = ?info.inputs,
            outputs = ?info.outputs,
            bytes_read = info.bytes_read,
            bytes_written = info.bytes_written,
            trivial_move = info.trivial_move,
            manual = info.manual,
            duration_ms = millis(info.duration),
            "compaction completed"
        );
        for listener in &self.listeners {
            listener.on_compaction_completed(info);
        }
    }

    pub(crate) fn stall_begin(&self, cause: StallCause) {
        trace_event!(warn, cause = ?cause, "write stall began");
        let info = StallInfo {
            cause,
            duration: None,
        };
        for listener in &self.listeners {
            listener.on_stall_begin(&info);
        }
    }

    pub(crate) fn stall_end(&self, cause: StallCause, duration: Duration) {
        trace_event!(
            info,
            cause = ?cause,
            duration_ms = millis(duration),
            "write stall ended"
        );
        let info = StallInfo {
            cause,
            duration: Some(duration),
        };
        for listener in &self.listeners {
            listener.on_stall_end(&info);
        }
    }

    pub(crate) fn background_error(&self, error: &Error) {
        trace_event!(error, error = %error, "the database is poisoned");
        let info = BackgroundErrorInfo {
            error: error.clone(),
        };
        for listener in &self.listeners {
            listener.on_background_error(&info);
        }
    }
}

/// `duration` in milliseconds, for events.
#[cfg(feature = "tracing")]
fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
