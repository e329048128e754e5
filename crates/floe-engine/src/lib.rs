//! The floe storage engine.
