//! Group commit: a batch from [`Shared::write`] to the log and the memtable, and visible.
//!
//! A writer queues its batch (see [`crate::write::queue`]). The first writer that finds no
//! leader at work becomes the leader: it takes every queued batch (the group), and under
//! the log mutex assigns consecutive sequence numbers, appends all the records to the
//! active log segment in one `write` call, and syncs once if any of them asked for it. It
//! hands each writer its assignment (the state it loaded under the log mutex, whose active
//! memtables stay active until the group is published) and gives up leadership; every
//! writer then inserts its own batch into those memtables, each operation into its
//! keyspace's, concurrently with the others and with the next group's log write, and
//! publishes it in order (see [`crate::write::publish`]). A group that synced is inserted and published by its leader
//! instead (see [`Shared::lead`]). After publishing, a writer whose memtable is full, or
//! who finds the memtables of all keyspaces over their budget, switches one
//! (`freeze.rs`).
//!
//! The steps, in the order a batch goes through them: [`Shared::write`] checks the batch,
//! [`Shared::commit`] enqueues it and leads or waits, [`Shared::lead`] takes groups,
//! [`Shared::log_group`] logs one, [`Shared::apply`] (or [`Shared::apply_group`] for a
//! synced group) inserts and publishes, and the queue posts the outcomes.

use std::sync::MutexGuard;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use floe_core::{MAX_SEQNO, SeqNo};
use floe_memtable::WriteGuard;
use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::filename::log_path;
use crate::keyspace::{DEFAULT_ID, KeyspaceId};
use crate::shared::Shared;
use crate::stats::Counters;
use crate::sync::lock;
use crate::txn::validate;
use crate::version::ActiveMem;
use crate::write::batch::{OpKind, WriteBatch, batch_op_slices, check_batch};
use crate::write::log::LogState;
use crate::write::queue::{Assigned, Group, Posted, Queue, Target, Turn};

/// Adds `amount` to one of the counters that only a commit leader changes, holding the log
/// mutex (`user_bytes`, `writes`, `write_groups`): no two adds can race, so a relaxed load
/// and store do, without the locked read-modify-write of [`Counters::add`]. Readers of the
/// statistics load every counter relaxed either way.
fn add_as_log_holder(counter: &AtomicU64, amount: u64) {
    let count = counter.load(Ordering::Relaxed);
    counter.store(count.wrapping_add(amount), Ordering::Relaxed);
}

impl Shared {
    /// Commits `batch`: logged, inserted, visible, and (with `sync`) durable on return.
    pub(crate) fn write(&self, batch: WriteBatch, sync: bool) -> Result<()> {
        self.counters.paths.write(|| self.write_timed(batch, sync))
    }

    /// [`Shared::write`], inside its sampled timing.
    fn write_timed(&self, batch: WriteBatch, sync: bool) -> Result<()> {
        self.check_writable()?;
        if batch.is_empty() {
            // Nothing to log (a batch of empty ranges is one), but a synced write still
            // promises that every write acknowledged before it is durable.
            return if sync { self.sync() } else { Ok(()) };
        }
        batch.validate(crate::options::MAX_KEY_SIZE, crate::options::MAX_VALUE_SIZE)?;
        let keyspaces = self.check_keyspaces(&batch)?;
        let assigned = self.commit(batch, sync)?;
        if !assigned.published {
            self.apply(&assigned);
        }
        // The write is logged and visible: it is acknowledged even if the switch below
        // fails (that failure poisons the database, so the next write reports it).
        let _ = self.maybe_freeze(&assigned.target, &keyspaces);
        assigned.batch.recycle();
        Ok(())
    }

    /// The keyspaces `batch` writes in besides `"default"`, after checking that each
    /// belongs to this database and is not dropped. (A keyspace dropped while the batch
    /// commits loses its part, as if the drop came after the write.)
    fn check_keyspaces(&self, batch: &WriteBatch) -> Result<SmallVec<[KeyspaceId; 4]>> {
        let mut ids = SmallVec::new();
        for keyspace in batch.keyspaces() {
            keyspace.check_usable(self.uid)?;
            if keyspace.id != DEFAULT_ID {
                ids.push(keyspace.id);
            }
        }
        Ok(ids)
    }

    /// Queues `batch` and waits until a leader (possibly this thread) has logged it.
    fn commit(&self, batch: WriteBatch, sync: bool) -> Result<Assigned> {
        let (ticket, queue) = self.commits.enqueue(batch, sync);
        match self.commits.wait_turn(queue, ticket) {
            Turn::Done(outcome) => outcome,
            Turn::Lead(queue) => self.lead(queue, ticket),
        }
    }

    /// Leads groups until this writer's own batch (`ticket`) is logged: a group is capped
    /// in size (see [`crate::write::queue::MAX_GROUP_BYTES`]), so a leader may log the
    /// batches ahead of its own first.
    fn lead<'q>(&'q self, mut queue: MutexGuard<'q, Queue>, ticket: u64) -> Result<Assigned> {
        loop {
            // Stalls delay the group before it is taken, so that the writers who arrive
            // meanwhile join it: a slowdown costs one delay per group, not per writer.
            if self.stall_needed() {
                drop(queue);
                self.stall_for_level0();
                queue = self.commits.lock();
            }
            let mut group = self.commits.take_group(queue, self.options.sync);
            let logged = self.log_group(&mut group);
            // A synced group's writers slept through the sync, and waking them takes far
            // longer than inserting their batches (tens of microseconds on a busy machine
            // against about one per small batch); inserting their own, they would also
            // wait for one another to publish in order, a wake-up each. So the leader
            // inserts and publishes the whole group, and they only return. A group that
            // did not sync is inserted by its writers in parallel, who are running.
            let published = group.syncs() && logged.is_ok();
            if let (true, Ok((target, last))) = (published, &logged) {
                self.apply_group(target, &group, *last);
            }
            match self.commits.post(group, &logged, published, ticket) {
                Posted::Mine(outcome) => return outcome,
                Posted::Next(next) => queue = next,
            }
        }
    }

    /// Logs a group: stamps consecutive sequence numbers into its batches, appends them
    /// as one log record with one write (see [`LogState::append_group`]) and at most one
    /// sync; an unsynced group counts its bytes toward the background sync (see
    /// `log_sync.rs`). Returns the memtable they all go into and the last sequence
    /// number, or the error every batch of the group gets.
    fn log_group(&self, group: &mut Group) -> Result<(Target, SeqNo)> {
        let mut log = lock(&self.log);
        self.check_writable()?;
        // Only holders of the log mutex replace active memtables, so the state loaded here
        // has the memtables of the segment `log.writer` appends to, and they stay active
        // until the group is published.
        let target = Target {
            state: self.state.load_full(),
            segment: log.number,
        };
        let first = log.next_seqno;
        if group.has_validation() {
            // A transaction's footprint is checked against the memtables, so every batch
            // with a smaller sequence number must be in them first: inserting takes
            // microseconds, and only groups with a transaction wait. The memtables of
            // `target` (or, once flushed, the history) hold all of them, and no batch can
            // be assigned meanwhile: this thread holds the log mutex.
            self.publisher.wait_for(first - 1);
            group.validate(|batch, ahead| {
                let Some(validation) = batch.validation() else {
                    return Ok(());
                };
                validate(
                    &target.state,
                    &self.history,
                    validation.snapshot,
                    &validation.footprint,
                    ahead.iter().map(|p| &p.batch),
                )
                .map_err(|message| Error::Conflict { message })
            });
            if group.is_empty() {
                // Every batch was a refused transaction: nothing to log.
                return Ok((target, first - 1));
            }
        }
        let Some(next) = group.stamp(first) else {
            // Nothing is logged: the writes of this group fail, smaller ones may still fit.
            return Err(Error::invalid(format!(
                "the database used up its sequence numbers (the next is {first}, the \
                 largest is {MAX_SEQNO}); copy its data into a new database"
            )));
        };
        let sync = self.options.sync || group.asks_sync();
        let appended = match log.append_group(first, group) {
            Ok(appended) => appended,
            Err(err) => {
                let name = log_path(&self.dir, log.number);
                return Err(self.poison(Error::io(
                    format_args!("appending to log {}", name.display()),
                    err,
                )));
            }
        };
        // Planted bug (simulation only): a synced group is acknowledged without waiting for
        // its sync.
        if sync && !cfg!(floe_planted = "ack_before_fdatasync") {
            self.sync_group(&mut log)?;
        } else {
            self.note_unsynced(&mut log, appended);
        }
        log.next_seqno = next;
        // Every batch of a logged group is acknowledged, so the leader counts them all:
        // one add per group instead of two contended adds per writer.
        // One pass over the group for the user bytes and the memtable charge (their
        // difference is the per-entry overhead, counted per operation).
        let (user_bytes, ops) = group.batches().fold((0usize, 0usize), |(bytes, ops), b| {
            (bytes + b.approximate_size(), ops + b.len())
        });
        add_as_log_holder(&self.counters.user_bytes, user_bytes as u64);
        add_as_log_holder(&self.counters.writes, group.len() as u64);
        add_as_log_holder(&self.counters.write_groups, 1);
        self.memtable_usage
            .add(user_bytes.saturating_add(ops.saturating_mul(floe_memtable::ENTRY_OVERHEAD)));
        Ok((target, next - 1))
    }

    /// Syncs the active segment for a group that asked for it (a failure poisons the
    /// database), timing the sync for the next sync leader's wait for joiners.
    fn sync_group(&self, log: &mut LogState) -> Result<()> {
        let start = Instant::now();
        self.sync_closed_segments()?;
        self.sync_segment(log.number, &mut log.writer)?;
        Counters::add(&self.counters.log_syncs, 1);
        self.commits.record_sync(start.elapsed());
        Ok(())
    }

    /// Inserts an assigned batch into its memtables and publishes it.
    fn apply(&self, assigned: &Assigned) {
        self.insert(
            &assigned.target,
            [(assigned.first, assigned.batch.payload())],
        );
        // Publish even after a failure in the insert: later batches must not wait forever.
        self.publisher.complete(assigned.first, assigned.last);
    }

    /// Inserts a whole logged group (whose last sequence number is `last`) into the
    /// memtables of `target` and publishes it, for its leader (see [`Shared::lead`]).
    fn apply_group(&self, target: &Target, group: &Group, last: SeqNo) {
        let Some(first) = group.batches().next().map(WriteBatch::first_seqno) else {
            return;
        };
        self.insert(
            target,
            group
                .batches()
                .map(|batch| (batch.first_seqno(), batch.payload())),
        );
        self.publisher.complete(first, last);
    }

    /// Inserts stamped batch payloads, each with its first sequence number, into the active
    /// memtables of `target.state`, each operation into its keyspace's, and notes the
    /// segment in each memtable it enters (before the batch is published; see
    /// [`ActiveMem::note_segment`]). The memtables copy keys and values into their arenas,
    /// so the payloads are only borrowed. An operation of a keyspace the state does not
    /// hold (dropped meanwhile) is skipped.
    ///
    /// The payloads are the ones this process encoded and `WriteBatch::validate` walked
    /// before they were queued, stamped by the leader since: they are not checked again.
    fn insert<'p>(&self, target: &Target, payloads: impl IntoIterator<Item = (SeqNo, &'p [u8])>) {
        let state = &target.state;
        // The memtable of the keyspace the last operation went to, entered.
        let mut entered: Option<(KeyspaceId, Option<WriteGuard<'_>>)> = None;
        for (first, payload) in payloads {
            debug_assert!(
                check_batch(payload).is_ok_and(|(stamped, _)| stamped == first),
                "a batch payload as stamped"
            );
            for (seqno, (keyspace, kind, key, value)) in (first..).zip(batch_op_slices(payload)) {
                if entered.as_ref().is_none_or(|(id, _)| *id != keyspace) {
                    let guard = match state.tree(keyspace) {
                        Some(tree) => match self.enter(&tree.active, target.segment) {
                            Some(guard) => Some(guard),
                            None => return,
                        },
                        None => None,
                    };
                    entered = Some((keyspace, guard));
                }
                if let Some((_, Some(guard))) = &entered {
                    match kind.point() {
                        Some(kind) => guard.insert_unchecked(key, seqno, kind, value),
                        None => guard.insert_range_tombstone(
                            key,
                            (kind == OpKind::DeleteRange).then_some(value),
                            seqno,
                        ),
                    }
                }
            }
        }
    }

    /// Passes the writer gate of `active` for writes logged in `segment`; `None` (and the
    /// database poisoned) if the memtable is frozen, which cannot happen.
    fn enter<'m>(&self, active: &'m ActiveMem, segment: u64) -> Option<WriteGuard<'m>> {
        match active.mem.enter() {
            Ok(guard) => {
                active.note_segment(segment);
                Some(guard)
            }
            // A memtable is frozen only after every batch assigned to it is published. If
            // one was not, refuse further writes rather than lose one silently.
            Err(err) => {
                let _ = self.poison(Error::corruption(format!(
                    "internal error: a batch was assigned to a frozen memtable ({err})"
                )));
                None
            }
        }
    }
}
