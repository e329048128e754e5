//! Helpers for the iterator tests: sources built from vectors and readable key labels.

use bytes::Bytes;
use floe_core::{InternalKey, SeqNo, ValueKind};

use super::{BoxedSource, Entry};
use crate::{Error, Result};

/// A `Put` entry.
pub(super) fn entry(key: &str, seqno: SeqNo, value: &str) -> Entry {
    (
        InternalKey::new(
            Bytes::copy_from_slice(key.as_bytes()),
            seqno,
            ValueKind::Put,
        ),
        Bytes::copy_from_slice(value.as_bytes()),
    )
}

/// A tombstone entry.
pub(super) fn tombstone(key: &str, seqno: SeqNo) -> Entry {
    (
        InternalKey::new(
            Bytes::copy_from_slice(key.as_bytes()),
            seqno,
            ValueKind::Delete,
        ),
        Bytes::new(),
    )
}

/// A source over `entries`, which must already be in internal-key order.
pub(super) fn source(entries: Vec<Entry>) -> BoxedSource {
    assert!(
        entries.windows(2).all(|pair| pair[0].0 <= pair[1].0),
        "test source out of order"
    );
    Box::new(entries.into_iter().map(Ok))
}

/// A source over `entries` followed by a corruption error: forward it fails after the
/// entries, backward it fails at once.
pub(super) fn failing_source(entries: Vec<Entry>, message: &str) -> BoxedSource {
    let mut items: Vec<Result<Entry>> = entries.into_iter().map(Ok).collect();
    items.push(Err(Error::corruption(message)));
    Box::new(items.into_iter())
}

/// `key@seqno` labels (with a `-` suffix for tombstones) for compact assertions.
pub(super) fn keys_of(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|(key, _)| {
            let user_key = String::from_utf8_lossy(&key.user_key);
            match key.kind {
                ValueKind::Put => format!("{user_key}@{}", key.seqno),
                ValueKind::Delete => format!("{user_key}@{}-", key.seqno),
            }
        })
        .collect()
}
