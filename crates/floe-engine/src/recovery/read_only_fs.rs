//! [`ReadOnlyFs`]: the file system of a database opened read-only, which passes reads
//! through and refuses every call that would change the directory, and [`RefusedFile`],
//! the stand-in for the log and manifest writers such a database has no file for.
//!
//! The engine refuses every change of a read-only database before it touches a file
//! ([`crate::shared::Shared::check_writable`]); this is the second wall, so that a path
//! that missed the check fails with an error instead of writing.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use floe_core::fs::{DirLock, FileSystem, RandomAccessFile, WritableFile};

/// The error of every refused call.
fn refused(operation: &str, path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::ReadOnlyFilesystem,
        format!(
            "{operation} {} refused: the database is open read-only",
            path.display()
        ),
    )
}

/// A [`FileSystem`] that reads through `inner` and refuses to create, open for writing,
/// rename, remove, sync or lock anything.
#[derive(Debug)]
pub(super) struct ReadOnlyFs {
    inner: Arc<dyn FileSystem>,
}

impl ReadOnlyFs {
    /// Reads through `inner`.
    pub(super) fn new(inner: Arc<dyn FileSystem>) -> ReadOnlyFs {
        ReadOnlyFs { inner }
    }
}

impl FileSystem for ReadOnlyFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        Err(refused("creating", dir))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Err(refused("creating", path))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Err(refused("opening for writing", path))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }

    fn map(&self, path: &Path) -> io::Result<Bytes> {
        self.inner.map(path)
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        self.inner.open_read(path)
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        self.inner.file_size(path)
    }

    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }

    fn rename(&self, from: &Path, _to: &Path) -> io::Result<()> {
        Err(refused("renaming", from))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        Err(refused("removing", path))
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        Err(refused("syncing", dir))
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        Err(refused("locking", path))
    }
}

/// A [`WritableFile`] that refuses every write and sync: what a read-only database's log
/// and manifest writers hold, since it has no file to write.
#[derive(Debug)]
pub(super) struct RefusedFile {
    /// The file it stands in for, for the error.
    name: &'static str,
}

impl RefusedFile {
    /// A stand-in for the file `name` ("the log", "the manifest").
    pub(super) fn boxed(name: &'static str) -> Box<dyn WritableFile> {
        Box::new(RefusedFile { name })
    }

    fn refuse(&self) -> io::Error {
        refused("writing", Path::new(self.name))
    }
}

impl Write for RefusedFile {
    fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        Err(self.refuse())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Nothing was written, so nothing waits.
        Ok(())
    }
}

impl WritableFile for RefusedFile {
    fn sync_data(&mut self) -> io::Result<()> {
        Err(self.refuse())
    }

    fn sync_all(&mut self) -> io::Result<()> {
        Err(self.refuse())
    }
}

#[cfg(test)]
mod tests {
    use floe_core::fs::StdFs;

    use super::*;

    #[test]
    fn reads_pass_and_every_change_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"bytes").unwrap();
        let fs = ReadOnlyFs::new(Arc::new(StdFs));
        assert_eq!(fs.read(&file).unwrap(), b"bytes");
        assert_eq!(&fs.map(&file).unwrap()[..], b"bytes");
        assert_eq!(fs.file_size(&file).unwrap(), 5);
        assert!(fs.exists(&file));
        assert_eq!(fs.list_dir(dir.path()).unwrap(), ["file"]);

        let other = dir.path().join("other");
        let is_refusal = |err: io::Error| err.kind() == io::ErrorKind::ReadOnlyFilesystem;
        assert!(is_refusal(fs.create_dir_all(&other).unwrap_err()));
        assert!(is_refusal(fs.create(&other).unwrap_err()));
        assert!(is_refusal(fs.create(&file).unwrap_err()));
        assert!(is_refusal(fs.open_append(&file).unwrap_err()));
        assert!(is_refusal(fs.rename(&file, &other).unwrap_err()));
        assert!(is_refusal(fs.remove_file(&file).unwrap_err()));
        assert!(is_refusal(fs.sync_dir(dir.path()).unwrap_err()));
        assert!(is_refusal(fs.lock(&other).unwrap_err()));
        assert_eq!(std::fs::read(&file).unwrap(), b"bytes");
        assert_eq!(fs.list_dir(dir.path()).unwrap(), ["file"]);

        let mut stand_in = RefusedFile::boxed("the log");
        assert!(is_refusal(stand_in.write(b"x").unwrap_err()));
        assert!(is_refusal(stand_in.sync_data().unwrap_err()));
        assert!(is_refusal(stand_in.sync_all().unwrap_err()));
    }
}
