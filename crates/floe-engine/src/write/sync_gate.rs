//! [`SyncGate`]: the gate every `fdatasync` of a log segment passes, and the signal that
//! starts a round of the background log syncer, the one thread that syncs segments
//! without the log mutex (`log_sync.rs`).

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::sync::{lock, wait, wait_timeout};

/// What wakes the background log syncer.
#[derive(Debug, Default)]
struct Signal {
    /// Set by a leader whose append took the unsynced bytes past `wal_bytes_per_sync`.
    requested: bool,
    /// Set by close: the syncer exits.
    shutdown: bool,
}

/// The log's sync gate and the background syncer's signal (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct SyncGate {
    /// Held across every `fdatasync` of a log segment, by the background syncer (which
    /// holds nothing else) and by the syncs under the log mutex, each of which checks for
    /// poisoning once it holds it. So no sync of a segment starts between a failed
    /// background sync and the poisoning it causes: after a failed `fdatasync` the kernel
    /// may report the next one on the same file as a success though the data is gone.
    gate: Mutex<()>,
    /// What wakes the syncer; a leaf of the lock order.
    signal: Mutex<Signal>,
    wake: Condvar,
}

impl SyncGate {
    /// Enters the gate, for one or more `fdatasync` calls on log segments. The caller
    /// checks for poisoning once inside.
    pub(crate) fn enter(&self) -> MutexGuard<'_, ()> {
        lock(&self.gate)
    }

    /// Asks the syncer for a round (a leader crossed the byte bound).
    pub(crate) fn request(&self) {
        let mut signal = lock(&self.signal);
        signal.requested = true;
        self.wake.notify_one();
    }

    /// Takes the request for a round, for a database without background threads, which
    /// runs the round itself: whether there was one.
    pub(crate) fn take_request(&self) -> bool {
        std::mem::take(&mut lock(&self.signal).requested)
    }

    /// Stops the syncer (close). Its round in progress, if any, completes first.
    pub(crate) fn shut_down(&self) {
        let mut signal = lock(&self.signal);
        signal.shutdown = true;
        self.wake.notify_all();
    }

    /// Waits, for the syncer, until a round is requested or `interval` (if not zero) has
    /// passed since `last_round`. Returns `false` at shutdown.
    pub(crate) fn wait_for_round(&self, interval: Duration, last_round: Instant) -> bool {
        let mut signal = lock(&self.signal);
        loop {
            if signal.shutdown {
                return false;
            }
            if signal.requested {
                signal.requested = false;
                return true;
            }
            if interval.is_zero() {
                signal = wait(&self.wake, signal);
                continue;
            }
            let elapsed = last_round.elapsed();
            if elapsed >= interval {
                return true;
            }
            signal = wait_timeout(&self.wake, signal, interval - elapsed);
        }
    }
}
