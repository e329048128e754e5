//! Child processes: the test binary re-executes itself to run one role (named by an
//! environment variable) in a process of its own, so that a signal such as `SIGBUS`
//! kills the child, where the parent sees it, instead of the test runner.
//!
//! The child reports what happened as lines on stdout that start with [`MARK`] (the test
//! harness prints its own lines there too); the parent may answer on the child's stdin.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The environment variable that names the role a child runs.
pub(crate) const ROLE: &str = "FLOE_REAL_DISK_ROLE";

/// The start of every line of the child's report.
const MARK: &str = "floe-real-disk: ";

/// How long the parent waits for a line or for the child's end before it calls the child
/// hung. Not a timed assertion about speed: it only turns a hang into a failure.
pub(crate) const PATIENCE: Duration = Duration::from_secs(120);

/// The child side: reports `line` to the parent, whole and at once.
pub(crate) fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{MARK}{line}").expect("child: stdout");
    out.flush().expect("child: stdout");
}

/// A running child; dropping it kills the child (`SIGKILL`) and reaps it, so a failing
/// test leaves no process behind holding a mount busy.
#[derive(Debug)]
pub(crate) struct Child {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    /// Every report line received so far, in order.
    seen: Vec<String>,
}

/// How a child ended and everything it reported.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) lines: Vec<String>,
    pub(crate) stderr: String,
}

impl Finished {
    /// The signal that killed the child, if one did.
    pub(crate) fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// The report and the child's stderr, for failure messages.
    pub(crate) fn transcript(&self) -> String {
        format!(
            "the child ended with {}; it reported:\n  {}\nits stderr:\n{}",
            self.status,
            self.lines.join("\n  "),
            self.stderr
        )
    }

    /// The lines of the report that start with `prefix`, without it.
    pub(crate) fn lines_starting<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> {
        self.lines
            .iter()
            .filter_map(move |l| l.strip_prefix(prefix))
    }
}

/// Starts this test binary again, running only the test `entry`, in the role `role`
/// with the environment `vars`, in the working directory `cwd` (where a core dump would
/// land).
pub(crate) fn spawn(entry: &str, role: &str, cwd: &Path, vars: &[(&str, String)]) -> Child {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args(["--exact", entry, "--nocapture", "--test-threads=1"])
        .current_dir(cwd)
        .env(ROLE, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in vars {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("re-execute the test binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The harness prints "test <name> ... " with no newline before the child's
            // first line, so a mark can sit in the middle of a line.
            if let Some(at) = line.find(MARK)
                && tx.send(line[at + MARK.len()..].to_owned()).is_err()
            {
                break;
            }
        }
    });
    let stderr = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    Child {
        stdin: child.stdin.take(),
        child,
        lines,
        stderr: Some(stderr),
        seen: Vec::new(),
    }
}

impl Child {
    /// The next report line, or `None` once the child has closed its stdout (it ended).
    pub(crate) fn next_line(&mut self) -> Option<String> {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(line) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!(
                    "the child reported nothing for {PATIENCE:?}: {:?}",
                    self.seen
                )
            }
        }
    }

    /// Reads report lines until one satisfies `wanted` and returns it; `None` if the child
    /// ended first.
    pub(crate) fn wait_for(&mut self, mut wanted: impl FnMut(&str) -> bool) -> Option<String> {
        while let Some(line) = self.next_line() {
            if wanted(&line) {
                return Some(line);
            }
        }
        None
    }

    /// Sends `line` to the child's stdin. A child that already ended is not an error
    /// here: how it ended is what the caller checks next.
    pub(crate) fn tell(&mut self, line: &str) {
        if let Some(stdin) = &mut self.stdin {
            let _ = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
        }
    }

    /// Waits for the child to end (closing its stdin first) and collects its report.
    pub(crate) fn finish(mut self) -> Finished {
        self.stdin = None;
        while self.next_line().is_some() {}
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the child") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the child did not exit in {PATIENCE:?} after closing its stdout: {:?}",
                self.seen
            );
            thread::sleep(Duration::from_millis(10));
        };
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        Finished {
            status,
            lines: std::mem::take(&mut self.seen),
            stderr,
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Harmless when the child has already been reaped by `finish`.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
