//! Write stalls: the delay or the wait a commit leader takes before it logs a group while
//! some keyspace's level 0 is deep (`l0_slowdown_trigger`, `l0_stop_trigger`; `docs/compaction.md`).

use std::time::{Duration, Instant};

use crate::events::StallCause;
use crate::shared::Shared;
use crate::stats::Counters;
use crate::sync::lock;

impl Shared {
    /// Whether some keyspace's level 0 is deep enough that the next group must be delayed.
    /// (The log is shared, so a keyspace whose compactions fall behind slows the writes of
    /// all, as in RocksDB.)
    pub(super) fn stall_needed(&self) -> bool {
        self.state.stalls()
    }

    /// Write stalls: at `l0_slowdown_trigger` level-0 tables, delays the calling leader by
    /// 1 ms, plus 1 ms for each table above the trigger; at `l0_stop_trigger`, blocks it
    /// until compaction brings level 0 below the stop trigger (or the database closes or is
    /// poisoned, which the group's log write then reports). The delay is the one place a
    /// sleep is right: it spreads the backlog's cost over many groups instead of stopping
    /// writes outright later, and the compaction worker needs no signal from it.
    pub(super) fn stall_for_level0(&self) {
        let stall = || self.state.load().level0_stall;
        let first = stall();
        if first.slowdown_excess == 0 || self.options.is_manual_background() {
            return;
        }
        let start = Instant::now();
        if first.stop {
            Counters::add(&self.counters.stops, 1);
            let mut signals = self.background.lock();
            while stall().stop && !signals.shutting_down() && self.check_writable().is_ok() {
                signals = self.background.wait_for_progress(signals);
            }
            drop(signals);
            self.counters.add_stall_since(StallCause::Level0Stop, start);
        } else {
            Counters::add(&self.counters.slowdowns, 1);
            let excess = u32::try_from(first.slowdown_excess).unwrap_or(u32::MAX);
            std::thread::sleep(Duration::from_millis(1).saturating_mul(excess));
            self.counters
                .add_stall_since(StallCause::Level0Slowdown, start);
        }
    }

    /// Reports a change of the level-0 stall condition of the latest state to the
    /// listeners and as an event: the end of the stall that was on (with its length) and
    /// the beginning of the one now on. Called after each install that can change level 0
    /// (a flush, a compaction, a dropped keyspace), outside every lock but the compaction
    /// mutex; the watch's mutex orders the reports, so each begin has one end.
    pub(crate) fn note_level0_stall(&self) {
        let mut watch = lock(&self.level0_stall_watch);
        let stall = self.state.load().level0_stall;
        let now = if stall.stop {
            Some(StallCause::Level0Stop)
        } else if stall.slowdown_excess > 0 {
            Some(StallCause::Level0Slowdown)
        } else {
            None
        };
        if watch.map(|(cause, _)| cause) == now {
            return;
        }
        if let Some((cause, since)) = watch.take() {
            self.options.events.stall_end(cause, since.elapsed());
        }
        if let Some(cause) = now {
            self.options.events.stall_begin(cause);
            *watch = Some((cause, Instant::now()));
        }
    }
}
