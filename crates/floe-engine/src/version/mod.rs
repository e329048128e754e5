//! What the database is made of at a moment: the state that reads load (memtables and the
//! tables of each level), the handles of the table files, and the manifest that records
//! the tables on disk.

pub(crate) mod manifest;
pub(crate) mod state;
pub(crate) mod table;
