//! Choosing the versions a compaction output keeps: what some reader can still see.
//!
//! # The rule
//!
//! The live snapshots `t_1 < t_2 < ... < t_m` cut the sequence numbers into *stripes*:
//! stripe `j` holds the seqnos in `(t_{j-1}, t_j]`, and stripe `m + 1` those above `t_m`,
//! which only reads made from now on see (they see everything). A read at `t_j` sees, for
//! each user key, the newest version with seqno `<= t_j`, which is the newest version in
//! the highest non-empty stripe `<= j`. So the versions any reader can see are exactly the
//! newest version of each non-empty stripe; every other version is dropped.
//!
//! A kept tombstone hides the older kept versions of its key from the readers that see
//! it. It can only go when nothing it hides would come back:
//! - above the bottommost level, older versions of the key may sit in lower levels, so
//!   every kept tombstone stays;
//! - at the bottommost level nothing lies below. A tombstone that is the oldest kept
//!   version of its key hides nothing, and the readers that saw it would find nothing
//!   without it, so it is dropped. A tombstone whose next older kept version is another
//!   tombstone is dropped too: its readers then see that older tombstone, which also
//!   reads as "deleted". A tombstone above a kept `Put` stays.
//!
//! Worked example, snapshots `[4, 7]` at the bottommost level, versions newest first:
//!
//! ```text
//! version  stripe        kept?
//! Del@10   3 (> 7)       newest of stripe 3: kept, and Put@6 below it is kept -> stays
//! Put@8    3             shadowed by Del@10 in its stripe -> dropped
//! Put@6    2 (5..=7)     newest of stripe 2 (snapshot 7 reads it) -> kept
//! Del@3    1 (..=4)      newest of stripe 1, but the oldest kept version -> dropped
//! Put@1    1             shadowed by Del@3 -> dropped
//! ```
//!
//! Output: `Del@10, Put@6`. Reads at 4, 7 and now see nothing, `Put@6` and nothing, as
//! before. Above the bottommost level the output is `Del@10, Put@6, Del@3`, since `Del@3`
//! must keep hiding any older `Put` of the key in the levels below.
//!
//! # Range tombstones
//!
//! A version covered by a range tombstone of the same stripe is invisible to every reader
//! (each one sees both or neither, and the tombstone is newer), so it is dropped before
//! the rule above looks at the key, as if it had never been written. One covered by a
//! tombstone of a newer stripe stays: the snapshots between them still read it. The
//! tombstones themselves go to the output's range tombstone block, thinned to what some
//! reader needs by [`Fragments::retain_needed`].
//!
//! # Compaction filters
//!
//! A keyspace's [`CompactionFilter`] sees the kept `Put` of the top stripe, the one only
//! reads to come see: never a version a live snapshot reads. `Change` replaces its value;
//! `Remove` turns it into a tombstone of the same sequence number, which the rule above
//! then treats like any tombstone (it hides the older versions below, and at the bottom it
//! goes unless a snapshot's `Put` lies under it).

use bytes::Bytes;
use floe_core::range_del::Fragments;
use floe_core::{InternalKey, SeqNo, ValueKind};

use std::sync::Arc;

use super::{Entry, MergingIter};
use crate::Result;
use crate::filter::{CompactionFilter, Decision};

/// The entries of a merged stream that a compaction output must keep, in internal-key
/// order (see the module documentation for the rule).
pub(crate) struct CompactionIter {
    merged: MergingIter,
    /// The live snapshots, ascending and without duplicates.
    snapshots: Vec<SeqNo>,
    bottommost: bool,
    /// The user key of the last entry read, and the stripe of that entry.
    current: Option<(Bytes, usize)>,
    /// At the bottommost level, a kept tombstone not yet known to hide a kept `Put`.
    pending_tombstone: Option<Entry>,
    /// A kept entry to yield after the pending tombstone that it proved necessary.
    queued: Option<Entry>,
    /// Set once the merged stream ended or failed.
    done: bool,
    /// The keyspace's compaction filter, if it has one.
    filter: Option<Arc<dyn CompactionFilter>>,
    /// The range tombstones of the inputs, if they hold any.
    ranges: Option<Fragments>,
}

impl CompactionIter {
    /// Filters `merged` for the readers at `live_snapshots` (ascending) and for every
    /// read to come; `bottommost` says no level below can hold the keys of this output.
    pub(crate) fn new(
        merged: MergingIter,
        mut live_snapshots: Vec<SeqNo>,
        bottommost: bool,
    ) -> CompactionIter {
        // The engine passes the snapshots sorted; sorting again is cheap and makes the
        // stripe search safe against any list.
        live_snapshots.sort_unstable();
        live_snapshots.dedup();
        CompactionIter {
            merged,
            snapshots: live_snapshots,
            bottommost,
            current: None,
            pending_tombstone: None,
            queued: None,
            done: false,
            filter: None,
            ranges: None,
        }
    }

    /// This iterator dropping the versions that `ranges` hide from every reader (see the
    /// module docs).
    pub(crate) fn with_ranges(mut self, ranges: Fragments) -> Self {
        self.ranges = (!ranges.is_empty()).then_some(ranges);
        self
    }

    /// Whether a range tombstone of the same stripe hides `key`'s version from everyone.
    fn range_hides(&self, key: &InternalKey) -> bool {
        self.ranges.as_ref().is_some_and(|ranges| {
            ranges
                .oldest_above(&key.user_key, key.seqno)
                .is_some_and(|t| self.stripe(t) == self.stripe(key.seqno))
        })
    }

    /// This iterator with `filter` applied to the versions only reads to come see (see
    /// the module docs).
    pub(crate) fn with_filter(mut self, filter: Option<Arc<dyn CompactionFilter>>) -> Self {
        self.filter = filter;
        self
    }

    /// `entry`, the kept version of the top stripe, as the filter decides it.
    fn filtered(&self, mut entry: Entry, filter: &dyn CompactionFilter) -> Entry {
        match filter.filter(&entry.0.user_key, &entry.1) {
            Decision::Keep => {}
            Decision::Change(value) => entry.1 = value,
            Decision::Remove => {
                entry.0.kind = ValueKind::Delete;
                entry.1 = Bytes::new();
            }
        }
        entry
    }

    /// The stripe of `seqno`: the index of the oldest snapshot that sees it, or the number
    /// of snapshots when only reads to come see it.
    fn stripe(&self, seqno: SeqNo) -> usize {
        self.snapshots.partition_point(|&snapshot| snapshot < seqno)
    }
}

impl Iterator for CompactionIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(entry) = self.queued.take() {
            return Some(Ok(entry));
        }
        while !self.done {
            let entry = match self.merged.next() {
                Some(Ok(entry)) => entry,
                Some(Err(err)) => {
                    self.done = true;
                    return Some(Err(err));
                }
                None => {
                    // A pending tombstone is the oldest kept version of the last key.
                    self.done = true;
                    return None;
                }
            };
            if self.range_hides(&entry.0) {
                continue;
            }
            let stripe = self.stripe(entry.0.seqno);
            match &mut self.current {
                Some((key, last_stripe)) if *key == entry.0.user_key => {
                    // Seqnos descend within a key, so stripes never rise: an equal
                    // stripe means a newer version of this stripe was already seen.
                    if *last_stripe == stripe {
                        continue;
                    }
                    *last_stripe = stripe;
                }
                _ => {
                    // A new key: the previous key's pending tombstone hid nothing kept.
                    self.pending_tombstone = None;
                    self.current = Some((entry.0.user_key.clone(), stripe));
                }
            }
            let entry = match &self.filter {
                Some(filter)
                    if stripe == self.snapshots.len() && entry.0.kind == ValueKind::Put =>
                {
                    self.filtered(entry, filter.as_ref())
                }
                _ => entry,
            };
            if !self.bottommost {
                return Some(Ok(entry));
            }
            if entry.0.kind == ValueKind::Delete {
                // Replaces an older pending tombstone: two adjacent kept tombstones read
                // alike, and the older one covers the readers of both.
                self.pending_tombstone = Some(entry);
                continue;
            }
            return match self.pending_tombstone.take() {
                Some(tombstone) => {
                    self.queued = Some(entry);
                    Some(Ok(tombstone))
                }
                None => Some(Ok(entry)),
            };
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::iter::test_util::{entry, failing_source, keys_of, source, tombstone};

    fn compact(entries: Vec<Entry>, snapshots: &[SeqNo], bottommost: bool) -> Vec<String> {
        let merged = MergingIter::new(vec![source(entries)]);
        let out: Vec<Entry> = CompactionIter::new(merged, snapshots.to_vec(), bottommost)
            .map(Result::unwrap)
            .collect();
        keys_of(&out)
    }

    fn worked_example() -> Vec<Entry> {
        vec![
            tombstone("k", 10),
            entry("k", 8, ""),
            entry("k", 6, ""),
            tombstone("k", 3),
            entry("k", 1, ""),
        ]
    }

    /// Removes values "x", replaces values "up" by "UP".
    struct Filter;

    impl CompactionFilter for Filter {
        fn filter(&self, _key: &[u8], value: &[u8]) -> Decision {
            match value {
                b"x" => Decision::Remove,
                b"up" => Decision::Change(Bytes::from_static(b"UP")),
                _ => Decision::Keep,
            }
        }
    }

    fn filtered(entries: Vec<Entry>, snapshots: &[SeqNo], bottommost: bool) -> Vec<Entry> {
        let merged = MergingIter::new(vec![source(entries)]);
        CompactionIter::new(merged, snapshots.to_vec(), bottommost)
            .with_filter(Some(Arc::new(Filter)))
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn the_filter_sees_only_what_no_snapshot_reads_and_removes_with_a_tombstone() {
        let entries = vec![
            entry("a", 9, "x"),
            entry("a", 3, "old"),
            entry("b", 8, "up"),
            entry("c", 2, "x"),
        ];
        // Snapshot 5 reads a@3 and c@2: the filter never sees them.
        let out = filtered(entries.clone(), &[5], false);
        assert_eq!(keys_of(&out), ["a@9-", "a@3", "b@8", "c@2"]);
        assert_eq!(out[2].1, Bytes::from_static(b"UP"));
        // Without snapshots, at the bottom: a removed key with nothing below goes whole.
        let out = filtered(entries.clone(), &[], true);
        assert_eq!(keys_of(&out), ["b@8"]);
        // Above the bottom, the tombstone stays to hide older versions in lower levels.
        assert_eq!(
            keys_of(&filtered(entries, &[], false)),
            ["a@9-", "b@8", "c@2-"]
        );
    }

    #[test]
    fn the_worked_example_of_the_module_documentation() {
        assert_eq!(compact(worked_example(), &[4, 7], true), ["k@10-", "k@6"]);
        assert_eq!(
            compact(worked_example(), &[4, 7], false),
            ["k@10-", "k@6", "k@3-"]
        );
    }

    #[test]
    fn without_snapshots_only_the_newest_version_survives() {
        let entries = vec![
            entry("a", 5, ""),
            entry("a", 4, ""),
            tombstone("b", 9),
            entry("b", 2, ""),
            entry("c", 1, ""),
        ];
        assert_eq!(compact(entries.clone(), &[], false), ["a@5", "b@9-", "c@1"]);
        // At the bottom the deleted key disappears entirely and never comes back.
        assert_eq!(compact(entries, &[], true), ["a@5", "c@1"]);
    }

    #[test]
    fn a_snapshot_still_reads_its_old_value() {
        // Snapshot 3 read "old"; the key was later overwritten and deleted.
        let entries = vec![
            tombstone("k", 9),
            entry("k", 7, "new"),
            entry("k", 3, "old"),
            entry("k", 2, "older"),
        ];
        assert_eq!(compact(entries.clone(), &[3], true), ["k@9-", "k@3"]);
        assert_eq!(
            compact(entries.clone(), &[3, 8], true),
            ["k@9-", "k@7", "k@3"]
        );
        // A snapshot taken when nothing was written yet sees nothing either way.
        assert!(compact(entries, &[1], true).is_empty());
    }

    #[test]
    fn adjacent_tombstones_at_the_bottom_collapse() {
        let entries = vec![tombstone("k", 9), tombstone("k", 5), entry("k", 2, "v")];
        // Snapshot 6 sees Del@5, snapshot 3 sees Put@2: the newer tombstone is redundant.
        assert_eq!(compact(entries.clone(), &[3, 6], true), ["k@5-", "k@2"]);
        assert_eq!(
            compact(entries.clone(), &[3, 6], false),
            ["k@9-", "k@5-", "k@2"]
        );
        // With no older Put kept, every tombstone goes.
        assert!(compact(entries, &[6], true).is_empty());
    }

    #[test]
    fn tombstones_of_one_key_do_not_leak_into_the_next() {
        let entries = vec![tombstone("a", 5), entry("b", 4, "")];
        assert_eq!(compact(entries, &[], true), ["b@4"]);
        let entries = vec![tombstone("a", 5), entry("a", 1, ""), entry("b", 4, "")];
        assert_eq!(compact(entries, &[2], true), ["a@5-", "a@1", "b@4"]);
    }

    #[test]
    fn unsorted_or_repeated_snapshots_are_tolerated() {
        assert_eq!(
            compact(worked_example(), &[7, 4, 7], true),
            ["k@10-", "k@6"]
        );
    }

    #[test]
    fn an_error_is_passed_on_and_ends_the_output() {
        let merged = MergingIter::new(vec![failing_source(vec![entry("a", 1, "")], "torn")]);
        let mut iter = CompactionIter::new(merged, Vec::new(), true);
        assert!(matches!(iter.next(), Some(Ok(_))));
        assert!(matches!(iter.next(), Some(Err(Error::Corruption { .. }))));
        assert!(iter.next().is_none());
    }
}
