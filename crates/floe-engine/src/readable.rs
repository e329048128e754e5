//! [`Readable`], the read calls that [`crate::Db`], [`crate::Keyspace`] and
//! [`crate::Snapshot`] share, and the batched point lookup behind [`Readable::multi_get`].
//!
//! A multi-get answers exactly what one [`Readable::get`] per key would answer at one
//! point in time, and is cheaper than that many gets where the work can be shared: the
//! state and the visible sequence number are loaded once (in that order, as `read.rs`
//! explains), and the keys are probed in key order, source by source, in the order a get
//! consults them (memtables newest first, level-0 tables newest first, then each deeper
//! level). A key leaves the batch at the first source holding a version of it that the
//! read can see, a value or a tombstone, just as a get stops there.
//!
//! Key order is what the sources are sorted by, so each one is visited front to back. A
//! level-0 table (whose key ranges overlap) is probed only for the run of keys within its
//! range, found by two binary searches. A deeper level's tables do not overlap and are
//! sorted, so a cursor walks through them as the keys ascend, galloping forward from the
//! table of the key before rather than searching the level from the start for each key;
//! keys that fall into one table probe it one after another, while its index and blocks
//! are still in the cache. For example, with level 1 holding tables `[a..c] [d..f]
//! [g..k]` and the keys `b e e h z`: `b` probes `[a..c]`, the cursor moves on to
//! `[d..f]` for `e` (probed once; its duplicate copies the answer), to `[g..k]` for `h`,
//! and past the end for `z`, which no table of the level can hold.

use std::ops::{Range, RangeBounds};

use bytes::Bytes;
use floe_core::{SeqNo, ValueKind};
use floe_memtable::Lookup;

use crate::error::Result;
use crate::read::Iter;
use crate::version::{TableHandle, Tree};

/// The read calls of a consistent view of one keyspace: implemented by [`crate::Db`]
/// (which reads `"default"`), [`crate::Keyspace`] and [`crate::Snapshot`], so that code
/// can read from any of them.
///
/// `get`, `iter`, `range` and `prefix` are the types' own methods; the others are
/// available wherever this trait is in scope. Every call on a [`crate::Keyspace`] that was
/// dropped fails with [`crate::Error::KeyspaceDropped`] (an iterator yields that error).
///
/// ```
/// use floe_engine::{Db, Readable, Result};
///
/// /// The number of live keys, whatever the view.
/// fn count<R: Readable>(view: &R) -> Result<usize> {
///     view.iter().try_fold(0, |n, item| item.map(|_| n + 1))
/// }
///
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Db::open(dir.path())?;
/// let fruit = db.keyspace("fruit")?;
/// db.put("k", "v")?;
/// fruit.put("apple", "red")?;
/// let snapshot = db.snapshot();
/// fruit.put("banana", "yellow")?;
/// assert_eq!((count(&db)?, count(&fruit)?, count(&snapshot.keyspace(&fruit))?), (1, 2, 1));
/// assert_eq!(
///     fruit.multi_get(&["banana", "cherry", "apple"])?,
///     [Some("yellow".into()), None, Some("red".into())],
/// );
/// assert_eq!(fruit.first_key_value()?, Some(("apple".into(), "red".into())));
/// # Ok::<(), floe_engine::Error>(())
/// ```
pub trait Readable {
    /// The value of `key`, or `None` if it is absent.
    ///
    /// # Errors
    /// [`crate::Error::Corruption`] if a damaged table is read, [`crate::Error::Io`] if
    /// reading fails, [`crate::Error::KeyspaceDropped`] for a dropped keyspace.
    fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>>;

    /// Whether `key` is present (the same as `get(key)?.is_some()`).
    ///
    /// # Errors
    /// As for [`Readable::get`].
    fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// Every key-value pair, in key order.
    fn iter(&self) -> Iter;

    /// The key-value pairs whose key lies within `range`, in key order.
    fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter;

    /// The key-value pairs whose key starts with `prefix`, in key order.
    fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter;

    /// The pair with the smallest key, or `None` if there is none.
    ///
    /// # Errors
    /// As for [`Readable::get`].
    fn first_key_value(&self) -> Result<Option<(Bytes, Bytes)>> {
        self.iter().next().transpose()
    }

    /// The pair with the largest key, or `None` if there is none.
    ///
    /// # Errors
    /// As for [`Readable::get`].
    fn last_key_value(&self) -> Result<Option<(Bytes, Bytes)>> {
        self.iter().next_back().transpose()
    }

    /// The values of `keys`, in the order of `keys` (which need not be sorted and may
    /// repeat a key): what a [`Readable::get`] of each would return, all at one point in
    /// time, found in one pass over the database's memtables and tables.
    ///
    /// # Errors
    /// As for [`Readable::get`]; on an error no value is returned.
    fn multi_get<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Bytes>>>;
}

/// `keys` as byte slices, for the one non-generic implementation of a multi-get.
pub(crate) fn key_slices<K: AsRef<[u8]>>(keys: &[K]) -> Vec<&[u8]> {
    keys.iter().map(AsRef::as_ref).collect()
}

/// A key to look up, with its position in the caller's list.
type Probe<'k> = (&'k [u8], usize);

/// The values of `keys` in `tree` at `snapshot`, in the order of `keys`: for each key
/// what [`Tree::get`] answers (see the module docs for how).
pub(crate) fn multi_get(
    tree: &Tree,
    keys: &[&[u8]],
    snapshot: SeqNo,
) -> Result<Vec<Option<Bytes>>> {
    if tree.has_range_tombstones() {
        // The batched walk below resolves keys table by table without weighing range
        // tombstones; with any in the keyspace, each key takes the point lookup that does.
        return keys.iter().map(|key| tree.get(key, snapshot)).collect();
    }
    let mut values = vec![None; keys.len()];
    let mut probes: Vec<Probe<'_>> = keys.iter().copied().zip(0..).collect();
    probes.sort_unstable_by(|a, b| a.0.cmp(b.0));
    // The first probe of each distinct key, in key order: those not resolved yet.
    let mut pending = probes.clone();
    pending.dedup_by(|later, first| later.0 == first.0);

    for mem in tree.memtables() {
        if pending.is_empty() {
            break;
        }
        pending.retain(|&(key, at)| match mem.get(key, snapshot) {
            Some(Lookup::Value(value)) => {
                values[at] = Some(value);
                false
            }
            Some(Lookup::Deleted) => false,
            None => true,
        });
    }
    let mut levels = tree.version.levels.iter();
    if let Some(level0) = levels.next() {
        for table in level0 {
            if pending.is_empty() {
                break;
            }
            let run = covered_run(table, &pending);
            resolve(&mut pending, run, |key, at| {
                Ok(found(table.get(key, snapshot)?, &mut values[at]))
            })?;
        }
    }
    for tables in levels {
        if pending.is_empty() {
            break;
        }
        // The only table of the level that can hold a key is the first whose largest key
        // is not below it; as the keys ascend, so does that table.
        let mut cursor = 0;
        let everything = 0..pending.len();
        resolve(&mut pending, everything, |key, at| {
            cursor = gallop(tables, cursor, |t| t.file.largest.user_key.as_ref() < key);
            Ok(match tables.get(cursor) {
                Some(table) => found(table.get(key, snapshot)?, &mut values[at]),
                None => false,
            })
        })?;
    }

    // Each key was probed once, at the first of its positions; its others get a copy.
    for pair in probes.windows(2) {
        let ((key, first), (next, at)) = (pair[0], pair[1]);
        if key == next {
            values[at] = values[first].clone();
        }
    }
    Ok(values)
}

/// Records what a table answered for one key in `value`; returns whether that resolves
/// the key (a value or a tombstone: the key is then looked up no further).
fn found(version: Option<(ValueKind, Bytes)>, value: &mut Option<Bytes>) -> bool {
    match version {
        Some((ValueKind::Put, found)) => {
            *value = Some(found);
            true
        }
        Some((ValueKind::Delete, _)) => true,
        None => false,
    }
}

/// The positions in `pending` (in key order) of the keys within `table`'s key range.
fn covered_run(table: &TableHandle, pending: &[Probe<'_>]) -> Range<usize> {
    let smallest = table.file.smallest.user_key.as_ref();
    let largest = table.file.largest.user_key.as_ref();
    let start = pending.partition_point(|&(key, _)| key < smallest);
    let end = start + pending[start..].partition_point(|&(key, _)| key <= largest);
    start..end
}

/// Probes the keys `pending[run]` in order with `probe`, which says whether it resolved
/// the key, and removes the resolved ones from `pending`, keeping the rest in order.
fn resolve<'k>(
    pending: &mut Vec<Probe<'k>>,
    run: Range<usize>,
    mut probe: impl FnMut(&'k [u8], usize) -> Result<bool>,
) -> Result<()> {
    let mut kept = run.start;
    for i in run.clone() {
        let (key, at) = pending[i];
        if !probe(key, at)? {
            pending[kept] = (key, at);
            kept += 1;
        }
    }
    pending.drain(kept..run.end);
    Ok(())
}

/// `from + items[from..].partition_point(before)`, where `before` holds for a prefix of
/// `items`, found by galloping forward from `from`: it costs O(log d) comparisons when
/// the answer is `d` items on, so that ascending seeks through one slice cost little more
/// than a merge when they are dense, and no more than binary searches when they are not.
fn gallop<T>(items: &[T], from: usize, before: impl Fn(&T) -> bool) -> usize {
    let rest = &items[from..];
    // Invariant: `before` holds at `lo` unless `lo` is 0, where it was not asked.
    let (mut lo, mut step) = (0, 1);
    while lo + step < rest.len() && before(&rest[lo + step]) {
        lo += step;
        step *= 2;
    }
    // The answer lies after `lo` and at most at `lo + step` (or at the end).
    let hi = (lo + step + 1).min(rest.len());
    from + lo + rest[lo..hi].partition_point(|item| before(item))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use floe_core::fs::{FileSystem, StdFs};
    use floe_core::{InternalKey, SeqNo, ValueKind};
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::keyspace::DEFAULT_ID;
    use crate::options::Options;
    use crate::version::{ActiveMem, FrozenMem, TableWriter, Version};

    #[test]
    fn gallop_finds_the_partition_point_from_any_start() {
        for len in 0..40usize {
            let items: Vec<usize> = (0..len).map(|i| i * 2).collect();
            for target in 0..=2 * len + 1 {
                let want = items.partition_point(|&x| x < target);
                for from in 0..=want {
                    assert_eq!(
                        gallop(&items, from, |&x| x < target),
                        want,
                        "len {len}, target {target}, from {from}"
                    );
                }
            }
        }
    }

    /// One version of a key: its sequence number and its value (`None`: a tombstone).
    type KeyVersion = (SeqNo, Option<Vec<u8>>);

    /// Writes `entries` (user key to its versions, newest first) into table `number`.
    fn table(
        fs: &Arc<dyn FileSystem>,
        dir: &std::path::Path,
        number: u64,
        entries: &BTreeMap<Vec<u8>, Vec<KeyVersion>>,
    ) -> Arc<TableHandle> {
        let options = Options::default().block_size(128).table_options(0);
        let mut writer = TableWriter::create(fs, dir, number, options).unwrap();
        for (key, versions) in entries {
            for (seqno, value) in versions {
                let kind = if value.is_some() {
                    ValueKind::Put
                } else {
                    ValueKind::Delete
                };
                let internal = InternalKey::new(key.clone(), *seqno, kind);
                writer
                    .add(&internal, value.as_deref().unwrap_or_default())
                    .unwrap();
            }
        }
        TableHandle::open(
            fs,
            &crate::version::TableReads::new(None),
            dir,
            writer.finish().unwrap(),
        )
        .unwrap()
    }

    fn key(i: u32) -> Vec<u8> {
        format!("k{i:04}").into_bytes()
    }

    /// A tree whose sources each hold random versions of random keys out of `0..1000`,
    /// older the deeper they lie: level 2 with many small tables, level 1 with fewer,
    /// overlapping level-0 tables, and a frozen and an active memtable. Returns it with
    /// the largest sequence number used.
    fn random_tree(rng: &mut SmallRng, dir: &std::path::Path) -> (Tree, SeqNo) {
        let fs: Arc<dyn FileSystem> = Arc::new(StdFs);
        let mut seqno: SeqNo = 0;
        let mut number = 0;
        let mut versions = |rng: &mut SmallRng, keys: std::ops::Range<u32>, count: usize| {
            let mut entries: BTreeMap<Vec<u8>, Vec<KeyVersion>> = BTreeMap::new();
            for _ in 0..count {
                seqno += 1;
                let value = (rng.random_range(0..4) != 0).then(|| format!("v{seqno}").into_bytes());
                let versions = entries
                    .entry(key(rng.random_range(keys.clone())))
                    .or_default();
                versions.insert(0, (seqno, value));
            }
            entries
        };
        let mut level = |rng: &mut SmallRng, tables: u32, per_table: usize| {
            let width = 1000 / tables;
            (0..tables)
                .map(|t| {
                    number += 1;
                    let entries = versions(rng, t * width..(t + 1) * width - 1, per_table);
                    table(&fs, dir, number, &entries)
                })
                .collect::<Vec<_>>()
        };
        let level2 = level(rng, 40, 30);
        let level1 = level(rng, 8, 60);
        // Level 0 is newest first; each table spans a random stretch of the keys.
        let mut level0 = Vec::new();
        for _ in 0..4 {
            let start = rng.random_range(0..900);
            number += 1;
            let entries = versions(rng, start..start + 100, 40);
            level0.insert(0, table(&fs, dir, number, &entries));
        }
        let mut memtable = |rng: &mut SmallRng| {
            let active = ActiveMem::new(1 << 20);
            let guard = active.mem.enter().unwrap();
            for (key, versions) in versions(rng, 0..1000, 100) {
                for (seqno, value) in versions {
                    match value {
                        Some(value) => guard.put(&key, seqno, value).unwrap(),
                        None => guard.delete(&key, seqno).unwrap(),
                    }
                }
            }
            drop(guard);
            active
        };
        let frozen = memtable(rng);
        let active = memtable(rng);
        let mut version = Version::empty();
        version.levels[0] = level0;
        version.levels[1] = level1;
        version.levels[2] = level2;
        let tree = Tree {
            frozen: vec![FrozenMem {
                mem: frozen.mem,
                keyspace: DEFAULT_ID,
                first_log: 1,
                end_log: 2,
            }],
            active,
            version: Arc::new(version),
            ..Tree::new(
                DEFAULT_ID,
                "default",
                Arc::new(Options::default()),
                Version::empty(),
            )
        };
        (tree, seqno)
    }

    #[test]
    fn multi_get_answers_what_each_get_answers() {
        let seed = floe_testkit::seed("multi_get_answers_what_each_get_answers");
        let mut rng = SmallRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let (tree, last) = random_tree(&mut rng, dir.path());
        for round in 0..50 {
            let snapshot = if round == 0 {
                last
            } else {
                rng.random_range(0..=last)
            };
            let count = rng.random_range(0..300);
            // Keys in and around the key space (`k1000` and up lie past every table),
            // with repeats.
            let keys: Vec<Vec<u8>> = (0..count)
                .map(|_| match rng.random_range(0..10) {
                    0 => b"a".to_vec(),
                    1 => b"z".to_vec(),
                    _ => key(rng.random_range(0..1100)),
                })
                .collect();
            let slices = key_slices(&keys);
            let got = multi_get(&tree, &slices, snapshot).unwrap();
            let want: Vec<Option<Bytes>> = slices
                .iter()
                .map(|k| tree.get(k, snapshot).unwrap())
                .collect();
            assert_eq!(got, want, "round {round}, snapshot {snapshot}");
        }
    }

    #[test]
    fn multi_get_of_no_keys_is_empty() {
        let tree = Tree::new(
            DEFAULT_ID,
            "default",
            Arc::new(Options::default()),
            Version::empty(),
        );
        assert_eq!(
            multi_get(&tree, &[], 7).unwrap(),
            Vec::<Option<Bytes>>::new()
        );
    }
}
