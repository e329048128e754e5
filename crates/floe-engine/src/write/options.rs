//! [`WriteOptions`]: how one write is committed, whatever the database's [`crate::Options`].

/// Options of one write ([`crate::Db::write_with`]).
///
/// ```
/// let durable = floe_engine::WriteOptions::default().sync(true);
/// assert!(durable.syncs());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    sync: bool,
}

impl WriteOptions {
    /// Whether this write is made durable (`fdatasync` of the log, and of any older
    /// segment with unsynced bytes) before it is acknowledged, even in a database opened
    /// with `Options::sync(false)` (default `false`: the database's
    /// [`crate::Options::sync`] decides). It shares the sync with every other write that
    /// asks for one in the same commit group; writes of that group that did not ask wait
    /// for the sync too, so an unsynced writer is slowed by at most one group's sync.
    #[must_use]
    pub fn sync(mut self, on: bool) -> WriteOptions {
        self.sync = on;
        self
    }

    /// Whether [`WriteOptions::sync`] is set.
    #[must_use]
    pub fn syncs(&self) -> bool {
        self.sync
    }
}
