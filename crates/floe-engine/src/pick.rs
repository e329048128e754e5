//! Choosing the next compaction: which level needs it most, which tables go in, whether
//! the output may drop tombstones, and whether a manifest edit alone will do.
//!
//! Scores: level 0 scores its table count over `l0_compaction_trigger`, since every read
//! looks at every level-0 table; a deeper level scores its bytes over its target size.
//! The highest score of at least 1 wins; the last level never compacts on its own.
//!
//! Inputs: a level-0 compaction takes *all* of level 0, so no older level-0 table is ever
//! left above newer data in level 1. A deeper level gives one table, chosen round-robin
//! by key (each level remembers where its last compaction ended, so that every part of
//! the key space gets its turn). Then every table of the next level whose user keys
//! overlap the inputs' joins them. Tables of one level below 0 never share a user key
//! (outputs are cut only between user keys, and a compaction takes every table of its
//! output level that overlaps its range), so one table holds every version of its keys in
//! that level, and leaving its neighbours out is safe.
//!
//! Bottommost: the output may drop tombstones only if no level below the output level
//! holds a table that overlaps the inputs' key range. Only compactions write below level
//! 0 and they run one at a time, so this stays true while the job runs.
//!
//! Trivial move: when the inputs of a level do not overlap one another and nothing in the
//! next level overlaps them, they move down by a manifest edit, without a rewrite.

use std::sync::Arc;

use bytes::Bytes;

use crate::options::Options;
use crate::state::{NUM_LEVELS, Version};
use crate::table::TableHandle;

/// One compaction to run.
#[derive(Debug)]
pub(crate) struct Job {
    /// The input tables with their levels, newer levels first.
    pub(crate) inputs: Vec<(u32, Arc<TableHandle>)>,
    /// Where the outputs go.
    pub(crate) output_level: u32,
    /// Whether no level below the output level holds keys within the inputs' range.
    pub(crate) bottommost: bool,
    /// Whether the inputs move to the output level unchanged.
    pub(crate) trivial: bool,
    /// The tables of the level below the output level that overlap the inputs, in key
    /// order: an output is cut early once it overlaps too many of their bytes, so that
    /// its own compaction into that level later stays small.
    pub(crate) grandparents: Vec<Arc<TableHandle>>,
}

/// The deepest level compaction writes to: the last level the options give, or a deeper
/// one that already holds tables (written by an open with more levels).
pub(crate) fn bottom_level(version: &Version, options: &Options) -> usize {
    let deepest = version
        .levels
        .iter()
        .rposition(|tables| !tables.is_empty())
        .unwrap_or(0);
    deepest.max(options.num_levels - 1).min(NUM_LEVELS - 1)
}

/// How urgently each level above the bottom needs a compaction (1 or more: it does).
pub(crate) fn scores(version: &Version, options: &Options) -> Vec<f64> {
    let bottom = bottom_level(version, options);
    (0..bottom)
        .map(|level| {
            let tables = &version.levels[level];
            if level == 0 {
                tables.len() as f64 / options.l0_compaction_trigger as f64
            } else {
                let bytes: u64 = tables.iter().map(|t| t.file.size).sum();
                bytes as f64 / options.level_target(level) as f64
            }
        })
        .collect()
}

/// The compaction the version needs most, if any level scores 1 or more. `pointers`
/// holds, for each level, the largest user key of its last compaction; the chosen
/// level's entry is updated.
pub(crate) fn pick(
    version: &Version,
    options: &Options,
    pointers: &mut [Option<Bytes>],
) -> Option<Job> {
    let scores = scores(version, options);
    let (level, _) = scores
        .iter()
        .enumerate()
        .filter(|(_, score)| **score >= 1.0)
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    let tables = &version.levels[level];
    let chosen: Vec<Arc<TableHandle>> = if level == 0 {
        tables.clone()
    } else {
        let after = pointers.get(level).cloned().flatten();
        let at = after.map_or(0, |key| {
            tables.partition_point(|t| t.file.smallest.user_key <= key)
        });
        let table = tables.get(at).or_else(|| tables.first())?;
        vec![Arc::clone(table)]
    };
    let (_, hi) = user_range(&chosen)?;
    if let Some(pointer) = pointers.get_mut(level) {
        *pointer = Some(hi);
    }
    Some(job_for(version, level, chosen))
}

/// The compaction of `chosen` (tables of `level`) into the next level.
fn job_for(version: &Version, level: usize, chosen: Vec<Arc<TableHandle>>) -> Job {
    let output_level = level + 1;
    let (lo, hi) = user_range(&chosen).unwrap_or_default();
    let below: Vec<Arc<TableHandle>> = version.levels[output_level]
        .iter()
        .filter(|t| overlaps(t, &lo, &hi))
        .cloned()
        .collect();
    let trivial = below.is_empty() && disjoint(&chosen);
    let (lo, hi) = user_range(chosen.iter().chain(&below)).unwrap_or((lo, hi));
    let bottommost = version.levels[output_level + 1..]
        .iter()
        .flatten()
        .all(|t| !overlaps(t, &lo, &hi));
    let grandparents = version
        .levels
        .get(output_level + 1)
        .map(|tables| {
            tables
                .iter()
                .filter(|t| overlaps(t, &lo, &hi))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let inputs = chosen
        .into_iter()
        .map(|t| (level as u32, t))
        .chain(below.into_iter().map(|t| (output_level as u32, t)))
        .collect();
    Job {
        inputs,
        output_level: output_level as u32,
        bottommost,
        trivial,
        grandparents,
    }
}

/// A full compaction: every table of `version` merged into the bottom level.
pub(crate) fn full(version: &Version, options: &Options) -> Option<Job> {
    let bottom = bottom_level(version, options);
    let inputs: Vec<(u32, Arc<TableHandle>)> = version
        .levels
        .iter()
        .enumerate()
        .flat_map(|(level, tables)| tables.iter().map(move |t| (level as u32, Arc::clone(t))))
        .collect();
    if inputs.is_empty() {
        return None;
    }
    Some(Job {
        inputs,
        output_level: bottom as u32,
        bottommost: true,
        trivial: false,
        grandparents: Vec::new(),
    })
}

/// The smallest and largest user key of `tables`, or `None` if there are none.
fn user_range<'a>(
    tables: impl IntoIterator<Item = &'a Arc<TableHandle>>,
) -> Option<(Bytes, Bytes)> {
    let mut range: Option<(Bytes, Bytes)> = None;
    for table in tables {
        let (smallest, largest) = (&table.file.smallest.user_key, &table.file.largest.user_key);
        range = Some(match range {
            None => (smallest.clone(), largest.clone()),
            Some((lo, hi)) => (lo.min(smallest.clone()), hi.max(largest.clone())),
        });
    }
    range
}

/// Whether `table` holds user keys within `[lo, hi]`.
fn overlaps(table: &TableHandle, lo: &Bytes, hi: &Bytes) -> bool {
    table.file.smallest.user_key <= *hi && table.file.largest.user_key >= *lo
}

/// Whether no two of `tables` share a user key.
fn disjoint(tables: &[Arc<TableHandle>]) -> bool {
    let mut sorted: Vec<&Arc<TableHandle>> = tables.iter().collect();
    sorted.sort_by(|a, b| a.file.smallest.user_key.cmp(&b.file.smallest.user_key));
    sorted
        .windows(2)
        .all(|pair| pair[0].file.largest.user_key < pair[1].file.smallest.user_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::version_from;
    use crate::tests::Tables;

    fn numbers(job: &Job) -> Vec<(u32, u64)> {
        let mut out: Vec<_> = job.inputs.iter().map(|(l, t)| (*l, t.number())).collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn level_0_compacts_whole_at_its_trigger_with_the_overlapping_level_1_tables() {
        let t = Tables::new();
        let options = Options::default().l0_compaction_trigger(2);
        let (a, b) = (t.table(10, 20, 10), t.table(15, 30, 10));
        let (inside, outside, deep) =
            (t.table(25, 40, 10), t.table(50, 60, 10), t.table(0, 99, 10));
        let numbers_of = [a.number(), b.number(), inside.number(), outside.number()];
        let version = version_from(vec![
            (0, Arc::clone(&a)),
            (1, inside),
            (1, outside),
            (6, deep),
        ]);
        // One level-0 table is below the trigger: nothing to do.
        assert!(pick(&version, &options, &mut [None; 0]).is_none());
        let version = version.apply(vec![(0, b)], &[]);
        assert_eq!(scores(&version, &options)[0], 1.0);
        let job = pick(&version, &options, &mut []).unwrap();
        assert_eq!(
            numbers(&job),
            [(0, numbers_of[0]), (0, numbers_of[1]), (1, numbers_of[2])]
        );
        assert_eq!(job.output_level, 1);
        assert!(!job.trivial);
        // Level 6 holds keys in the range: tombstones must stay.
        assert!(!job.bottommost);
    }

    #[test]
    fn disjoint_inputs_with_nothing_below_move_trivially_and_are_bottommost() {
        let t = Tables::new();
        let options = Options::default().l0_compaction_trigger(2);
        let version = version_from(vec![
            (0, t.table(0, 9, 10)),
            (0, t.table(10, 19, 10)),
            (1, t.table(50, 60, 10)),
            (6, t.table(70, 80, 10)),
        ]);
        let job = pick(&version, &options, &mut []).unwrap();
        assert!(job.trivial && job.bottommost, "{job:?}");
        assert_eq!(job.inputs.len(), 2);
        // Overlapping level-0 tables are never moved, even with an empty level 1.
        let version = version_from(vec![(0, t.table(0, 9, 10)), (0, t.table(5, 19, 10))]);
        assert!(!pick(&version, &options, &mut []).unwrap().trivial);
    }

    #[test]
    fn deeper_levels_compact_by_size_one_table_at_a_time_round_robin() {
        let t = Tables::new();
        // Level 1 targets 1 byte, so any table there puts it over.
        let options = Options::default().max_bytes_for_level_base(1);
        let tables: Vec<_> = (0..3).map(|i| t.table(i * 10, i * 10 + 9, 10)).collect();
        let below = t.table(12, 14, 10);
        let mut version_tables: Vec<_> = tables.iter().map(|x| (1, Arc::clone(x))).collect();
        version_tables.push((2, Arc::clone(&below)));
        let version = version_from(version_tables);
        let mut pointers = vec![None; NUM_LEVELS];
        let first = pick(&version, &options, &mut pointers).unwrap();
        assert_eq!(numbers(&first), [(1, tables[0].number())]);
        assert!(first.trivial);
        let second = pick(&version, &options, &mut pointers).unwrap();
        assert_eq!(
            numbers(&second),
            [(1, tables[1].number()), (2, below.number())]
        );
        assert!(!second.trivial && second.bottommost);
        let third = pick(&version, &options, &mut pointers).unwrap();
        assert_eq!(numbers(&third), [(1, tables[2].number())]);
        // Past the last table the pointer wraps around.
        let fourth = pick(&version, &options, &mut pointers).unwrap();
        assert_eq!(numbers(&fourth), [(1, tables[0].number())]);
    }

    #[test]
    fn the_last_level_never_scores_and_a_full_compaction_takes_everything() {
        let t = Tables::new();
        let options = Options::default().num_levels(3).max_bytes_for_level_base(1);
        let version = version_from(vec![(2, t.table(0, 9, 10)), (0, t.table(0, 9, 10))]);
        assert_eq!(scores(&version, &options).len(), 2);
        assert!(pick(&version, &options, &mut []).is_none());
        let job = full(&version, &options).unwrap();
        assert_eq!((job.inputs.len(), job.output_level), (2, 2));
        assert!(job.bottommost && !job.trivial);
        // Tables deeper than `num_levels` (from an open with more levels) stay reachable.
        let deeper = version_from(vec![(5, t.table(0, 9, 10))]);
        assert_eq!(bottom_level(&deeper, &options), 5);
        assert!(full(&Version::empty(), &options).is_none());
    }
}
