//! Range tombstones in the engine: how a point lookup weighs a version against them, how
//! a scan gathers them, and how a flush bounds the ones without an end.
//!
//! # Invariant: per key, newer sources hold newer writes, ranges included
//!
//! The sources of a keyspace, newest first, are the active memtable, the frozen ones, the
//! level-0 tables newest first, then one table per deeper level. For any user key `k`,
//! every version of `k` and every range tombstone over `k` in a newer source has a higher
//! sequence number than every version of `k` in an older one. Memtables and level 0 keep
//! it by their order of writes; deeper levels keep it because a table's key range
//! (`smallest..=largest` in the manifest) includes the extent of its range tombstones, so
//! a compaction that moves a tombstone down takes along every table of the next level
//! whose keys it covers.
//!
//! So a point lookup can stop early: once a source has shown a tombstone over the key
//! and the source itself holds no version of it, everything older is older than that
//! tombstone, and the key is deleted ([`weigh`]).

use std::ops::Bound;

use bytes::Bytes;
use floe_core::range_del::{Fragments, RangeTombstone, successor};
use floe_core::{SeqNo, ValueKind};
use floe_memtable::Lookup;

/// What a point lookup learns from one source: the newest version of the key the source
/// holds at the snapshot (`version`), weighed against `covering`, the newest range
/// tombstone over the key in this source and the newer ones.
///
/// `Some` resolves the lookup: the version, or `Deleted` if a newer range tombstone covers
/// it, or `Deleted` if the source holds no version but a tombstone covers the key (by the
/// module invariant, older sources hold only older versions). `None` sends the lookup on
/// to the next older source.
pub(crate) fn weigh(version: Option<(SeqNo, Lookup)>, covering: Option<SeqNo>) -> Option<Lookup> {
    match version {
        Some((seqno, lookup)) => Some(if covering.is_some_and(|t| t > seqno) {
            Lookup::Deleted
        } else {
            lookup
        }),
        None => covering.map(|_| Lookup::Deleted),
    }
}

/// A table's answer as a [`Lookup`].
pub(crate) fn lookup_of(kind: ValueKind, value: Bytes) -> Lookup {
    match kind {
        ValueKind::Put => Lookup::Value(value),
        ValueKind::Delete => Lookup::Deleted,
    }
}

/// The value a lookup found, if any.
pub(crate) fn value_of(lookup: Lookup) -> Option<Bytes> {
    match lookup {
        Lookup::Value(value) => Some(value),
        Lookup::Deleted => None,
    }
}

/// The tombstones of `fragments` that a reader at `snapshot` sees and that overlap the
/// user-key bounds, as tombstones for [`Fragments::new`]: what a scan gathers from each
/// source into one oracle.
pub(crate) fn visible_within<'f>(
    fragments: &'f Fragments,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    snapshot: SeqNo,
) -> impl Iterator<Item = RangeTombstone> + 'f {
    let all = fragments.fragments();
    // The first fragment that ends above the lower bound.
    let first = match lower {
        Bound::Unbounded => 0,
        Bound::Included(key) | Bound::Excluded(key) => {
            all.partition_point(|f| f.end.as_deref().is_some_and(|end| end <= key))
        }
    };
    let upper: Option<Bytes> = match upper {
        Bound::Unbounded => None,
        Bound::Included(key) => Some(successor(key)),
        Bound::Excluded(key) => Some(Bytes::copy_from_slice(key)),
    };
    all[first..]
        .iter()
        .take_while(move |f| upper.as_ref().is_none_or(|upper| f.start < *upper))
        .flat_map(move |f| {
            f.seqnos
                .iter()
                .filter(move |&&seqno| seqno <= snapshot)
                .map(|&seqno| RangeTombstone::new(f.start.clone(), f.end.clone(), seqno))
        })
}

/// `fragments` with every end bounded, for a table: a fragment without an end is cut just
/// past `max_key`, the largest user key the keyspace may hold (fragments wholly above it
/// go). No version a tombstone can delete lies above `max_key`: such a version was written
/// before the tombstone, so it is in a memtable or table of the keyspace when this runs,
/// and `max_key` bounds all of those. With no key at all, nothing is left to delete.
pub(crate) fn bounded(fragments: &Fragments, max_key: Option<&Bytes>) -> Fragments {
    if !matches!(fragments.end(), Some(None)) {
        return fragments.clone();
    }
    match max_key {
        Some(max_key) => fragments.clip(None, Some(&successor(max_key))),
        None => Fragments::default(),
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

    #[test]
    fn weigh_resolves_by_the_newest_of_version_and_range() {
        let value = || Lookup::Value(Bytes::from_static(b"v"));
        assert_eq!(weigh(Some((5, value())), None), Some(value()));
        assert_eq!(weigh(Some((5, value())), Some(4)), Some(value()));
        assert_eq!(weigh(Some((5, value())), Some(6)), Some(Lookup::Deleted));
        assert_eq!(weigh(None, Some(6)), Some(Lookup::Deleted));
        assert_eq!(weigh(None, None), None);
    }

    #[test]
    fn visible_within_takes_the_overlapping_fragments_at_the_snapshot() {
        let fragments =
            Fragments::new([t("b", Some("d"), 3), t("f", Some("h"), 9), t("x", None, 4)]);
        let got = |lower, upper, snapshot| -> Vec<(Bytes, SeqNo)> {
            visible_within(&fragments, lower, upper, snapshot)
                .map(|t| (t.start, t.seqno))
                .collect()
        };
        let key = |k: &'static str| Bytes::from_static(k.as_bytes());
        assert_eq!(
            got(Bound::Unbounded, Bound::Unbounded, 10),
            [(key("b"), 3), (key("f"), 9), (key("x"), 4)]
        );
        assert_eq!(
            got(Bound::Unbounded, Bound::Unbounded, 5),
            [(key("b"), 3), (key("x"), 4)]
        );
        assert_eq!(got(Bound::Included(b"d"), Bound::Excluded(b"f"), 10), []);
        assert_eq!(
            got(Bound::Included(b"c"), Bound::Included(b"f"), 10),
            [(key("b"), 3), (key("f"), 9)]
        );
        assert_eq!(
            got(Bound::Included(b"zz"), Bound::Unbounded, 10),
            [(key("x"), 4)]
        );
    }

    #[test]
    fn bounded_cuts_an_open_end_past_the_largest_key() {
        let fragments = Fragments::new([t("b", Some("d"), 3), t("m", None, 4)]);
        let cut = bounded(&fragments, Some(&Bytes::from_static(b"q")));
        assert_eq!(cut.end(), Some(Some(&Bytes::from_static(b"q\0"))));
        assert_eq!(cut.len(), 2);
        let below = bounded(&fragments, Some(&Bytes::from_static(b"c")));
        assert_eq!(below.len(), 1);
        assert!(bounded(&fragments, None).is_empty());
        let finite = Fragments::new([t("b", Some("d"), 3)]);
        assert_eq!(bounded(&finite, None), finite);
    }
}
