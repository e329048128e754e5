//! The write path: a [`WriteBatch`] from the caller to the log and the memtable, with
//! group commit, in-order publication and the memtable switch.

pub(crate) mod batch;
pub(crate) mod commit;
pub(crate) mod publish;

pub use batch::WriteBatch;
