//! [`FaultyFs`]: the real file system with injected failures, for the engine's failure tests.
//!
//! A test arms faults (fail the Nth write from now, every sync, the next rename of a
//! manifest, …), runs the engine on a `FaultyFs`, and checks that the engine poisons
//! itself instead of acknowledging a write it cannot keep, and that a reopen on a healthy
//! file system recovers exactly what was acknowledged. Faults apply to every handle of the
//! file system, including files opened before the fault was armed.
//!
//! Available to unit tests and, with the `fault-injection` feature, to integration tests,
//! which hand a clone to the database as its file system and keep one to arm faults.

use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use floe_core::fs::{DirLock, FileSyncer, FileSystem, RandomAccessFile, StdFs, WritableFile};

/// The operations a fault can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultOp {
    /// [`FileSystem::create`] and [`FileSystem::open_append`].
    Create,
    /// One `write` call on a file opened through the file system.
    Write,
    /// `sync_data` or `sync_all` on such a file, or `sync_data` on a
    /// [`FileSyncer`] it handed out.
    Sync,
    /// [`FileSystem::rename`].
    Rename,
    /// [`FileSystem::remove_file`].
    Remove,
    /// [`FileSystem::sync_dir`].
    SyncDir,
    /// [`FileSystem::read`], [`FileSystem::map`] and [`FileSystem::open_read`], and each
    /// `read_at` of a file that `open_read` handed out.
    Read,
}

/// One armed fault.
#[derive(Debug)]
struct Rule {
    op: FaultOp,
    /// Only operations on paths containing this string match; `None` matches every path.
    path_contains: Option<String>,
    /// Matching operations to let through before the fault fires.
    skip: u64,
    /// Whether the fault keeps firing after the first time.
    always: bool,
    /// For a write fault: hand the first half of the buffer to the file before failing,
    /// as a crash or a full disk in the middle of a `write` would.
    torn: bool,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    /// Operations seen, per kind, whether or not they failed.
    counts: Vec<(FaultOp, u64)>,
    /// Faults fired so far.
    injected: u64,
    /// Set by [`FaultyFs::hide_syncers`].
    hide_syncers: bool,
}

/// What [`State::check`] decided for one operation.
enum Verdict {
    Pass,
    Fail { torn: bool },
}

impl State {
    fn check(&mut self, op: FaultOp, path: &Path) -> Verdict {
        match self.counts.iter_mut().find(|(seen, _)| *seen == op) {
            Some((_, count)) => *count += 1,
            None => self.counts.push((op, 1)),
        }
        let path = path.to_string_lossy();
        let matching = self.rules.iter_mut().position(|rule| {
            rule.op == op
                && rule
                    .path_contains
                    .as_deref()
                    .is_none_or(|needle| path.contains(needle))
        });
        let Some(index) = matching else {
            return Verdict::Pass;
        };
        let rule = &mut self.rules[index];
        if rule.skip > 0 {
            rule.skip -= 1;
            return Verdict::Pass;
        }
        let torn = rule.torn;
        if !rule.always {
            self.rules.remove(index);
        }
        self.injected += 1;
        Verdict::Fail { torn }
    }
}

/// A [`FileSystem`] that forwards to [`StdFs`] except where a test armed a fault.
#[derive(Clone, Default)]
pub struct FaultyFs {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FaultyFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyFs")
            .field("injected", &self.injected())
            .finish_non_exhaustive()
    }
}

fn injected_error(op: FaultOp, path: &Path) -> io::Error {
    io::Error::other(format!("injected {op:?} fault on {}", path.display()))
}

impl FaultyFs {
    /// A file system with no fault armed.
    #[must_use]
    pub fn new() -> FaultyFs {
        FaultyFs::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves consistent state behind:
        // every update is a single counter or vector operation.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn arm(&self, rule: Rule) {
        self.state().rules.push(rule);
    }

    /// Fails the `n`th `op` from now (1 = the next one), once. Panics if `n` is 0.
    pub fn fail_nth(&self, op: FaultOp, n: u64) {
        self.fail_nth_on(op, n, None);
    }

    /// Fails the `n`th `op` from now on a path containing `path_contains` (any path when
    /// `None`), once.
    pub fn fail_nth_on(&self, op: FaultOp, n: u64, path_contains: Option<&str>) {
        assert!(n >= 1, "faults count from 1 (the next operation)");
        self.arm(Rule {
            op,
            path_contains: path_contains.map(str::to_owned),
            skip: n - 1,
            always: false,
            torn: false,
        });
    }

    /// Makes the `n`th write from now on a path containing `path_contains` hand the first
    /// half of its buffer to the file and then fail, once.
    pub fn tear_nth_write_on(&self, n: u64, path_contains: Option<&str>) {
        assert!(n >= 1, "faults count from 1 (the next operation)");
        self.arm(Rule {
            op: FaultOp::Write,
            path_contains: path_contains.map(str::to_owned),
            skip: n - 1,
            always: false,
            torn: true,
        });
    }

    /// Fails every `op` from now on, on any path.
    pub fn fail_always(&self, op: FaultOp) {
        self.fail_always_on(op, None);
    }

    /// Fails every `op` from now on, on paths containing `path_contains` (any when `None`).
    pub fn fail_always_on(&self, op: FaultOp, path_contains: Option<&str>) {
        self.arm(Rule {
            op,
            path_contains: path_contains.map(str::to_owned),
            skip: 0,
            always: true,
            torn: false,
        });
    }

    /// Makes every file, opened before or after, offer no [`FileSyncer`] from now on
    /// (`syncer()` returns `None`), as a file system without them would, so that the
    /// owner's fallback of syncing through the file itself is tested.
    pub fn hide_syncers(&self) {
        self.state().hide_syncers = true;
    }

    /// Disarms every fault; the counters are kept.
    pub fn heal(&self) {
        self.state().rules.clear();
    }

    /// How many `op`s were attempted so far, failed or not.
    #[must_use]
    pub fn count(&self, op: FaultOp) -> u64 {
        self.state()
            .counts
            .iter()
            .find(|(seen, _)| *seen == op)
            .map_or(0, |(_, count)| *count)
    }

    /// How many faults fired so far.
    #[must_use]
    pub fn injected(&self) -> u64 {
        self.state().injected
    }

    fn check(&self, op: FaultOp, path: &Path) -> io::Result<()> {
        match self.state().check(op, path) {
            Verdict::Pass => Ok(()),
            Verdict::Fail { .. } => Err(injected_error(op, path)),
        }
    }

    fn wrap(&self, path: &Path, file: Box<dyn WritableFile>) -> Box<dyn WritableFile> {
        Box::new(FaultyFile {
            inner: file,
            path: path.to_string_lossy().into_owned(),
            fs: self.clone(),
        })
    }
}

/// A file opened through [`FaultyFs`]: each write and sync first asks for a verdict.
struct FaultyFile {
    inner: Box<dyn WritableFile>,
    path: String,
    fs: FaultyFs,
}

impl fmt::Debug for FaultyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Write for FaultyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let path = Path::new(&self.path);
        let verdict = self.fs.state().check(FaultOp::Write, path);
        match verdict {
            Verdict::Pass => self.inner.write(buf),
            Verdict::Fail { torn } => {
                if torn {
                    self.inner.write_all(&buf[..buf.len() / 2])?;
                }
                Err(injected_error(FaultOp::Write, path))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl WritableFile for FaultyFile {
    fn sync_data(&mut self) -> io::Result<()> {
        self.fs.check(FaultOp::Sync, Path::new(&self.path))?;
        self.inner.sync_data()
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.fs.check(FaultOp::Sync, Path::new(&self.path))?;
        self.inner.sync_all()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.fs.check(FaultOp::Write, Path::new(&self.path))?;
        self.inner.set_len(len)
    }

    fn syncer(&self) -> io::Result<Option<Arc<dyn FileSyncer>>> {
        if self.fs.state().hide_syncers {
            return Ok(None);
        }
        let Some(inner) = self.inner.syncer()? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(FaultySyncer {
            inner,
            path: self.path.clone(),
            fs: self.fs.clone(),
        })))
    }
}

/// A [`FileSyncer`] of a [`FaultyFile`]: each sync first asks for a verdict, as
/// [`FaultOp::Sync`] on the file's path.
struct FaultySyncer {
    inner: Arc<dyn FileSyncer>,
    path: String,
    fs: FaultyFs,
}

impl fmt::Debug for FaultySyncer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultySyncer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileSyncer for FaultySyncer {
    fn sync_data(&self) -> io::Result<()> {
        self.fs.check(FaultOp::Sync, Path::new(&self.path))?;
        self.inner.sync_data()
    }
}

/// A file opened for positional reads through a [`FaultyFs`]: each read can fail.
struct FaultyReadFile {
    inner: Arc<dyn RandomAccessFile>,
    path: std::path::PathBuf,
    fs: FaultyFs,
}

impl fmt::Debug for FaultyReadFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyReadFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RandomAccessFile for FaultyReadFile {
    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        self.fs.check(FaultOp::Read, &self.path)?;
        self.inner.read_at(offset, len)
    }
}

impl FileSystem for FaultyFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        StdFs.create_dir_all(dir)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.check(FaultOp::Create, path)?;
        Ok(self.wrap(path, StdFs.create(path)?))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.check(FaultOp::Create, path)?;
        Ok(self.wrap(path, StdFs.open_append(path)?))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.check(FaultOp::Read, path)?;
        StdFs.read(path)
    }

    fn map(&self, path: &Path) -> io::Result<Bytes> {
        self.check(FaultOp::Read, path)?;
        StdFs.map(path)
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        self.check(FaultOp::Read, path)?;
        Ok(Arc::new(FaultyReadFile {
            inner: StdFs.open_read(path)?,
            path: path.to_path_buf(),
            fs: self.clone(),
        }))
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        StdFs.file_size(path)
    }

    fn exists(&self, path: &Path) -> bool {
        StdFs.exists(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        // A rename matches a path filter by either of its names.
        let verdict = {
            let mut state = self.state();
            let by_target = state.rules.iter().any(|rule| {
                rule.op == FaultOp::Rename
                    && rule
                        .path_contains
                        .as_deref()
                        .is_some_and(|needle| to.to_string_lossy().contains(needle))
            });
            state.check(FaultOp::Rename, if by_target { to } else { from })
        };
        match verdict {
            Verdict::Pass => StdFs.rename(from, to),
            Verdict::Fail { .. } => Err(injected_error(FaultOp::Rename, from)),
        }
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check(FaultOp::Remove, path)?;
        StdFs.remove_file(path)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        StdFs.list_dir(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(FaultOp::SyncDir, dir)?;
        StdFs.sync_dir(dir)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        StdFs.lock(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::filename::{current_path, log_path, manifest_path};
    use crate::version::manifest::{ManifestWriter, VersionEdit, read_current, replay_manifest};
    use crate::wal::{LogWriter, read_log};

    fn edit(log_number: u64) -> VersionEdit {
        VersionEdit {
            log_number: Some(log_number),
            ..VersionEdit::default()
        }
    }

    #[test]
    fn the_nth_write_fails_once_and_counts_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        let path = dir.path().join("f");
        let mut file = fs.create(&path).unwrap();
        fs.fail_nth(FaultOp::Write, 2);
        file.write_all(b"one").unwrap();
        assert!(file.write_all(b"two").is_err());
        file.write_all(b"three").unwrap();
        assert_eq!(fs.count(FaultOp::Write), 3);
        assert_eq!(fs.injected(), 1);
        assert_eq!(fs.read(&path).unwrap(), b"onethree");
        assert!(format!("{fs:?}").contains("injected: 1"));
    }

    #[test]
    fn path_filters_and_persistent_faults() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        fs.fail_always_on(FaultOp::Sync, Some(".log"));
        let mut log = fs.create(&dir.path().join("000001.log")).unwrap();
        let mut other = fs.create(&dir.path().join("000002.sst")).unwrap();
        for _ in 0..3 {
            assert!(log.sync_data().is_err());
            assert!(log.sync_all().is_err());
            other.sync_data().unwrap();
        }
        fs.heal();
        log.sync_data().unwrap();
        assert_eq!(fs.injected(), 6);

        fs.fail_always(FaultOp::Create);
        assert!(fs.create(&dir.path().join("x")).is_err());
        assert!(fs.open_append(&dir.path().join("000001.log")).is_err());
        fs.heal();
        fs.fail_nth(FaultOp::Remove, 1);
        fs.fail_nth(FaultOp::Read, 1);
        fs.fail_nth(FaultOp::SyncDir, 1);
        assert!(fs.remove_file(&dir.path().join("x")).is_err());
        assert!(fs.read(&dir.path().join("000001.log")).is_err());
        assert!(fs.sync_dir(dir.path()).is_err());
        fs.sync_dir(dir.path()).unwrap();
        assert!(fs.map(&dir.path().join("000001.log")).unwrap().is_empty());
    }

    #[test]
    fn syncers_fail_with_their_file_and_can_be_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        let mut log = fs.create(&dir.path().join("000001.log")).unwrap();
        let syncer = log.syncer().unwrap().expect("a syncer of a real file");
        log.write_all(b"data").unwrap();
        syncer.sync_data().unwrap();
        fs.fail_always_on(FaultOp::Sync, Some(".log"));
        assert!(syncer.sync_data().is_err());
        assert!(log.sync_data().is_err());
        assert_eq!((fs.count(FaultOp::Sync), fs.injected()), (3, 2));
        fs.heal();
        syncer.sync_data().unwrap();
        assert!(format!("{syncer:?}").contains("000001.log"));
        fs.hide_syncers();
        assert!(log.syncer().unwrap().is_none());
    }

    #[test]
    fn a_torn_write_leaves_half_a_record_that_reads_as_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        let path = log_path(dir.path(), 1);
        let mut log = LogWriter::new(fs.create(&path).unwrap());
        log.append([b"kept"]).unwrap();
        fs.tear_nth_write_on(1, Some(".log"));
        assert!(log.append([&[7u8; 100][..]]).is_err());
        assert!(log.append([b"refused"]).is_err());
        let replay = read_log(Bytes::from(fs.read(&path).unwrap()), "000001.log").unwrap();
        assert_eq!(replay.records, vec![Bytes::from_static(b"kept")]);
        assert_eq!(replay.torn_tail_at, Some(11));
    }

    #[test]
    fn every_failure_while_creating_a_manifest_leaves_current_on_the_old_one() {
        let ops = [
            FaultOp::Create,
            FaultOp::Write,
            FaultOp::Sync,
            FaultOp::SyncDir,
            FaultOp::Rename,
        ];
        for op in ops {
            for n in 1..=3 {
                let dir = tempfile::tempdir().unwrap();
                let fs = FaultyFs::new();
                let shared: Arc<dyn FileSystem> = Arc::new(fs.clone());
                ManifestWriter::create(
                    Arc::clone(&shared),
                    dir.path(),
                    1,
                    std::slice::from_ref(&edit(1)),
                )
                .unwrap();
                fs.fail_nth(op, n);
                let result = ManifestWriter::create(
                    Arc::clone(&shared),
                    dir.path(),
                    2,
                    std::slice::from_ref(&edit(2)),
                );
                let context = format!("{op:?} #{n}");
                if fs.injected() == 0 {
                    // The manifest switch does fewer than n such operations.
                    result.unwrap();
                    continue;
                }
                let err = result.unwrap_err();
                assert!(matches!(err, Error::Io(_)), "{context}: {err}");
                fs.heal();
                // CURRENT names one complete manifest: the old one, or the new one only if
                // the failure came after the rename (the last directory sync).
                let current = read_current(&fs, dir.path()).unwrap().unwrap();
                let replayed = replay_manifest(&fs, dir.path(), current).unwrap();
                assert_eq!(replayed, vec![edit(current)], "{context}");
                if current == 2 {
                    assert_eq!(op, FaultOp::SyncDir, "{context}");
                }
            }
        }
    }

    #[test]
    fn a_failed_manifest_append_refuses_later_appends() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        let mut writer = ManifestWriter::create(
            Arc::new(fs.clone()),
            dir.path(),
            3,
            std::slice::from_ref(&edit(1)),
        )
        .unwrap();
        fs.fail_nth_on(FaultOp::Sync, 1, Some("MANIFEST"));
        assert!(writer.append(&edit(2)).is_err());
        fs.heal();
        assert!(writer.append(&edit(3)).is_err());
        // The record whose sync failed may or may not be on disk; it is never followed
        // by a later one.
        let replayed = replay_manifest(&fs, dir.path(), 3).unwrap();
        assert_eq!(replayed[0], edit(1));
        assert!(replayed.len() <= 2);
        assert!(current_path(dir.path()).exists());
        assert!(manifest_path(dir.path(), 3).exists());
    }

    #[test]
    fn a_rename_fault_can_target_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        let from = dir.path().join("a.tmp");
        drop(fs.create(&from).unwrap());
        fs.fail_nth_on(FaultOp::Rename, 1, Some("CURRENT"));
        assert!(fs.rename(&from, &dir.path().join("CURRENT")).is_err());
        fs.rename(&from, &dir.path().join("CURRENT")).unwrap();
        assert!(fs.exists(&dir.path().join("CURRENT")));
        assert_eq!(fs.file_size(&dir.path().join("CURRENT")).unwrap(), 0);
        assert_eq!(fs.list_dir(dir.path()).unwrap(), vec!["CURRENT".to_owned()]);
        fs.create_dir_all(&dir.path().join("sub")).unwrap();
        drop(fs.lock(&dir.path().join("LOCK")).unwrap());
        assert_eq!(fs.count(FaultOp::Rename), 2);
    }
}
