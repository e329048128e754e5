//! Test helpers shared by floe's crates, so that every randomized test, environment knob
//! and loom model behaves and reports the same way.
//!
//! - [`seed`]: the seed of a randomized test, from `FLOE_SEED` when set, printed so that
//!   a failing run replays.
//! - [`env_usize`], [`env_flag`], [`env_required`]: the knobs tests read from the
//!   environment (run lengths, sweep switches, a child process's arguments).
//! - [`Executions`]: counts the executions a loom model explores and prints the report
//!   line of `cargo xtask loom`.
//! - [`LargestAlloc`]: a global allocator for a test binary that shows that no damaged
//!   input makes a decoder allocate more than the input justifies.
//!
//! A dev-dependency only: no library or binary of the workspace depends on it.
//!
//! ```
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::SmallRng::seed_from_u64(floe_testkit::seed("doc_example"));
//! # let _ = rand::Rng::random::<u8>(&mut rng);
//! ```

mod alloc;
mod env;
mod executions;
mod seed;

pub use alloc::LargestAlloc;
pub use env::{env_flag, env_required, env_usize};
pub use executions::Executions;
pub use seed::seed;
