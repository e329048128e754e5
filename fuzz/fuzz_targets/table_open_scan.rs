//! Opens bytes as a table and reads everything it will give: scans from both ends,
//! bounded scans, point lookups, and the range tombstones. Under `cfg(fuzzing)` the reader
//! ignores checksum mismatches, so the fuzzer reaches the structural decoders behind them.
//!
//! The first input byte picks the mode. Even: the rest is the file, as is. Odd: the
//! first half of the rest describes entries and range tombstones, which are written into
//! a valid table by the real builder; the second half is a list of (offset, xor) edits
//! applied to that table before it is read. With no edits the reads must return exactly
//! the entries and tombstones written, so the fuzzer also checks the round trip.

#![no_main]

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::ops::Bound;

use bytes::Bytes;
use floe_core::fs::WritableFile;
use floe_core::range_del::{Fragments, RangeTombstone};
use floe_core::{InternalKey, MAX_SEQNO, ValueKind};
use floe_sstable::{Table, TableBuilder, TableOptions};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Default)]
struct MemFile(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for MemFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .extend_from_slice(buf);
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

/// Reads everything from the table in `file`; returns the forward scan, if it succeeded,
/// and the range tombstones.
fn read_everything(file: Bytes) -> Option<(Vec<(InternalKey, Bytes)>, Fragments)> {
    let table = Table::open(file).ok()?;
    let forward: Result<Vec<_>, _> = table
        .iter(Bound::Unbounded, Bound::Unbounded)
        .take(100_000)
        .collect();
    for entry in table
        .iter(Bound::Unbounded, Bound::Unbounded)
        .rev()
        .take(100_000)
    {
        if entry.is_err() {
            break;
        }
    }
    let keys: Vec<Bytes> = match &forward {
        Ok(entries) => entries
            .iter()
            .take(16)
            .map(|(key, _)| key.user_key.clone())
            .collect(),
        Err(_) => Vec::new(),
    };
    for key in &keys {
        let _ = table.get(key, MAX_SEQNO);
        let _ = table.get(key, 0);
        let mut both = table.iter(Bound::Excluded(&key[..]), Bound::Included(&key[..]));
        for _ in 0..4 {
            let _ = both.next();
            let _ = both.next_back();
        }
    }
    let _ = table.get(b"", MAX_SEQNO);
    let mut probes: Vec<&[u8]> = keys.iter().map(|key| &key[..]).collect();
    for fragment in table.range_tombstones().fragments().iter().take(16) {
        probes.push(&fragment.start);
        probes.extend(fragment.end.as_deref());
    }
    floe_sstable::fuzz::check_range_tombstones(&table, &probes);
    let tombstones = table.range_tombstones().clone();
    Some((forward.ok()?, tombstones))
}

fn built_table(data: &[u8]) {
    let (spec, edits) = data.split_at(data.len() / 2);
    let mut model = BTreeMap::new();
    let mut tombstones = Vec::new();
    for chunk in spec.chunks(4) {
        let [a, b, c, d] = [0, 1, 2, 3].map(|i| chunk.get(i).copied().unwrap_or(0));
        let key = vec![a % 4; usize::from(b % 6)];
        // A chunk with the top bit of its first byte set is a range tombstone over
        // `[key, key + one more byte)`, which is never empty.
        if a & 0x80 != 0 {
            let mut end = key.clone();
            end.push(d % 3);
            tombstones.push(RangeTombstone::new(
                key,
                Some(Bytes::from(end)),
                u64::from(c >> 1),
            ));
            continue;
        }
        let kind = if c & 1 == 0 {
            ValueKind::Put
        } else {
            ValueKind::Delete
        };
        let value = vec![d; usize::from(d % 40)];
        model.insert(
            InternalKey::new(key, u64::from(c >> 1), kind),
            Bytes::from(value),
        );
    }
    let tombstones = Fragments::new(tombstones);
    if model.is_empty() && tombstones.is_empty() {
        return;
    }
    let block_size = 64 + usize::from(data[0]) * 8;
    let file = MemFile::default();
    let bytes = file.0.clone();
    let mut builder = TableBuilder::new(
        Box::new(file),
        TableOptions::default().block_size(block_size),
    );
    builder
        .set_range_tombstones(tombstones.clone())
        .expect("finite fragments are accepted");
    for (key, value) in &model {
        builder
            .add(key, value)
            .expect("sorted entries are accepted");
    }
    builder
        .finish()
        .expect("a table with entries or tombstones finishes");
    let mut file = bytes.lock().map(|b| b.clone()).unwrap_or_default();
    let len = file.len().max(1);
    for edit in edits.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([edit[0], edit[1]]));
        if let Some(byte) = file.get_mut(at % len) {
            *byte ^= edit[2];
        }
    }
    let read = read_everything(Bytes::from(file));
    if edits.len() < 3 || edits.chunks_exact(3).all(|edit| edit[2] == 0) {
        let expected: Vec<_> = model.into_iter().collect();
        assert_eq!(
            read,
            Some((expected, tombstones)),
            "an undamaged table must read back exactly"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((&mode, rest)) if mode & 1 == 1 => built_table(rest),
        _ => {
            read_everything(Bytes::copy_from_slice(data));
        }
    }
});
