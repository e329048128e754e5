//! Dropping a closed database's files from the operating system's page cache, so that the
//! reads after a reopen start cold: `posix_fadvise(POSIX_FADV_DONTNEED)` on every file of
//! its directory, after a `sync(2)` (the kernel drops only clean pages).

use std::fs::File;
use std::path::Path;

use anyhow::Context;

/// Drops every file under `dir` (recursively) from the page cache and returns how many
/// files it went through. The database must be closed: pages that an open engine maps or
/// keeps dirty stay where they are.
///
/// # Errors
/// A directory that cannot be listed, a file that cannot be opened, or a kernel that
/// refuses the advice (or a platform without it: the cold phases need Linux).
pub fn drop_dir(dir: &Path) -> anyhow::Result<u64> {
    crate::dbbench::settle_disk();
    drop_under(dir)
}

fn drop_under(dir: &Path) -> anyhow::Result<u64> {
    let mut files = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            files += drop_under(&entry.path())?;
        } else if kind.is_file() {
            let path = entry.path();
            let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            drop_file(&file)
                .with_context(|| format!("dropping {} from the page cache", path.display()))?;
            files += 1;
        }
    }
    Ok(files)
}

/// Advises the kernel that no part of `file` will be needed soon, which makes it drop the
/// file's clean pages from the page cache.
#[cfg(target_os = "linux")]
fn drop_file(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;

    // SAFETY: `posix_fadvise` reads no memory of this process; it takes a descriptor, which
    // `file` owns and keeps open for the length of the call, and a range (offset 0 and
    // length 0: the whole file).
    let code = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    // It returns the error number itself rather than setting `errno`.
    match code {
        0 => Ok(()),
        code => Err(std::io::Error::from_raw_os_error(code)),
    }
}

/// Elsewhere there is no advice to give: the cold phases need Linux.
#[cfg(not(target_os = "linux"))]
fn drop_file(_file: &File) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "dropping files from the page cache needs Linux (posix_fadvise)",
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_a_tree_is_advised() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("a"), vec![1u8; 1 << 16]).expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub").join("b"), b"b").expect("write");
        assert_eq!(drop_dir(dir.path()).expect("advised"), 2);
        assert!(drop_dir(&dir.path().join("missing")).is_err());
    }
}
