//! What the database is made of at a moment: the state that reads load (memtables and the
//! tables of each level) with the one way to replace it, the handles of the table files,
//! and the manifest that records the tables on disk.

mod levels;
pub(crate) mod manifest;
mod state;
mod table;

pub(crate) use levels::{NUM_LEVELS, Version, version_from};
pub(crate) use state::{ActiveMem, CurrentState, FrozenMem, State, Tree, as_slice_bound};
pub(crate) use table::{TableHandle, TableReads, TableWriter};
