//! What the integration tests share: running the built `floe` binary on a database
//! directory, and checking how it failed.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the helpers"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The result of one run of the binary.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Asserts the run succeeded and returns its stdout.
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        &self.stdout
    }

    /// Parses stdout as JSON, after asserting the run succeeded.
    #[track_caller]
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}): {self:?}"))
    }

    /// Asserts the run failed with `code` and one readable line on stderr, no panic, and
    /// returns that line.
    #[track_caller]
    pub(crate) fn fails(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "expected exit status {code}: {self:?}");
        assert!(!self.stderr.contains("panicked"), "a panic: {self:?}");
        assert!(!self.stderr.contains("RUST_BACKTRACE"), "a panic: {self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr: {self:?}");
        assert!(
            lines[0].starts_with("floe: error: "),
            "unexpected stderr: {self:?}"
        );
        lines[0]
    }
}

fn finish(output: Output) -> Run {
    Run {
        // A run killed by a signal has no code; -1 fails every assertion on it.
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The binary, with no `FLOE_DB` from the environment of the test.
pub(crate) fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_floe"));
    command.env_remove("FLOE_DB");
    command
}

/// Runs `floe --db DIR ARGS...`.
pub(crate) fn floe(dir: &Path, args: &[&str]) -> Run {
    let output = command()
        .arg("--db")
        .arg(dir)
        .args(args)
        .output()
        .expect("the floe binary runs");
    finish(output)
}

/// Runs `floe ARGS...` without `--db`.
pub(crate) fn floe_bare(args: &[&str]) -> Run {
    finish(command().args(args).output().expect("the floe binary runs"))
}

/// A fresh database directory (created with the CLI's `--create`), in a temporary
/// directory that lives as long as the returned guard.
pub(crate) fn new_db() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path().join("db");
    floe(&dir, &["--create", "put", "seed", "1"]).ok();
    (tmp, dir)
}

/// The files of `dir` whose names end in `suffix`, sorted.
pub(crate) fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the directory lists")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

/// Flips bit 0 of the byte at `offset` of `path`.
pub(crate) fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).expect("the file reads");
    let at = usize::try_from(offset).expect("a small offset");
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).expect("the file writes");
}

/// The file name of `path`.
pub(crate) fn name(path: &Path) -> String {
    path.file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

/// Writes `records` batches of two puts each through a database opened in this process
/// with synced writes, then closes it cleanly: its log segment holds every batch and ends
/// in the marker of a clean close. Returns the segment.
pub(crate) fn synced_segment(db: &Path, records: usize) -> PathBuf {
    let before = files_ending(db, ".log");
    let handle =
        floe::Db::open_with(db, floe::Options::default().sync(true)).expect("the database opens");
    for i in 0..records {
        let mut batch = floe::WriteBatch::new();
        batch.put(format!("k{i}"), format!("v{i}"));
        batch.put(format!("k{i}b"), "w");
        handle.write(batch).expect("the write succeeds");
    }
    handle.close().expect("a clean close");
    let after = files_ending(db, ".log");
    after
        .into_iter()
        .find(|log| !before.contains(log))
        .expect("the open created a segment")
}
