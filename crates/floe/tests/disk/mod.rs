//! Helpers of the real-disk suite: what a test needs from the machine (root, tools,
//! kernel features) and why it skips without them, an ext4 file system on a loop device,
//! a pass-through FUSE file system that fails chosen reads, and child processes.
//!
//! A test that cannot get what it needs prints the reason to stderr and returns: it
//! passes, so a machine without a loop device or FUSE never fails the suite for a tool.

pub(crate) mod child;
pub(crate) mod ext4;
pub(crate) mod passthrough;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

/// Prints why `test` does not run here. The test then returns, and passes.
pub(crate) fn skip(test: &str, reason: &str) {
    eprintln!("skipped {test}: {reason}");
}

/// Why this process cannot run a real-disk test, if it cannot: these tests mount file
/// systems, which takes root.
pub(crate) fn not_root() -> Option<String> {
    // SAFETY: `geteuid` takes no arguments, touches no memory and cannot fail.
    let euid = unsafe { libc::geteuid() };
    (euid != 0).then(|| format!("needs root to mount file systems (euid is {euid})"))
}

/// The path of the executable `name`, searched in `PATH` and then in the system binary
/// directories that a non-login root shell may leave out of it.
pub(crate) fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `command` to its end; its stdout on success, otherwise a message with its status
/// and stderr.
pub(crate) fn run(command: &mut Command) -> Result<String, String> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .map_err(|err| format!("{shown} could not start: {err}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{shown} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Held for the whole of each real-disk test, so that they take turns: each mounts its
/// own file system and runs a child process that writes as fast as it can, and the
/// bounded windows the shutdown tests check are about the engine, not about a neighbour
/// competing for the two cores.
pub(crate) fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    // A test that failed while holding the turn poisoned the mutex; the next one still runs.
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
