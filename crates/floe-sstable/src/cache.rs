//! The block cache: data blocks read from table files, kept in memory under a byte
//! budget and shared by every table opened with it.
//!
//! A block enters the cache after its checksum is verified, so a block found there is
//! used without another check. Entries are keyed by the table's unique id (see
//! [`BlockCache::next_table_id`]) and the block's file offset, and weigh the bytes of the
//! block's frame. Eviction is `quick_cache`'s S3-FIFO: a block read once (a scan) leaves
//! before blocks read again (point lookups of hot keys).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// A table's id in the cache and a block's file offset.
type Key = (u64, u64);

/// Weighs a cached block by its bytes.
#[derive(Debug, Clone, Copy, Default)]
struct ByBytes;

impl quick_cache::Weighter<Key, Bytes> for ByBytes {
    fn weight(&self, _key: &Key, block: &Bytes) -> u64 {
        // A zero weight would never be evicted; no block is empty, but a floor costs
        // nothing.
        (block.len() as u64).max(1)
    }
}

/// The blocks the cache expects to hold on average, to size its tables: about 4 KiB each.
const TYPICAL_BLOCK: usize = 4096;

/// A block cache with a capacity in bytes; cheap to clone, clones share the cache.
#[derive(Clone)]
pub struct BlockCache {
    inner: Arc<Inner>,
}

struct Inner {
    blocks: quick_cache::sync::Cache<Key, Bytes, ByBytes>,
    capacity: u64,
    next_id: AtomicU64,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("capacity", &self.capacity())
            .field("bytes", &self.bytes())
            .field("blocks", &self.blocks())
            .finish()
    }
}

impl BlockCache {
    /// A cache that holds up to `capacity` bytes of blocks. A capacity of 0 caches
    /// nothing: every read goes to the file. The budget is split among the cache's
    /// shards, so a block larger than a shard's part is not kept.
    #[must_use]
    pub fn new(capacity: usize) -> BlockCache {
        let items = (capacity / TYPICAL_BLOCK).max(1);
        BlockCache {
            inner: Arc::new(Inner {
                blocks: quick_cache::sync::Cache::with_weighter(items, capacity as u64, ByBytes),
                capacity: capacity as u64,
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// The capacity in bytes.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.inner.capacity
    }

    /// The bytes of the blocks held now.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.inner.blocks.weight()
    }

    /// The number of blocks held now.
    #[must_use]
    pub fn blocks(&self) -> usize {
        self.inner.blocks.len()
    }

    /// An id no other table of this cache has had, to key its blocks.
    pub(crate) fn next_table_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn get(&self, table: u64, offset: u64) -> Option<Bytes> {
        self.inner.blocks.get(&(table, offset))
    }

    pub(crate) fn insert(&self, table: u64, offset: u64, block: Bytes) {
        self.inner.blocks.insert((table, offset), block);
    }

    pub(crate) fn remove(&self, table: u64, offset: u64) {
        self.inner.blocks.remove(&(table, offset));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_blocks_within_its_budget() {
        let cache = BlockCache::new(64 * 1024);
        for i in 0..1000u64 {
            cache.insert(1, i * 4096, Bytes::from(vec![i as u8; 4096]));
        }
        assert!(cache.bytes() <= 64 * 1024, "{cache:?}");
        assert!(cache.blocks() > 0);
        let last = cache.get(1, 999 * 4096).expect("the newest block is held");
        assert_eq!(last[0], 999u64 as u8);
        cache.remove(1, 999 * 4096);
        assert!(cache.get(1, 999 * 4096).is_none());
        assert_ne!(cache.next_table_id(), cache.next_table_id());

        let none = BlockCache::new(0);
        none.insert(1, 0, Bytes::from_static(b"block"));
        assert!(none.get(1, 0).is_none());
        assert_eq!((none.bytes(), none.capacity()), (0, 0));
    }
}
