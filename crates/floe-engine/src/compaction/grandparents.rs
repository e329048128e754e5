//! Where a compaction cuts its outputs: [`GrandparentOverlap`] follows the tables of the
//! level below the output level (the grandparents) while the outputs are written, and says
//! before each new key whether the output must end, or may end on a grandparent's edge.

use std::sync::Arc;

use crate::version::TableHandle;

/// An output is cut once it overlaps more than this many target file sizes of the level
/// below its own (LevelDB's choice), so that compacting it later rewrites a bounded amount.
pub(super) const GRANDPARENT_OVERLAP_FACTOR: u64 = 10;

/// What the grandparents say about cutting the output before the next key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cut {
    /// The output overlaps more grandparent bytes than the limit: cut it.
    Must,
    /// The key is past the end of a grandparent the output overlaps: a cut here keeps
    /// the output's edge on a grandparent's edge.
    Aligned,
    /// Neither.
    No,
}

/// Tracks how many bytes of the grandparent tables the output being written overlaps,
/// and where their boundaries fall.
///
/// Outputs are cut on grandparent boundaries once they are half the target size (see
/// `Shared::write_outputs` in `compact.rs`): a table whose key range ends where a grandparent's does
/// overlaps, when it is later pushed down, only the grandparents in its range, not one
/// more that it touches at each edge. With tables that span two or three grandparents,
/// as a base level's tables do, that edge is a large share of the rewrite.
pub(super) struct GrandparentOverlap<'a> {
    tables: &'a [Arc<TableHandle>],
    /// The first grandparent whose keys have not all been passed yet.
    next: usize,
    /// Bytes of the grandparents passed since the current output started.
    overlapped: u64,
    limit: u64,
    /// Whether the current output holds a key yet (a grandparent passed before the first
    /// key does not overlap it).
    started: bool,
}

impl<'a> GrandparentOverlap<'a> {
    pub(super) fn new(tables: &'a [Arc<TableHandle>], limit: u64) -> GrandparentOverlap<'a> {
        GrandparentOverlap {
            tables,
            next: 0,
            overlapped: 0,
            limit,
            started: false,
        }
    }

    /// Moves past the grandparents that end below `user_key` (the next key to write)
    /// and says whether to cut the current output before it.
    pub(super) fn advance(&mut self, user_key: &[u8]) -> Cut {
        let mut boundary = false;
        while let Some(table) = self.tables.get(self.next) {
            if table.file.largest.user_key.as_ref() >= user_key {
                break;
            }
            if self.started {
                self.overlapped += table.file.size;
                boundary = true;
            }
            self.next += 1;
        }
        self.started = true;
        if self.overlapped > self.limit {
            Cut::Must
        } else if boundary {
            Cut::Aligned
        } else {
            Cut::No
        }
    }

    /// Starts counting afresh for a new output.
    pub(super) fn start_output(&mut self) {
        self.overlapped = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::Tables;

    #[test]
    fn grandparent_overlap_counts_only_tables_passed_within_one_output() {
        let t = Tables::new();
        let grandparents: Vec<_> = (0..4).map(|i| t.table(i * 10, i * 10 + 5, 100)).collect();
        let size = grandparents[0].file.size;
        // Cut once more than two tables' bytes are overlapped.
        let mut overlap = GrandparentOverlap::new(&grandparents, 2 * size);
        // Keys below every grandparent, and a grandparent passed before the first key of
        // the output, do not count. Passing a grandparent's end is a boundary.
        assert_eq!(overlap.advance(b"k000"), Cut::No);
        assert_eq!(overlap.advance(b"k003"), Cut::No);
        assert_eq!(overlap.advance(b"k012"), Cut::Aligned);
        assert_eq!(overlap.overlapped, size);
        assert_eq!(overlap.advance(b"k013"), Cut::No);
        assert_eq!(overlap.advance(b"k025"), Cut::Aligned);
        assert_eq!(overlap.overlapped, 2 * size);
        assert_eq!(overlap.advance(b"k031"), Cut::Must);
        overlap.start_output();
        assert_eq!(overlap.advance(b"k099"), Cut::Aligned);
        assert_eq!(overlap.overlapped, size);

        let mut late = GrandparentOverlap::new(&grandparents, 0);
        // The first key comes after two grandparents: they overlap nothing written.
        assert_eq!(late.advance(b"k020"), Cut::No);
        assert_eq!(late.overlapped, 0);
    }
}
