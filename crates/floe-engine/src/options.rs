//! The options a database is opened with.

#[cfg(any(test, feature = "fault-injection"))]
use std::sync::Arc;

#[cfg(any(test, feature = "fault-injection"))]
use floe_core::fs::FileSystem;

/// The largest key floe accepts, in bytes (64 KiB); a longer key is refused with
/// [`crate::Error::InvalidArgument`].
pub const MAX_KEY_SIZE: usize = 64 << 10;

/// The largest value floe accepts, in bytes (64 MiB); a longer value is refused with
/// [`crate::Error::InvalidArgument`].
pub const MAX_VALUE_SIZE: usize = 64 << 20;

/// How a database behaves: memtable size, durability of each write, table layout.
///
/// Build it with the consuming setters and hand it to [`crate::Db::open_with`]:
///
/// ```
/// let options = floe_engine::Options::default()
///     .write_buffer_size(4 << 20)
///     .sync(true);
/// assert!(options.sync_writes());
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) write_buffer_size: usize,
    pub(crate) sync: bool,
    pub(crate) block_size: usize,
    pub(crate) max_immutable_memtables: usize,
    pub(crate) bloom_bits_per_key: u32,
    pub(crate) target_file_size: u64,
    #[cfg(any(test, feature = "fault-injection"))]
    pub(crate) file_system: Option<Arc<dyn FileSystem>>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            write_buffer_size: 64 << 20,
            sync: false,
            block_size: 4096,
            max_immutable_memtables: 2,
            bloom_bits_per_key: 10,
            target_file_size: 64 << 20,
            #[cfg(any(test, feature = "fault-injection"))]
            file_system: None,
        }
    }
}

impl Options {
    /// The capacity of a memtable, in bytes (default 64 MiB). A memtable that reaches it is
    /// frozen and flushed to a table in the background. It is rounded up to whole memory
    /// pages (4 KiB), so a tiny value such as 1 KiB gives a one-page memtable.
    #[must_use]
    pub fn write_buffer_size(mut self, bytes: usize) -> Options {
        self.write_buffer_size = bytes;
        self
    }

    /// Whether every write is made durable (`fdatasync` of the log) before it is
    /// acknowledged (default `false`). Writers that commit together share one sync. With
    /// `false`, an acknowledged write survives a process crash but only writes acknowledged
    /// before the last [`crate::Db::sync`] are sure to survive power loss.
    #[must_use]
    pub fn sync(mut self, on: bool) -> Options {
        self.sync = on;
        self
    }

    /// The target size of a table's data block, in bytes (default 4096). Values from 64
    /// bytes to 64 KiB work; smaller blocks mean a larger index and faster point reads.
    #[must_use]
    pub fn block_size(mut self, bytes: usize) -> Options {
        self.block_size = bytes;
        self
    }

    /// How many frozen memtables may wait for their flush before writers block until one
    /// is flushed (default 2, at least 1). Writers wait on a condition variable; they never
    /// spin and never fail because of it.
    #[must_use]
    pub fn max_immutable_memtables(mut self, count: usize) -> Options {
        self.max_immutable_memtables = count.max(1);
        self
    }

    /// Bits of bloom filter per key in each table (default 10, about a 1% false-positive
    /// rate); 0 disables the filter.
    #[must_use]
    pub fn bloom_bits_per_key(mut self, bits: u32) -> Options {
        self.bloom_bits_per_key = bits;
        self
    }

    /// The size, in bytes, at which compaction cuts its output tables (default 64 MiB).
    #[must_use]
    pub fn target_file_size(mut self, bytes: u64) -> Options {
        self.target_file_size = bytes.max(1);
        self
    }

    /// Whether writes are synced before they are acknowledged (see [`Options::sync`]).
    #[must_use]
    pub fn sync_writes(&self) -> bool {
        self.sync
    }

    /// Test-only: every file operation of the database goes through `fs` instead of the
    /// real file system (default: the real one), so tests can inject faults.
    #[cfg(any(test, feature = "fault-injection"))]
    #[must_use]
    pub fn file_system(mut self, fs: Arc<dyn FileSystem>) -> Options {
        self.file_system = Some(fs);
        self
    }
}
