//! A static search tree over sorted `u64` keys whose nodes are cache lines: a lower-bound
//! search touches one line per level (five levels for 30 000 keys) where a binary search
//! touches one per halving (fifteen), and the upper levels are small enough to stay
//! cached, so a search of a large index misses the cache about twice instead of ten
//! times.
//!
//! Level 0 holds the keys in order, eight to a node, the last node padded with
//! `u64::MAX`. Each level above holds the last key of each node below (so the largest key
//! under it), padded the same way, up to a single root. To find the first key at or above
//! `x`, a search counts the keys below `x` in the root, descends into that child, and
//! repeats: the child it picks is the first whose largest key is at least `x`, so it
//! holds the answer.

/// The keys of one node: a cache line.
const FANOUT: usize = 8;

/// One node, aligned so that it occupies exactly one cache line.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Node([u64; FANOUT]);

/// A lower-bound search structure over sorted `u64` keys.
#[derive(Debug)]
pub(crate) struct PrefixTree {
    /// The levels, leaves (the keys themselves) first, the root last.
    levels: Vec<Vec<Node>>,
    len: usize,
}

/// Packs `keys` into nodes, padding the last one with `u64::MAX`.
fn pack(keys: impl ExactSizeIterator<Item = u64>) -> Vec<Node> {
    let mut nodes = vec![Node([u64::MAX; FANOUT]); keys.len().div_ceil(FANOUT).max(1)];
    for (i, key) in keys.enumerate() {
        nodes[i / FANOUT].0[i % FANOUT] = key;
    }
    nodes
}

impl PrefixTree {
    /// Builds the tree over `keys`, which must be sorted in non-decreasing order (the
    /// index checks its keys' order before it builds the tree).
    pub(crate) fn new(keys: &[u64]) -> PrefixTree {
        debug_assert!(keys.is_sorted(), "keys must be sorted");
        let mut levels = vec![pack(keys.iter().copied())];
        while let Some(below) = levels.last()
            && below.len() > 1
        {
            let above = pack(below.iter().map(|node| node.0[FANOUT - 1]));
            levels.push(above);
        }
        PrefixTree {
            levels,
            len: keys.len(),
        }
    }

    /// The bytes of memory the tree's nodes take.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.levels
            .iter()
            .map(|level| level.capacity() * size_of::<Node>())
            .sum()
    }

    /// The number of keys.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Key `i`; `i < len`.
    pub(crate) fn get(&self, i: usize) -> u64 {
        self.levels[0][i / FANOUT].0[i % FANOUT]
    }

    /// The index of the first key at or above `x`, or `len` if every key is below it.
    #[inline]
    pub(crate) fn lower_bound(&self, x: u64) -> usize {
        self.lower_bound_with(x, |_| {})
    }

    /// [`PrefixTree::lower_bound`], calling `at_leaf(first)` just before it reads the leaf
    /// that holds keys `first..first + 8`: the answer is one of those (or `len`), so a
    /// caller can start loading what it will need for them while the leaf loads.
    #[inline]
    pub(crate) fn lower_bound_with(&self, x: u64, at_leaf: impl FnOnce(usize)) -> usize {
        // Past the largest key the answer is `len`; at or below it, every node that a
        // search descends into holds a key at or above `x` (see the module comment), so
        // the count below `x` in a node is less than `FANOUT` and names a real child.
        if self.len == 0 || x > self.get(self.len - 1) {
            return self.len;
        }
        let mut node = 0;
        for level in self.levels[1..].iter().rev() {
            let below = level[node].0.iter().filter(|&&key| key < x).count();
            node = node * FANOUT + below;
        }
        at_leaf(node * FANOUT);
        let below = self.levels[0][node]
            .0
            .iter()
            .filter(|&&key| key < x)
            .count();
        node * FANOUT + below
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_bound_matches_partition_point() {
        // Miri, which interprets every search, skips the longest tree; 513 keys still
        // make four levels.
        let lens: &[usize] = if cfg!(miri) {
            &[0, 1, 2, 7, 8, 9, 63, 64, 65, 513]
        } else {
            &[0, 1, 2, 7, 8, 9, 63, 64, 65, 513, 1000]
        };
        for &len in lens {
            // Runs of equal keys, gaps, and the extremes of the key space.
            let mut keys: Vec<u64> = (0..len as u64).map(|i| (i / 3) * 10 + 5).collect();
            if len > 2 {
                keys[0] = 0;
                keys[len - 1] = u64::MAX;
            }
            let tree = PrefixTree::new(&keys);
            assert_eq!(tree.len(), len);
            // Under Miri, one key of each run of three equal ones, which still probes
            // every distinct key (and its neighbours).
            let probes = keys
                .iter()
                .step_by(if cfg!(miri) { 3 } else { 1 })
                .flat_map(|&k| [k.saturating_sub(1), k, k.saturating_add(1)])
                .chain([0, 1, u64::MAX - 1, u64::MAX]);
            for x in probes {
                assert_eq!(
                    tree.lower_bound(x),
                    keys.partition_point(|&k| k < x),
                    "len {len} x {x}"
                );
            }
            for (i, &key) in keys.iter().enumerate() {
                assert_eq!(tree.get(i), key);
            }
        }
    }
}
