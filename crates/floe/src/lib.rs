//! floe: an embedded LSM-tree key-value store. The public API arrives with the engine (issue 4).
