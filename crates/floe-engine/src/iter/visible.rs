//! The user's view of a merged stream at one snapshot: one value per live user key.

use bytes::Bytes;
use floe_core::range_del::Fragments;
use floe_core::{InternalKey, SeqNo, ValueKind};

use super::{Entry, MergingIter};
use crate::Result;

/// The `(user key, value)` pairs a read at `snapshot` sees, in ascending key order from
/// the front and descending from the back.
///
/// For each user key the newest version with seqno `<= snapshot` decides: a `Put` yields
/// the pair, a tombstone hides the key; newer versions are invisible. A range tombstone
/// visible at the snapshot and newer than that version hides the key too: the scan
/// gathers the range tombstones of all its sources into one [`Fragments`] oracle, and
/// asks it only about the deciding version of each key, in `O(log n)`.
///
/// Forward, the versions of a key arrive newest first, so the first visible one decides
/// and the rest are skipped as they come. Backward they arrive oldest first, so the back
/// end reads the whole run of a key (one entry past it, kept in `back_pending`) and
/// decides by the newest visible version of the run. Mixing the ends works because:
/// - the front only skips versions of `front_key`, a key it has decided, or versions
///   newer than the snapshot, which cannot change the back's decision;
/// - the back consumes whole runs, so the front never meets a key the back decided; the
///   one entry the back read past a run is the last entry the front can get;
/// - if the back meets a run of `front_key`, the ends have met on that key.
pub(crate) struct VisibleIter {
    merged: MergingIter,
    snapshot: SeqNo,
    /// The user key the front end decided last, whether it yielded it or found it deleted.
    front_key: Option<Bytes>,
    /// The entry the back end read past the end of the last run: the oldest remaining
    /// version of the next key backwards, and the entry that follows everything still in
    /// `merged`.
    back_pending: Option<Entry>,
    /// Set once the ends met or an error was yielded.
    done: bool,
    /// The range tombstones visible at the snapshot over the scanned keys, if any.
    ranges: Option<Fragments>,
}

impl VisibleIter {
    /// Reads `merged` at `snapshot`.
    pub(crate) fn new(merged: MergingIter, snapshot: SeqNo) -> VisibleIter {
        VisibleIter {
            merged,
            snapshot,
            front_key: None,
            back_pending: None,
            done: false,
            ranges: None,
        }
    }

    /// This view with the range tombstones `ranges` applied (none if empty).
    pub(crate) fn with_ranges(mut self, ranges: Fragments) -> VisibleIter {
        self.ranges = (!ranges.is_empty()).then_some(ranges);
        self
    }

    /// Whether the deciding version `key` of its user key is a live value: a `Put` that no
    /// range tombstone hides.
    fn is_live(&self, key: &InternalKey) -> bool {
        key.kind == ValueKind::Put
            && !self
                .ranges
                .as_ref()
                .is_some_and(|r| r.covers(&key.user_key, key.seqno, self.snapshot))
    }

    /// Ends the stream with `err`.
    fn fail(&mut self, err: crate::Error) -> Option<Result<(Bytes, Bytes)>> {
        self.done = true;
        self.back_pending = None;
        Some(Err(err))
    }
}

impl Iterator for VisibleIter {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let (key, value) = match self.merged.next() {
                Some(Ok(entry)) => entry,
                Some(Err(err)) => return self.fail(err),
                None => match self.back_pending.take() {
                    Some(entry) => entry,
                    None => {
                        self.done = true;
                        return None;
                    }
                },
            };
            if key.seqno > self.snapshot || self.front_key.as_ref() == Some(&key.user_key) {
                continue;
            }
            self.front_key = Some(key.user_key.clone());
            if self.is_live(&key) {
                return Some(Ok((key.user_key, value)));
            }
        }
        None
    }
}

impl DoubleEndedIterator for VisibleIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        while !self.done {
            let first = match self.back_pending.take() {
                Some(entry) => entry,
                None => match self.merged.next_back() {
                    Some(Ok(entry)) => entry,
                    Some(Err(err)) => return self.fail(err),
                    None => {
                        self.done = true;
                        return None;
                    }
                },
            };
            let run_key = first.0.user_key.clone();
            // Versions arrive oldest first, so the last visible one seen is the newest.
            let mut decisive = (first.0.seqno <= self.snapshot).then_some(first);
            loop {
                match self.merged.next_back() {
                    Some(Ok(entry)) if entry.0.user_key == run_key => {
                        if entry.0.seqno <= self.snapshot {
                            decisive = Some(entry);
                        }
                    }
                    Some(Ok(entry)) => {
                        self.back_pending = Some(entry);
                        break;
                    }
                    Some(Err(err)) => return self.fail(err),
                    None => break,
                }
            }
            if self.front_key.as_ref() == Some(&run_key) {
                // The front decided this key already: the ends have met.
                self.done = true;
                return None;
            }
            if let Some((key, value)) = decisive
                && self.is_live(&key)
            {
                return Some(Ok((key.user_key, value)));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::iter::test_util::{entry, failing_source, source, tombstone};

    fn visible(sources: Vec<Vec<Entry>>, snapshot: SeqNo) -> VisibleIter {
        VisibleIter::new(
            MergingIter::new(sources.into_iter().map(source).collect()),
            snapshot,
        )
    }

    fn pairs(items: impl Iterator<Item = Result<(Bytes, Bytes)>>) -> Vec<(String, String)> {
        items
            .map(|item| {
                let (key, value) = item.unwrap();
                (
                    String::from_utf8(key.to_vec()).unwrap(),
                    String::from_utf8(value.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    fn pair(key: &str, value: &str) -> (String, String) {
        (key.to_owned(), value.to_owned())
    }

    /// Memtable over table: "a" overwritten, "b" deleted, "c" rewritten after the
    /// snapshot 10 reads, "d" only written after it.
    fn layered() -> Vec<Vec<Entry>> {
        vec![
            vec![
                entry("a", 9, "a9"),
                tombstone("b", 8),
                entry("c", 12, "c12"),
                entry("d", 11, "d11"),
            ],
            vec![
                entry("a", 3, "a3"),
                entry("b", 4, "b4"),
                entry("c", 5, "c5"),
                entry("e", 1, "e1"),
            ],
        ]
    }

    #[test]
    fn newest_visible_version_decides_in_both_directions() {
        let expected = [pair("a", "a9"), pair("c", "c5"), pair("e", "e1")];
        assert_eq!(pairs(visible(layered(), 10)), expected);
        let mut backward = pairs(visible(layered(), 10).rev());
        backward.reverse();
        assert_eq!(backward, expected);
    }

    #[test]
    fn snapshots_see_their_own_point_in_time() {
        assert_eq!(
            pairs(visible(layered(), 4)),
            [pair("a", "a3"), pair("b", "b4"), pair("e", "e1")]
        );
        assert_eq!(pairs(visible(layered(), 0)), []);
        assert_eq!(
            pairs(visible(layered(), SeqNo::MAX).rev()),
            [
                pair("e", "e1"),
                pair("d", "d11"),
                pair("c", "c12"),
                pair("a", "a9")
            ]
        );
    }

    #[test]
    fn a_tombstone_hides_older_values_but_not_newer_ones() {
        let sources = vec![vec![
            entry("k", 7, "again"),
            tombstone("k", 5),
            entry("k", 2, "old"),
        ]];
        assert_eq!(pairs(visible(sources.clone(), 6)), []);
        assert_eq!(pairs(visible(sources.clone(), 6).rev()), []);
        assert_eq!(
            pairs(visible(sources.clone(), 7).rev()),
            [pair("k", "again")]
        );
        assert_eq!(pairs(visible(sources, 4).rev()), [pair("k", "old")]);
    }

    #[test]
    fn ends_meeting_inside_one_key_yield_it_once() {
        // The front decides "k" from its newest version; the back then meets the older
        // versions of "k" and must not yield it again.
        let sources = vec![vec![
            entry("k", 3, "k3"),
            entry("k", 2, "k2"),
            entry("k", 1, "k1"),
        ]];
        let mut iter = visible(sources.clone(), 10);
        assert_eq!(pairs(iter.next().into_iter()), [pair("k", "k3")]);
        assert!(iter.next_back().is_none());
        assert!(iter.next().is_none());

        // The back decides "k" first; the front finds nothing left.
        let mut iter = visible(sources, 2);
        assert_eq!(pairs(iter.next_back().into_iter()), [pair("k", "k2")]);
        assert!(iter.next().is_none());
    }

    #[test]
    fn the_front_takes_the_entry_the_back_read_past_its_run() {
        // next_back reads all of "z" and the oldest version of "y" (which it keeps).
        // The front must still find "y" with the right version.
        let sources = vec![
            vec![entry("y", 5, "y5"), entry("z", 1, "z1")],
            vec![entry("x", 1, "x1"), entry("y", 4, "y4")],
        ];
        let mut iter = visible(sources.clone(), 10);
        assert_eq!(pairs(iter.next_back().into_iter()), [pair("z", "z1")]);
        assert_eq!(pairs(iter.next().into_iter()), [pair("x", "x1")]);
        assert_eq!(pairs(iter.next().into_iter()), [pair("y", "y5")]);
        assert!(iter.next().is_none());
        assert!(iter.next_back().is_none());

        // Only the pending (oldest) version of "y" is visible: the front must decide by it.
        let mut iter = visible(sources, 4);
        assert_eq!(pairs(iter.next_back().into_iter()), [pair("z", "z1")]);
        assert_eq!(pairs(iter.next().into_iter()), [pair("x", "x1")]);
        assert_eq!(pairs(iter.next().into_iter()), [pair("y", "y4")]);
        assert!(iter.next_back().is_none());
    }

    #[test]
    fn errors_end_the_view() {
        let sources = vec![
            source(vec![entry("a", 1, "a"), entry("c", 1, "c")]),
            failing_source(vec![entry("b", 1, "b")], "bad block"),
        ];
        let mut iter = VisibleIter::new(MergingIter::new(sources), 10);
        assert_eq!(pairs(iter.next().into_iter()), [pair("a", "a")]);
        assert_eq!(pairs(iter.next().into_iter()), [pair("b", "b")]);
        assert!(matches!(iter.next(), Some(Err(Error::Corruption { .. }))));
        assert!(iter.next().is_none());
        assert!(iter.next_back().is_none());

        let sources = vec![failing_source(vec![entry("a", 1, "a")], "bad block")];
        let mut iter = VisibleIter::new(MergingIter::new(sources), 10);
        assert!(matches!(
            iter.next_back(),
            Some(Err(Error::Corruption { .. }))
        ));
        assert!(iter.next().is_none());
    }
}
