//! One seed's run: a seeded workload on a [`SimFs`], crash images taken at seed-chosen
//! points and reopened, injected I/O errors, and the oracle's checks after each.
//!
//! Everything a run does follows from its seed: the options, the operations, where it
//! crashes, which unsynced state each power-loss image keeps, which call fails. The
//! engine runs with `Options::manual_background`, so flushes and compactions happen at
//! seed-chosen points in the workload's thread, and a failing seed replays exactly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use floe_core::fs::FileSystem;
use floe_core::sim_fs::{SimError, SimFs, SimOp};
use floe_engine::{Db, Error, Options, Snapshot, WriteBatch};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

use crate::model::{History, Op, State};

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
}

impl Tally {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Tally) {
        self.seeds += other.seeds;
        self.images += other.images;
        self.injected += other.injected;
        self.flips += other.flips;
    }
}

/// The options of one seed, drawn once so that every reopen uses the same ones.
#[derive(Debug, Clone)]
struct Params {
    write_buffer: usize,
    block_size: usize,
    sync: bool,
    max_immutable: usize,
    l0_trigger: usize,
    target_file: u64,
    level_base: u64,
    dynamic: bool,
    wal_bytes_per_sync: u64,
}

impl Params {
    fn draw(rng: &mut SmallRng) -> Params {
        Params {
            write_buffer: [4096, 8192, 16 << 10][rng.random_range(0..3)],
            block_size: [64, 256, 1024, 4096][rng.random_range(0..4)],
            sync: rng.random_bool(0.3),
            max_immutable: rng.random_range(1..=3),
            l0_trigger: rng.random_range(2..=4),
            target_file: [4096, 16 << 10, 64 << 10][rng.random_range(0..3)],
            level_base: [16 << 10, 64 << 10][rng.random_range(0..2)],
            dynamic: rng.random_bool(0.7),
            wal_bytes_per_sync: [0, 512, 4096][rng.random_range(0..3)],
        }
    }

    fn options(&self, fs: &SimFs) -> Options {
        Options::default()
            .file_system(Arc::new(fs.clone()))
            .manual_background(true)
            .write_buffer_size(self.write_buffer)
            .block_size(self.block_size)
            .sync(self.sync)
            .max_immutable_memtables(self.max_immutable)
            .l0_compaction_trigger(self.l0_trigger)
            .target_file_size(self.target_file)
            .max_bytes_for_level_base(self.level_base)
            .dynamic_level_bytes(self.dynamic)
            .wal_bytes_per_sync(self.wal_bytes_per_sync)
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

/// A live simulation of one database.
struct Sim {
    seed: u64,
    rng: SmallRng,
    fs: SimFs,
    params: Params,
    db: Option<Db>,
    history: History,
    /// Set once a write-path call failed: every later write must be refused.
    errored: Option<String>,
    /// Snapshots with the state each must show.
    snapshots: Vec<(Snapshot, State)>,
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
            history: History::new(State::new()),
            errored: None,
            snapshots: Vec::new(),
            tally: Tally::default(),
            trace: Vec::new(),
            next_write: 0,
            injected_counted: 0,
            faults_armed: false,
            sweeping: false,
        };
        let db = sim.open_healthy("the first open")?;
        sim.db = Some(db);
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

    fn key(&mut self) -> Vec<u8> {
        format!("k{:02}", self.rng.random_range(0..40)).into_bytes()
    }

    fn value(&mut self) -> Vec<u8> {
        self.next_write += 1;
        let len = match self.rng.random_range(0..20) {
            0 => self.rng.random_range(1000..5000),
            1..=4 => self.rng.random_range(100..400),
            _ => self.rng.random_range(1..40),
        };
        let mut value = format!("v{}.{}:", self.seed % 1000, self.next_write).into_bytes();
        value.resize(value.len() + len, b'a' + (self.next_write % 26) as u8);
        value
    }

    /// The outcome of a write-path call that is not itself a write.
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

    /// Applies one write and records its outcome.
    fn write(&mut self, ops: Vec<Op>) -> Result<(), String> {
        let single = ops.len() == 1;
        let result = if single {
            let (key, value) = &ops[0];
            match value {
                Some(value) => self.db().put(key, value),
                None => self.db().delete(key),
            }
        } else {
            let mut batch = WriteBatch::new();
            for (key, value) in &ops {
                match value {
                    Some(value) => batch.put(key, value),
                    None => batch.delete(key),
                }
            }
            self.db().write(batch)
        };
        self.note(format!(
            "write of {} ops: {}",
            ops.len(),
            if result.is_ok() { "ok" } else { "err" }
        ));
        match result {
            Ok(()) => {
                if let Some(first) = &self.errored {
                    return Err(self.fail(format!(
                        "a write was acknowledged after an earlier call failed ({first})"
                    )));
                }
                self.history.acknowledged(ops);
                if self.params.sync {
                    self.history.all_durable();
                }
                Ok(())
            }
            Err(err) => {
                if self.errored.is_none() {
                    if self.fs.injected() <= self.injected_counted {
                        return Err(
                            self.fail(format!("a write failed with no injected error: {err}"))
                        );
                    }
                    self.errored = Some(err.to_string());
                    self.history.failed(ops);
                } else if !is_poisoned(&err) {
                    return Err(
                        self.fail(format!("a write after a failure gave {err}, not Poisoned"))
                    );
                }
                Ok(())
            }
        }
    }

    /// Whether the database refuses writes now (probed with a sync, which changes nothing
    /// a model tracks).
    fn poisoned_now(&self) -> bool {
        matches!(self.db().sync(), Err(Error::Poisoned { .. }))
    }

    /// Checks a read of `key` against the model (while every write's outcome is known).
    fn check_get(&mut self) -> Result<(), String> {
        let key = self.key();
        let got = self.db().get(&key);
        if self.errored.is_some() {
            return Ok(());
        }
        let want = self.history.current().get(&key);
        match got {
            Ok(value) if value.as_deref() == want.map(Vec::as_slice) => Ok(()),
            other => Err(self.fail(format!(
                "get({}) returned {other:?}, the model holds {:?}",
                String::from_utf8_lossy(&key),
                want.map(|v| String::from_utf8_lossy(v).into_owned())
            ))),
        }
    }

    fn check_scan(&mut self) -> Result<(), String> {
        if self.errored.is_some() {
            return Ok(());
        }
        let (low, high) = (self.key(), self.key());
        let (low, high) = if low <= high {
            (low, high)
        } else {
            (high, low)
        };
        let got = collect(self.db().range(low.clone()..high.clone()))
            .map_err(|err| self.fail(format!("a scan failed: {err}")))?;
        let want: State = self
            .history
            .current()
            .range(low..high)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if got != want {
            return Err(self.fail(format!(
                "a range scan returned {} pairs, the model {}",
                got.len(),
                want.len()
            )));
        }
        Ok(())
    }

    fn check_snapshot(&mut self) -> Result<(), String> {
        if self.snapshots.is_empty() {
            return Ok(());
        }
        let at = self.rng.random_range(0..self.snapshots.len());
        let (snapshot, want) = &self.snapshots[at];
        let got =
            collect(snapshot.iter()).map_err(|err| format!("a snapshot scan failed: {err}"))?;
        if &got != want {
            return Err(self.fail(format!(
                "a snapshot shows {} pairs, it was taken over {}",
                got.len(),
                want.len()
            )));
        }
        if self.rng.random_bool(0.3) {
            self.snapshots.swap_remove(at);
        }
        Ok(())
    }

    /// Takes power-loss images of the present state, reopens and checks each, and goes on
    /// with the last one.
    fn crash(&mut self) -> Result<(), String> {
        let images = self.rng.random_range(1..=Plan::CRASH.images_per_crash);
        let mut last = None;
        for _ in 0..images {
            let image_seed = self.rng.next_u64();
            let image = self.fs.crash(image_seed);
            let db = Db::open_with(dir(), self.params.options(&image)).map_err(|err| {
                self.fail(format!(
                    "open after a power loss (image {image_seed}) failed: {err}"
                ))
            })?;
            let state = collect(db.iter()).map_err(|err| {
                self.fail(format!("reading the recovered database failed: {err}"))
            })?;
            self.history.check_recovered(&state).map_err(|err| {
                self.fail(format!("after a power loss (image {image_seed}): {err}"))
            })?;
            self.tally.images += 1;
            last = Some((image, db, state));
        }
        let (image, db, state) = last.expect("at least one image");
        self.note(format!("crash: {images} images"));
        self.snapshots.clear();
        self.count_injected();
        drop(self.db.replace(db));
        self.fs = image;
        self.injected_counted = 0;
        self.faults_armed = false;
        self.history = History::new(state);
        self.errored = None;
        Ok(())
    }

    /// Closes cleanly and reopens; sometimes first damages one bit of a closed log or
    /// manifest, which open must report as corruption or prove harmless.
    fn reopen(&mut self) -> Result<(), String> {
        self.snapshots.clear();
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

    fn reopened(&mut self, db: Db) -> Result<(), String> {
        let state = collect(db.iter())
            .map_err(|err| self.fail(format!("reading the reopened database failed: {err}")))?;
        self.history
            .check_recovered(&state)
            .map_err(|err| self.fail(format!("after a clean reopen: {err}")))?;
        self.count_injected();
        if !self.sweeping {
            self.fs.clear_faults();
            self.faults_armed = false;
        }
        self.db = Some(db);
        self.history = History::new(state);
        self.errored = None;
        Ok(())
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
                let state =
                    collect(db.iter()).map_err(|err| self.fail(format!("{context}: {err}")))?;
                if &state != self.history.current() {
                    return Err(self.fail(format!(
                        "{context}: open succeeded with {} keys where {} were durable: \
                         damage to durable data went unreported",
                        state.len(),
                        self.history.current().len()
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

    /// One operation of the workload.
    fn step(&mut self, plan: &Plan) -> Result<(), String> {
        match self.rng.random_range(0..100) {
            0..=34 => {
                let (key, value) = (self.key(), self.value());
                self.write(vec![(key, Some(value))])
            }
            35..=44 => {
                let key = self.key();
                self.write(vec![(key, None)])
            }
            45..=54 => {
                let n = self.rng.random_range(2..=6);
                let ops = (0..n)
                    .map(|_| {
                        let key = self.key();
                        let value = self.rng.random_bool(0.8).then(|| self.value());
                        (key, value)
                    })
                    .collect();
                self.write(ops)
            }
            55..=62 => self.check_get(),
            63..=65 => self.check_scan(),
            66..=67 => {
                if self.errored.is_none() && self.snapshots.len() < 4 {
                    let snapshot = self.db().snapshot();
                    self.snapshots
                        .push((snapshot, self.history.current().clone()));
                }
                Ok(())
            }
            68..=70 => self.check_snapshot(),
            71..=74 => {
                let result = self.db().sync();
                let ok = result.is_ok();
                self.after_call("sync", result)?;
                if ok {
                    self.history.all_durable();
                }
                Ok(())
            }
            75..=78 => {
                let result = self.db().flush();
                let ok = result.is_ok();
                self.after_call("flush", result)?;
                if ok {
                    self.history.all_durable();
                }
                Ok(())
            }
            79..=86 => {
                let result = self.db().step_background().map(|_| ());
                self.after_call("background step", result)
            }
            87 => {
                // A manual compaction that fails to write its outputs leaves the tree as
                // it was and the write path healthy: it reports the error without
                // poisoning the database (a failed flush or manifest edit inside it does).
                let result = self.db().compact();
                match result {
                    Ok(()) => {
                        self.after_call("compact", Ok(()))?;
                        self.history.all_durable();
                        Ok(())
                    }
                    Err(err) if self.errored.is_none() && !self.poisoned_now() => {
                        if self.fs.injected() <= self.injected_counted {
                            return Err(
                                self.fail(format!("compact failed with no injected error: {err}"))
                            );
                        }
                        self.note(format!("compact -> {err} (not poisoned)"));
                        Ok(())
                    }
                    Err(err) => self.after_call("compact", Err(err)),
                }
            }
            88 => {
                let result = self.db().wait_for_compactions();
                self.after_call("wait for compactions", result)
            }
            89..=91 => self.reopen(),
            92..=96 if plan.crashes => self.crash(),
            97 if plan.faults && self.fs.injected() == 0 => {
                self.arm_fault();
                Ok(())
            }
            _ => self.check_get(),
        }
    }

    /// Runs `plan` to its end, then one last power loss (or clean reopen) and check.
    fn run(&mut self, plan: &Plan) -> Result<(), String> {
        for _ in 0..plan.ops {
            self.step(plan)?;
        }
        if plan.crashes {
            self.crash()?;
        } else {
            // An error sweep ends with a power-loss image of wherever the failure left
            // the disk, reopened on healthy hardware.
            let image = self.fs.crash(self.rng.next_u64());
            let db = Db::open_with(dir(), self.params.options(&image))
                .map_err(|err| self.fail(format!("open after the injected error failed: {err}")))?;
            let state = collect(db.iter()).map_err(|err| {
                self.fail(format!("reading the recovered database failed: {err}"))
            })?;
            self.history.check_recovered(&state).map_err(|err| {
                self.fail(format!("after the injected error and a power loss: {err}"))
            })?;
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
