//! What every command shares: the global options, opening the database they name (with
//! the checks that turn a mistyped directory into an error rather than a new database),
//! finding a keyspace, and the output.

use std::io::{self, BufWriter, StdoutLock, Write};
use std::path::{Path, PathBuf};

use floe::{Db, Keyspace};
use serde::Serialize;

use crate::args::Cli;
use crate::encoding::Encoding;
use crate::failure::{Failure, Outcome};

/// The global options of one run, and its output.
pub(crate) struct Context {
    db: Option<PathBuf>,
    /// The notation of keys and values.
    pub(crate) encoding: Encoding,
    /// Whether to print JSON.
    pub(crate) json: bool,
    read_only: bool,
    create: bool,
    /// Standard output, buffered.
    pub(crate) out: BufWriter<StdoutLock<'static>>,
}

impl Context {
    pub(crate) fn new(cli: &Cli) -> Context {
        let encoding = if cli.hex {
            Encoding::Hex
        } else if cli.base64 {
            Encoding::Base64
        } else {
            Encoding::Text
        };
        Context {
            db: cli.db.clone(),
            encoding,
            json: cli.json,
            read_only: cli.read_only,
            create: cli.create,
            out: BufWriter::new(io::stdout().lock()),
        }
    }

    /// The database directory, which must exist and hold a database (unless `--create`).
    pub(crate) fn dir(&self) -> Outcome<&Path> {
        let Some(dir) = self.db.as_deref() else {
            return Err(Failure::Usage(
                "no database directory: pass --db DIR or set FLOE_DB".to_owned(),
            ));
        };
        if self.create {
            return Ok(dir);
        }
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(Failure::Usage(format!(
                    "{} is not a directory",
                    dir.display()
                )));
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(Failure::Usage(format!(
                    "the database directory {} does not exist (pass --create to create one)",
                    dir.display()
                )));
            }
            Err(err) => {
                return Err(Failure::Usage(format!(
                    "cannot read {}: {err}",
                    dir.display()
                )));
            }
        }
        if !dir.join("CURRENT").exists() {
            return Err(Failure::Usage(format!(
                "{} holds no floe database (it has no CURRENT file; pass --create to create one)",
                dir.display()
            )));
        }
        Ok(dir)
    }

    /// Opens the database: read-only with `--read-only`, else for writing (which takes its
    /// lock and recovers its log, as any open does).
    pub(crate) fn open(&self) -> Outcome<Db> {
        let dir = self.dir()?;
        let db = if self.read_only {
            Db::open_read_only(dir)?
        } else {
            Db::open(dir)?
        };
        Ok(db)
    }

    /// The keyspace `name` of `db`, which must exist (unless `--create`).
    pub(crate) fn keyspace(&self, db: &Db, name: &str) -> Outcome<Keyspace> {
        let names = db.keyspace_names();
        if !self.create && !names.iter().any(|known| known == name) {
            return Err(Failure::Usage(format!(
                "no keyspace {name:?} (the database has {}; pass --create to create it)",
                names.join(", ")
            )));
        }
        Ok(db.keyspace(name)?)
    }

    /// `bytes` in the chosen notation.
    pub(crate) fn show(&self, bytes: &[u8]) -> String {
        self.encoding.render(bytes)
    }

    /// The bytes of the argument `text`, named `what` in the error.
    pub(crate) fn parse(&self, text: &str, what: &str) -> Outcome<Vec<u8>> {
        self.encoding.parse(text, what).map_err(Failure::Usage)
    }

    /// Prints `value` as one JSON document.
    pub(crate) fn print_json(&mut self, value: &impl Serialize) -> Outcome {
        serde_json::to_writer_pretty(&mut self.out, value)?;
        writeln!(self.out)?;
        Ok(())
    }
}

/// `bytes` as a human size: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Closes `db`, releasing its directory and reporting a failure of the final sync.
pub(crate) fn close(db: Db) -> Outcome {
    db.close()?;
    Ok(())
}
