//! Why a command failed, as one line for stderr and an exit status: 1 for an error, 2 for
//! damaged data.

use std::fmt;
use std::io;
use std::process::ExitCode;

/// A command's failure.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The database reported an error.
    Db(floe::Error),
    /// Something the user can fix: a bad argument, a missing directory or keyspace.
    Usage(String),
    /// Writing the output failed.
    Output(io::Error),
    /// A check found damage, already reported; only the exit status is left to give.
    Damaged,
    /// `get` found no value; only the exit status is left to give.
    NotFound,
}

/// The result of a command.
pub(crate) type Outcome<T = ()> = Result<T, Failure>;

impl Failure {
    /// The exit status: 2 for damaged data, 1 for everything else.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Damaged | Failure::Db(floe::Error::Corruption { .. }) => ExitCode::from(2),
            _ => ExitCode::from(1),
        }
    }

    /// Whether the failure is a closed pipe on stdout (`floe scan | head`), which ends the
    /// command quietly.
    pub(crate) fn is_broken_pipe(&self) -> bool {
        matches!(self, Failure::Output(err) if err.kind() == io::ErrorKind::BrokenPipe)
    }

    /// Whether the failure has already been reported.
    pub(crate) fn is_silent(&self) -> bool {
        matches!(self, Failure::Damaged | Failure::NotFound)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Failure::Db(floe::Error::Locked { path }) => format!(
                "the database is open in another process (its lock {path} is held); \
                 pass --read-only to read it meanwhile"
            ),
            Failure::Db(err) => err.to_string(),
            Failure::Usage(message) => message.clone(),
            Failure::Output(err) => format!("writing the output: {err}"),
            Failure::Damaged => "damaged data found".to_owned(),
            Failure::NotFound => "not found".to_owned(),
        };
        // One line, whatever the message holds.
        f.write_str(&text.replace(['\n', '\r'], " "))
    }
}

impl From<floe::Error> for Failure {
    fn from(err: floe::Error) -> Failure {
        Failure::Db(err)
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Failure {
        Failure::Output(err)
    }
}

impl From<serde_json::Error> for Failure {
    fn from(err: serde_json::Error) -> Failure {
        Failure::Output(io::Error::from(err))
    }
}
