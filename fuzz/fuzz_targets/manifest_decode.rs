//! Fuzzes the manifest and batch decoders: `VersionEdit::decode` and `decode_batch` on
//! arbitrary bytes must never panic, and whatever decodes must round-trip.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    floe_engine::fuzz_api::manifest_decode(data);
});
