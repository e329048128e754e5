//! Entry points for the cargo-fuzz targets in `fuzz/`, compiled only with the `fuzz`
//! feature so that the block decoder stays private to everyone else.

use bytes::Bytes;
use floe_core::MAX_SEQNO;
use floe_core::range_del::Fragments;

use crate::block::{Block, PointSeek, Target};
use crate::format::compare_encoded;
use crate::range_block;
use crate::table::Table;

/// Decodes `data` as the contents of a data block: walks every entry, then seeks to a few
/// keys taken from the input. Must never panic, whatever `data` holds.
pub fn block_decode(data: &[u8]) {
    let Ok(block) = Block::new(Bytes::copy_from_slice(data), 0, "data block") else {
        return;
    };
    let mut keys = Vec::new();
    let walked = block.for_each(|key, pos| {
        let value = block.value(pos);
        assert!(value.len() <= data.len());
        if keys.len() < 8 {
            keys.push(key.to_vec());
        }
        Ok(())
    });
    let mut key = Vec::new();
    for target in keys.iter().chain([&data[..data.len().min(8)].to_vec()]) {
        // The point seek must agree with the general seek whenever both succeed.
        let trailer = u64::from(target.len() as u8);
        let point = block.view().seek_point(&Target::new(target, trailer));
        let general = block.seek(&mut key, |k| compare_encoded(k, target, trailer).is_lt());
        if let (Ok(point), Ok(general)) = (point, general) {
            assert_eq!(
                matches!(point, PointSeek::Entry { pos, .. } if Some(pos) == general),
                general.is_some()
            );
        }
        let found = block.seek(&mut key, |k| k < &target[..]);
        if walked.is_ok()
            && let Ok(Some(_)) = found
        {
            assert!(key[..] >= target[..] || key.len() < 8);
        }
    }
}

/// Checks what an open table reports about its range tombstones, whatever bytes it was
/// opened from: a valid fragment list with finite ends, as many (fragment, seqno) pairs
/// as the meta counts, within the meta's key and sequence number ranges; then queries the
/// list at `probes`. Must never panic for a table that opened.
pub fn check_range_tombstones(table: &Table, probes: &[&[u8]]) {
    let tombstones = table.range_tombstones();
    let meta = table.meta();
    assert!(Fragments::from_fragments(tombstones.fragments().to_vec()).is_ok());
    assert_eq!(
        tombstones.tombstones().count() as u64,
        meta.range_tombstones
    );
    assert!(meta.entries > 0 || !tombstones.is_empty());
    if let Some((start, end)) = range_block::key_range(tombstones) {
        assert!(meta.smallest <= start && end <= meta.largest);
    } else {
        assert!(tombstones.is_empty());
    }
    if let Some((lo, hi)) = tombstones.seqno_range() {
        assert!(meta.min_seqno <= lo && hi <= meta.max_seqno);
    }
    for &key in probes {
        for snapshot in [0, meta.min_seqno, meta.max_seqno, MAX_SEQNO] {
            let covering = tombstones.max_covering(key, snapshot);
            assert!(covering.is_none_or(|seqno| seqno <= snapshot));
        }
    }
}
