//! Decodes arbitrary bytes as the contents of a data block: walks every entry and seeks.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    floe_sstable::fuzz::block_decode(data);
});
