//! Fault injection for [`SimFs`](super::SimFs): armed rules, the global call index of the
//! sweep mode and the operating-system errors a fault returns.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// The kinds of file-system call a fault can target. Every call of one of these kinds
/// also takes the next global call index (see [`SimFs::call_count`](super::SimFs::call_count)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SimOp {
    /// `create` and `open_append`.
    Create,
    /// A `write` call on an open file, or its `set_len`.
    Write,
    /// `allocate` and `map_mut` on an open file (a store into a map cannot fail).
    Allocate,
    /// `sync_data` and `sync_all` on an open file, and `sync_data` on its syncer.
    Sync,
    /// `rename`; a path filter matches either of its two paths.
    Rename,
    /// `remove_file`.
    Remove,
    /// `sync_dir`.
    SyncDir,
    /// `read`, `map`, `open_read`, `file_size`, and each read of a file from
    /// `open_read`.
    Read,
}

impl SimOp {
    /// Every kind, in declaration order.
    pub const ALL: [SimOp; 8] = [
        SimOp::Create,
        SimOp::Write,
        SimOp::Allocate,
        SimOp::Sync,
        SimOp::Rename,
        SimOp::Remove,
        SimOp::SyncDir,
        SimOp::Read,
    ];

    fn index(self) -> usize {
        match self {
            SimOp::Create => 0,
            SimOp::Write => 1,
            SimOp::Allocate => 2,
            SimOp::Sync => 3,
            SimOp::Rename => 4,
            SimOp::Remove => 5,
            SimOp::SyncDir => 6,
            SimOp::Read => 7,
        }
    }
}

/// The error an injected fault returns: a raw operating-system error, as a failing disk
/// or a full one gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SimError {
    /// `EIO`: an input/output error.
    Eio,
    /// `ENOSPC`: no space left on the device.
    Enospc,
}

impl SimError {
    /// The raw OS error number: `libc::EIO` or `libc::ENOSPC` on Unix, and the Linux
    /// numbers (5 and 28) elsewhere.
    #[must_use]
    pub fn raw_os_error(self) -> i32 {
        #[cfg(unix)]
        {
            match self {
                SimError::Eio => libc::EIO,
                SimError::Enospc => libc::ENOSPC,
            }
        }
        #[cfg(not(unix))]
        {
            match self {
                SimError::Eio => 5,
                SimError::Enospc => 28,
            }
        }
    }

    /// The error as `std` reports it: `io::Error::from_raw_os_error`.
    #[must_use]
    pub fn to_io_error(self) -> io::Error {
        io::Error::from_raw_os_error(self.raw_os_error())
    }
}

/// One fault armed by `fail_nth`.
#[derive(Debug)]
struct Rule {
    op: SimOp,
    /// Only calls on a path containing this string match; `None` matches every path.
    path_contains: Option<String>,
    /// Matching calls still to let through before the rule fires.
    skip: u64,
    /// Whether the rule keeps firing on every matching call once it has fired.
    persistent: bool,
    code: SimError,
}

/// The armed faults and the counters of calls and fired faults.
#[derive(Debug, Default)]
pub(super) struct Faults {
    rules: Vec<Rule>,
    /// Global call indexes armed by `fail_call`, with the error each returns.
    sweep: BTreeMap<u64, SimError>,
    /// The index the next call takes.
    calls: u64,
    /// Calls seen per kind (by [`SimOp::index`]), failed or not.
    per_kind: [u64; 8],
    /// Faults fired so far.
    injected: u64,
}

impl Faults {
    pub(super) fn arm(
        &mut self,
        op: SimOp,
        nth: u64,
        path_contains: Option<&str>,
        code: SimError,
        persistent: bool,
    ) {
        self.rules.push(Rule {
            op,
            path_contains: path_contains.map(str::to_owned),
            skip: nth,
            persistent,
            code,
        });
    }

    pub(super) fn arm_call(&mut self, index: u64, code: SimError) {
        self.sweep.insert(index, code);
    }

    pub(super) fn clear(&mut self) {
        self.rules.clear();
        self.sweep.clear();
    }

    pub(super) fn calls(&self) -> u64 {
        self.calls
    }

    pub(super) fn reset_calls(&mut self) {
        self.calls = 0;
    }

    pub(super) fn count(&self, op: SimOp) -> u64 {
        self.per_kind[op.index()]
    }

    pub(super) fn injected(&self) -> u64 {
        self.injected
    }

    /// Counts one call of `op` on `paths` and decides whether it fails. Every armed rule
    /// that matches counts the call, so two rules on the same kind count independently;
    /// the call fails if any of them (or the sweep) fires, with the first one's error.
    pub(super) fn check(&mut self, op: SimOp, paths: &[&Path]) -> io::Result<()> {
        let index = self.calls;
        self.calls = self.calls.saturating_add(1);
        let count = &mut self.per_kind[op.index()];
        *count = count.saturating_add(1);
        let mut fired = self.sweep.remove(&index);
        let names: Vec<String> = if self.rules.is_empty() {
            Vec::new()
        } else {
            paths
                .iter()
                .map(|path| path.to_string_lossy().into_owned())
                .collect()
        };
        self.rules.retain_mut(|rule| {
            let matches = rule.op == op
                && rule
                    .path_contains
                    .as_deref()
                    .is_none_or(|needle| names.iter().any(|name| name.contains(needle)));
            if !matches {
                return true;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                return true;
            }
            fired.get_or_insert(rule.code);
            rule.persistent
        });
        match fired {
            Some(code) => {
                self.injected = self.injected.saturating_add(1);
                Err(code.to_io_error())
            }
            None => Ok(()),
        }
    }
}
