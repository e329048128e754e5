//! The engine state that reads load without a lock: the active memtable, the frozen ones,
//! and the current version (the tables of each level).
//!
//! A state is immutable once installed. The coordinator builds the next state from the
//! latest one under the state mutex and installs it with one `ArcSwap` store, so a read
//! sees either the old or the new state, never a mixture: a flush removes a frozen
//! memtable and adds its table in the same store, so no key is ever missing in between.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use floe_core::{SeqNo, ValueKind};
use floe_memtable::{Lookup, Memtable};

use crate::error::Result;
use crate::iter::BoxedSource;
use crate::version::manifest::{TableFile, VersionEdit};
use crate::version::table::TableHandle;

/// How many levels a version has room for; [`crate::Options::num_levels`] says how many
/// of them compaction uses.
pub(crate) const NUM_LEVELS: usize = crate::options::MAX_LEVELS;

/// A frozen memtable waiting for its flush, with the log segment that holds its writes.
#[derive(Clone, Debug)]
pub(crate) struct FrozenMem {
    pub(crate) mem: Arc<Memtable>,
    pub(crate) log_number: u64,
}

/// The tables of each level. Level 0 is ordered newest first (its tables may overlap);
/// every deeper level is sorted by smallest key and its tables do not overlap.
#[derive(Clone, Debug, Default)]
pub(crate) struct Version {
    pub(crate) levels: Vec<Vec<Arc<TableHandle>>>,
}

impl Version {
    /// An empty version.
    pub(crate) fn empty() -> Version {
        Version {
            levels: vec![Vec::new(); NUM_LEVELS],
        }
    }

    /// Every table of every level.
    pub(crate) fn tables(&self) -> impl Iterator<Item = &Arc<TableHandle>> {
        self.levels.iter().flatten()
    }

    /// This version with `removed` taken out and `added` put in, each level re-sorted.
    pub(crate) fn apply(
        &self,
        added: Vec<(u32, Arc<TableHandle>)>,
        removed: &[(u32, u64)],
    ) -> Version {
        let mut levels = self.levels.clone();
        for (level, number) in removed {
            if let Some(tables) = levels.get_mut(*level as usize) {
                tables.retain(|table| table.number() != *number);
            }
        }
        for (level, table) in added {
            let level = (level as usize).min(NUM_LEVELS - 1);
            levels[level].push(table);
        }
        sort_levels(&mut levels);
        Version { levels }
    }

    /// The newest version of `user_key` at or below `snapshot` in the tables.
    pub(crate) fn get(
        &self,
        user_key: &[u8],
        snapshot: SeqNo,
    ) -> Result<Option<(ValueKind, Bytes)>> {
        for table in &self.levels[0] {
            if let Some(found) = table.get(user_key, snapshot)? {
                return Ok(Some(found));
            }
        }
        for tables in &self.levels[1..] {
            // The first table whose largest key is not below `user_key` is the only one
            // that can hold it, since a deeper level's tables do not overlap.
            let at = tables.partition_point(|t| t.file.largest.user_key.as_ref() < user_key);
            if let Some(table) = tables.get(at)
                && let Some(found) = table.get(user_key, snapshot)?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// A source over every table that may hold keys within the bounds.
    pub(crate) fn sources(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        out: &mut Vec<BoxedSource>,
    ) {
        for table in self.tables() {
            if overlaps(table, lower, upper) {
                out.push(table.source(lower, upper));
            }
        }
    }

    /// The edit that recreates this version from nothing (for a new manifest).
    pub(crate) fn snapshot_edit(&self) -> VersionEdit {
        let mut edit = VersionEdit::default();
        for (level, tables) in self.levels.iter().enumerate() {
            for table in tables {
                edit.added.push((level as u32, table.file.clone()));
            }
        }
        edit
    }
}

/// Orders level 0 newest first and every deeper level by smallest key.
pub(crate) fn sort_levels(levels: &mut [Vec<Arc<TableHandle>>]) {
    if let Some((level0, deeper)) = levels.split_first_mut() {
        level0.sort_by_key(|t| std::cmp::Reverse((t.file.max_seqno, t.number())));
        for tables in deeper {
            tables.sort_by(|a, b| a.file.smallest.cmp(&b.file.smallest));
        }
    }
}

fn overlaps(table: &TableHandle, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    let TableFile {
        smallest, largest, ..
    } = &table.file;
    let above_lower = match lower {
        Bound::Included(key) => largest.user_key.as_ref() >= key,
        Bound::Excluded(key) => largest.user_key.as_ref() > key,
        Bound::Unbounded => true,
    };
    let below_upper = match upper {
        Bound::Included(key) => smallest.user_key.as_ref() <= key,
        Bound::Excluded(key) => smallest.user_key.as_ref() < key,
        Bound::Unbounded => true,
    };
    above_lower && below_upper
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
}

/// Borrows a `Bound<Bytes>` as a `Bound<&[u8]>`.
pub(crate) fn as_slice_bound(bound: &Bound<Bytes>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_ref()),
        Bound::Excluded(key) => Bound::Excluded(key.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// A version built from the tables a manifest lists.
pub(crate) fn version_from(tables: Vec<(u32, Arc<TableHandle>)>) -> Version {
    Version::empty().apply(tables, &[])
}
