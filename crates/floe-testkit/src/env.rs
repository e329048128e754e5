//! Knobs that tests read from the environment: run lengths, switches, and the arguments a
//! test passes to a child process it re-executes.

use std::str::FromStr;

/// The value of the environment variable `name` as a number, or `default` when unset.
///
/// # Panics
/// If the variable is set but is not a number (surrounding white space is allowed).
#[track_caller]
#[must_use]
pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {text:?}")),
        Err(_) => default,
    }
}

/// Whether the environment variable `name` is set to something other than `0` or empty.
#[must_use]
pub fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The value of the environment variable `name`, which must be set: how a child process
/// that a test re-executes reads the arguments its parent passed.
///
/// # Panics
/// If the variable is unset or does not parse as a `T`.
#[track_caller]
#[must_use]
pub fn env_required<T: FromStr>(name: &str) -> T {
    let text = std::env::var(name).unwrap_or_else(|_| panic!("child: {name} is not set"));
    text.parse()
        .unwrap_or_else(|_| panic!("child: {name} is not valid: {text:?}"))
}
