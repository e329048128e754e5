//! The lock-free memtable of floe.
