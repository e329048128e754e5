//! The names of the files in a database directory, and the parser that recognizes them.
//!
//! Numbered files (logs, tables, manifests) draw their numbers from one counter, the
//! manifest's `next_file_number`, so a number names at most one live file of any kind (an
//! orphan's number can be drawn again, see the recovery module). The counter only moves
//! with checked arithmetic ([`number_after`], [`numbers_exhausted`]): `u64::MAX` has no
//! successor, and reaching it is [`Error::Corruption`], never a wrap. Numbers are printed
//! with at least six digits (`000042.log`) so that a directory listing sorts them in
//! creation order up to a million files; the parser accepts only the canonical spelling of
//! each number, so two different names never denote the same file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// The kinds of file that live in a database directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A write-ahead log segment, `000123.log`.
    Log(u64),
    /// An SSTable, `000123.sst`.
    Table(u64),
    /// A manifest, `MANIFEST-000123`.
    Manifest(u64),
    /// `CURRENT`, which names the live manifest.
    Current,
    /// `LOCK`, the advisory lock that keeps a second process out.
    Lock,
    /// A file being written before it is renamed into place: any name ending in `.tmp`
    /// (`CURRENT.tmp`, `000123.sst.tmp`). The payload is the whole file name. A temporary
    /// file left in the directory at open is the debris of a crash and may be removed.
    Temp(String),
}

/// The suffix of files written under a temporary name and renamed into place.
const TEMP_SUFFIX: &str = ".tmp";

/// Parses the canonical decimal spelling of a file number: at least six digits, and no
/// leading zero beyond what the six-digit padding puts there.
fn parse_number(digits: &str) -> Option<u64> {
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    // "0000042" would parse to the same number as "000042"; only one spelling is valid.
    (format!("{number:06}") == digits).then_some(number)
}

/// What kind of database file `name` is; `None` for a name floe never creates.
pub(crate) fn parse_file_name(name: &str) -> Option<FileKind> {
    if name.ends_with(TEMP_SUFFIX) && name.len() > TEMP_SUFFIX.len() {
        return Some(FileKind::Temp(name.to_owned()));
    }
    match name {
        "CURRENT" => return Some(FileKind::Current),
        "LOCK" => return Some(FileKind::Lock),
        _ => {}
    }
    if let Some(digits) = name.strip_prefix("MANIFEST-") {
        return parse_number(digits).map(FileKind::Manifest);
    }
    if let Some(digits) = name.strip_suffix(".log") {
        return parse_number(digits).map(FileKind::Log);
    }
    if let Some(digits) = name.strip_suffix(".sst") {
        return parse_number(digits).map(FileKind::Table);
    }
    None
}

/// The file-number counter's value once `what` has taken `number`: `number + 1`.
///
/// `Corruption` if `number` is `u64::MAX`, which has no successor. No database draws that
/// many numbers, so the number comes from a damaged manifest or from a file that does not
/// belong to the database; the message names `what`.
pub(crate) fn number_after(number: u64, what: impl fmt::Display) -> Result<u64> {
    number.checked_add(1).ok_or_else(|| {
        Error::corruption(format!(
            "{what} has file number {number}, the largest there is, so no file can be \
             numbered after it: the manifest is damaged or the file does not belong to \
             the database"
        ))
    })
}

/// The error for a file-number counter that stands at `next` and cannot move: file
/// numbers are exhausted. The counter starts past the numbers the manifest records, so it
/// gets there only from a damaged manifest.
pub(crate) fn numbers_exhausted(next: u64) -> Error {
    Error::corruption(format!(
        "file numbers are exhausted: the next one would be {next}, the largest there is, \
         which only a damaged manifest can lead to"
    ))
}

/// The file-number counter of an open database: the next number for a log, table or
/// manifest. It only moves forward, and never past `u64::MAX` (see
/// [`numbers_exhausted`]).
#[derive(Debug)]
pub(crate) struct FileNumbers {
    next: AtomicU64,
}

impl FileNumbers {
    /// A counter whose next number is `next`.
    pub(crate) fn new(next: u64) -> FileNumbers {
        FileNumbers {
            next: AtomicU64::new(next),
        }
    }

    /// Allocates a file number; `Corruption` once the counter is at `u64::MAX`, where
    /// `fetch_add` would wrap to numbers that older files still have. No database draws
    /// that many numbers: the counter starts there only if the manifest recorded a next
    /// file number near the largest there is, so the manifest is damaged.
    pub(crate) fn allocate(&self) -> Result<u64> {
        self.next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
            .map_err(numbers_exhausted)
    }

    /// The next number, which a manifest edit records as its next file number.
    pub(crate) fn peek(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// Moves the counter to `next`, for tests that run it out.
    #[cfg(test)]
    pub(crate) fn set(&self, next: u64) {
        self.next.store(next, Ordering::Relaxed);
    }
}

/// The file name (without directory) of manifest `number`: `MANIFEST-000007`.
pub(crate) fn manifest_file_name(number: u64) -> String {
    format!("MANIFEST-{number:06}")
}

/// The path of log segment `number`: `{dir}/000007.log`.
pub(crate) fn log_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.log"))
}

/// The path of table `number`: `{dir}/000007.sst`.
pub(crate) fn table_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.sst"))
}

/// The temporary path a table is written under before it is renamed to [`table_path`].
pub(crate) fn temp_table_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.sst{TEMP_SUFFIX}"))
}

/// The path of manifest `number`: `{dir}/MANIFEST-000007`.
pub(crate) fn manifest_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(manifest_file_name(number))
}

/// The path of `CURRENT`, which names the live manifest.
pub(crate) fn current_path(dir: &Path) -> PathBuf {
    dir.join("CURRENT")
}

/// The temporary path `CURRENT` is written under before it is renamed over `CURRENT`.
pub(crate) fn current_temp_path(dir: &Path) -> PathBuf {
    dir.join(format!("CURRENT{TEMP_SUFFIX}"))
}

/// The path of the directory's lock file.
pub(crate) fn lock_path(dir: &Path) -> PathBuf {
    dir.join("LOCK")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(path: &Path) -> &str {
        path.file_name().and_then(|n| n.to_str()).unwrap()
    }

    #[test]
    fn every_path_parses_back_to_its_kind() {
        let dir = Path::new("/db");
        for number in [0, 1, 42, 999_999, 1_000_000, u64::MAX] {
            assert_eq!(
                parse_file_name(name_of(&log_path(dir, number))),
                Some(FileKind::Log(number))
            );
            assert_eq!(
                parse_file_name(name_of(&table_path(dir, number))),
                Some(FileKind::Table(number))
            );
            assert_eq!(
                parse_file_name(name_of(&manifest_path(dir, number))),
                Some(FileKind::Manifest(number))
            );
            let temp = temp_table_path(dir, number);
            assert_eq!(
                parse_file_name(name_of(&temp)),
                Some(FileKind::Temp(name_of(&temp).to_owned()))
            );
        }
        assert_eq!(name_of(&log_path(dir, 7)), "000007.log");
        assert_eq!(name_of(&table_path(dir, 7)), "000007.sst");
        assert_eq!(name_of(&manifest_path(dir, 7)), "MANIFEST-000007");
        assert_eq!(
            parse_file_name(name_of(&current_path(dir))),
            Some(FileKind::Current)
        );
        assert_eq!(
            parse_file_name(name_of(&lock_path(dir))),
            Some(FileKind::Lock)
        );
        assert_eq!(
            parse_file_name(name_of(&current_temp_path(dir))),
            Some(FileKind::Temp("CURRENT.tmp".to_owned()))
        );
    }

    #[test]
    fn the_number_after_the_largest_is_an_error_naming_the_file() {
        assert_eq!(number_after(41, "x").unwrap(), 42);
        assert_eq!(number_after(u64::MAX - 1, "x").unwrap(), u64::MAX);
        let err = number_after(u64::MAX, "table 18446744073709551615.sst").unwrap_err();
        assert!(matches!(err, Error::Corruption { .. }), "{err}");
        assert!(
            err.to_string().contains("18446744073709551615.sst"),
            "{err}"
        );
    }

    #[test]
    fn foreign_and_non_canonical_names_are_not_recognized() {
        for name in [
            "",
            ".tmp",
            "7.log",
            "00007.log",
            "0000007.log",
            "+00007.log",
            "00000a.sst",
            "000007.sst.bak",
            "MANIFEST-",
            "MANIFEST-7",
            "MANIFEST-0000007",
            "MANIFEST-000007\n",
            "manifest-000007",
            "CURRENT\n",
            "current",
            "LOCK2",
            "000007.LOG",
            "99999999999999999999999.log",
            "README",
        ] {
            assert_eq!(parse_file_name(name), None, "{name:?}");
        }
    }
}
