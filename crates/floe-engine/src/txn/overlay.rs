//! A transaction's scans: the snapshot's pairs with the transaction's own pending writes
//! merged in, in both directions.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::Result;

/// One pending write: a value, or `None` for a deletion.
pub(crate) type PendingWrite = (Bytes, Option<Bytes>);

/// Merges `pending` (ascending by key, one write per key) over `base`, a double-ended
/// stream of `(key, value)` pairs ascending by key: a pending value replaces or adds its
/// key, a pending deletion hides it.
///
/// Each end keeps the one base pair it read ahead (`front` and `back`). The base yields
/// every pair once across both ends, so when it runs dry from one end the pair the other
/// end read ahead is the last one left, and that end takes it.
pub(crate) struct Overlay<I> {
    base: I,
    pending: VecDeque<PendingWrite>,
    front: Option<(Bytes, Bytes)>,
    back: Option<(Bytes, Bytes)>,
    /// Set once an error was yielded.
    done: bool,
}

impl<I> Overlay<I>
where
    I: DoubleEndedIterator<Item = Result<(Bytes, Bytes)>>,
{
    /// `base` with `pending` merged in.
    pub(crate) fn new(base: I, pending: Vec<PendingWrite>) -> Overlay<I> {
        Overlay {
            base,
            pending: pending.into(),
            front: None,
            back: None,
            done: false,
        }
    }

    /// The next base pair from the front: read ahead, or the back's read-ahead once the
    /// base is dry.
    fn peek_front(&mut self) -> Result<Option<&(Bytes, Bytes)>> {
        if self.front.is_none() {
            self.front = match self.base.next().transpose()? {
                Some(pair) => Some(pair),
                None => self.back.take(),
            };
        }
        Ok(self.front.as_ref())
    }

    fn peek_back(&mut self) -> Result<Option<&(Bytes, Bytes)>> {
        if self.back.is_none() {
            self.back = match self.base.next_back().transpose()? {
                Some(pair) => Some(pair),
                None => self.front.take(),
            };
        }
        Ok(self.back.as_ref())
    }

    fn fail(&mut self, err: crate::Error) -> Option<Result<(Bytes, Bytes)>> {
        self.done = true;
        Some(Err(err))
    }
}

impl<I> Iterator for Overlay<I>
where
    I: DoubleEndedIterator<Item = Result<(Bytes, Bytes)>>,
{
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let base_key = match self.peek_front() {
                Ok(pair) => pair.map(|(key, _)| key.clone()),
                Err(err) => return self.fail(err),
            };
            let pending_first = self.pending.front().map(|(key, _)| key);
            let take_pending = match (&base_key, pending_first) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(base), Some(pending)) => pending <= base,
            };
            if !take_pending {
                return self.front.take().map(Ok);
            }
            let (key, write) = self.pending.pop_front()?;
            if base_key.as_ref() == Some(&key) {
                // The pending write replaces the base pair of the same key.
                self.front = None;
            }
            if let Some(value) = write {
                return Some(Ok((key, value)));
            }
        }
        None
    }
}

impl<I> DoubleEndedIterator for Overlay<I>
where
    I: DoubleEndedIterator<Item = Result<(Bytes, Bytes)>>,
{
    fn next_back(&mut self) -> Option<Self::Item> {
        while !self.done {
            let base_key = match self.peek_back() {
                Ok(pair) => pair.map(|(key, _)| key.clone()),
                Err(err) => return self.fail(err),
            };
            let pending_last = self.pending.back().map(|(key, _)| key);
            let take_pending = match (&base_key, pending_last) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(base), Some(pending)) => pending >= base,
            };
            if !take_pending {
                return self.back.take().map(Ok);
            }
            let (key, write) = self.pending.pop_back()?;
            if base_key.as_ref() == Some(&key) {
                self.back = None;
            }
            if let Some(value) = write {
                return Some(Ok((key, value)));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn overlay(
        base: &[&str],
        pending: &[(&str, Option<&str>)],
    ) -> Overlay<std::vec::IntoIter<Result<(Bytes, Bytes)>>> {
        let base: Vec<Result<(Bytes, Bytes)>> =
            base.iter().map(|k| Ok((b(k), b("base")))).collect();
        let pending = pending.iter().map(|(k, v)| (b(k), v.map(b))).collect();
        Overlay::new(base.into_iter(), pending)
    }

    fn keys(items: impl Iterator<Item = Result<(Bytes, Bytes)>>) -> Vec<String> {
        items
            .map(|kv| {
                let (k, v) = kv.unwrap();
                format!(
                    "{}={}",
                    String::from_utf8_lossy(&k),
                    String::from_utf8_lossy(&v)
                )
            })
            .collect()
    }

    #[test]
    fn pending_writes_replace_add_and_hide_in_both_directions() {
        let base = ["a", "c", "e", "g"];
        let pending = [
            ("b", Some("p")),
            ("c", None),
            ("e", Some("p")),
            ("h", Some("p")),
        ];
        let forward = keys(overlay(&base, &pending));
        assert_eq!(forward, ["a=base", "b=p", "e=p", "g=base", "h=p"]);
        let mut backward = keys(overlay(&base, &pending).rev());
        backward.reverse();
        assert_eq!(backward, forward);
    }

    /// Every way of alternating the two ends yields each pair exactly once, in order.
    #[test]
    fn mixed_ends_meet_without_loss_or_repeat() {
        let base = ["a", "c", "e", "g", "i"];
        let pending = [
            ("a", None),
            ("b", Some("p")),
            ("e", Some("p")),
            ("f", None),
            ("j", Some("p")),
        ];
        let all = keys(overlay(&base, &pending));
        for pattern in 0u32..64 {
            let mut iter = overlay(&base, &pending);
            let (mut front, mut back) = (Vec::new(), Vec::new());
            for step in 0.. {
                let item = if pattern >> (step % 6) & 1 == 0 {
                    iter.next().map(|kv| (true, kv))
                } else {
                    iter.next_back().map(|kv| (false, kv))
                };
                let Some((is_front, kv)) = item else {
                    // One end is dry; the other must be too.
                    assert!(iter.next().is_none() && iter.next_back().is_none());
                    break;
                };
                let (k, v) = kv.unwrap();
                let text = format!(
                    "{}={}",
                    String::from_utf8_lossy(&k),
                    String::from_utf8_lossy(&v)
                );
                if is_front {
                    front.push(text);
                } else {
                    back.push(text);
                }
            }
            back.reverse();
            front.extend(back);
            assert_eq!(front, all, "pattern {pattern:06b}");
        }
    }
}
