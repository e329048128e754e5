//! Entry points for the fuzz targets of the log and manifest decoders.
//!
//! Compiled only under `cfg(fuzzing)` (set by `cargo fuzz`) and in unit tests, so the
//! decoders stay crate-private in every real build. Each function feeds arbitrary bytes to
//! a decoder and panics if an invariant the engine relies on is broken; a decoder that
//! panics by itself is of course a finding too.

use bytes::Bytes;

use crate::version::manifest::VersionEdit;
use crate::wal::{encode_log, read_log};
use crate::write::batch::{WriteBatch, decode_batch};

/// Reads `data` as a log. Whatever it recovers must be consistent: re-encoding the records
/// and reading them back gives the same records with no torn tail, reading only the bytes
/// before a reported torn tail gives the same records, and every record can be handed to
/// the batch and edit decoders without a panic.
pub fn log_decode(data: &[u8]) {
    let data = Bytes::copy_from_slice(data);
    let Ok(replay) = read_log(data.clone(), "fuzz.log") else {
        return;
    };
    let again = read_log(
        Bytes::from(encode_log(replay.records.iter().map(|r| &r[..]))),
        "again.log",
    )
    .expect("a re-encoded log reads back");
    assert_eq!(again.records, replay.records);
    assert_eq!(again.torn_tail_at, None);
    if let Some(at) = replay.torn_tail_at {
        let at = usize::try_from(at).expect("the torn tail lies within the data");
        assert!(at <= data.len());
        let prefix = read_log(data.slice(..at), "prefix.log").expect("the prefix reads back");
        assert_eq!(prefix.records, replay.records);
        assert_eq!(prefix.torn_tail_at, None);
    }
    for record in &replay.records {
        batch_decode(record);
        let _ = VersionEdit::decode(record);
    }
}

/// Decodes `data` as a version edit and as a batch payload; whatever decodes must
/// re-encode to bytes that decode to the same value.
pub fn manifest_decode(data: &[u8]) {
    if let Ok(edit) = VersionEdit::decode(data) {
        let encoded = edit.encode();
        assert_eq!(
            VersionEdit::decode(&encoded).expect("re-encoded edit"),
            edit
        );
    }
    batch_decode(&Bytes::copy_from_slice(data));
}

/// Decodes `payload` as a batch; a decoded batch must rebuild into the same operations.
fn batch_decode(payload: &Bytes) {
    let Ok((first, ops)) = decode_batch(payload) else {
        return;
    };
    let mut batch = WriteBatch::new();
    for op in &ops {
        batch.push_op(op.keyspace, op.kind, &op.key, &op.value);
    }
    batch.set_seqno(first);
    let (first_again, ops_again) = decode_batch(&batch.into_payload()).expect("rebuilt batch");
    assert_eq!((first_again, ops_again), (first, ops));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzz_entry_points_accept_valid_and_damaged_inputs() {
        let mut batch = WriteBatch::new();
        batch.put("k", "v");
        batch.delete("gone");
        batch.set_seqno(77);
        let edit = VersionEdit {
            log_number: Some(3),
            ..VersionEdit::default()
        };
        let log = encode_log([batch.payload(), &edit.encode()[..], b"junk"]);
        for cut in 0..=log.len() {
            log_decode(&log[..cut]);
        }
        let mut flipped = log.clone();
        flipped[20] ^= 4;
        log_decode(&flipped);
        manifest_decode(&edit.encode());
        manifest_decode(batch.payload());
        manifest_decode(&[]);
        manifest_decode(&[0xff; 40]);
    }
}
