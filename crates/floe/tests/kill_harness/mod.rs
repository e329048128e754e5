//! The child-process plumbing shared by the `kill -9` harnesses (`crash.rs`,
//! `crash_keyspaces.rs` and `transactions_crash.rs`): re-executing the test binary as a
//! child, reading the `opening`, `opened` and `ack ...` lines it prints, killing it with
//! SIGKILL at a chosen moment, and copying what the kill left so it can be checked.
//!
//! What a harness's child does, what its `ack` lines carry and what the parent checks
//! after a kill stay in the harness. Only the three harnesses declare
//! `pub mod kill_harness;`.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::ops::Range;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rand::Rng;

/// Re-executes this test binary to run only the test `test`, with `envs` set: the child
/// half of a harness, which does nothing unless its variables are there. Its stdout and
/// stderr are piped to the parent.
pub fn spawn_child(test: &str, envs: &[(&str, &OsStr)]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("re-execute the test binary")
}

/// Prints `line` to the child's stdout whole, under the stdout lock, and flushes it at
/// once: what the parent reads must be what the child did.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// `starts` (one start position a writer) as one value of an environment variable, for
/// [`child_starts`] to read back.
pub fn join_starts(starts: &[usize]) -> String {
    let starts: Vec<String> = starts.iter().map(usize::to_string).collect();
    starts.join(",")
}

/// The start positions the parent put in the environment variable `var` with
/// [`join_starts`].
pub fn child_starts(var: &str) -> Vec<usize> {
    std::env::var(var)
        .expect("child: start positions")
        .split(',')
        .map(|s| s.parse().expect("child: a start position"))
        .collect()
}

/// What the child's stdout said, in order.
pub enum Event {
    /// The child is about to open the database.
    Opening,
    /// The child has opened the database.
    Opened,
    /// The child acknowledged an operation (what it said is in the reader's result).
    Ack,
}

/// Reads the child's stdout to its end, forwarding events. The text after `ack ` on each
/// ack line goes to `on_ack` with `acks`, which is returned at the end.
pub fn read_events<A>(
    stdout: impl Read,
    mut acks: A,
    mut on_ack: impl FnMut(&mut A, &str),
    events: mpsc::Sender<Event>,
) -> A {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let event = if line == "opening" {
            Event::Opening
        } else if line == "opened" {
            Event::Opened
        } else if let Some(rest) = line.strip_prefix("ack ") {
            on_ack(&mut acks, rest);
            Event::Ack
        } else {
            continue;
        };
        // The parent may stop listening once it has decided when to kill.
        let _ = events.send(event);
    }
    acks
}

/// How the parent picks the moment of a kill.
#[derive(Debug, Clone, Copy)]
pub enum KillAt {
    /// This many microseconds after the child says it is opening the database.
    DuringOpen(u64),
    /// Once this many operations are acknowledged, plus this many microseconds.
    AfterAcks(usize, u64),
}

impl KillAt {
    /// One kill in `one_in` lands up to 3 ms after the child starts opening the database;
    /// the others after a number of acknowledgements drawn from `acks`, plus microseconds
    /// drawn from `micros`. The draws come from `rng` in that order.
    pub fn pick(rng: &mut impl Rng, one_in: i32, acks: Range<usize>, micros: Range<u64>) -> KillAt {
        if rng.random_range(0..one_in) == 0 {
            KillAt::DuringOpen(rng.random_range(0..3000))
        } else {
            KillAt::AfterAcks(rng.random_range(acks), rng.random_range(micros))
        }
    }
}

/// How long the parent waits for the moment it is looking for before it calls the child
/// hung. This is not a timed assertion about speed: it only turns a hang into a failure.
const PATIENCE: Duration = Duration::from_secs(120);

/// Feeds events to `done` until it says yes (true) or the child's stdout ends (false).
fn wait_for(events: &mpsc::Receiver<Event>, mut done: impl FnMut(&Event) -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) => {
                if done(&event) {
                    return true;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("the child did not reach the kill point in {PATIENCE:?}")
            }
        }
    }
}

/// What [`kill_at`] saw of a child it killed.
pub struct Killed<A> {
    /// How the child ended.
    pub status: ExitStatus,
    /// What the caller's ack parser collected from the child's stdout.
    pub acks: A,
    /// Everything the child wrote to stderr.
    pub stderr: String,
    /// Whether the child said `opened` or acknowledged anything before it died.
    pub opened: bool,
    /// Whether the child was still talking when the kill moment came.
    reached: bool,
}

impl<A> Killed<A> {
    /// Panics (with `what` and the child's stderr) unless the kill is what ended the
    /// child: it reached the moment of the kill and died of SIGKILL.
    pub fn assert_killed(&self, what: &str) {
        let Killed { status, stderr, .. } = self;
        if !self.reached || status.success() || !was_killed(status) {
            panic!(
                "{what}: the child ended on its own ({status}) instead of being killed:\n{stderr}"
            );
        }
    }
}

/// Reads `child`'s stdout (ack lines through `on_ack` into `acks`, as [`read_events`]
/// does) and drains its stderr on two threads, waits for the moment `at`, kills the child
/// with SIGKILL and waits for it to end.
pub fn kill_at<A: Send + 'static>(
    mut child: Child,
    at: KillAt,
    acks: A,
    on_ack: impl FnMut(&mut A, &str) + Send + 'static,
) -> Killed<A> {
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, events) = mpsc::channel();
    let reader = thread::spawn(move || read_events(stdout, acks, on_ack, tx));
    let errors = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut opened = false;
    let reached = match at {
        KillAt::DuringOpen(micros) => {
            let reached = wait_for(&events, |e| matches!(e, Event::Opening));
            thread::sleep(Duration::from_micros(micros));
            reached
        }
        KillAt::AfterAcks(wanted, micros) => {
            let mut seen = 0;
            let reached = wait_for(&events, |e| match e {
                Event::Opened => {
                    opened = true;
                    false
                }
                Event::Ack => {
                    seen += 1;
                    seen >= wanted
                }
                Event::Opening => false,
            });
            thread::sleep(Duration::from_micros(micros));
            reached
        }
    };
    // `Child::kill` sends SIGKILL on Unix: the child gets no chance to clean up.
    let _ = child.kill();
    let status = child.wait().unwrap();
    let acks = reader.join().expect("the stdout reader panicked");
    let stderr = errors.join().unwrap();
    for event in events.try_iter() {
        if matches!(event, Event::Opened | Event::Ack) {
            opened = true;
        }
    }
    Killed {
        status,
        acks,
        stderr,
        opened,
        reached,
    }
}

/// Whether `status` is that of a process ended by SIGKILL (on other systems, of one that
/// failed).
#[cfg(unix)]
pub fn was_killed(status: &ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(9)
}

/// Whether `status` is that of a process ended by SIGKILL (on other systems, of one that
/// failed).
#[cfg(not(unix))]
pub fn was_killed(status: &ExitStatus) -> bool {
    !status.success()
}

/// Copies the files of `from` into the existing directory `to`, subdirectories included.
pub fn copy_files(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            std::fs::create_dir(&target).unwrap();
            copy_files(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The directory a cycle checks after a kill: `dir` itself when `in_place`, otherwise a
/// copy of it in `scratch`.
pub fn check_dir<'a>(dir: &'a Path, in_place: bool, scratch: &'a Path) -> &'a Path {
    if in_place {
        dir
    } else {
        copy_files(dir, scratch);
        scratch
    }
}
