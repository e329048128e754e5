//! [`SimFs`]: an in-memory simulated disk behind the [`FileSystem`] seam, with power-loss
//! images and injected faults, for deterministic simulation tests.
//!
//! A harness runs the engine on a `SimFs`, takes [`SimFs::crash`] images of it at chosen
//! moments, reopens the engine on each image and checks what it recovers against an
//! oracle; error sweeps fail one call at a time ([`SimFs::fail_call`]) or arm faults by
//! kind ([`SimFs::fail_nth`]). Nothing touches the real disk, and every choice is a
//! function of the seed given to `crash` and of the order of the calls: no clock, no
//! thread-local randomness, no hash-map iteration order. (The seed drives `rand`'s
//! `SmallRng`, so an image is reproducible on the same platform and `rand` version.)
//!
//! # The model
//!
//! **Files** are inodes, separate from the names that lead to them. Each has its current
//! contents (the page cache: what `read`, `map` and `file_size` see), its durable contents
//! and length (what survives a power loss for certain) and the set of 4 KiB pages dirtied
//! since its last sync. A `write` (at the handle's position for a handle from `create`, at
//! the end for one from `open_append`; always whole, never short), `set_len`, `allocate`
//! (which grows the file with zeros, as `fallocate` mode 0 does, and never shrinks it) and
//! a store into a map from `map_mut` each change the current contents and mark the pages
//! they touch dirty; growing marks every page of the new range. `sync_data`, `sync_all`
//! and a syncer's `sync_data` all make the current contents and length durable (the
//! simulator has no metadata that `fdatasync` would leave behind). `map_mut` needs its
//! range within the current length and hands out a map whose stores go into the
//! simulator's file; a store past the current length (the file was cut under the map,
//! which the trait forbids) is dropped. `create` truncates an existing file in place (the
//! same inode); files hold at most 1 GiB, and longer ones fail with `FileTooLarge`.
//!
//! **Directories** hold durable entries (name → inode) and an ordered list of pending
//! operations: a creation, a rename (replacing its target) and a removal. The running
//! system sees the current namespace (the durable entries with every pending operation
//! applied); `sync_dir` makes that directory's pending operations durable. A rename
//! between two directories is two operations, a removal in the source and a link in the
//! target, which a crash keeps or loses independently (so an image may show the file
//! under both names or neither). A removed file that is still open stays readable and
//! writable through its handles, maps and syncers (Unix semantics) and vanishes when the
//! last one is dropped. `create_dir_all` creates directories durably at once, and
//! directories are never removed. Paths are normalised lexically: relative paths start at
//! the root, `.` is dropped and `..` goes up (there are no symbolic links).
//!
//! **Locks** are exclusive per normalised path within one `SimFs` and its clones; a second
//! [`FileSystem::lock`] fails with [`io::ErrorKind::WouldBlock`] until the first
//! [`DirLock`] is dropped. `lock` creates the file (a pending creation) if needed.
//!
//! **A crash** ([`SimFs::crash`]) returns a new file system with the power-loss image and
//! leaves `self` unchanged, so one state can yield many images. For each directory, each
//! pending operation is kept or lost (all kept, all lost, or each by a coin), and the kept
//! ones are applied in order to the durable entries, each skipped where it no longer
//! applies (a rename whose source is not there, a creation whose name is taken). For each
//! file still named: its length is chosen between the durable and the current length
//! when they differ; its dirty pages reach the disk by a mode chosen per file (none; all;
//! an in-order prefix of the dirty sectors cut at a 512-byte or, for a disk with 4 KiB
//! sectors, a 4 KiB boundary; or a random subset of the pages, so a later page can survive
//! an earlier one, with each kept page possibly torn after a prefix of its 512-byte
//! sectors). A byte of a persisted sector is the current one; every other byte is the
//! durable one, or zero past the durable length; nothing lies past the chosen length.
//! Inodes no name leads to vanish. The image holds no lock and no open handle, and its
//! fault counters start from zero.
//!
//! **Faults** ([`SimOp`] kinds) return real OS errors ([`SimError`]: `EIO`, `ENOSPC`). A
//! failed write, `set_len`, `allocate` or `map_mut` changes nothing; a failed sync leaves
//! the data unsynced (a crash may or may not keep it); a failed namespace operation
//! changes no entry.
//!
//! # What a real file system may do that this one does not
//!
//! - Short writes, and a failed write that leaves part of its bytes behind.
//! - After a failed `fsync`, Linux may mark the dirty pages clean, so a later sync
//!   succeeds without writing them and a crash loses them.
//! - Sectors of a page reaching the disk out of order (a tear here keeps a prefix of the
//!   page's sectors), bit rot and misdirected writes (only [`SimFs::corrupt`] damages
//!   data), and reads that fail without an armed fault.
//! - Journaling orders: ext4's `data=ordered` never shows a grown size over unwritten
//!   blocks, and it commits namespace operations in order; here every subset is possible,
//!   which covers those orders and more.
//! - A directory's own creation being lost (it is durable at once), hard links, symbolic
//!   links, permissions, and a full disk that is not an armed fault.
//! - A crash in the middle of a call: every call runs under one lock, so an image is of
//!   the state between two calls (a multi-page `write` can still be torn, since its pages
//!   are persisted independently).

mod crash;
mod fault;
mod state;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

pub use fault::{SimError, SimOp};
use state::{Entry, Ino, State, file_len, normalize};

use crate::fs::{
    DirLock, FileSyncer, FileSystem, MapMut, RandomAccessFile, WritableFile, short_read,
};

/// An in-memory simulated disk (see the [module documentation](self) for the model).
/// Clones share the same disk; [`SimFs::crash`] makes a new one.
#[derive(Clone, Default)]
pub struct SimFs {
    shared: Arc<Mutex<State>>,
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("SimFs")
            .field("dirs", &state.dirs.len())
            .field("files", &state.inodes.len())
            .field("calls", &state.faults.calls())
            .field("injected", &state.faults.injected())
            .finish_non_exhaustive()
    }
}

fn lock_state(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    // Every update under the lock completes without panicking, so a lock poisoned by a
    // panicking test thread still guards a consistent state.
    shared.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl SimFs {
    /// An empty disk holding only the root directory, with no fault armed.
    #[must_use]
    pub fn new() -> SimFs {
        SimFs::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock_state(&self.shared)
    }

    /// A new file system holding a power-loss image of this one chosen by `seed` (the
    /// same seed gives the same image of the same state); `self` is unchanged.
    #[must_use]
    pub fn crash(&self, seed: u64) -> SimFs {
        let image = crash::image(&self.state(), seed);
        SimFs {
            shared: Arc::new(Mutex::new(image)),
        }
    }

    /// Fails the `nth` call of `kind` from now (0 = the next) whose path contains
    /// `path_contains` (every path when `None`) with `code`; once, or, if `persistent`,
    /// on that call and every matching one after it.
    pub fn fail_nth(
        &self,
        kind: SimOp,
        nth: u64,
        path_contains: Option<&str>,
        code: SimError,
        persistent: bool,
    ) {
        self.state()
            .faults
            .arm(kind, nth, path_contains, code, persistent);
    }

    /// Disarms every fault armed by [`SimFs::fail_nth`] and [`SimFs::fail_call`]; the
    /// counters are kept.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// The number of calls of the [`SimOp`] kinds so far (since [`SimFs::new`] or the
    /// last [`SimFs::reset_call_count`]), failed or not: the index the next one takes.
    #[must_use]
    pub fn call_count(&self) -> u64 {
        self.state().faults.calls()
    }

    /// Numbers the calls from zero again; armed faults stay armed.
    pub fn reset_call_count(&self) {
        self.state().faults.reset_calls();
    }

    /// Fails exactly the call that takes global index `index` (see
    /// [`SimFs::call_count`]) with `code`, whatever its kind and path.
    pub fn fail_call(&self, index: u64, code: SimError) {
        self.state().faults.arm_call(index, code);
    }

    /// The number of calls of `kind` so far, failed or not (not reset by
    /// [`SimFs::reset_call_count`]).
    #[must_use]
    pub fn call_count_of(&self, kind: SimOp) -> u64 {
        self.state().faults.count(kind)
    }

    /// The number of faults fired so far.
    #[must_use]
    pub fn injected(&self) -> u64 {
        self.state().faults.injected()
    }

    /// Flips the bits of `xor` in the byte at `offset` of the file `path`, in both its
    /// current and its durable contents (where each has the byte), as damage on the disk
    /// would. Fails if the file does not exist or neither holds the byte.
    pub fn corrupt(&self, path: &Path, offset: u64, xor: u8) -> io::Result<()> {
        let mut state = self.state();
        let ino = state.lookup_path(path)?;
        let inode = state.inode_mut(ino)?;
        let at = usize::try_from(offset).unwrap_or(usize::MAX);
        if at >= inode.current.len() && at >= inode.durable.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} has no byte at offset {offset}", path.display()),
            ));
        }
        // The current bytes go first: if both share one buffer, that copies it, and the
        // durable bytes are then flipped on their own.
        for data in [&mut inode.current, &mut inode.durable] {
            if at < data.len() {
                Arc::make_mut(data)[at] ^= xor;
            }
        }
        Ok(())
    }

    /// The current length of the file `path` (what `file_size` gives, without counting a
    /// call).
    pub fn len(&self, path: &Path) -> io::Result<u64> {
        let state = self.state();
        let ino = state.lookup_path(path)?;
        Ok(state.inode(ino)?.current.len() as u64)
    }

    /// The durable length of the file `path`: the length a crash keeps for certain.
    pub fn durable_len(&self, path: &Path) -> io::Result<u64> {
        let state = self.state();
        let ino = state.lookup_path(path)?;
        Ok(state.inode(ino)?.durable.len() as u64)
    }

    /// The durable contents of the file `path` (what a crash keeps for certain, if its
    /// name survives).
    pub fn durable_contents(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.state();
        let ino = state.lookup_path(path)?;
        Ok(state.inode(ino)?.durable.to_vec())
    }

    /// The names of the files (not subdirectories) in `dir`, sorted.
    pub fn file_names(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.state().list(dir, true)
    }

    /// Whether `dir` has pending operations that a crash may lose.
    pub fn has_pending_entries(&self, dir: &Path) -> bool {
        self.state()
            .dirs
            .get(&normalize(dir))
            .is_some_and(|dir| !dir.pending.is_empty())
    }

    fn handle(&self, state: &mut State, ino: Ino, path: PathBuf) -> io::Result<Handle> {
        state.inode_mut(ino)?.handles += 1;
        Ok(Handle {
            shared: Arc::clone(&self.shared),
            ino,
            path,
        })
    }
}

/// A reference to an inode from a file handle, a map or a syncer: it keeps the inode
/// alive after its last name is removed, and carries the path it was opened by (for the
/// path filters of faults).
#[derive(Debug)]
struct Handle {
    shared: Arc<Mutex<State>>,
    ino: Ino,
    path: PathBuf,
}

impl Handle {
    fn state(&self) -> MutexGuard<'_, State> {
        lock_state(&self.shared)
    }

    fn another(&self, state: &mut State) -> io::Result<Handle> {
        state.inode_mut(self.ino)?.handles += 1;
        Ok(Handle {
            shared: Arc::clone(&self.shared),
            ino: self.ino,
            path: self.path.clone(),
        })
    }

    fn sync(&self) -> io::Result<()> {
        let mut state = self.state();
        state.faults.check(SimOp::Sync, &[&self.path])?;
        state.inode_mut(self.ino)?.sync();
        Ok(())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut state = self.state();
        if let Some(inode) = state.inodes.get_mut(&self.ino) {
            inode.handles = inode.handles.saturating_sub(1);
        }
        state.collect(self.ino);
    }
}

/// A file opened through [`SimFs`].
#[derive(Debug)]
struct SimFile {
    handle: Handle,
    /// Where the next write lands, unless `append`.
    pos: u64,
    /// Whether every write lands at the end (a handle from `open_append`).
    append: bool,
}

impl Write for SimFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.handle.state();
        state.faults.check(SimOp::Write, &[&self.handle.path])?;
        let inode = state.inode_mut(self.handle.ino)?;
        let at = if self.append {
            inode.current.len() as u64
        } else {
            self.pos
        };
        inode.write_at(at, buf)?;
        self.pos = at + buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Every `write` is already in the simulated page cache.
        Ok(())
    }
}

impl WritableFile for SimFile {
    fn sync_data(&mut self) -> io::Result<()> {
        self.handle.sync()
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.handle.sync()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut state = self.handle.state();
        state.faults.check(SimOp::Write, &[&self.handle.path])?;
        state.inode_mut(self.handle.ino)?.set_len(len)
    }

    fn allocate(&mut self, len: u64) -> io::Result<()> {
        let mut state = self.handle.state();
        state.faults.check(SimOp::Allocate, &[&self.handle.path])?;
        let inode = state.inode_mut(self.handle.ino)?;
        if len > inode.current.len() as u64 {
            inode.set_len(len)?;
        }
        Ok(())
    }

    fn map_mut(&mut self, offset: u64, len: usize) -> io::Result<Option<Box<dyn MapMut>>> {
        let mut state = self.handle.state();
        state.faults.check(SimOp::Allocate, &[&self.handle.path])?;
        let current = state.inode(self.handle.ino)?.current.len() as u64;
        let end = offset.checked_add(len as u64);
        if len == 0 || end.is_none_or(|end| end > current) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot map {len} bytes at {offset} of {}, which holds {current}",
                    self.handle.path.display()
                ),
            ));
        }
        let start = file_len(offset)?;
        let handle = self.handle.another(&mut state)?;
        Ok(Some(Box::new(SimMap { handle, start, len })))
    }

    fn syncer(&self) -> io::Result<Option<Arc<dyn FileSyncer>>> {
        let mut state = self.handle.state();
        let handle = self.handle.another(&mut state)?;
        Ok(Some(Arc::new(SimSyncer { handle })))
    }
}

/// A writable map of part of a [`SimFile`]: stores go into the simulated page cache.
#[derive(Debug)]
struct SimMap {
    handle: Handle,
    /// The file offset of the map's first byte.
    start: usize,
    len: usize,
}

impl MapMut for SimMap {
    fn len(&self) -> usize {
        self.len
    }

    fn store(&mut self, offset: usize, bytes: &[u8]) {
        let end = offset.saturating_add(bytes.len()).min(self.len);
        let Some(bytes) = bytes.get(..end.saturating_sub(offset)) else {
            return;
        };
        let mut state = self.handle.state();
        if let Ok(inode) = state.inode_mut(self.handle.ino) {
            inode.store(self.start.saturating_add(offset), bytes);
        }
    }
}

/// The syncer of a [`SimFile`].
#[derive(Debug)]
struct SimSyncer {
    handle: Handle,
}

impl FileSyncer for SimSyncer {
    fn sync_data(&self) -> io::Result<()> {
        self.handle.sync()
    }
}

/// A held lock on one path of a [`SimFs`].
#[derive(Debug)]
struct SimLock {
    shared: Arc<Mutex<State>>,
    path: PathBuf,
}

impl DirLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        lock_state(&self.shared).locks.remove(&self.path);
    }
}

/// The bytes of a file as `map` hands them out: a shared snapshot of its current
/// contents, which later writes to the file copy away from.
struct Snapshot(Arc<Vec<u8>>);

impl AsRef<[u8]> for Snapshot {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A file of a [`SimFs`] opened for positional reads: each read takes a `Read` call of the
/// fault rules, and sees the file's current contents (a read past a truncated end fails
/// with `UnexpectedEof`).
#[derive(Debug)]
struct SimReadFile {
    handle: Handle,
    len: u64,
}

impl RandomAccessFile for SimReadFile {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        let mut state = self.handle.state();
        state.faults.check(SimOp::Read, &[&self.handle.path])?;
        let current = &state.inode(self.handle.ino)?.current;
        let file_len = current.len() as u64;
        let Some(end) = offset
            .checked_add(len as u64)
            .filter(|&end| end <= file_len)
        else {
            return Err(short_read(&self.handle.path, offset, len, file_len));
        };
        // Both fit in usize: they are at most the length of bytes in memory. Later writes
        // to the file copy its contents away from the snapshot, so the slice never changes.
        let snapshot = Bytes::from_owner(Snapshot(Arc::clone(current)));
        Ok(snapshot.slice(offset as usize..end as usize))
    }
}

impl FileSystem for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.state().create_dir_all(dir)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let path = normalize(path);
        let mut state = self.state();
        state.faults.check(SimOp::Create, &[&path])?;
        let entry = Entry::new(&path)?;
        let ino = state.open_or_create(&entry, true)?;
        let handle = self.handle(&mut state, ino, entry.path)?;
        Ok(Box::new(SimFile {
            handle,
            pos: 0,
            append: false,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let path = normalize(path);
        let mut state = self.state();
        state.faults.check(SimOp::Create, &[&path])?;
        let entry = Entry::new(&path)?;
        let ino = state.lookup(&entry)?;
        let handle = self.handle(&mut state, ino, entry.path)?;
        Ok(Box::new(SimFile {
            handle,
            pos: 0,
            append: true,
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let path = normalize(path);
        let mut state = self.state();
        state.faults.check(SimOp::Read, &[&path])?;
        let ino = state.lookup_path(&path)?;
        Ok(state.inode(ino)?.current.to_vec())
    }

    fn map(&self, path: &Path) -> io::Result<Bytes> {
        let path = normalize(path);
        let mut state = self.state();
        state.faults.check(SimOp::Read, &[&path])?;
        let ino = state.lookup_path(&path)?;
        let current = &state.inode(ino)?.current;
        if current.is_empty() {
            return Ok(Bytes::new());
        }
        Ok(Bytes::from_owner(Snapshot(Arc::clone(current))))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        let path = normalize(path);
        let mut state = self.state();
        state.faults.check(SimOp::Read, &[&path])?;
        let ino = state.lookup_path(&path)?;
        let len = state.inode(ino)?.current.len() as u64;
        let handle = self.handle(&mut state, ino, path)?;
        Ok(Arc::new(SimReadFile { handle, len }))
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        let path = normalize(path);
        let mut state = self.state();
        state.faults.check(SimOp::Read, &[&path])?;
        let ino = state.lookup_path(&path)?;
        Ok(state.inode(ino)?.current.len() as u64)
    }

    fn exists(&self, path: &Path) -> bool {
        let path = normalize(path);
        let state = self.state();
        state.dirs.contains_key(&path) || state.lookup_path(&path).is_ok()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (normalize(from), normalize(to));
        let mut state = self.state();
        state.faults.check(SimOp::Rename, &[&from, &to])?;
        let (from, to) = (Entry::new(&from)?, Entry::new(&to)?);
        state.rename(&from, &to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let path = normalize(path);
        let mut state = self.state();
        state.faults.check(SimOp::Remove, &[&path])?;
        let entry = Entry::new(&path)?;
        state.remove(&entry)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.state().list(dir, false)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let dir = normalize(dir);
        let mut state = self.state();
        state.faults.check(SimOp::SyncDir, &[&dir])?;
        state.sync_dir(&dir)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        let entry = Entry::new(path)?;
        let mut state = self.state();
        if state.locks.contains(&entry.path) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked by another holder", entry.path.display()),
            ));
        }
        state.open_or_create(&entry, false)?;
        state.locks.insert(entry.path.clone());
        Ok(Box::new(SimLock {
            shared: Arc::clone(&self.shared),
            path: entry.path,
        }))
    }
}
