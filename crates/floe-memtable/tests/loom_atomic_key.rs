//! loom models of [`AtomicKey`]: concurrent `fetch_min` and `fetch_max` end at the true
//! extremes (no lost update) and never read a reclaimed key, with 2 and 3 threads; and a
//! load-then-store variant that loom shows to lose updates.
//!
//! Run with `RUSTFLAGS="--cfg floe_loom --cfg crossbeam_loom" cargo test -p floe-memtable
//! --release --test loom_atomic_key` (what `cargo xtask loom` does).
#![cfg(floe_loom)]

use bytes::Bytes;
use floe_memtable::AtomicKey;
use floe_testkit::Executions;
use loom::sync::atomic::{AtomicPtr, Ordering};
use loom::sync::{Arc, Mutex};

/// The shape every variant shares, so the same model checks the real one and the broken one.
trait MinMax: Send + Sync + 'static {
    fn new(seed: Bytes) -> Self;
    fn fetch_min(&self, key: &Bytes);
    fn fetch_max(&self, key: &Bytes);
    fn load(&self) -> Option<Bytes>;
}

struct Real {
    min: AtomicKey,
    max: AtomicKey,
}

impl MinMax for Real {
    fn new(seed: Bytes) -> Self {
        Real {
            min: AtomicKey::with_key(seed.clone()),
            max: AtomicKey::with_key(seed),
        }
    }
    fn fetch_min(&self, key: &Bytes) {
        self.min.fetch_min(key);
    }
    fn fetch_max(&self, key: &Bytes) {
        self.max.fetch_max(key);
    }
    fn load(&self) -> Option<Bytes> {
        self.min.load()
    }
}

/// The broken variant: loads, compares, then stores, with no compare-and-swap. Two
/// threads can both load the old key and the second store undoes the first. Replaced keys
/// are kept until the variant is dropped, so only the lost update can go wrong.
struct LoadThenStore {
    min: AtomicPtr<Bytes>,
    max: AtomicPtr<Bytes>,
    #[expect(
        clippy::vec_box,
        reason = "the boxes must stay at their addresses: other threads may still read them"
    )]
    replaced: Mutex<Vec<Box<Bytes>>>,
}

impl LoadThenStore {
    fn update(&self, slot: &AtomicPtr<Bytes>, key: &Bytes, wins: std::cmp::Ordering) {
        let current = slot.load(Ordering::Acquire);
        // SAFETY: slots are freed only when the variant is dropped.
        if key.cmp(unsafe { &*current }) != wins {
            return;
        }
        let old = slot.swap(Box::into_raw(Box::new(key.clone())), Ordering::AcqRel);
        // SAFETY: `old` came from `Box::into_raw` and was unlinked by the swap.
        self.replaced
            .lock()
            .unwrap()
            .push(unsafe { Box::from_raw(old) });
    }

    fn read(&self, slot: &AtomicPtr<Bytes>) -> Option<Bytes> {
        // SAFETY: as in `update`.
        Some(unsafe { &*slot.load(Ordering::Acquire) }.clone())
    }
}

impl Drop for LoadThenStore {
    fn drop(&mut self) {
        for slot in [&self.min, &self.max] {
            // SAFETY: `&mut self`: no other thread can reach the slots.
            drop(unsafe { Box::from_raw(slot.load(Ordering::Relaxed)) });
        }
    }
}

impl MinMax for LoadThenStore {
    fn new(seed: Bytes) -> Self {
        LoadThenStore {
            min: AtomicPtr::new(Box::into_raw(Box::new(seed.clone()))),
            max: AtomicPtr::new(Box::into_raw(Box::new(seed))),
            replaced: Mutex::new(Vec::new()),
        }
    }
    fn fetch_min(&self, key: &Bytes) {
        self.update(&self.min, key, std::cmp::Ordering::Less);
    }
    fn fetch_max(&self, key: &Bytes) {
        self.update(&self.max, key, std::cmp::Ordering::Greater);
    }
    fn load(&self) -> Option<Bytes> {
        self.read(&self.min)
    }
}

impl Real {
    fn max(&self) -> Option<Bytes> {
        self.max.load()
    }
}

/// How much each modelled thread does besides its two updates.
#[derive(Clone, Copy)]
struct Work {
    /// Read the minimum back after the updates: a read that may race with the
    /// reclamation of the key it reads.
    read: bool,
}

/// Thread `i` lowers and raises the key with `keys[i]` (after the main thread set "m");
/// the main thread checks the final extremes. Each execution explored is recorded in
/// `executions`.
fn model<T: MinMax>(
    executions: &Executions,
    keys: &'static [&'static [u8]],
    preemptions: usize,
    work: Work,
    max_of: fn(&T) -> Option<Bytes>,
) {
    let counter = executions.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.check(move || {
        counter.record();
        // A first key before the threads start, so their updates replace (and retire) it.
        // The main thread never pins: a model that fails unwinds through it, and the model
        // collector (a loom lazy static) must not be touched after the execution.
        let cell = Arc::new(T::new(Bytes::from_static(b"m")));
        let handles: Vec<_> = keys
            .iter()
            .map(|key| {
                let cell = cell.clone();
                loom::thread::spawn(move || {
                    let key = Bytes::from_static(key);
                    cell.fetch_min(&key);
                    cell.fetch_max(&key);
                    let seen = work.read.then(|| cell.load());
                    (key, seen)
                })
            })
            .collect();
        let reads: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let checker = cell.clone();
        let (min, max) = loom::thread::spawn(move || (checker.load(), max_of(&checker)))
            .join()
            .unwrap();
        // Drop every loom object before asserting: a panic that unwinds through loom
        // objects aborts the process instead of failing the model.
        drop(cell);
        for (key, seen) in reads {
            if let Some(seen) = seen {
                let seen = seen.expect("the minimum was set before the threads started");
                assert!(seen <= key, "the minimum went above a key already written");
            }
        }
        let true_min = keys.iter().copied().chain([&b"m"[..]]).min().unwrap();
        let true_max = keys.iter().copied().chain([&b"m"[..]]).max().unwrap();
        assert_eq!(min.as_deref(), Some(true_min), "lost update of the minimum");
        assert_eq!(max.as_deref(), Some(true_max), "lost update of the maximum");
    });
}

#[test]
fn min_max_two_threads() {
    let executions = Executions::start();
    let work = Work { read: true };
    model::<Real>(&executions, &[b"c", b"x"], 4, work, Real::max);
    executions.report("atomic_key 2 threads", 4);
}

#[test]
fn min_max_three_threads() {
    let executions = Executions::start();
    let work = Work { read: true };
    model::<Real>(&executions, &[b"c", b"x", b"a"], 3, work, Real::max);
    executions.report("atomic_key 3 threads", 3);
}

#[test]
fn load_then_store_loses_updates() {
    let executions = Executions::start();
    let work = Work { read: false };
    let outcome = std::panic::catch_unwind(|| {
        model::<LoadThenStore>(&executions, &[b"c", b"a"], 1, work, |cell| {
            cell.read(&cell.max)
        })
    });
    executions.report("atomic_key broken (load then store)", 1);
    assert!(
        outcome.is_err(),
        "loom did not find the lost update of the load-then-store variant"
    );
}
