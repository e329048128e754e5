//! Leveled compaction: choosing what to compact (`pick.rs`) and running it
//! (`compact.rs`), in the background worker or for [`crate::Db::compact`].

pub(crate) mod compact;
pub(crate) mod pick;

pub(crate) use pick::CompactionState;
