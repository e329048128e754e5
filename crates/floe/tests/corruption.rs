//! Corruption sweeps over every kind of file: build a small database with several tables,
//! a manifest, `CURRENT` and an unflushed log, then, on copies of it, flip single bits and
//! cut files short, open the copy and read everything (every key with `get`, a full scan
//! forwards and backwards). Each read must return `Err(Error::Corruption { .. })` or
//! exactly the right data; a wrong value, a silently missing key or a panic is a bug.
//! A damaged log may also lose a suffix of its writes (a torn tail is dropped), so for
//! logs any prefix of the writes is right as long as it keeps everything flushed before.
//!
//! The seed is printed and `FLOE_SEED` replays the sampled bits; `FLOE_SWEEP_BITS` sets
//! how many bits of each larger file are flipped, and `FLOE_SWEEP_FULL=1` flips every bit.

pub mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use common::{Model, Pair, model_all};
use floe::{Db, Error, Iter, Options, WriteBatch};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Files this small have every bit flipped and every length tried.
const SMALL_FILE: usize = 256;

/// A fresh scratch directory for one damaged copy. Durability plays no part in these
/// checks, so a memory-backed file system is used where there is one: the fsyncs of
/// thousands of opens would otherwise dominate the run time.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

fn options() -> Options {
    Options::default().write_buffer_size(1024).block_size(64)
}

/// One write of the build, so that states after any prefix of them can be computed.
enum Write {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
}

fn apply(model: &mut Model, write: &Write) {
    match write {
        Write::Put(k, v) => {
            model.insert(k.clone(), v.clone());
        }
        Write::Delete(k) => {
            model.remove(k);
        }
        Write::Batch(entries) => {
            for (k, v) in entries {
                match v {
                    Some(v) => model.insert(k.clone(), v.clone()),
                    None => model.remove(k),
                };
            }
        }
    }
}

fn write_to(db: &Db, write: &Write) {
    match write {
        Write::Put(k, v) => db.put(k, v).unwrap(),
        Write::Delete(k) => db.delete(k).unwrap(),
        Write::Batch(entries) => {
            let mut batch = WriteBatch::new();
            for (k, v) in entries {
                match v {
                    Some(v) => batch.put(k, v),
                    None => batch.delete(k),
                }
            }
            db.write(batch).unwrap();
        }
    }
}

fn key(n: usize) -> Vec<u8> {
    format!("key{n:03}").into_bytes()
}

fn value(n: usize, round: usize) -> Vec<u8> {
    format!("value-{n}-{round}-{}", "v".repeat(n % 13)).into_bytes()
}

/// A built database image and what it must hold.
struct Image {
    /// The directory holding the image's files.
    dir: PathBuf,
    /// `states[j]` is the state after the first `log_start + j` writes; the last entry is
    /// the full state.
    states: Vec<Model>,
    /// Every key any write touched, plus a few never written, for point reads.
    keys: Vec<Vec<u8>>,
}

/// Builds the database in `work`, then copies it, while still open, into `open_copy`
/// (an image with an unflushed log, as a crash would leave it) and, after `close`, into
/// `closed_copy`.
fn build(work: &Path, open_copy: &Path, closed_copy: &Path) -> (Image, Image) {
    let db = Db::open_with(work, options()).unwrap();
    let mut writes = Vec::new();
    for round in 0..3 {
        for n in (0..120).filter(|n| n % (round + 2) != 1) {
            writes.push(Write::Put(key(n), value(n, round)));
        }
        for n in (0..120).filter(|n| n % 17 == round) {
            writes.push(Write::Delete(key(n)));
        }
        writes.push(Write::Batch(
            (200..206)
                .map(|n| (key(n), (n % 3 != round).then(|| value(n, round))))
                .collect(),
        ));
    }
    let mut model = Model::new();
    for (i, write) in writes.iter().enumerate() {
        write_to(&db, write);
        apply(&mut model, write);
        if i == writes.len() / 3 {
            db.flush().unwrap();
        }
    }
    db.flush().unwrap();
    db.compact().unwrap();
    // Three flushed tables above the compacted ones, so that reads go through several
    // tables and the newest version of a key sits above older ones.
    for round in 7..10 {
        for n in (round..120).step_by(9) {
            let write = Write::Put(key(n), value(n, round));
            write_to(&db, &write);
            apply(&mut model, &write);
            writes.push(write);
        }
        let write = Write::Delete(key(round * 3));
        write_to(&db, &write);
        apply(&mut model, &write);
        writes.push(write);
        db.flush().unwrap();
    }
    // The unflushed tail: small enough that it stays in the memtable and its log.
    let log_start = writes.len();
    let tail = vec![
        Write::Put(key(1), b"tail-1".to_vec()),
        Write::Delete(key(2)),
        Write::Batch(vec![
            (key(3), Some(b"tail-3".to_vec())),
            (key(4), None),
            (key(300), Some(b"tail-300".to_vec())),
        ]),
        Write::Put(key(301), Vec::new()),
    ];
    let mut states = vec![model.clone()];
    for write in tail {
        write_to(&db, &write);
        apply(&mut model, &write);
        states.push(model.clone());
        writes.push(write);
    }
    db.sync().unwrap();
    stable_copy(work, open_copy);
    db.close().unwrap();
    copy_dir(work, closed_copy, None);
    let mut keys: BTreeSet<Vec<u8>> = (0..=310).map(key).collect();
    keys.insert(Vec::new());
    keys.insert(b"zzz".to_vec());
    let keys: Vec<_> = keys.into_iter().collect();
    println!(
        "built {} writes, the last {} only in the log",
        writes.len(),
        writes.len() - log_start
    );
    let open = Image {
        dir: open_copy.to_path_buf(),
        states: states.clone(),
        keys: keys.clone(),
    };
    let closed = Image {
        dir: closed_copy.to_path_buf(),
        states,
        keys,
    };
    (open, closed)
}

/// Copies the directory of an open database, retrying until two copies in a row agree,
/// so that background work that was still finishing cannot leave a torn image.
fn stable_copy(from: &Path, to: &Path) {
    let read = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let e = e.unwrap();
                let name = e.file_name().into_string().unwrap();
                // A file may vanish between the listing and the read; the retry covers it.
                std::fs::read(e.path()).ok().map(|bytes| (name, bytes))
            })
            .collect()
    };
    let mut previous = read(from);
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = read(from);
        if now == previous {
            std::fs::create_dir_all(to).unwrap();
            for (name, bytes) in now {
                std::fs::write(to.join(name), bytes).unwrap();
            }
            return;
        }
        previous = now;
    }
    panic!("the open database's directory kept changing; cannot take a stable image");
}

/// Copies the regular files of `from` into `to` (created if needed), replacing the file
/// named `replace.0` by the bytes `replace.1` (or leaving it out when that is `None`).
fn copy_dir(from: &Path, to: &Path, replace: Option<(&str, Option<&[u8]>)>) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_file() {
            continue;
        }
        let name = entry.file_name();
        let target = to.join(&name);
        match replace {
            Some((file, bytes)) if name.to_str() == Some(file) => {
                if let Some(bytes) = bytes {
                    std::fs::write(target, bytes).unwrap();
                }
            }
            _ => {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
}

/// How damage to a kind of file may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// A write-ahead log: Corruption, the exact data, or a prefix of the writes that
    /// keeps everything flushed before the log began.
    Log,
    /// Anything else: Corruption or the exact data.
    Strict,
}

fn class_of(name: &str) -> Option<Class> {
    if name == "LOCK" || name.ends_with(".lock") {
        // The lock file's contents mean nothing; only its lock does.
        None
    } else if name.ends_with(".log") || name.ends_with(".wal") {
        Some(Class::Log)
    } else {
        Some(Class::Strict)
    }
}

/// What one damaged copy did.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Outcome {
    /// `open` returned Corruption.
    OpenRefused,
    /// `open` succeeded and at least one read returned Corruption; the others were right.
    ReadRefused,
    /// Every read returned the full, exact state.
    Exact,
    /// Every read returned the state after a proper prefix of the writes (logs only).
    Prefix,
}

/// Narrows `candidates` (indices into `image.states`) to those `items` agrees with, where
/// `items` is what an iterator yielded before it ended (`complete`) or failed.
fn narrow_scan(
    image: &Image,
    candidates: &mut Vec<usize>,
    items: &[Pair],
    complete: bool,
    backwards: bool,
) {
    candidates.retain(|&c| {
        let mut want = model_all(&image.states[c]);
        if backwards {
            want.reverse();
        }
        if complete {
            want == items
        } else {
            want.starts_with(items)
        }
    });
}

/// Drains `iter`; returns the pairs and whether it ended cleanly, or the first
/// non-corruption error.
fn drain(iter: Iter, backwards: bool) -> Result<(Vec<Pair>, bool), String> {
    let mut items = Vec::new();
    let iter: Box<dyn Iterator<Item = floe::Result<(floe::Bytes, floe::Bytes)>>> = if backwards {
        Box::new(iter.rev())
    } else {
        Box::new(iter)
    };
    for item in iter {
        match item {
            Ok((k, v)) => items.push((k.to_vec(), v.to_vec())),
            Err(Error::Corruption { .. }) => return Ok((items, false)),
            Err(e) => return Err(format!("a scan failed with a non-corruption error: {e}")),
        }
    }
    Ok((items, true))
}

/// Opens the damaged copy in `dir` and reads everything; returns the outcome or what went
/// wrong.
fn check_copy(image: &Image, dir: &Path, class: Class) -> Result<Outcome, String> {
    let db = match Db::open_with(dir, options()) {
        Ok(db) => db,
        Err(Error::Corruption { .. }) => return Ok(Outcome::OpenRefused),
        Err(e) => return Err(format!("open failed with a non-corruption error: {e}")),
    };
    let full = image.states.len() - 1;
    let mut candidates: Vec<usize> = match class {
        Class::Log => (0..=full).collect(),
        Class::Strict => vec![full],
    };
    let mut refused = false;
    for backwards in [false, true] {
        let (items, complete) = drain(db.iter(), backwards)?;
        refused |= !complete;
        let before = candidates.clone();
        narrow_scan(image, &mut candidates, &items, complete, backwards);
        if candidates.is_empty() {
            let mut got = items;
            if backwards {
                got.reverse();
            }
            let diff = if complete {
                common::first_difference(&got, &model_all(&image.states[*before.last().unwrap()]))
            } else {
                Some(format!("{} pairs before an error", got.len()))
            };
            return Err(format!(
                "a full scan (backwards={backwards}, complete={complete}) matches no acceptable state: {}",
                diff.unwrap_or_default()
            ));
        }
    }
    for key in &image.keys {
        match db.get(key) {
            Ok(got) => {
                let got = got.map(|v| v.to_vec());
                let before = candidates.clone();
                candidates.retain(|&c| image.states[c].get(key) == got.as_ref());
                if candidates.is_empty() {
                    let want = image.states[*before.last().unwrap()].get(key);
                    return Err(format!(
                        "get({}) returned {:?}, expected {:?}",
                        common::show(key),
                        got.as_deref().map(common::show),
                        want.map(|v| common::show(v))
                    ));
                }
            }
            Err(Error::Corruption { .. }) => refused = true,
            Err(e) => return Err(format!("get failed with a non-corruption error: {e}")),
        }
    }
    drop(db);
    Ok(if refused {
        Outcome::ReadRefused
    } else if candidates.contains(&full) {
        Outcome::Exact
    } else {
        Outcome::Prefix
    })
}

/// Panics seen by the hook, from any thread (the engine's background threads included).
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(install_panic_hook_now);
}

fn install_panic_hook_now() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        PANICS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("thread {thread}: {info}"));
        previous(info);
    }));
}

/// A sweep's tally: outcomes per file and the failures, with how to reproduce them.
#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<String, BTreeMap<Outcome, usize>>,
    failures: Vec<String>,
    trials: usize,
}

impl Tally {
    /// Damages `name` in a copy of `image` (its bytes replaced by `bytes`), checks the copy
    /// and records the result under `label`.
    fn trial(
        &mut self,
        image: &Image,
        image_name: &str,
        name: &str,
        class: Class,
        bytes: Option<&[u8]>,
        label: &str,
    ) {
        self.trials += 1;
        let scratch = scratch_dir();
        copy_dir(&image.dir, scratch.path(), Some((name, bytes)));
        let panics_before = PANICS.lock().unwrap_or_else(|e| e.into_inner()).len();
        let result = catch_unwind(AssertUnwindSafe(|| {
            check_copy(image, scratch.path(), class)
        }));
        let panics = PANICS.lock().unwrap_or_else(|e| e.into_inner())[panics_before..].to_vec();
        let what = format!("{image_name} image, {name} ({class:?}), {label}");
        match result {
            _ if !panics.is_empty() => self
                .failures
                .push(format!("{what}: panic: {}", panics.join(" | "))),
            Ok(Ok(outcome)) => {
                *self
                    .outcomes
                    .entry(format!("{image_name}/{name}"))
                    .or_default()
                    .entry(outcome)
                    .or_default() += 1;
            }
            Ok(Err(message)) => self.failures.push(format!("{what}: {message}")),
            Err(_) => self
                .failures
                .push(format!("{what}: panic (payload not text)")),
        }
    }
}

/// The bit positions to flip in a file of `len` bytes.
fn bits_to_flip(len: usize, budget: usize, full: bool, rng: &mut SmallRng) -> Vec<usize> {
    let bits = len * 8;
    if full || len <= SMALL_FILE || bits <= budget {
        return (0..bits).collect();
    }
    // Stratified: one random bit in each of `budget` equal slices, so every region of the
    // file (header, blocks, index, filter, footer) is hit.
    (0..budget)
        .map(|s| {
            let lo = s * bits / budget;
            let hi = ((s + 1) * bits / budget).max(lo + 1);
            rng.random_range(lo..hi)
        })
        .collect()
}

/// The lengths to cut a file of `len` bytes to.
fn cuts(len: usize, budget: usize, rng: &mut SmallRng) -> Vec<usize> {
    if len <= SMALL_FILE || len <= budget {
        return (0..len).collect();
    }
    let mut set: BTreeSet<usize> = [
        0,
        1,
        len / 2,
        len - 1,
        len.saturating_sub(8),
        len.saturating_sub(48),
    ]
    .into_iter()
    .collect();
    while set.len() < budget {
        set.insert(rng.random_range(0..len));
    }
    set.into_iter().collect()
}

fn sweep_image(
    image: &Image,
    image_name: &str,
    only: Option<&BTreeSet<String>>,
    rng: &mut SmallRng,
    tally: &mut Tally,
) {
    let budget = floe_testkit::env_usize("FLOE_SWEEP_BITS", 300);
    let full = floe_testkit::env_flag("FLOE_SWEEP_FULL");
    let mut names: Vec<String> = std::fs::read_dir(&image.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in names {
        let Some(class) = class_of(&name) else {
            continue;
        };
        if only.is_some_and(|only| !only.contains(&name)) {
            continue;
        }
        let original = std::fs::read(image.dir.join(&name)).unwrap();
        for bit in bits_to_flip(original.len(), budget, full, rng) {
            let mut bytes = original.clone();
            bytes[bit / 8] ^= 1 << (bit % 8);
            tally.trial(
                image,
                image_name,
                &name,
                class,
                Some(&bytes),
                &format!("bit {bit} flipped"),
            );
        }
        for cut in cuts(original.len(), budget / 4, rng) {
            tally.trial(
                image,
                image_name,
                &name,
                class,
                Some(&original[..cut]),
                &format!("cut to {cut} bytes"),
            );
        }
        println!(
            "{image_name}/{name}: {} bytes, {:?}",
            original.len(),
            tally.outcomes.get(&format!("{image_name}/{name}"))
        );
    }
}

/// The images a sweep damages, checked to read back exactly while undamaged, with the
/// contents of their files.
struct Images {
    /// Keeps the directories alive.
    _root: tempfile::TempDir,
    open: Image,
    closed: Image,
    open_files: BTreeMap<String, Vec<u8>>,
    closed_files: BTreeMap<String, Vec<u8>>,
}

fn prepare() -> Images {
    install_panic_hook();
    let root = scratch_dir();
    let (open, closed) = build(
        &root.path().join("work"),
        &root.path().join("open"),
        &root.path().join("closed"),
    );
    // The undamaged images must read back exactly, or the sweep proves nothing.
    for (image, name) in [(&open, "open"), (&closed, "closed")] {
        let scratch = scratch_dir();
        copy_dir(&image.dir, scratch.path(), None);
        assert_eq!(
            check_copy(image, scratch.path(), Class::Strict),
            Ok(Outcome::Exact),
            "the undamaged {name} image does not read back exactly"
        );
    }
    let files = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    };
    let (open_files, closed_files) = (files(&open.dir), files(&closed.dir));
    println!(
        "open image: {:?}\nclosed image: {:?}",
        open_files
            .iter()
            .map(|(n, b)| (n, b.len()))
            .collect::<Vec<_>>(),
        closed_files
            .iter()
            .map(|(n, b)| (n, b.len()))
            .collect::<Vec<_>>()
    );
    assert!(
        open_files.keys().any(|n| class_of(n) == Some(Class::Log)),
        "the open image has no log file to damage"
    );
    assert!(
        open_files.contains_key("CURRENT"),
        "the open image has no CURRENT"
    );
    Images {
        _root: root,
        open,
        closed,
        open_files,
        closed_files,
    }
}

impl Tally {
    /// Panics with every failure recorded, if there was any. `seed` is the run's seed,
    /// when it drew random choices.
    fn finish(&self, seed: Option<u64>) {
        let seed = seed.map_or_else(|| "no seed".to_owned(), |s| format!("seed {s}"));
        println!("{seed}: {} damaged copies checked", self.trials);
        if !self.failures.is_empty() {
            let shown: Vec<_> = self.failures.iter().take(40).map(String::as_str).collect();
            panic!(
                "{seed}: {} of {} damaged copies were handled wrongly (replay with FLOE_SEED when a seed is given):\n{}",
                self.failures.len(),
                self.trials,
                shown.join("\n")
            );
        }
    }
}

#[test]
fn bit_flips_and_truncations_are_detected_or_harmless() {
    let seed = floe_testkit::seed("bit_flips_and_truncations_are_detected_or_harmless");
    let mut rng = SmallRng::seed_from_u64(seed);
    let images = prepare();
    let mut tally = Tally::default();
    sweep_image(&images.open, "open", None, &mut rng, &mut tally);
    // Of the closed image, only the files that close changed or added.
    let changed: BTreeSet<String> = images
        .closed_files
        .iter()
        .filter(|(n, b)| images.open_files.get(*n) != Some(*b))
        .map(|(n, _)| n.clone())
        .collect();
    sweep_image(
        &images.closed,
        "closed",
        Some(&changed),
        &mut rng,
        &mut tally,
    );
    tally.finish(Some(seed));
}

/// A missing file is damage too. Every file of the image is needed: the tables and the
/// manifest hold the flushed data, `CURRENT` names the manifest, and the log holds
/// acknowledged (even synced) writes that no other file has. `docs/durability.md`
/// (Recovery): a table the manifest lists that is missing is `Corruption`, and so is a
/// gap in the log's sequence numbers. So the absence of any of them must be reported,
/// never papered over by opening with less data.
#[test]
fn a_missing_file_is_reported_not_papered_over() {
    let images = prepare();
    let mut tally = Tally::default();
    for (image, image_name, files) in [
        (&images.open, "open", &images.open_files),
        (&images.closed, "closed", &images.closed_files),
    ] {
        for name in files.keys() {
            if class_of(name).is_some() {
                tally.trial(image, image_name, name, Class::Strict, None, "deleted");
            }
        }
    }
    println!("{:?}", tally.outcomes);
    tally.finish(None);
}
