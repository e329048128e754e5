//! A history checker for transactions. Each randomized history runs a few transactions
//! on a handful of keys in two keyspaces, their operations (begin, get, range scan, put,
//! delete, commit or rollback) interleaved in a random order, with plain puts, deletes,
//! range deletes and flushes among them. Every transaction's reads (what each get and
//! scan returned) and writes are recorded, and the checker searches the serial orders of
//! the committed transactions and plain writes (respecting real time: one that finished
//! before another began comes first) for one that replays every recorded read exactly
//! and ends in the database's final state.
//!
//! The single-threaded histories are also run against a reference model of the promise:
//! reads see the snapshot at begin plus the transaction's own writes, and a commit that
//! wrote something conflicts exactly when a write committed after the transaction began
//! touched a key it read or wrote or a range it scanned. floe must give every
//! transaction the same outcome and every read the same result as the model.
//!
//! A checker that would pass without validation is worthless: the histories are made to
//! conflict often (both outcomes are counted and required), and the same histories run
//! against the model with validation switched off must make the checker refuse some.
//!
//! The seed is printed; `FLOE_SEED` replays every history (the concurrent ones only in
//! what they attempt), and `FLOE_TXN_HISTORIES` sets how many run.

use std::collections::{BTreeMap, HashSet};
use std::ops::{Bound, RangeBounds};
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use floe::{Db, Error, Iter, Keyspace, Options, Transaction, WriteOptions};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A keyspace by index: 0 is `"default"`, 1 is `"side"`.
type Ks = usize;
type Range = (Bound<Vec<u8>>, Bound<Vec<u8>>);
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;
/// The whole database: (keyspace, key) to value.
type State = BTreeMap<(Ks, Vec<u8>), Vec<u8>>;

/// The keys that are written.
const KEYS: [&str; 5] = ["a", "b", "c", "d", "e"];
/// The keys range bounds are made of: the written ones and some between and beyond them.
/// No bound is another plus a trailing zero byte, so a range is empty exactly when its
/// bounds say so (see `ranges_meet`).
const BOUNDS: [&str; 8] = ["a", "b", "bb", "c", "d", "dd", "e", "f"];

/// A write: of a transaction (`Put`, `Delete`) or a plain one (any).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Write {
    Put(Ks, Vec<u8>, Vec<u8>),
    Delete(Ks, Vec<u8>),
    DeleteRange(Ks, Range),
}

/// One step of a single-threaded history's script.
#[derive(Debug, Clone)]
enum Step {
    Begin(usize),
    Get(usize, Ks, Vec<u8>),
    /// A scan: drained backwards if `reverse`, and with `lazy` not at once but just
    /// before the transaction's next step (after it, if that is its commit or rollback),
    /// other transactions' steps in between.
    Scan {
        tx: usize,
        ks: Ks,
        range: Range,
        reverse: bool,
        lazy: bool,
    },
    /// A write of a transaction (`Put` or `Delete`).
    Write(usize, Write),
    Commit(usize, bool),
    Rollback(usize),
    Plain(Write),
    Flush,
}

impl Step {
    fn tx(&self) -> Option<usize> {
        match self {
            Step::Begin(tx)
            | Step::Get(tx, ..)
            | Step::Scan { tx, .. }
            | Step::Write(tx, _)
            | Step::Commit(tx, _)
            | Step::Rollback(tx) => Some(*tx),
            Step::Plain(_) | Step::Flush => None,
        }
    }
}

/// What a transaction did, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Get(Ks, Vec<u8>, Option<Vec<u8>>),
    Scan(Ks, Range, Pairs),
    Write(Write),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Committed,
    Conflict,
    RolledBack,
}

/// A recorded transaction: when it began and when its commit or rollback returned (in
/// the history's clock), what it did, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TxRecord {
    begin: u64,
    end: u64,
    ops: Vec<Op>,
    outcome: Outcome,
}

/// A recorded history.
#[derive(Debug, Clone, PartialEq, Eq)]
struct History {
    initial: State,
    txs: Vec<TxRecord>,
    /// Plain writes, each with the clock before it was called and after it returned.
    plain: Vec<(u64, u64, Write)>,
    final_state: State,
}

// ---------------------------------------------------------------------------------------
// Ranges and the model's writes.

fn contains(range: &Range, key: &[u8]) -> bool {
    fn bound(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
        match b {
            Bound::Included(k) => Bound::Included(k.as_slice()),
            Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
            Bound::Unbounded => Bound::Unbounded,
        }
    }
    RangeBounds::<[u8]>::contains(&(bound(&range.0), bound(&range.1)), key)
}

/// Whether two ranges share a key: their intersection (the higher lower bound, the lower
/// upper bound) is not empty. (`Excluded(x)..Excluded(x + "\0")` holds no key but is
/// taken as not empty; no bound of these histories is like that.)
fn ranges_meet(a: &Range, b: &Range) -> bool {
    fn lower_rank(b: &Bound<Vec<u8>>) -> (u8, &[u8], u8) {
        const NONE: &[u8] = &[];
        match b {
            Bound::Unbounded => (0, NONE, 0),
            Bound::Included(k) => (1, k, 0),
            Bound::Excluded(k) => (1, k, 1),
        }
    }
    fn upper_rank(b: &Bound<Vec<u8>>) -> (u8, &[u8], u8) {
        const NONE: &[u8] = &[];
        match b {
            Bound::Excluded(k) => (0, k, 0),
            Bound::Included(k) => (0, k, 1),
            Bound::Unbounded => (1, NONE, 0),
        }
    }
    let lower = if lower_rank(&a.0) >= lower_rank(&b.0) {
        &a.0
    } else {
        &b.0
    };
    let upper = if upper_rank(&a.1) <= upper_rank(&b.1) {
        &a.1
    } else {
        &b.1
    };
    match (lower, upper) {
        (_, Bound::Unbounded) => true,
        (Bound::Unbounded, Bound::Excluded(u)) => !u.is_empty(),
        (Bound::Unbounded, Bound::Included(_)) => true,
        (Bound::Included(l), Bound::Included(u)) => l <= u,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u))
        | (Bound::Excluded(l), Bound::Included(u)) => l < u,
    }
}

fn apply(state: &mut State, write: &Write) {
    match write {
        Write::Put(ks, k, v) => {
            state.insert((*ks, k.clone()), v.clone());
        }
        Write::Delete(ks, k) => {
            state.remove(&(*ks, k.clone()));
        }
        Write::DeleteRange(ks, range) => state.retain(|(id, k), _| id != ks || !contains(range, k)),
    }
}

/// The pairs of `state` in keyspace `ks` within `range`, in key order.
fn scan_state(state: &State, ks: Ks, range: &Range) -> Pairs {
    state
        .iter()
        .filter(|((id, k), _)| *id == ks && contains(range, k))
        .map(|((_, k), v)| (k.clone(), v.clone()))
        .collect()
}

/// A transaction's own writes laid over `state`.
fn overlaid(state: &State, own: &[Write]) -> State {
    let mut view = state.clone();
    for write in own {
        apply(&mut view, write);
    }
    view
}

/// What a transaction touches: the keys it read or wrote and the ranges it scanned.
#[derive(Debug, Default, Clone)]
struct Footprint {
    points: Vec<(Ks, Vec<u8>)>,
    ranges: Vec<(Ks, Range)>,
}

impl Footprint {
    fn of(ops: &[Op]) -> Footprint {
        let mut footprint = Footprint::default();
        for op in ops {
            match op {
                Op::Get(ks, k, _) | Op::Write(Write::Put(ks, k, _) | Write::Delete(ks, k)) => {
                    footprint.points.push((*ks, k.clone()));
                }
                Op::Scan(ks, range, _) => footprint.ranges.push((*ks, range.clone())),
                Op::Write(Write::DeleteRange(..)) => unreachable!("a transaction's range delete"),
            }
        }
        footprint
    }

    fn touched_by(&self, write: &Write) -> bool {
        match write {
            Write::Put(ks, k, _) | Write::Delete(ks, k) => {
                self.points.iter().any(|(id, p)| id == ks && p == k)
                    || self.ranges.iter().any(|(id, r)| id == ks && contains(r, k))
            }
            Write::DeleteRange(ks, range) => {
                self.points
                    .iter()
                    .any(|(id, p)| id == ks && contains(range, p))
                    || self
                        .ranges
                        .iter()
                        .any(|(id, r)| id == ks && ranges_meet(r, range))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The checker.

/// One committed thing to place in a serial order.
enum Item<'h> {
    Tx(usize, &'h TxRecord),
    Plain(&'h Write),
}

/// Replays a transaction's recorded operations on `state`: `None` if a read differs.
fn replay(state: &State, ops: &[Op]) -> Option<State> {
    let mut view = state.clone();
    for op in ops {
        match op {
            Op::Get(ks, k, got) => {
                if view.get(&(*ks, k.clone())) != got.as_ref() {
                    return None;
                }
            }
            Op::Scan(ks, range, got) => {
                if scan_state(&view, *ks, range) != *got {
                    return None;
                }
            }
            Op::Write(write) => apply(&mut view, write),
        }
    }
    Some(view)
}

/// How much work a check took, for the report.
#[derive(Debug, Default)]
struct Work {
    placements: u64,
}

/// A serial order of the committed transactions and plain writes of `history`
/// (respecting real time) that replays every recorded read and ends in its final state,
/// as item descriptions; `None` if there is none.
fn serial_order(history: &History, work: &mut Work) -> Option<Vec<String>> {
    let mut items: Vec<(u64, u64, Item<'_>)> = Vec::new();
    for (i, tx) in history.txs.iter().enumerate() {
        if tx.outcome == Outcome::Committed {
            items.push((tx.begin, tx.end, Item::Tx(i, tx)));
        }
    }
    for (begin, end, write) in &history.plain {
        items.push((*begin, *end, Item::Plain(write)));
    }
    assert!(items.len() <= 32, "too many items for the search");
    // before[i]: the items that must come before item i (they ended before it began).
    let before: Vec<u32> = items
        .iter()
        .map(|(begin, _, _)| {
            items
                .iter()
                .enumerate()
                .filter(|(_, (_, end, _))| end < begin)
                .fold(0, |mask, (j, _)| mask | (1 << j))
        })
        .collect();
    let mut search = Search {
        items: &items,
        before: &before,
        final_state: &history.final_state,
        order: Vec::new(),
        failed: HashSet::new(),
        work,
    };
    search.place(&history.initial, 0).then(|| {
        search
            .order
            .iter()
            .map(|&i| match &items[i].2 {
                Item::Tx(n, _) => format!("tx{n}"),
                Item::Plain(write) => format!("{write:?}"),
            })
            .collect()
    })
}

/// A depth-first search for a serial order, pruned by the recorded reads, remembering the
/// (placed items, state) pairs that led nowhere.
struct Search<'s, 'h> {
    items: &'s [(u64, u64, Item<'h>)],
    before: &'s [u32],
    final_state: &'s State,
    order: Vec<usize>,
    failed: HashSet<(u32, State)>,
    work: &'s mut Work,
}

impl Search<'_, '_> {
    /// Whether the items not in `placed` can follow, from `state`.
    fn place(&mut self, state: &State, placed: u32) -> bool {
        if placed.count_ones() as usize == self.items.len() {
            return state == self.final_state;
        }
        if self.failed.contains(&(placed, state.clone())) {
            return false;
        }
        for (i, (_, _, item)) in self.items.iter().enumerate() {
            if placed & (1 << i) != 0 || self.before[i] & !placed != 0 {
                continue;
            }
            self.work.placements += 1;
            let next = match item {
                Item::Tx(_, tx) => replay(state, &tx.ops),
                Item::Plain(write) => {
                    let mut next = state.clone();
                    apply(&mut next, write);
                    Some(next)
                }
            };
            let Some(next) = next else { continue };
            self.order.push(i);
            if self.place(&next, placed | (1 << i)) {
                return true;
            }
            self.order.pop();
        }
        self.failed.insert((placed, state.clone()));
        false
    }
}

// ---------------------------------------------------------------------------------------
// Scripts.

fn key(rng: &mut SmallRng) -> Vec<u8> {
    KEYS[rng.random_range(0..KEYS.len())].as_bytes().to_vec()
}

fn bound(rng: &mut SmallRng) -> Bound<Vec<u8>> {
    let key = BOUNDS[rng.random_range(0..BOUNDS.len())]
        .as_bytes()
        .to_vec();
    match rng.random_range(0..5) {
        0 => Bound::Unbounded,
        1 | 2 => Bound::Included(key),
        _ => Bound::Excluded(key),
    }
}

/// A random range; mostly a sensible one, sometimes empty or inverted.
fn range(rng: &mut SmallRng) -> Range {
    let (lower, upper) = (bound(rng), bound(rng));
    let ordered = |b: &Bound<Vec<u8>>| match b {
        Bound::Included(k) | Bound::Excluded(k) => Some(k.clone()),
        Bound::Unbounded => None,
    };
    match (ordered(&lower), ordered(&upper)) {
        (Some(l), Some(u)) if l > u && rng.random_bool(0.8) => (upper, lower),
        _ => (lower, upper),
    }
}

/// The operations of one transaction (without begin and end), values named by `tag`.
fn tx_ops(rng: &mut SmallRng, tx: usize, tag: &str) -> Vec<Step> {
    (0..rng.random_range(1..=5))
        .map(|n| {
            let ks = usize::from(rng.random_bool(0.3));
            match rng.random_range(0..20) {
                0..7 => Step::Get(tx, ks, key(rng)),
                7..11 => Step::Scan {
                    tx,
                    ks,
                    range: range(rng),
                    reverse: rng.random_bool(0.3),
                    lazy: rng.random_bool(0.3),
                },
                11..17 => Step::Write(
                    tx,
                    Write::Put(ks, key(rng), format!("{tag}t{tx}o{n}").into_bytes()),
                ),
                _ => Step::Write(tx, Write::Delete(ks, key(rng))),
            }
        })
        .collect()
}

fn plain_write(rng: &mut SmallRng, tag: &str) -> Write {
    let ks = usize::from(rng.random_bool(0.3));
    match rng.random_range(0..10) {
        0..5 => Write::Put(ks, key(rng), format!("{tag}plain").into_bytes()),
        5..7 => Write::Delete(ks, key(rng)),
        _ => Write::DeleteRange(ks, range(rng)),
    }
}

/// A random initial state.
fn initial_state(rng: &mut SmallRng, history: usize) -> State {
    let mut state = State::new();
    for ks in 0..2 {
        for k in KEYS {
            if rng.random_bool(0.6) {
                state.insert(
                    (ks, k.as_bytes().to_vec()),
                    format!("h{history}init").into_bytes(),
                );
            }
        }
    }
    state
}

/// A single-threaded script: 3 to 6 transactions interleaved step by step at random,
/// with plain writes and flushes among them.
fn script(rng: &mut SmallRng, history: usize) -> Vec<Step> {
    let count = rng.random_range(3..=6);
    let mut per_tx: Vec<Vec<Step>> = (0..count)
        .map(|tx| {
            let mut steps = vec![Step::Begin(tx)];
            steps.extend(tx_ops(rng, tx, &format!("h{history}")));
            steps.push(if rng.random_bool(0.9) {
                Step::Commit(tx, rng.random_bool(0.2))
            } else {
                Step::Rollback(tx)
            });
            steps.reverse();
            steps
        })
        .collect();
    let mut script = Vec::new();
    let mut left: usize = per_tx.iter().map(Vec::len).sum();
    while left > 0 {
        // Each remaining step equally likely next: a uniform random interleaving.
        let mut pick = rng.random_range(0..left);
        let tx = per_tx
            .iter()
            .position(|steps| {
                if pick < steps.len() {
                    true
                } else {
                    pick -= steps.len();
                    false
                }
            })
            .unwrap();
        script.push(per_tx[tx].pop().unwrap());
        left -= 1;
    }
    for n in 0..rng.random_range(0..=3) {
        let at = rng.random_range(0..=script.len());
        script.insert(
            at,
            Step::Plain(plain_write(rng, &format!("h{history}p{n}"))),
        );
    }
    if rng.random_bool(0.3) {
        let at = rng.random_range(0..=script.len());
        script.insert(at, Step::Flush);
    }
    script
}

// ---------------------------------------------------------------------------------------
// Running a script: on floe, or on the reference model.

/// A scan not drained yet: what draining it returns.
type Pending = Box<dyn FnOnce() -> Pairs>;

/// What a script runs against.
trait Engine {
    fn begin(&mut self, tx: usize);
    fn get(&mut self, tx: usize, ks: Ks, key: &[u8]) -> Option<Vec<u8>>;
    fn scan(&mut self, tx: usize, ks: Ks, range: &Range, reverse: bool) -> Pending;
    fn write(&mut self, tx: usize, write: &Write);
    fn commit(&mut self, tx: usize, sync: bool) -> Outcome;
    fn rollback(&mut self, tx: usize);
    fn plain(&mut self, write: &Write);
    fn flush(&mut self);
    fn state(&self) -> State;
}

/// Runs `script` on `engine`, whose state is `initial`, recording the history; the clock
/// is the step number.
fn run(script: &[Step], engine: &mut impl Engine, initial: State) -> History {
    let count = script
        .iter()
        .filter_map(Step::tx)
        .max()
        .map_or(0, |m| m + 1);
    let mut txs: Vec<TxRecord> = (0..count)
        .map(|_| TxRecord {
            begin: 0,
            end: 0,
            ops: Vec::new(),
            outcome: Outcome::RolledBack,
        })
        .collect();
    let mut plain = Vec::new();
    // The undrained scan of each transaction: where its result goes, and the drain.
    let mut lazy: BTreeMap<usize, (usize, Pending)> = BTreeMap::new();
    let drain = |txs: &mut Vec<TxRecord>, lazy: &mut BTreeMap<usize, (usize, Pending)>, tx| {
        if let Some((at, pending)) = lazy.remove(&tx)
            && let Op::Scan(_, _, got) = &mut txs[tx].ops[at]
        {
            *got = pending();
        }
    };
    for (clock, step) in script.iter().enumerate() {
        let clock = clock as u64;
        // A lazy scan is drained before its transaction's next step, or after it when
        // that ends the transaction, half of the time.
        let ends = matches!(step, Step::Commit(..) | Step::Rollback(_));
        let after = ends && clock % 2 == 1;
        if let Some(tx) = step.tx()
            && !after
        {
            drain(&mut txs, &mut lazy, tx);
        }
        match step {
            Step::Begin(tx) => {
                txs[*tx].begin = clock;
                engine.begin(*tx);
            }
            Step::Get(tx, ks, k) => {
                let got = engine.get(*tx, *ks, k);
                txs[*tx].ops.push(Op::Get(*ks, k.clone(), got));
            }
            Step::Scan {
                tx,
                ks,
                range,
                reverse,
                lazy: later,
            } => {
                let pending = engine.scan(*tx, *ks, range, *reverse);
                txs[*tx].ops.push(Op::Scan(*ks, range.clone(), Vec::new()));
                let at = txs[*tx].ops.len() - 1;
                if *later {
                    lazy.insert(*tx, (at, pending));
                } else if let Op::Scan(_, _, got) = &mut txs[*tx].ops[at] {
                    *got = pending();
                }
            }
            Step::Write(tx, write) => {
                engine.write(*tx, write);
                txs[*tx].ops.push(Op::Write(write.clone()));
            }
            Step::Commit(tx, sync) => {
                txs[*tx].outcome = engine.commit(*tx, *sync);
                txs[*tx].end = clock;
            }
            Step::Rollback(tx) => {
                engine.rollback(*tx);
                txs[*tx].outcome = Outcome::RolledBack;
                txs[*tx].end = clock;
            }
            Step::Plain(write) => {
                engine.plain(write);
                plain.push((clock, clock, write.clone()));
            }
            Step::Flush => engine.flush(),
        }
        if let Some(tx) = step.tx()
            && after
        {
            drain(&mut txs, &mut lazy, tx);
        }
    }
    assert!(lazy.is_empty(), "every scan is drained");
    History {
        initial,
        txs,
        plain,
        final_state: engine.state(),
    }
}

fn collect(iter: Iter, reverse: bool) -> Pairs {
    let pairs = |kv: floe::Result<(floe::Bytes, floe::Bytes)>| {
        let (k, v) = kv.expect("a scan");
        (k.to_vec(), v.to_vec())
    };
    if reverse {
        let mut got: Pairs = iter.rev().map(pairs).collect();
        got.reverse();
        got
    } else {
        iter.map(pairs).collect()
    }
}

/// floe, with the transactions of one history.
struct Floe<'d> {
    db: &'d Db,
    keyspaces: [Keyspace; 2],
    txs: BTreeMap<usize, Transaction>,
}

impl<'d> Floe<'d> {
    /// Empties both keyspaces of `db` and writes `initial`.
    fn start(db: &'d Db, initial: &State) -> Floe<'d> {
        let keyspaces = [db.default_keyspace(), db.keyspace("side").unwrap()];
        for ks in &keyspaces {
            ks.delete_range::<&[u8], _>(..).unwrap();
        }
        for ((ks, k), v) in initial {
            keyspaces[*ks].put(k, v).unwrap();
        }
        Floe {
            db,
            keyspaces,
            txs: BTreeMap::new(),
        }
    }

    fn tx(&mut self, tx: usize) -> &mut Transaction {
        self.txs.get_mut(&tx).expect("a live transaction")
    }
}

impl Engine for Floe<'_> {
    fn begin(&mut self, tx: usize) {
        self.txs.insert(tx, self.db.transaction());
    }

    fn get(&mut self, tx: usize, ks: Ks, key: &[u8]) -> Option<Vec<u8>> {
        let keyspace = self.keyspaces[ks].clone();
        self.tx(tx)
            .get(&keyspace, key)
            .expect("a get")
            .map(|v| v.to_vec())
    }

    fn scan(&mut self, tx: usize, ks: Ks, range: &Range, reverse: bool) -> Pending {
        let keyspace = self.keyspaces[ks].clone();
        let iter = self.tx(tx).range(&keyspace, range.clone());
        Box::new(move || collect(iter, reverse))
    }

    fn write(&mut self, tx: usize, write: &Write) {
        let keyspace = self.keyspaces.clone();
        match write {
            Write::Put(ks, k, v) => self.tx(tx).put(&keyspace[*ks], k, v),
            Write::Delete(ks, k) => self.tx(tx).delete(&keyspace[*ks], k),
            Write::DeleteRange(..) => unreachable!("a transaction's range delete"),
        }
    }

    fn commit(&mut self, tx: usize, sync: bool) -> Outcome {
        let tx = self.txs.remove(&tx).expect("a live transaction");
        let result = if sync {
            tx.commit_with(&WriteOptions::default().sync(true))
        } else {
            tx.commit()
        };
        match result {
            Ok(()) => Outcome::Committed,
            Err(Error::Conflict { .. }) => Outcome::Conflict,
            Err(err) => panic!("commit: {err}"),
        }
    }

    fn rollback(&mut self, tx: usize) {
        self.txs.remove(&tx).expect("a live transaction").rollback();
    }

    fn plain(&mut self, write: &Write) {
        match write {
            Write::Put(ks, k, v) => self.keyspaces[*ks].put(k, v),
            Write::Delete(ks, k) => self.keyspaces[*ks].delete(k),
            Write::DeleteRange(ks, range) => self.keyspaces[*ks].delete_range(range.clone()),
        }
        .expect("a plain write");
    }

    fn flush(&mut self) {
        self.db.flush().expect("a flush");
    }

    fn state(&self) -> State {
        let mut state = State::new();
        for (ks, keyspace) in self.keyspaces.iter().enumerate() {
            for kv in keyspace.iter() {
                let (k, v) = kv.expect("a final scan");
                state.insert((ks, k.to_vec()), v.to_vec());
            }
        }
        state
    }
}

/// The reference model: snapshots at begin, own writes laid over them, and (with
/// `validate`) the exact conflict rule at commit.
struct Model {
    validate: bool,
    state: State,
    /// Every committed write, in commit order.
    log: Vec<Write>,
    /// Each live transaction: its snapshot, the log length at its begin, and its ops.
    txs: BTreeMap<usize, (State, usize, Vec<Op>)>,
}

impl Model {
    fn new(initial: &State, validate: bool) -> Model {
        Model {
            validate,
            state: initial.clone(),
            log: Vec::new(),
            txs: BTreeMap::new(),
        }
    }

    fn view(&self, tx: usize) -> State {
        let (snapshot, _, ops) = &self.txs[&tx];
        let own: Vec<Write> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Write(write) => Some(write.clone()),
                _ => None,
            })
            .collect();
        overlaid(snapshot, &own)
    }
}

impl Engine for Model {
    fn begin(&mut self, tx: usize) {
        self.txs
            .insert(tx, (self.state.clone(), self.log.len(), Vec::new()));
    }

    fn get(&mut self, tx: usize, ks: Ks, key: &[u8]) -> Option<Vec<u8>> {
        let got = self.view(tx).get(&(ks, key.to_vec())).cloned();
        let ops = &mut self.txs.get_mut(&tx).unwrap().2;
        ops.push(Op::Get(ks, key.to_vec(), got.clone()));
        got
    }

    fn scan(&mut self, tx: usize, ks: Ks, range: &Range, _reverse: bool) -> Pending {
        let got = scan_state(&self.view(tx), ks, range);
        let ops = &mut self.txs.get_mut(&tx).unwrap().2;
        ops.push(Op::Scan(ks, range.clone(), got.clone()));
        Box::new(move || got)
    }

    fn write(&mut self, tx: usize, write: &Write) {
        let ops = &mut self.txs.get_mut(&tx).unwrap().2;
        ops.push(Op::Write(write.clone()));
    }

    fn commit(&mut self, tx: usize, _sync: bool) -> Outcome {
        let (_, start, ops) = self.txs.remove(&tx).unwrap();
        let writes: Vec<Write> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Write(write) => Some(write.clone()),
                _ => None,
            })
            .collect();
        if writes.is_empty() {
            return Outcome::Committed;
        }
        let footprint = Footprint::of(&ops);
        if self.validate {
            let since = &self.log[start..];
            if since.iter().any(|w| footprint.touched_by(w)) {
                return Outcome::Conflict;
            }
        }
        for write in writes {
            apply(&mut self.state, &write);
            self.log.push(write);
        }
        Outcome::Committed
    }

    fn rollback(&mut self, tx: usize) {
        self.txs.remove(&tx);
    }

    fn plain(&mut self, write: &Write) {
        apply(&mut self.state, write);
        self.log.push(write.clone());
    }

    fn flush(&mut self) {}

    fn state(&self) -> State {
        self.state.clone()
    }
}

// ---------------------------------------------------------------------------------------
// The tests.

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe_script(script: &[Step]) -> String {
    script
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let text = match step {
                Step::Get(tx, ks, k) => format!("tx{tx} get {ks}/{}", show(k)),
                Step::Scan {
                    tx,
                    ks,
                    range,
                    reverse,
                    lazy,
                } => format!(
                    "tx{tx} scan {ks}/{range:?}{}{}",
                    if *reverse { " reversed" } else { "" },
                    if *lazy { " lazily" } else { "" }
                ),
                other => format!("{other:?}"),
            };
            format!("  {i:2}: {text}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn histories() -> usize {
    floe_testkit::env_usize("FLOE_TXN_HISTORIES", 500)
}

fn history_rng(seed: u64, history: usize) -> SmallRng {
    SmallRng::seed_from_u64(seed ^ (history as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn open(dir: &std::path::Path) -> Db {
    Db::open_with(dir, Options::default().write_buffer_size(4096)).unwrap()
}

#[test]
fn committed_transactions_of_random_histories_are_serializable() {
    let seed = floe_testkit::seed("committed_transactions_of_random_histories_are_serializable");
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(dir.path());
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut work = Work::default();
    let mut conflicted_histories = 0;
    let total = histories();
    for h in 0..total {
        // A reopen now and then, so that histories also run on recovered state.
        if h % 100 == 99 {
            db.close().unwrap();
            db = open(dir.path());
        }
        let mut rng = history_rng(seed, h);
        let initial = initial_state(&mut rng, h);
        let script = script(&mut rng, h);
        let what = || {
            format!(
                "seed {seed} history {h}, initial state {:?}, script:\n{}",
                initial
                    .iter()
                    .map(|((ks, k), v)| format!("{ks}/{}={}", show(k), show(v)))
                    .collect::<Vec<_>>(),
                describe_script(&script)
            )
        };
        let got = run(&script, &mut Floe::start(&db, &initial), initial.clone());
        let mut model = Model::new(&initial, true);
        let want = run(&script, &mut model, initial.clone());
        for (n, (g, w)) in got.txs.iter().zip(&want.txs).enumerate() {
            assert_eq!(
                g,
                w,
                "{}\ntx{n} differs from the model (left floe, right the model)",
                what()
            );
        }
        assert_eq!(
            got.final_state,
            want.final_state,
            "{}\nthe final state differs from the model's",
            what()
        );
        let order = serial_order(&got, &mut work);
        assert!(
            order.is_some(),
            "{}\nno serial order of the committed transactions explains the history: {got:#?}",
            what()
        );
        let mut conflicted = false;
        for tx in &got.txs {
            let read_only = !tx.ops.iter().any(|op| matches!(op, Op::Write(_)));
            let key = match (tx.outcome, read_only) {
                (Outcome::Committed, true) => "read-only commits",
                (Outcome::Committed, false) => "commits",
                (Outcome::Conflict, _) => {
                    conflicted = true;
                    "conflicts"
                }
                (Outcome::RolledBack, _) => "rollbacks",
            };
            *counts.entry(key).or_default() += 1;
        }
        conflicted_histories += u64::from(conflicted);
    }
    db.close().unwrap();
    println!(
        "seed {seed}: {total} histories, {counts:?}, {conflicted_histories} histories with a \
         conflict, {} placements searched",
        work.placements
    );
    let count = |key| counts.get(key).copied().unwrap_or(0);
    assert!(
        count("commits") > 0 && count("conflicts") > 0,
        "the histories must both commit and conflict: {counts:?}"
    );
    if total >= 100 {
        assert!(
            conflicted_histories * 10 >= total as u64,
            "too few histories conflict ({conflicted_histories} of {total}) to test validation"
        );
    }
}

/// The checker's own test: the same histories, run on the model with validation switched
/// off, are often not serializable, and the checker must say so; with validation on,
/// it must accept every one.
#[test]
fn the_checker_refuses_histories_run_without_validation() {
    let seed = floe_testkit::seed("the_checker_refuses_histories_run_without_validation");
    let total = histories();
    let mut refused = 0;
    let mut work = Work::default();
    for h in 0..total {
        let mut rng = history_rng(seed, h);
        let initial = initial_state(&mut rng, h);
        let script = script(&mut rng, h);
        let validated = run(&script, &mut Model::new(&initial, true), initial.clone());
        assert!(
            serial_order(&validated, &mut work).is_some(),
            "seed {seed} history {h}: the checker refused a history of the model with \
             validation:\n{}",
            describe_script(&script)
        );
        let unvalidated = run(&script, &mut Model::new(&initial, false), initial.clone());
        refused += u64::from(serial_order(&unvalidated, &mut work).is_none());
    }
    println!("seed {seed}: {refused} of {total} histories without validation refused");
    if total >= 100 {
        assert!(
            refused * 20 >= total as u64,
            "the checker refused only {refused} of {total} histories run without validation"
        );
    }
}

/// Hand-made anomalies the checker must refuse, and a serial history it must accept.
#[test]
fn the_checker_refuses_known_anomalies() {
    let k = |s: &str| s.as_bytes().to_vec();
    let state = |pairs: &[(&str, &str)]| -> State {
        pairs.iter().map(|(a, b)| ((0, k(a)), k(b))).collect()
    };
    let tx = |begin, end, ops: Vec<Op>| TxRecord {
        begin,
        end,
        ops,
        outcome: Outcome::Committed,
    };
    let get = |key: &str, value: &str| Op::Get(0, k(key), Some(k(value)));
    let put = |key: &str, value: &str| Op::Write(Write::Put(0, k(key), k(value)));
    let history = |txs, final_state| History {
        initial: state(&[("x", "0"), ("y", "0")]),
        txs,
        plain: Vec::new(),
        final_state,
    };
    let mut work = Work::default();
    // A lost update: both read x = 0 and wrote x = 1.
    let lost = history(
        vec![
            tx(0, 3, vec![get("x", "0"), put("x", "1")]),
            tx(1, 2, vec![get("x", "0"), put("x", "1")]),
        ],
        state(&[("x", "1"), ("y", "0")]),
    );
    assert!(serial_order(&lost, &mut work).is_none());
    // Write skew: each read both and wrote the other.
    let skew = history(
        vec![
            tx(0, 3, vec![get("x", "0"), get("y", "0"), put("x", "a")]),
            tx(1, 2, vec![get("x", "0"), get("y", "0"), put("y", "b")]),
        ],
        state(&[("x", "a"), ("y", "b")]),
    );
    assert!(serial_order(&skew, &mut work).is_none());
    // A phantom: a scan saw no z, but a transaction that ended before it began wrote one.
    let phantom = History {
        initial: state(&[]),
        txs: vec![
            tx(0, 1, vec![put("z", "1")]),
            tx(
                2,
                3,
                vec![
                    Op::Scan(0, (Bound::Unbounded, Bound::Unbounded), Vec::new()),
                    put("n", "0"),
                ],
            ),
        ],
        plain: Vec::new(),
        final_state: state(&[("n", "0"), ("z", "1")]),
    };
    assert!(serial_order(&phantom, &mut work).is_none());
    // The same two transactions the other way round in time are serial.
    let mut serial = phantom.clone();
    serial.txs[0].begin = 4;
    serial.txs[0].end = 5;
    assert!(serial_order(&serial, &mut work).is_some());
    // A final state that no order produces.
    let wrong_end = history(
        vec![tx(0, 1, vec![put("x", "1")])],
        state(&[("x", "2"), ("y", "0")]),
    );
    assert!(serial_order(&wrong_end, &mut work).is_none());
}

/// The same kind of transactions on threads: three run two transactions each and a
/// fourth plain writes, at once; the clock is a shared counter read before each begins
/// and after its commit returns, so one that finished before another began comes first.
#[test]
fn concurrent_histories_are_serializable() {
    let seed = floe_testkit::seed("concurrent_histories_are_serializable");
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let total = histories().div_ceil(5);
    let mut work = Work::default();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for h in 0..total {
        let mut rng = history_rng(seed, h);
        let initial = initial_state(&mut rng, h);
        let tag = format!("h{h}");
        // Each thread's transactions: ops and whether to commit synced.
        let plans: Vec<Vec<(Vec<Step>, bool)>> = (0..3)
            .map(|thread| {
                (0..2)
                    .map(|n| (tx_ops(&mut rng, thread * 2 + n, &tag), rng.random_bool(0.2)))
                    .collect()
            })
            .collect();
        let plain: Vec<Write> = (0..rng.random_range(0..=3))
            .map(|n| plain_write(&mut rng, &format!("{tag}p{n}")))
            .collect();
        let floe = Floe::start(&db, &initial);
        let keyspaces = floe.keyspaces.clone();
        let clock = AtomicU64::new(0);
        let barrier = Barrier::new(4);
        let (txs, plain_records) = thread::scope(|scope| {
            let runners: Vec<_> = plans
                .iter()
                .map(|plan| {
                    let (db, keyspaces, clock, barrier) = (&db, &keyspaces, &clock, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        plan.iter()
                            .map(|(steps, sync)| {
                                run_concurrent_tx(db, keyspaces, clock, steps, *sync)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let writer = scope.spawn(|| {
                barrier.wait();
                plain
                    .iter()
                    .map(|write| {
                        let begin = clock.fetch_add(1, Ordering::SeqCst);
                        match write {
                            Write::Put(ks, k, v) => keyspaces[*ks].put(k, v),
                            Write::Delete(ks, k) => keyspaces[*ks].delete(k),
                            Write::DeleteRange(ks, range) => {
                                keyspaces[*ks].delete_range(range.clone())
                            }
                        }
                        .unwrap();
                        (begin, clock.fetch_add(1, Ordering::SeqCst), write.clone())
                    })
                    .collect::<Vec<_>>()
            });
            let txs: Vec<TxRecord> = runners
                .into_iter()
                .flat_map(|r| r.join().unwrap())
                .collect();
            (txs, writer.join().unwrap())
        });
        for tx in &txs {
            *counts.entry(format!("{:?}", tx.outcome)).or_default() += 1;
        }
        let history = History {
            initial: initial.clone(),
            txs,
            plain: plain_records,
            final_state: floe.state(),
        };
        assert!(
            serial_order(&history, &mut work).is_some(),
            "seed {seed} concurrent history {h}: no serial order of the committed \
             transactions explains it: {history:#?}"
        );
    }
    db.close().unwrap();
    println!(
        "seed {seed}: {total} concurrent histories, {counts:?}, {} placements searched",
        work.placements
    );
}

/// Runs one transaction of a concurrent history, eagerly, on the calling thread.
fn run_concurrent_tx(
    db: &Db,
    keyspaces: &[Keyspace; 2],
    clock: &AtomicU64,
    steps: &[Step],
    sync: bool,
) -> TxRecord {
    let begin = clock.fetch_add(1, Ordering::SeqCst);
    let mut tx = db.transaction();
    let mut ops = Vec::new();
    for step in steps {
        match step {
            Step::Get(_, ks, k) => {
                let got = tx.get(&keyspaces[*ks], k).unwrap().map(|v| v.to_vec());
                ops.push(Op::Get(*ks, k.clone(), got));
            }
            Step::Scan {
                ks, range, reverse, ..
            } => {
                let got = collect(tx.range(&keyspaces[*ks], range.clone()), *reverse);
                ops.push(Op::Scan(*ks, range.clone(), got));
            }
            Step::Write(_, write) => {
                match write {
                    Write::Put(ks, k, v) => tx.put(&keyspaces[*ks], k, v),
                    Write::Delete(ks, k) => tx.delete(&keyspaces[*ks], k),
                    Write::DeleteRange(..) => unreachable!("a transaction's range delete"),
                }
                ops.push(Op::Write(write.clone()));
            }
            other => unreachable!("not a transaction's operation: {other:?}"),
        }
        // Give the other threads a chance to come between the operations.
        thread::yield_now();
    }
    let result = if sync {
        tx.commit_with(&WriteOptions::default().sync(true))
    } else {
        tx.commit()
    };
    let outcome = match result {
        Ok(()) => Outcome::Committed,
        Err(Error::Conflict { .. }) => Outcome::Conflict,
        Err(err) => panic!("commit: {err}"),
    };
    TxRecord {
        begin,
        end: clock.fetch_add(1, Ordering::SeqCst),
        ops,
        outcome,
    }
}
