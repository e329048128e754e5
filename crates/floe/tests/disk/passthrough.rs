//! A pass-through FUSE file system: it mirrors a backing directory at a mount point and
//! serves every request from the backing files, except that reads of the files a switch
//! names fail with `EIO`, as reads from a dying disk do.
//!
//! Every file is opened with `FOPEN_DIRECT_IO`, so each `read` reaches this server
//! instead of the kernel's page cache. A shared map of such a file is refused by the
//! kernel (`ENODEV`) unless the server asks for `FUSE_DIRECT_IO_ALLOW_MMAP` at `INIT`
//! (Linux 6.6 on); [`Passthrough::mount`] chooses. A shared map then goes through the
//! page cache, which starts empty at each mount, so a page fault on a mapped page reaches
//! this server too.
//!
//! The server runs on a thread of the test process; the database that uses the mount
//! runs in a child process, so that a page fault is never served by the process that
//! takes it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    BackgroundSession, BsdFileFlags, Config, Errno, FileAttr, FileHandle, FileType, Filesystem,
    FopenFlags, Generation, INodeNo, InitFlags, KernelConfig, LockOwner, MountOption, OpenAccMode,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use super::not_root;

/// Which files' reads fail with `EIO`, by the database's file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailReads {
    /// No read fails.
    Nothing,
    /// Reads of tables (`*.sst`).
    Tables,
    /// Reads of log segments (`*.log`).
    Logs,
    /// Reads of manifests (`MANIFEST-*`).
    Manifests,
    /// Reads of `CURRENT`.
    Current,
}

impl FailReads {
    fn matches(self, name: &str) -> bool {
        match self {
            FailReads::Nothing => false,
            FailReads::Tables => name.ends_with(".sst"),
            FailReads::Logs => name.ends_with(".log"),
            FailReads::Manifests => name.starts_with("MANIFEST-"),
            FailReads::Current => name == "CURRENT",
        }
    }
}

/// What the test and the server share: the switch and what the server saw.
#[derive(Debug)]
struct Shared {
    fail: Mutex<FailReads>,
    /// How many reads the server refused with `EIO`.
    refused: AtomicU64,
    /// Whether the kernel agreed to shared maps of direct-I/O files.
    shared_maps: AtomicBool,
}

/// A mounted pass-through file system; dropping it unmounts it.
#[derive(Debug)]
pub(crate) struct Passthrough {
    shared: Arc<Shared>,
    mountpoint: PathBuf,
    session: Option<BackgroundSession>,
}

impl Passthrough {
    /// Mounts a mirror of `backing` on the empty directory `mountpoint`, asking the
    /// kernel to allow shared maps of its files if `allow_maps`. `Err` says why this
    /// machine cannot (the caller skips).
    pub(crate) fn mount(
        backing: &Path,
        mountpoint: &Path,
        allow_maps: bool,
    ) -> Result<Passthrough, String> {
        if let Some(reason) = Passthrough::unavailable() {
            return Err(reason);
        }
        let shared = Arc::new(Shared {
            fail: Mutex::new(FailReads::Nothing),
            refused: AtomicU64::new(0),
            shared_maps: AtomicBool::new(false),
        });
        let server = Server {
            shared: Arc::clone(&shared),
            allow_maps,
            nodes: Mutex::new(Nodes::new(backing.to_path_buf())),
        };
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("floe-test".into()),
            MountOption::DefaultPermissions,
        ];
        // As root fuser mounts through /dev/fuse with mount(2) itself: no libfuse and no
        // fusermount helper is needed.
        let session = fuser::spawn_mount(server, mountpoint, &config)
            .map_err(|err| format!("the kernel refused a FUSE mount: {err}"))?;
        let mount = Passthrough {
            shared,
            mountpoint: mountpoint.to_path_buf(),
            session: Some(session),
        };
        // The first request waits for the INIT exchange, so after it the server knows
        // what the kernel granted.
        std::fs::read_dir(mountpoint)
            .map_err(|err| format!("the FUSE mount does not answer: {err}"))?;
        Ok(mount)
    }

    /// Why this machine cannot mount one, if it plainly cannot (a refused mount is only
    /// found out by trying).
    pub(crate) fn unavailable() -> Option<String> {
        not_root().or_else(|| {
            (!Path::new("/dev/fuse").exists()).then(|| "/dev/fuse is missing: no FUSE here".into())
        })
    }

    /// From now on, reads of the files `which` names fail with `EIO`.
    pub(crate) fn fail_reads(&self, which: FailReads) {
        *lock(&self.shared.fail) = which;
    }

    /// How many reads have failed with `EIO` so far.
    pub(crate) fn refused_reads(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Whether the kernel allows shared maps of this mount's (direct-I/O) files.
    pub(crate) fn shared_maps(&self) -> bool {
        self.shared.shared_maps.load(Ordering::SeqCst)
    }
}

impl Drop for Passthrough {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        if let Err(err) = session.umount_and_join() {
            // Still busy (a process holds a file open): detach it now, so it disappears
            // when the last user goes, and let the server thread end with it.
            eprintln!("cleanup: unmounting {}: {err}", self.mountpoint.display());
            if let Ok(path) = std::ffi::CString::new(self.mountpoint.as_os_str().as_encoded_bytes())
            {
                // SAFETY: `path` is a NUL-terminated string that lives across the call;
                // `umount2` only reads it.
                let _ = unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Inode numbers for paths, and the open files behind file handles.
#[derive(Debug)]
struct Nodes {
    /// The path of each inode number the kernel knows; `None` once the name is gone
    /// (removed, or replaced by a rename), while open handles may still use the inode.
    paths: HashMap<u64, Option<PathBuf>>,
    by_path: HashMap<PathBuf, u64>,
    next_ino: u64,
    files: HashMap<u64, File>,
    next_fh: u64,
}

impl Nodes {
    fn new(root: PathBuf) -> Nodes {
        let root_ino = u64::from(INodeNo::ROOT);
        Nodes {
            paths: HashMap::from([(root_ino, Some(root.clone()))]),
            by_path: HashMap::from([(root, root_ino)]),
            next_ino: root_ino + 1,
            files: HashMap::new(),
            next_fh: 1,
        }
    }

    fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        self.paths
            .get(&u64::from(ino))
            .cloned()
            .flatten()
            .ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.path(parent)?.join(name))
    }

    fn ino(&mut self, path: &Path) -> u64 {
        if let Some(&ino) = self.by_path.get(path) {
            return ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.paths.insert(ino, Some(path.to_path_buf()));
        self.by_path.insert(path.to_path_buf(), ino);
        ino
    }

    fn forget_path(&mut self, path: &Path) {
        if let Some(ino) = self.by_path.remove(path) {
            self.paths.insert(ino, None);
        }
    }

    fn file(&self, fh: FileHandle) -> Result<&File, Errno> {
        self.files.get(&fh.0).ok_or(Errno::EBADF)
    }

    fn add_file(&mut self, file: File) -> FileHandle {
        let fh = self.next_fh;
        self.next_fh += 1;
        self.files.insert(fh, file);
        FileHandle(fh)
    }
}

/// The server side, owned by the FUSE session thread.
#[derive(Debug)]
struct Server {
    shared: Arc<Shared>,
    allow_maps: bool,
    nodes: Mutex<Nodes>,
}

/// Attributes and entries are never cached: every lookup and stat reaches the server, so
/// the kernel never works from a stale size.
const TTL: Duration = Duration::ZERO;

fn errno(err: io::Error) -> Errno {
    Errno::from(err)
}

fn time(seconds: i64, nanos: i64) -> SystemTime {
    let nanos = u32::try_from(nanos).unwrap_or(0);
    match u64::try_from(seconds) {
        Ok(s) => UNIX_EPOCH + Duration::new(s, nanos),
        Err(_) => UNIX_EPOCH,
    }
}

fn attr(ino: u64, m: &Metadata) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: m.size(),
        blocks: m.blocks(),
        atime: time(m.atime(), m.atime_nsec()),
        mtime: time(m.mtime(), m.mtime_nsec()),
        ctime: time(m.ctime(), m.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind: FileType::from_std(m.file_type()).unwrap_or(FileType::RegularFile),
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev() as u32,
        blksize: m.blksize() as u32,
        flags: 0,
    }
}

/// Open options for the backing file of an open with `flags`. `O_APPEND` is left out on
/// purpose: the kernel sends every write with its offset, and `pwrite` on a file opened
/// for appending would ignore it.
fn backing_options(flags: i32) -> OpenOptions {
    let mut options = OpenOptions::new();
    match OpenFlags(flags).acc_mode() {
        OpenAccMode::O_RDONLY => options.read(true),
        OpenAccMode::O_WRONLY => options.write(true),
        OpenAccMode::O_RDWR => options.read(true).write(true),
    };
    options
}

impl Server {
    fn entry(&self, path: &Path, reply: ReplyEntry) {
        match std::fs::symlink_metadata(path) {
            Ok(m) => {
                let ino = lock(&self.nodes).ino(path);
                reply.entry(&TTL, &attr(ino, &m), Generation(0));
            }
            Err(err) => reply.error(errno(err)),
        }
    }

    fn attr_of(&self, ino: INodeNo, fh: Option<FileHandle>) -> Result<FileAttr, Errno> {
        let nodes = lock(&self.nodes);
        let metadata = match fh.map(|fh| nodes.file(fh)) {
            Some(Ok(file)) => file.metadata(),
            _ => std::fs::symlink_metadata(nodes.path(ino)?),
        };
        Ok(attr(u64::from(ino), &metadata.map_err(errno)?))
    }
}

impl Filesystem for Server {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        if self.allow_maps
            && config
                .add_capabilities(InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP)
                .is_ok()
        {
            self.shared.shared_maps.store(true, Ordering::SeqCst);
        }
        // One page per read request, so a page fault reads the page it needs and no
        // neighbours ahead of time that a later fault would then find cached.
        let _ = config.set_max_readahead(4096);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let path = lock(&self.nodes).child(parent, name);
        match path {
            Ok(path) => self.entry(&path, reply),
            Err(err) => reply.error(err),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr_of(ino, fh) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(err) => reply.error(err),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // Only the size matters to floe (`set_len`); other changes are accepted and
        // ignored.
        if let Some(size) = size {
            let nodes = lock(&self.nodes);
            let result = match fh.map(|fh| nodes.file(fh)) {
                Some(Ok(file)) => file.set_len(size),
                _ => match nodes.path(ino) {
                    Ok(path) => OpenOptions::new()
                        .write(true)
                        .open(path)
                        .and_then(|f| f.set_len(size)),
                    Err(err) => {
                        reply.error(err);
                        return;
                    }
                },
            };
            if let Err(err) = result {
                reply.error(errno(err));
                return;
            }
        }
        match self.attr_of(ino, fh) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(err) => reply.error(err),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let path = match lock(&self.nodes).child(parent, name) {
            Ok(path) => path,
            Err(err) => return reply.error(err),
        };
        match std::fs::create_dir(&path) {
            Ok(()) => self.entry(&path, reply),
            Err(err) => reply.error(errno(err)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut nodes = lock(&self.nodes);
        let path = match nodes.child(parent, name) {
            Ok(path) => path,
            Err(err) => return reply.error(err),
        };
        match std::fs::remove_file(&path) {
            Ok(()) => {
                nodes.forget_path(&path);
                reply.ok();
            }
            Err(err) => reply.error(errno(err)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut nodes = lock(&self.nodes);
        let path = match nodes.child(parent, name) {
            Ok(path) => path,
            Err(err) => return reply.error(err),
        };
        match std::fs::remove_dir(&path) {
            Ok(()) => {
                nodes.forget_path(&path);
                reply.ok();
            }
            Err(err) => reply.error(errno(err)),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !flags.is_empty() {
            return reply.error(Errno::EINVAL);
        }
        let mut nodes = lock(&self.nodes);
        let (from, to) = match (nodes.child(parent, name), nodes.child(newparent, newname)) {
            (Ok(from), Ok(to)) => (from, to),
            (Err(err), _) | (_, Err(err)) => return reply.error(err),
        };
        match std::fs::rename(&from, &to) {
            Ok(()) => {
                nodes.forget_path(&to);
                if let Some(ino) = nodes.by_path.remove(&from) {
                    nodes.paths.insert(ino, Some(to.clone()));
                    nodes.by_path.insert(to, ino);
                }
                reply.ok();
            }
            Err(err) => reply.error(errno(err)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut nodes = lock(&self.nodes);
        let opened = nodes
            .path(ino)
            .and_then(|path| backing_options(flags.0).open(path).map_err(errno));
        match opened {
            Ok(file) => {
                let fh = nodes.add_file(file);
                reply.opened(fh, FopenFlags::FOPEN_DIRECT_IO);
            }
            Err(err) => reply.error(err),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut nodes = lock(&self.nodes);
        let path = match nodes.child(parent, name) {
            Ok(path) => path,
            Err(err) => return reply.error(err),
        };
        let mut options = backing_options(flags);
        options
            .create(true)
            .truncate(flags & libc::O_TRUNC != 0)
            .mode(mode & !umask);
        if flags & libc::O_EXCL != 0 {
            options.create_new(true);
        }
        let created = options.open(&path).and_then(|file| {
            let metadata = file.metadata()?;
            Ok((file, metadata))
        });
        match created {
            Ok((file, metadata)) => {
                let ino = nodes.ino(&path);
                let fh = nodes.add_file(file);
                reply.created(
                    &TTL,
                    &attr(ino, &metadata),
                    Generation(0),
                    fh,
                    FopenFlags::FOPEN_DIRECT_IO,
                );
            }
            Err(err) => reply.error(errno(err)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let nodes = lock(&self.nodes);
        let fail = *lock(&self.shared.fail);
        let name = nodes.path(ino).ok();
        let name = name
            .as_deref()
            .and_then(Path::file_name)
            .and_then(OsStr::to_str)
            .unwrap_or("");
        if fail.matches(name) {
            self.shared.refused.fetch_add(1, Ordering::SeqCst);
            return reply.error(Errno::EIO);
        }
        let file = match nodes.file(fh) {
            Ok(file) => file,
            Err(err) => return reply.error(err),
        };
        let mut data = vec![0; size as usize];
        let mut filled = 0;
        while filled < data.len() {
            match file.read_at(&mut data[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return reply.error(errno(err)),
            }
        }
        reply.data(&data[..filled]);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let nodes = lock(&self.nodes);
        let written = nodes
            .file(fh)
            .and_then(|file| file.write_all_at(data, offset).map_err(errno));
        match written {
            Ok(()) => reply.written(data.len() as u32),
            Err(err) => reply.error(err),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Every write already reached the backing file; a close has nothing to flush.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        lock(&self.nodes).files.remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let nodes = lock(&self.nodes);
        let synced = nodes.file(fh).and_then(|file| {
            let result = if datasync {
                file.sync_data()
            } else {
                file.sync_all()
            };
            result.map_err(errno)
        });
        match synced {
            Ok(()) => reply.ok(),
            Err(err) => reply.error(err),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let mut nodes = lock(&self.nodes);
        let dir = match nodes.path(ino) {
            Ok(dir) => dir,
            Err(err) => return reply.error(err),
        };
        let listing = match std::fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(err) => return reply.error(errno(err)),
        };
        let mut entries = vec![
            (u64::from(ino), FileType::Directory, ".".into()),
            (u64::from(ino), FileType::Directory, "..".into()),
        ];
        for entry in listing.flatten() {
            let kind = entry
                .file_type()
                .ok()
                .and_then(FileType::from_std)
                .unwrap_or(FileType::RegularFile);
            let child = nodes.ino(&entry.path());
            entries.push((child, kind, entry.file_name()));
        }
        for (at, (child, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), at as u64 + 1, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let dir = lock(&self.nodes).path(ino);
        let synced = dir.and_then(|dir| File::open(dir).and_then(|d| d.sync_all()).map_err(errno));
        match synced {
            Ok(()) => reply.ok(),
            Err(err) => reply.error(err),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let nodes = lock(&self.nodes);
        let file = match nodes.file(fh) {
            Ok(file) => file,
            Err(err) => return reply.error(err),
        };
        let (Ok(offset), Ok(length)) = (i64::try_from(offset), i64::try_from(length)) else {
            return reply.error(Errno::EINVAL);
        };
        // SAFETY: `fallocate` only reads its integer arguments; the descriptor stays open
        // while `nodes` (and so `file`) is borrowed.
        let result = unsafe { libc::fallocate(file.as_raw_fd(), mode, offset, length) };
        if result == 0 {
            reply.ok();
        } else {
            reply.error(errno(io::Error::last_os_error()));
        }
    }
}
