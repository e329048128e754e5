//! The operations of a seed's workload: writes spread over the keyspaces by their
//! activity (single ones, batches across keyspaces, some synced on their own, range
//! deletions alone and inside batches), keyspaces created and dropped, reads, snapshots
//! and iterators checked against the model, calls on dropped keyspaces' handles, syncs,
//! flushes, background steps, compactions, reopens, power losses and armed faults.

use std::ops::{Bound, RangeBounds};

use floe_engine::{Error, KeyspaceOptions, WriteBatch, WriteOptions};
use rand::Rng;

use super::{Plan, Sim, SnapshotCheck, collect, is_poisoned, params};
use crate::model::{DEFAULT, KeyspaceOp, Op, State, range_is_empty};

/// The names of the keyspaces a run creates besides `"default"`: few enough that names
/// are created again after a drop.
const NAMES: [&str; 6] = ["ks0", "ks1", "ks2", "ks3", "ks4", "ks5"];

/// How many snapshots and iterators a run keeps unread, at most.
const MAX_READERS: usize = 6;

/// How many keys the workload writes: `k00` to `k39` (and now and then the key just
/// above one of them, `k05\0`).
const KEYS: usize = 40;

/// The bounds of a range deletion.
type Bounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Shows a key or value.
fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Shows the bounds of a range as `[k03, k07)`, `(k10, ..` and the like.
fn show_range((start, end): &Bounds) -> String {
    let start = match start {
        Bound::Included(key) => format!("[{:?}", show(key)),
        Bound::Excluded(key) => format!("({:?}", show(key)),
        Bound::Unbounded => "(..".to_string(),
    };
    let end = match end {
        Bound::Included(key) => format!("{:?}]", show(key)),
        Bound::Excluded(key) => format!("{:?})", show(key)),
        Bound::Unbounded => "..)".to_string(),
    };
    format!("{start}, {end}")
}

/// Evaluates `$call` with `$range` bound to `$bounds` written as a caller would write
/// them: `a..b`, `a..=b`, `a..`, `..b`, `..=b` or `..`, or the pair of bounds itself for
/// an excluded start, which no range expression has. (`$call` names the key type, which
/// `..` leaves open.)
macro_rules! with_range {
    ($bounds:expr, |$range:ident| $call:expr) => {{
        let bounds: Bounds = $bounds;
        match bounds {
            (Bound::Included(a), Bound::Excluded(b)) => {
                let $range = a..b;
                $call
            }
            (Bound::Included(a), Bound::Included(b)) => {
                let $range = a..=b;
                $call
            }
            (Bound::Included(a), Bound::Unbounded) => {
                let $range = a..;
                $call
            }
            (Bound::Unbounded, Bound::Excluded(b)) => {
                let $range = ..b;
                $call
            }
            (Bound::Unbounded, Bound::Included(b)) => {
                let $range = ..=b;
                $call
            }
            (Bound::Unbounded, Bound::Unbounded) => {
                let $range = ..;
                $call
            }
            bounds @ (Bound::Excluded(_), _) => {
                let $range = bounds;
                $call
            }
        }
    }};
}

impl Sim {
    fn key(&mut self) -> Vec<u8> {
        let mut key = format!("k{:02}", self.rng.random_range(0..KEYS)).into_bytes();
        // The least key above another, which a bound just past that one must tell apart.
        if self.rng.random_bool(0.04) {
            key.push(0);
        }
        key
    }

    /// A bound of a range at the `at`-th key (`KEYS` is past the last one): mostly that
    /// key, sometimes the key just above it or a shorter key just below it.
    fn bound_key(&mut self, at: usize) -> Vec<u8> {
        let mut key = format!("k{at:02}").into_bytes();
        match self.rng.random_range(0..20) {
            0 | 1 => key.push(0),
            2 => key.truncate(2),
            _ => {}
        }
        key
    }

    /// The bounds of a range deletion: mostly a few keys wide, sometimes a dozen, now and
    /// then open at one end (then as wide from the first or to the last key) or at both
    /// (every key); of every bound kind, so that some are empty, and some inverted.
    fn range_bounds(&mut self) -> Bounds {
        let width = match self.rng.random_range(0..20) {
            0..=9 => self.rng.random_range(0..3),
            10..=16 => self.rng.random_range(3..8),
            _ => self.rng.random_range(8..14),
        };
        let kind = |rng: &mut rand::rngs::SmallRng| match rng.random_range(0..20) {
            0 => None,
            1..=10 => Some(true),
            _ => Some(false),
        };
        let (start_kind, end_kind) = (kind(&mut self.rng), kind(&mut self.rng));
        let (mut low, mut high) = match (start_kind, end_kind) {
            (Some(_), Some(_)) => {
                let low = self.rng.random_range(0..KEYS);
                (low, (low + width).min(KEYS))
            }
            (None, _) => (0, width),
            (_, None) => (KEYS - width, KEYS),
        };
        if start_kind.is_some() && end_kind.is_some() && self.rng.random_bool(0.08) {
            std::mem::swap(&mut low, &mut high);
        }
        let bound = |sim: &mut Sim, kind: Option<bool>, at: usize| match kind {
            None => Bound::Unbounded,
            Some(true) => Bound::Included(sim.bound_key(at)),
            Some(false) => Bound::Excluded(sim.bound_key(at)),
        };
        let start = bound(self, start_kind, low);
        let end = bound(self, end_kind, high);
        (start, end)
    }

    /// A key the workload writes that lies in `bounds`, if one does.
    fn key_in(&mut self, bounds: &Bounds) -> Option<Vec<u8>> {
        let inside: Vec<Vec<u8>> = (0..KEYS)
            .flat_map(|at| {
                let key = format!("k{at:02}").into_bytes();
                let above = [key.as_slice(), &[0]].concat();
                [key, above]
            })
            .filter(|key| bounds.contains(key))
            .collect();
        (!inside.is_empty()).then(|| inside[self.rng.random_range(0..inside.len())].clone())
    }

    fn value(&mut self) -> Vec<u8> {
        self.next_write += 1;
        let len = match self.rng.random_range(0..20) {
            0 => self.rng.random_range(1000..5000),
            1..=4 => self.rng.random_range(100..400),
            _ => self.rng.random_range(1..40),
        };
        let mut value = format!("v{}.{}:", self.seed % 1000, self.next_write).into_bytes();
        value.resize(value.len() + len, b'a' + (self.next_write % 26) as u8);
        value
    }

    /// A live keyspace chosen by activity, for a write.
    fn busy_keyspace(&mut self) -> String {
        let total: u32 = self.handles.keys().map(|name| self.activity[name]).sum();
        let mut pick = self.rng.random_range(0..total);
        for name in self.handles.keys() {
            let activity = self.activity[name];
            if pick < activity {
                return name.clone();
            }
            pick -= activity;
        }
        unreachable!("the pick lies below the total")
    }

    /// A live keyspace chosen uniformly, for a read.
    fn any_keyspace(&mut self) -> String {
        let at = self.rng.random_range(0..self.handles.len());
        self.handles
            .keys()
            .nth(at)
            .expect("at least \"default\"")
            .clone()
    }

    /// One operation in a keyspace chosen by activity: a put (or a delete, one time in
    /// `1 / deletes`).
    fn keyspace_op(&mut self, deletes: f64) -> KeyspaceOp {
        let keyspace = self.busy_keyspace();
        let key = self.key();
        let op = if self.rng.random_bool(deletes) {
            Op::Delete(key)
        } else {
            Op::Put(key, self.value())
        };
        (keyspace, op)
    }

    /// A range deletion in a keyspace chosen by activity.
    fn range_op(&mut self) -> KeyspaceOp {
        let keyspace = self.busy_keyspace();
        let (start, end) = self.range_bounds();
        (keyspace, Op::DeleteRange(start, end))
    }

    /// The operations of a batch of `n` slots, each a put or a delete, or (one time in
    /// `1 / ranges`) a range deletion, sometimes with a put to a key in its range just
    /// before it (which it deletes) or just after it (which survives it).
    fn batch_ops(&mut self, n: usize, ranges: f64) -> Vec<KeyspaceOp> {
        let mut ops = Vec::new();
        for _ in 0..n {
            if !self.rng.random_bool(ranges) {
                ops.push(self.keyspace_op(0.2));
                continue;
            }
            let (keyspace, op) = self.range_op();
            let Op::DeleteRange(start, end) = &op else {
                unreachable!("a range deletion")
            };
            let bounds = (start.clone(), end.clone());
            if self.rng.random_bool(0.3)
                && let Some(key) = self.key_in(&bounds)
            {
                ops.push((keyspace.clone(), Op::Put(key, self.value())));
            }
            ops.push((keyspace.clone(), op));
            if self.rng.random_bool(0.5)
                && let Some(key) = self.key_in(&bounds)
            {
                ops.push((keyspace, Op::Put(key, self.value())));
            }
        }
        ops
    }

    /// Checks a scan of keyspace `name` over `bounds` (read through `Db::range` for
    /// `"default"` sometimes) against the model.
    fn check_range(&mut self, name: &str, bounds: &Bounds) -> Result<(), String> {
        if self.errored.is_some() || !self.handles.contains_key(name) {
            return Ok(());
        }
        let got = if name == DEFAULT && self.rng.random_bool(0.5) {
            collect(self.db().range::<Vec<u8>, _>(bounds.clone()))
        } else {
            collect(self.handles[name].range::<Vec<u8>, _>(bounds.clone()))
        };
        let want: State = self
            .history
            .current_of(name)
            .map(|state| {
                state
                    .iter()
                    .filter(|(key, _)| bounds.contains(*key))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        match got {
            Ok(got) if got == want => Ok(()),
            other => Err(self.fail(format!(
                "a scan of {name} over {} after a range deletion there gave {:?}, the \
                 model holds {:?}",
                show_range(bounds),
                other.map(|s| s.keys().map(|k| show(k)).collect::<Vec<_>>()),
                want.keys().map(|k| show(k)).collect::<Vec<_>>()
            ))),
        }
    }

    /// Applies one write and records its outcome. A single operation goes through the
    /// keyspace's handle (or `Db::put`, `Db::delete` and `Db::delete_range` for
    /// `"default"`), several through one batch; `sync` asks for this write alone to be
    /// durable (`WriteOptions::sync`), whatever `Options::sync` says.
    fn write(&mut self, ops: Vec<KeyspaceOp>, sync: bool) -> Result<(), String> {
        // Operations on "default" go through the calls without a keyspace sometimes.
        let plain_default = self.rng.random_bool(0.4);
        let plain_write = self.rng.random_bool(0.5);
        let handle = |name: &str| &self.handles[name];
        let result = if ops.len() == 1 && !sync {
            let (keyspace, op) = &ops[0];
            let plain = keyspace == DEFAULT && plain_default;
            match op {
                Op::Put(key, value) if plain => self.db().put(key, value),
                Op::Put(key, value) => handle(keyspace).put(key, value),
                Op::Delete(key) if plain => self.db().delete(key),
                Op::Delete(key) => handle(keyspace).delete(key),
                Op::DeleteRange(start, end) if plain => {
                    with_range!((start.clone(), end.clone()), |range| self
                        .db()
                        .delete_range::<Vec<u8>, _>(range))
                }
                Op::DeleteRange(start, end) => {
                    with_range!((start.clone(), end.clone()), |range| handle(keyspace)
                        .delete_range::<Vec<u8>, _>(range))
                }
            }
        } else {
            let mut batch = WriteBatch::new();
            for (keyspace, op) in &ops {
                let plain = keyspace == DEFAULT && plain_default;
                match op {
                    Op::Put(key, value) if plain => batch.put(key, value),
                    Op::Put(key, value) => batch.put_in(handle(keyspace), key, value),
                    Op::Delete(key) if plain => batch.delete(key),
                    Op::Delete(key) => batch.delete_in(handle(keyspace), key),
                    Op::DeleteRange(start, end) if plain => {
                        with_range!((start.clone(), end.clone()), |range| batch
                            .delete_range::<Vec<u8>, _>(range));
                    }
                    Op::DeleteRange(start, end) => {
                        with_range!((start.clone(), end.clone()), |range| batch
                            .delete_range_in::<Vec<u8>, _>(handle(keyspace), range));
                    }
                }
            }
            if sync {
                self.db()
                    .write_with(batch, &WriteOptions::default().sync(true))
            } else if plain_write {
                self.db().write(batch)
            } else {
                self.db().write_with(batch, &WriteOptions::default())
            }
        };
        let mut keyspaces: Vec<&str> = ops.iter().map(|(name, _)| name.as_str()).collect();
        keyspaces.dedup();
        let ranges: Vec<(String, Bounds)> = ops
            .iter()
            .filter_map(|(name, op)| match op {
                Op::DeleteRange(start, end) => Some((name.clone(), (start.clone(), end.clone()))),
                Op::Put(..) | Op::Delete(_) => None,
            })
            .collect();
        let shown: Vec<String> = ranges
            .iter()
            .map(|(name, bounds)| format!(" {name}{}", show_range(bounds)))
            .collect();
        self.note(format!(
            "write of {} ops in {}{}{}: {}",
            ops.len(),
            keyspaces.join("+"),
            if shown.is_empty() {
                String::new()
            } else {
                format!(", deleting{}", shown.join(""))
            },
            if sync { " (synced)" } else { "" },
            if result.is_ok() { "ok" } else { "err" }
        ));
        // A batch of nothing but empty ranges is no write: it is neither logged nor synced.
        let logged = !ops.iter().all(|(_, op)| op.is_empty_range());
        let ops_len = ops.len();
        match result {
            Ok(()) => {
                if let Some(first) = &self.errored {
                    return Err(self.fail(format!(
                        "a write was acknowledged after an earlier call failed ({first})"
                    )));
                }
                self.history.acknowledged(ops);
                self.tally.synced += u64::from(sync);
                self.tally.ops += ops_len as u64;
                self.tally.ranges += ranges.len() as u64;
                self.tally.empty_ranges += ranges
                    .iter()
                    .filter(|(_, (start, end))| range_is_empty(start, end))
                    .count() as u64;
                if (self.params.sync || sync) && logged {
                    self.history.all_durable();
                }
                if let Some((name, bounds)) = ranges.first()
                    && self.rng.random_bool(0.3)
                {
                    self.check_range(name, bounds)?;
                }
                Ok(())
            }
            Err(err) => {
                if self.errored.is_none() {
                    if self.fs.injected() <= self.injected_counted {
                        return Err(
                            self.fail(format!("a write failed with no injected error: {err}"))
                        );
                    }
                    self.errored = Some(err.to_string());
                    self.history.failed(ops);
                } else if !is_poisoned(&err) {
                    return Err(
                        self.fail(format!("a write after a failure gave {err}, not Poisoned"))
                    );
                }
                Ok(())
            }
        }
    }

    /// Creates a keyspace under a name that is not live, with options of its own.
    pub(super) fn create_keyspace(&mut self) -> Result<(), String> {
        let free: Vec<&str> = NAMES
            .into_iter()
            .filter(|name| self.history.current_of(name).is_none())
            .collect();
        if free.is_empty() {
            return Ok(());
        }
        let name = free[self.rng.random_range(0..free.len())].to_string();
        let options: KeyspaceOptions = params::keyspace_options(&mut self.rng);
        let activity = params::activity(&mut self.rng);
        let result = self.db().keyspace_with(&name, options.clone());
        self.note(format!(
            "create {name} ({options:?}, activity {activity}): {}",
            if result.is_ok() { "ok" } else { "err" }
        ));
        match result {
            Ok(handle) => {
                self.after_call("a keyspace creation", Ok(()))?;
                if handle.name() != name {
                    return Err(self.fail(format!(
                        "keyspace_with({name:?}) gave a handle named {:?}",
                        handle.name()
                    )));
                }
                self.history.created(&name);
                self.tally.created += 1;
                self.activity.insert(name.clone(), activity);
                self.handles.insert(name, handle);
                Ok(())
            }
            Err(err) => {
                // Only the first failure can have taken effect; later calls are refused.
                let first = self.errored.is_none();
                self.after_call("a keyspace creation", Err(err))?;
                if first {
                    self.history.create_failed(&name);
                }
                Ok(())
            }
        }
    }

    /// Drops a live keyspace other than `"default"`, sometimes with an iterator over it
    /// open, which must still yield what it saw.
    fn drop_keyspace(&mut self) -> Result<(), String> {
        let names: Vec<String> = self
            .handles
            .keys()
            .filter(|name| *name != DEFAULT)
            .cloned()
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let name = names[self.rng.random_range(0..names.len())].clone();
        if self.rng.random_bool(0.4) {
            self.open_iterator(&name);
        }
        let result = self.db().drop_keyspace(&name);
        self.note(format!(
            "drop {name}: {}",
            if result.is_ok() { "ok" } else { "err" }
        ));
        match result {
            Ok(()) => {
                self.after_call("a keyspace drop", Ok(()))?;
                self.history.dropped(&name);
                self.tally.dropped += 1;
                let handle = self.handles.remove(&name).expect("a live keyspace");
                if self.dropped.len() < 4 {
                    self.dropped.push(handle);
                }
                for check in &mut self.snapshots {
                    if check.keyspace == name {
                        check.dropped = true;
                    }
                }
                Ok(())
            }
            Err(err) => {
                let first = self.errored.is_none();
                self.after_call("a keyspace drop", Err(err))?;
                if first {
                    self.history.drop_failed(&name);
                }
                Ok(())
            }
        }
    }

    /// A call through the handle of a dropped keyspace: it must fail with
    /// `KeyspaceDropped`, a batch that also writes in a live keyspace must leave that one
    /// untouched, and nothing may be poisoned.
    fn use_dropped_handle(&mut self) -> Result<(), String> {
        if self.dropped.is_empty() || self.errored.is_some() {
            return Ok(());
        }
        let handle = self.dropped[self.rng.random_range(0..self.dropped.len())].clone();
        let (key, value) = (self.key(), self.value());
        let kind = self.rng.random_range(0..5);
        let live = self.any_keyspace();
        let bounds = self.range_bounds();
        let result = match kind {
            0 => handle.put(&key, &value),
            1 => handle.get(&key).map(|_| ()),
            2 => collect(handle.iter()).map(|_| ()),
            3 => {
                let mut batch = WriteBatch::new();
                batch.put_in(&self.handles[&live], &key, &value);
                // An empty range adds nothing to a batch, not even its keyspace.
                if range_is_empty(&bounds.0, &bounds.1) || self.rng.random_bool(0.5) {
                    batch.delete_in(&handle, &key);
                } else {
                    batch.delete_range_in::<Vec<u8>, _>(&handle, bounds);
                }
                self.db().write(batch)
            }
            // Refused even for an empty range.
            _ => handle.delete_range::<Vec<u8>, _>(bounds),
        };
        self.note(format!("call {kind} on dropped {}", handle.name()));
        match result {
            Err(Error::KeyspaceDropped { name }) if name == handle.name() => {}
            Err(err) if is_poisoned(&err) && self.fs.injected() > self.injected_counted => {
                // A background failure (a flush inside an earlier acknowledged write)
                // poisoned the database first.
                return self.after_call("a call on a dropped keyspace", Err(err));
            }
            other => {
                return Err(self.fail(format!(
                    "call {kind} on the handle of dropped keyspace {:?} gave {other:?}, \
                     not KeyspaceDropped",
                    handle.name()
                )));
            }
        }
        if kind == 3 {
            let got = self.handles[&live].get(&key);
            let want = self.history.current_of(&live).and_then(|s| s.get(&key));
            if !matches!(&got, Ok(v) if v.as_deref() == want.map(Vec::as_slice)) {
                return Err(self.fail(format!(
                    "a batch refused for a dropped keyspace left {live}/{} = {got:?}, the \
                     model holds {:?}",
                    show(&key),
                    want.map(|v| show(v))
                )));
            }
        }
        Ok(())
    }

    /// Whether the database refuses writes now (probed with a sync, which changes nothing
    /// a model tracks).
    fn poisoned_now(&self) -> bool {
        matches!(self.db().sync(), Err(Error::Poisoned { .. }))
    }

    /// Checks a read of a key of a keyspace against the model (while every write's
    /// outcome is known).
    fn check_get(&mut self) -> Result<(), String> {
        let keyspace = self.any_keyspace();
        let key = self.key();
        let plain = keyspace == DEFAULT && self.rng.random_bool(0.5);
        if self.errored.is_some() {
            return Ok(());
        }
        let before = self.fs.injected();
        let got = if plain {
            self.db().get(&key)
        } else {
            self.handles[&keyspace].get(&key)
        };
        let want = self.history.current_of(&keyspace).and_then(|s| s.get(&key));
        match got {
            Ok(value) if value.as_deref() == want.map(Vec::as_slice) => Ok(()),
            Err(err) if self.injected_read_error(before, &err) => {
                self.note(format!("get({keyspace}) -> {err}"));
                Ok(())
            }
            other => Err(self.fail(format!(
                "get({keyspace}/{}) returned {other:?}, the model holds {:?}",
                show(&key),
                want.map(|v| show(v))
            ))),
        }
    }

    /// Checks a range or prefix scan of a keyspace, and the list of keyspaces, against
    /// the model.
    fn check_scan(&mut self) -> Result<(), String> {
        if self.errored.is_some() {
            return Ok(());
        }
        let names = self.db().keyspace_names();
        if !names.iter().map(String::as_str).eq(self.history.names()) {
            return Err(self.fail(format!(
                "keyspace_names() gave {names:?}, the model holds {:?}",
                self.history.names().collect::<Vec<_>>()
            )));
        }
        let keyspace = self.any_keyspace();
        let model = self
            .history
            .current_of(&keyspace)
            .cloned()
            .unwrap_or_default();
        let handle = self.handles[&keyspace].clone();
        let before = self.fs.injected();
        let (got, want, what) = if self.rng.random_bool(0.3) {
            let prefix = format!("k{}", self.rng.random_range(0..4)).into_bytes();
            let want: State = model
                .into_iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .collect();
            (collect(handle.prefix(&prefix)), want, "prefix")
        } else {
            let (low, high) = (self.key(), self.key());
            let (low, high) = if low <= high {
                (low, high)
            } else {
                (high, low)
            };
            let want: State = model
                .range(low.clone()..high.clone())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (collect(handle.range(low..high)), want, "range")
        };
        let got = match got {
            Ok(got) => got,
            Err(err) if self.injected_read_error(before, &err) => {
                self.note(format!("a {what} scan of {keyspace} -> {err}"));
                return Ok(());
            }
            Err(err) => {
                return Err(self.fail(format!("a {what} scan of {keyspace} failed: {err}")));
            }
        };
        if got != want {
            return Err(self.fail(format!(
                "a {what} scan of {keyspace} returned {} pairs, the model {}",
                got.len(),
                want.len()
            )));
        }
        Ok(())
    }

    /// Takes one snapshot of the database and reads it in some keyspaces: one point in
    /// time for all of them.
    fn take_snapshot(&mut self) {
        if self.errored.is_some() || self.snapshots.len() >= MAX_READERS {
            return;
        }
        let snapshot = self.db().snapshot();
        let names: Vec<String> = self.handles.keys().cloned().collect();
        for name in names {
            if self.snapshots.len() >= MAX_READERS || self.rng.random_bool(0.4) {
                continue;
            }
            let state = self.history.current_of(&name).cloned().unwrap_or_default();
            // "default" is read through the snapshot itself or through its keyspace.
            let of_keyspace = if name == DEFAULT && self.rng.random_bool(0.5) {
                self.db().snapshot()
            } else {
                snapshot.keyspace(&self.handles[&name])
            };
            self.snapshots.push(SnapshotCheck {
                keyspace: name,
                snapshot: of_keyspace,
                state,
                dropped: false,
            });
        }
    }

    /// Reads a snapshot: it shows the state it was taken over, or, once its keyspace is
    /// dropped, that or `KeyspaceDropped`.
    fn check_snapshot(&mut self) -> Result<(), String> {
        if self.snapshots.is_empty() {
            return Ok(());
        }
        let at = self.rng.random_range(0..self.snapshots.len());
        let before = self.fs.injected();
        let check = &self.snapshots[at];
        let got = collect(check.snapshot.iter());
        match got {
            Ok(got) if got == check.state => {}
            Err(err) if self.injected_read_error(before, &err) => {
                self.note(format!("a snapshot scan -> {err}"));
            }
            Err(Error::KeyspaceDropped { .. }) if check.dropped => {}
            Ok(got) => {
                return Err(self.fail(format!(
                    "a snapshot of {} shows {} pairs, it was taken over {}",
                    check.keyspace,
                    got.len(),
                    check.state.len()
                )));
            }
            Err(err) => {
                return Err(self.fail(format!(
                    "a snapshot scan of {} failed: {err}",
                    check.keyspace
                )));
            }
        }
        if self.rng.random_bool(0.3) {
            self.snapshots.swap_remove(at);
        }
        Ok(())
    }

    /// Opens an iterator over keyspace `name`, to be read later.
    fn open_iterator(&mut self, name: &str) {
        if self.errored.is_some() || self.iterators.len() >= MAX_READERS {
            return;
        }
        let state = self.history.current_of(name).cloned().unwrap_or_default();
        let iterator = self.handles[name].iter();
        self.iterators.push((name.to_string(), iterator, state));
    }

    /// Reads an iterator opened earlier: it yields what its keyspace held when it was
    /// opened, whatever was written, flushed, compacted or dropped since.
    fn check_iterator(&mut self) -> Result<(), String> {
        if self.iterators.is_empty() {
            return Ok(());
        }
        let at = self.rng.random_range(0..self.iterators.len());
        let (name, iterator, want) = self.iterators.swap_remove(at);
        let before = self.fs.injected();
        let got = match collect(iterator) {
            Ok(got) => got,
            Err(err) if self.injected_read_error(before, &err) => {
                self.note(format!("an iterator over {name} -> {err}"));
                return Ok(());
            }
            Err(err) => return Err(self.fail(format!("an iterator over {name} failed: {err}"))),
        };
        if got != want {
            return Err(self.fail(format!(
                "an iterator over {name} yielded {} pairs, it was opened over {}",
                got.len(),
                want.len()
            )));
        }
        Ok(())
    }

    /// One operation of the workload.
    pub(super) fn step(&mut self, plan: &Plan) -> Result<(), String> {
        match self.rng.random_range(0..100) {
            0..=31 => {
                let op = if self.rng.random_bool(0.08) {
                    self.range_op()
                } else {
                    self.keyspace_op(0.0)
                };
                let sync = self.rng.random_bool(0.08);
                self.write(vec![op], sync)
            }
            32..=40 => {
                let op = self.keyspace_op(1.0);
                self.write(vec![op], false)
            }
            41..=50 => {
                let n = self.rng.random_range(2..=6);
                let ops = self.batch_ops(n, 0.07);
                let sync = self.rng.random_bool(0.15);
                self.write(ops, sync)
            }
            51..=56 => self.check_get(),
            57..=59 => self.check_scan(),
            60 => {
                self.take_snapshot();
                Ok(())
            }
            61 => {
                let name = self.any_keyspace();
                self.open_iterator(&name);
                Ok(())
            }
            62..=63 => self.check_snapshot(),
            64 => self.check_iterator(),
            65..=68 => {
                let result = self.db().sync();
                let ok = result.is_ok();
                self.after_call("sync", result)?;
                if ok {
                    self.history.all_durable();
                }
                Ok(())
            }
            69..=71 => {
                let result = self.db().flush();
                let ok = result.is_ok();
                self.after_call("flush", result)?;
                if ok {
                    self.history.all_durable();
                }
                Ok(())
            }
            72..=80 => {
                let result = self.db().step_background().map(|_| ());
                self.after_call("background step", result)
            }
            81 => {
                // A manual compaction that fails to write its outputs leaves the tree as
                // it was and the write path healthy: it reports the error without
                // poisoning the database (a failed flush or manifest edit inside it does).
                let result = self.db().compact();
                match result {
                    Ok(()) => {
                        self.after_call("compact", Ok(()))?;
                        self.history.all_durable();
                        Ok(())
                    }
                    Err(err) if self.errored.is_none() && !self.poisoned_now() => {
                        if self.fs.injected() <= self.injected_counted {
                            return Err(
                                self.fail(format!("compact failed with no injected error: {err}"))
                            );
                        }
                        self.note(format!("compact -> {err} (not poisoned)"));
                        Ok(())
                    }
                    Err(err) => self.after_call("compact", Err(err)),
                }
            }
            82 => {
                let result = self.db().wait_for_compactions();
                self.after_call("wait for compactions", result)
            }
            83..=84 => self.create_keyspace(),
            85 => self.drop_keyspace(),
            86 => self.use_dropped_handle(),
            87..=89 => self.reopen(),
            90..=94 if plan.crashes => self.crash(),
            95 if plan.faults && self.fs.injected() == 0 => {
                self.arm_fault();
                Ok(())
            }
            _ => self.check_get(),
        }
    }
}
