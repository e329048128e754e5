//! Unit tests of the engine as a whole: the write path, freeze and flush, back-pressure,
//! poisoning, recovery and compaction.

mod lifecycle;
mod poison;
mod write_path;

use crate::{Db, Options};

/// Options that force frequent freezes and flushes.
fn tiny() -> Options {
    Options::default().write_buffer_size(1024).block_size(64)
}

/// Opens a database in `dir` with `options`, panicking on failure.
fn open(dir: &std::path::Path, options: Options) -> Db {
    Db::open_with(dir, options).expect("open")
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
