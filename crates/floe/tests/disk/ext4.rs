//! A small ext4 file system on a loop device, mounted on a fresh directory under a
//! temporary directory; dropping the guard unmounts it and detaches the device, also
//! when the test failed.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{find_tool, not_root, run};

/// `EXT4_IOC_SHUTDOWN`, `_IOR('X', 125, __u32)`: the file system stops every further
/// write, as a disk that died or lost power would.
const EXT4_IOC_SHUTDOWN: u32 = 0x8004_587D;
/// `EXT4_GOING_FLAGS_NOLOGFLUSH`: shut down without flushing the journal, so what was not
/// yet committed is lost, as in a power cut.
pub(crate) const EXT4_GOING_FLAGS_NOLOGFLUSH: u32 = 2;

/// The tools the loop-device file system needs.
#[derive(Debug)]
struct Tools {
    losetup: PathBuf,
    mkfs: PathBuf,
    mount: PathBuf,
    umount: PathBuf,
    e2fsck: Option<PathBuf>,
}

impl Tools {
    fn find() -> Result<Tools, String> {
        let need = |name: &str| find_tool(name).ok_or_else(|| format!("{name} is not installed"));
        Ok(Tools {
            losetup: need("losetup")?,
            mkfs: need("mkfs.ext4")?,
            mount: need("mount")?,
            umount: need("umount")?,
            e2fsck: find_tool("e2fsck"),
        })
    }
}

/// An ext4 file system on a loop device over an image file. Every field that names
/// something set up says whether it still needs undoing, so a setup that fails halfway
/// is undone as far as it went.
#[derive(Debug)]
pub(crate) struct Ext4 {
    tools: Tools,
    image: PathBuf,
    device: Option<String>,
    mountpoint: PathBuf,
    mounted: bool,
    /// Holds the image and the mount point; removed after the device is gone (fields drop
    /// after `Drop::drop` has run).
    dir: tempfile::TempDir,
}

impl Ext4 {
    /// Makes an ext4 file system of `mib` MiB, attaches it to a free loop device and
    /// mounts it. `Err` says why this machine cannot (the caller skips).
    pub(crate) fn new(mib: u64) -> Result<Ext4, String> {
        if let Some(reason) = not_root() {
            return Err(reason);
        }
        let tools = Tools::find()?;
        if !Path::new("/dev/loop-control").exists() {
            return Err("/dev/loop-control is missing: no loop devices here".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("floe-real-disk-")
            .tempdir()
            .map_err(|err| format!("creating a temporary directory: {err}"))?;
        let image = dir.path().join("ext4.img");
        let mountpoint = dir.path().join("mnt");
        let made = File::create(&image)
            .and_then(|file| file.set_len(mib << 20))
            .and_then(|()| std::fs::create_dir(&mountpoint));
        made.map_err(|err| format!("creating the image and mount point: {err}"))?;
        let mut fs = Ext4 {
            tools,
            image,
            device: None,
            mountpoint,
            mounted: false,
            dir,
        };
        // No blocks reserved for root (the tests run as root and must see the real
        // capacity), and no discard of a file that is all holes anyway.
        run(Command::new(&fs.tools.mkfs)
            .args(["-q", "-F", "-m", "0", "-E", "nodiscard"])
            .arg(&fs.image))?;
        let device = run(Command::new(&fs.tools.losetup)
            .args(["--find", "--show"])
            .arg(&fs.image))
        .map_err(|err| format!("the kernel gave no loop device: {err}"))?;
        fs.device = Some(device.trim().to_owned());
        fs.mount()
            .map_err(|err| format!("the kernel refused to mount ext4: {err}"))?;
        Ok(fs)
    }

    /// The root of the mounted file system.
    pub(crate) fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// A directory outside the file system, removed with it: where a child process runs.
    pub(crate) fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Mounts the file system again after [`Ext4::unmount`]. If the kernel refuses (a
    /// journal it will not replay), `e2fsck -y` repairs the image first and the mount is
    /// tried once more.
    pub(crate) fn mount(&mut self) -> Result<(), String> {
        assert!(!self.mounted, "already mounted");
        let device = self.device.clone().expect("the loop device is attached");
        let mount = || {
            run(Command::new(&self.tools.mount)
                .args(["-t", "ext4", &device])
                .arg(&self.mountpoint))
        };
        match mount() {
            Ok(_) => {}
            Err(first) => {
                let Some(e2fsck) = &self.tools.e2fsck else {
                    return Err(first);
                };
                // e2fsck exits 1 when it fixed something, which is what it is here for.
                let fixed = Command::new(e2fsck)
                    .args(["-f", "-y", &device])
                    .output()
                    .map_err(|err| format!("{first}; e2fsck could not start: {err}"))?;
                let code = fixed.status.code().unwrap_or(8);
                if code > 1 {
                    return Err(format!(
                        "{first}; e2fsck -y exited {code}: {}",
                        String::from_utf8_lossy(&fixed.stdout)
                    ));
                }
                mount().map_err(|second| format!("{first}; after e2fsck -y: {second}"))?;
                eprintln!("{device} mounted only after e2fsck -y repaired it: {first}");
            }
        }
        self.mounted = true;
        Ok(())
    }

    /// Unmounts the file system (the loop device stays attached for [`Ext4::mount`]).
    pub(crate) fn unmount(&mut self) -> Result<(), String> {
        assert!(self.mounted, "not mounted");
        run(Command::new(&self.tools.umount).arg(&self.mountpoint))?;
        self.mounted = false;
        Ok(())
    }

    /// Shuts the file system down (`EXT4_IOC_SHUTDOWN` with `flags`): from here on every
    /// write, sync and allocation on it fails with `EIO`, as on a disk that died.
    pub(crate) fn shut_down(&self, flags: u32) -> io::Result<()> {
        let root = File::open(&self.mountpoint)?;
        // SAFETY: `EXT4_IOC_SHUTDOWN` reads one `u32` through its pointer argument, which
        // points at `flags` on this stack frame for the duration of the call; the
        // descriptor is open for as long as `root` lives.
        let result = unsafe {
            libc::ioctl(
                root.as_raw_fd(),
                EXT4_IOC_SHUTDOWN as _,
                &flags as *const u32,
            )
        };
        if result == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        if self.mounted {
            // A file still open (the child of a test that failed is killed first, but its
            // descriptors may take a moment to close) makes umount fail with EBUSY: retry,
            // then detach lazily so the device goes when the last user does.
            let mut unmounted = false;
            for _ in 0..20 {
                if run(Command::new(&self.tools.umount).arg(&self.mountpoint)).is_ok() {
                    unmounted = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !unmounted
                && let Err(err) = run(Command::new(&self.tools.umount)
                    .arg("-l")
                    .arg(&self.mountpoint))
            {
                eprintln!("cleanup: {err}");
            }
        }
        if let Some(device) = self.device.take() {
            // Detaching a device still in use only marks it to detach itself when freed.
            if let Err(err) = run(Command::new(&self.tools.losetup).args(["-d", &device])) {
                eprintln!("cleanup: {err}");
            }
        }
    }
}
