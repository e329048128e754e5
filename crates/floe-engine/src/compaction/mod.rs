//! Leveled compaction: choosing what to compact (`pick.rs`) and running it
//! (`compact.rs`), in the background worker or for [`crate::Db::compact`], with outputs
//! cut where the level below suggests (`grandparents.rs`).

pub(crate) mod compact;
mod grandparents;
pub(crate) mod pick;

pub(crate) use pick::CompactionState;
