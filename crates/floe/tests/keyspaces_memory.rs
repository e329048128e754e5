//! One thousand keyspaces in one database, with the heap measured by a counting global
//! allocator: each open keyspace may cost a small fixed overhead, and the memtables of all
//! of them together stay within `Options::db_write_buffer_size`, however many keyspaces
//! share it.
//!
//! This binary holds this one test, so that the allocator sees nothing else. It prints the
//! measured figures. `FLOE_KS_COUNT` sets the number of keyspaces and `FLOE_KS_BULK_MB` the
//! megabytes written in the budget phase.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use floe::{Db, Keyspace, Options};

/// Forwards to the system allocator and counts the bytes live at any moment and the most
/// that were live at once since the last [`PeakAlloc::reset_peak`].
struct PeakAlloc {
    live: AtomicUsize,
    peak: AtomicUsize,
}

impl PeakAlloc {
    const fn new() -> PeakAlloc {
        PeakAlloc {
            live: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    fn grow(&self, bytes: usize) {
        let now = self.live.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn shrink(&self, bytes: usize) {
        self.live.fetch_sub(bytes, Ordering::Relaxed);
    }

    fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Starts a new measurement: the peak becomes what is live now, which it returns.
    fn reset_peak(&self) -> usize {
        let live = self.live();
        self.peak.store(live, Ordering::Relaxed);
        live
    }
}

// SAFETY: every method forwards to the system allocator with the caller's arguments
// unchanged, so the system allocator's guarantees are this allocator's guarantees; the
// only additions are atomic counters, which allocate nothing.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            self.grow(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged, as for `alloc`. Forwarding (rather than the default
        // `alloc` and a fill) keeps the system's lazily zeroed pages lazy.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.grow(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout, via the methods above.
        unsafe { System.dealloc(ptr, layout) };
        self.shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `ptr` came from this allocator with `layout`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                self.grow(new_size - layout.size());
            } else {
                self.shrink(layout.size() - new_size);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc::new();

/// A field of `/proc/self/status` in KiB (`VmHWM`, `VmRSS`) or as a count (`Threads`);
/// `None` where there is no such file.
fn proc_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len() + 1..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

const MIB: usize = 1 << 20;

/// The total memtable budget the database is opened with.
const BUDGET: usize = 4 * MIB;

/// What one open keyspace may cost beyond its share of the budget: its memtable's
/// skiplist head and first arena chunk, its version and level bookkeeping, a handle, and
/// the reader of a small table or two. Generous for that; far below a memtable allocated
/// at its full size, a per-keyspace cache or a thread with a heap buffer per keyspace.
const PER_KEYSPACE: usize = 64 << 10;

/// The database's fixed costs that do not depend on the keyspaces (the log, the manifest,
/// thread buffers) and the test's own data (names, handles, the values it builds).
const BASE: usize = 16 * MIB;

/// How many keys each keyspace gets in the first phase.
const KEYS: usize = 4;

fn name(n: usize) -> String {
    format!("keyspace-{n:04}")
}

fn value(n: usize, key: usize) -> Vec<u8> {
    let mut value = format!("keyspace {n} key {key}:").into_bytes();
    value.resize(100, b'v');
    value
}

fn check_small_keys(ks: &Keyspace, n: usize, what: &str) {
    for key in 0..KEYS {
        let got = ks
            .get(format!("k{key}"))
            .unwrap_or_else(|e| panic!("{what}: {}: get: {e}", ks.name()));
        assert_eq!(
            got.as_deref(),
            Some(value(n, key).as_slice()),
            "{what}: {} key k{key}",
            ks.name()
        );
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / MIB as f64
}

/// Catches a per-keyspace cost that grows with the write buffer (a memtable or arena
/// allocated at its full size for each keyspace), and a memtable budget that is enforced
/// per keyspace rather than over all of them.
#[test]
fn a_thousand_keyspaces_stay_within_the_memtable_budget_plus_a_small_overhead_each() {
    let count = floe_testkit::env_usize("FLOE_KS_COUNT", 1000);
    let bulk = floe_testkit::env_usize("FLOE_KS_BULK_MB", 24) * MIB;
    let dir = tempfile::tempdir().unwrap();
    // Each keyspace keeps the default write buffer (64 MiB): only the shared budget may
    // bound the memtables. The bound on kept log segments is set far away, so that it
    // does not flush the keyspaces for its own reasons and hide what the budget does.
    let options = Options::default()
        .db_write_buffer_size(BUDGET)
        .max_total_wal_size(1 << 30);
    let rss_before = proc_status("VmRSS:");
    let base = ALLOC.reset_peak();

    // Phase 1: create the keyspaces, write a few keys into each, read them back.
    let started = Instant::now();
    let db = Db::open_with(dir.path(), options.clone()).expect("open");
    let handles: Vec<Keyspace> = (0..count)
        .map(|n| {
            let ks = db
                .keyspace(&name(n))
                .unwrap_or_else(|e| panic!("create {}: {e}", name(n)));
            for key in 0..KEYS {
                ks.put(format!("k{key}"), value(n, key))
                    .unwrap_or_else(|e| panic!("{}: put: {e}", name(n)));
            }
            ks
        })
        .collect();
    for (n, ks) in handles.iter().enumerate() {
        check_small_keys(ks, n, "after the writes");
    }
    assert_eq!(
        db.keyspace_names().len(),
        count + 1,
        "the keyspaces and default"
    );
    let phase1_time = started.elapsed();
    let phase1_peak = ALLOC.peak() - base;
    let phase1_retained = ALLOC.live().saturating_sub(base);
    let threads = proc_status("Threads:");

    drop(handles);
    db.close().expect("close");

    // Phase 2: reopen and read every keyspace back.
    let started = Instant::now();
    let phase2_base = ALLOC.reset_peak();
    let db = Db::open_with(dir.path(), options).expect("reopen");
    assert_eq!(
        db.keyspace_names().len(),
        count + 1,
        "the keyspaces and default after reopen"
    );
    let handles: Vec<Keyspace> = (0..count)
        .map(|n| {
            let ks = db
                .keyspace(&name(n))
                .unwrap_or_else(|e| panic!("open {}: {e}", name(n)));
            check_small_keys(&ks, n, "after reopen");
            ks
        })
        .collect();
    let phase2_time = started.elapsed();
    let phase2_peak = ALLOC.peak() - phase2_base;

    // Phase 3: with every keyspace open, write many times the budget into a few of them,
    // each far below its own write buffer: only the shared budget can make them flush.
    let started = Instant::now();
    let phase3_base = ALLOC.reset_peak();
    let chunk = vec![b'b'; 8 << 10];
    let targets = 8.min(count);
    let bulk_puts = bulk / chunk.len();
    for i in 0..bulk_puts {
        let ks = &handles[i % targets];
        ks.put(format!("bulk{i:07}"), &chunk)
            .unwrap_or_else(|e| panic!("{}: bulk put {i}: {e}", ks.name()));
    }
    let phase3_time = started.elapsed();
    let phase3_growth = ALLOC.peak() - phase3_base;
    for i in (0..bulk_puts).step_by(97) {
        let got = handles[i % targets].get(format!("bulk{i:07}")).unwrap();
        assert_eq!(got.as_deref(), Some(chunk.as_slice()), "bulk key {i}");
    }
    drop(handles);
    db.close().expect("close");

    let per_keyspace = phase1_retained / count.max(1);
    println!(
        "{count} keyspaces, budget {:.1} MiB: phase 1 (create, write {KEYS} keys each, read) \
         peak heap {:.1} MiB, {:.1} MiB held with every keyspace open ({per_keyspace} bytes \
         per keyspace), {threads:?} threads, {phase1_time:.2?}; phase 2 (reopen, read back) \
         peak heap {:.1} MiB, {phase2_time:.2?}; phase 3 ({} MiB into {targets} keyspaces) \
         peak growth {:.1} MiB, {phase3_time:.2?}; peak RSS {:?} KiB (RSS {rss_before:?} KiB \
         before)",
        mib(BUDGET),
        mib(phase1_peak),
        mib(phase1_retained),
        mib(phase2_peak),
        bulk / MIB,
        mib(phase3_growth),
        proc_status("VmHWM:"),
    );

    // Every bound is checked before any failure is reported, so that one run shows them all.
    let bound = BASE + BUDGET + count * PER_KEYSPACE;
    let mut over = Vec::new();
    if phase1_peak > bound {
        over.push(format!(
            "{count} keyspaces with {KEYS} small keys each took a peak of {:.1} MiB of heap, \
             over the {:.1} MiB that the budget ({:.1} MiB), {} KiB per keyspace and {:.1} MiB \
             of fixed costs allow ({per_keyspace} bytes held per keyspace)",
            mib(phase1_peak),
            mib(bound),
            mib(BUDGET),
            PER_KEYSPACE >> 10,
            mib(BASE)
        ));
    }
    // The active memtables stay within the budget; at most `max_immutable_memtables` (two)
    // frozen ones, each no larger than the budget, may wait beside them, plus the write
    // path's and the flushes' own buffers.
    let growth_bound = 3 * BUDGET + 8 * MIB;
    if phase3_growth > growth_bound {
        over.push(format!(
            "writing {} MiB into {targets} of {count} keyspaces grew the heap by {:.1} MiB, \
             over the {:.1} MiB that a {:.1} MiB memtable budget allows",
            bulk / MIB,
            mib(phase3_growth),
            mib(growth_bound),
            mib(BUDGET)
        ));
    }
    if phase2_peak > bound + 2 * BUDGET {
        over.push(format!(
            "reopening {count} keyspaces took a peak of {:.1} MiB of heap, over {:.1} MiB",
            mib(phase2_peak),
            mib(bound + 2 * BUDGET)
        ));
    }
    assert!(over.is_empty(), "{}", over.join("; "));
}
