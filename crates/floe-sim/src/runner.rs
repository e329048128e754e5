//! One seed's run: a seeded workload over several keyspaces on a [`SimFs`], crash images
//! taken at seed-chosen points and reopened, injected I/O errors, and the oracle's checks
//! after each.
//!
//! Everything a run does follows from its seed: the options (the database's and each
//! keyspace's), the operations, where it crashes, which unsynced state each power-loss
//! image keeps, which call fails. The engine runs with `Options::manual_background`, so
//! flushes and compactions happen at seed-chosen points in the workload's thread, and a
//! failing seed replays exactly. The operations themselves are in `runner/workload.rs`,
//! the options in `runner/params.rs`.

mod params;
mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use floe_core::fs::FileSystem;
use floe_core::sim_fs::{SimError, SimFs, SimOp};
use floe_engine::{Db, Error, Iter, Keyspace, Snapshot};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

use self::params::Params;
use crate::model::{DEFAULT, DbState, History, State};

/// Where the database lives inside each simulated file system.
const DB_DIR: &str = "/db";

/// What a run counts, summed over seeds.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Seeds run.
    pub seeds: u64,
    /// Power-loss images reopened and checked.
    pub images: u64,
    /// I/O errors the simulated disk injected.
    pub injected: u64,
    /// Damaged files (a flipped bit in a closed log or manifest) reopened and checked.
    pub flips: u64,
    /// Keyspaces created (at the start of a run and during it).
    pub created: u64,
    /// Keyspaces dropped.
    pub dropped: u64,
    /// Writes acknowledged that asked to be durable on their own (`WriteOptions::sync`).
    pub synced: u64,
    /// Operations of acknowledged writes (puts, deletes and range deletions).
    pub ops: u64,
    /// Range deletions acknowledged, alone or in batches.
    pub ranges: u64,
    /// Of those, the empty or inverted ones (which delete nothing).
    pub empty_ranges: u64,
}

impl Tally {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Tally) {
        self.seeds += other.seeds;
        self.images += other.images;
        self.injected += other.injected;
        self.flips += other.flips;
        self.created += other.created;
        self.dropped += other.dropped;
        self.synced += other.synced;
        self.ops += other.ops;
        self.ranges += other.ranges;
        self.empty_ranges += other.empty_ranges;
    }
}

/// How a seed runs.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Operations in the workload.
    pub ops: usize,
    /// Whether the workload takes power-loss images and reopens on them.
    pub crashes: bool,
    /// Whether the workload arms a random fault of its own.
    pub faults: bool,
    /// Power-loss images per crash point, at most.
    pub images_per_crash: usize,
}

impl Plan {
    /// The plan of a crash seed: a long workload with crash points and an occasional fault.
    pub const CRASH: Plan = Plan {
        ops: 160,
        crashes: true,
        faults: true,
        images_per_crash: 8,
    };

    /// The plan of the workload that an error sweep replays once per call.
    pub const SWEEP: Plan = Plan {
        ops: 40,
        crashes: false,
        faults: false,
        images_per_crash: 0,
    };
}

/// A snapshot of one keyspace, with the state it must show.
struct SnapshotCheck {
    keyspace: String,
    snapshot: Snapshot,
    state: State,
    /// Whether its keyspace was dropped since: a read may then fail with
    /// `KeyspaceDropped` instead.
    dropped: bool,
}

/// A live simulation of one database.
struct Sim {
    seed: u64,
    rng: SmallRng,
    fs: SimFs,
    params: Params,
    db: Option<Db>,
    history: History,
    /// A handle to each live keyspace (the model's live ones), `"default"` included.
    handles: BTreeMap<String, Keyspace>,
    /// How often the workload writes in each keyspace it knows by name (see
    /// [`params::activity`]).
    activity: BTreeMap<String, u32>,
    /// Handles to keyspaces dropped since the last open: every call on them must fail.
    dropped: Vec<Keyspace>,
    /// Set once a write-path call failed: every later write must be refused.
    errored: Option<String>,
    /// Snapshots with the state each must show.
    snapshots: Vec<SnapshotCheck>,
    /// Iterators not yet read, each with its keyspace and the state it must yield (even
    /// when the keyspace is dropped meanwhile).
    iterators: Vec<(String, Iter, State)>,
    tally: Tally,
    /// The last operations, for a failure report.
    trace: Vec<String>,
    next_write: u64,
    /// How many of `fs`'s injected errors are already in the tally.
    injected_counted: u64,
    /// Whether a fault may be armed on `fs` (the simulation's own calls on it, such as
    /// the damage checks, would then meet it too).
    faults_armed: bool,
    /// Whether this is a run of an error sweep: the sweep's one failing call stays armed
    /// across reopens, and the run makes no file-system calls of its own, so that its
    /// calls line up with the counting run's until the failure.
    sweeping: bool,
}

fn dir() -> PathBuf {
    PathBuf::from(DB_DIR)
}

/// Reads every pair of `iter` into a state, or the error that ended it.
fn collect(
    iter: impl Iterator<Item = floe_engine::Result<(bytes::Bytes, bytes::Bytes)>>,
) -> Result<State, Error> {
    let mut state = State::new();
    for item in iter {
        let (key, value) = item?;
        state.insert(key.to_vec(), value.to_vec());
    }
    Ok(state)
}

/// Whether `err` is the refusal a poisoned database gives.
fn is_poisoned(err: &Error) -> bool {
    matches!(err, Error::Poisoned { .. })
}

/// Whether `err` is the `Io` error of a read that an injected fault explains: tables are
/// read block by block, so a failing read of the disk fails the read that needed it (and
/// no write: the database is not poisoned by it).
fn is_read_fault(err: &Error) -> bool {
    matches!(err, Error::Io(_))
}

/// Reads every keyspace of `db` by the names it lists, and checks on the way that
/// `Db::iter` reads `"default"` as its keyspace handle does.
fn read_all(db: &Db) -> Result<DbState, String> {
    let mut contents = DbState::new();
    for name in db.keyspace_names() {
        let keyspace = if name == DEFAULT {
            db.default_keyspace()
        } else {
            db.keyspace(&name)
                .map_err(|err| format!("opening the listed keyspace {name:?}: {err}"))?
        };
        let state =
            collect(keyspace.iter()).map_err(|err| format!("reading keyspace {name:?}: {err}"))?;
        contents.insert(name, state);
    }
    let default = collect(db.iter()).map_err(|err| format!("reading Db::iter: {err}"))?;
    if contents.get(DEFAULT) != Some(&default) {
        return Err(format!(
            "Db::iter read {} pairs, the \"default\" keyspace's handle {:?}",
            default.len(),
            contents.get(DEFAULT).map(State::len)
        ));
    }
    Ok(contents)
}

impl Sim {
    fn new(seed: u64, fs: SimFs) -> Result<Sim, String> {
        let mut rng = SmallRng::seed_from_u64(seed);
        let params = Params::draw(&mut rng);
        let mut sim = Sim {
            seed,
            rng,
            fs,
            params,
            db: None,
            history: History::new(DbState::new()),
            handles: BTreeMap::new(),
            activity: BTreeMap::new(),
            dropped: Vec::new(),
            errored: None,
            snapshots: Vec::new(),
            iterators: Vec::new(),
            tally: Tally::default(),
            trace: Vec::new(),
            next_write: 0,
            injected_counted: 0,
            faults_armed: false,
            sweeping: false,
        };
        let db = sim.open_healthy("the first open")?;
        sim.adopt(db)?;
        Ok(sim)
    }

    /// Adds the errors `fs` injected since the last count to the tally.
    fn count_injected(&mut self) {
        let injected = self.fs.injected();
        self.tally.injected += injected.saturating_sub(self.injected_counted);
        self.injected_counted = injected;
    }

    fn note(&mut self, what: impl Into<String>) {
        if self.trace.len() == 24 {
            self.trace.remove(0);
        }
        self.trace.push(what.into());
    }

    fn fail(&self, message: impl std::fmt::Display) -> String {
        format!(
            "{message}\n  params: {:?}\n  last operations: {}",
            self.params,
            self.trace.join("; ")
        )
    }

    fn db(&self) -> &Db {
        self.db
            .as_ref()
            .expect("the simulation always holds an open database")
    }

    /// Takes `db` as the open database: a handle to each of its keyspaces, and an
    /// activity for each name the run has not seen before.
    fn adopt(&mut self, db: Db) -> Result<(), String> {
        self.handles.clear();
        self.dropped.clear();
        for name in db.keyspace_names() {
            let handle = if name == DEFAULT {
                db.default_keyspace()
            } else {
                db.keyspace(&name).map_err(|err| {
                    self.fail(format!("opening the listed keyspace {name:?}: {err}"))
                })?
            };
            if !self.activity.contains_key(&name) {
                let activity = params::activity(&mut self.rng);
                self.activity.insert(name.clone(), activity);
            }
            self.handles.insert(name, handle);
        }
        self.db = Some(db);
        Ok(())
    }

    /// Drops every snapshot, iterator and keyspace handle of the open database, before it
    /// is closed or replaced.
    fn release_readers(&mut self) {
        self.snapshots.clear();
        self.iterators.clear();
        self.dropped.clear();
        self.handles.clear();
    }

    /// Opens the database on the current file system. An injected error may make one
    /// open fail (with a typed error); the faults are then cleared and the next must work.
    fn open_healthy(&mut self, context: &str) -> Result<Db, String> {
        match Db::open_with(dir(), self.params.options(&self.fs)) {
            Ok(db) => Ok(db),
            Err(Error::Io(_)) if self.fs.injected() > 0 => {
                self.fs.clear_faults();
                Db::open_with(dir(), self.params.options(&self.fs)).map_err(|err| {
                    self.fail(format!("{context}: open failed after healing: {err}"))
                })
            }
            Err(err) => Err(self.fail(format!("{context}: open failed: {err}"))),
        }
    }

    /// The outcome of a write-path call that changes nothing the model tracks, or that
    /// the caller records itself: `Ok` once the first failure, which an injected error
    /// must explain, is noted; every later call must be refused with `Poisoned`.
    fn after_call(&mut self, what: &str, result: floe_engine::Result<()>) -> Result<(), String> {
        match result {
            Ok(()) => {
                if let Some(first) = &self.errored {
                    return Err(self.fail(format!(
                        "{what} succeeded after an earlier call failed ({first})"
                    )));
                }
                Ok(())
            }
            Err(err) => {
                self.note(format!("{what} -> {err}"));
                if self.errored.is_some() && !is_poisoned(&err) {
                    return Err(self.fail(format!(
                        "{what} after an earlier failure gave {err}, not Poisoned"
                    )));
                }
                if self.errored.is_none() {
                    if self.fs.injected() <= self.injected_counted {
                        return Err(
                            self.fail(format!("{what} failed with no injected error: {err}"))
                        );
                    }
                    self.errored = Some(err.to_string());
                }
                Ok(())
            }
        }
    }

    /// Opens `image`, reads every keyspace and checks it against the model; returns the
    /// database and what it holds.
    fn recover(&self, image: &SimFs, context: &str) -> Result<(Db, DbState), String> {
        let db = Db::open_with(dir(), self.params.options(image))
            .map_err(|err| self.fail(format!("{context}: open failed: {err}")))?;
        let state = read_all(&db)
            .map_err(|err| self.fail(format!("{context}: reading the database: {err}")))?;
        self.history
            .check_recovered(&state)
            .map_err(|err| self.fail(format!("{context}: {err}")))?;
        Ok((db, state))
    }

    /// Takes power-loss images of the present state, reopens and checks each, and goes on
    /// with the last one.
    fn crash(&mut self) -> Result<(), String> {
        let images = self.rng.random_range(1..=Plan::CRASH.images_per_crash);
        let mut last = None;
        for _ in 0..images {
            let image_seed = self.rng.next_u64();
            let image = self.fs.crash(image_seed);
            let (db, state) =
                self.recover(&image, &format!("after a power loss (image {image_seed})"))?;
            self.tally.images += 1;
            last = Some((image, db, state));
        }
        let (image, db, state) = last.expect("at least one image");
        self.note(format!("crash: {images} images"));
        self.release_readers();
        self.count_injected();
        drop(self.db.take());
        self.fs = image;
        self.injected_counted = 0;
        self.faults_armed = false;
        self.history = History::new(state);
        self.errored = None;
        self.adopt(db)
    }

    /// Closes cleanly and reopens; sometimes first damages one bit of a closed log or
    /// manifest, which open must report as corruption or prove harmless.
    fn reopen(&mut self) -> Result<(), String> {
        self.release_readers();
        let db = self.db.take().expect("open");
        let closed = db.close();
        self.note(format!(
            "close: {}",
            if closed.is_ok() { "ok" } else { "err" }
        ));
        // Without a power loss nothing acknowledged may be lost.
        self.history.all_durable();
        if !self.sweeping
            && closed.is_ok()
            && self.errored.is_none()
            && !self.faults_armed
            && self.rng.random_bool(0.5)
            && let Some(db) = self.flip_and_open()?
        {
            return self.reopened(db);
        }
        let db = self.open_healthy("a reopen")?;
        self.reopened(db)
    }

    /// Whether a read that began when `before` faults had been injected failed with
    /// `err` because of one injected since.
    pub(super) fn injected_read_error(&self, before: u64, err: &Error) -> bool {
        is_read_fault(err) && self.fs.injected() > before
    }

    fn reopened(&mut self, db: Db) -> Result<(), String> {
        let before = self.fs.injected();
        let state = match read_all(&db) {
            Ok(state) => Ok(state),
            // A read the disk failed: once healed, the same read must see everything.
            Err(err) if self.fs.injected() > before => {
                self.note(format!("reading the reopened database -> {err}"));
                self.fs.clear_faults();
                read_all(&db)
            }
            Err(err) => Err(err),
        };
        let state =
            state.map_err(|err| self.fail(format!("reading the reopened database: {err}")))?;
        self.history
            .check_recovered(&state)
            .map_err(|err| self.fail(format!("after a clean reopen: {err}")))?;
        self.count_injected();
        if !self.sweeping {
            self.fs.clear_faults();
            self.faults_armed = false;
        }
        self.history = History::new(state);
        self.errored = None;
        self.adopt(db)
    }

    /// Flips one bit of a closed log segment or manifest and opens: `Corruption` (then the
    /// bit is restored and `None` returned) or a database holding everything.
    fn flip_and_open(&mut self) -> Result<Option<Db>, String> {
        let names = self
            .fs
            .list_dir(Path::new(DB_DIR))
            .map_err(|err| format!("listing the database: {err}"))?;
        let candidates: Vec<PathBuf> = names
            .iter()
            .filter(|name| name.ends_with(".log") || name.starts_with("MANIFEST-"))
            .map(|name| dir().join(name))
            .filter(|path| self.fs.file_size(path).is_ok_and(|len| len > 0))
            .collect();
        if candidates.is_empty() {
            return Ok(None);
        }
        let path = candidates[self.rng.random_range(0..candidates.len())].clone();
        let len = self.fs.file_size(&path).map_err(|err| err.to_string())?;
        let offset = self.rng.random_range(0..len);
        let xor = 1u8 << self.rng.random_range(0..8);
        self.fs
            .corrupt(&path, offset, xor)
            .map_err(|err| format!("corrupting {}: {err}", path.display()))?;
        self.tally.flips += 1;
        let context = format!(
            "bit {xor:#04x} of byte {offset} of {} flipped",
            path.display()
        );
        self.note(context.clone());
        match Db::open_with(dir(), self.params.options(&self.fs)) {
            Err(Error::Corruption { .. }) => {
                self.fs
                    .corrupt(&path, offset, xor)
                    .map_err(|err| format!("restoring {}: {err}", path.display()))?;
                Ok(None)
            }
            Err(err) => Err(self.fail(format!("{context}: open gave {err}, not Corruption"))),
            Ok(db) => {
                let state = read_all(&db).map_err(|err| self.fail(format!("{context}: {err}")))?;
                if &state != self.history.current() {
                    let keys = |state: &DbState| -> Vec<String> {
                        state
                            .iter()
                            .map(|(name, s)| format!("{name}: {}", s.len()))
                            .collect()
                    };
                    return Err(self.fail(format!(
                        "{context}: open succeeded with keys by keyspace {:?} where {:?} \
                         were durable: damage to durable data went unreported",
                        keys(&state),
                        keys(self.history.current())
                    )));
                }
                Ok(Some(db))
            }
        }
    }

    /// Arms one random fault on the simulated disk.
    fn arm_fault(&mut self) {
        let kind = SimOp::ALL[self.rng.random_range(0..SimOp::ALL.len())];
        let nth = self.rng.random_range(0..12);
        let filter = [
            None,
            Some(".log"),
            Some(".sst"),
            Some("MANIFEST"),
            Some("CURRENT"),
        ][self.rng.random_range(0..5)];
        let code = if self.rng.random_bool(0.5) {
            SimError::Eio
        } else {
            SimError::Enospc
        };
        let persistent = self.rng.random_bool(0.3);
        self.note(format!(
            "arm {kind:?} #{nth} on {filter:?} ({code:?}, persistent {persistent})"
        ));
        self.fs.fail_nth(kind, nth, filter, code, persistent);
        self.faults_armed = true;
    }

    /// Runs `plan` to its end (after creating the seed's first keyspaces), then one last
    /// power loss (or clean reopen) and check.
    fn run(&mut self, plan: &Plan) -> Result<(), String> {
        for _ in 0..self.params.keyspaces {
            self.create_keyspace()?;
        }
        for _ in 0..plan.ops {
            self.step(plan)?;
        }
        if plan.crashes {
            self.crash()?;
        } else {
            // An error sweep ends with a power-loss image of wherever the failure left
            // the disk, reopened on healthy hardware.
            let image = self.fs.crash(self.rng.next_u64());
            self.recover(&image, "after the injected error and a power loss")?;
            self.tally.images += 1;
        }
        self.count_injected();
        Ok(())
    }
}

/// Runs a crash seed: a workload with power-loss images, clean reopens with damaged files,
/// and an occasional injected fault.
pub fn run_crash_seed(seed: u64) -> Result<Tally, String> {
    let mut sim = Sim::new(seed, SimFs::new())?;
    sim.run(&Plan::CRASH)?;
    sim.tally.seeds = 1;
    Ok(sim.tally)
}

/// Runs an error sweep: the seed's short workload once to count its file-system calls,
/// then once more for each of up to `limit` of those calls (all of them when there are
/// fewer), with that call failing with EIO or ENOSPC. After each, writes must be refused
/// and a power-loss image of the disk must recover a prefix holding every durable write.
pub fn run_sweep_seed(seed: u64, limit: usize) -> Result<Tally, String> {
    let fs = SimFs::new();
    let mut counting = Sim::new(seed, fs.clone())?;
    counting.sweeping = true;
    counting.run(&Plan::SWEEP)?;
    let calls = fs.call_count();
    let mut tally = Tally {
        seeds: 1,
        ..Tally::default()
    };
    tally.add(&counting.tally);
    let mut pick = SmallRng::seed_from_u64(seed ^ 0x5eed_5eed);
    let indexes: Vec<u64> = if calls as usize <= limit {
        (0..calls).collect()
    } else {
        (0..limit).map(|_| pick.random_range(0..calls)).collect()
    };
    for index in indexes {
        let fs = SimFs::new();
        let code = if index % 2 == 0 {
            SimError::Eio
        } else {
            SimError::Enospc
        };
        fs.fail_call(index, code);
        let mut sim = match Sim::new(seed, fs.clone()) {
            Ok(mut sim) => {
                sim.sweeping = true;
                sim.faults_armed = true;
                sim
            }
            // The failing call was in the first open, which must have reported it as an
            // error (checked by `open_healthy`, which healed and reopened).
            Err(err) => return Err(format!("call {index} failing: {err}")),
        };
        sim.run(&Plan::SWEEP)
            .map_err(|err| format!("call {index} of {calls} failing ({code:?}): {err}"))?;
        tally.images += sim.tally.images;
        tally.injected += sim.tally.injected;
    }
    Ok(tally)
}
