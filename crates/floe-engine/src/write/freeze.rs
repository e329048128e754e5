//! The memtable switch (freeze): new memtables for one or more keyspaces and a new log
//! segment together, the old memtables handed to the flush worker; what decides a switch
//! (a full memtable, the memory budget of all keyspaces, the bound on kept log segments);
//! and the back-pressure that holds a switch while too many frozen memtables wait for
//! their flush.
//!
//! Segments: memtables are switched, and a new segment started, only by a holder of the log
//! mutex, and only after every assigned batch is published (the drain in
//! [`Shared::freeze_locked`]). A leader therefore always hands out memtables that stay
//! active until its group is in them, and a frozen memtable's writes all lie in segments
//! older than the one its switch created (its `end_log`): the flush of that memtable can
//! record that the keyspace's writes below `end_log` are in tables. Other keyspaces'
//! memtables stay active across the switch, their writes spread over several segments;
//! each memtable knows the oldest segment holding one of its writes, which keeps that
//! segment alive. Every insert still passes the memtable's writer gate, which
//! double-checks that no batch goes into a frozen memtable.
//!
//! Budget: each keyspace's memtable freezes at its own capacity; when the active
//! memtables of all keyspaces together reach `Options::db_write_buffer_size` (counted by
//! [`crate::write::MemoryBudget`]), the largest of them freezes.
//!
//! Capacity: batches are admitted with `insert_unchecked` (their records are already in the
//! log, so the memtable must take them). After publishing, a writer whose memtable reached
//! its capacity tries to freeze it: it compares the size first (no lock), then takes the log
//! mutex and compares again, so two writers never freeze twice and an empty memtable is never
//! frozen. A memtable can therefore overshoot its capacity by the batches committed while
//! the switch waits; a batch larger than a whole memtable goes into the current one, and
//! the next write switches.

use std::sync::Arc;
use std::time::Instant;

use floe_core::fs::WritableFile;

use crate::error::{Error, Result};
use crate::events::StallCause;
use crate::filename::log_path;
use crate::keyspace::{DEFAULT_ID, KeyspaceId};
use crate::shared::Shared;
use crate::stats::Counters;
use crate::sync::lock;
use crate::version::{ActiveMem, State};
use crate::wal::{LogWriter, segment_reserve};
use crate::write::log::LogState;
use crate::write::queue::Target;

impl Shared {
    /// After a write logged into `target`: freezes each keyspace it wrote in (`"default"`
    /// and `keyspaces`) whose memtable reached its capacity if it is still the active one,
    /// and the largest active memtable if all of them together reached the memory budget.
    pub(super) fn maybe_freeze(&self, target: &Target, keyspaces: &[KeyspaceId]) -> Result<()> {
        let ids = std::iter::once(DEFAULT_ID).chain(keyspaces.iter().copied());
        for id in ids {
            let Some(tree) = target.state.tree(id) else {
                continue;
            };
            let mem = &tree.active.mem;
            if mem.approximate_size() < mem.capacity() {
                continue;
            }
            let mut log = lock(&self.log);
            let full = self.state.load().tree(id).is_some_and(|latest| {
                Arc::ptr_eq(&latest.active.mem, mem) && mem.approximate_size() >= mem.capacity()
            });
            if full {
                self.freeze_locked(&mut log, &[id])?;
            }
        }
        if self.memtable_usage.used() >= self.options.memtable_budget() {
            let mut log = lock(&self.log);
            self.relieve_budget(&mut log)?;
        }
        Ok(())
    }

    /// Under the log mutex, once the count of the memory budget reached it: measures the
    /// active memtables exactly (every assigned batch published first), and freezes the
    /// largest if they do reach the budget.
    fn relieve_budget(&self, log: &mut LogState) -> Result<()> {
        self.publisher.wait_for(log.next_seqno - 1);
        let state = self.state.load();
        let used: usize = state
            .trees
            .iter()
            .map(|t| t.active.mem.approximate_size())
            .sum();
        self.memtable_usage.set(used);
        if used < self.options.memtable_budget() {
            return Ok(());
        }
        let largest = state
            .trees
            .iter()
            .max_by_key(|t| t.active.mem.approximate_size())
            .map(|t| t.id);
        drop(state);
        if let Some(id) = largest {
            Counters::add(&self.counters.budget_flushes, 1);
            self.freeze_locked(log, &[id])?;
        }
        Ok(())
    }

    /// Switches the keyspaces `ids` to new memtables and the log to a new segment, handing
    /// the old memtables to the flush worker. Keyspaces whose memtable is empty (or that
    /// are gone) are left alone; nothing happens if none is left. When the log segments
    /// kept for unflushed writes outgrow `Options::max_total_wal_size`, the keyspaces that
    /// hold the oldest one switch too, so that it can go. Waits while too many frozen
    /// memtables wait for their flush (back-pressure).
    pub(crate) fn freeze_locked(&self, log: &mut LogState, ids: &[KeyspaceId]) -> Result<()> {
        self.check_writable()?;
        let wanted = |state: &State, id: KeyspaceId| {
            state.tree(id).is_some_and(|t| !t.active.mem.is_empty())
        };
        if !ids.iter().any(|id| wanted(&self.state.load(), *id)) {
            return Ok(());
        }
        self.wait_for_room()?;
        // Drain: every batch assigned to the active memtables is inserted before the
        // switch, so freezing never shuts one out (no new batch can be assigned: we hold
        // the log), and each memtable's oldest segment is exact.
        self.publisher.wait_for(log.next_seqno - 1);
        let state = self.state.load_full();
        let mut switched: Vec<KeyspaceId> = ids
            .iter()
            .copied()
            .filter(|id| wanted(&state, *id))
            .collect();
        switched.extend(self.holders_of_oldest_log(log, &state, &switched));
        if switched.is_empty() {
            return Ok(());
        }

        let (number, file) = self.create_segment()?;
        let writer = LogWriter::segment(file, segment_reserve(self.options.write_buffer_size));
        let (old_writer, _) = log.switch_segment(number, writer);
        lock(&self.segments).switch(old_writer, number, log.next_seqno);

        let fresh = switched
            .iter()
            .map(|id| {
                let capacity = state.tree(*id).map_or(self.options.write_buffer_size, |t| {
                    t.options.write_buffer_size
                });
                ActiveMem::new(capacity)
            })
            .collect();
        let old = self
            .state
            .install(|current| current.with_active_frozen(&switched, fresh, number));
        for id in &switched {
            if let Some(tree) = old.tree(*id) {
                self.memtable_usage.sub(tree.active.mem.approximate_size());
                // Closes the writer gate; nobody is inside thanks to the drain above.
                tree.active.mem.freeze();
            }
        }
        self.background.wake_flusher();
        Ok(())
    }

    /// Starts a new log segment without switching any memtable (for a checkpoint, which
    /// takes the closed segments whole): every assigned batch is published first, so
    /// that each memtable notes the old segment before anyone can find it unneeded.
    pub(crate) fn rotate_log_locked(&self, log: &mut LogState) -> Result<()> {
        self.check_writable()?;
        self.publisher.wait_for(log.next_seqno - 1);
        let (number, file) = self.create_segment()?;
        let writer = LogWriter::segment(file, segment_reserve(self.options.write_buffer_size));
        let (old_writer, _) = log.switch_segment(number, writer);
        lock(&self.segments).switch(old_writer, number, log.next_seqno);
        self.state
            .install(|current| current.with_active_frozen(&[], Vec::new(), number));
        Ok(())
    }

    /// The keyspaces besides `switching` whose active memtable holds a write in the oldest
    /// segment still needed, if the segments kept outgrew `Options::max_total_wal_size`.
    /// (A frozen memtable in that segment is on its way to a table already.)
    fn holders_of_oldest_log(
        &self,
        log: &LogState,
        state: &State,
        switching: &[KeyspaceId],
    ) -> Vec<KeyspaceId> {
        let kept = lock(&self.segments).closed_bytes() + log.writer.len();
        if kept <= self.options.log_budget() {
            return Vec::new();
        }
        let oldest = state.oldest_needed_log(None);
        state
            .trees
            .iter()
            .filter(|t| t.active.first_log() == Some(oldest) && !switching.contains(&t.id))
            .map(|t| t.id)
            .collect()
    }

    /// Creates the next log segment, with its directory entry durable before any write in
    /// it can be acknowledged (durability order 1); a failure poisons the database.
    fn create_segment(&self) -> Result<(u64, Box<dyn WritableFile>)> {
        let number = self
            .file_numbers
            .allocate()
            .map_err(|err| self.poison(err))?;
        let path = log_path(&self.dir, number);
        let created = self.fs.create(&path).and_then(|file| {
            // Planted bug (simulation only): the new segment's directory entry is not made
            // durable, so synced writes in it can vanish with it.
            if cfg!(floe_planted = "segment_dir_unsynced") {
                return Ok(file);
            }
            self.fs.sync_dir(&self.dir).map(|()| file)
        });
        match created {
            Ok(file) => Ok((number, file)),
            Err(err) => Err(self.poison(Error::io(
                format_args!("creating log {}", path.display()),
                err,
            ))),
        }
    }

    /// Blocks while the frozen memtables reach `max_immutable_memtables`. The caller holds
    /// the log mutex, so every writer waits with it: a wait is counted in
    /// `memtable_stops`, and its time in the stall time.
    fn wait_for_room(&self) -> Result<()> {
        if self.options.is_manual_background() {
            while self.state.load().frozen_count() >= self.options.max_immutable_memtables {
                self.flush_oldest_inline()?;
            }
            return Ok(());
        }
        let mut signals = self.background.lock();
        let mut waiting_since = None;
        let result = loop {
            if let Some(err) = self.poison_error() {
                break Err(err);
            }
            if self.state.load().frozen_count() < self.options.max_immutable_memtables {
                break Ok(());
            }
            if waiting_since.is_none() {
                // The start first: whoever sees the count also sees a wait under way.
                waiting_since = Some(Instant::now());
                Counters::add(&self.counters.memtable_stops, 1);
                self.options
                    .events
                    .stall_begin(StallCause::TooManyMemtables);
            }
            signals = self.background.wait_for_progress(signals);
        };
        drop(signals);
        if let Some(start) = waiting_since {
            self.counters
                .add_stall_since(StallCause::TooManyMemtables, start);
            self.options
                .events
                .stall_end(StallCause::TooManyMemtables, start.elapsed());
        }
        result
    }
}
