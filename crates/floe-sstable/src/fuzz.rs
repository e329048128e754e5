//! Entry points for the cargo-fuzz targets in `fuzz/`, compiled only with the `fuzz`
//! feature so that the block decoder stays private to everyone else.

use bytes::Bytes;

use crate::block::{Block, PointSeek, Target};
use crate::format::compare_encoded;

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
