//! The sorted string table format of floe.
