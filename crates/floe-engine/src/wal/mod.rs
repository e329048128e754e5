//! The write-ahead log: records framed in 32 KiB blocks, each fragment checksummed.
//!
//! The same framing carries two kinds of log: the log segments (`000123.log`), whose
//! records are [`WriteBatch`](crate::write::batch::WriteBatch) payloads, and the manifest, whose
//! records are version edits. `docs/format-log.md` draws the layout.
//!
//! A log is a sequence of 32 KiB blocks. A record is written as one or more fragments, each
//! a 7-byte header (crc32 u32 LE, payload length u16 LE, type u8) and the payload; a
//! fragment never crosses a block boundary. A record that fits in what is left of the
//! block is one `FULL` fragment; a longer one is split into `FIRST`, `MIDDLE`s and `LAST`.
//! When fewer than 7 bytes are left in a block they are zero padding and the next fragment
//! starts the next block. Because every block starts at a fragment boundary, a reader can
//! always tell where fragments may begin.
//!
//! **Durable-offset markers.** After a sync, the writer's next append begins with a
//! `SYNCED` fragment whose payload is the length the sync made durable. A power loss can
//! lose any unsynced page, an earlier one while a later one survives, so damage followed by
//! valid data is not by itself corruption; damage is corruption only where a checksum-valid
//! marker after it proves the damaged bytes had been made durable. That is how the reader
//! tells a tolerated tail (a power loss, a crash) from damage to durable data
//! (`docs/durability.md`, "What recovery tolerates").
//!
//! The checksum covers the type, the length and the payload, so a damaged length or type
//! cannot make the reader trust the wrong extent. Segments are never recycled (each is a
//! fresh file, created truncated), so no per-segment salt is mixed into the checksum: a
//! reader never meets stale fragments from an earlier life of the file.

mod reader;
mod writer;

pub(crate) use reader::{LogReplay, read_log, scan_log};
pub(crate) use writer::LogWriter;

/// The zero-filled room a new log segment reserves (see [`LogWriter::segment`]): about
/// what one memtable of `write_buffer_size` bytes logs, at least a block and at most
/// 64 MiB. A segment that outgrows it simply grows.
pub(crate) fn segment_reserve(write_buffer_size: usize) -> u64 {
    (write_buffer_size as u64).clamp(BLOCK_SIZE as u64, 64 << 20)
}

use floe_core::checksum::crc32;

/// The size of a log block: fragments never cross a multiple of it.
pub(crate) const BLOCK_SIZE: usize = 32 * 1024;

/// The size of a fragment header: crc32 (4), payload length (2), type (1).
pub(crate) const HEADER_SIZE: usize = 7;

/// The type of a fragment: where it sits in its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum FragmentType {
    /// The whole record.
    Full = 1,
    /// The first piece of a record that continues in later fragments.
    First = 2,
    /// A piece that neither starts nor ends its record.
    Middle = 3,
    /// The final piece of a record.
    Last = 4,
    /// A durable-offset marker, outside every record: its payload (u64 LE) is a length of
    /// the log that a completed sync had made durable before the marker was written.
    Synced = 5,
}

/// The payload length of a [`FragmentType::Synced`] marker.
const SYNCED_PAYLOAD: usize = 8;

impl FragmentType {
    fn from_u8(byte: u8) -> Option<FragmentType> {
        match byte {
            1 => Some(FragmentType::Full),
            2 => Some(FragmentType::First),
            3 => Some(FragmentType::Middle),
            4 => Some(FragmentType::Last),
            5 => Some(FragmentType::Synced),
            _ => None,
        }
    }
}

/// The checksum of one fragment: its type, its length (as stored, LE) and its payload.
fn fragment_crc(ty: u8, len: u16, payload: &[u8]) -> u32 {
    crc32(&[&[ty], &len.to_le_bytes(), payload])
}

/// Appends the fragments of one record to `out`, for a log whose current position within
/// its block is `*block_offset`, and advances `*block_offset`.
///
/// A record of any length, including zero, is encoded; the empty record is one empty
/// `FULL` fragment.
fn encode_record(block_offset: &mut usize, payload: &[u8], out: &mut Vec<u8>) {
    let mut rest = payload;
    let mut first = true;
    loop {
        let left = BLOCK_SIZE - *block_offset;
        if left < HEADER_SIZE {
            // Too little room for a header: pad the block with zeros and start the next.
            out.resize(out.len() + left, 0);
            *block_offset = 0;
            continue;
        }
        let take = rest.len().min(left - HEADER_SIZE);
        let last = take == rest.len();
        let ty = match (first, last) {
            (true, true) => FragmentType::Full,
            (true, false) => FragmentType::First,
            (false, false) => FragmentType::Middle,
            (false, true) => FragmentType::Last,
        };
        let (piece, tail) = rest.split_at(take);
        let len = u16::try_from(take).expect("a fragment is shorter than a 32 KiB block");
        out.extend_from_slice(&fragment_crc(ty as u8, len, piece).to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.push(ty as u8);
        out.extend_from_slice(piece);
        *block_offset += HEADER_SIZE + take;
        rest = tail;
        first = false;
        if last {
            return;
        }
    }
}

/// Appends a durable-offset marker saying that the first `durable` bytes of the log were
/// synced, for a log whose current position within its block is `*block_offset`, and
/// advances `*block_offset`. Like a record, a marker starts the next block when too little
/// of this one is left for it.
fn encode_synced_marker(block_offset: &mut usize, durable: u64, out: &mut Vec<u8>) {
    let left = BLOCK_SIZE - *block_offset;
    if left < HEADER_SIZE {
        out.resize(out.len() + left, 0);
        *block_offset = 0;
    } else if left < HEADER_SIZE + SYNCED_PAYLOAD {
        // Too little room for the marker but room for a header: the rest of the block is
        // a marker fragment too short to state a length, which readers step over (raw
        // zeros there would read as a damaged fragment).
        let filler = vec![0u8; left - HEADER_SIZE];
        let ty = FragmentType::Synced as u8;
        let len = u16::try_from(filler.len()).unwrap_or(0);
        out.extend_from_slice(&fragment_crc(ty, len, &filler).to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.push(ty);
        out.extend_from_slice(&filler);
        *block_offset = 0;
    }
    let payload = durable.to_le_bytes();
    let ty = FragmentType::Synced as u8;
    let len = SYNCED_PAYLOAD as u16;
    out.extend_from_slice(&fragment_crc(ty, len, &payload).to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.push(ty);
    out.extend_from_slice(&payload);
    *block_offset += HEADER_SIZE + SYNCED_PAYLOAD;
}

/// Encodes `records` as a complete log starting at offset zero: the bytes a [`LogWriter`]
/// would write for them. For tests and fuzzing.
#[cfg(any(test, fuzzing))]
pub(crate) fn encode_log<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut block_offset = 0;
    for record in records {
        encode_record(&mut block_offset, record, &mut out);
    }
    out
}

/// Encodes `records` as the bytes a [`LogWriter`] appends for them at offset `start` of a
/// log. For tests.
#[cfg(test)]
pub(crate) fn encode_log_at(start: usize, records: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut block_offset = start % BLOCK_SIZE;
    for record in records {
        encode_record(&mut block_offset, record, &mut out);
    }
    out
}

/// Encodes `records` as a log that was synced whole and then sealed: the records, then a
/// marker saying every byte before it is durable, which is what a cleanly closed log ends
/// with. For tests.
#[cfg(test)]
pub(crate) fn encode_sealed_log<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = encode_log(records);
    let mut block_offset = out.len() % BLOCK_SIZE;
    let durable = out.len() as u64;
    encode_synced_marker(&mut block_offset, durable, &mut out);
    out
}
