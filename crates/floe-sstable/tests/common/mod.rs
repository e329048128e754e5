//! Helpers shared by the integration tests: an in-memory file, a table built from a
//! model, and the reference answers a `BTreeMap` model gives.

#![allow(
    dead_code,
    reason = "each test binary includes this module and uses a different part of it"
)]

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use floe_core::fs::WritableFile;
use floe_core::range_del::{Fragments, RangeTombstone, inclusive_end};
use floe_core::{InternalKey, MAX_SEQNO, SeqNo, ValueKind};
use floe_sstable::{Table, TableBuilder, TableMeta, TableOptions};

/// The model of a table: every entry, in internal-key order.
pub(crate) type Model = BTreeMap<InternalKey, Bytes>;

/// A file in memory whose bytes the test keeps a handle to.
#[derive(Debug, Default, Clone)]
pub(crate) struct MemFile(pub(crate) Arc<Mutex<Vec<u8>>>);

impl Write for MemFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl WritableFile for MemFile {
    fn sync_data(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn sync_all(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Builds a table holding `model` and returns its bytes and meta.
pub(crate) fn build(model: &Model, options: TableOptions) -> (Bytes, TableMeta) {
    build_with(model, &Fragments::default(), options)
}

/// Builds a table holding `model` and the range tombstones `fragments` (set halfway
/// through the entries, to show that any time before `finish` will do) and returns its
/// bytes and meta.
pub(crate) fn build_with(
    model: &Model,
    fragments: &Fragments,
    options: TableOptions,
) -> (Bytes, TableMeta) {
    let file = MemFile::default();
    let mut builder = TableBuilder::new(Box::new(file.clone()), options);
    for (i, (key, value)) in model.iter().enumerate() {
        if i == model.len() / 2 {
            builder.set_range_tombstones(fragments.clone()).unwrap();
        }
        builder.add(key, value).unwrap();
    }
    if model.is_empty() {
        builder.set_range_tombstones(fragments.clone()).unwrap();
    }
    let meta = builder.finish().unwrap();
    let bytes = Bytes::from(file.0.lock().unwrap().clone());
    assert_eq!(meta.file_size, bytes.len() as u64);
    (bytes, meta)
}

/// What `Table::get(user_key, snapshot)` must answer for `model`.
pub(crate) fn model_get(
    model: &Model,
    user_key: &[u8],
    snapshot: SeqNo,
) -> Option<(ValueKind, Bytes)> {
    let from = InternalKey::new(Bytes::copy_from_slice(user_key), snapshot, ValueKind::Put);
    model
        .range(from..)
        .next()
        .filter(|(key, _)| key.user_key == user_key)
        .map(|(key, value)| (key.kind, value.clone()))
}

/// The entries of `model` whose user key lies within the bounds.
pub(crate) fn model_range(
    model: &Model,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> Vec<(InternalKey, Bytes)> {
    model
        .iter()
        .filter(|(key, _)| in_bounds(lower, upper, &key.user_key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// Whether `key` lies within the user-key bounds.
pub(crate) fn in_bounds(lower: Bound<&[u8]>, upper: Bound<&[u8]>, key: &[u8]) -> bool {
    let above_lower = match lower {
        Bound::Unbounded => true,
        Bound::Included(bound) => key >= bound,
        Bound::Excluded(bound) => key > bound,
    };
    let below_upper = match upper {
        Bound::Unbounded => true,
        Bound::Included(bound) => key <= bound,
        Bound::Excluded(bound) => key < bound,
    };
    above_lower && below_upper
}

/// Every entry of `table` in the bounds, forward.
pub(crate) fn scan(
    table: &Table,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> floe_sstable::Result<Vec<(InternalKey, Bytes)>> {
    table.iter(lower, upper).collect()
}

/// Every entry of `table` in the bounds, backward, returned in forward order.
pub(crate) fn scan_back(
    table: &Table,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> floe_sstable::Result<Vec<(InternalKey, Bytes)>> {
    let mut entries: Vec<_> = table
        .iter(lower, upper)
        .rev()
        .collect::<floe_sstable::Result<_>>()?;
    entries.reverse();
    Ok(entries)
}

/// Fragments of tombstones given as `(start, end, seqno)`.
pub(crate) fn fragments(tombstones: &[(&[u8], &[u8], SeqNo)]) -> Fragments {
    Fragments::new(tombstones.iter().map(|&(start, end, seqno)| {
        RangeTombstone::new(
            Bytes::copy_from_slice(start),
            Some(Bytes::copy_from_slice(end)),
            seqno,
        )
    }))
}

/// The meta a table of `model` and `fragments` must report, but for its file size.
pub(crate) fn expected_meta(model: &Model, fragments: &Fragments, file_size: u64) -> TableMeta {
    let tombstone_range =
        fragments
            .smallest()
            .zip(fragments.end().flatten())
            .map(|(start, end)| {
                (
                    InternalKey::new(start.clone(), MAX_SEQNO, ValueKind::Delete),
                    InternalKey::new(inclusive_end(end), 0, ValueKind::Delete),
                )
            });
    let point_range = model
        .keys()
        .next()
        .cloned()
        .zip(model.keys().next_back().cloned());
    let (smallest, largest) = match (point_range, tombstone_range) {
        (Some((a, b)), Some((c, d))) => (a.min(c), b.max(d)),
        (Some(range), None) | (None, Some(range)) => range,
        (None, None) => panic!("an empty table"),
    };
    let seqnos = model.keys().map(|k| k.seqno).chain(
        fragments
            .fragments()
            .iter()
            .flat_map(|f| f.seqnos.iter().copied()),
    );
    TableMeta {
        file_size,
        entries: model.len() as u64,
        smallest,
        largest,
        min_seqno: seqnos.clone().min().unwrap(),
        max_seqno: seqnos.max().unwrap(),
        range_tombstones: fragments.tombstones().count() as u64,
    }
}
