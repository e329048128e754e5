//! The simulated disk's state behind [`SimFs`](super::SimFs)'s lock: inodes with their
//! page cache and durable contents, directories with their durable entries and pending
//! operations, and the namespace operations on them.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::fault::Faults;
use crate::fs::not_a_regular_file;

/// The page size of the simulated page cache: the unit of dirty tracking and of
/// persistence in a crash image.
pub(super) const PAGE: usize = 4096;

/// The sector size: the unit in which a persisted page may be torn.
pub(super) const SECTOR: usize = 512;

/// The largest file the simulator holds, so that a wild length fails with an error
/// instead of exhausting memory.
pub(super) const MAX_FILE_LEN: u64 = 1 << 30;

/// An inode number.
pub(super) type Ino = u64;

/// One file's data, separate from the names that lead to it.
#[derive(Debug, Clone, Default)]
pub(super) struct Inode {
    /// What reads see: the page cache. Its length is the current length.
    pub(super) current: Arc<Vec<u8>>,
    /// What survives a power loss for certain. Its length is the durable length.
    /// Shared copy-on-write with `current`, with crash images and with maps handed out.
    pub(super) durable: Arc<Vec<u8>>,
    /// The pages (by index) whose current bytes may differ from the durable ones. Every
    /// change to `current` marks the pages it touches, and growth marks the pages of the
    /// new range, so a page not in this set holds the same bytes in both (where both have
    /// them).
    pub(super) dirty: BTreeSet<u64>,
    /// Open handles, maps and syncers: they keep an unlinked inode alive.
    pub(super) handles: usize,
}

fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("the simulated disk holds files of at most {MAX_FILE_LEN} bytes"),
    )
}

/// `len` as an in-memory length, if the simulator can hold a file that long.
pub(super) fn file_len(len: u64) -> io::Result<usize> {
    if len > MAX_FILE_LEN {
        return Err(too_large());
    }
    usize::try_from(len).map_err(|_| too_large())
}

impl Inode {
    /// Whether everything of the file is durable: a crash image of it is its durable
    /// contents.
    pub(super) fn is_clean(&self) -> bool {
        self.dirty.is_empty() && self.durable.len() == self.current.len()
    }

    fn mark_dirty(&mut self, start: usize, end: usize) {
        if start >= end {
            return;
        }
        for page in start / PAGE..=(end - 1) / PAGE {
            self.dirty.insert(page as u64);
        }
    }

    /// Writes `buf` at `at`, growing the file (with zeros up to `at`) if it ends past it.
    pub(super) fn write_at(&mut self, at: u64, buf: &[u8]) -> io::Result<()> {
        let end = at.checked_add(buf.len() as u64).ok_or_else(too_large)?;
        let end = file_len(end)?;
        if buf.is_empty() {
            return Ok(());
        }
        let at = end - buf.len();
        let old_len = self.current.len();
        let data = Arc::make_mut(&mut self.current);
        if end > old_len {
            data.resize(end, 0);
        }
        data[at..end].copy_from_slice(buf);
        self.mark_dirty(old_len.min(at), end);
        Ok(())
    }

    /// Stores `bytes` at `at` within the current length; bytes past it are dropped.
    pub(super) fn store(&mut self, at: usize, bytes: &[u8]) {
        let len = self.current.len();
        let end = at.saturating_add(bytes.len()).min(len);
        if at >= end {
            return;
        }
        let data = Arc::make_mut(&mut self.current);
        data[at..end].copy_from_slice(&bytes[..end - at]);
        self.mark_dirty(at, end);
    }

    /// Sets the current length: growth adds zeros, a cut drops the tail and its dirty
    /// pages.
    pub(super) fn set_len(&mut self, len: u64) -> io::Result<()> {
        let len = file_len(len)?;
        let old_len = self.current.len();
        if len > old_len {
            Arc::make_mut(&mut self.current).resize(len, 0);
            self.mark_dirty(old_len, len);
        } else if len < old_len {
            match Arc::get_mut(&mut self.current) {
                Some(data) => data.truncate(len),
                None => self.current = Arc::new(self.current[..len].to_vec()),
            }
            let _gone = self.dirty.split_off(&(len.div_ceil(PAGE) as u64));
        }
        Ok(())
    }

    /// Makes the current contents and length durable.
    pub(super) fn sync(&mut self) {
        if self.is_clean() {
            return;
        }
        let len = self.current.len();
        if self.dirty.len() >= len.div_ceil(PAGE) {
            // Every page changed (a file written once, as tables are): share the bytes
            // rather than copy them.
            self.durable = Arc::clone(&self.current);
        } else {
            let durable = Arc::make_mut(&mut self.durable);
            durable.resize(len, 0);
            for &page in &self.dirty {
                let start = (page as usize).saturating_mul(PAGE);
                let end = start.saturating_add(PAGE).min(len);
                if start < end {
                    durable[start..end].copy_from_slice(&self.current[start..end]);
                }
            }
        }
        self.dirty.clear();
    }
}

/// One pending (not yet durable) operation on a directory's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DirOp {
    /// A new name for a new inode; applies only where the name is free.
    Create { name: OsString, ino: Ino },
    /// The target half of a rename from another directory: the name leads to the inode,
    /// replacing whatever it led to.
    Link { name: OsString, ino: Ino },
    /// A rename within the directory, replacing the target; applies only while `from`
    /// still leads to the inode.
    Rename {
        from: OsString,
        to: OsString,
        ino: Ino,
    },
    /// A removal (or the source half of a rename to another directory); applies only
    /// while the name still leads to the inode.
    Remove { name: OsString, ino: Ino },
}

impl DirOp {
    pub(super) fn ino(&self) -> Ino {
        match self {
            DirOp::Create { ino, .. }
            | DirOp::Link { ino, .. }
            | DirOp::Rename { ino, .. }
            | DirOp::Remove { ino, .. } => *ino,
        }
    }

    /// Applies the operation to `entries` if it still applies there.
    pub(super) fn apply(&self, entries: &mut BTreeMap<OsString, Ino>) {
        match self {
            DirOp::Create { name, ino } => {
                entries.entry(name.clone()).or_insert(*ino);
            }
            DirOp::Link { name, ino } => {
                entries.insert(name.clone(), *ino);
            }
            DirOp::Rename { from, to, ino } => {
                if entries.get(from) == Some(ino) {
                    entries.remove(from);
                    entries.insert(to.clone(), *ino);
                }
            }
            DirOp::Remove { name, ino } => {
                if entries.get(name) == Some(ino) {
                    entries.remove(name);
                }
            }
        }
    }
}

/// One directory: its file entries (subdirectories are durable and live in
/// [`State::dirs`] by path).
#[derive(Debug, Clone, Default)]
pub(super) struct Dir {
    /// The entries that survive a power loss for certain.
    pub(super) durable: BTreeMap<OsString, Ino>,
    /// The entries as the running system sees them: `durable` with every pending
    /// operation applied in order.
    pub(super) current: BTreeMap<OsString, Ino>,
    /// The operations since the last `sync_dir`, in order.
    pub(super) pending: Vec<DirOp>,
}

impl Dir {
    /// A directory whose entries are all durable.
    pub(super) fn durable(entries: BTreeMap<OsString, Ino>) -> Dir {
        Dir {
            durable: entries.clone(),
            current: entries,
            pending: Vec::new(),
        }
    }

    fn references(&self, ino: Ino) -> bool {
        self.current.values().any(|&held| held == ino)
            || self.durable.values().any(|&held| held == ino)
            || self.pending.iter().any(|op| op.ino() == ino)
    }

    fn record(&mut self, op: DirOp) {
        op.apply(&mut self.current);
        self.pending.push(op);
    }
}

/// Everything behind the lock of one simulated file system.
#[derive(Debug)]
pub(super) struct State {
    /// Every directory by normalised path; the root always exists.
    pub(super) dirs: BTreeMap<PathBuf, Dir>,
    pub(super) inodes: BTreeMap<Ino, Inode>,
    pub(super) next_ino: Ino,
    /// The paths (normalised) with a held lock.
    pub(super) locks: BTreeSet<PathBuf>,
    pub(super) faults: Faults,
}

impl Default for State {
    fn default() -> State {
        State {
            dirs: BTreeMap::from([(root(), Dir::default())]),
            inodes: BTreeMap::new(),
            next_ino: 1,
            locks: BTreeSet::new(),
            faults: Faults::default(),
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from("/")
}

/// `path` as a lexically normalised absolute path: relative paths are taken from the
/// root (the simulator's current directory), `.` is dropped and `..` goes up (there are
/// no symbolic links to make that differ from the operating system's resolution), and a
/// Windows prefix is ignored.
pub(super) fn normalize(path: &Path) -> PathBuf {
    let mut out = root();
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::CurDir => {}
            Component::RootDir => out = root(),
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
        }
    }
    out
}

pub(super) fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file or directory", path.display()),
    )
}

fn not_a_directory(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotADirectory,
        format!("{} is not a directory", path.display()),
    )
}

fn is_a_directory(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::IsADirectory,
        format!("{} is a directory", path.display()),
    )
}

/// A normalised file path split into its directory and its name.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) path: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) name: OsString,
}

impl Entry {
    pub(super) fn new(path: &Path) -> io::Result<Entry> {
        let path = normalize(path);
        match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) => Ok(Entry {
                dir: dir.to_path_buf(),
                name: name.to_os_string(),
                path,
            }),
            _ => Err(is_a_directory(&path)),
        }
    }
}

impl State {
    pub(super) fn inode(&self, ino: Ino) -> io::Result<&Inode> {
        self.inodes.get(&ino).ok_or_else(vanished)
    }

    pub(super) fn inode_mut(&mut self, ino: Ino) -> io::Result<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or_else(vanished)
    }

    /// The inode `entry` leads to in the current namespace.
    pub(super) fn lookup(&self, entry: &Entry) -> io::Result<Ino> {
        if let Some(&ino) = self
            .dirs
            .get(&entry.dir)
            .and_then(|dir| dir.current.get(&entry.name))
        {
            return Ok(ino);
        }
        if self.dirs.contains_key(&entry.path) {
            return Err(not_a_regular_file(&entry.path));
        }
        Err(not_found(&entry.path))
    }

    /// The inode at `path`, resolved by the caller's path.
    pub(super) fn lookup_path(&self, path: &Path) -> io::Result<Ino> {
        self.lookup(&Entry::new(path)?)
    }

    /// The directory `dir` (normalised), or why there is none.
    fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        if !self.dirs.contains_key(dir) {
            return Err(
                match Entry::new(dir).and_then(|entry| self.lookup(&entry)) {
                    Ok(_) => not_a_directory(dir),
                    Err(_) => not_found(dir),
                },
            );
        }
        self.dirs.get_mut(dir).ok_or_else(|| not_found(dir))
    }

    /// Opens `entry` for writing, creating it (a pending entry of its directory) if
    /// needed; `truncate` empties an existing file.
    pub(super) fn open_or_create(&mut self, entry: &Entry, truncate: bool) -> io::Result<Ino> {
        if self.dirs.contains_key(&entry.path) {
            return Err(not_a_regular_file(&entry.path));
        }
        let next = self.next_ino;
        let dir = self.dir_mut(&entry.dir)?;
        if let Some(&ino) = dir.current.get(&entry.name) {
            if truncate {
                self.inode_mut(ino)?.set_len(0)?;
            }
            return Ok(ino);
        }
        dir.record(DirOp::Create {
            name: entry.name.clone(),
            ino: next,
        });
        self.next_ino += 1;
        self.inodes.insert(next, Inode::default());
        Ok(next)
    }

    pub(super) fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        let dir = normalize(dir);
        let mut at = root();
        for component in dir.components().skip(1) {
            at.push(component);
            if self.dirs.contains_key(&at) {
                continue;
            }
            if Entry::new(&at)
                .and_then(|entry| self.lookup(&entry))
                .is_ok()
            {
                return Err(not_a_directory(&at));
            }
            self.dirs.insert(at.clone(), Dir::default());
        }
        Ok(())
    }

    pub(super) fn rename(&mut self, from: &Entry, to: &Entry) -> io::Result<()> {
        let ino = self.lookup(from)?;
        if self.dirs.contains_key(&to.path) {
            return Err(is_a_directory(&to.path));
        }
        self.dir_mut(&to.dir)?;
        if from.path == to.path {
            return Ok(());
        }
        let replaced = self
            .dirs
            .get(&to.dir)
            .and_then(|dir| dir.current.get(&to.name).copied());
        if from.dir == to.dir {
            self.dir_mut(&from.dir)?.record(DirOp::Rename {
                from: from.name.clone(),
                to: to.name.clone(),
                ino,
            });
        } else {
            self.dir_mut(&from.dir)?.record(DirOp::Remove {
                name: from.name.clone(),
                ino,
            });
            self.dir_mut(&to.dir)?.record(DirOp::Link {
                name: to.name.clone(),
                ino,
            });
        }
        if let Some(replaced) = replaced {
            self.collect(replaced);
        }
        Ok(())
    }

    pub(super) fn remove(&mut self, entry: &Entry) -> io::Result<()> {
        if self.dirs.contains_key(&entry.path) {
            return Err(is_a_directory(&entry.path));
        }
        let ino = self.lookup(entry)?;
        self.dir_mut(&entry.dir)?.record(DirOp::Remove {
            name: entry.name.clone(),
            ino,
        });
        self.collect(ino);
        Ok(())
    }

    /// The names in `dir`: its files and its subdirectories, sorted.
    pub(super) fn list(&mut self, dir: &Path, files_only: bool) -> io::Result<Vec<String>> {
        let dir = normalize(dir);
        let mut names: Vec<String> = self
            .dir_mut(&dir)?
            .current
            .keys()
            .filter_map(|name| name.to_str().map(str::to_owned))
            .collect();
        if !files_only {
            names.extend(
                self.dirs
                    .keys()
                    .filter(|sub| sub.parent() == Some(dir.as_path()))
                    .filter_map(|sub| sub.file_name()?.to_str().map(str::to_owned)),
            );
        }
        names.sort();
        Ok(names)
    }

    pub(super) fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        let dir = normalize(dir);
        if !self.dirs.contains_key(&dir) {
            // `sync_dir` on a file syncs the file, as an `fsync` of it would.
            let ino = self.lookup_path(&dir)?;
            self.inode_mut(ino)?.sync();
            return Ok(());
        }
        let dir = self.dir_mut(&dir)?;
        let pending = std::mem::take(&mut dir.pending);
        let old = std::mem::replace(&mut dir.durable, dir.current.clone());
        for ino in pending.iter().map(DirOp::ino).chain(old.into_values()) {
            self.collect(ino);
        }
        Ok(())
    }

    /// Drops `ino` if nothing can reach it any more: no handle, and no name in any
    /// directory's current or durable entries or pending operations (a crash image may
    /// still bring back a name that leads to it).
    pub(super) fn collect(&mut self, ino: Ino) {
        let Some(inode) = self.inodes.get(&ino) else {
            return;
        };
        if inode.handles == 0 && !self.dirs.values().any(|dir| dir.references(ino)) {
            self.inodes.remove(&ino);
        }
    }
}

/// The error for a handle whose inode is gone, which the handle's own reference prevents;
/// it is returned rather than assumed away.
fn vanished() -> io::Error {
    io::Error::other("the simulated file's inode is gone")
}
