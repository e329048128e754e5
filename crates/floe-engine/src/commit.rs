//! The write path: the commit queue with group commit, the memtable inserts, in-order
//! publication, and the memtable switch (freeze) with back-pressure.
//!
//! A writer queues its batch. The first writer that finds no leader at work becomes the
//! leader: it takes every queued batch (the group), and under the log mutex assigns
//! consecutive sequence numbers, appends all the records to the active log segment in one
//! `write` call, and syncs once if any of them asked for it. It hands each writer its
//! assignment and gives up leadership; every writer then inserts its own batch into the
//! memtable of that same generation, concurrently with the others and with the next
//! group's log write, and publishes it in order (see [`crate::publish`]). A group that
//! synced is inserted and published by its leader instead (see [`Shared::commit`]).
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

use std::collections::HashMap;
use std::mem;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use floe_core::SeqNo;
use floe_memtable::Memtable;

use crate::batch::{WriteBatch, batch_op_slices, check_batch, encode_group};
use crate::error::{Error, Result};
use crate::filename::log_path;
use crate::shared::{LogState, Shared, lock, wait};
use crate::state::{FrozenMem, State};
use crate::stats::Counters;
use crate::wal::{LogWriter, segment_reserve};

/// The most bytes of keys and values one commit group carries (beyond its first batch),
/// so that a small write never waits behind an unbounded group.
const MAX_GROUP_BYTES: usize = 1 << 20;

/// The longest a leader about to sync waits for joiners (see [`Shared::wait_for_joiners`]),
/// whatever the disk's sync time.
const MAX_SYNC_JOIN_WAIT: Duration = Duration::from_millis(1);

/// The group record buffer is given back after a group larger than this (one huge batch
/// in a group must not pin its memory).
const MAX_RETAINED_GROUP_RECORD: usize = 2 * MAX_GROUP_BYTES;

/// How long a writer whose batch a leader is logging spins before it blocks: a few times
/// what logging a group without sync takes (one `write` call, 1 to 3 µs here), far less
/// than a synced group, which it then sleeps through.
const COMMIT_SPIN: Duration = Duration::from_micros(20);

/// How many of the `pending` batches (from the front) the next group takes: at least one.
fn group_len(pending: &[Pending]) -> usize {
    let mut bytes = 0;
    let mut take = 0;
    for p in pending {
        if take > 0 && bytes + p.batch.approximate_size() > MAX_GROUP_BYTES {
            break;
        }
        bytes += p.batch.approximate_size();
        take += 1;
    }
    take
}

/// A queued batch.
#[derive(Debug)]
struct Pending {
    ticket: u64,
    batch: WriteBatch,
    sync: bool,
}

/// What the leader hands a writer: where its batch goes.
#[derive(Debug)]
pub(crate) struct Assigned {
    first: SeqNo,
    last: SeqNo,
    payload: Bytes,
    mem: Arc<Memtable>,
    /// Whether the leader already inserted and published the batch (a synced group).
    published: bool,
}

/// The commit queue.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    next_ticket: u64,
    pending: Vec<Pending>,
    /// Outcomes the leader posted for writers that have not picked them up yet.
    done: HashMap<u64, Result<Assigned>>,
    leader_active: bool,
    /// Writers blocked on the queue's condition variable. Counted under the queue lock, so
    /// a leader that sees zero skips the wake-up (a system call per group otherwise) and
    /// still never strands a writer: a writer counts itself before it releases the lock
    /// to wait.
    waiters: usize,
    /// An empty vector with the capacity of earlier groups, so taking a group does not
    /// allocate.
    spare: Vec<Pending>,
    /// The size of the last group that synced: how many writers a sync leader expects
    /// back (see [`Shared::wait_for_joiners`]).
    last_sync_group: usize,
    /// Whether the active leader's group syncs: its outcomes are then a whole
    /// `fdatasync` away, and a waiting writer blocks at once instead of spinning.
    leader_syncs: bool,
}

impl Queue {
    /// Wakes the blocked writers, if there are any.
    fn wake(&self, condvar: &std::sync::Condvar) {
        if self.waiters > 0 {
            condvar.notify_all();
        }
    }
}

impl Shared {
    /// Commits `batch`: logged, inserted, visible, and (with `sync`) durable on return.
    pub(crate) fn write(&self, batch: WriteBatch, sync: bool) -> Result<()> {
        self.check_writable()?;
        if batch.is_empty() {
            return Ok(());
        }
        batch.validate(crate::options::MAX_KEY_SIZE, crate::options::MAX_VALUE_SIZE)?;
        let assigned = self.commit(batch, sync)?;
        if !assigned.published {
            self.apply(&assigned);
        }
        // The write is logged and visible: it is acknowledged even if the switch below
        // fails (that failure poisons the database, so the next write reports it).
        let _ = self.maybe_freeze(&assigned.mem);
        Ok(())
    }

    /// Queues `batch` and waits until a leader (possibly this thread) has logged it.
    fn commit(&self, batch: WriteBatch, sync: bool) -> Result<Assigned> {
        let mut queue = lock(&self.queue);
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.pending.push(Pending {
            ticket,
            batch,
            sync,
        });
        self.queued.store(queue.pending.len(), Ordering::Relaxed);
        let mut spun = false;
        loop {
            if let Some(outcome) = queue.done.remove(&ticket) {
                return outcome;
            }
            // A leader posts the outcomes of its whole group and clears `leader_active`
            // in one critical section, so a writer that sees no leader and no outcome is
            // still pending, and leads its own group.
            if !queue.leader_active {
                break;
            }
            if !spun && self.spin_commits && !queue.leader_syncs {
                // The leader is most likely logging this batch right now, one `write`
                // away from posting it: waiting for that by spinning costs less than
                // sleeping and being woken (two context switches and a wake-up call).
                // Everything is checked again under the lock afterwards, so the spin is
                // only a hint and can never miss a post. A leader that syncs is a whole
                // `fdatasync` away, far longer than the spin: spinning would only take
                // the CPU from the writers that are about to join the next group.
                spun = true;
                let seen = self.queue_posts.load(Ordering::Acquire);
                drop(queue);
                self.spin_until_posted(seen);
                queue = lock(&self.queue);
                continue;
            }
            queue.waiters += 1;
            queue = wait(&self.queue_cv, queue);
            queue.waiters -= 1;
            spun = false;
        }
        // Lead groups until this writer's own batch is logged: a group is capped in size
        // (see [`MAX_GROUP_BYTES`]), so a leader may log the batches ahead of its own first.
        queue.leader_active = true;
        let mine = loop {
            // Stalls delay the group before it is taken, so that the writers who arrive
            // meanwhile join it: a slowdown costs one delay per group, not per writer.
            if self.stall_needed() {
                drop(queue);
                self.stall_for_level0();
                queue = lock(&self.queue);
            }
            let syncs = self.options.sync || queue.pending.iter().any(|p| p.sync);
            queue.leader_syncs = syncs;
            if syncs && self.spin_commits && queue.pending.len() < queue.last_sync_group {
                let expected = queue.last_sync_group;
                drop(queue);
                self.wait_for_joiners(expected);
                queue = lock(&self.queue);
            }
            let take = group_len(&queue.pending);
            let mut group = mem::take(&mut queue.spare);
            group.extend(queue.pending.drain(..take));
            self.queued.store(queue.pending.len(), Ordering::Relaxed);
            if syncs {
                queue.last_sync_group = group.len();
            }
            drop(queue);
            let logged = self.lead(&mut group);
            // A synced group's writers slept through the sync, and waking them takes far
            // longer than inserting their batches (tens of microseconds on a busy machine
            // against about one per small batch); inserting their own, they would also
            // wait for one another to publish in order, a wake-up each. So the leader
            // inserts and publishes the whole group, and they only return. A group that
            // did not sync is inserted by its writers in parallel, who are running.
            let published = syncs && logged.is_ok();
            if let (true, Ok((mem, last))) = (published, &logged) {
                self.apply_group(mem, &group, *last);
            }
            queue = lock(&self.queue);
            let mut mine = None;
            for pending in group.drain(..) {
                let outcome = match &logged {
                    Ok((mem, _)) => {
                        let first = pending.batch.first_seqno();
                        Ok(Assigned {
                            first,
                            last: first + pending.batch.len() as u64 - 1,
                            payload: pending.batch.into_payload(),
                            mem: Arc::clone(mem),
                            published,
                        })
                    }
                    Err(err) => Err(err.clone()),
                };
                if pending.ticket == ticket {
                    mine = Some(outcome);
                } else {
                    queue.done.insert(pending.ticket, outcome);
                }
            }
            queue.spare = group;
            if let Some(mine) = mine {
                break mine;
            }
            self.queue_posts.fetch_add(1, Ordering::Release);
            queue.wake(&self.queue_cv);
        };
        queue.leader_active = false;
        queue.leader_syncs = false;
        // Wakes the writers whose outcomes are posted, and one that may lead next.
        self.queue_posts.fetch_add(1, Ordering::Release);
        queue.wake(&self.queue_cv);
        mine
    }

    /// Lets a leader about to sync wait until `expected` batches are queued, for at most
    /// twice the last `fdatasync`'s duration (and [`MAX_SYNC_JOIN_WAIT`]).
    ///
    /// Without it, synced group commit with several writers falls into a convoy: while a
    /// group syncs, one writer outside it queues and then leads the next group alone,
    /// because the group's own writers are still waking up; groups alternate large and
    /// single, about two writers per `fdatasync` with four writing. The writers of the
    /// last synced group come back soon, so the leader waits for as many (it yields rather
    /// than spins, since on a machine with fewer cores than writers they need its core to
    /// get here). A lone writer never waits: its last group was itself. The count is read
    /// without the lock, so this is only a hint; the group is taken under the lock as
    /// always.
    ///
    /// Why a budget longer than a sync pays: a joiner that arrives after `t` is
    /// acknowledged after `t` plus one sync either way (had the leader not waited, it
    /// would wait for the leader's sync and then its own), so waiting costs only the
    /// leader, and every joiner saves the disk a whole sync. How long joiners take to come
    /// back depends on how fast the scheduler wakes them, which on a virtual machine can
    /// take longer than the sync itself: there, twice the last sync forms larger groups
    /// than half of it (3.3-3.8 writes per sync against 3.1-3.4, about 7% more synced
    /// writes per second with four writers; `docs/durability.md`). One writer never
    /// waits.
    fn wait_for_joiners(&self, expected: usize) {
        let start = Instant::now();
        let budget = Duration::from_nanos(self.last_sync_nanos.load(Ordering::Relaxed))
            .saturating_mul(2)
            .min(MAX_SYNC_JOIN_WAIT);
        while self.queued.load(Ordering::Relaxed) < expected && start.elapsed() < budget {
            std::thread::yield_now();
        }
    }

    /// Spins until a leader posts (`queue_posts` moves past `seen`) or [`COMMIT_SPIN`]
    /// passes.
    fn spin_until_posted(&self, seen: u64) {
        crate::sync::spin_until(COMMIT_SPIN, || {
            self.queue_posts.load(Ordering::Acquire) != seen
        });
    }

    /// Whether level 0 is deep enough that the next group must be delayed.
    fn stall_needed(&self) -> bool {
        self.state.load().version.levels[0].len() >= self.options.slowdown_trigger()
    }

    /// Write stalls: at `l0_slowdown_trigger` level-0 tables, delays the calling leader by
    /// 1 ms, plus 1 ms for each table above the trigger; at `l0_stop_trigger`, blocks it
    /// until compaction brings level 0 below the stop trigger (or the database closes or is
    /// poisoned, which the group's log write then reports). The delay is the one place a
    /// sleep is right: it spreads the backlog's cost over many groups instead of stopping
    /// writes outright later, and the compaction worker needs no signal from it.
    fn stall_for_level0(&self) {
        let level0 = || self.state.load().version.levels[0].len();
        let (slowdown, stop) = (self.options.slowdown_trigger(), self.options.stop_trigger());
        let tables = level0();
        if tables < slowdown || self.options.is_manual_background() {
            return;
        }
        let start = Instant::now();
        if tables >= stop {
            Counters::add(&self.counters.stops, 1);
            let mut bg = lock(&self.bg);
            while level0() >= stop && !bg.shutdown && self.check_writable().is_ok() {
                bg = wait(&self.done_cv, bg);
            }
        } else {
            Counters::add(&self.counters.slowdowns, 1);
            let excess = (tables - slowdown + 1) as u32;
            std::thread::sleep(Duration::from_millis(1) * excess);
        }
        self.counters.add_stall_since(start);
    }

    /// Logs a group: stamps consecutive sequence numbers into its batches, appends them
    /// as one log record with one write and at most one sync; an unsynced group counts its
    /// bytes toward the background sync (see `log_sync.rs`). Returns the memtable they
    /// all go into and the last sequence number, or the error every batch of the group
    /// gets.
    ///
    /// Several batches become one record whose header is the group's first sequence
    /// number and total count, followed by every batch's operations in order: a valid
    /// batch payload, which replay applies as one. That makes the group atomic in the log
    /// as a whole, which loses nothing, since no batch of it is acknowledged before all of
    /// it is logged, and saves a fragment header and a batch header per extra batch (11
    /// bytes or so, a tenth of a small write's record; RocksDB merges its write groups
    /// the same way).
    fn lead(&self, group: &mut [Pending]) -> Result<(Arc<Memtable>, SeqNo)> {
        let mut log = lock(&self.log);
        self.check_writable()?;
        // Only holders of the log mutex replace the active memtable, so the state loaded
        // here has the memtable of the segment `log.writer` appends to.
        let mem = Arc::clone(&self.state.load().active);
        let first = log.next_seqno;
        let mut next = first;
        let mut sync = self.options.sync;
        for pending in group.iter_mut() {
            pending.batch.set_seqno(next);
            next += pending.batch.len() as u64;
            sync |= pending.sync;
        }
        let LogState {
            writer,
            group_record,
            number,
            unsynced_bytes,
            ..
        } = &mut *log;
        let before = writer.len();
        let appended = match group {
            [single] => writer.append([single.batch.payload()]),
            _ if encode_group(first, group.iter().map(|p| &p.batch), group_record) => {
                let appended = writer.append([&group_record[..]]);
                if group_record.capacity() > MAX_RETAINED_GROUP_RECORD {
                    *group_record = Vec::new();
                }
                appended
            }
            // A total count beyond the header's 32 bits: one record per batch.
            _ => writer.append(group.iter().map(|p| p.batch.payload())),
        };
        if let Err(err) = appended {
            let name = log_path(&self.dir, *number);
            return Err(self.poison(Error::io(
                format_args!("appending to log {}", name.display()),
                err,
            )));
        }
        // Planted bug (simulation only): a synced group is acknowledged without waiting for
        // its sync.
        if sync && !cfg!(floe_planted = "ack_before_fdatasync") {
            let start = Instant::now();
            self.sync_segment(*number, writer)?;
            Counters::add(&self.counters.log_syncs, 1);
            let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.last_sync_nanos.store(nanos, Ordering::Relaxed);
        } else {
            self.note_unsynced(unsynced_bytes, writer.len() - before);
        }
        log.next_seqno = next;
        // Every batch of a logged group is acknowledged, so the leader counts them all:
        // one add per group instead of two contended adds per writer.
        let user_bytes: usize = group.iter().map(|p| p.batch.approximate_size()).sum();
        Counters::add(&self.counters.user_bytes, user_bytes as u64);
        Counters::add(&self.counters.writes, group.len() as u64);
        Counters::add(&self.counters.write_groups, 1);
        Ok((mem, next - 1))
    }

    /// Inserts an assigned batch into its memtable and publishes it.
    fn apply(&self, assigned: &Assigned) {
        self.insert(&assigned.mem, [&assigned.payload[..]]);
        // Publish even after a failure in the insert: later batches must not wait forever.
        self.publisher.complete(assigned.first, assigned.last);
    }

    /// Inserts a whole logged group (whose last sequence number is `last`) into `mem` and
    /// publishes it, for its leader (see [`Shared::commit`]).
    fn apply_group(&self, mem: &Memtable, group: &[Pending], last: SeqNo) {
        let Some(first) = group.first().map(|p| p.batch.first_seqno()) else {
            return;
        };
        self.insert(mem, group.iter().map(|p| p.batch.payload()));
        self.publisher.complete(first, last);
    }

    /// Inserts stamped batch payloads into `mem`. The memtable copies keys and values into
    /// its arena, so the payloads are only borrowed.
    fn insert<'p>(&self, mem: &Memtable, payloads: impl IntoIterator<Item = &'p [u8]>) {
        let guard = match mem.enter() {
            Ok(guard) => guard,
            // Cannot happen: a memtable is frozen only after every batch assigned to it
            // is published. If it did, refuse further writes rather than lose one silently.
            Err(err) => {
                let _ = self.poison(Error::corruption(format!(
                    "internal error: a batch was assigned to a frozen memtable ({err})"
                )));
                return;
            }
        };
        for payload in payloads {
            match check_batch(payload) {
                Ok((first, _)) => {
                    for (seqno, (kind, key, value)) in (first..).zip(batch_op_slices(payload)) {
                        guard.insert_unchecked(key, seqno, kind, value);
                    }
                }
                // Cannot happen either: the payload is the one this process encoded.
                Err(err) => {
                    let _ = self.poison(err);
                    return;
                }
            }
        }
    }

    /// Freezes `mem` if it is still the active memtable and reached its capacity.
    fn maybe_freeze(&self, mem: &Arc<Memtable>) -> Result<()> {
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

        let number = self.new_file_number().map_err(|err| self.poison(err))?;
        let path = log_path(&self.dir, number);
        let created = self.fs.create(&path).and_then(|file| {
            // Planted bug (simulation only): the new segment's directory entry is not made
            // durable, so synced writes in it can vanish with it.
            if cfg!(floe_planted = "segment_dir_unsynced") {
                return Ok(file);
            }
            self.fs.sync_dir(&self.dir).map(|()| file)
        });
        let file = match created {
            Ok(file) => file,
            Err(err) => {
                return Err(self.poison(Error::io(
                    format_args!("creating log {}", path.display()),
                    err,
                )));
            }
        };
        self.prune_frozen_logs(log);
        let old_writer = mem::replace(
            &mut log.writer,
            LogWriter::segment(file, segment_reserve(self.options.write_buffer_size)),
        );
        let old_number = mem::replace(&mut log.number, number);
        log.frozen_logs.push((old_number, old_writer));

        let fresh = Arc::new(Memtable::new(self.options.write_buffer_size));
        let old = {
            let _installing = lock(&self.state_lock);
            let current = self.state.load_full();
            let mut frozen = Vec::with_capacity(current.frozen.len() + 1);
            frozen.push(FrozenMem {
                mem: Arc::clone(&current.active),
                log_number: old_number,
            });
            frozen.extend(current.frozen.iter().cloned());
            self.state.store(Arc::new(State {
                active: fresh,
                log_number: number,
                frozen,
                version: Arc::clone(&current.version),
            }));
            current
        };
        // Closes the writer gate; nobody is inside thanks to the drain above.
        old.active.freeze();
        self.wake_flusher();
        Ok(())
    }

    /// Drops the writers of segments whose memtable is flushed (their files are deleted or
    /// about to be), so that their descriptors do not pile up.
    pub(crate) fn prune_frozen_logs(&self, log: &mut LogState) {
        let state = self.state.load();
        log.frozen_logs
            .retain(|(number, _)| state.frozen.iter().any(|f| f.log_number == *number));
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
        let mut bg = lock(&self.bg);
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
            bg = wait(&self.done_cv, bg);
        };
        drop(bg);
        if let Some(start) = waiting_since {
            self.counters.add_stall_since(start);
        }
        result
    }

    /// Makes every acknowledged write durable: syncs the segments of the frozen memtables
    /// that are not flushed yet, then the active segment.
    pub(crate) fn sync(&self) -> Result<()> {
        let mut log = lock(&self.log);
        self.sync_locked(&mut log)
    }

    /// [`Shared::sync`] for a holder of the log mutex.
    pub(crate) fn sync_locked(&self, log: &mut LogState) -> Result<()> {
        if let Some(err) = self.poison_error() {
            return Err(err);
        }
        self.prune_frozen_logs(log);
        let LogState {
            writer,
            frozen_logs,
            number,
            unsynced_bytes,
            ..
        } = log;
        for (segment, frozen) in frozen_logs.iter_mut() {
            self.sync_segment(*segment, frozen)?;
            // A frozen segment takes no more records, so the marker stating this sync is
            // appended on its own; the next sync of the segment makes it durable.
            self.seal_segment(*segment, frozen)?;
            Counters::add(&self.counters.log_syncs, 1);
        }
        self.sync_segment(*number, writer)?;
        // Every segment is synced: the background syncer's byte window starts afresh.
        *unsynced_bytes = 0;
        Counters::add(&self.counters.log_syncs, 1);
        Ok(())
    }
}
