//! The engine state that reads load without a lock (the active memtable, the frozen ones
//! and the tables of each level), and [`CurrentState`], which holds the latest one and is
//! the only way to replace it.
//!
//! A state is immutable once installed. Every change (a memtable switch, a flush, a
//! compaction) builds the next state from the latest one inside
//! [`CurrentState::install`] and publishes it with one `ArcSwap` store, so a read sees
//! either the old or the new state, never a mixture: a flush removes a frozen memtable
//! and adds its table in the same store, so no key is ever missing in between. The three
//! changes are the three ways to derive a state: [`State::with_active_frozen`],
//! [`State::with_flushed`] and [`State::with_tables`]; creating and dropping a keyspace
//! are two more ([`State::with_tree`], [`State::without_tree`]).
//!
//! Each keyspace is a [`Tree`] of its own: memtables and levels. The log is shared: a
//! memtable's writes lie in the segments from the oldest that holds one of them up to the
//! one created when it was frozen, and a segment is obsolete once no memtable with a write
//! in it is left ([`State::oldest_needed_log`]).

use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};
use bytes::Bytes;
use floe_core::SeqNo;
use floe_core::range_del::Fragments;
use floe_memtable::Memtable;

use crate::error::Result;
use crate::iter::BoxedSource;
use crate::keyspace::KeyspaceId;
use crate::options::Options;
use crate::range_del::{value_of, visible_within, weigh};
use crate::sync::lock;
use crate::version::levels::Version;
use crate::version::table::TableHandle;

/// The latest [`State`], which reads load without a lock, and the one way to replace it.
///
/// Invariant: the state is replaced only by [`CurrentState::install`], under the install
/// mutex, and always by a state derived from the latest one (never from a copy loaded
/// earlier). So no change is lost to a concurrent one that started from a stale state:
/// a flush that installs its table while a freeze pushes a new frozen memtable keeps
/// both. The `ArcSwap` is private to this type, so no other code can store into it.
#[derive(Debug)]
pub(crate) struct CurrentState {
    latest: ArcSwap<State>,
    /// Whether the latest state's level 0 calls for a write stall (its
    /// `level0_stall.slowdown_excess` is above zero), set with each state, so that a commit
    /// leader checks it with one load instead of loading the state.
    stalls: AtomicBool,
    /// Held while the next state is derived and stored. A leaf of the lock order: nothing
    /// else is locked while it is held.
    installing: Mutex<()>,
}

impl CurrentState {
    /// Holds `state` as the first state.
    pub(crate) fn new(state: State) -> CurrentState {
        CurrentState {
            stalls: AtomicBool::new(state.level0_stall.slowdown_excess > 0),
            latest: ArcSwap::from_pointee(state),
            installing: Mutex::new(()),
        }
    }

    /// The latest state, for a short read (an `arc-swap` guard, no reference count).
    pub(crate) fn load(&self) -> Guard<Arc<State>> {
        self.latest.load()
    }

    /// The latest state, to keep (an iterator, a job that outlives the call).
    pub(crate) fn load_full(&self) -> Arc<State> {
        self.latest.load_full()
    }

    /// Replaces the latest state `current` by `next(current)` and returns `current`.
    ///
    /// `next` runs under the install mutex, so it sees the latest state and no other
    /// install can come between its reading and the store; it must only build the next
    /// state from `current` (no lock, no I/O), so that an install is short and the mutex
    /// stays a leaf of the lock order.
    pub(crate) fn install(&self, next: impl FnOnce(&State) -> State) -> Arc<State> {
        let _installing = lock(&self.installing);
        let current = self.latest.load_full();
        let next = next(&current);
        self.stalls
            .store(next.level0_stall.slowdown_excess > 0, Ordering::Relaxed);
        self.latest.store(Arc::new(next));
        current
    }

    /// Whether the latest state's level 0 calls for a write stall (see
    /// [`Level0Stall::slowdown_excess`]). Relaxed: a leader that reads it just before an
    /// install stalls from the next group on, as it would had it loaded the state a moment
    /// earlier; the stall itself reads the state.
    pub(crate) fn stalls(&self) -> bool {
        self.stalls.load(Ordering::Relaxed)
    }
}

/// The memtable of a keyspace that receives writes, with the oldest log segment that
/// holds one of its writes.
#[derive(Clone, Debug)]
pub(crate) struct ActiveMem {
    pub(crate) mem: Arc<Memtable>,
    /// The oldest segment holding a write of `mem`, `u64::MAX` while it holds none.
    /// Lowered by each insert before its batch is published (see
    /// [`ActiveMem::note_segment`]), so that a memtable switch, which waits for every
    /// assigned batch to be published, sees it exact.
    first_log: Arc<AtomicU64>,
}

impl ActiveMem {
    /// A fresh, empty memtable of `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> ActiveMem {
        ActiveMem {
            mem: Arc::new(Memtable::new(capacity)),
            first_log: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }

    /// Records that a write in segment `segment` goes into this memtable.
    pub(crate) fn note_segment(&self, segment: u64) {
        // A load first: after the first write of a segment the store is never needed, and
        // the cache line stays shared between the writers.
        if self.first_log.load(Ordering::Relaxed) > segment {
            self.first_log.fetch_min(segment, Ordering::Relaxed);
        }
    }

    /// The oldest segment holding one of its writes, if it holds any.
    pub(crate) fn first_log(&self) -> Option<u64> {
        let first = self.first_log.load(Ordering::Relaxed);
        (first != u64::MAX).then_some(first)
    }
}

/// A frozen memtable waiting for its flush, with the log segments that hold its writes.
#[derive(Clone, Debug)]
pub(crate) struct FrozenMem {
    pub(crate) mem: Arc<Memtable>,
    /// The keyspace it belongs to.
    pub(crate) keyspace: KeyspaceId,
    /// Its writes lie in the segments from `first_log` (the oldest holding one) up to, not
    /// including, `end_log`, the segment created when it was frozen.
    pub(crate) first_log: u64,
    pub(crate) end_log: u64,
}

/// One keyspace's memtables and tables, as one state holds them.
#[derive(Clone, Debug)]
pub(crate) struct Tree {
    pub(crate) id: KeyspaceId,
    pub(crate) name: Arc<str>,
    /// The database options with this keyspace's tree options put in.
    pub(crate) options: Arc<Options>,
    /// The memtable that receives writes.
    pub(crate) active: ActiveMem,
    /// Frozen memtables waiting for their flush, newest first.
    pub(crate) frozen: Vec<FrozenMem>,
    /// The tables.
    pub(crate) version: Arc<Version>,
}

impl Tree {
    /// An empty keyspace.
    pub(crate) fn new(id: KeyspaceId, name: &str, options: Arc<Options>, version: Version) -> Tree {
        Tree {
            id,
            name: Arc::from(name),
            active: ActiveMem::new(options.write_buffer_size),
            options,
            frozen: Vec::new(),
            version: Arc::new(version),
        }
    }

    /// The newest version of `user_key` at or below `snapshot`: memtables first (newest
    /// first), then tables. `None` if the key has no version or its newest is a tombstone.
    ///
    /// Range tombstones are weighed source by source (see [`crate::range_del::weigh`]): a
    /// lookup never scans the keys a range covers, and stops at the first source that
    /// resolves the key or the first that leaves it covered.
    pub(crate) fn get(&self, user_key: &[u8], snapshot: SeqNo) -> Result<Option<Bytes>> {
        let mut covering = None;
        for mem in self.memtables() {
            covering = covering.max(mem.max_covering(user_key, snapshot));
            if let Some(found) = weigh(mem.get_version(user_key, snapshot), covering) {
                return Ok(value_of(found));
            }
        }
        Ok(self
            .version
            .get(user_key, snapshot, covering)?
            .and_then(value_of))
    }

    /// Whether any memtable or table of the keyspace holds a range tombstone.
    pub(crate) fn has_range_tombstones(&self) -> bool {
        self.version.has_range_tombstones()
            || self.memtables().any(|m| m.range_tombstone_count() > 0)
    }

    /// The largest user key any memtable or table of the keyspace may hold (a table's
    /// largest key bounds its keys from above), `None` if it holds none: no version that
    /// a range tombstone written now can delete lies above it.
    pub(crate) fn max_user_key(&self) -> Option<Bytes> {
        let tables = self
            .version
            .tables()
            .map(|t| t.file.largest.user_key.clone());
        self.memtables()
            .filter_map(|m| m.max_key())
            .chain(tables)
            .max()
    }

    /// The active memtable, then the frozen ones, newest first.
    pub(crate) fn memtables(&self) -> impl Iterator<Item = &Arc<Memtable>> {
        std::iter::once(&self.active.mem).chain(self.frozen.iter().map(|f| &f.mem))
    }

    /// The sources of a scan within the bounds: every memtable, then every table.
    pub(crate) fn sources(&self, lower: &Bound<Bytes>, upper: &Bound<Bytes>) -> Vec<BoxedSource> {
        let mut sources: Vec<BoxedSource> = Vec::new();
        for mem in self.memtables() {
            if !mem.is_empty() {
                sources.push(Box::new(mem.entries(lower.clone(), upper.clone()).map(Ok)));
            }
        }
        self.version
            .sources(as_slice_bound(lower), as_slice_bound(upper), &mut sources);
        sources
    }

    /// The range tombstones of every memtable and table that a scan within the bounds at
    /// `snapshot` must respect, as one oracle (empty, and nothing gathered, when the
    /// keyspace holds none).
    pub(crate) fn scan_ranges(
        &self,
        lower: &Bound<Bytes>,
        upper: &Bound<Bytes>,
        snapshot: SeqNo,
    ) -> Fragments {
        let (lower, upper) = (as_slice_bound(lower), as_slice_bound(upper));
        let mut gathered = Vec::new();
        for mem in self.memtables() {
            if let Some(ranges) = mem.range_tombstones() {
                gathered.extend(visible_within(&ranges, lower, upper, snapshot));
            }
        }
        if self.version.has_range_tombstones() {
            for table in self.version.tables() {
                let ranges = table.range_tombstones();
                if !ranges.is_empty() && table.overlaps(lower, upper) {
                    gathered.extend(visible_within(ranges, lower, upper, snapshot));
                }
            }
        }
        Fragments::new(gathered)
    }

    /// The oldest log segment holding a write of this keyspace that is in no table yet,
    /// leaving out the frozen memtable `flushing` (whose flush asks).
    pub(crate) fn oldest_unflushed_log(&self, flushing: Option<&Arc<Memtable>>) -> Option<u64> {
        let frozen = self
            .frozen
            .iter()
            .rev()
            .find(|f| flushing.is_none_or(|mem| !Arc::ptr_eq(&f.mem, mem)))
            .map(|f| f.first_log);
        frozen.or_else(|| self.active.first_log())
    }

    /// This keyspace after a memtable switch: `fresh` receives the writes, and the active
    /// memtable joins the frozen ones (at the front), its writes ending before segment
    /// `end_log`.
    fn with_active_frozen(&self, fresh: ActiveMem, end_log: u64) -> Tree {
        let mut frozen = Vec::with_capacity(self.frozen.len() + 1);
        frozen.push(FrozenMem {
            mem: Arc::clone(&self.active.mem),
            keyspace: self.id,
            first_log: self.active.first_log().unwrap_or(end_log),
            end_log,
        });
        frozen.extend(self.frozen.iter().cloned());
        Tree {
            active: fresh,
            frozen,
            ..self.clone()
        }
    }
}

/// One immutable engine state (RocksDB's SuperVersion): every keyspace's memtables and
/// tables, and the active log segment.
#[derive(Clone, Debug)]
pub(crate) struct State {
    /// The active log segment, which every commit group appends to.
    pub(crate) log_number: u64,
    /// The keyspaces, by ascending id; the first is `"default"` (id 0), which always exists.
    pub(crate) trees: Vec<Arc<Tree>>,
    /// How deep the deepest level 0 is against its keyspace's triggers (see
    /// [`Level0Stall`]), computed once per state so that a commit leader reads it for free.
    pub(crate) level0_stall: Level0Stall,
}

/// Level-0 pressure for the write stalls (`write/stall.rs`), over every keyspace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Level0Stall {
    /// The most level-0 tables any keyspace holds at or above its slowdown trigger,
    /// counted from the trigger (1 at the trigger); 0 if none is there.
    pub(crate) slowdown_excess: usize,
    /// Whether some keyspace holds its stop trigger's count of level-0 tables.
    pub(crate) stop: bool,
}

impl State {
    /// A state of the active segment `log_number` and the keyspaces `trees` (ascending by
    /// id, `"default"` first).
    pub(crate) fn new(log_number: u64, trees: Vec<Arc<Tree>>) -> State {
        let mut stall = Level0Stall::default();
        for tree in &trees {
            let tables = tree.version.levels[0].len();
            let slowdown = tree.options.slowdown_trigger();
            if tables >= slowdown {
                stall.slowdown_excess = stall.slowdown_excess.max(tables - slowdown + 1);
            }
            stall.stop |= tables >= tree.options.stop_trigger();
        }
        State {
            log_number,
            trees,
            level0_stall: stall,
        }
    }

    /// The keyspace numbered `id`, if it exists (was not dropped).
    pub(crate) fn tree(&self, id: KeyspaceId) -> Option<&Arc<Tree>> {
        // The ids ascend from 0 and are never reused, so keyspace `id` is at index `id`
        // unless some keyspace below it was dropped: one look before the search.
        if let Some(tree) = self.trees.get(id as usize)
            && tree.id == id
        {
            return Some(tree);
        }
        self.trees
            .binary_search_by_key(&id, |tree| tree.id)
            .ok()
            .map(|at| &self.trees[at])
    }

    /// The `"default"` keyspace.
    pub(crate) fn default_tree(&self) -> &Arc<Tree> {
        &self.trees[0]
    }

    /// How many frozen memtables wait for their flush, over every keyspace.
    pub(crate) fn frozen_count(&self) -> usize {
        self.trees.iter().map(|t| t.frozen.len()).sum()
    }

    /// The frozen memtable to flush next: the one whose writes end in the oldest segment
    /// (oldest first within its keyspace), so that segments go as early as they can.
    pub(crate) fn oldest_frozen(&self) -> Option<FrozenMem> {
        self.trees
            .iter()
            .filter_map(|t| t.frozen.last())
            .min_by_key(|f| f.end_log)
            .cloned()
    }

    /// The oldest log segment that holds a write in no table yet (the active segment if
    /// there is none), leaving out the frozen memtable `flushing`. Every older segment is
    /// obsolete.
    pub(crate) fn oldest_needed_log(&self, flushing: Option<&Arc<Memtable>>) -> u64 {
        self.trees
            .iter()
            .filter_map(|t| t.oldest_unflushed_log(flushing))
            .fold(self.log_number, u64::min)
    }

    /// This state with `tree` in place of the keyspace of the same id, or added.
    pub(crate) fn with_tree(&self, tree: Tree) -> State {
        let mut trees = self.trees.clone();
        match trees.binary_search_by_key(&tree.id, |t| t.id) {
            Ok(at) => trees[at] = Arc::new(tree),
            Err(at) => trees.insert(at, Arc::new(tree)),
        }
        State::new(self.log_number, trees)
    }

    /// This state without keyspace `id`.
    pub(crate) fn without_tree(&self, id: KeyspaceId) -> State {
        let trees = self.trees.iter().filter(|t| t.id != id).cloned().collect();
        State::new(self.log_number, trees)
    }

    /// A memtable switch: the keyspaces `switched` get fresh memtables (`fresh`, in the
    /// same order), their active ones join their frozen memtables, and segment
    /// `log_number` becomes the active segment.
    pub(crate) fn with_active_frozen(
        &self,
        switched: &[KeyspaceId],
        fresh: Vec<ActiveMem>,
        log_number: u64,
    ) -> State {
        let mut trees = self.trees.clone();
        for (id, fresh) in switched.iter().zip(fresh) {
            if let Ok(at) = trees.binary_search_by_key(id, |t| t.id) {
                trees[at] = Arc::new(trees[at].with_active_frozen(fresh, log_number));
            }
        }
        State::new(log_number, trees)
    }

    /// A flush: the frozen memtable `frozen` leaves its keyspace, and `tables` (its table,
    /// if it held anything) arrive in level 0, in the same state. Nothing changes if the
    /// keyspace was dropped meanwhile.
    pub(crate) fn with_flushed(&self, frozen: &FrozenMem, tables: Vec<Arc<TableHandle>>) -> State {
        let Some(tree) = self.tree(frozen.keyspace) else {
            return self.clone();
        };
        let remaining = tree
            .frozen
            .iter()
            .filter(|f| !Arc::ptr_eq(&f.mem, &frozen.mem))
            .cloned()
            .collect();
        let version = tree
            .version
            .apply(tables.into_iter().map(|t| (0, t)).collect(), &[]);
        self.with_tree(Tree {
            frozen: remaining,
            version: Arc::new(version),
            ..Tree::clone(tree)
        })
    }

    /// A compaction in keyspace `id`: the tables `removed` (level, number) leave and
    /// `added` arrive; the memtables are untouched. Nothing changes if the keyspace was
    /// dropped meanwhile.
    pub(crate) fn with_tables(
        &self,
        id: KeyspaceId,
        added: Vec<(u32, Arc<TableHandle>)>,
        removed: &[(u32, u64)],
    ) -> State {
        let Some(tree) = self.tree(id) else {
            return self.clone();
        };
        self.with_tree(Tree {
            version: Arc::new(tree.version.apply(added, removed)),
            ..Tree::clone(tree)
        })
    }
}

/// Borrows a `Bound<Bytes>` as a `Bound<&[u8]>`.
pub(crate) fn as_slice_bound(bound: &Bound<Bytes>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_ref()),
        Bound::Excluded(key) => Bound::Excluded(key.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}
