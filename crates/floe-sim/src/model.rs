//! The oracle: the writes a run applied, which of them are durable, and the check that a
//! recovered database is exactly a prefix of them that holds every durable one.

use std::collections::BTreeMap;

/// A key-value state: user key to value.
pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// One operation of a write: a put (`Some(value)`) or a delete (`None`).
pub type Op = (Vec<u8>, Option<Vec<u8>>);

/// What a run has written since its base state.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The state every write applies on top of: what the database held when this history
    /// began (a fresh database, or one just recovered and checked).
    base: State,
    /// The writes, in commit order, each atomic. The last one may be `uncertain`.
    writes: Vec<Vec<Op>>,
    /// How many of the first writes are durable: they must survive any crash.
    durable: usize,
    /// Whether the last write's call failed: it may be present or absent, as a whole.
    uncertain: bool,
    /// The state after every write, kept up to date for reads.
    current: State,
}

/// Applies one write to `state`.
fn apply(state: &mut State, write: &[Op]) {
    for (key, value) in write {
        match value {
            Some(value) => {
                state.insert(key.clone(), value.clone());
            }
            None => {
                state.remove(key);
            }
        }
    }
}

impl History {
    /// A history starting from `base`, all of which is durable.
    pub fn new(base: State) -> History {
        History {
            current: base.clone(),
            base,
            ..History::default()
        }
    }

    /// Records a write whose call returned `Ok`.
    pub fn acknowledged(&mut self, write: Vec<Op>) {
        debug_assert!(!self.uncertain, "no write succeeds after a failed one");
        apply(&mut self.current, &write);
        self.writes.push(write);
    }

    /// Records a write whose call failed: it may or may not have taken effect.
    pub fn failed(&mut self, write: Vec<Op>) {
        if !self.uncertain {
            self.writes.push(write);
            self.uncertain = true;
        }
    }

    /// Every acknowledged write so far is durable.
    pub fn all_durable(&mut self) {
        self.durable = self.writes.len() - usize::from(self.uncertain);
    }

    /// The state of every acknowledged write, as reads must see it.
    pub fn current(&self) -> &State {
        &self.current
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

    /// Checks a recovered `state`: it must equal the state after some prefix of the
    /// writes at least as long as the durable part. Returns that prefix's length, or a
    /// description of what is wrong.
    pub fn check_recovered(&self, state: &State) -> Result<usize, String> {
        let mut model = self.base.clone();
        for write in &self.writes[..self.durable] {
            apply(&mut model, write);
        }
        for k in self.durable..=self.writes.len() {
            if k > self.durable {
                apply(&mut model, &self.writes[k - 1]);
            }
            if &model == state {
                return Ok(k);
            }
        }
        Err(describe_mismatch(self, state))
    }
}

/// Says how `state` differs from the durable prefix and from the full history, so that a
/// failure names the keys involved.
fn describe_mismatch(history: &History, state: &State) -> String {
    let mut durable = history.base.clone();
    for write in &history.writes[..history.durable] {
        apply(&mut durable, write);
    }
    let lost: Vec<String> = durable
        .iter()
        .filter(|(k, v)| state.get(*k) != Some(*v))
        .take(4)
        .map(|(k, v)| {
            format!(
                "{} = {} (found {:?})",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v),
                state
                    .get(k)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            )
        })
        .collect();
    let mut all = history.current.clone();
    if history.uncertain
        && let Some(last) = history.writes.last()
    {
        apply(&mut all, last);
    }
    let unknown: Vec<String> = state
        .iter()
        .filter(|(k, v)| all.get(*k) != Some(*v) && durable.get(*k) != Some(*v))
        .take(4)
        .map(|(k, v)| {
            format!(
                "{} = {}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            )
        })
        .collect();
    format!(
        "the recovered state ({} keys) is no prefix of the {} writes ({} durable): \
         durable entries missing or changed: [{}]; entries no prefix explains: [{}]",
        state.len(),
        history.writes.len(),
        history.durable,
        lost.join(", "),
        unknown.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> Op {
        (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
    }

    fn state(pairs: &[(&str, &str)]) -> State {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn prefixes_at_least_as_long_as_the_durable_part_pass_and_others_fail() {
        let mut history = History::new(State::new());
        history.acknowledged(vec![put("a", "1")]);
        history.all_durable();
        history.acknowledged(vec![put("b", "2"), put("c", "3")]);
        history.acknowledged(vec![(b"a".to_vec(), None)]);
        assert_eq!(history.check_recovered(&state(&[("a", "1")])), Ok(1));
        assert_eq!(
            history.check_recovered(&state(&[("a", "1"), ("b", "2"), ("c", "3")])),
            Ok(2)
        );
        assert_eq!(
            history.check_recovered(&state(&[("b", "2"), ("c", "3")])),
            Ok(3)
        );
        // A lost durable write, half a batch, a resurrected delete's absence of order.
        assert!(history.check_recovered(&State::new()).is_err());
        assert!(
            history
                .check_recovered(&state(&[("a", "1"), ("b", "2")]))
                .is_err()
        );
        assert!(history.check_recovered(&state(&[("c", "3")])).is_err());
    }

    #[test]
    fn a_failed_write_may_be_present_or_absent_whole() {
        let mut history = History::new(state(&[("x", "0")]));
        history.acknowledged(vec![put("a", "1")]);
        history.all_durable();
        history.failed(vec![put("b", "2"), put("c", "3")]);
        history.all_durable();
        assert_eq!(history.durable(), 1);
        assert_eq!(
            history.check_recovered(&state(&[("x", "0"), ("a", "1")])),
            Ok(1)
        );
        let all = state(&[("x", "0"), ("a", "1"), ("b", "2"), ("c", "3")]);
        assert_eq!(history.check_recovered(&all), Ok(2));
        assert!(
            history
                .check_recovered(&state(&[("x", "0"), ("a", "1"), ("b", "2")]))
                .is_err()
        );
    }
}
