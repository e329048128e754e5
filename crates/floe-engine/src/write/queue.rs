//! [`CommitQueue`]: where writers queue their batches for a leader, how a writer learns
//! whether it leads or waits, how a leader takes a group, and where it posts each
//! writer's outcome.
//!
//! The queue knows nothing of the log or the memtables: the leader's work between taking
//! a group and posting its outcomes is `commit.rs`'s. What it keeps is the protocol
//! between writers and leaders:
//!
//! - at most one leader at a time (`leader_active`), and a writer that finds neither a
//!   leader nor its outcome becomes the next one, in the same critical section;
//! - a leader posts the outcomes of its whole group and, if its own batch was in it,
//!   steps down in one critical section, so a writer that sees no leader and no outcome
//!   is still pending;
//! - the counts that writers and leaders read without the lock (`posts`, `queued`,
//!   `last_sync_nanos`) are hints for spinning and waiting only; every decision is made
//!   again under the lock.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::mem;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use floe_core::{MAX_SEQNO, SeqNo};

use crate::error::{Error, Result};
use crate::sync::{lock, spin_until, wait};
use crate::version::State;
use crate::write::batch::WriteBatch;

/// The most bytes of keys and values one commit group carries (beyond its first batch),
/// so that a small write never waits behind an unbounded group.
pub(super) const MAX_GROUP_BYTES: usize = 1 << 20;

/// The longest a leader about to sync waits for joiners (see
/// [`CommitQueue::wait_for_joiners`]), whatever the disk's sync time.
const MAX_SYNC_JOIN_WAIT: Duration = Duration::from_millis(1);

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

/// The hasher of the posted outcomes' map, keyed by ticket. Tickets are distinct
/// consecutive numbers the queue hands out, never chosen by a caller, so a multiplication by
/// an odd constant (Fibonacci hashing) spreads them over the table as well as the default
/// SipHash would, at a fraction of its cost: a writer that waits for its outcome hashes its
/// ticket twice (the post and the pick-up), and a leader looks its own up in every turn.
#[derive(Debug, Default)]
struct TicketHasher(u64);

impl Hasher for TicketHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not used for `u64` keys; any other input still hashes, byte by byte.
        for &byte in bytes {
            self.write_u64(self.0 ^ u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A queued batch.
#[derive(Debug)]
pub(super) struct Pending {
    ticket: u64,
    pub(super) batch: WriteBatch,
    sync: bool,
}

/// What the leader hands a writer: where its batch goes.
#[derive(Debug)]
pub(crate) struct Assigned {
    pub(super) first: SeqNo,
    pub(super) last: SeqNo,
    /// The batch, stamped: its payload is what the writer inserts.
    pub(super) batch: WriteBatch,
    /// Where it was logged and goes: the state whose active memtables take it.
    pub(super) target: Target,
    /// Whether the leader already inserted and published the batch (a synced group).
    pub(super) published: bool,
}

/// Where a logged group goes: the state loaded under the log mutex, whose active
/// memtables stay active until the group is published, and the segment it is in.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) state: Arc<State>,
    pub(crate) segment: u64,
}

/// The batches a leader took from the queue, in queue order.
#[derive(Debug)]
pub(crate) struct Group {
    pending: Vec<Pending>,
    /// Whether a sync was due when the group was taken (`Options::sync`, or some queued
    /// batch asked for one). Its writers then block at once instead of spinning, and the
    /// leader inserts and publishes the group for them (see `commit.rs`).
    syncs: bool,
    /// Transactions' commits that failed validation, taken out of the group before it
    /// was stamped, with the error each writer gets.
    rejected: Vec<(u64, Error)>,
}

impl Group {
    /// The batches of the group.
    pub(super) fn batches(&self) -> impl ExactSizeIterator<Item = &WriteBatch> + Clone {
        self.pending.iter().map(|p| &p.batch)
    }

    /// Stamps consecutive sequence numbers from `first` into the batches; returns the
    /// first number after them, or `None` (nothing stamped) if they would pass
    /// [`MAX_SEQNO`].
    pub(super) fn stamp(&mut self, first: SeqNo) -> Option<SeqNo> {
        let total: u64 = self.pending.iter().map(|p| p.batch.len() as u64).sum();
        let next = first
            .checked_add(total)
            .filter(|next| *next <= MAX_SEQNO + 1)?;
        let mut at = first;
        for pending in &mut self.pending {
            pending.batch.set_seqno(at);
            at += pending.batch.len() as u64;
        }
        Some(next)
    }

    /// Whether a batch of the group is a transaction's commit, to validate.
    pub(super) fn has_validation(&self) -> bool {
        self.pending.iter().any(|p| p.batch.validation().is_some())
    }

    /// Validates the transactions' commits of the group in order, before it is stamped:
    /// `check` gets each one with the batches ahead of it that stay in the group, and a
    /// commit it refuses leaves the group with that error as its writer's outcome.
    pub(super) fn validate(
        &mut self,
        mut check: impl FnMut(&WriteBatch, &[Pending]) -> Result<()>,
    ) {
        let all = mem::take(&mut self.pending);
        let mut kept = Vec::with_capacity(all.len());
        for pending in all {
            if pending.batch.validation().is_some()
                && let Err(err) = check(&pending.batch, &kept)
            {
                self.rejected.push((pending.ticket, err));
                continue;
            }
            kept.push(pending);
        }
        self.pending = kept;
    }

    /// Whether every batch left the group (all were refused by validation).
    pub(super) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether a batch of the group itself asked for a sync.
    pub(super) fn asks_sync(&self) -> bool {
        self.pending.iter().any(|p| p.sync)
    }

    /// Whether a sync was due when the group was taken (see [`Group::syncs`]).
    pub(super) fn syncs(&self) -> bool {
        self.syncs
    }

    /// How many batches the group holds.
    pub(super) fn len(&self) -> usize {
        self.pending.len()
    }
}

/// What [`CommitQueue::wait_turn`] found.
pub(crate) enum Turn<'a> {
    /// A leader logged the batch (or failed to): its outcome.
    Done(Result<Assigned>),
    /// No leader was at work: the caller leads now, holding the queue.
    Lead(MutexGuard<'a, Queue>),
}

/// What [`CommitQueue::post`] leaves its leader with.
pub(crate) enum Posted<'a> {
    /// The leader's own batch was in the group: its outcome. The leader stepped down.
    Mine(Result<Assigned>),
    /// It was not: the leader leads the next group, holding the queue.
    Next(MutexGuard<'a, Queue>),
}

/// What the queue's lock guards.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    next_ticket: u64,
    pending: Vec<Pending>,
    /// Outcomes the leader posted for writers that have not picked them up yet.
    done: HashMap<u64, Result<Assigned>, BuildHasherDefault<TicketHasher>>,
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
    /// back (see [`CommitQueue::wait_for_joiners`]).
    last_sync_group: usize,
    /// Whether the active leader's group syncs: its outcomes are then a whole
    /// `fdatasync` away, and a waiting writer blocks at once instead of spinning.
    leader_syncs: bool,
}

/// The commit queue of a database (see the module docs).
#[derive(Debug)]
pub(crate) struct CommitQueue {
    queue: Mutex<Queue>,
    /// Wakes the writers blocked waiting for their outcome or their turn to lead.
    posted: Condvar,
    /// Bumped (under the queue lock) each time a leader posts outcomes or steps down, so
    /// that a waiting writer can spin on it briefly before it blocks on `posted`.
    posts: AtomicU64,
    /// The number of batches in the queue, mirrored from under the queue lock so that a
    /// sync leader can wait for joiners without taking it.
    queued: AtomicUsize,
    /// How long the last commit group's `fdatasync` took, in nanoseconds.
    last_sync_nanos: AtomicU64,
    /// Whether writers spin before blocking, and sync leaders wait for joiners: only with
    /// more than one CPU, where the leader runs while they spin.
    spin: bool,
}

impl CommitQueue {
    /// An empty queue; `spin` as for [`CommitQueue::spin`].
    pub(crate) fn new(spin: bool) -> CommitQueue {
        CommitQueue {
            queue: Mutex::new(Queue::default()),
            posted: Condvar::new(),
            posts: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            last_sync_nanos: AtomicU64::new(0),
            spin,
        }
    }

    /// Locks the queue.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Queue> {
        lock(&self.queue)
    }

    /// Queues `batch` (to be synced if `sync`); returns its ticket, still holding the
    /// queue.
    pub(crate) fn enqueue(&self, batch: WriteBatch, sync: bool) -> (u64, MutexGuard<'_, Queue>) {
        let mut queue = self.lock();
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.pending.push(Pending {
            ticket,
            batch,
            sync,
        });
        self.queued.store(queue.pending.len(), Ordering::Relaxed);
        (ticket, queue)
    }

    /// Waits until the batch of `ticket` is logged by a leader, or until no leader is at
    /// work, in which case the caller becomes the leader.
    pub(crate) fn wait_turn<'a>(
        &'a self,
        mut queue: MutexGuard<'a, Queue>,
        ticket: u64,
    ) -> Turn<'a> {
        let mut spun = false;
        loop {
            if let Some(outcome) = queue.done.remove(&ticket) {
                return Turn::Done(outcome);
            }
            // A leader posts the outcomes of its whole group and clears `leader_active`
            // in one critical section, so a writer that sees no leader and no outcome is
            // still pending, and leads its own group.
            if !queue.leader_active {
                break;
            }
            if !spun && self.spin && !queue.leader_syncs {
                // The leader is most likely logging this batch right now, one `write`
                // away from posting it: waiting for that by spinning costs less than
                // sleeping and being woken (two context switches and a wake-up call).
                // Everything is checked again under the lock afterwards, so the spin is
                // only a hint and can never miss a post. A leader that syncs is a whole
                // `fdatasync` away, far longer than the spin: spinning would only take
                // the CPU from the writers that are about to join the next group.
                spun = true;
                let seen = self.posts.load(Ordering::Acquire);
                drop(queue);
                self.spin_until_posted(seen);
                queue = self.lock();
                continue;
            }
            queue.waiters += 1;
            queue = wait(&self.posted, queue);
            queue.waiters -= 1;
            spun = false;
        }
        queue.leader_active = true;
        Turn::Lead(queue)
    }

    /// Takes the next group for the leader holding `queue`, and releases the queue: the
    /// group is logged without it. A sync is due if `always_sync` or a queued batch asks
    /// for one; a leader about to sync first waits for joiners (see
    /// [`CommitQueue::wait_for_joiners`]).
    pub(crate) fn take_group<'a>(
        &'a self,
        mut queue: MutexGuard<'a, Queue>,
        always_sync: bool,
    ) -> Group {
        let syncs = always_sync || queue.pending.iter().any(|p| p.sync);
        queue.leader_syncs = syncs;
        if syncs && self.spin && queue.pending.len() < queue.last_sync_group {
            let expected = queue.last_sync_group;
            drop(queue);
            self.wait_for_joiners(expected);
            queue = self.lock();
        }
        let take = group_len(&queue.pending);
        let mut pending = mem::take(&mut queue.spare);
        if take == queue.pending.len() {
            // The whole queue: the two vectors trade places instead of moving every batch.
            mem::swap(&mut pending, &mut queue.pending);
        } else {
            pending.extend(queue.pending.drain(..take));
        }
        self.queued.store(queue.pending.len(), Ordering::Relaxed);
        if syncs {
            queue.last_sync_group = pending.len();
        }
        Group {
            pending,
            syncs,
            rejected: Vec::new(),
        }
    }

    /// Posts the outcome of every batch of `group`: where it went if `logged` (the
    /// target and the group's last sequence number), the error otherwise; `published`
    /// if the leader already inserted and published the group. If the leader's own batch
    /// (`ticket`) was in the group, the leader steps down in the same critical section
    /// and gets its outcome; otherwise it keeps the queue to lead the next group.
    pub(crate) fn post(
        &self,
        mut group: Group,
        logged: &Result<(Target, SeqNo)>,
        published: bool,
        ticket: u64,
    ) -> Posted<'_> {
        let mut queue = self.lock();
        let mut mine = None;
        // The outcomes go into a map, so their order does not matter: popping from the back
        // leaves the group's vector empty, with its capacity, for the next group.
        while let Some(pending) = group.pending.pop() {
            let outcome = match logged {
                Ok((target, _)) => {
                    let first = pending.batch.first_seqno();
                    Ok(Assigned {
                        first,
                        last: first + pending.batch.len() as u64 - 1,
                        batch: pending.batch,
                        target: target.clone(),
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
        for (rejected, err) in group.rejected.drain(..) {
            let outcome = Err(err);
            if rejected == ticket {
                mine = Some(outcome);
            } else {
                queue.done.insert(rejected, outcome);
            }
        }
        queue.spare = group.pending;
        if let Some(mine) = mine {
            queue.leader_active = false;
            queue.leader_syncs = false;
            // Wakes the writers whose outcomes are posted, and one that may lead next.
            self.posts.fetch_add(1, Ordering::Release);
            self.wake(&queue);
            return Posted::Mine(mine);
        }
        self.posts.fetch_add(1, Ordering::Release);
        self.wake(&queue);
        Posted::Next(queue)
    }

    /// Records how long a commit group's `fdatasync` took, for the next sync leader's
    /// wait for joiners.
    pub(crate) fn record_sync(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.last_sync_nanos.store(nanos, Ordering::Relaxed);
    }

    /// Wakes the blocked writers, if there are any.
    fn wake(&self, queue: &Queue) {
        if queue.waiters > 0 {
            self.posted.notify_all();
        }
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

    /// Spins until a leader posts (`posts` moves past `seen`) or [`COMMIT_SPIN`] passes.
    fn spin_until_posted(&self, seen: u64) {
        spin_until(COMMIT_SPIN, || self.posts.load(Ordering::Acquire) != seen);
    }
}
