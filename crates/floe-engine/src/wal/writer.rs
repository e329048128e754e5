//! [`LogWriter`]: appends records to a log file, each group in a single `write` call.

use std::io;

use floe_core::fs::WritableFile;

use super::{BLOCK_SIZE, HEADER_SIZE, encode_record};

/// Frame buffers above this size are released after use rather than kept for the next
/// append, so one huge batch does not pin its memory for the life of the segment.
const RETAINED_BUFFER: usize = 1 << 20;

/// Appends records to one log file (a segment or a manifest).
///
/// Every [`append`](LogWriter::append) hands all its bytes to the operating system in one
/// `write_all` before it returns, so nothing acknowledged waits in a user-space buffer.
/// After a failed write or sync the writer refuses all further work: the file may hold a
/// partial record, and fsync is never retried on the same data, so the owner must poison
/// the database and leave recovery to the next open.
#[derive(Debug)]
pub(crate) struct LogWriter {
    file: Box<dyn WritableFile>,
    /// Bytes written so far; the position within the current block is `len % BLOCK_SIZE`.
    len: u64,
    /// The frame buffer, reused across appends.
    buf: Vec<u8>,
    /// Set by the first failed write or sync.
    failed: bool,
    /// The length the file was extended to when it was created (0 if it was not): the
    /// zero-filled room that appends fill before the file has to grow.
    reserved: u64,
}

impl LogWriter {
    /// A writer for a fresh, empty file.
    pub(crate) fn new(file: Box<dyn WritableFile>) -> LogWriter {
        LogWriter {
            file,
            len: 0,
            buf: Vec::new(),
            failed: false,
            reserved: 0,
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
    pub(crate) fn segment(mut file: Box<dyn WritableFile>, reserve: u64) -> LogWriter {
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

    /// Cuts the file back to the bytes written, dropping the unused reserved room.
    pub(crate) fn trim(&mut self) -> io::Result<()> {
        self.check_usable()?;
        if self.reserved > self.len {
            self.file.set_len(self.len)?;
            self.reserved = self.len;
        }
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

    /// Appends each payload as one logical record, all of them in one `write_all`.
    pub(crate) fn append<P: AsRef<[u8]>>(
        &mut self,
        payloads: impl IntoIterator<Item = P>,
    ) -> io::Result<()> {
        self.check_usable()?;
        let mut block_offset = (self.len % BLOCK_SIZE as u64) as usize;
        self.buf.clear();
        for payload in payloads {
            let payload = payload.as_ref();
            // Room for the payload, a header per fragment and a block tail of padding, so
            // a large batch is copied once instead of through repeated reallocations.
            let fragments = payload.len() / (BLOCK_SIZE - HEADER_SIZE) + 1;
            self.buf
                .reserve(payload.len() + fragments * 2 * HEADER_SIZE);
            encode_record(&mut block_offset, payload, &mut self.buf);
        }
        let result = self.file.write_all(&self.buf);
        let written = self.buf.len() as u64;
        if self.buf.capacity() > RETAINED_BUFFER {
            self.buf = Vec::new();
        }
        match result {
            Ok(()) => {
                self.len += written;
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
        self.failed |= result.is_err();
        result
    }

    /// Makes everything appended so far and the file's metadata durable (`fsync`).
    pub(crate) fn sync_all(&mut self) -> io::Result<()> {
        self.check_usable()?;
        let result = self.file.sync_all();
        self.failed |= result.is_err();
        result
    }

    /// The number of bytes written to the file.
    pub(crate) fn len(&self) -> u64 {
        self.len
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
}
