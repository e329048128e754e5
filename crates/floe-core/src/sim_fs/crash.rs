//! Power-loss images: which of a simulated disk's unsynced operations and pages a crash
//! keeps, chosen by a seed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::state::{Dir, Inode, PAGE, SECTOR, State};

const SECTORS_PER_PAGE: usize = PAGE / SECTOR;

/// A new state holding what a power loss at this moment may leave of `state`, as chosen
/// by `seed`: every directory's durable entries with each of its pending operations kept
/// or lost, and every file still named there with its durable bytes and some of its
/// unsynced ones. No lock is held and no handle is open in it.
pub(super) fn image(state: &State, seed: u64) -> State {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut dirs = BTreeMap::new();
    for (path, dir) in &state.dirs {
        dirs.insert(path.clone(), Dir::durable(surviving_entries(dir, &mut rng)));
    }
    let named: BTreeSet<u64> = dirs
        .values()
        .flat_map(|dir| dir.current.values().copied())
        .collect();
    let mut inodes = BTreeMap::new();
    for ino in named {
        if let Some(inode) = state.inodes.get(&ino) {
            inodes.insert(ino, surviving_inode(inode, &mut rng));
        }
    }
    State {
        dirs,
        inodes,
        next_ino: state.next_ino,
        ..State::default()
    }
}

/// The directory's entries after a crash: the durable ones with a seed-chosen subset of
/// the pending operations applied in order (each skipped where it no longer applies).
/// Half the time every operation is kept or every one lost; otherwise each is kept or
/// lost by a fair coin.
fn surviving_entries(dir: &Dir, rng: &mut SmallRng) -> BTreeMap<std::ffi::OsString, u64> {
    let mut entries = dir.durable.clone();
    if dir.pending.is_empty() {
        return entries;
    }
    let mode = rng.random_range(0..4u8);
    for op in &dir.pending {
        let kept = match mode {
            0 => true,
            1 => false,
            _ => rng.random_bool(0.5),
        };
        if kept {
            op.apply(&mut entries);
        }
    }
    entries
}

/// How a crash treats one file's dirty pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageMode {
    /// No dirty page reached the disk.
    None,
    /// Every dirty page did.
    All,
    /// The dirty sectors in offset order up to a cut, which falls on a sector boundary
    /// or, for a disk with 4 KiB sectors, on a page boundary (a torn write).
    Prefix,
    /// Each dirty page independently, each persisted one possibly torn after a prefix of
    /// its sectors (the write-back order of the page cache is not the file order).
    Subset,
}

fn page_mode(rng: &mut SmallRng) -> PageMode {
    match rng.random_range(0..20u8) {
        0..2 => PageMode::None,
        2..5 => PageMode::All,
        5..11 => PageMode::Prefix,
        _ => PageMode::Subset,
    }
}

/// The dirty pages that reach the disk, each with how many of its sectors (from its
/// start) do.
fn persisted_pages(dirty: &BTreeSet<u64>, rng: &mut SmallRng) -> Vec<(u64, usize)> {
    let pages = dirty.iter().copied();
    match page_mode(rng) {
        PageMode::None => Vec::new(),
        PageMode::All => pages.map(|page| (page, SECTORS_PER_PAGE)).collect(),
        PageMode::Prefix => {
            let total = dirty.len() * SECTORS_PER_PAGE;
            let cut = if rng.random_bool(0.25) {
                rng.random_range(0..=dirty.len()) * SECTORS_PER_PAGE
            } else {
                rng.random_range(0..=total)
            };
            pages
                .enumerate()
                .map(|(i, page)| {
                    let before = i * SECTORS_PER_PAGE;
                    (page, cut.saturating_sub(before).min(SECTORS_PER_PAGE))
                })
                .filter(|&(_, sectors)| sectors > 0)
                .collect()
        }
        PageMode::Subset => {
            let keep = [0.25, 0.5, 0.75][rng.random_range(0..3usize)];
            let tear = [0.0, 0.25, 0.5][rng.random_range(0..3usize)];
            let mut persisted = Vec::new();
            for page in pages {
                if !rng.random_bool(keep) {
                    continue;
                }
                let sectors = if rng.random_bool(tear) {
                    rng.random_range(1..SECTORS_PER_PAGE)
                } else {
                    SECTORS_PER_PAGE
                };
                persisted.push((page, sectors));
            }
            persisted
        }
    }
}

/// The file after a crash. Its length lies between the durable and the current one
/// (either end a quarter of the time each, else anywhere between); a persisted page
/// contributes its current bytes (as many sectors as reached the disk), and every other
/// byte is the durable one, or zero past the durable length.
fn surviving_inode(inode: &Inode, rng: &mut SmallRng) -> Inode {
    if inode.is_clean() {
        return Inode {
            current: Arc::clone(&inode.durable),
            durable: Arc::clone(&inode.durable),
            ..Inode::default()
        };
    }
    let durable_len = inode.durable.len();
    let current_len = inode.current.len();
    let len = if durable_len == current_len {
        durable_len
    } else {
        match rng.random_range(0..4u8) {
            0 => durable_len,
            1 => current_len,
            _ => rng.random_range(durable_len.min(current_len)..=durable_len.max(current_len)),
        }
    };
    let mut bytes = Vec::with_capacity(len);
    bytes.extend_from_slice(&inode.durable[..durable_len.min(len)]);
    bytes.resize(len, 0);
    let limit = len.min(current_len);
    for (page, sectors) in persisted_pages(&inode.dirty, rng) {
        let start = (page as usize).saturating_mul(PAGE);
        let end = start.saturating_add(sectors * SECTOR).min(limit);
        if start < end {
            bytes[start..end].copy_from_slice(&inode.current[start..end]);
        }
    }
    let bytes = Arc::new(bytes);
    Inode {
        current: Arc::clone(&bytes),
        durable: bytes,
        ..Inode::default()
    }
}
