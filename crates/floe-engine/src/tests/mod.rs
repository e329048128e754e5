//! Unit tests of the engine as a whole: the write path, freeze and flush, back-pressure,
//! poisoning, the background log sync, recovery, read-only open and compaction.

mod background_sync;
mod block_cache;
mod checkpoint;
mod compaction;
mod events;
mod hostile_files;
mod keyspaces;
mod lifecycle;
mod option_limits;
mod poison;
mod power_loss;
mod read_only;
mod write_path;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use floe_core::fs::{FileSystem, StdFs};
use floe_core::{InternalKey, ValueKind};
use floe_sstable::TableOptions;

use crate::version::{TableHandle, TableWriter};
use crate::{Db, Options};

/// Options that force frequent freezes and flushes.
fn tiny() -> Options {
    Options::default().write_buffer_size(1024).block_size(64)
}

/// Small memtables, tables and levels, so that a few thousand writes flush and compact
/// through several levels.
fn leveled() -> Options {
    Options::default()
        .write_buffer_size(1024)
        .block_size(128)
        .target_file_size(2048)
        .l0_compaction_trigger(2)
        .max_bytes_for_level_base(8 << 10)
        .level_size_multiplier(2)
}

/// Opens a database in `dir` with `options`, panicking on failure.
fn open(dir: &std::path::Path, options: Options) -> Db {
    Db::open_with(dir, options).expect("open")
}

/// The names of the temporary files (`*.tmp`) in `dir`.
fn temp_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect()
}

/// Every key-value pair of `db`, as owned vectors.
fn dump(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.iter()
        .map(|item| {
            let (k, v) = item.expect("iter");
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

#[test]
fn public_types_have_the_contract_auto_traits() {
    fn send_sync_static<T: Send + Sync + 'static>() {}
    fn send<T: Send>() {}
    send_sync_static::<Db>();
    send_sync_static::<crate::Snapshot>();
    send_sync_static::<crate::Error>();
    send::<crate::Iter>();
    fn clone_debug_default<T: Clone + std::fmt::Debug + Default>() {}
    clone_debug_default::<Options>();
    clone_debug_default::<crate::WriteBatch>();
}

/// Builds tables in a temporary directory, numbering them in order.
pub(crate) struct Tables {
    dir: tempfile::TempDir,
    fs: Arc<dyn FileSystem>,
    next: AtomicU64,
}

impl Tables {
    pub(crate) fn new() -> Tables {
        Tables {
            dir: tempfile::tempdir().unwrap(),
            fs: Arc::new(StdFs),
            next: AtomicU64::new(1),
        }
    }

    /// A table holding one version of each key in `first..=last` (`k000` style),
    /// with `pad` bytes of value each.
    pub(crate) fn table(&self, first: u32, last: u32, pad: usize) -> Arc<TableHandle> {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let options = TableOptions::default();
        let mut writer = TableWriter::create(&self.fs, self.dir.path(), number, options).unwrap();
        for i in first..=last {
            let key = InternalKey::new(format!("k{i:03}"), number, ValueKind::Put);
            writer.add(&key, &vec![b'v'; pad]).unwrap();
        }
        let file = writer.finish().unwrap();
        TableHandle::open(
            &self.fs,
            &crate::version::TableReads::new(None),
            self.dir.path(),
            file,
        )
        .unwrap()
    }
}
