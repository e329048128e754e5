//! The engines of the `transactions` workload: each one's optimistic transactions on one
//! keyspace, with commits that reach the operating system before they return and are not
//! fsynced (floe's default `sync(false)`, fjall's `PersistMode::Buffer` for write
//! transactions, RocksDB's default `WriteOptions`).

use std::path::Path;

use anyhow::bail;

use super::super::engine::{EngineKind, EngineOptions, copy_found};
use super::super::fjall::{keyspace_options, with_database_options};

/// What a commit came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Commit {
    /// Every write of the transaction was applied.
    Done,
    /// Another write touched what the transaction read or wrote; nothing was applied.
    Conflict,
}

/// A database of an engine with optimistic transactions, one keyspace of it, as the
/// `transactions` workload sees it. Every method takes `&self`: the workload runs
/// transactions from several threads at once.
pub(super) trait TxEngine: Send + Sync {
    /// Writes every pair of `entries` in one commit (the untimed load).
    ///
    /// # Errors
    /// The engine's error.
    fn load(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> anyhow::Result<()>;

    /// Begins a transaction at a snapshot of the present.
    ///
    /// # Errors
    /// The engine's error.
    fn begin(&self) -> anyhow::Result<Box<dyn Tx + '_>>;

    /// Looks `key` up outside any transaction, as [`super::super::Engine::get`] does.
    ///
    /// # Errors
    /// The engine's error.
    fn get(&self, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool>;

    /// Moves every acknowledged write out of the memtable into a table file.
    ///
    /// # Errors
    /// The engine's error.
    fn flush(&self) -> anyhow::Result<()>;

    /// Finishes background work and releases the directory.
    ///
    /// # Errors
    /// The engine's error.
    fn close(self: Box<Self>) -> anyhow::Result<()>;
}

/// One optimistic transaction: its reads are validated at commit.
pub(super) trait Tx {
    /// Reads `key` as the transaction sees it, as [`super::super::Engine::get`] does, and
    /// makes the commit conflict if anyone else writes it meanwhile.
    ///
    /// # Errors
    /// The engine's error.
    fn get(&mut self, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool>;

    /// Writes `value` under `key` when the transaction commits.
    ///
    /// # Errors
    /// The engine's error.
    fn put(&mut self, key: &[u8], value: &[u8]) -> anyhow::Result<()>;

    /// Applies the writes atomically, or reports a conflict and applies nothing.
    ///
    /// # Errors
    /// Any error of the engine other than a conflict.
    fn commit(self: Box<Self>) -> anyhow::Result<Commit>;
}

/// Opens (creating) a transactional database of `kind` at `path`; every engine gets the
/// same write buffer and unsynced commits (`options.sync` is not used).
///
/// # Errors
/// The engine's error, or an explanation if the engine is not in this build.
pub(super) fn open(
    kind: EngineKind,
    path: &Path,
    options: EngineOptions,
) -> anyhow::Result<Box<dyn TxEngine>> {
    match kind {
        EngineKind::Floe => Ok(Box::new(FloeTx::open(path, options)?)),
        EngineKind::Fjall => Ok(Box::new(FjallTx::open(path, options)?)),
        #[cfg(feature = "rocksdb")]
        EngineKind::RocksDb => Ok(Box::new(rocks::RocksTx::open(path, options)?)),
        #[cfg(not(feature = "rocksdb"))]
        EngineKind::RocksDb => bail!("this floe-bench was built without RocksDB"),
    }
}

/// floe's `Db::transaction` on the default keyspace.
#[derive(Debug)]
struct FloeTx {
    keyspace: floe::Keyspace,
    db: floe::Db,
}

impl FloeTx {
    fn open(path: &Path, options: EngineOptions) -> anyhow::Result<FloeTx> {
        let db = floe::Db::open_with(
            path,
            super::super::floe::options(EngineOptions {
                sync: false,
                ..options
            }),
        )?;
        Ok(FloeTx {
            keyspace: db.default_keyspace(),
            db,
        })
    }
}

/// A floe transaction and the keyspace it works in.
struct FloeTransaction<'a> {
    tx: floe::Transaction,
    keyspace: &'a floe::Keyspace,
}

impl TxEngine for FloeTx {
    fn load(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> anyhow::Result<()> {
        let mut batch = floe::WriteBatch::new();
        for (key, value) in entries {
            batch.put(key, value);
        }
        Ok(self.db.write(batch)?)
    }

    fn begin(&self) -> anyhow::Result<Box<dyn Tx + '_>> {
        Ok(Box::new(FloeTransaction {
            tx: self.db.transaction(),
            keyspace: &self.keyspace,
        }))
    }

    fn get(&self, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool> {
        Ok(copy_found(self.db.get(key)?, value))
    }

    fn flush(&self) -> anyhow::Result<()> {
        Ok(self.db.flush()?)
    }

    fn close(self: Box<Self>) -> anyhow::Result<()> {
        let FloeTx { keyspace, db } = *self;
        drop(keyspace);
        Ok(db.close()?)
    }
}

impl Tx for FloeTransaction<'_> {
    fn get(&mut self, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool> {
        Ok(copy_found(self.tx.get(self.keyspace, key)?, value))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
        self.tx.put(self.keyspace, key, value);
        Ok(())
    }

    fn commit(self: Box<Self>) -> anyhow::Result<Commit> {
        match self.tx.commit() {
            Ok(()) => Ok(Commit::Done),
            Err(floe::Error::Conflict { .. }) => Ok(Commit::Conflict),
            Err(err) => Err(err.into()),
        }
    }
}

/// fjall 3's `OptimisticTxDatabase`, one keyspace, compression compiled out as in the
/// plain fjall adapter.
struct FjallTx {
    // The keyspace is declared first so that it is dropped before the database.
    keyspace: fjall::OptimisticTxKeyspace,
    db: fjall::OptimisticTxDatabase,
}

impl FjallTx {
    fn open(path: &Path, options: EngineOptions) -> anyhow::Result<FjallTx> {
        let db =
            with_database_options!(fjall::OptimisticTxDatabase::builder(path), options).open()?;
        let keyspace = db.keyspace("default", || keyspace_options(options))?;
        Ok(FjallTx { keyspace, db })
    }
}

/// A fjall write transaction and the keyspace it works in.
struct FjallTransaction<'a> {
    tx: fjall::OptimisticWriteTx,
    keyspace: &'a fjall::OptimisticTxKeyspace,
}

impl TxEngine for FjallTx {
    fn load(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> anyhow::Result<()> {
        // Blind inserts in one write transaction: nothing runs concurrently with the load.
        let mut tx = self.db.write_tx()?;
        for (key, value) in entries {
            tx.insert(&self.keyspace, key.as_slice(), value.as_slice());
        }
        match tx.commit()? {
            Ok(()) => Ok(()),
            Err(conflict) => bail!("fjall: the load conflicted: {conflict}"),
        }
    }

    fn begin(&self) -> anyhow::Result<Box<dyn Tx + '_>> {
        Ok(Box::new(FjallTransaction {
            tx: self.db.write_tx()?,
            keyspace: &self.keyspace,
        }))
    }

    fn get(&self, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool> {
        Ok(copy_found(self.keyspace.get(key)?, value))
    }

    fn flush(&self) -> anyhow::Result<()> {
        // As in the plain fjall adapter: seal the memtable and wait for its table.
        self.keyspace.inner().rotate_memtable_and_wait()?;
        Ok(())
    }

    fn close(self: Box<Self>) -> anyhow::Result<()> {
        let FjallTx { keyspace, db } = *self;
        drop(keyspace);
        drop(db);
        Ok(())
    }
}

impl Tx for FjallTransaction<'_> {
    fn get(&mut self, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool> {
        use fjall::Readable as _;
        Ok(copy_found(self.tx.get(self.keyspace, key)?, value))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
        self.tx.insert(self.keyspace, key, value);
        Ok(())
    }

    fn commit(self: Box<Self>) -> anyhow::Result<Commit> {
        Ok(match self.tx.commit()? {
            Ok(()) => Commit::Done,
            Err(fjall::Conflict) => Commit::Conflict,
        })
    }
}

/// RocksDB's `OptimisticTransactionDB` (cargo feature `rocksdb`).
#[cfg(feature = "rocksdb")]
mod rocks {
    use std::path::Path;

    use rocksdb::{
        ErrorKind, OptimisticTransactionDB, OptimisticTransactionOptions, Transaction,
        WriteBatchWithTransaction, WriteOptions,
    };

    use super::super::super::engine::{EngineOptions, copy_found};
    use super::super::super::rocksdb::base_options;
    use super::{Commit, Tx, TxEngine};

    /// The database with the options of the plain RocksDB adapter, and the options every
    /// transaction begins with.
    pub(super) struct RocksTx {
        db: OptimisticTransactionDB,
        begin: OptimisticTransactionOptions,
    }

    impl RocksTx {
        pub(super) fn open(path: &Path, options: EngineOptions) -> anyhow::Result<RocksTx> {
            let mut rocks = base_options(&options);
            // Validation looks writes since the snapshot up in the memtables; keep one
            // write buffer of flushed ones so that it can, instead of failing with
            // `TryAgain`.
            rocks.set_max_write_buffer_size_to_maintain(options.write_buffer as i64);
            let db = OptimisticTransactionDB::open(&rocks, path)?;
            let mut begin = OptimisticTransactionOptions::new();
            // Conflicts are checked against writes since the transaction began, as floe
            // and fjall check them, rather than since each key was first read.
            begin.set_snapshot(true);
            Ok(RocksTx { db, begin })
        }
    }

    /// A RocksDB optimistic transaction.
    struct RocksTransaction<'a> {
        tx: Transaction<'a, OptimisticTransactionDB>,
    }

    impl TxEngine for RocksTx {
        fn load(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> anyhow::Result<()> {
            let mut batch = WriteBatchWithTransaction::<true>::default();
            for (key, value) in entries {
                batch.put(key, value);
            }
            Ok(self.db.write_opt(batch, &WriteOptions::default())?)
        }

        fn begin(&self) -> anyhow::Result<Box<dyn Tx + '_>> {
            // `WriteOptions` is `Send` but not `Sync`, so each transaction makes its own
            // (RocksDB copies it when the transaction begins), as the plain adapter does
            // for each write.
            let write = WriteOptions::default();
            Ok(Box::new(RocksTransaction {
                tx: self.db.transaction_opt(&write, &self.begin),
            }))
        }

        fn get(&self, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool> {
            Ok(copy_found(self.db.get_pinned(key)?, value))
        }

        fn flush(&self) -> anyhow::Result<()> {
            Ok(self.db.flush()?)
        }

        fn close(self: Box<Self>) -> anyhow::Result<()> {
            drop(self);
            Ok(())
        }
    }

    impl Tx for RocksTransaction<'_> {
        fn get(&mut self, key: &[u8], value: &mut Vec<u8>) -> anyhow::Result<bool> {
            Ok(copy_found(self.tx.get_pinned_for_update(key, true)?, value))
        }

        fn put(&mut self, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
            Ok(self.tx.put(key, value)?)
        }

        fn commit(self: Box<Self>) -> anyhow::Result<Commit> {
            match self.tx.commit() {
                Ok(()) => Ok(Commit::Done),
                // `Busy`: a write since the snapshot; `TryAgain`: the memtables kept could
                // not tell. Either way nothing was applied and the transaction can rerun.
                Err(err) if matches!(err.kind(), ErrorKind::Busy | ErrorKind::TryAgain) => {
                    Ok(Commit::Conflict)
                }
                Err(err) => Err(err.into()),
            }
        }
    }
}
