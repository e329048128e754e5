//! criterion benchmarks of floe live in `benches/`; this library is empty by design: cargo needs a target to hang them on.
