//! The file-system seam: every file operation of floe goes through [`FileSystem`].
//!
//! The real implementation, [`StdFs`], uses `std::fs` and `memmap2`. Tests replace it
//! with implementations that inject faults (failed writes, failed syncs, short reads) to
//! prove that the engine poisons itself instead of acknowledging writes it cannot keep.
//!
//! Architecture invariant: no floe crate calls `std::fs` for database files except
//! through this trait.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

/// A writable shared map of part of a file, as [`WritableFile::map_mut`] returns it: a
/// store into it is in the file's page cache at once, as a `write` call's bytes are, and
/// the file's sync methods make it durable.
pub trait MapMut: Send + Debug {
    /// The length of the mapped range, in bytes.
    fn len(&self) -> usize;
    /// Whether the mapped range is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies `bytes` into the map at `offset` (from the start of the map). The caller
    /// keeps `offset + bytes.len() <= self.len()`; bytes past the end are not stored.
    fn store(&mut self, offset: usize, bytes: &[u8]);
    /// Unmaps, from this process's page tables, the memory pages wholly within
    /// `offset..offset + len` of the map, as `madvise(MADV_DONTNEED)` does for a shared
    /// file map: their bytes stay in the file's page cache, dirty ones stay dirty for the
    /// next sync, and a later store into them maps them again. For a range the owner is
    /// done with: writing back a page that is still mapped first write-protects it, a
    /// TLB flush per page, which made a background `fdatasync` of a mapped log cost about
    /// 30 µs of system time per 4 KiB page on a 2-vCPU virtual machine, against about
    /// 4 µs once its pages were unmapped. Best effort; the default does nothing.
    fn discard(&mut self, offset: usize, len: usize) {
        let _ = (offset, len);
    }
}

/// A second handle on a [`WritableFile`] that makes its data durable while the owner of
/// the file keeps appending (the log's background sync). A sync covers every byte written
/// or stored before the call.
pub trait FileSyncer: Send + Sync + Debug {
    /// Makes the file's data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
}

/// The error every [`FileSystem`] gives for a path that is not a regular file (a FIFO, a
/// socket, a device or a directory where floe expects one of its files).
pub fn not_a_regular_file(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is not a regular file", path.display()),
    )
}

/// A file opened for writing: bytes written through [`Write`] reach the operating system
/// on each `write` call (implementations must not buffer in user space), and the sync
/// methods make them durable.
pub trait WritableFile: Write + Send + Debug {
    /// Makes the file's data durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Makes the file's data and metadata durable (`fsync`).
    fn sync_all(&mut self) -> io::Result<()>;
    /// Sets the file's length without moving the write position. A longer length adds a
    /// zero-filled tail (sparse where the file system allows); writes then land inside
    /// the file instead of growing it, so an `fdatasync` after them has no size change to
    /// make durable. Files that cannot do this say so with `ErrorKind::Unsupported`.
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let _ = len;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this file cannot change its length",
        ))
    }
    /// Allocates disk blocks for the first `len` bytes of the file, growing it with zeros
    /// if it is shorter, so that storing into those bytes through a map from
    /// [`WritableFile::map_mut`] cannot fail for want of space (which would kill the
    /// process with `SIGBUS` rather than return an error). Files that cannot do this say so
    /// with `ErrorKind::Unsupported`.
    fn allocate(&mut self, len: u64) -> io::Result<()> {
        let _ = len;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this file cannot allocate space ahead",
        ))
    }
    /// Maps `len` bytes of the file from `offset` for writing, shared with the file: a
    /// store into the map is in the operating system's page cache at once, as a `write`
    /// call's bytes are, and the sync methods make it durable. The range must lie within
    /// what [`WritableFile::allocate`] allocated, and the caller must drop the map before
    /// it shrinks the file. `None` where the file cannot be mapped; the caller then uses
    /// [`Write`].
    fn map_mut(&mut self, offset: u64, len: usize) -> io::Result<Option<Box<dyn MapMut>>> {
        let _ = (offset, len);
        Ok(None)
    }
    /// A handle that syncs this file's data from another thread (see [`FileSyncer`]);
    /// `None` where the file has none, and the owner then syncs through `sync_data`.
    fn syncer(&self) -> io::Result<Option<Arc<dyn FileSyncer>>> {
        Ok(None)
    }
}

/// A file opened for positional reads, as tables are read: each read copies bytes from
/// the file into memory the caller owns, so a device error or a file cut short under the
/// reader is an error returned from the read, never a signal as a fault on a mapping
/// would be.
pub trait RandomAccessFile: Send + Sync + Debug {
    /// The file's length in bytes when it was opened.
    fn len(&self) -> u64;
    /// Whether the file was empty when it was opened.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads exactly `len` bytes from `offset`. A read that reaches the end of the file
    /// first (the file was truncated, or the range lies past its end) fails with
    /// [`io::ErrorKind::UnexpectedEof`]; a failing device gives its own error.
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes>;
}

/// The error every [`RandomAccessFile`] gives for a read that runs past the end of its
/// file.
pub fn short_read(path: &Path, offset: u64, len: usize, file_len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "reading {len} bytes at byte {offset} of {}: the file ends at byte {file_len}",
            path.display()
        ),
    )
}

/// A [`RandomAccessFile`] over bytes already in memory: what [`FileSystem::open_read`]
/// returns by default (the whole file read at open), and what tests use.
#[derive(Debug, Clone)]
pub struct MemFile {
    bytes: Bytes,
    path: PathBuf,
}

impl MemFile {
    /// A file named `path` (for error messages) holding `bytes`.
    pub fn new(path: impl Into<PathBuf>, bytes: Bytes) -> MemFile {
        MemFile {
            bytes,
            path: path.into(),
        }
    }
}

impl RandomAccessFile for MemFile {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        let file_len = self.len();
        let end = offset
            .checked_add(len as u64)
            .filter(|&end| end <= file_len);
        match end {
            // Both fit in usize: they are at most the length of bytes in memory.
            Some(end) => Ok(self.bytes.slice(offset as usize..end as usize)),
            None => Err(short_read(&self.path, offset, len, file_len)),
        }
    }
}

/// A held lock on a directory; dropping it releases the lock.
pub trait DirLock: Send + Sync + Debug {}

/// The file operations floe needs. Paths are absolute or relative to the process's
/// current directory, exactly as for `std::fs`.
///
/// Only regular files are opened, read or mapped: any other kind of file at one of those
/// paths fails at once with [`not_a_regular_file`] (never blocks, as opening a FIFO
/// would).
pub trait FileSystem: Send + Sync + Debug + 'static {
    /// Creates `dir` and its parents if they do not exist.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates `path` for writing, truncating it if it exists.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing `path` for appending.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Reads the whole of `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Maps `path` read-only and returns its bytes.
    ///
    /// The caller promises what the mapping contract needs: the file was written, synced
    /// and renamed into place before this call, and nothing modifies or truncates it while
    /// any clone of the returned `Bytes` is alive.
    fn map(&self, path: &Path) -> io::Result<Bytes>;
    /// Opens `path` for positional reads (how tables are read). The default reads the
    /// whole file into memory at once; [`StdFs`] reads with `pread` on demand.
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        let bytes = Bytes::from(self.read(path)?);
        Ok(Arc::new(MemFile::new(path, bytes)))
    }
    /// The size of `path` in bytes.
    fn file_size(&self, path: &Path) -> io::Result<u64>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
    /// Renames `from` to `to`, replacing `to` atomically if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of `dir`.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Makes the entries of `dir` (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive advisory lock on `path` (creating the file if needed), failing
    /// at once with [`io::ErrorKind::WouldBlock`] if another holder has it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>>;
    /// Makes `to` a second name of the file `from` (a hard link). A file system that
    /// cannot (or `from` and `to` on different devices) fails, and the caller copies
    /// instead; the default always fails with [`io::ErrorKind::Unsupported`].
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let _ = (from, to);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
    /// Removes the empty directory `dir`; the default fails with
    /// [`io::ErrorKind::Unsupported`].
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        let _ = dir;
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// The real file system: `std::fs`, `memmap2` and `flock`.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

#[derive(Debug)]
struct StdFile(File);

impl Write for StdFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        // `File` has no user-space buffer: every `write` is already in the OS.
        Ok(())
    }
}

impl WritableFile for StdFile {
    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    #[cfg(target_os = "linux")]
    fn allocate(&mut self, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let len = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length too large"))?;
        // Mode 0 allocates the blocks and grows the file's size to cover them, so a map of
        // the range is within the file.
        // SAFETY: `fallocate` only reads its integer arguments; the descriptor is open for
        // as long as `self.0` lives.
        let result = unsafe { libc::fallocate(self.0.as_raw_fd(), 0, 0, len) };
        if result == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn map_mut(&mut self, offset: u64, len: usize) -> io::Result<Option<Box<dyn MapMut>>> {
        // SAFETY: the mmap contract: nothing else may truncate or rewrite the mapped range
        // while the map lives. The file is one floe created for writing and holds alone
        // (the directory lock keeps other floe processes out), its writer stores into the
        // map only bytes it has not written otherwise, and `allocate`'s caller drops every
        // map before shrinking the file.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(offset)
                .len(len)
                .map_mut(&self.0)?
        };
        // Page faults on the map then bring in single pages rather than read ahead into
        // large folios: the kernel charges a dirtied folio whole, so a log appended
        // through readahead-sized folios is counted as written with up to ~1 MiB of zeros
        // per segment, about 1% of an overwrite workload's write amplification. Best
        // effort: the map works either way.
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Random);
        Ok(Some(Box::new(StdMap(map))))
    }

    fn syncer(&self) -> io::Result<Option<Arc<dyn FileSyncer>>> {
        Ok(Some(Arc::new(StdSyncer(self.0.try_clone()?))))
    }
}

/// [`MapMut`] over a shared writable `mmap` of a [`StdFile`].
#[derive(Debug)]
struct StdMap(memmap2::MmapMut);

impl MapMut for StdMap {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn store(&mut self, offset: usize, bytes: &[u8]) {
        let end = offset.saturating_add(bytes.len()).min(self.0.len());
        if let (Some(dst), Some(src)) = (
            self.0.get_mut(offset..end),
            bytes.get(..end.saturating_sub(offset)),
        ) {
            dst.copy_from_slice(src);
        }
    }

    #[cfg(unix)]
    fn discard(&mut self, offset: usize, len: usize) {
        // SAFETY: `sysconf` only reads a configuration value.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(0);
        if page == 0 {
            return;
        }
        let base = self.0.as_ptr() as usize;
        let end = offset.saturating_add(len).min(self.0.len());
        // Whole pages only, by address: a partly covered page may still be stored into.
        let first = (base + offset).next_multiple_of(page) - base;
        let last = (base + end) / page * page;
        let Some(last) = last.checked_sub(base) else {
            return;
        };
        if last <= first {
            return;
        }
        // SAFETY: the map is a shared map of a file, for which MADV_DONTNEED only drops
        // the page-table entries: the contents stay in the page cache (a dirty entry
        // marks its page dirty first) and the next access faults the same bytes back in,
        // so what the map reads does not change. No reference into the map outlives the
        // call (`&mut self`), and the range lies within the map.
        let _ = unsafe {
            self.0
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, first, last - first)
        };
    }
}

/// [`FileSyncer`] over a duplicated descriptor of a [`StdFile`].
#[derive(Debug)]
struct StdSyncer(File);

impl FileSyncer for StdSyncer {
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// Opens `path` with `options`, refusing anything but a regular file without blocking: on
/// Unix the open is non-blocking (a FIFO would otherwise wait for a writer forever) and
/// the descriptor's own type is checked too, so no rename in between can fool it.
fn open_regular(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    // A write-only non-blocking open of a FIFO fails with ENXIO instead of naming the
    // problem, so a path that already is something else is refused by its type first.
    if let Ok(metadata) = std::fs::metadata(path)
        && !metadata.is_file()
    {
        return Err(not_a_regular_file(path));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_a_regular_file(path));
    }
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: `fcntl` with F_GETFL/F_SETFL only reads and sets the flags of a
        // descriptor that `file` keeps open for the duration of both calls.
        let cleared = unsafe {
            let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
            flags >= 0
                && libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
        };
        if !cleared {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(file)
}

/// [`RandomAccessFile`] over a descriptor of a [`StdFs`] file, read with `pread`.
#[derive(Debug)]
struct StdReadFile {
    file: File,
    len: u64,
    path: PathBuf,
}

impl RandomAccessFile for StdReadFile {
    fn len(&self) -> u64 {
        self.len
    }

    #[cfg(unix)]
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        match self.file.read_exact_at(&mut buf, offset) {
            Ok(()) => Ok(Bytes::from(buf)),
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                let now = self.file.metadata().map_or(self.len, |m| m.len());
                Err(short_read(&self.path, offset, len, now))
            }
            Err(err) => Err(err),
        }
    }

    #[cfg(not(unix))]
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        use std::io::{Read, Seek, SeekFrom};
        // Without `pread`, a seek and a read on a clone of the descriptor, under a lock so
        // that two readers do not move each other's position.
        static POSITION: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = POSITION
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut file = &self.file;
        file.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0u8; len];
        match file.read_exact(&mut buf) {
            Ok(()) => Ok(Bytes::from(buf)),
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                Err(short_read(&self.path, offset, len, self.len))
            }
            Err(err) => Err(err),
        }
    }
}

#[derive(Debug)]
struct StdLock {
    file: File,
    path: PathBuf,
}

impl DirLock for StdLock {}

impl Drop for StdLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock too; unlocking first makes the release
        // immediate even if another descriptor of the file is still open somewhere.
        if let Err(err) = self.file.unlock() {
            let _ = (err, &self.path);
        }
    }
}

impl FileSystem for StdFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        // Readable too: a shared writable map needs a descriptor open for both.
        let file = open_regular(
            path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true),
        )?;
        Ok(Box::new(StdFile(file)))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = open_regular(path, OpenOptions::new().append(true))?;
        Ok(Box::new(StdFile(file)))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let mut file = open_regular(path, OpenOptions::new().read(true))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        Ok(data)
    }

    fn map(&self, path: &Path) -> io::Result<Bytes> {
        let file = open_regular(path, OpenOptions::new().read(true))?;
        if file.metadata()?.len() == 0 {
            return Ok(Bytes::new());
        }
        // SAFETY: the mmap contract. A mapped file must not be modified or truncated while
        // the mapping lives, or reads through it are undefined behaviour. floe maps only
        // immutable files (tables), which are written, fsynced and renamed into place
        // before they are mapped, and which floe never opens for writing again; the
        // directory lock keeps other floe writers out (a read-only open, which takes no
        // lock, maps only tables a manifest lists, which no writer modifies either). A
        // file is deleted only after the last reader's state is dropped, and deleting an
        // open file does not change its mapped pages on Unix.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Bytes::from_owner(map))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        let file = open_regular(path, OpenOptions::new().read(true))?;
        let len = file.metadata()?.len();
        Ok(Arc::new(StdReadFile {
            file,
            len,
            path: path.to_path_buf(),
        }))
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        let metadata = std::fs::metadata(path)?;
        if !metadata.is_file() {
            return Err(not_a_regular_file(path));
        }
        Ok(metadata.len())
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::hard_link(from, to)
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::remove_dir(dir)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        let file = open_regular(
            path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(StdLock {
                file,
                path: path.to_path_buf(),
            })),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked by another open database", path.display()),
            )),
            Err(std::fs::TryLockError::Error(err)) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot run `mmap` of a file (memmap2) or `flock`")]
    fn write_map_rename_list_and_lock() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs;
        let tmp = dir.path().join("a.tmp");
        let mut file = fs.create(&tmp).unwrap();
        file.write_all(b"hello").unwrap();
        file.sync_all().unwrap();
        drop(file);
        let final_path = dir.path().join("a");
        fs.rename(&tmp, &final_path).unwrap();
        fs.sync_dir(dir.path()).unwrap();
        assert_eq!(&fs.map(&final_path).unwrap()[..], b"hello");
        assert_eq!(fs.file_size(&final_path).unwrap(), 5);
        let reader = fs.open_read(&final_path).unwrap();
        assert_eq!(reader.len(), 5);
        assert_eq!(&reader.read_at(1, 3).unwrap()[..], b"ell");
        assert_eq!(
            reader.read_at(3, 3).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        let mut append = fs.open_append(&final_path).unwrap();
        append.write_all(b"!").unwrap();
        drop(append);
        assert_eq!(fs.read(&final_path).unwrap(), b"hello!");
        assert_eq!(fs.list_dir(dir.path()).unwrap(), vec!["a".to_string()]);

        let empty = dir.path().join("empty");
        drop(fs.create(&empty).unwrap());
        assert!(fs.map(&empty).unwrap().is_empty());

        let lock_path = dir.path().join("LOCK");
        let held = fs.lock(&lock_path).unwrap();
        let second = fs.lock(&lock_path).unwrap_err();
        assert_eq!(second.kind(), io::ErrorKind::WouldBlock);
        drop(held);
        fs.lock(&lock_path).unwrap();
        fs.remove_file(&final_path).unwrap();
        assert!(!fs.exists(&final_path));
    }

    /// A file cut short under an open reader fails the reads past its new end with
    /// `UnexpectedEof`, and the ones before it still succeed.
    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot call pread")]
    fn a_truncated_file_fails_positional_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000007.sst");
        std::fs::write(&path, vec![7u8; 8192]).unwrap();
        let reader = StdFs.open_read(&path).unwrap();
        assert_eq!(reader.read_at(4096, 4096).unwrap().len(), 4096);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(5000)
            .unwrap();
        assert_eq!(reader.len(), 8192);
        assert_eq!(&reader.read_at(0, 4).unwrap()[..], &[7u8; 4]);
        let err = reader.read_at(4096, 4096).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("ends at byte 5000"), "{err}");
        let mem = MemFile::new("m", Bytes::from_static(b"abc"));
        assert_eq!(&mem.read_at(1, 2).unwrap()[..], b"bc");
        assert!(mem.read_at(2, 2).is_err());
        assert!(mem.read_at(u64::MAX, 2).is_err());
    }

    /// A FIFO named like a database file fails every open at once instead of blocking for
    /// a writer that never comes; so does a directory.
    #[test]
    #[cfg(unix)]
    #[cfg_attr(miri, ignore = "Miri cannot call mkfifo")]
    fn only_regular_files_are_opened() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("999999.log");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: `mkfifo` reads the NUL-terminated path, which outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let fs = StdFs;
        let is_refusal = |err: io::Error| {
            err.kind() == io::ErrorKind::InvalidInput
                && err.to_string().contains("not a regular file")
        };
        assert!(is_refusal(fs.read(&fifo).unwrap_err()));
        assert!(is_refusal(fs.map(&fifo).unwrap_err()));
        assert!(is_refusal(fs.open_read(&fifo).unwrap_err()));
        assert!(is_refusal(fs.open_append(&fifo).unwrap_err()));
        assert!(is_refusal(fs.file_size(&fifo).unwrap_err()));
        assert!(is_refusal(fs.create(&fifo).unwrap_err()));
        assert!(is_refusal(fs.read(dir.path()).unwrap_err()));
    }
}
