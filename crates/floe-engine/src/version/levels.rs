//! [`Version`]: the tables of each level, as one state holds them, with the lookups and
//! the scan sources over them.

use std::ops::Bound;
use std::sync::Arc;

use floe_core::SeqNo;
use floe_memtable::Lookup;

use crate::error::Result;
use crate::iter::BoxedSource;
use crate::version::manifest::{TableFile, VersionEdit};
use crate::version::table::TableHandle;

/// How many levels a version has room for; [`crate::Options::num_levels`] says how many
/// of them compaction uses.
pub(crate) const NUM_LEVELS: usize = crate::options::MAX_LEVELS;

/// The tables of each level. Level 0 is ordered newest first (its tables may overlap);
/// every deeper level is sorted by smallest key and its tables do not overlap.
#[derive(Clone, Debug, Default)]
pub(crate) struct Version {
    pub(crate) levels: Vec<Vec<Arc<TableHandle>>>,
    /// Whether any table holds a range tombstone: without one, batched lookups and scans
    /// skip the range tombstone checks altogether.
    has_range_tombstones: bool,
}

impl Version {
    /// An empty version.
    pub(crate) fn empty() -> Version {
        Version {
            levels: vec![Vec::new(); NUM_LEVELS],
            has_range_tombstones: false,
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
        let has_range_tombstones = levels
            .iter()
            .flatten()
            .any(|t| !t.range_tombstones().is_empty());
        Version {
            levels,
            has_range_tombstones,
        }
    }

    /// The newest version of `user_key` at or below `snapshot` in the tables, newest
    /// first, as a point lookup across sources sees it: `covering` is the newest range
    /// tombstone over the key met in the memtables (see [`crate::range_del::weigh`]).
    /// `None` if no table resolves the key.
    pub(crate) fn get(
        &self,
        user_key: &[u8],
        snapshot: SeqNo,
        mut covering: Option<SeqNo>,
    ) -> Result<Option<Lookup>> {
        for table in &self.levels[0] {
            if let Some(found) = table.lookup(user_key, snapshot, &mut covering)? {
                return Ok(Some(found));
            }
        }
        for tables in &self.levels[1..] {
            // The first table whose largest key is not below `user_key` is the only one
            // that can hold it, since a deeper level's tables do not overlap (their key
            // ranges include their range tombstones).
            let at = tables.partition_point(|t| t.file.largest.user_key.as_ref() < user_key);
            if let Some(table) = tables.get(at)
                && let Some(found) = table.lookup(user_key, snapshot, &mut covering)?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Whether any table holds a range tombstone.
    pub(crate) fn has_range_tombstones(&self) -> bool {
        self.has_range_tombstones
    }

    /// A source over every table that may hold keys within the bounds.
    pub(crate) fn sources(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        out: &mut Vec<BoxedSource>,
    ) {
        for table in self.tables() {
            if table.overlaps(lower, upper) {
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
fn sort_levels(levels: &mut [Vec<Arc<TableHandle>>]) {
    if let Some((level0, deeper)) = levels.split_first_mut() {
        level0.sort_by_key(|t| std::cmp::Reverse((t.file.max_seqno, t.number())));
        for tables in deeper {
            tables.sort_by(|a, b| a.file.smallest.cmp(&b.file.smallest));
        }
    }
}

impl TableHandle {
    /// Whether the table's key range meets the bounds.
    pub(crate) fn overlaps(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
        overlaps_range(&self.file, lower, upper)
    }
}

fn overlaps_range(file: &TableFile, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    let TableFile {
        smallest, largest, ..
    } = file;
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

/// A version built from the tables a manifest lists.
pub(crate) fn version_from(tables: Vec<(u32, Arc<TableHandle>)>) -> Version {
    Version::empty().apply(tables, &[])
}
