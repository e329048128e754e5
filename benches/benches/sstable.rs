//! placeholder until the sstable bench lands.
fn main() {}
