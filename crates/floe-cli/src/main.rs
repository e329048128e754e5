//! `floe`, the command-line tool of the floe storage engine: reads and writes keys, prints
//! statistics, verifies every file of a database, and dumps tables, log segments and the
//! manifest.
//!
//! Each command is a function of one module (`data.rs`, `admin.rs`, `verify.rs`,
//! `dump.rs`) over a [`context::Context`] holding the global options and the output; a
//! failure comes back as a [`failure::Failure`], printed as one line on stderr.

mod admin;
mod args;
mod context;
mod data;
mod dump;
mod encoding;
mod failure;
mod verify;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::context::Context;
use crate::failure::Outcome;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with status 0; a usage error is status 1, as
            // every other error (2 means damaged data).
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let mut ctx = Context::new(&cli);
    let outcome = run(&mut ctx, cli.command).and_then(|()| Ok(ctx.out.flush()?));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if failure.is_broken_pipe() => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = ctx.out.flush();
            if !failure.is_silent() {
                eprintln!("floe: error: {failure}");
            }
            failure.exit_code()
        }
    }
}

/// Runs one command.
fn run(ctx: &mut Context, command: Command) -> Outcome {
    match command {
        Command::Get { key, keyspace } => data::get(ctx, &key, &keyspace.keyspace),
        Command::Put {
            key,
            value,
            keyspace,
        } => data::put(ctx, &key, &value, &keyspace.keyspace),
        Command::Delete { key, keyspace } => data::delete(ctx, &key, &keyspace.keyspace),
        Command::DeleteRange { from, to, keyspace } => {
            data::delete_range(ctx, &from, &to, &keyspace.keyspace)
        }
        Command::Scan(args) => data::scan(ctx, &args),
        Command::Stats => admin::stats(ctx),
        Command::Verify { threads } => verify::verify(ctx, threads),
        Command::DumpTable { file, limit } => dump::dump_table(ctx, &file, limit),
        Command::DumpLog { file } => dump::dump_log(ctx, &file),
        Command::Manifest => dump::manifest(ctx),
        Command::Compact => admin::compact(ctx),
        Command::Flush => admin::flush(ctx),
        Command::Checkpoint { dir } => admin::checkpoint(ctx, &dir),
        Command::Keyspaces => admin::keyspaces(ctx),
    }
}
