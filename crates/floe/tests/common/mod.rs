//! Helpers shared by the contract-level suites: a `BTreeMap` reference model and ways to
//! drain a [`floe::Iter`] into plain vectors. Seeds and environment knobs come from
//! `floe-testkit`.
//!
//! Each suite declares `pub mod common;` so that helpers one suite leaves unused are not
//! reported as dead code.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use floe::{Error, Iter, Options};

/// The reference model: user key to value, in the same byte order floe uses.
pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// One key/value pair as plain vectors, so results compare directly with the model.
pub type Pair = (Vec<u8>, Vec<u8>);

/// Options with a tiny write buffer and block size, so that a few hundred writes already
/// produce several flushes, tables with many blocks and compactions.
pub fn tiny_options() -> Options {
    Options::default().write_buffer_size(1024).block_size(64)
}

/// Drains `iter` front to back, panicking on the first error (with `what` in the message).
pub fn collect(iter: Iter, what: &str) -> Vec<Pair> {
    iter.map(|item| {
        let (k, v) = item.unwrap_or_else(|e| panic!("{what}: iterator error: {e}"));
        (k.to_vec(), v.to_vec())
    })
    .collect()
}

/// Drains `iter` back to front, panicking on the first error (with `what` in the message).
pub fn collect_rev(iter: Iter, what: &str) -> Vec<Pair> {
    iter.rev()
        .map(|item| {
            let (k, v) = item.unwrap_or_else(|e| panic!("{what}: iterator error: {e}"));
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// The pairs of `model` whose keys lie in `range`, ascending.
pub fn model_range(model: &Model, range: (Bound<&[u8]>, Bound<&[u8]>)) -> Vec<Pair> {
    // BTreeMap::range panics on a reversed or empty-exclusive range, while floe must
    // simply return nothing for them, so the model filters instead of calling `range`.
    model
        .iter()
        .filter(|(k, _)| RangeBounds::<[u8]>::contains(&range, k.as_slice()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The pairs of `model` whose keys start with `prefix`, ascending.
pub fn model_prefix(model: &Model, prefix: &[u8]) -> Vec<Pair> {
    model
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// All pairs of `model`, ascending.
pub fn model_all(model: &Model) -> Vec<Pair> {
    model.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Whether `err` is [`Error::Corruption`].
pub fn is_corruption(err: &Error) -> bool {
    matches!(err, Error::Corruption { .. })
}

/// A short printable form of a key or value for failure messages: text when it is
/// printable ASCII, otherwise hex; long ones are cut.
pub fn show(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(48)];
    let more = if bytes.len() > cut.len() {
        format!("..({} bytes)", bytes.len())
    } else {
        String::new()
    };
    if cut.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{:?}{more}", String::from_utf8_lossy(cut))
    } else {
        let hex: String = cut.iter().map(|b| format!("{b:02x}")).collect();
        format!("0x{hex}{more}")
    }
}

/// Describes the first difference between `got` and `want`, or `None` when they are equal.
pub fn first_difference(got: &[Pair], want: &[Pair]) -> Option<String> {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g != w {
            return Some(format!(
                "at position {i}: got ({}, {}), want ({}, {})",
                show(&g.0),
                show(&g.1),
                show(&w.0),
                show(&w.1)
            ));
        }
    }
    match got.len().cmp(&want.len()) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Less => Some(format!(
            "{} pairs instead of {}; first missing key {}",
            got.len(),
            want.len(),
            show(&want[got.len()].0)
        )),
        std::cmp::Ordering::Greater => Some(format!(
            "{} pairs instead of {}; first extra key {}",
            got.len(),
            want.len(),
            show(&got[want.len()].0)
        )),
    }
}

/// Asserts that `got` equals `want`, naming the first difference and `what` on failure.
#[track_caller]
pub fn assert_pairs(got: &[Pair], want: &[Pair], what: &str) {
    if let Some(diff) = first_difference(got, want) {
        panic!("{what}: {diff}");
    }
}
