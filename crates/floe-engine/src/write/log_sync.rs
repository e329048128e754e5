//! Making the log durable: [`Shared::sync`] (`Db::sync`, and close) syncs the segments of
//! the frozen memtables not flushed yet, then the active segment, under the log mutex.

use crate::error::{Error, Result};
use crate::filename::log_path;
use crate::shared::Shared;
use crate::stats::Counters;
use crate::sync::lock;
use crate::write::log::LogState;

impl Shared {
    /// Makes every acknowledged write durable: syncs the segments of the frozen memtables
    /// that are not flushed yet, then the active segment.
    pub(crate) fn sync(&self) -> Result<()> {
        let mut log = lock(&self.log);
        self.sync_locked(&mut log)
    }

    /// [`Shared::sync`] for a holder of the log mutex.
    pub(crate) fn sync_locked(&self, log: &mut LogState) -> Result<()> {
        if let Some(err) = self.poison_error() {
            return Err(err);
        }
        log.prune_frozen(&self.state.load());
        let LogState {
            writer,
            frozen_logs,
            number,
            ..
        } = log;
        for (segment, frozen) in frozen_logs.iter_mut() {
            // A frozen segment takes no more records, so the marker stating this sync is
            // appended on its own; the next sync of the segment makes it durable.
            if let Err(err) = frozen.sync().and_then(|()| frozen.seal()) {
                let name = log_path(&self.dir, *segment);
                return Err(self.poison(Error::io(
                    format_args!("syncing log {}", name.display()),
                    err,
                )));
            }
            Counters::add(&self.counters.log_syncs, 1);
        }
        if let Err(err) = writer.sync() {
            let name = log_path(&self.dir, *number);
            return Err(self.poison(Error::io(
                format_args!("syncing log {}", name.display()),
                err,
            )));
        }
        Counters::add(&self.counters.log_syncs, 1);
        Ok(())
    }
}
