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
//! [`State::with_flushed`] and [`State::with_tables`].

use std::ops::Bound;
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};
use bytes::Bytes;
use floe_core::{SeqNo, ValueKind};
use floe_memtable::{Lookup, Memtable};

use crate::error::Result;
use crate::iter::BoxedSource;
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
    /// Held while the next state is derived and stored. A leaf of the lock order: nothing
    /// else is locked while it is held.
    installing: Mutex<()>,
}

impl CurrentState {
    /// Holds `state` as the first state.
    pub(crate) fn new(state: State) -> CurrentState {
        CurrentState {
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
        self.latest.store(Arc::new(next(&current)));
        current
    }
}

/// A frozen memtable waiting for its flush, with the log segment that holds its writes.
#[derive(Clone, Debug)]
pub(crate) struct FrozenMem {
    pub(crate) mem: Arc<Memtable>,
    pub(crate) log_number: u64,
}

/// One immutable engine state (RocksDB's SuperVersion).
#[derive(Clone, Debug)]
pub(crate) struct State {
    /// The memtable that receives writes.
    pub(crate) active: Arc<Memtable>,
    /// The log segment that holds exactly the writes of `active`.
    pub(crate) log_number: u64,
    /// Frozen memtables waiting for their flush, newest first.
    pub(crate) frozen: Vec<FrozenMem>,
    /// The tables.
    pub(crate) version: Arc<Version>,
}

impl State {
    /// The newest version of `user_key` at or below `snapshot`: memtables first (newest
    /// first), then tables. `None` if the key has no version or its newest is a tombstone.
    pub(crate) fn get(&self, user_key: &[u8], snapshot: SeqNo) -> Result<Option<Bytes>> {
        let memtables = std::iter::once(&self.active).chain(self.frozen.iter().map(|f| &f.mem));
        for mem in memtables {
            match mem.get(user_key, snapshot) {
                Some(Lookup::Value(value)) => return Ok(Some(value)),
                Some(Lookup::Deleted) => return Ok(None),
                None => {}
            }
        }
        Ok(match self.version.get(user_key, snapshot)? {
            Some((ValueKind::Put, value)) => Some(value),
            Some((ValueKind::Delete, _)) | None => None,
        })
    }

    /// The sources of a scan within the bounds: every memtable, then every table.
    pub(crate) fn sources(&self, lower: &Bound<Bytes>, upper: &Bound<Bytes>) -> Vec<BoxedSource> {
        let mut sources: Vec<BoxedSource> = Vec::new();
        let memtables = std::iter::once(&self.active).chain(self.frozen.iter().map(|f| &f.mem));
        for mem in memtables {
            if !mem.is_empty() {
                sources.push(Box::new(mem.entries(lower.clone(), upper.clone()).map(Ok)));
            }
        }
        self.version
            .sources(as_slice_bound(lower), as_slice_bound(upper), &mut sources);
        sources
    }

    /// A memtable switch: `fresh`, whose writes go to segment `log_number`, becomes the
    /// active memtable, and the active one joins the frozen memtables (at the front, the
    /// newest) with its segment `frozen_log`.
    pub(crate) fn with_active_frozen(
        &self,
        fresh: Arc<Memtable>,
        log_number: u64,
        frozen_log: u64,
    ) -> State {
        let mut frozen = Vec::with_capacity(self.frozen.len() + 1);
        frozen.push(FrozenMem {
            mem: Arc::clone(&self.active),
            log_number: frozen_log,
        });
        frozen.extend(self.frozen.iter().cloned());
        State {
            active: fresh,
            log_number,
            frozen,
            version: Arc::clone(&self.version),
        }
    }

    /// A flush: the frozen memtable `mem` leaves, and `tables` (its table, if it held
    /// anything) arrive in level 0, in the same state.
    pub(crate) fn with_flushed(&self, mem: &Arc<Memtable>, tables: Vec<Arc<TableHandle>>) -> State {
        let frozen = self
            .frozen
            .iter()
            .filter(|f| !Arc::ptr_eq(&f.mem, mem))
            .cloned()
            .collect();
        let version = self
            .version
            .apply(tables.into_iter().map(|t| (0, t)).collect(), &[]);
        State {
            active: Arc::clone(&self.active),
            log_number: self.log_number,
            frozen,
            version: Arc::new(version),
        }
    }

    /// A compaction: the tables `removed` (level, number) leave and `added` arrive; the
    /// memtables are untouched.
    pub(crate) fn with_tables(
        &self,
        added: Vec<(u32, Arc<TableHandle>)>,
        removed: &[(u32, u64)],
    ) -> State {
        State {
            active: Arc::clone(&self.active),
            log_number: self.log_number,
            frozen: self.frozen.clone(),
            version: Arc::new(self.version.apply(added, removed)),
        }
    }
}

/// Borrows a `Bound<Bytes>` as a `Bound<&[u8]>`.
fn as_slice_bound(bound: &Bound<Bytes>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_ref()),
        Bound::Excluded(key) => Bound::Excluded(key.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}
