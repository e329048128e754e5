//! Choosing the next compaction: which level needs it most, which tables go in, whether
//! the output may drop tombstones, and whether a manifest edit alone will do.
//!
//! Scores: level 0 scores its table count over `l0_compaction_trigger`, since every read
//! looks at every level-0 table; a deeper level scores its bytes over its target size.
//! A score of 1 or more means the level needs a compaction; the highest wins; the last
//! level never compacts on its own. With dynamic targets the scores of the levels that
//! need one are then ranked as RocksDB ranks them: scaled up by [`NEEDED`], a level over
//! its target is divided by its target plus the bytes on their way into it (level 0 and
//! the excess of the levels above), so it waits for a large merge from above before it
//! pushes down, and level 0 at its trigger outranks a base level smaller than itself.
//! One exception: a base level over its target that is swollen (a quarter of the level
//! below) but under a third of it scores under 1, since level 0's next merge carries its
//! tables in level 0's range down ([`waits_for_level0`]).
//!
//! Targets ([`targets`]): with `dynamic_level_bytes` (the default) they are derived from
//! the bottom up. The largest level below 0 (in a settled tree, the bottom) sets the
//! bottom's size; each level above targets a `level_size_multiplier`th of the one below,
//! up to the first whose target is within `max_bytes_for_level_base`: the *base level*,
//! which level 0 compacts into. No target is below `max_bytes_for_level_base`: a tiny
//! base level would push down tables that each cover much of the key space. The levels
//! between 0 and the base stay empty, so a small database keeps its data in level 0 and
//! the bottom, and the tree grows levels upward as the data grows, every level ten times
//! the one above. Should a level above the base hold tables (the data shrank, or static
//! targets made it), it drains into the next level before anything else of its size,
//! and level 0 merges into it rather than past it, so that newer versions never end up
//! below older ones. Static targets are `max_bytes_for_level_base` for level 1 and ten
//! times more per level down.
//!
//! Inputs: a level-0 compaction takes *all* of level 0, so no older level-0 table is ever
//! left above newer data in the level it merges into. When the base level has swollen to
//! a quarter of the bytes of the level below (level 0 outranked it through a backlog, or
//! it took batch after batch waiting), level 0 merges *through* it: the base level's
//! tables in level 0's range join the inputs and the output goes one level deeper (see
//! [`swollen`]). A deeper level gives one table: the one that rewrites the fewest bytes
//! of the next level per byte it moves down
//! (RocksDB's default choice too), among equals the first after where the level's last
//! compaction ended, so that tables that overlap nothing take turns through the key
//! space. Then every table of the output level whose user keys overlap the inputs' joins
//! them. Tables of one level below 0 never share a user key (outputs are cut only between
//! user keys, and a compaction takes every table of its output level that overlaps its
//! range), so one table holds every version of its keys in that level, and leaving its
//! neighbours out is safe.
//!
//! Bottommost: the output may drop tombstones only if no level below the output level
//! holds a table that overlaps the inputs' key range. Only compactions write below level
//! 0 and they run one at a time, so this stays true while the job runs.
//!
//! Trivial move: when the inputs of a level do not overlap one another and nothing in the
//! next level overlaps them, they move down by a manifest edit, without a rewrite.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::keyspace::KeyspaceId;
use crate::options::Options;
use crate::version::TableHandle;
use crate::version::{NUM_LEVELS, Version};

/// What the holder of the compaction mutex keeps between compactions.
#[derive(Debug, Default)]
pub(crate) struct CompactionState {
    /// For each keyspace and level, the largest user key of its last compaction (see
    /// [`pick`]).
    pointers: BTreeMap<KeyspaceId, Vec<Option<Bytes>>>,
}

impl CompactionState {
    /// The compaction pointers of keyspace `id`.
    pub(crate) fn pointers(&mut self, id: KeyspaceId) -> &mut Vec<Option<Bytes>> {
        self.pointers
            .entry(id)
            .or_insert_with(|| vec![None; NUM_LEVELS])
    }
}

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

/// The size targets of one version's levels and the level that level 0 compacts into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Targets {
    /// The level level 0 compacts into (unless a level above it holds tables).
    pub(crate) base: usize,
    /// The target size in bytes of each level; 0 for level 0, for the levels above the
    /// base (which should be empty) and for the bottom (which never compacts on its own).
    pub(crate) bytes: [u64; NUM_LEVELS],
}

/// The total size of the tables of `level`.
fn level_bytes(version: &Version, level: usize) -> u64 {
    version.levels[level].iter().map(|t| t.file.size).sum()
}

/// The level targets of `version` (see the module documentation).
pub(crate) fn targets(version: &Version, options: &Options) -> Targets {
    let bottom = bottom_level(version, options);
    let mut bytes = [0; NUM_LEVELS];
    if !options.dynamic_level_bytes {
        for (level, target) in bytes.iter_mut().enumerate().take(bottom).skip(1) {
            *target = options.level_target(level);
        }
        return Targets { base: 1, bytes };
    }
    let largest = (1..=bottom)
        .map(|level| level_bytes(version, level))
        .max()
        .unwrap_or(0);
    // Walk up from the bottom, a multiplier smaller per level, until a level's target is
    // within the base size (or level 1 is reached: a huge tree keeps a large level 1).
    let mut base = bottom;
    let mut target = largest;
    while base > 1 && target > options.max_bytes_for_level_base {
        target /= options.level_size_multiplier;
        base -= 1;
        bytes[base] = target.max(1);
    }
    // No level below 0 targets less than the base size (RocksDB's rule too): a base
    // level far smaller than `max_bytes_for_level_base` makes each table it pushes down
    // cover much of the key space and rewrite much of the level below.
    for target in &mut bytes[base..bottom] {
        *target = (*target).max(options.max_bytes_for_level_base);
    }
    Targets { base, bytes }
}

/// How urgently each level above the bottom needs a compaction (1 or more: it does).
pub(crate) fn scores(version: &Version, options: &Options) -> Vec<f64> {
    scores_for(version, options, &targets(version, options))
}

/// How much the score of a level that needs a compaction is scaled with dynamic targets,
/// so that dividing it to rank the levels (by the bytes on their way into them) keeps it
/// above 1 unless a flood is coming: 1 stays the line between needing a compaction and
/// not.
const NEEDED: f64 = 10.0;

/// [`scores`] with the targets already derived.
fn scores_for(version: &Version, options: &Options, targets: &Targets) -> Vec<f64> {
    let bottom = bottom_level(version, options);
    let l0_score = version.levels[0].len() as f64 / options.l0_compaction_trigger as f64;
    if !options.dynamic_level_bytes {
        // Static targets: plain fill ratios. The base is level 1, so no level is stray.
        return std::iter::once(l0_score)
            .chain((1..bottom).map(|level| {
                level_bytes(version, level) as f64 / targets.bytes[level].max(1) as f64
            }))
            .collect();
    }
    let l0_bytes = level_bytes(version, 0) as f64;
    // The bytes above the level being scored that are waiting to move down: level 0,
    // the stray levels, and every level's excess over its target.
    let mut incoming = l0_bytes;
    (0..bottom)
        .map(|level| {
            if level == 0 {
                if l0_score < 1.0 {
                    return l0_score;
                }
                let mut score = l0_score;
                if targets.base < bottom {
                    // Level 0 at its trigger outranks the base level when it holds more
                    // than the base level does: merged first, its bytes do not wait
                    // behind a base level that would then be pushed down twice.
                    let base_bytes = (level_bytes(version, targets.base) as f64)
                        .max(targets.bytes[targets.base] as f64);
                    score = score.max(l0_bytes / base_bytes.max(1.0));
                }
                return NEEDED * score;
            }
            let bytes = level_bytes(version, level) as f64;
            if level < targets.base {
                // A level above the base has no place in the tree's shape: any table it
                // holds moves down, the larger the level the sooner.
                incoming += bytes;
                let base_size = options.max_bytes_for_level_base as f64;
                return if bytes == 0.0 {
                    0.0
                } else {
                    NEEDED * (bytes / base_size).max(1.0)
                };
            }
            let target = targets.bytes[level].max(1) as f64;
            let score = if bytes < target {
                bytes / target
            } else if level == targets.base && waits_for_level0(version, level, bottom) {
                // Level 0's next merge takes its tables in level 0's range down (all of
                // them, for uniform writes): it scores its way to a third of the level
                // below, where it stops waiting (under 1 until then).
                WAITING_SHARE as f64 * bytes / level_bytes(version, level + 1) as f64
            } else {
                // Over its target: ranked by its bytes over its target plus what is on its
                // way in, so a level about to take a large merge from above waits for it
                // (its tables then narrower in key range, each overlapping less of the
                // level below when it is pushed down).
                NEEDED * bytes / (target + incoming)
            };
            incoming += (bytes - target).max(0.0);
            score
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
    let targets = targets(version, options);
    let scores = scores_for(version, options, &targets);
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
        vec![Arc::clone(least_overlapping(
            tables,
            &version.levels[level + 1],
            at,
        )?)]
    };
    let (_, hi) = user_range(&chosen)?;
    if let Some(pointer) = pointers.get_mut(level) {
        *pointer = Some(hi);
    }
    let mut chosen: Vec<(usize, Arc<TableHandle>)> =
        chosen.into_iter().map(|t| (level, t)).collect();
    let output_level = if level == 0 {
        // Into the base level, or into a level above it that still holds tables: never
        // past one, or level 0's newer versions would land below its older ones.
        let into = (1..targets.base)
            .find(|&l| !version.levels[l].is_empty())
            .unwrap_or(targets.base);
        let bottom = bottom_level(version, options);
        if options.dynamic_level_bytes && into == targets.base && swollen(version, into, bottom) {
            // Through the swollen base level: its tables in level 0's range join the
            // inputs, so that no newer version is left above the output in the base.
            let (lo, hi) = user_range(chosen.iter().map(|(_, t)| t))?;
            chosen.extend(
                version.levels[into]
                    .iter()
                    .filter(|t| overlaps(t, &lo, &hi))
                    .map(|t| (into, Arc::clone(t))),
            );
            into + 1
        } else {
            into
        }
    } else {
        level + 1
    };
    Some(job_for(version, output_level, chosen))
}

/// How full the base level must be, against the level below it, for level 0 to merge
/// through it: a quarter.
const SWOLLEN_SHARE: u64 = 4;

/// Whether the base level `base` holds at least a [`SWOLLEN_SHARE`]th of the bytes of
/// the level below it (`bottom` being the deepest level), so that level 0 merges through
/// it, into the level below.
///
/// In a deep tree in shape the base level holds a tenth of the level below (its target),
/// and it reaches a quarter only when level 0 outranks it through a backlog, after which
/// it can grow to a copy of every key. Merging level 0 into it would rewrite all of it
/// for each batch, and pushing it down table by table leaves it at its target, which
/// every later batch rewrites again. Merging level 0 and the base level's tables in its
/// range into the level below costs one rewrite of the overlapping part of the level
/// below, about what pushing those tables down costs anyway, and leaves the base level
/// (for uniform writes, all of it) empty, so that the next batches merge into a small
/// level. In a small tree, whose base target is floored at `max_bytes_for_level_base`
/// and can be a large share of the bottom, the merge through happens while the base
/// level is still within its target: level 0's batches gather in the base level until
/// it holds a quarter of the bottom, then go into the bottom together. Measured on
/// `overwrite-sustained`: see `docs/compaction.md`.
fn swollen(version: &Version, base: usize, bottom: usize) -> bool {
    base < bottom && {
        let below = level_bytes(version, base + 1);
        below > 0 && level_bytes(version, base).saturating_mul(SWOLLEN_SHARE) >= below
    }
}

/// How full the base level may be, against the level below it, and still wait for level
/// 0 (see [`waits_for_level0`]): a third.
const WAITING_SHARE: u64 = 3;

/// Whether the base level `base`, over its target, waits for level 0's next merge to
/// carry it down instead of pushing tables down itself: while it is [`swollen`] and under
/// a [`WAITING_SHARE`]th of the level below. Pushing a table down first would rewrite
/// part of the level below that the merge through the base level rewrites again soon
/// after. Past a third of the level below it pushes down again, which bounds what a base
/// level left waiting when writes stop holds: under a third of the level below.
fn waits_for_level0(version: &Version, base: usize, bottom: usize) -> bool {
    swollen(version, base, bottom)
        && level_bytes(version, base).saturating_mul(WAITING_SHARE) < level_bytes(version, base + 1)
}

/// The table of `tables` (one level, in key order) whose compaction into `below` (the
/// next level) rewrites the fewest bytes of `below` per byte it moves down; among equals
/// the first from position `from` on, wrapping around, so that tables that overlap
/// nothing take turns through the key space. `None` if `tables` is empty.
fn least_overlapping<'a>(
    tables: &'a [Arc<TableHandle>],
    below: &[Arc<TableHandle>],
    from: usize,
) -> Option<&'a Arc<TableHandle>> {
    let from = if from < tables.len() { from } else { 0 };
    let ratio = |table: &TableHandle| {
        // `below` is sorted and its tables are disjoint: the overlapping ones are a run.
        let (lo, hi) = (&table.file.smallest.user_key, &table.file.largest.user_key);
        let first = below.partition_point(|t| t.file.largest.user_key < *lo);
        let overlap: u64 = below[first..]
            .iter()
            .take_while(|t| t.file.smallest.user_key <= *hi)
            .map(|t| t.file.size)
            .sum();
        overlap as f64 / table.file.size.max(1) as f64
    };
    let mut best: Option<(&Arc<TableHandle>, f64)> = None;
    for table in tables[from..].iter().chain(&tables[..from]) {
        let r = ratio(table);
        if best.is_none_or(|(_, least)| r < least) {
            best = Some((table, r));
        }
    }
    best.map(|(table, _)| table)
}

/// The compaction of `chosen` (tables with their levels, newer levels first) into
/// `output_level`, with the tables of that level that overlap them; the levels between
/// the chosen ones and the output level are empty.
fn job_for(version: &Version, output_level: usize, chosen: Vec<(usize, Arc<TableHandle>)>) -> Job {
    let (lo, hi) = user_range(chosen.iter().map(|(_, t)| t)).unwrap_or_default();
    let below: Vec<Arc<TableHandle>> = version.levels[output_level]
        .iter()
        .filter(|t| overlaps(t, &lo, &hi))
        .cloned()
        .collect();
    let trivial = below.is_empty() && disjoint(chosen.iter().map(|(_, t)| t));
    let (lo, hi) = user_range(chosen.iter().map(|(_, t)| t).chain(&below)).unwrap_or((lo, hi));
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
        .map(|(level, t)| (level as u32, t))
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
fn disjoint<'a>(tables: impl IntoIterator<Item = &'a Arc<TableHandle>>) -> bool {
    let mut sorted: Vec<&Arc<TableHandle>> = tables.into_iter().collect();
    sorted.sort_by(|a, b| a.file.smallest.user_key.cmp(&b.file.smallest.user_key));
    sorted
        .windows(2)
        .all(|pair| pair[0].file.largest.user_key < pair[1].file.smallest.user_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::Tables;
    use crate::version::version_from;

    fn numbers(job: &Job) -> Vec<(u32, u64)> {
        let mut out: Vec<_> = job.inputs.iter().map(|(l, t)| (*l, t.number())).collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn level_0_compacts_whole_at_its_trigger_with_the_overlapping_level_1_tables() {
        let t = Tables::new();
        let options = Options::default()
            .l0_compaction_trigger(2)
            .dynamic_level_bytes(false);
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
        let options = Options::default()
            .l0_compaction_trigger(2)
            .dynamic_level_bytes(false);
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
    fn deeper_levels_push_down_the_table_that_overlaps_least_and_equals_take_turns() {
        let t = Tables::new();
        // Level 1 targets 1 byte, so any table there puts it over.
        let options = Options::default()
            .max_bytes_for_level_base(1)
            .dynamic_level_bytes(false);
        let tables: Vec<_> = (0..4).map(|i| t.table(i * 10, i * 10 + 9, 10)).collect();
        // Below: one table under `tables[1]`, two under `tables[3]`.
        let below = [
            t.table(12, 14, 10),
            t.table(30, 33, 10),
            t.table(35, 38, 10),
        ];
        let version = version_from(
            tables
                .iter()
                .map(|x| (1, Arc::clone(x)))
                .chain(below.iter().map(|x| (2, Arc::clone(x))))
                .collect(),
        );
        let mut pointers = vec![None; NUM_LEVELS];
        // The tables that overlap nothing below move first (trivially), taking turns.
        let first = pick(&version, &options, &mut pointers).unwrap();
        assert_eq!(numbers(&first), [(1, tables[0].number())]);
        assert!(first.trivial);
        let second = pick(&version, &options, &mut pointers).unwrap();
        assert_eq!(numbers(&second), [(1, tables[2].number())]);
        let third = pick(&version, &options, &mut pointers).unwrap();
        assert_eq!(numbers(&third), [(1, tables[0].number())]);
        // Without them, the table that rewrites one table below goes before the one that
        // rewrites two.
        let version = version.apply(
            Vec::new(),
            &[(1, tables[0].number()), (1, tables[2].number())],
        );
        let job = pick(&version, &options, &mut pointers).unwrap();
        assert_eq!(
            numbers(&job),
            [(1, tables[1].number()), (2, below[0].number())]
        );
        assert!(!job.trivial && job.bottommost);
        let version = version.apply(Vec::new(), &[(1, tables[1].number())]);
        let job = pick(&version, &options, &mut pointers).unwrap();
        assert_eq!(
            numbers(&job),
            [
                (1, tables[3].number()),
                (2, below[1].number()),
                (2, below[2].number())
            ]
        );
    }

    #[test]
    fn the_last_level_never_scores_and_a_full_compaction_takes_everything() {
        let t = Tables::new();
        let options = Options::default()
            .num_levels(3)
            .max_bytes_for_level_base(1)
            .dynamic_level_bytes(false);
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

    #[test]
    fn dynamic_targets_start_at_the_bottom_and_move_up_as_it_grows() {
        let t = Tables::new();
        let bottom = t.table(0, 99, 1000);
        let size = bottom.file.size;
        let version = version_from(vec![(6, Arc::clone(&bottom))]);
        // A bottom within the base size is the base: level 0 merges straight into it.
        let options = Options::default().max_bytes_for_level_base(size);
        assert_eq!(
            targets(&version, &options),
            Targets {
                base: 6,
                bytes: [0; NUM_LEVELS]
            }
        );
        // Past it, the base moves up one level per multiplier, each level a tenth of the
        // one below, until a target fits within the base size; no target is below the
        // base size, though.
        let options = Options::default().max_bytes_for_level_base(size / 5);
        let got = targets(&version, &options);
        assert_eq!((got.base, got.bytes[5]), (5, size / 5));
        let options = Options::default().max_bytes_for_level_base(size / 500);
        let got = targets(&version, &options);
        assert_eq!(got.base, 3);
        assert_eq!(got.bytes, [0, 0, 0, size / 500, size / 100, size / 10, 0]);
        // Static targets ignore the data.
        let got = targets(&version, &options.clone().dynamic_level_bytes(false));
        let base = size / 500;
        assert_eq!(got.base, 1);
        assert_eq!(
            got.bytes[1..6],
            [base, base * 10, base * 100, base * 1000, base * 10_000]
        );
        assert_eq!(got.bytes[6], 0);
        // A level 5 over its dynamic target compacts into the bottom; needed, its score
        // is scaled up.
        let middle = t.table(40, 59, 1000);
        let version = version.apply(vec![(5, Arc::clone(&middle))], &[]);
        let options = Options::default().max_bytes_for_level_base(size / 5);
        let over = scores(&version, &options)[5];
        assert_eq!(over, NEEDED * middle.file.size as f64 / (size / 5) as f64);
        assert!(over > 1.0);
        // Under its target, it scores its plain fill ratio.
        let roomy = options
            .clone()
            .max_bytes_for_level_base(middle.file.size * 2);
        assert_eq!(scores(&version, &roomy)[5], 0.5);
        let job = pick(&version, &options, &mut vec![None; NUM_LEVELS]).unwrap();
        assert_eq!(numbers(&job), [(5, middle.number()), (6, bottom.number())]);
        assert_eq!(job.output_level, 6);
        // Level 0's bytes, on their way to the base level, lower its rank (not below 1
        // here): it waits for their merge before it pushes down.
        let pending = t.table(0, 99, 100);
        let version = version.apply(vec![(0, Arc::clone(&pending))], &[]);
        let with_pending = scores(&version, &options)[5];
        let expected = NEEDED * middle.file.size as f64 / (size / 5 + pending.file.size) as f64;
        assert_eq!(with_pending, expected);
        assert!(1.0 < with_pending && with_pending < over);
        // Static targets do not.
        let options = options.dynamic_level_bytes(false);
        assert_eq!(
            scores(&version, &options)[1..],
            [
                0.0,
                0.0,
                0.0,
                0.0,
                middle.file.size as f64 / options.level_target(5) as f64
            ]
        );
    }

    #[test]
    fn level_0_compacts_into_the_base_level_and_an_empty_tree_into_the_bottom() {
        let t = Tables::new();
        let options = Options::default().l0_compaction_trigger(2);
        let version = version_from(vec![(0, t.table(0, 9, 10)), (0, t.table(5, 19, 10))]);
        let job = pick(&version, &options, &mut []).unwrap();
        assert_eq!(job.output_level, 6);
        assert!(job.bottommost && !job.trivial);
        // Disjoint level-0 tables move straight to the bottom.
        let version = version_from(vec![(0, t.table(0, 9, 10)), (0, t.table(10, 19, 10))]);
        let job = pick(&version, &options, &mut []).unwrap();
        assert!(job.trivial && job.output_level == 6, "{job:?}");
        // With a base level of 5, level 0 goes there, and the bottom is below it.
        let bottom = t.table(0, 99, 1000);
        let options = options.max_bytes_for_level_base(bottom.file.size / 5);
        let version = version_from(vec![
            (0, t.table(0, 9, 10)),
            (0, t.table(5, 19, 10)),
            (6, bottom),
        ]);
        let job = pick(&version, &options, &mut []).unwrap();
        assert_eq!(job.output_level, 5);
        assert!(!job.bottommost && job.grandparents.len() == 1);
    }

    #[test]
    fn level_0_merges_through_a_base_level_swollen_to_a_quarter_of_the_level_below() {
        let t = Tables::new();
        let bottom = t.table(0, 99, 1000);
        // Level 0 at four times its trigger outranks the base level over its target.
        let options = Options::default()
            .l0_compaction_trigger(1)
            .max_bytes_for_level_base(bottom.file.size / 5);
        let level0: Vec<_> = (0..4).map(|i| t.table(20 + i, 45, 10)).collect();
        // Level 5 holds one table within level 0's range and one past it, 55 keys in
        // all: more than a quarter of the bottom's 100.
        let (inside, outside) = (t.table(40, 49, 1000), t.table(55, 99, 1000));
        let below = bottom.file.size;
        assert!(4 * (inside.file.size + outside.file.size) >= below);
        let version = version_from(
            level0
                .iter()
                .map(|table| (0, Arc::clone(table)))
                .chain([
                    (5, Arc::clone(&inside)),
                    (5, Arc::clone(&outside)),
                    (6, Arc::clone(&bottom)),
                ])
                .collect(),
        );
        assert_eq!(targets(&version, &options).base, 5);
        let job = pick(&version, &options, &mut vec![None; NUM_LEVELS]).unwrap();
        // Level 0 and the base level's table in its range go into the bottom together;
        // the base level's other table stays (no newer version of its keys is merged).
        let mut expected: Vec<(u32, u64)> = level0.iter().map(|t| (0, t.number())).collect();
        expected.extend([(5, inside.number()), (6, bottom.number())]);
        assert_eq!(numbers(&job), expected);
        assert_eq!(job.output_level, 6);
        assert!(job.bottommost && !job.trivial && job.grandparents.is_empty());
        // Newer levels come first among the inputs.
        let levels: Vec<u32> = job.inputs.iter().map(|(l, _)| *l).collect();
        assert!(levels.is_sorted(), "{levels:?}");
        // Under a quarter of the level below, the base level takes level 0 as usual.
        let version = version.apply(vec![], &[(5, outside.number())]);
        assert!(4 * inside.file.size < below);
        let job = pick(&version, &options, &mut vec![None; NUM_LEVELS]).unwrap();
        expected.pop();
        assert_eq!(numbers(&job), expected);
        assert_eq!(job.output_level, 5);
        assert!(!job.bottommost);
    }

    #[test]
    fn a_swollen_base_level_waits_for_level_0_until_it_holds_a_third_of_the_level_below() {
        let t = Tables::new();
        let bottom = t.table(0, 99, 1000);
        let options = Options::default().max_bytes_for_level_base(bottom.file.size / 10);
        // 30 keys against the bottom's 100: three times its target, past a quarter of
        // the level below but under a third. It waits for level 0, which holds nothing.
        let waiting = t.table(0, 29, 1000);
        let version = version_from(vec![(5, Arc::clone(&waiting)), (6, Arc::clone(&bottom))]);
        assert_eq!(targets(&version, &options).base, 5);
        let score = scores(&version, &options)[5];
        assert_eq!(
            score,
            3.0 * waiting.file.size as f64 / bottom.file.size as f64
        );
        assert!(score < 1.0);
        assert!(pick(&version, &options, &mut vec![None; NUM_LEVELS]).is_none());
        // Past a third of the level below, it pushes a table down itself again.
        let more = t.table(30, 59, 1000);
        let version = version.apply(vec![(5, Arc::clone(&more))], &[]);
        assert!(scores(&version, &options)[5] >= 1.0);
        let job = pick(&version, &options, &mut vec![None; NUM_LEVELS]).unwrap();
        assert_eq!(job.output_level, 6);
        assert_eq!(job.inputs[0].0, 5);
        assert_eq!(job.inputs.len(), 2);
    }

    #[test]
    fn a_level_above_the_base_drains_and_level_0_never_skips_it() {
        let t = Tables::new();
        let bottom = t.table(0, 99, 1000);
        let options = Options::default()
            .l0_compaction_trigger(2)
            .max_bytes_for_level_base(bottom.file.size / 5);
        let stray = t.table(10, 12, 10);
        let version = version_from(vec![(2, Arc::clone(&stray)), (6, Arc::clone(&bottom))]);
        assert_eq!(targets(&version, &options).base, 5);
        // Level 2 is above the base: its table moves on, though it is tiny.
        assert_eq!(scores(&version, &options)[2], NEEDED);
        let job = pick(&version, &options, &mut vec![None; NUM_LEVELS]).unwrap();
        assert_eq!(
            (numbers(&job), job.output_level),
            (vec![(2, stray.number())], 3)
        );
        assert!(job.trivial);
        // Level 0 scoring higher goes first, but into level 2, not past it to the base:
        // level 2's versions are older than level 0's.
        let version = version.apply(
            (0..4)
                .map(|i| (0, t.table(i * 5, i * 5 + 20, 10)))
                .collect(),
            &[],
        );
        let job = pick(&version, &options, &mut vec![None; NUM_LEVELS]).unwrap();
        assert_eq!(job.output_level, 2);
        assert!(
            job.inputs
                .iter()
                .any(|(l, t)| *l == 2 && t.number() == stray.number())
        );
        // The same where the bottom is the base (a small tree): level 0's scores are
        // scaled like the stray level's, so twice its trigger still outranks it.
        let small = options.max_bytes_for_level_base(bottom.file.size);
        assert_eq!(targets(&version, &small).base, 6);
        let scores = scores(&version, &small);
        assert!(scores[0] > scores[2], "{scores:?}");
        let job = pick(&version, &small, &mut vec![None; NUM_LEVELS]).unwrap();
        assert_eq!(job.output_level, 2);
    }
}
