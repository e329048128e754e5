//! The write path: a [`WriteBatch`] from the caller to the log and the memtable, with
//! group commit, in-order publication, the memtable switch, write stalls and the syncs of
//! the log.
//!
//! `commit.rs` is the path itself; `queue.rs` the commit queue that writers and leaders
//! meet in; `log.rs` what the holder of the log mutex owns; `publish.rs` the in-order
//! publication of sequence numbers; `freeze.rs` the memtable switch with back-pressure;
//! `stall.rs` the level-0 write stalls; `log_sync.rs` `Db::sync` and the background log
//! sync, with `sync_gate.rs` the gate every segment sync passes; `segments.rs` the older
//! log segments still needed; `budget.rs` the memory count of all active memtables;
//! `batch.rs` the batch and its log payload; `options.rs` the options of one write.

pub(crate) mod batch;
mod budget;
mod commit;
mod freeze;
mod log;
pub(crate) mod log_sync;
mod options;
#[cfg_attr(
    not(floe_loom),
    expect(
        unreachable_pub,
        reason = "`Publisher` is public for the loom model, built only under `--cfg floe_loom`"
    )
)]
pub(crate) mod publish;
mod queue;
mod segments;
mod stall;
mod sync_gate;

pub use batch::WriteBatch;
pub(crate) use budget::MemoryBudget;
pub(crate) use log::LogState;
pub use options::WriteOptions;
pub(crate) use queue::CommitQueue;
pub(crate) use segments::Segments;
pub(crate) use sync_gate::SyncGate;
