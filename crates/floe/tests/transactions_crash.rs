//! A `kill -9` bank. The test binary re-executes itself as a child that opens the
//! database and runs several threads moving money between 100 accounts in two keyspaces
//! with transactions, retrying on `Error::Conflict`, some commits synced and some not.
//! Each transfer is a pure function of the seed, its thread and its number, and writes,
//! in the same transaction, a receipt `receipt/<thread>/<n>` naming both accounts, the
//! amount, and the balance and version it read of each. The child prints `ack <thread>
//! <n>` after each commit returns; the parent kills it with SIGKILL at a random moment
//! (some kills land during `open`), reopens the database and checks:
//!
//! - every acknowledged receipt is there, synced or not (a process crash loses nothing the
//!   kernel holds), and each thread's receipts are a prefix of its transfers, with at
//!   most the one in flight beyond its last acknowledgement;
//! - each receipt is the transfer its key names;
//! - the total over all accounts never changes;
//! - every account's history is exactly its receipts: ordered by the version they read,
//!   the versions are 0, 1, 2, ... without gaps or repeats (no lost update, no receipt
//!   without its balances or balances without their receipt), each receipt read the
//!   balance the previous one left, and the last leaves the stored balance and version.
//!
//! The child also runs an auditor whose read-only transactions scan both keyspaces and
//! must see the total, and commit. The next cycle continues every thread's sequence on
//! the same directory.
//!
//! The seed is printed; `FLOE_SEED` replays the transfers and the parent's choices (the
//! timing of a kill, and so which transfers commit, is not replayable), and
//! `FLOE_TXN_CRASH_CYCLES` sets the number of cycles.

pub mod kill_harness;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use floe::{Db, Error, Keyspace, Options, Transaction, WriteOptions};
use floe_testkit::env_required;
use kill_harness::{KillAt, say};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const CHILD_DIR: &str = "FLOE_TXN_CRASH_CHILD_DIR";
const CHILD_SEED: &str = "FLOE_TXN_CRASH_CHILD_SEED";
const CHILD_START: &str = "FLOE_TXN_CRASH_CHILD_START";
const CHILD_BUFFER: &str = "FLOE_TXN_CRASH_CHILD_BUFFER";

/// The transferring threads of the child.
const THREADS: usize = 8;
/// The accounts, spread over the two keyspaces by parity.
const ACCOUNTS: usize = 100;
/// Every account's opening balance.
const OPENING: i64 = 1000;
/// How many transfers one child thread attempts at most; the parent kills it long before.
const CHILD_TRANSFERS: usize = 1_000_000;

/// The keyspaces the accounts live in; receipts live in the default keyspace.
const BANKS: [&str; 2] = ["east", "west"];

fn account_key(account: usize) -> String {
    format!("acct{account:03}")
}

fn receipt_key(thread: usize, n: usize) -> String {
    format!("receipt/{thread}/{n:08}")
}

/// Transfer `n` of `thread` under `seed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Transfer {
    from: usize,
    to: usize,
    amount: i64,
    sync: bool,
}

fn transfer(seed: u64, thread: usize, n: usize) -> Transfer {
    let mut rng = SmallRng::seed_from_u64(
        seed ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (thread as u64 + 1).wrapping_mul(0xd1b5_4a32_d192_ed03),
    );
    let from = rng.random_range(0..ACCOUNTS);
    let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
    Transfer {
        from,
        to,
        amount: rng.random_range(0..200),
        sync: rng.random_bool(0.3),
    }
}

/// An account's stored value: its balance and how many transfers touched it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Account {
    balance: i64,
    version: u64,
}

impl Account {
    fn encode(self) -> String {
        format!("{} {}", self.balance, self.version)
    }

    fn decode(text: &[u8]) -> Account {
        let text = std::str::from_utf8(text).expect("an account is text");
        let (balance, version) = text.split_once(' ').expect("an account: balance version");
        Account {
            balance: balance.parse().expect("a balance"),
            version: version.parse().expect("a version"),
        }
    }
}

/// What a receipt records: the transfer and what it read of both accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Receipt {
    from: usize,
    to: usize,
    amount: i64,
    from_before: Account,
    to_before: Account,
}

impl Receipt {
    fn encode(&self) -> String {
        format!(
            "{} {} {} {} {} {} {}",
            self.from,
            self.to,
            self.amount,
            self.from_before.balance,
            self.from_before.version,
            self.to_before.balance,
            self.to_before.version
        )
    }

    fn decode(text: &[u8]) -> Receipt {
        let text = std::str::from_utf8(text).expect("a receipt is text");
        let fields: Vec<i64> = text
            .split(' ')
            .map(|f| f.parse().expect("a receipt field"))
            .collect();
        assert_eq!(fields.len(), 7, "a receipt has 7 fields: {text:?}");
        let account = |balance: i64, version: i64| Account {
            balance,
            version: version as u64,
        };
        Receipt {
            from: fields[0] as usize,
            to: fields[1] as usize,
            amount: fields[2],
            from_before: account(fields[3], fields[4]),
            to_before: account(fields[5], fields[6]),
        }
    }
}

fn options(buffer: usize) -> Options {
    Options::default().write_buffer_size(buffer).block_size(256)
}

fn banks(db: &Db) -> [Keyspace; 2] {
    BANKS.map(|name| db.keyspace(name).expect("open a bank keyspace"))
}

fn read_account(tx: &mut Transaction, banks: &[Keyspace; 2], account: usize) -> Account {
    let value = tx
        .get(&banks[account % 2], account_key(account))
        .expect("read an account")
        .unwrap_or_else(|| panic!("account {account} is missing"));
    Account::decode(&value)
}

/// Runs transfer `n` of `thread` until it commits; returns how many conflicts it met.
fn run_transfer(db: &Db, banks: &[Keyspace; 2], seed: u64, thread: usize, n: usize) -> u64 {
    let t = transfer(seed, thread, n);
    let receipts = db.default_keyspace();
    let mut conflicts = 0;
    loop {
        let mut tx = db.transaction();
        let from_before = read_account(&mut tx, banks, t.from);
        let to_before = read_account(&mut tx, banks, t.to);
        let receipt = Receipt {
            from: t.from,
            to: t.to,
            amount: t.amount,
            from_before,
            to_before,
        };
        let after = |before: Account, delta: i64| Account {
            balance: before.balance + delta,
            version: before.version + 1,
        };
        tx.put(
            &banks[t.from % 2],
            account_key(t.from),
            after(from_before, -t.amount).encode(),
        );
        tx.put(
            &banks[t.to % 2],
            account_key(t.to),
            after(to_before, t.amount).encode(),
        );
        tx.put(&receipts, receipt_key(thread, n), receipt.encode());
        let result = if t.sync {
            tx.commit_with(&WriteOptions::default().sync(true))
        } else {
            tx.commit()
        };
        match result {
            Ok(()) => return conflicts,
            Err(Error::Conflict { .. }) => conflicts += 1,
            Err(err) => panic!("child: thread {thread} transfer {n}: {err}"),
        }
    }
}

/// Sums every account as one transaction sees them, by scanning both keyspaces.
fn audit(db: &Db, banks: &[Keyspace; 2]) -> (i64, usize) {
    let mut tx = db.transaction();
    let mut total = 0;
    let mut accounts = 0;
    for bank in banks {
        for kv in tx.prefix(bank, "acct") {
            let (_, value) = kv.expect("child: audit scan");
            total += Account::decode(&value).balance;
            accounts += 1;
        }
    }
    // A transaction that wrote nothing always commits.
    tx.commit().expect("child: a read-only audit commits");
    (total, accounts)
}

/// The child half: it runs only when the parent re-executes this binary with
/// `FLOE_TXN_CRASH_CHILD_DIR` set; in a normal run it has nothing to do.
#[test]
fn transactions_crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let seed: u64 = env_required(CHILD_SEED);
    let buffer: usize = env_required(CHILD_BUFFER);
    let starts = kill_harness::child_starts(CHILD_START);
    assert_eq!(starts.len(), THREADS);
    // A failure on any thread ends the child at once, so that the parent sees it end on
    // its own (instead of killing threads that keep going without the failed one).
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
    // The test harness has already printed "test ... " without a newline.
    say("");
    say("opening");
    let db = Db::open_with(&dir, options(buffer)).expect("child: open");
    let banks = banks(&db);
    say("opened");
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let (total, accounts) = audit(&db, &banks);
                assert_eq!(accounts, ACCOUNTS, "child: accounts an audit saw");
                assert_eq!(total, OPENING * ACCOUNTS as i64, "child: an audit's total");
                thread::sleep(Duration::from_millis(1));
            }
        });
        let workers: Vec<_> = starts
            .iter()
            .enumerate()
            .map(|(thread, &start)| {
                let (db, banks) = (&db, &banks);
                scope.spawn(move || {
                    for n in start..start + CHILD_TRANSFERS {
                        let conflicts = run_transfer(db, banks, seed, thread, n);
                        say(&format!("ack {thread} {n} {conflicts}"));
                        // Flushes now and then, racing the other threads' transactions, so
                        // that validation meets writes that left the memtables.
                        if n % 53 == 52 {
                            db.flush().expect("child: flush");
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    db.close().expect("child: close");
    say("done");
}

/// What the parent learned from a child's stdout.
#[derive(Debug, Default)]
struct Acks {
    /// The last transfer each thread acknowledged.
    last: Vec<Option<usize>>,
    synced: usize,
    unsynced: usize,
    conflicts: u64,
}

impl Acks {
    /// No acknowledgement yet from any of the threads.
    fn new() -> Acks {
        Acks {
            last: vec![None; THREADS],
            ..Acks::default()
        }
    }

    /// Records an ack line (`<thread> <n> <conflicts>`) of transfers under `seed`.
    fn record(&mut self, seed: u64, rest: &str) {
        let parts: Vec<usize> = rest
            .split(' ')
            .map(|p| p.parse().expect("an ack line"))
            .collect();
        let (thread, n) = (parts[0], parts[1]);
        assert!(
            self.last[thread].is_none_or(|last| n == last + 1),
            "thread {thread} acknowledged {n} after {:?}",
            self.last[thread]
        );
        self.last[thread] = Some(n);
        self.conflicts += parts[2] as u64;
        if transfer(seed, thread, n).sync {
            self.synced += 1;
        } else {
            self.unsynced += 1;
        }
    }
}

fn spawn_child(dir: &Path, seed: u64, starts: &[usize], buffer: usize) -> Child {
    kill_harness::spawn_child(
        "transactions_crash_child",
        &[
            (CHILD_DIR, dir.as_os_str()),
            (CHILD_SEED, OsStr::new(&seed.to_string())),
            (CHILD_START, OsStr::new(&kill_harness::join_starts(starts))),
            (CHILD_BUFFER, OsStr::new(&buffer.to_string())),
        ],
    )
}

/// Opens a fresh bank: every account at the opening balance, version 0.
fn create_bank(dir: &Path) {
    let db = Db::open_with(dir, options(4096)).unwrap();
    let banks = banks(&db);
    let mut tx = db.transaction();
    for account in 0..ACCOUNTS {
        let opening = Account {
            balance: OPENING,
            version: 0,
        };
        tx.put(&banks[account % 2], account_key(account), opening.encode());
    }
    tx.commit_with(&WriteOptions::default().sync(true)).unwrap();
    db.close().unwrap();
}

/// Checks the reopened bank against the acknowledgements; returns each thread's count of
/// present receipts (where its next child continues).
fn check_bank(db: &Db, seed: u64, before: &[usize], acks: &Acks, what: &str) -> Vec<usize> {
    let banks = banks(db);
    // The receipts, by thread, in transfer order.
    let mut receipts: Vec<Vec<Receipt>> = vec![Vec::new(); THREADS];
    for kv in db.prefix("receipt/") {
        let (key, value) = kv.unwrap_or_else(|e| panic!("{what}: scanning receipts: {e}"));
        let key = std::str::from_utf8(&key).unwrap().to_owned();
        let mut parts = key.split('/').skip(1);
        let thread: usize = parts.next().unwrap().parse().unwrap();
        let n: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(
            n,
            receipts[thread].len(),
            "{what}: thread {thread}'s receipts are not a prefix of its transfers: {key} \
             after {} receipts",
            receipts[thread].len()
        );
        let receipt = Receipt::decode(&value);
        let t = transfer(seed, thread, n);
        assert_eq!(
            (receipt.from, receipt.to, receipt.amount),
            (t.from, t.to, t.amount),
            "{what}: {key} is not the transfer it names"
        );
        receipts[thread].push(receipt);
    }
    let present: Vec<usize> = receipts.iter().map(Vec::len).collect();
    for thread in 0..THREADS {
        let acked_end = acks.last[thread].map_or(before[thread], |n| n + 1);
        assert!(
            acked_end >= before[thread],
            "{what}: thread {thread} acknowledged {:?}, before its start {}",
            acks.last[thread],
            before[thread]
        );
        assert!(
            present[thread] >= acked_end,
            "{what}: thread {thread} acknowledged transfers up to {:?} (sync: {}), but only \
             {} receipts survived the kill",
            acks.last[thread],
            acks.last[thread].is_some_and(|n| transfer(seed, thread, n).sync),
            present[thread]
        );
        assert!(
            present[thread] <= acked_end + 1,
            "{what}: thread {thread} has {} receipts, but acknowledged only up to {:?}: \
             more than the one in flight",
            present[thread],
            acks.last[thread]
        );
        // The point reads agree with the scan.
        for n in [acked_end.checked_sub(1), Some(present[thread])]
            .into_iter()
            .flatten()
        {
            let got = db.get(receipt_key(thread, n)).unwrap();
            assert_eq!(
                got.is_some(),
                n < present[thread],
                "{what}: get of {}",
                receipt_key(thread, n)
            );
        }
    }

    // The stored accounts, read by scan and by point reads.
    let mut stored = BTreeMap::new();
    for (parity, bank) in banks.iter().enumerate() {
        for kv in bank.iter() {
            let (key, value) = kv.unwrap_or_else(|e| panic!("{what}: scanning a bank: {e}"));
            let key = std::str::from_utf8(&key).unwrap();
            let account: usize = key.strip_prefix("acct").unwrap().parse().unwrap();
            assert_eq!(account % 2, parity, "{what}: {key} in the wrong keyspace");
            stored.insert(account, Account::decode(&value));
        }
    }
    assert_eq!(stored.len(), ACCOUNTS, "{what}: accounts after the kill");
    for (&account, &value) in &stored {
        let got = banks[account % 2].get(account_key(account)).unwrap();
        assert_eq!(
            got.map(|v| Account::decode(&v)),
            Some(value),
            "{what}: get of account {account}"
        );
    }
    let total: i64 = stored.values().map(|a| a.balance).sum();
    assert_eq!(
        total,
        OPENING * ACCOUNTS as i64,
        "{what}: the total over all accounts"
    );

    // Each account's receipts, by the version they read: (version, balance read, delta).
    let mut history: Vec<Vec<(u64, i64, i64, String)>> = vec![Vec::new(); ACCOUNTS];
    for (thread, list) in receipts.iter().enumerate() {
        for (n, r) in list.iter().enumerate() {
            let name = receipt_key(thread, n);
            history[r.from].push((
                r.from_before.version,
                r.from_before.balance,
                -r.amount,
                name.clone(),
            ));
            history[r.to].push((r.to_before.version, r.to_before.balance, r.amount, name));
        }
    }
    for (account, mut steps) in history.into_iter().enumerate() {
        steps.sort();
        let mut running = Account {
            balance: OPENING,
            version: 0,
        };
        for (version, balance, delta, name) in steps {
            assert_eq!(
                (version, balance),
                (running.version, running.balance),
                "{what}: account {account}: {name} read version {version} balance {balance}, \
                 but the receipts before it leave version {} balance {} (a lost update, or a \
                 receipt without its balances)",
                running.version,
                running.balance
            );
            running = Account {
                balance: balance + delta,
                version: version + 1,
            };
        }
        assert_eq!(
            stored[&account], running,
            "{what}: account {account} is not what its receipts leave (balances without \
             their receipt)"
        );
    }
    present
}

#[test]
fn kill_9_keeps_every_acknowledged_transfer_whole() {
    let seed = floe_testkit::seed("kill_9_keeps_every_acknowledged_transfer_whole");
    let cycles = floe_testkit::env_usize("FLOE_TXN_CRASH_CYCLES", 20);
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    create_bank(dir.path());
    let mut next = vec![0usize; THREADS];
    let (mut synced, mut unsynced, mut conflicts, mut kills_during_open) = (0, 0, 0, 0);

    for cycle in 0..cycles {
        let buffer = [2048, 8192, 65536][rng.random_range(0..3)];
        let kill_at = KillAt::pick(&mut rng, 5, 1..400, 0..3000);
        let in_place = rng.random_bool(0.25);
        let what = format!(
            "seed {seed} cycle {cycle} (threads start at {next:?}, buffer {buffer}, kill \
             {kill_at:?}, checked in place {in_place})"
        );
        let child = spawn_child(dir.path(), seed, &next, buffer);
        let killed = kill_harness::kill_at(child, kill_at, Acks::new(), move |acks, rest| {
            acks.record(seed, rest)
        });
        killed.assert_killed(&what);
        let acks = &killed.acks;
        if !killed.opened && acks.last.iter().all(Option::is_none) {
            kills_during_open += 1;
        }
        synced += acks.synced;
        unsynced += acks.unsynced;
        conflicts += acks.conflicts;

        // Usually the check runs on a copy, so that the next child recovers from exactly
        // what the kill left; sometimes in place, so that it opens a recovered directory.
        let scratch = tempfile::tempdir().unwrap();
        let check_dir = kill_harness::check_dir(dir.path(), in_place, scratch.path());
        let db = Db::open_with(check_dir, options(buffer))
            .unwrap_or_else(|e| panic!("{what}: reopen after the kill: {e}"));
        next = check_bank(&db, seed, &next, acks, &what);
        db.close().unwrap_or_else(|e| panic!("{what}: close: {e}"));
    }
    println!(
        "seed {seed}: {cycles} cycles, receipts per thread {next:?}, {synced} synced and \
         {unsynced} unsynced commits acknowledged, {conflicts} conflicts retried, \
         {kills_during_open} kills before the database opened"
    );
    assert!(
        next.iter().sum::<usize>() > 0,
        "no transfer committed in {cycles} cycles"
    );
}
