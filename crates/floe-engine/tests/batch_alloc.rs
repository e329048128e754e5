//! A log record whose batch header claims four billion operations: opening the database
//! refuses it as corruption, and no allocation on the way is sized by the claimed count,
//! because the batch decoder walks the operations before it reserves room for them.
//!
//! A test binary of its own: its global allocator records the allocations of the whole
//! process, which no other test may disturb.

use floe_core::checksum::crc32;
use floe_engine::{Db, Error, Options};
use floe_testkit::LargestAlloc;

#[global_allocator]
static ALLOC: LargestAlloc = LargestAlloc::new();

/// The operation count the damaged header claims: the largest a header can hold.
const CLAIMED: u32 = u32::MAX;

/// A log holding one `FULL` fragment (`docs/format-log.md`) whose payload is a batch
/// header of first sequence number 0 and count [`CLAIMED`], followed by a single put of
/// the empty key to the empty value.
fn log_claiming_a_huge_count() -> Vec<u8> {
    let mut payload = vec![0, 0xff, 0xff, 0xff, 0xff, 0x0f];
    payload.extend_from_slice(&[1, 0, 0]);
    let full = 1u8;
    let len = u16::try_from(payload.len()).expect("a short payload");
    let mut log = crc32(&[&[full], &len.to_le_bytes(), &payload])
        .to_le_bytes()
        .to_vec();
    log.extend_from_slice(&len.to_le_bytes());
    log.push(full);
    log.extend_from_slice(&payload);
    log
}

#[test]
fn a_huge_count_does_not_allocate_or_panic() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = || Options::default().write_buffer_size(64 << 10);
    Db::open_with(dir.path(), options())
        .expect("a fresh database")
        .close()
        .expect("a clean close");
    let logs: Vec<_> = std::fs::read_dir(dir.path())
        .expect("the database directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    let [log] = &logs[..] else {
        panic!("a closed database keeps exactly one log segment, found {logs:?}");
    };
    std::fs::write(log, log_claiming_a_huge_count()).expect("the damaged segment");

    let (opened, largest) = ALLOC.measure(|| Db::open_with(dir.path(), options()));
    let Err(err) = opened else {
        panic!("opened a log whose batch claims more operations than it holds");
    };
    assert!(matches!(err, Error::Corruption { .. }), "{err}");
    // Room for the claimed operations would take at least a byte apiece.
    assert!(
        largest < CLAIMED as usize,
        "opening allocated {largest} bytes at once for a log of a few bytes"
    );
}
