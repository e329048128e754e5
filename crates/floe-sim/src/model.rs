//! The oracle: the keyspaces a run created and dropped, the writes it applied across them,
//! which of those are durable, and the check that a recovered database holds exactly the
//! keyspaces that must exist, each at the same prefix of the writes, a prefix that holds
//! every durable one.
//!
//! The writes of all keyspaces form one sequence, the order they were acknowledged in:
//! they share one log, and recovery must keep a prefix of that log, never a later write
//! of one keyspace without an earlier one of another (a table of a busy keyspace that
//! outlives an unsynced write of a quiet one). Creating and dropping a keyspace are
//! manifest edits, durable when they return; they are not part of the write sequence (an
//! unsynced write before a creation can be lost while the keyspace stays), so the oracle
//! checks them apart: the recovered keyspaces are exactly the ones live in the model, and
//! each keyspace's contents are the writes of the prefix made in the keyspace of that
//! name as it is now, not in an earlier one of the same name that was dropped.
//!
//! A write's operations are puts, deletes and range deletions, applied in the order they
//! were added: a put after a range deletion over its key survives it, and a range
//! deletion removes exactly the keys `BTreeMap::range` selects between its bounds (none
//! for an empty or inverted range).

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

/// A key-value state: user key to value.
pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// A database's contents: each keyspace's name with its state.
pub type DbState = BTreeMap<String, State>;

/// One operation of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A write of a value under a key.
    Put(Vec<u8>, Vec<u8>),
    /// The deletion of a key.
    Delete(Vec<u8>),
    /// The deletion of every key between two bounds, any of them (an empty or inverted
    /// range deletes nothing).
    DeleteRange(Bound<Vec<u8>>, Bound<Vec<u8>>),
}

impl Op {
    /// Whether this is a range deletion that no key can lie in: the engine adds nothing
    /// for it, so a batch of nothing else is no write at all (and syncs nothing).
    pub fn is_empty_range(&self) -> bool {
        match self {
            Op::DeleteRange(start, end) => range_is_empty(start, end),
            Op::Put(..) | Op::Delete(_) => false,
        }
    }
}

/// Whether no byte string lies between `start` and `end`. Byte strings are ordered so
/// that `key + [0]` is the least one above `key`: `(a, ..` starts at `a + [0]` and
/// `..= b)` ends before `b + [0]`, so the range is empty exactly when its half-open end
/// is at or below its half-open start.
pub fn range_is_empty(start: &Bound<Vec<u8>>, end: &Bound<Vec<u8>>) -> bool {
    let successor = |key: &[u8]| [key, &[0]].concat();
    let low = match start {
        Bound::Included(key) => key.clone(),
        Bound::Excluded(key) => successor(key),
        Bound::Unbounded => Vec::new(),
    };
    let high = match end {
        Bound::Included(key) => successor(key),
        Bound::Excluded(key) => key.clone(),
        Bound::Unbounded => return false,
    };
    high <= low
}

/// Removes every key of `state` between `start` and `end`, as `BTreeMap::range` would
/// select them (an empty or inverted range, which `range` refuses, removes nothing).
pub fn remove_range(state: &mut State, start: &Bound<Vec<u8>>, end: &Bound<Vec<u8>>) {
    if range_is_empty(start, end) {
        debug_assert!(
            !state
                .keys()
                .any(|key| (start.clone(), end.clone()).contains(key)),
            "an empty range holds a key"
        );
        return;
    }
    let covered: Vec<Vec<u8>> = state
        .range::<Vec<u8>, _>((start.as_ref(), end.as_ref()))
        .map(|(key, _)| key.clone())
        .collect();
    for key in covered {
        state.remove(&key);
    }
}

/// One operation in the keyspace of that name.
pub type KeyspaceOp = (String, Op);

/// The name of the keyspace every database has.
pub const DEFAULT: &str = "default";

/// A keyspace as the model numbers it: one per creation, so that a keyspace dropped and
/// created again under the same name is another one.
type Incarnation = usize;

/// The call that failed, last in the history: it may have taken effect or not.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    /// The last write, present or absent as a whole.
    Write,
    /// The creation of this keyspace: it may exist (empty) or not.
    Create(String),
    /// The drop of this keyspace: it may be gone or still hold its writes.
    Drop(String),
}

/// What a run has done since its base state.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The state each keyspace began with: what the database held when this history
    /// began (a fresh database, or one just recovered and checked), empty for a keyspace
    /// created since.
    base: BTreeMap<Incarnation, State>,
    /// How many incarnations were handed out.
    incarnations: usize,
    /// The live keyspaces by name, after every creation and drop that returned `Ok`.
    live: BTreeMap<String, Incarnation>,
    /// The writes, in commit order, each atomic across its keyspaces. The last one may be
    /// uncertain (`pending` is `Write`).
    writes: Vec<Vec<(Incarnation, Op)>>,
    /// How many of the first writes are durable: they must survive any crash.
    durable: usize,
    /// The first call that failed, if one did (every later call is refused).
    pending: Option<Pending>,
    /// The contents of every live keyspace after every write, kept up to date for reads.
    current: DbState,
}

/// Applies one operation to `state`.
fn apply(state: &mut State, op: &Op) {
    match op {
        Op::Put(key, value) => {
            state.insert(key.clone(), value.clone());
        }
        Op::Delete(key) => {
            state.remove(key);
        }
        Op::DeleteRange(start, end) => remove_range(state, start, end),
    }
}

impl History {
    /// A history starting from `base` (which holds `"default"`), all of which is durable.
    pub fn new(mut base: DbState) -> History {
        base.entry(DEFAULT.to_string()).or_default();
        let mut history = History {
            current: base.clone(),
            ..History::default()
        };
        for (name, state) in base {
            let incarnation = history.next_incarnation();
            history.base.insert(incarnation, state);
            history.live.insert(name, incarnation);
        }
        history
    }

    fn next_incarnation(&mut self) -> Incarnation {
        self.incarnations += 1;
        self.incarnations - 1
    }

    /// The write `write` with each keyspace name resolved to the live keyspace.
    fn resolve(&self, write: Vec<KeyspaceOp>) -> Vec<(Incarnation, Op)> {
        write
            .into_iter()
            .map(|(name, op)| {
                let incarnation = *self
                    .live
                    .get(&name)
                    .unwrap_or_else(|| panic!("a write in keyspace {name:?}, which is not live"));
                (incarnation, op)
            })
            .collect()
    }

    /// Records a write whose call returned `Ok`; each of its keyspaces must be live.
    pub fn acknowledged(&mut self, write: Vec<KeyspaceOp>) {
        debug_assert!(
            self.pending.is_none(),
            "no call succeeds after a failed one"
        );
        for (name, op) in &write {
            apply(self.current.get_mut(name).expect("a live keyspace"), op);
        }
        let write = self.resolve(write);
        self.writes.push(write);
    }

    /// Records a write whose call failed: it may or may not have taken effect.
    pub fn failed(&mut self, write: Vec<KeyspaceOp>) {
        if self.pending.is_none() {
            let write = self.resolve(write);
            self.writes.push(write);
            self.pending = Some(Pending::Write);
        }
    }

    /// Records the creation of keyspace `name`, which returned `Ok`.
    pub fn created(&mut self, name: &str) {
        debug_assert!(
            self.pending.is_none(),
            "no call succeeds after a failed one"
        );
        assert!(!self.live.contains_key(name), "{name:?} exists already");
        let incarnation = self.next_incarnation();
        self.base.insert(incarnation, State::new());
        self.live.insert(name.to_string(), incarnation);
        self.current.insert(name.to_string(), State::new());
    }

    /// Records a creation of keyspace `name` that failed: it may exist or not.
    pub fn create_failed(&mut self, name: &str) {
        if self.pending.is_none() {
            self.pending = Some(Pending::Create(name.to_string()));
        }
    }

    /// Records the drop of keyspace `name`, which returned `Ok`.
    pub fn dropped(&mut self, name: &str) {
        debug_assert!(
            self.pending.is_none(),
            "no call succeeds after a failed one"
        );
        self.live.remove(name).expect("a live keyspace");
        self.current.remove(name);
    }

    /// Records a drop of keyspace `name` that failed: it may be gone or not.
    pub fn drop_failed(&mut self, name: &str) {
        if self.pending.is_none() {
            self.pending = Some(Pending::Drop(name.to_string()));
        }
    }

    /// Every acknowledged write so far is durable.
    pub fn all_durable(&mut self) {
        self.durable = self.writes.len() - usize::from(self.pending == Some(Pending::Write));
    }

    /// The contents of every live keyspace, as reads must see them.
    pub fn current(&self) -> &DbState {
        &self.current
    }

    /// The contents of the live keyspace `name`.
    pub fn current_of(&self, name: &str) -> Option<&State> {
        self.current.get(name)
    }

    /// The names of the live keyspaces, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.live.keys().map(String::as_str)
    }

    /// How many writes were applied (the uncertain one included).
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether no write was applied.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// How many writes are durable.
    pub fn durable(&self) -> usize {
        self.durable
    }

    /// The keyspaces a recovery may hold, each by name with its incarnation (`None`: a
    /// creation that failed and took effect, which holds nothing): the live ones, and if
    /// a creation or a drop failed, also the live ones with that call's effect.
    fn possible_keyspaces(&self) -> Vec<BTreeMap<String, Option<Incarnation>>> {
        let live: BTreeMap<String, Option<Incarnation>> = self
            .live
            .iter()
            .map(|(name, incarnation)| (name.clone(), Some(*incarnation)))
            .collect();
        let mut other = live.clone();
        match &self.pending {
            Some(Pending::Create(name)) => {
                other.insert(name.clone(), None);
            }
            Some(Pending::Drop(name)) => {
                other.remove(name);
            }
            Some(Pending::Write) | None => return vec![live],
        }
        vec![live, other]
    }

    /// Checks a recovered database `state`: it must hold exactly the keyspaces that must
    /// exist, and its contents must equal the state after some prefix of the writes at
    /// least as long as the durable part. Returns that prefix's length, or a description
    /// of what is wrong.
    pub fn check_recovered(&self, state: &DbState) -> Result<usize, String> {
        let possible = self.possible_keyspaces();
        let Some(keyspaces) = possible
            .iter()
            .find(|keyspaces| keyspaces.keys().eq(state.keys()))
        else {
            let want: Vec<String> = possible
                .iter()
                .map(|keyspaces| format!("{:?}", keyspaces.keys().collect::<Vec<_>>()))
                .collect();
            return Err(format!(
                "the recovered keyspaces {:?} are not the ones that must exist ({})",
                state.keys().collect::<Vec<_>>(),
                want.join(" or ")
            ));
        };
        let names: BTreeMap<Incarnation, &str> = keyspaces
            .iter()
            .filter_map(|(name, incarnation)| incarnation.map(|i| (i, name.as_str())))
            .collect();
        let mut model: DbState = keyspaces
            .iter()
            .map(|(name, incarnation)| {
                let base = incarnation
                    .and_then(|i| self.base.get(&i).cloned())
                    .unwrap_or_default();
                (name.clone(), base)
            })
            .collect();
        let apply_write = |model: &mut DbState, write: &[(Incarnation, Op)]| {
            for (incarnation, op) in write {
                if let Some(name) = names.get(incarnation) {
                    apply(model.get_mut(*name).expect("a recovered keyspace"), op);
                }
            }
        };
        for write in &self.writes[..self.durable] {
            apply_write(&mut model, write);
        }
        for k in self.durable..=self.writes.len() {
            if k > self.durable {
                apply_write(&mut model, &self.writes[k - 1]);
            }
            if &model == state {
                return Ok(k);
            }
        }
        Err(self.describe_mismatch(&names, state))
    }

    /// Says how `state` differs from the durable prefix and from the full history, so
    /// that a failure names the keyspaces and keys involved: for each keyspace the
    /// prefixes its contents alone would match (a hole across keyspaces shows as
    /// keyspaces that match disjoint prefixes), then the entries that differ. `names`
    /// are the recovered keyspaces' incarnations.
    fn describe_mismatch(&self, names: &BTreeMap<Incarnation, &str>, state: &DbState) -> String {
        let apply_write = |model: &mut DbState, write: &[(Incarnation, Op)]| {
            for (incarnation, op) in write {
                if let Some(name) = names.get(incarnation) {
                    apply(model.get_mut(*name).expect("a recovered keyspace"), op);
                }
            }
        };
        let mut model: DbState = names
            .iter()
            .map(|(i, name)| {
                let base = self.base.get(i).cloned().unwrap_or_default();
                ((*name).to_string(), base)
            })
            .collect();
        for write in &self.writes[..self.durable] {
            apply_write(&mut model, write);
        }
        let durable = model.clone();
        let mut matching: BTreeMap<&str, Vec<usize>> =
            names.values().map(|name| (*name, Vec::new())).collect();
        for k in self.durable..=self.writes.len() {
            if k > self.durable {
                apply_write(&mut model, &self.writes[k - 1]);
            }
            for (name, at) in &mut matching {
                if state.get(*name) == model.get(*name) {
                    at.push(k);
                }
            }
        }
        let all = model;
        let prefixes: Vec<String> = matching
            .iter()
            .map(|(name, ks)| format!("{name}: {}", ranges(ks)))
            .collect();
        let empty = State::new();
        let mut lost = Vec::new();
        for (name, want) in &durable {
            let got = state.get(name).unwrap_or(&empty);
            for (k, v) in want.iter().filter(|(k, v)| got.get(*k) != Some(*v)) {
                lost.push(format!(
                    "{name}/{} = {} (found {})",
                    show(k),
                    show(v),
                    got.get(k).map_or_else(|| "none".to_string(), |v| show(v))
                ));
            }
        }
        let mut unknown = Vec::new();
        for (name, got) in state {
            let (all, durable) = (
                all.get(name).unwrap_or(&empty),
                durable.get(name).unwrap_or(&empty),
            );
            for (k, v) in got
                .iter()
                .filter(|(k, v)| all.get(*k) != Some(*v) && durable.get(*k) != Some(*v))
            {
                unknown.push(format!("{name}/{} = {}", show(k), show(v)));
            }
        }
        lost.truncate(4);
        unknown.truncate(4);
        format!(
            "the recovered state is no prefix of the {} writes ({} durable); the prefixes \
             each keyspace alone matches: [{}]; entries of the durable prefix missing or \
             changed: [{}]; entries no prefix explains: [{}]",
            self.writes.len(),
            self.durable,
            prefixes.join(", "),
            lost.join(", "),
            unknown.join(", ")
        )
    }
}

/// Shows a key or a value, a long one cut after its first 24 bytes.
fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(24)]).into_owned();
    if bytes.len() > 24 {
        format!("{text}... ({} bytes)", bytes.len())
    } else {
        text
    }
}

/// Shows sorted numbers as ranges: `0-3 5 7-8`, or `none`.
fn ranges(numbers: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut at = 0;
    while at < numbers.len() {
        let mut end = at;
        while end + 1 < numbers.len() && numbers[end + 1] == numbers[end] + 1 {
            end += 1;
        }
        out.push(if end == at {
            numbers[at].to_string()
        } else {
            format!("{}-{}", numbers[at], numbers[end])
        });
        at = end + 1;
    }
    if out.is_empty() {
        "none".to_string()
    } else {
        out.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(keyspace: &str, k: &str, v: &str) -> KeyspaceOp {
        (
            keyspace.to_string(),
            Op::Put(k.as_bytes().to_vec(), v.as_bytes().to_vec()),
        )
    }

    fn delete(keyspace: &str, k: &str) -> KeyspaceOp {
        (keyspace.to_string(), Op::Delete(k.as_bytes().to_vec()))
    }

    fn bound(text: Bound<&str>) -> Bound<Vec<u8>> {
        text.map(|key| key.as_bytes().to_vec())
    }

    fn delete_range(keyspace: &str, start: Bound<&str>, end: Bound<&str>) -> KeyspaceOp {
        (
            keyspace.to_string(),
            Op::DeleteRange(bound(start), bound(end)),
        )
    }

    fn state(pairs: &[(&str, &str)]) -> State {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    fn db(keyspaces: &[(&str, &[(&str, &str)])]) -> DbState {
        keyspaces
            .iter()
            .map(|(name, pairs)| ((*name).to_string(), state(pairs)))
            .collect()
    }

    #[test]
    fn prefixes_at_least_as_long_as_the_durable_part_pass_and_others_fail() {
        let mut history = History::new(DbState::new());
        history.acknowledged(vec![put(DEFAULT, "a", "1")]);
        history.all_durable();
        history.acknowledged(vec![put(DEFAULT, "b", "2"), put(DEFAULT, "c", "3")]);
        history.acknowledged(vec![delete(DEFAULT, "a")]);
        let one = |pairs: &[(&str, &str)]| db(&[(DEFAULT, pairs)]);
        assert_eq!(history.check_recovered(&one(&[("a", "1")])), Ok(1));
        assert_eq!(
            history.check_recovered(&one(&[("a", "1"), ("b", "2"), ("c", "3")])),
            Ok(2)
        );
        assert_eq!(
            history.check_recovered(&one(&[("b", "2"), ("c", "3")])),
            Ok(3)
        );
        // A lost durable write, half a batch, a resurrected delete's absence of order.
        assert!(history.check_recovered(&one(&[])).is_err());
        assert!(
            history
                .check_recovered(&one(&[("a", "1"), ("b", "2")]))
                .is_err()
        );
        assert!(history.check_recovered(&one(&[("c", "3")])).is_err());
    }

    #[test]
    fn a_failed_write_may_be_present_or_absent_whole() {
        let mut history = History::new(db(&[(DEFAULT, &[("x", "0")])]));
        history.acknowledged(vec![put(DEFAULT, "a", "1")]);
        history.all_durable();
        history.failed(vec![put(DEFAULT, "b", "2"), put(DEFAULT, "c", "3")]);
        history.all_durable();
        assert_eq!(history.durable(), 1);
        let one = |pairs: &[(&str, &str)]| db(&[(DEFAULT, pairs)]);
        assert_eq!(
            history.check_recovered(&one(&[("x", "0"), ("a", "1")])),
            Ok(1)
        );
        let all = one(&[("x", "0"), ("a", "1"), ("b", "2"), ("c", "3")]);
        assert_eq!(history.check_recovered(&all), Ok(2));
        assert!(
            history
                .check_recovered(&one(&[("x", "0"), ("a", "1"), ("b", "2")]))
                .is_err()
        );
    }

    #[test]
    fn keyspaces_share_one_prefix_and_batches_are_whole_across_them() {
        let mut history = History::new(DbState::new());
        history.created("quiet");
        history.created("busy");
        history.acknowledged(vec![put("quiet", "q", "1")]);
        history.acknowledged(vec![put("busy", "b", "1")]);
        history.acknowledged(vec![put("quiet", "q", "2"), put("busy", "b", "2")]);
        let empty: &[(&str, &str)] = &[];
        let at = |quiet: &[(&str, &str)], busy: &[(&str, &str)]| {
            db(&[(DEFAULT, empty), ("quiet", quiet), ("busy", busy)])
        };
        assert_eq!(history.check_recovered(&at(empty, empty)), Ok(0));
        assert_eq!(history.check_recovered(&at(&[("q", "1")], empty)), Ok(1));
        assert_eq!(
            history.check_recovered(&at(&[("q", "1")], &[("b", "1")])),
            Ok(2)
        );
        assert_eq!(
            history.check_recovered(&at(&[("q", "2")], &[("b", "2")])),
            Ok(3)
        );
        // The busy keyspace's write without the quiet one's earlier write: a hole.
        assert!(history.check_recovered(&at(empty, &[("b", "1")])).is_err());
        // Half of the batch across both.
        assert!(
            history
                .check_recovered(&at(&[("q", "2")], &[("b", "1")]))
                .is_err()
        );
        // A keyspace missing or one too many.
        assert!(
            history
                .check_recovered(&db(&[(DEFAULT, empty), ("quiet", empty)]))
                .is_err()
        );
        let mut extra = at(empty, empty);
        extra.insert("other".to_string(), State::new());
        assert!(history.check_recovered(&extra).is_err());
    }

    #[test]
    fn a_dropped_keyspace_is_gone_and_one_created_again_starts_empty() {
        let mut history = History::new(db(&[(DEFAULT, &[]), ("a", &[("k", "0")])]));
        history.acknowledged(vec![put("a", "k", "1"), put(DEFAULT, "d", "1")]);
        history.dropped("a");
        history.created("a");
        history.acknowledged(vec![put("a", "j", "2")]);
        let empty: &[(&str, &str)] = &[];
        assert_eq!(
            history.check_recovered(&db(&[(DEFAULT, empty), ("a", empty)])),
            Ok(0)
        );
        assert_eq!(
            history.check_recovered(&db(&[(DEFAULT, &[("d", "1")]), ("a", &[("j", "2")])])),
            Ok(2)
        );
        // The old keyspace's data under the new one's name.
        assert!(
            history
                .check_recovered(&db(&[(DEFAULT, empty), ("a", &[("k", "0")])]))
                .is_err()
        );
        assert!(history.check_recovered(&db(&[(DEFAULT, empty)])).is_err());
    }

    #[test]
    fn a_failed_creation_or_drop_may_have_taken_effect() {
        let empty: &[(&str, &str)] = &[];
        let mut created = History::new(DbState::new());
        created.acknowledged(vec![put(DEFAULT, "a", "1")]);
        created.create_failed("new");
        assert_eq!(created.check_recovered(&db(&[(DEFAULT, empty)])), Ok(0));
        assert_eq!(
            created.check_recovered(&db(&[(DEFAULT, &[("a", "1")]), ("new", empty)])),
            Ok(1)
        );
        assert!(
            created
                .check_recovered(&db(&[(DEFAULT, empty), ("new", &[("a", "1")])]))
                .is_err()
        );
        let mut dropped = History::new(db(&[(DEFAULT, empty), ("old", &[("k", "0")])]));
        dropped.drop_failed("old");
        assert_eq!(dropped.check_recovered(&db(&[(DEFAULT, empty)])), Ok(0));
        assert_eq!(
            dropped.check_recovered(&db(&[(DEFAULT, empty), ("old", &[("k", "0")])])),
            Ok(0)
        );
        assert!(
            dropped
                .check_recovered(&db(&[(DEFAULT, empty), ("old", empty)]))
                .is_err()
        );
    }

    /// Every pair of bound kinds over keys that sit next to each other (no key lies
    /// between `b` and `b\0`), checked against `RangeBounds::contains` key by key.
    #[test]
    fn a_range_deletion_removes_exactly_the_keys_between_its_bounds() {
        use Bound::{Excluded, Included, Unbounded};
        let keys = ["", "a", "b", "b\0", "b\0\0", "ba", "c", "d"];
        let full: State = keys
            .iter()
            .map(|k| (k.as_bytes().to_vec(), b"v".to_vec()))
            .collect();
        let bounds = |key: &'static str| [Included(key), Excluded(key)];
        let mut all: Vec<Bound<&str>> = vec![Unbounded];
        for key in keys {
            all.extend(bounds(key));
        }
        for start in &all {
            for end in &all {
                let (start, end) = (bound(*start), bound(*end));
                let mut state = full.clone();
                remove_range(&mut state, &start, &end);
                let want: State = full
                    .iter()
                    .filter(|(k, _)| !(start.clone(), end.clone()).contains(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                assert_eq!(state, want, "{start:?}..{end:?}");
                // The least byte string past the start bound lies in the range unless
                // the range is empty (every other one past it is greater still).
                let least = match &start {
                    Included(key) => key.clone(),
                    Excluded(key) => [key.as_slice(), &[0]].concat(),
                    Unbounded => Vec::new(),
                };
                let empty = range_is_empty(&start, &end);
                assert_eq!(
                    empty,
                    !(start.clone(), end.clone()).contains(&least),
                    "{start:?}..{end:?}"
                );
                if empty {
                    assert_eq!(state, full, "{start:?}..{end:?}");
                }
            }
        }
        let none = State::new();
        let mut state = none.clone();
        remove_range(&mut state, &Unbounded, &Unbounded);
        assert_eq!(state, none);
    }

    #[test]
    fn range_deletions_are_writes_like_any_other_in_the_prefix() {
        use Bound::{Excluded, Included, Unbounded};
        let mut history = History::new(db(&[
            (DEFAULT, &[("a", "0"), ("b", "0"), ("c", "0")]),
            ("ks", &[("a", "0"), ("b", "0")]),
        ]));
        // A put after a range deletion over its key in one batch survives it.
        history.acknowledged(vec![
            put(DEFAULT, "d", "1"),
            delete_range(DEFAULT, Included("a"), Excluded("c")),
            put(DEFAULT, "b", "2"),
        ]);
        history.all_durable();
        // An inverted range deletes nothing.
        history.acknowledged(vec![delete_range("ks", Included("b"), Included("a"))]);
        history.acknowledged(vec![
            delete_range("ks", Excluded("a"), Unbounded),
            delete_range(DEFAULT, Unbounded, Included("b")),
        ]);
        let at =
            |default: &[(&str, &str)], ks: &[(&str, &str)]| db(&[(DEFAULT, default), ("ks", ks)]);
        let durable = [("b", "2"), ("c", "0"), ("d", "1")];
        assert_eq!(
            history.check_recovered(&at(&durable, &[("a", "0"), ("b", "0")])),
            Ok(1)
        );
        assert_eq!(
            history.check_recovered(&at(&[("c", "0"), ("d", "1")], &[("a", "0")])),
            Ok(3)
        );
        assert_eq!(
            history.current_of(DEFAULT),
            Some(&state(&[("c", "0"), ("d", "1")]))
        );
        // Half of the last batch (either half), and the first batch without its first
        // put, are no prefix.
        assert!(
            history
                .check_recovered(&at(&[("c", "0"), ("d", "1")], &[("a", "0"), ("b", "0")]))
                .is_err()
        );
        assert!(
            history
                .check_recovered(&at(&[("b", "2"), ("c", "0")], &[("a", "0"), ("b", "0")]))
                .is_err()
        );
        assert!(
            history
                .check_recovered(&at(&durable, &[("a", "0")]))
                .is_err()
        );
        assert!(Op::DeleteRange(Excluded(b"a".to_vec()), Included(b"a".to_vec())).is_empty_range());
        assert!(!Op::DeleteRange(Excluded(b"a".to_vec()), Unbounded).is_empty_range());
        assert!(!Op::Delete(b"a".to_vec()).is_empty_range());
    }
}
