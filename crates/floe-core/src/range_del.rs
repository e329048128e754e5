//! Range tombstones and their fragmented form: what `delete_range` writes, and the
//! structure that answers "is this version deleted by a range?" in `O(log n)`.
//!
//! A [`RangeTombstone`] deletes every version of every user key in `[start, end)` whose
//! sequence number is below its own. Tombstones overlap freely, so a lookup over a plain
//! list would have to test each one. [`Fragments`] cuts them at every start and end into
//! non-overlapping *fragments*, each listing the sequence numbers of the tombstones that
//! cover it, newest first. A lookup binary-searches the fragment holding the key, then the
//! fragment's sequence numbers for the newest one a reader at its snapshot sees.
//!
//! Worked example: `[b, f)@5` and `[d, h)@9` fragment into
//!
//! ```text
//! [b, d) {5}      [d, f) {9, 5}      [f, h) {9}
//! ```
//!
//! so key `e` read at snapshot 7 is covered at 5 (a version of `e` below 5 is deleted), and
//! read at snapshot 10 it is covered at 9.
//!
//! An end of `None` means "no upper bound": the tombstone covers every key from `start`.
//! Only the in-memory forms use it; a table stores finite ends (a flush cuts an unbounded
//! end just past the largest key the keyspace holds, which no deleted key can exceed).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use bytes::Bytes;

use crate::SeqNo;

/// The deletion of every user key in `[start, end)` at sequence number `seqno`: versions of
/// those keys with a lower sequence number are hidden from readers that see `seqno`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RangeTombstone {
    /// The first key deleted.
    pub start: Bytes,
    /// The first key past the range, or `None` for no upper bound.
    pub end: Option<Bytes>,
    /// The sequence number of the write.
    pub seqno: SeqNo,
}

impl RangeTombstone {
    /// Builds a tombstone over `[start, end)`.
    #[must_use]
    pub fn new(start: impl Into<Bytes>, end: Option<Bytes>, seqno: SeqNo) -> RangeTombstone {
        RangeTombstone {
            start: start.into(),
            end,
            seqno,
        }
    }

    /// Whether the range holds no key (`end <= start`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.end.as_ref().is_some_and(|end| *end <= self.start)
    }

    /// Whether `key` lies in `[start, end)`.
    #[must_use]
    pub fn contains(&self, key: &[u8]) -> bool {
        self.start.as_ref() <= key && end_above(self.end.as_deref(), key)
    }
}

/// Whether the exclusive upper bound `end` lies above `key` (`None` lies above every key).
fn end_above(end: Option<&[u8]>, key: &[u8]) -> bool {
    end.is_none_or(|end| key < end)
}

/// Orders two exclusive upper bounds, `None` (unbounded) last.
fn cmp_end(a: Option<&[u8]>, b: Option<&[u8]>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// One piece of a [`Fragments`] list: the keys `[start, end)` and the sequence numbers of
/// the tombstones covering them, strictly descending and never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The first key of the fragment.
    pub start: Bytes,
    /// The first key past the fragment, or `None` for no upper bound.
    pub end: Option<Bytes>,
    /// The covering sequence numbers, newest first.
    pub seqnos: Vec<SeqNo>,
}

impl Fragment {
    /// The newest covering sequence number at or below `snapshot`.
    #[must_use]
    pub fn newest_at(&self, snapshot: SeqNo) -> Option<SeqNo> {
        let at = self.seqnos.partition_point(|&seqno| seqno > snapshot);
        self.seqnos.get(at).copied()
    }

    /// Whether `key` lies in the fragment.
    #[must_use]
    pub fn contains(&self, key: &[u8]) -> bool {
        self.start.as_ref() <= key && end_above(self.end.as_deref(), key)
    }
}

/// Why a list of fragments read from a file is not a valid [`Fragments`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentError {
    /// A fragment's end is not above its start.
    EmptyFragment,
    /// A fragment starts before the previous one ends.
    Overlap,
    /// A fragment lists no sequence number.
    NoSeqno,
    /// A fragment's sequence numbers are not strictly descending.
    SeqnoOrder,
    /// A fragment other than the last has no upper bound.
    UnboundedNotLast,
}

impl std::fmt::Display for FragmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FragmentError::EmptyFragment => {
                "a range tombstone fragment ends at or before its start"
            }
            FragmentError::Overlap => "range tombstone fragments overlap or are out of order",
            FragmentError::NoSeqno => "a range tombstone fragment lists no sequence number",
            FragmentError::SeqnoOrder => {
                "a range tombstone fragment's sequence numbers are not strictly descending"
            }
            FragmentError::UnboundedNotLast => {
                "a range tombstone fragment without an end is not the last"
            }
        })
    }
}

impl std::error::Error for FragmentError {}

/// Range tombstones cut into non-overlapping fragments, sorted by key (see the module
/// docs). Immutable once built; cheap to query from many threads.
#[derive(Debug, Clone, Default)]
pub struct Fragments {
    fragments: Vec<Fragment>,
    /// What a lookup searches instead of the fragments themselves (see [`SearchIndex`]).
    index: SearchIndex,
}

impl PartialEq for Fragments {
    fn eq(&self, other: &Self) -> bool {
        // The index is a function of the fragments.
        self.fragments == other.fragments
    }
}

impl Eq for Fragments {}

/// The fragments' bounds as 8-byte integers, so that a lookup binary-searches two compact
/// arrays instead of following a pointer to a key at every step.
///
/// Every start and finite end shares the first `common` bytes; `starts[i]` and `ends[i]`
/// are the next eight bytes of fragment `i`'s start and end as a big-endian `u64`
/// (zero-padded; `u64::MAX` marks an unbounded end, which never decides alone). Two keys
/// whose integers differ compare as the integers do; equal integers leave the order to
/// the keys, which the lookup then compares. With 10,000 fragments the arrays take
/// 160 KB, which stay in cache where the fragments (88 bytes each, keys elsewhere) do
/// not: a lookup among 10,000 live tombstones costs a few cache hits, not some thirty
/// misses.
#[derive(Debug, Clone, Default)]
struct SearchIndex {
    common: Bytes,
    starts: Vec<u64>,
    ends: Vec<u64>,
}

/// The eight bytes of `key` after its first `skip` as a big-endian integer, zero-padded.
fn key_word(key: &[u8], skip: usize) -> u64 {
    let rest = key.get(skip..).unwrap_or_default();
    let mut word = [0u8; 8];
    for (to, from) in word.iter_mut().zip(rest) {
        *to = *from;
    }
    u64::from_be_bytes(word)
}

impl SearchIndex {
    fn build(fragments: &[Fragment]) -> SearchIndex {
        let mut bounds = fragments
            .iter()
            .flat_map(|f| std::iter::once(&f.start).chain(f.end.as_ref()));
        let Some(first) = bounds.next() else {
            return SearchIndex::default();
        };
        let mut common = first.len();
        for bound in bounds {
            common = common.min(
                first
                    .iter()
                    .zip(bound.iter())
                    .take_while(|(a, b)| a == b)
                    .count(),
            );
        }
        SearchIndex {
            common: first.slice(..common),
            starts: fragments
                .iter()
                .map(|f| key_word(&f.start, common))
                .collect(),
            ends: fragments
                .iter()
                .map(|f| f.end.as_ref().map_or(u64::MAX, |e| key_word(e, common)))
                .collect(),
        }
    }
}

impl Fragments {
    /// The fragments of `tombstones`, in any order and overlapping as they like. Empty
    /// tombstones are ignored; a tombstone repeated (same range and seqno) counts once.
    /// Neighbouring fragments with the same sequence numbers are merged.
    ///
    /// Cost: `O(n log n + f * d)` for `n` tombstones cut into `f` fragments at most `d`
    /// deep.
    #[must_use]
    pub fn new(tombstones: impl IntoIterator<Item = RangeTombstone>) -> Fragments {
        let mut tombstones: Vec<RangeTombstone> =
            tombstones.into_iter().filter(|t| !t.is_empty()).collect();
        if tombstones.is_empty() {
            return Fragments::default();
        }
        tombstones.sort_by(|a, b| a.start.cmp(&b.start));
        // Every start and finite end cuts the key space; between two cuts the set of
        // covering tombstones is constant.
        let mut cuts: Vec<Bytes> = tombstones
            .iter()
            .flat_map(|t| std::iter::once(t.start.clone()).chain(t.end.clone()))
            .collect();
        cuts.sort();
        cuts.dedup();

        // The tombstones that started, keyed by end so the finished ones pop first.
        let mut active: BinaryHeap<Reverse<ActiveEnd>> = BinaryHeap::new();
        let mut next = 0;
        let mut out: Vec<Fragment> = Vec::new();
        for (index, cut) in cuts.iter().enumerate() {
            while let Some(t) = tombstones.get(next).filter(|t| t.start <= *cut) {
                active.push(Reverse(ActiveEnd {
                    end: t.end.clone(),
                    seqno: t.seqno,
                }));
                next += 1;
            }
            while active
                .peek()
                .is_some_and(|Reverse(a)| !end_above(a.end.as_deref(), cut))
            {
                active.pop();
            }
            if active.is_empty() {
                continue;
            }
            let mut seqnos: Vec<SeqNo> = active.iter().map(|Reverse(a)| a.seqno).collect();
            seqnos.sort_unstable_by(|a, b| b.cmp(a));
            seqnos.dedup();
            let end = cuts.get(index + 1).cloned();
            push_merged(&mut out, cut.clone(), end, seqnos);
        }
        Fragments::from_sorted(out)
    }

    /// Fragments read back from a file, checked to be sorted, non-overlapping, non-empty
    /// and with strictly descending sequence numbers.
    ///
    /// # Errors
    /// The first rule the list breaks.
    pub fn from_fragments(fragments: Vec<Fragment>) -> Result<Fragments, FragmentError> {
        let mut previous_end: Option<Option<&Bytes>> = None;
        for fragment in &fragments {
            if let Some(previous) = previous_end {
                match previous {
                    None => return Err(FragmentError::UnboundedNotLast),
                    Some(end) if fragment.start < *end => return Err(FragmentError::Overlap),
                    Some(_) => {}
                }
            }
            if fragment
                .end
                .as_ref()
                .is_some_and(|end| *end <= fragment.start)
            {
                return Err(FragmentError::EmptyFragment);
            }
            if fragment.seqnos.is_empty() {
                return Err(FragmentError::NoSeqno);
            }
            if fragment.seqnos.windows(2).any(|pair| pair[0] <= pair[1]) {
                return Err(FragmentError::SeqnoOrder);
            }
            previous_end = Some(fragment.end.as_ref());
        }
        Ok(Fragments::from_sorted(fragments))
    }

    /// Fragments already sorted and valid, with their search index.
    fn from_sorted(fragments: Vec<Fragment>) -> Fragments {
        let index = SearchIndex::build(&fragments);
        Fragments { fragments, index }
    }

    /// Whether there is no fragment.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fragments.is_empty()
    }

    /// The number of fragments.
    #[must_use]
    pub fn len(&self) -> usize {
        self.fragments.len()
    }

    /// The fragments, in key order.
    #[must_use]
    pub fn fragments(&self) -> &[Fragment] {
        &self.fragments
    }

    /// The index of the fragment holding `key`, if any.
    #[must_use]
    pub fn position(&self, key: &[u8]) -> Option<usize> {
        let index = &self.index;
        if !key.starts_with(&index.common) {
            // Outside the shared prefix: rare, searched on the keys themselves.
            let at = self
                .fragments
                .partition_point(|f| f.start.as_ref() <= key)
                .checked_sub(1)?;
            return self
                .fragments
                .get(at)
                .filter(|f| end_above(f.end.as_deref(), key))
                .map(|_| at);
        }
        let word = key_word(key, index.common.len());
        // Fragments whose start word is below `word` start below `key`; those with an
        // equal word are ordered by their keys.
        let below = index.starts.partition_point(|&s| s < word);
        // Ties are few (starts that share eight more bytes): counted, not searched.
        let ties = index.starts[below..]
            .iter()
            .take_while(|&&s| s == word)
            .count();
        let tied = self.fragments.get(below..below + ties).unwrap_or_default();
        let at = (below + tied.partition_point(|f| f.start.as_ref() <= key)).checked_sub(1)?;
        let end = *index.ends.get(at)?;
        let above = match end.cmp(&word) {
            Ordering::Greater if end != u64::MAX => true,
            Ordering::Less => false,
            _ => end_above(self.fragments.get(at)?.end.as_deref(), key),
        };
        above.then_some(at)
    }

    /// The fragment holding `key`, if any.
    #[must_use]
    pub fn fragment_at(&self, key: &[u8]) -> Option<&Fragment> {
        self.position(key).and_then(|at| self.fragments.get(at))
    }

    /// The newest sequence number at or below `snapshot` of a tombstone covering `key`:
    /// a version of `key` below it is deleted for a reader at `snapshot`.
    #[must_use]
    pub fn max_covering(&self, key: &[u8], snapshot: SeqNo) -> Option<SeqNo> {
        self.fragment_at(key)?.newest_at(snapshot)
    }

    /// The oldest sequence number of a tombstone over `key` that is above `seqno`: the
    /// first tombstone that hides the version of `key` at `seqno` from the readers that
    /// see it. A compaction drops the version when no snapshot lies between the two.
    #[must_use]
    pub fn oldest_above(&self, key: &[u8], seqno: SeqNo) -> Option<SeqNo> {
        let fragment = self.fragment_at(key)?;
        let newer = fragment.seqnos.partition_point(|&s| s > seqno);
        newer
            .checked_sub(1)
            .and_then(|at| fragment.seqnos.get(at))
            .copied()
    }

    /// Whether the version of `key` at `seqno` is deleted by a range for a reader at
    /// `snapshot`.
    #[must_use]
    pub fn covers(&self, key: &[u8], seqno: SeqNo, snapshot: SeqNo) -> bool {
        self.max_covering(key, snapshot).is_some_and(|t| t > seqno)
    }

    /// Every (fragment, sequence number) pair as a tombstone: feeding these, with others,
    /// to [`Fragments::new`] merges fragment lists.
    pub fn tombstones(&self) -> impl Iterator<Item = RangeTombstone> + '_ {
        self.fragments.iter().flat_map(|f| {
            f.seqnos
                .iter()
                .map(|&seqno| RangeTombstone::new(f.start.clone(), f.end.clone(), seqno))
        })
    }

    /// The fragments restricted to `[lower, upper)` (`None`: no bound on that side).
    #[must_use]
    pub fn clip(&self, lower: Option<&[u8]>, upper: Option<&[u8]>) -> Fragments {
        let mut out = Vec::new();
        for fragment in &self.fragments {
            let start = match lower {
                Some(lower) if fragment.start.as_ref() < lower => Bytes::copy_from_slice(lower),
                _ => fragment.start.clone(),
            };
            let end = match (fragment.end.as_deref(), upper) {
                (_, None) => fragment.end.clone(),
                (Some(end), Some(upper)) if end <= upper => fragment.end.clone(),
                (_, Some(upper)) => Some(Bytes::copy_from_slice(upper)),
            };
            if end.as_ref().is_some_and(|end| *end <= start) {
                continue;
            }
            out.push(Fragment {
                start,
                end,
                seqnos: fragment.seqnos.clone(),
            });
        }
        Fragments::from_sorted(out)
    }

    /// Keeps, in each fragment, only the sequence numbers some reader needs: the newest
    /// of each snapshot stripe (see below), and drops fragments left with none.
    ///
    /// `snapshots` are the live snapshots, ascending; stripe `j` holds the seqnos that the
    /// snapshot `snapshots[j]` is the oldest to see, and the last stripe those only reads
    /// to come see. Every reader sees all of a stripe or none of it, so an older seqno in
    /// the same stripe as a newer one hides nothing more. With `drop_oldest_stripe`, the
    /// sequence numbers of stripe 0 (seen by every reader) go too: a compaction at the
    /// bottommost level removes every version they cover, so they have nothing left to
    /// hide.
    pub fn retain_needed(&mut self, snapshots: &[SeqNo], drop_oldest_stripe: bool) {
        let stripe = |seqno: SeqNo| snapshots.partition_point(|&s| s < seqno);
        let mut out: Vec<Fragment> = Vec::with_capacity(self.fragments.len());
        for fragment in std::mem::take(&mut self.fragments) {
            let mut seqnos = Vec::with_capacity(1);
            let mut last_stripe = None;
            for &seqno in &fragment.seqnos {
                let s = stripe(seqno);
                if last_stripe == Some(s) || (drop_oldest_stripe && s == 0) {
                    continue;
                }
                last_stripe = Some(s);
                seqnos.push(seqno);
            }
            if !seqnos.is_empty() {
                push_merged(&mut out, fragment.start, fragment.end, seqnos);
            }
        }
        *self = Fragments::from_sorted(out);
    }

    /// The first key any fragment covers.
    #[must_use]
    pub fn smallest(&self) -> Option<&Bytes> {
        self.fragments.first().map(|f| &f.start)
    }

    /// The exclusive end of the last fragment: `None` if there is no fragment,
    /// `Some(None)` if it has no upper bound.
    #[must_use]
    pub fn end(&self) -> Option<Option<&Bytes>> {
        self.fragments.last().map(|f| f.end.as_ref())
    }

    /// The smallest and largest sequence numbers of any fragment.
    #[must_use]
    pub fn seqno_range(&self) -> Option<(SeqNo, SeqNo)> {
        let mut seqnos = self.fragments.iter().flat_map(|f| f.seqnos.iter().copied());
        let first = seqnos.next()?;
        Some(seqnos.fold((first, first), |(lo, hi), s| (lo.min(s), hi.max(s))))
    }

    /// Whether every key of `[smallest, largest]` is covered, for a reader at `snapshot`,
    /// by a tombstone whose sequence number is above `above` and for which `keep` holds:
    /// the test for dropping a whole table of a lower level without reading it.
    #[must_use]
    pub fn covers_span(
        &self,
        smallest: &[u8],
        largest: &[u8],
        mut keep: impl FnMut(SeqNo) -> bool,
        above: SeqNo,
    ) -> bool {
        let Some(mut at) = self.position(smallest) else {
            return false;
        };
        loop {
            let Some(fragment) = self.fragments.get(at) else {
                return false;
            };
            // The oldest covering seqno above `above`: the one a version just below it
            // would meet first, and so the one that must pass `keep`.
            let oldest_above = fragment.seqnos.iter().rev().find(|&&seqno| seqno > above);
            if !oldest_above.is_some_and(|&seqno| keep(seqno)) {
                return false;
            }
            match fragment.end.as_deref() {
                None => return true,
                Some(end) if largest < end => return true,
                Some(end) => {
                    // The next fragment must start exactly here, or a gap is uncovered.
                    at += 1;
                    if self
                        .fragments
                        .get(at)
                        .is_none_or(|f| f.start.as_ref() != end)
                    {
                        return false;
                    }
                }
            }
        }
    }
}

/// Appends a fragment, merging it into the previous one when they touch and list the same
/// sequence numbers.
fn push_merged(out: &mut Vec<Fragment>, start: Bytes, end: Option<Bytes>, seqnos: Vec<SeqNo>) {
    if let Some(last) = out.last_mut()
        && last.end.as_ref() == Some(&start)
        && last.seqnos == seqnos
    {
        last.end = end;
        return;
    }
    out.push(Fragment { start, end, seqnos });
}

/// A started tombstone in the fragmenting sweep, ordered by end (unbounded last).
#[derive(Debug, PartialEq, Eq)]
struct ActiveEnd {
    end: Option<Bytes>,
    seqno: SeqNo,
}

impl Ord for ActiveEnd {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_end(self.end.as_deref(), other.end.as_deref()).then(self.seqno.cmp(&other.seqno))
    }
}

impl PartialOrd for ActiveEnd {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The exclusive bound just past `key`: the smallest key above it, `key` followed by a
/// zero byte.
#[must_use]
pub fn successor(key: &[u8]) -> Bytes {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    Bytes::from(next)
}

/// The largest key below the exclusive bound `end`, when one exists exactly: `end` less
/// its last byte if that byte is zero (`k\0` is the key right after `k`). Otherwise keys
/// below `end` come arbitrarily close to it, and `end` itself is the tightest inclusive
/// bound.
#[must_use]
pub fn inclusive_end(end: &Bytes) -> Bytes {
    match end.split_last() {
        Some((0, _)) => end.slice(..end.len() - 1),
        _ => end.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(start: &str, end: Option<&str>, seqno: SeqNo) -> RangeTombstone {
        RangeTombstone::new(
            Bytes::copy_from_slice(start.as_bytes()),
            end.map(|e| Bytes::copy_from_slice(e.as_bytes())),
            seqno,
        )
    }

    fn shape(fragments: &Fragments) -> Vec<(String, Option<String>, Vec<SeqNo>)> {
        fragments
            .fragments()
            .iter()
            .map(|f| {
                (
                    String::from_utf8(f.start.to_vec()).unwrap(),
                    f.end
                        .as_ref()
                        .map(|e| String::from_utf8(e.to_vec()).unwrap()),
                    f.seqnos.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn fragments_the_worked_example() {
        let fragments = Fragments::new([t("d", Some("h"), 9), t("b", Some("f"), 5)]);
        assert_eq!(
            shape(&fragments),
            [
                ("b".into(), Some("d".into()), vec![5]),
                ("d".into(), Some("f".into()), vec![9, 5]),
                ("f".into(), Some("h".into()), vec![9]),
            ]
        );
        assert_eq!(fragments.max_covering(b"e", 7), Some(5));
        assert_eq!(fragments.max_covering(b"e", 10), Some(9));
        assert_eq!(fragments.max_covering(b"e", 4), None);
        assert_eq!(fragments.max_covering(b"h", 10), None);
        assert_eq!(fragments.max_covering(b"a", 10), None);
        assert!(fragments.covers(b"c", 4, 10));
        assert_eq!(fragments.oldest_above(b"e", 4), Some(5));
        assert_eq!(fragments.oldest_above(b"e", 5), Some(9));
        assert_eq!(fragments.oldest_above(b"e", 9), None);
        assert!(!fragments.covers(b"c", 5, 10));
    }

    #[test]
    fn unbounded_ends_gaps_and_merging() {
        let fragments = Fragments::new([
            t("a", Some("c"), 3),
            t("c", Some("e"), 3),
            t("x", None, 7),
            t("z", None, 8),
            t("q", Some("q"), 9),
        ]);
        assert_eq!(
            shape(&fragments),
            [
                ("a".into(), Some("e".into()), vec![3]),
                ("x".into(), Some("z".into()), vec![7]),
                ("z".into(), None, vec![8, 7]),
            ]
        );
        assert_eq!(fragments.max_covering(b"zzzz", 100), Some(8));
        assert_eq!(fragments.max_covering(b"m", 100), None);
        assert_eq!(fragments.end(), Some(None));
        assert_eq!(fragments.seqno_range(), Some((3, 8)));
        let clipped = fragments.clip(Some(b"b"), Some(b"y"));
        assert_eq!(
            shape(&clipped),
            [
                ("b".into(), Some("e".into()), vec![3]),
                ("x".into(), Some("y".into()), vec![7]),
            ]
        );
    }

    #[test]
    fn retain_needed_keeps_the_newest_of_each_stripe() {
        let mut fragments = Fragments::new([
            t("a", Some("z"), 2),
            t("a", Some("z"), 3),
            t("a", Some("z"), 6),
            t("a", Some("z"), 9),
        ]);
        // Snapshots 4 and 7: stripes {2, 3}, {6}, {9}.
        fragments.retain_needed(&[4, 7], false);
        assert_eq!(fragments.fragments()[0].seqnos, [9, 6, 3]);
        fragments.retain_needed(&[4, 7], true);
        assert_eq!(fragments.fragments()[0].seqnos, [9, 6]);
        let mut no_snapshots = Fragments::new([t("a", Some("z"), 2), t("a", Some("z"), 3)]);
        no_snapshots.retain_needed(&[], true);
        assert!(no_snapshots.is_empty());
    }

    #[test]
    fn covers_span_needs_contiguous_newer_fragments() {
        let fragments = Fragments::new([t("a", Some("f"), 10), t("f", Some("m"), 12)]);
        assert!(fragments.covers_span(b"b", b"l", |_| true, 9));
        assert!(!fragments.covers_span(b"b", b"m", |_| true, 9));
        assert!(!fragments.covers_span(b"b", b"l", |_| true, 10));
        assert!(!fragments.covers_span(b"b", b"l", |s| s != 12, 9));
        let gap = Fragments::new([t("a", Some("f"), 10), t("g", Some("m"), 12)]);
        assert!(!gap.covers_span(b"b", b"h", |_| true, 1));
    }

    #[test]
    fn from_fragments_checks_every_rule() {
        let f = |start: &str, end: Option<&str>, seqnos: &[SeqNo]| Fragment {
            start: Bytes::copy_from_slice(start.as_bytes()),
            end: end.map(|e| Bytes::copy_from_slice(e.as_bytes())),
            seqnos: seqnos.to_vec(),
        };
        assert!(
            Fragments::from_fragments(vec![f("a", Some("b"), &[2, 1]), f("b", None, &[1])]).is_ok()
        );
        assert_eq!(
            Fragments::from_fragments(vec![f("b", Some("b"), &[1])]),
            Err(FragmentError::EmptyFragment)
        );
        assert_eq!(
            Fragments::from_fragments(vec![f("a", Some("c"), &[1]), f("b", Some("d"), &[1])]),
            Err(FragmentError::Overlap)
        );
        assert_eq!(
            Fragments::from_fragments(vec![f("a", Some("c"), &[])]),
            Err(FragmentError::NoSeqno)
        );
        assert_eq!(
            Fragments::from_fragments(vec![f("a", Some("c"), &[1, 1])]),
            Err(FragmentError::SeqnoOrder)
        );
        assert_eq!(
            Fragments::from_fragments(vec![f("a", None, &[1]), f("b", Some("c"), &[1])]),
            Err(FragmentError::UnboundedNotLast)
        );
    }

    #[test]
    fn successor_and_inclusive_end() {
        assert_eq!(successor(b"ab").as_ref(), b"ab\0");
        assert_eq!(inclusive_end(&Bytes::from_static(b"ab\0")).as_ref(), b"ab");
        assert_eq!(inclusive_end(&Bytes::from_static(b"ab")).as_ref(), b"ab");
        assert_eq!(inclusive_end(&Bytes::new()).as_ref(), b"");
    }

    /// Keys that share a long prefix and tie on the eight bytes after it, keys outside
    /// the prefix, and unbounded ends: the search index answers as a plain search would.
    #[test]
    fn the_search_index_agrees_with_a_plain_search() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        // "user/" + 8 tied bytes + a distinguishing tail, or a short or foreign key.
        let key = |i: u64, form: u64| -> Bytes {
            match form {
                0 => Bytes::from(format!("user/AAAAAAAA{i:03}")),
                1 => Bytes::from(format!("user/{i:03}")),
                2 => Bytes::from(format!("user/AAAAAAAA{i:03}\0")),
                _ => Bytes::from(format!("zz{i:03}")),
            }
        };
        for _ in 0..300 {
            let tombstones: Vec<RangeTombstone> = (0..next(10) + 1)
                .map(|seqno| {
                    let (a, b) = (next(50), next(50));
                    let (start, end) = (key(a.min(b), next(3)), key(a.max(b) + 1, next(3)));
                    let end = (next(6) != 0).then_some(end);
                    RangeTombstone::new(start, end, seqno + 1)
                })
                .collect();
            let fragments = Fragments::new(tombstones.clone());
            for i in 0..55 {
                for form in 0..4 {
                    let probe = key(i, form);
                    let plain = fragments
                        .fragments()
                        .iter()
                        .position(|f| f.contains(&probe));
                    assert_eq!(
                        fragments.position(&probe),
                        plain,
                        "{tombstones:?} {probe:?}"
                    );
                    let expected = tombstones
                        .iter()
                        .filter(|t| t.contains(&probe))
                        .map(|t| t.seqno)
                        .max();
                    assert_eq!(fragments.max_covering(&probe, SeqNo::MAX), expected);
                }
            }
        }
    }

    /// The fragments answer exactly what testing every tombstone would, over random
    /// overlapping tombstones (a small key space, so that they overlap a lot).
    #[test]
    fn max_covering_matches_brute_force() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        let key = |i: u64| Bytes::from(format!("{i:03}"));
        for _ in 0..200 {
            let tombstones: Vec<RangeTombstone> = (0..next(12))
                .map(|seqno| {
                    let start = next(40);
                    let end = (next(8) != 0).then(|| key(start + next(15)));
                    RangeTombstone::new(key(start), end, seqno + 1 + next(3) * 10)
                })
                .collect();
            let fragments = Fragments::new(tombstones.clone());
            assert!(Fragments::from_fragments(fragments.fragments().to_vec()).is_ok());
            let merged = Fragments::new(fragments.tombstones());
            for k in 0..60 {
                for snapshot in [0, 5, 15, 25, 100] {
                    let expected = tombstones
                        .iter()
                        .filter(|t| t.contains(&key(k)) && t.seqno <= snapshot)
                        .map(|t| t.seqno)
                        .max();
                    assert_eq!(
                        fragments.max_covering(&key(k), snapshot),
                        expected,
                        "{tombstones:?} key {k} at {snapshot}"
                    );
                    assert_eq!(merged.max_covering(&key(k), snapshot), expected);
                }
            }
        }
    }
}
