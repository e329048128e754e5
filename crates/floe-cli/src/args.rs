//! The command line: the global options and every command with its arguments, as clap
//! derives them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Reads, writes, inspects and verifies a floe database.
///
/// Keys and values are given and shown as UTF-8 text, with the escapes \\ \n \r \t and
/// \xNN for any other byte that is not printable; --hex and --base64 switch both the
/// parsing of the arguments and the output. Exit status: 0 on success, 1 on an error,
/// 2 when damaged data is found.
#[derive(Debug, Parser)]
#[command(name = "floe", version, max_term_width = 100)]
pub(crate) struct Cli {
    /// The database directory.
    #[arg(long, global = true, env = "FLOE_DB", value_name = "DIR")]
    pub(crate) db: Option<PathBuf>,
    /// Keys and values are hexadecimal (input and output).
    #[arg(long, global = true, conflicts_with = "base64")]
    pub(crate) hex: bool,
    /// Keys and values are base64, standard alphabet with padding (input and output).
    #[arg(long, global = true)]
    pub(crate) base64: bool,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Open the database read-only: change no file, take no lock (works while another
    /// process has it open).
    #[arg(long, global = true)]
    pub(crate) read_only: bool,
    /// Create the database directory, or the keyspace, if it does not exist.
    #[arg(long, global = true, conflicts_with = "read_only")]
    pub(crate) create: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the value of KEY.
    Get {
        /// The key.
        key: String,
        #[command(flatten)]
        keyspace: KeyspaceArg,
    },
    /// Set KEY to VALUE.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        #[command(flatten)]
        keyspace: KeyspaceArg,
    },
    /// Delete KEY.
    Delete {
        /// The key.
        key: String,
        #[command(flatten)]
        keyspace: KeyspaceArg,
    },
    /// Delete every key from FROM (included) to TO (excluded).
    DeleteRange {
        /// The first key deleted.
        from: String,
        /// The first key past the range, which is kept.
        to: String,
        #[command(flatten)]
        keyspace: KeyspaceArg,
    },
    /// Print keys and values in key order, one pair per line, tab-separated.
    Scan(ScanArgs),
    /// Print the levels, tables, sizes, amplification and memory of the database.
    Stats,
    /// Check every table block, log record and manifest record; exit 2 on damage.
    Verify {
        /// Check files on this many threads (default: one per core).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
    },
    /// Print the properties, range tombstones and entries of a table file.
    DumpTable {
        /// The table file (000123.sst).
        file: PathBuf,
        /// Print at most N entries.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Print the records of a log segment with their offsets and writes.
    DumpLog {
        /// The log segment (000123.log).
        file: PathBuf,
    },
    /// Print the version edits of the live manifest.
    Manifest,
    /// Merge every table into the last level, waiting until it is done.
    Compact,
    /// Write every memtable to a table.
    Flush,
    /// Write an openable copy of the database into DIR, which must not exist.
    Checkpoint {
        /// The directory to create.
        dir: PathBuf,
    },
    /// List the keyspaces.
    Keyspaces,
}

/// The keyspace a data command acts on.
#[derive(Debug, Args)]
pub(crate) struct KeyspaceArg {
    /// The keyspace.
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub(crate) keyspace: String,
}

/// What `scan` prints.
#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// Only keys that start with P.
    #[arg(long, value_name = "P")]
    pub(crate) prefix: Option<String>,
    /// Only keys at or after A.
    #[arg(long, value_name = "A")]
    pub(crate) from: Option<String>,
    /// Only keys before B.
    #[arg(long, value_name = "B")]
    pub(crate) to: Option<String>,
    /// In descending key order.
    #[arg(long)]
    pub(crate) reverse: bool,
    /// At most N pairs.
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,
    #[command(flatten)]
    pub(crate) keyspace: KeyspaceArg,
}
