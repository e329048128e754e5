//! placeholder until the memtable bench lands.
fn main() {}
