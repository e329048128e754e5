//! Commit validation: did anyone write, after a transaction's snapshot, a key the
//! transaction read or wrote, or a key inside a range it scanned?
//!
//! The commit leader validates under the log mutex, after every batch with a smaller
//! sequence number is in its memtable (it waits for that), so the writes since the
//! snapshot are exactly: the versions above the snapshot in the memtables of the state,
//! those in the flushed memtables the [`History`] kept, and the batches ahead of the
//! transaction in its own commit group, which are not inserted yet. Nothing else can come
//! between validation and the transaction's own sequence number, which the same leader
//! assigns next. Validation reads no table.
//!
//! Cost: a point costs one lookup per memtable; a scanned range walks the memtables'
//! entries within it (recent writes only) and their range tombstones; each batch ahead in
//! the group is walked once per transaction behind it.

use std::collections::BTreeSet;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use bytes::Bytes;
use floe_core::{MAX_SEQNO, SeqNo};
use floe_memtable::Memtable;

use crate::keyspace::KeyspaceId;
use crate::range_del::visible_within;
use crate::txn::history::History;
use crate::version::State;
use crate::version::as_slice_bound;
use crate::write::WriteBatch;
use crate::write::batch::{OpKind, half_open};

/// A user-key range as owned bounds.
pub(crate) type KeyRange = (Bound<Bytes>, Bound<Bytes>);

/// Everything a transaction read or wrote, by keyspace: what a write after its snapshot
/// must not touch.
#[derive(Debug, Default, Clone)]
pub(crate) struct Footprint {
    pub(crate) points: BTreeSet<(KeyspaceId, Bytes)>,
    pub(crate) ranges: Vec<(KeyspaceId, KeyRange)>,
}

impl Footprint {
    /// Whether `key` of `keyspace` is in the footprint.
    fn holds(&self, keyspace: KeyspaceId, key: &[u8]) -> bool {
        self.points
            .contains(&(keyspace, Bytes::copy_from_slice(key)))
            || self
                .ranges
                .iter()
                .any(|(id, range)| *id == keyspace && contains(range, key))
    }

    /// Whether some key of `[start, end)` (`end` `None`: unbounded) of `keyspace` is in
    /// the footprint.
    fn meets(&self, keyspace: KeyspaceId, start: &[u8], end: Option<&[u8]>) -> bool {
        let within = |key: &[u8]| start <= key && end.is_none_or(|end| key < end);
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        self.points
            .range((keyspace, Bytes::new())..)
            .take_while(|(id, _)| *id == keyspace)
            .any(|(_, key)| within(key))
            || self.ranges.iter().any(|(id, (lower, high))| {
                *id == keyspace
                    && ranges_meet(
                        (as_slice_bound(lower), as_slice_bound(high)),
                        (Bound::Included(start), upper),
                    )
            })
    }
}

fn contains(range: &KeyRange, key: &[u8]) -> bool {
    RangeBounds::<[u8]>::contains(&(as_slice_bound(&range.0), as_slice_bound(&range.1)), key)
}

/// Whether two ranges share a key, exactly: each is made half-open as a range deletion
/// is (over byte strings an excluded lower `k` is the included `k\0`, an included upper
/// `k` the excluded `k\0`), and two non-empty half-open ranges meet when each starts
/// below where the other ends.
fn ranges_meet(a: (Bound<&[u8]>, Bound<&[u8]>), b: (Bound<&[u8]>, Bound<&[u8]>)) -> bool {
    let (Some((a_lower, a_upper)), Some((b_lower, b_upper))) =
        (half_open::<[u8], _>(&a), half_open::<[u8], _>(&b))
    else {
        return false;
    };
    let below = |lower: &Bytes, upper: &Option<Bytes>| upper.as_ref().is_none_or(|u| lower < u);
    below(&a_lower, &b_upper) && below(&b_lower, &a_upper)
}

/// Why validation failed: what was written, for the error message.
pub(crate) type Conflict = String;

/// Checks `footprint`, taken at `snapshot`, against the writes since: the memtables of
/// `state` and those `history` kept, then the batches `ahead` of it in its group.
pub(crate) fn validate<'p>(
    state: &State,
    history: &History,
    snapshot: SeqNo,
    footprint: &Footprint,
    ahead: impl Iterator<Item = &'p WriteBatch>,
) -> Result<(), Conflict> {
    let mut keyspaces: Vec<KeyspaceId> = footprint
        .points
        .iter()
        .map(|(id, _)| *id)
        .chain(footprint.ranges.iter().map(|(id, _)| *id))
        .collect();
    keyspaces.sort_unstable();
    keyspaces.dedup();
    for id in keyspaces {
        let Some(tree) = state.tree(id) else {
            return Err(format!("keyspace {id} was dropped"));
        };
        let Some(flushed) = history.since(id, snapshot) else {
            return Err(
                "the transaction began before the oldest write commit validation still \
                 remembers (Options::transaction_history_bytes)"
                    .to_owned(),
            );
        };
        let memtables = tree.memtables().chain(flushed.iter());
        for mem in memtables {
            check_memtable(mem, id, snapshot, footprint)?;
        }
    }
    for batch in ahead {
        for (keyspace, kind, key, value) in batch.ops() {
            let hit = match kind {
                OpKind::Put | OpKind::Delete => footprint.holds(keyspace, key),
                OpKind::DeleteRange => footprint.meets(keyspace, key, Some(value)),
                OpKind::DeleteFrom => footprint.meets(keyspace, key, None),
            };
            if hit {
                return Err(format!(
                    "a write committed just before it touched {}",
                    describe(key)
                ));
            }
        }
    }
    Ok(())
}

/// Checks the footprint in `keyspace` against one memtable's writes above `snapshot`.
fn check_memtable(
    mem: &Arc<Memtable>,
    keyspace: KeyspaceId,
    snapshot: SeqNo,
    footprint: &Footprint,
) -> Result<(), Conflict> {
    let ranges = mem.range_tombstones();
    let points = footprint
        .points
        .range((keyspace, Bytes::new())..)
        .take_while(|(id, _)| *id == keyspace);
    for (_, key) in points {
        let written = mem
            .get_version(key, MAX_SEQNO)
            .is_some_and(|(seqno, _)| seqno > snapshot);
        let deleted = ranges
            .as_ref()
            .and_then(|r| r.max_covering(key, MAX_SEQNO))
            .is_some_and(|seqno| seqno > snapshot);
        if written || deleted {
            return Err(format!(
                "{} was written after the transaction began",
                describe(key)
            ));
        }
    }
    for (_, (lower, upper)) in footprint.ranges.iter().filter(|(id, _)| *id == keyspace) {
        let scanned = (as_slice_bound(lower), as_slice_bound(upper));
        if !ranges_meet(scanned, scanned) {
            // An empty or inverted range holds no key to conflict on.
            continue;
        }
        let newer = mem
            .entries(lower.clone(), upper.clone())
            .find(|(key, _)| key.seqno > snapshot);
        if let Some((key, _)) = newer {
            return Err(format!(
                "{} was written after the transaction began, inside a range it scanned",
                describe(&key.user_key)
            ));
        }
        // `visible_within` gathers loosely (an excluded lower bound as included); the
        // exact test of each tombstone against the scanned range follows.
        if let Some(ranges) = &ranges
            && visible_within(ranges, scanned.0, scanned.1, MAX_SEQNO).any(|t| {
                let end = t.end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
                t.seqno > snapshot && ranges_meet(scanned, (Bound::Included(&t.start), end))
            })
        {
            return Err(
                "a range deletion after the transaction began met a range it scanned".to_owned(),
            );
        }
    }
    Ok(())
}

/// A key for an error message: text if it is printable, hex otherwise.
fn describe(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(text) if text.chars().all(|c| !c.is_control()) => format!("key {text:?}"),
        _ => format!(
            "key 0x{}",
            key.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn ranges_meet_exactly_over_byte_strings() {
        use Bound::{Excluded, Included, Unbounded};
        let r = |a: Bound<&'static [u8]>, b: Bound<&'static [u8]>| (a, b);
        // (f, f\0) holds no key; [f, f] holds f.
        assert!(!ranges_meet(
            r(Excluded(b"f"), Excluded(b"f\0")),
            r(Unbounded, Unbounded)
        ));
        assert!(ranges_meet(
            r(Included(b"f"), Included(b"f")),
            r(Unbounded, Unbounded)
        ));
        // A scan after an excluded f and a deletion up to an included f share nothing.
        assert!(!ranges_meet(
            r(Excluded(b"f"), Unbounded),
            r(Included(b"b"), Included(b"f"))
        ));
        assert!(ranges_meet(
            r(Included(b"f"), Unbounded),
            r(Included(b"b"), Included(b"f"))
        ));
        assert!(!ranges_meet(
            r(Included(b"d"), Excluded(b"d")),
            r(Included(b"c"), Excluded(b"e"))
        ));
        assert!(!ranges_meet(
            r(Included(b"e"), Unbounded),
            r(Unbounded, Excluded(b"e"))
        ));
    }

    #[test]
    fn footprints_meet_points_and_ranges() {
        let mut footprint = Footprint::default();
        footprint.points.insert((1, b("k")));
        footprint
            .ranges
            .push((2, (Bound::Included(b("b")), Bound::Excluded(b("d")))));
        assert!(footprint.holds(1, b"k"));
        assert!(!footprint.holds(2, b"k"));
        assert!(footprint.holds(2, b"c"));
        assert!(!footprint.holds(2, b"d"));
        assert!(footprint.meets(1, b"a", Some(b"l")));
        assert!(!footprint.meets(1, b"a", Some(b"k")));
        assert!(footprint.meets(2, b"c\0", None));
        assert!(!footprint.meets(2, b"d", None));
        assert!(footprint.meets(2, b"", Some(b"b\0")));
        assert!(!footprint.meets(2, b"", Some(b"b")));
    }
}
