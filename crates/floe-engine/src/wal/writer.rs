//! [`LogWriter`]: appends records to a log file, each group in a single `write` call or,
//! for a log segment whose room could be allocated, in a single copy into a shared map of
//! the file.

use std::io;
use std::sync::Arc;

use floe_core::fs::{FileSyncer, MapMut, WritableFile};

use super::{BLOCK_SIZE, HEADER_SIZE, encode_record, encode_synced_marker};

/// Frame buffers above this size are released after use rather than kept for the next
/// append, so one huge batch does not pin its memory for the life of the segment.
const RETAINED_BUFFER: usize = 1 << 20;

/// Maps of a log segment grow by at least this much at a time once the first is full.
const MIN_GROWTH: u64 = 1 << 20;

/// A multiple of every memory page size (4 KiB to 64 KiB).
const MAX_PAGE: u64 = 64 << 10;

/// Appends records to one log file (a segment or a manifest).
///
/// Every [`append`](LogWriter::append) hands all its bytes to the operating system before
/// it returns, so nothing acknowledged waits in a user-space buffer: in one `write_all`,
/// or, for a segment created with [`LogWriter::segment`] on a file that can allocate its
/// room and be mapped, in one copy into a shared map of the file. A store into a shared
/// file map is in the page cache at once, exactly like a `write` call's bytes: a process
/// crash keeps it, a power loss keeps it once synced. The map saves the system call, which
/// is most of an unsynced append's cost. The room is allocated, not sparse, so that a full
/// disk fails `allocate` with an error instead of a store into the map killing the
/// process.
/// After a failed write or sync the writer refuses all further work: the file may hold a
/// partial record, and fsync is never retried on the same data, so the owner must poison
/// the database and leave recovery to the next open.
#[derive(Debug)]
pub(crate) struct LogWriter {
    file: Box<dyn WritableFile>,
    /// Bytes written so far; the position within the current block is `len % BLOCK_SIZE`.
    len: u64,
    /// How many of the first bytes are known durable: set by a successful sync, and by
    /// [`LogWriter::note_synced`] for a sync made through a [`FileSyncer`].
    synced: u64,
    /// The frame buffer, reused across appends.
    buf: Vec<u8>,
    /// Set by the first failed write or sync.
    failed: bool,
    /// The length the file was extended to when it was created (0 if it was not): the
    /// zero-filled room that appends fill before the file has to grow.
    reserved: u64,
    /// The shared maps appends copy into, in file order and contiguous from offset 0
    /// (each with its start offset); empty when appends go through `write_all`.
    maps: Vec<(u64, Box<dyn MapMut>)>,
    /// How far [`LogWriter::discard_written`] has unmapped the maps (the log's length then).
    discarded: u64,
    /// Set by [`LogWriter::trim`]: the log is closed to appends (a mapped writer's file
    /// position never moved, so a `write` after the maps are gone would land at offset 0).
    trimmed: bool,
    /// The largest durable length a marker in the log states (see the `wal` module docs):
    /// the next append begins with a new marker while `synced` is ahead of it.
    marked: u64,
}

impl LogWriter {
    /// A writer for a fresh, empty file.
    pub(crate) fn new(file: Box<dyn WritableFile>) -> LogWriter {
        LogWriter {
            file,
            len: 0,
            synced: 0,
            buf: Vec::new(),
            failed: false,
            reserved: 0,
            maps: Vec::new(),
            discarded: 0,
            trimmed: false,
            marked: 0,
        }
    }

    /// A writer for a fresh, empty log segment that first reserves `reserve` bytes of
    /// zero-filled room in the file (best effort: a file that cannot be extended is simply
    /// grown by its appends).
    ///
    /// Why: an `fdatasync` after an append that grows the file must also make the new
    /// size durable, a journal commit that costs as much again as the data write on ext4;
    /// inside the reserved room it writes the data alone. The zero tail this leaves in a
    /// segment ends its replay like a torn tail (see `read_log`), and
    /// [`LogWriter::trim`] gives the unused room back when the database closes.
    ///
    /// Where the file can allocate the room and map it, appends copy into the map instead
    /// (see the type's documentation); otherwise the room is made with `set_len`.
    pub(crate) fn segment(mut file: Box<dyn WritableFile>, reserve: u64) -> LogWriter {
        if reserve > 0
            && file.allocate(reserve).is_ok()
            && let Ok(len) = usize::try_from(reserve)
            && let Ok(Some(map)) = file.map_mut(0, len)
        {
            return LogWriter {
                reserved: reserve,
                maps: vec![(0, map)],
                ..LogWriter::new(file)
            };
        }
        let reserved = if reserve > 0 && file.set_len(reserve).is_ok() {
            reserve
        } else {
            0
        };
        LogWriter {
            reserved,
            ..LogWriter::new(file)
        }
    }

    /// Cuts the file back to the bytes written, dropping the unused reserved room, and
    /// closes the log to appends (syncs still work). The maps go first (a map must not
    /// outlive the bytes it covers); the bytes stored into them stay in the page cache and
    /// the next sync makes them durable as before.
    pub(crate) fn trim(&mut self) -> io::Result<()> {
        self.check_usable()?;
        self.trimmed = true;
        self.maps.clear();
        if self.reserved > self.len {
            self.file.set_len(self.len)?;
            self.reserved = self.len;
        }
        Ok(())
    }

    /// Whether appends copy into shared maps of the file.
    #[cfg(test)]
    pub(crate) fn is_mapped(&self) -> bool {
        !self.maps.is_empty()
    }

    /// Copies `bytes` into the maps at the end of the log, growing the allocated room
    /// and mapping it as needed.
    fn store(&mut self, bytes: &[u8]) -> io::Result<()> {
        let end = self.len + bytes.len() as u64;
        if end > self.reserved {
            // Grow by at least the first room (or 1 MiB), so growth is rare.
            let step = self.reserved.max(MIN_GROWTH);
            let grown = end.max(self.reserved.saturating_add(step));
            self.file.allocate(grown)?;
            let len = usize::try_from(grown - self.reserved)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "log map too large"))?;
            let map = self.file.map_mut(self.reserved, len)?.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    "the log file can no longer be mapped",
                )
            })?;
            self.maps.push((self.reserved, map));
            self.reserved = grown;
        }
        let mut at = self.len;
        let mut rest = bytes;
        // The maps are contiguous from offset 0, so the first one to end past `at` holds it.
        let first = self
            .maps
            .partition_point(|(start, map)| start + map.len() as u64 <= at);
        for (start, map) in &mut self.maps[first..] {
            if rest.is_empty() {
                break;
            }
            let offset = usize::try_from(at - *start).unwrap_or(usize::MAX);
            let n = rest.len().min(map.len().saturating_sub(offset));
            map.store(offset, &rest[..n]);
            rest = &rest[n..];
            at += n as u64;
        }
        debug_assert!(rest.is_empty(), "the maps cover the allocated room");
        Ok(())
    }

    fn check_usable(&self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(
                "the log refuses writes after an earlier write or sync failed",
            ));
        }
        Ok(())
    }

    /// Records that the first `through` bytes are durable, synced through a handle from
    /// [`LogWriter::syncer`] while this writer went on appending: the next append states
    /// it in a marker.
    pub(crate) fn note_synced(&mut self, through: u64) {
        self.synced = self.synced.max(through.min(self.len));
    }

    /// Appends a durable-offset marker stating the last completed sync, if no marker
    /// states it yet; the next sync makes the marker durable too. After a sync of the
    /// whole log, reading it after any crash then tells damage anywhere before the marker
    /// from a tolerated tail. For a segment that takes no more records (frozen, or at a
    /// clean close, where it costs one more sync than closing without it).
    pub(crate) fn seal(&mut self) -> io::Result<()> {
        if self.trimmed {
            return Ok(());
        }
        if self.marked < self.synced {
            self.append(std::iter::empty::<&[u8]>())?;
        }
        Ok(())
    }

    /// Appends each payload as one logical record, all of them in one `write_all`. The
    /// group starts with a durable-offset marker when a sync completed since the last one.
    pub(crate) fn append<P: AsRef<[u8]>>(
        &mut self,
        payloads: impl IntoIterator<Item = P>,
    ) -> io::Result<()> {
        self.check_usable()?;
        if self.trimmed {
            return Err(io::Error::other(
                "the log was trimmed at close and takes no appends",
            ));
        }
        let mut block_offset = (self.len % BLOCK_SIZE as u64) as usize;
        self.buf.clear();
        let marking = self.synced;
        if marking > self.marked {
            encode_synced_marker(&mut block_offset, marking, &mut self.buf);
        }
        for payload in payloads {
            let payload = payload.as_ref();
            // Room for the payload, a header per fragment and a block tail of padding, so
            // a large batch is copied once instead of through repeated reallocations.
            let fragments = payload.len() / (BLOCK_SIZE - HEADER_SIZE) + 1;
            self.buf
                .reserve(payload.len() + fragments * 2 * HEADER_SIZE);
            encode_record(&mut block_offset, payload, &mut self.buf);
        }
        let result = if self.maps.is_empty() {
            self.file.write_all(&self.buf)
        } else {
            let buf = std::mem::take(&mut self.buf);
            let stored = self.store(&buf);
            self.buf = buf;
            stored
        };
        let written = self.buf.len() as u64;
        if self.buf.capacity() > RETAINED_BUFFER {
            self.buf = Vec::new();
        }
        match result {
            Ok(()) => {
                self.len += written;
                self.marked = self.marked.max(marking);
                Ok(())
            }
            Err(err) => {
                self.failed = true;
                Err(err)
            }
        }
    }

    /// Makes everything appended so far durable (`fdatasync`).
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.check_usable()?;
        let result = self.file.sync_data();
        self.after_sync(&result);
        result
    }

    fn after_sync(&mut self, result: &io::Result<()>) {
        match result {
            Ok(()) => self.synced = self.len,
            Err(_) => self.failed = true,
        }
    }

    /// Makes everything appended so far and the file's metadata durable (`fsync`).
    pub(crate) fn sync_all(&mut self) -> io::Result<()> {
        self.check_usable()?;
        let result = self.file.sync_all();
        self.after_sync(&result);
        result
    }

    /// A handle that syncs this log's file from another thread without this writer (see
    /// [`FileSyncer`]); `None` where the file offers none, and the owner then syncs
    /// through [`LogWriter::sync`]. Each call may cost a descriptor, so take one per file.
    pub(crate) fn syncer(&self) -> io::Result<Option<Arc<dyn FileSyncer>>> {
        self.file.syncer()
    }

    /// Unmaps the memory pages of the maps that appends are done with, every whole page
    /// before the end of the log, so that a sync does not have to write-protect each of
    /// them (see [`MapMut::discard`]); their bytes stay in the page cache for it to write.
    /// For the background sync, before it syncs the file; appends never read back or
    /// store behind the end, so they do not map those pages again.
    pub(crate) fn discard_written(&mut self) {
        let end = self.len;
        if end <= self.discarded {
            return;
        }
        // From the start of the largest possible page that held the old end: that page,
        // partial then and so kept, may be whole now.
        let from = self.discarded - self.discarded % MAX_PAGE;
        for (start, map) in &mut self.maps {
            let map_end = *start + map.len() as u64;
            let (lo, hi) = (from.max(*start), end.min(map_end));
            if lo < hi {
                let offset = usize::try_from(lo - *start).unwrap_or(usize::MAX);
                let len = usize::try_from(hi - lo).unwrap_or(0);
                map.discard(offset, len);
            }
        }
        self.discarded = end;
    }

    /// The number of bytes written to the file.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// How many of the first bytes are known durable (at most [`LogWriter::len`]).
    pub(crate) fn synced(&self) -> u64 {
        self.synced
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;

    use super::*;
    use crate::wal::{HEADER_SIZE, encode_log, read_log};

    /// An in-memory file that records each `write` call and can be told to fail.
    #[derive(Debug, Clone, Default)]
    struct MemFile {
        data: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
        fail: Arc<Mutex<bool>>,
    }

    impl Write for MemFile {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if *self.fail.lock().unwrap() {
                return Err(io::Error::other("injected write failure"));
            }
            *self.writes.lock().unwrap() += 1;
            self.data.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl WritableFile for MemFile {
        fn sync_data(&mut self) -> io::Result<()> {
            if *self.fail.lock().unwrap() {
                return Err(io::Error::other("injected sync failure"));
            }
            Ok(())
        }

        fn sync_all(&mut self) -> io::Result<()> {
            self.sync_data()
        }
    }

    #[test]
    fn one_write_call_per_append_and_len_tracks_the_file() {
        let file = MemFile::default();
        let mut writer = LogWriter::new(Box::new(file.clone()));
        let big = vec![3u8; 3 * BLOCK_SIZE + 5];
        writer.append([&b"a"[..], &big, b""]).unwrap();
        assert_eq!(*file.writes.lock().unwrap(), 1);
        writer.append([b"second"]).unwrap();
        writer.sync().unwrap();
        writer.sync_all().unwrap();
        assert_eq!(*file.writes.lock().unwrap(), 2);
        let data = file.data.lock().unwrap().clone();
        assert_eq!(writer.len(), data.len() as u64);
        // Appending in groups produces exactly the bytes of encoding the records at once.
        assert_eq!(data, encode_log([&b"a"[..], &big, b"", b"second"]));
        let replay = read_log(Bytes::from(data), "000001.log").unwrap();
        assert_eq!(replay.torn_tail_at, None);
        assert_eq!(replay.records.len(), 4);
        assert_eq!(&replay.records[1][..], &big[..]);
    }

    #[test]
    fn block_tails_are_padded_and_a_full_header_slot_gets_an_empty_fragment() {
        // Leave exactly HEADER_SIZE + 2 bytes, then HEADER_SIZE, then 3 bytes in a block.
        for room in [HEADER_SIZE + 2, HEADER_SIZE, 3] {
            let filler = vec![9u8; BLOCK_SIZE - HEADER_SIZE - room];
            let records: [&[u8]; 3] = [&filler, b"next record", b"z"];
            let data = encode_log(records);
            let replay = read_log(Bytes::from(data.clone()), "x.log").unwrap();
            assert_eq!(replay.torn_tail_at, None, "room {room}");
            let got: Vec<&[u8]> = replay.records.iter().map(|r| &r[..]).collect();
            assert_eq!(got, records, "room {room}");
            if room < HEADER_SIZE {
                assert!(data[BLOCK_SIZE - room..BLOCK_SIZE].iter().all(|&b| b == 0));
            }
        }
    }

    #[test]
    fn synced_follows_syncs_and_notes_and_never_goes_back() {
        let file = MemFile::default();
        let mut writer = LogWriter::new(Box::new(file.clone()));
        writer.append([b"first"]).unwrap();
        let first = writer.len();
        assert_eq!(writer.synced(), 0);
        writer.append([b"second"]).unwrap();
        writer.note_synced(first);
        assert_eq!(writer.synced(), first);
        // A note of an older sync, arriving late, does not move it back.
        writer.note_synced(first - 1);
        assert_eq!(writer.synced(), first);
        writer.sync().unwrap();
        assert_eq!(writer.synced(), writer.len());
        writer.append([b"third"]).unwrap();
        writer.sync_all().unwrap();
        assert_eq!(writer.synced(), writer.len());
        writer.append([b"fourth"]).unwrap();
        *file.fail.lock().unwrap() = true;
        let before = writer.synced();
        assert!(writer.sync().is_err());
        assert_eq!(writer.synced(), before);
        // A file without a handle of its own offers no syncer.
        assert!(writer.syncer().unwrap().is_none());
    }

    #[test]
    fn a_failed_write_or_sync_disables_the_writer() {
        let file = MemFile::default();
        let mut writer = LogWriter::new(Box::new(file.clone()));
        writer.append([b"ok"]).unwrap();
        *file.fail.lock().unwrap() = true;
        assert!(writer.append([b"lost"]).is_err());
        *file.fail.lock().unwrap() = false;
        assert!(writer.append([b"after"]).is_err());
        assert!(writer.sync().is_err());

        let file = MemFile::default();
        let mut writer = LogWriter::new(Box::new(file.clone()));
        writer.append([b"ok"]).unwrap();
        *file.fail.lock().unwrap() = true;
        assert!(writer.sync().is_err());
        *file.fail.lock().unwrap() = false;
        // fsync is never retried on the same data.
        assert!(writer.sync().is_err());
        assert!(writer.append([b"after"]).is_err());
    }

    /// Appends to a mapped segment on the real file system, through the first map and
    /// across the maps it grows, read back exactly what a `write` path produces; `trim`
    /// gives back the room, and a reopened segment replays every record.
    #[test]
    fn a_mapped_segment_grows_and_reads_back_like_a_written_one() {
        use floe_core::fs::{FileSystem, StdFs};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000007.log");
        let reserve = 64 * 1024;
        let mut writer = LogWriter::segment(StdFs.create(&path).unwrap(), reserve);
        // Linux allocates and maps the room; elsewhere the same appends take the `write`
        // path, and everything below holds for it too.
        assert_eq!(writer.is_mapped(), cfg!(target_os = "linux"));
        assert_eq!(StdFs.file_size(&path).unwrap(), reserve);

        // Small records, then ones that straddle the first map's end, then one larger
        // than a whole growth step.
        let mut records: Vec<Vec<u8>> = (0..300u32)
            .map(|i| format!("record {i:05} {}", "x".repeat((i % 37) as usize)).into_bytes())
            .collect();
        records.extend((0..40u8).map(|i| vec![i; 3000]));
        records.push(vec![0xab; 3 << 20]);
        for (i, group) in records.chunks(7).enumerate() {
            writer.append(group).unwrap();
            // The background sync unmaps what appends are done with now and then; the
            // appends after it and the file's bytes are unaffected.
            if i % 5 == 0 {
                writer.discard_written();
            }
        }
        writer.sync().unwrap();
        assert!(writer.len() > reserve + MIN_GROWTH);
        let grown = StdFs.file_size(&path).unwrap();
        assert!(grown >= writer.len(), "{grown} < {}", writer.len());

        // The allocated tail is zeros, which replay reads as the end.
        let data = StdFs.read(&path).unwrap();
        let expected = encode_log(records.iter().map(Vec::as_slice));
        assert_eq!(&data[..expected.len()], &expected[..]);
        assert!(data[expected.len()..].iter().all(|&b| b == 0));

        writer.trim().unwrap();
        writer.sync().unwrap();
        assert_eq!(StdFs.file_size(&path).unwrap(), writer.len());
        assert!(writer.append([b"after close"]).is_err());
        drop(writer);
        let replay = read_log(Bytes::from(StdFs.read(&path).unwrap()), "000007.log").unwrap();
        assert_eq!(replay.torn_tail_at, None);
        assert_eq!(replay.records.len(), records.len());
        assert!(
            replay
                .records
                .iter()
                .zip(&records)
                .all(|(a, b)| a[..] == b[..])
        );
    }
}
