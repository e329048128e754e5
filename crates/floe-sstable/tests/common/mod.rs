//! Helpers shared by the integration tests: an in-memory file, a table built from a
//! model, and the reference answers a `BTreeMap` model gives.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use floe_core::fs::WritableFile;
use floe_core::{InternalKey, SeqNo, ValueKind};
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
    let file = MemFile::default();
    let mut builder = TableBuilder::new(Box::new(file.clone()), options);
    for (key, value) in model {
        builder.add(key, value).unwrap();
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
