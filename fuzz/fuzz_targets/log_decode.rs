//! Fuzzes the write-ahead log reader: `read_log` on arbitrary bytes must never panic, and
//! whatever records it recovers must re-encode, re-read and decode consistently.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    floe_engine::fuzz_api::log_decode(data);
});
