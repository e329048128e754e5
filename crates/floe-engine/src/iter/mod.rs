//! The engine's iterators: merging sorted sources, reading them at a snapshot, and
//! dropping the versions that no reader can see during compaction.
//!
//! Every layer of the tree (memtables, tables of each level) is a *source*: a
//! double-ended stream of `(InternalKey, value)` entries in internal-key order (user key
//! ascending, sequence number descending). [`MergingIter`] merges the sources into one
//! such stream; [`VisibleIter`] turns it into the user's view at one snapshot;
//! [`CompactionIter`] turns it into the entries a compaction output must keep.

mod compaction;
mod merge;
mod visible;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod test_util;

use bytes::Bytes;
use floe_core::InternalKey;

use crate::Result;

pub(crate) use compaction::CompactionIter;
pub(crate) use merge::MergingIter;
pub(crate) use visible::VisibleIter;

/// One stored version: the internal key and its value (empty for a tombstone).
pub(crate) type Entry = (InternalKey, Bytes);

/// A source of entries in ascending internal-key order, readable from both ends.
///
/// An `Err` item means the source cannot go on (a damaged block, a failed read); the
/// iterators here pass it on once and then end.
pub(crate) type BoxedSource = Box<dyn DoubleEndedIterator<Item = Result<Entry>> + Send>;

/// The smallest key greater than every key that starts with `prefix`, or `None` when no
/// such key exists (the prefix is empty or all `0xff`, so the range is unbounded above).
///
/// Trailing `0xff` bytes cannot be incremented, so they are stripped first: every key
/// starting with `ab\xff` is below `ac`, and nothing shorter would do, since `ab\xff`
/// itself is not below `ab\xff`.
pub(crate) fn prefix_upper_bound(prefix: &[u8]) -> Option<Bytes> {
    let last = prefix.iter().rposition(|&byte| byte != 0xff)?;
    let mut bound = prefix[..=last].to_vec();
    bound[last] += 1;
    Some(Bytes::from(bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_upper_bound_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_upper_bound(b""), None);
        assert_eq!(prefix_upper_bound(b"\xff"), None);
        assert_eq!(prefix_upper_bound(b"\xff\xff\xff"), None);
        assert_eq!(prefix_upper_bound(b"a").as_deref(), Some(&b"b"[..]));
        assert_eq!(prefix_upper_bound(b"ab").as_deref(), Some(&b"ac"[..]));
        assert_eq!(prefix_upper_bound(b"a\xff").as_deref(), Some(&b"b"[..]));
        assert_eq!(
            prefix_upper_bound(b"\x00\xfe\xff\xff").as_deref(),
            Some(&b"\x00\xff"[..])
        );
        assert_eq!(
            prefix_upper_bound(b"\xff\x00").as_deref(),
            Some(&b"\xff\x01"[..])
        );
    }

    #[test]
    fn prefix_upper_bound_is_above_every_key_with_the_prefix_and_tight() {
        let prefixes: [&[u8]; 5] = [b"a", b"a\xff", b"\x00", b"k\xfe", b"\x01\xff\xff"];
        for prefix in prefixes {
            let bound = prefix_upper_bound(prefix).expect("bounded prefix");
            for suffix in [&b""[..], b"\x00", b"\xff", b"\xff\xff\xff\xff"] {
                let key = [prefix, suffix].concat();
                assert!(key.as_slice() < &bound[..], "{key:?} !< {bound:?}");
            }
            // The bound itself does not start with the prefix, so nothing between the
            // keys with the prefix and the bound is skipped by an exclusive upper bound.
            assert!(!bound.starts_with(prefix));
        }
    }
}
