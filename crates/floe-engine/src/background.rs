//! [`Background`]: how the background workers are woken, and how the threads that wait for
//! their progress (back-pressure, write stalls, `flush`, `wait_for_compactions`) are woken:
//! one mutex holding the shutdown flag, and a condition variable for each kind of waiter.
//!
//! Every wait checks its condition while holding the mutex, and every change that can end
//! a wait is signalled under it after the change is made (a flush installs its state, then
//! signals), so a change is either seen by the check or wakes the wait.

use std::sync::{Condvar, Mutex, MutexGuard};

use crate::sync::{lock, wait};

/// What the background mutex guards.
#[derive(Debug, Default)]
pub(crate) struct Signals {
    /// Set by close: the flush worker flushes what is frozen and exits; the compaction
    /// worker exits after the compaction it is running.
    shutdown: bool,
}

impl Signals {
    /// Whether close has shut the background work down.
    pub(crate) fn shutting_down(&self) -> bool {
        self.shutdown
    }
}

/// The background signals of a database (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Background {
    signals: Mutex<Signals>,
    /// Wakes the flush worker (a memtable was frozen, or shutdown).
    flush_work: Condvar,
    /// Wakes the compaction worker (a flush or compaction changed the tables, or shutdown).
    compaction_work: Condvar,
    /// Wakes whoever waits for a flush or a compaction (back-pressure, write stalls,
    /// `flush()`, `wait_for_compactions`), a poisoning or shutdown.
    progress: Condvar,
}

impl Background {
    /// Locks the signals, to check a condition and then wait.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Signals> {
        lock(&self.signals)
    }

    /// Waits, for the flush worker, until it is woken for work.
    pub(crate) fn wait_for_flush_work<'a>(
        &self,
        signals: MutexGuard<'a, Signals>,
    ) -> MutexGuard<'a, Signals> {
        wait(&self.flush_work, signals)
    }

    /// Waits, for the compaction worker, until it is woken for work.
    pub(crate) fn wait_for_compaction_work<'a>(
        &self,
        signals: MutexGuard<'a, Signals>,
    ) -> MutexGuard<'a, Signals> {
        wait(&self.compaction_work, signals)
    }

    /// Waits until a flush or compaction finishes, the database is poisoned or close
    /// shuts the background down.
    pub(crate) fn wait_for_progress<'a>(
        &self,
        signals: MutexGuard<'a, Signals>,
    ) -> MutexGuard<'a, Signals> {
        wait(&self.progress, signals)
    }

    /// Wakes the flush worker: a memtable was frozen.
    pub(crate) fn wake_flusher(&self) {
        let _signals = self.lock();
        self.flush_work.notify_all();
    }

    /// A flush or compaction installed its result: wakes its waiters, and the compaction
    /// worker, which may find more to do.
    pub(crate) fn progressed(&self) {
        let _signals = self.lock();
        self.progress.notify_all();
        self.compaction_work.notify_all();
    }

    /// The database is poisoned: wakes everyone, so that each sees it.
    pub(crate) fn wake_all(&self) {
        let _signals = self.lock();
        self.progress.notify_all();
        self.flush_work.notify_all();
        self.compaction_work.notify_all();
    }

    /// Close: sets the shutdown flag and wakes everyone. Writers stalled on level 0 give
    /// up (the compaction worker is stopping).
    pub(crate) fn shut_down(&self) {
        let mut signals = self.lock();
        signals.shutdown = true;
        self.flush_work.notify_all();
        self.compaction_work.notify_all();
        self.progress.notify_all();
    }
}
