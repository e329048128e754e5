//! The memtable switch (freeze): a new memtable and a new log segment together, the old
//! memtable handed to the flush worker; and the back-pressure that holds a switch while
//! too many frozen memtables wait for their flush.
//!
//! Generations: the active memtable and the active log segment are swapped together, only
//! by a holder of the log mutex, and only after every assigned batch is published (the
//! drain in [`Shared::freeze_locked`]). A leader therefore always appends to the segment of
//! the memtable it hands out, and that memtable is not frozen before those batches are in
//! it, so segment M holds exactly the writes of memtable M. Every insert still passes the
//! memtable's writer gate, which double-checks that invariant.
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
use floe_memtable::Memtable;

use crate::error::{Error, Result};
use crate::filename::log_path;
use crate::shared::Shared;
use crate::stats::Counters;
use crate::sync::lock;
use crate::wal::{LogWriter, segment_reserve};
use crate::write::log::LogState;

impl Shared {
    /// Freezes `mem` if it is still the active memtable and reached its capacity.
    pub(super) fn maybe_freeze(&self, mem: &Arc<Memtable>) -> Result<()> {
        if mem.approximate_size() < mem.capacity() {
            return Ok(());
        }
        let mut log = lock(&self.log);
        let state = self.state.load();
        if !Arc::ptr_eq(&state.active, mem) || mem.approximate_size() < mem.capacity() {
            return Ok(());
        }
        drop(state);
        self.freeze_locked(&mut log)
    }

    /// Switches to a new memtable and log segment, handing the old memtable to the flush
    /// worker. Waits while too many frozen memtables wait for their flush (back-pressure).
    /// Does nothing if the active memtable is empty.
    pub(crate) fn freeze_locked(&self, log: &mut LogState) -> Result<()> {
        self.check_writable()?;
        if self.state.load().active.is_empty() {
            return Ok(());
        }
        self.wait_for_room()?;
        // Drain: every batch assigned to the active memtable is inserted before the switch,
        // so freezing never shuts one out (no new batch can be assigned: we hold the log).
        self.publisher.wait_for(log.next_seqno - 1);

        let (number, file) = self.create_segment()?;
        log.prune_frozen(&self.state.load());
        let writer = LogWriter::segment(file, segment_reserve(self.options.write_buffer_size));
        let old_number = log.switch_segment(number, writer);

        let fresh = Arc::new(Memtable::new(self.options.write_buffer_size));
        let old = self
            .state
            .install(|current| current.with_active_frozen(fresh, number, old_number));
        // Closes the writer gate; nobody is inside thanks to the drain above.
        old.active.freeze();
        self.background.wake_flusher();
        Ok(())
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
            while self.state.load().frozen.len() >= self.options.max_immutable_memtables {
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
            if self.state.load().frozen.len() < self.options.max_immutable_memtables {
                break Ok(());
            }
            if waiting_since.is_none() {
                // The start first: whoever sees the count also sees a wait under way.
                waiting_since = Some(Instant::now());
                Counters::add(&self.counters.memtable_stops, 1);
            }
            signals = self.background.wait_for_progress(signals);
        };
        drop(signals);
        if let Some(start) = waiting_since {
            self.counters.add_stall_since(start);
        }
        result
    }
}
