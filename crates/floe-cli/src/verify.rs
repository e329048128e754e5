//! `verify`: checks every file of the database read-only, with a progress bar on a
//! terminal, and reports each damage by file and offset.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use floe_engine::inspect::{Damage, FileCheck, FileType, TornTail, Verifier, VerifyReport};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::context::{Context, human_bytes};
use crate::failure::{Failure, Outcome};

/// One damage in `verify --json`.
#[derive(Serialize)]
struct DamageJson<'a> {
    file: &'a str,
    offset: u64,
    message: &'a str,
}

impl<'a> From<&'a Damage> for DamageJson<'a> {
    fn from(damage: &'a Damage) -> DamageJson<'a> {
        DamageJson {
            file: &damage.file,
            offset: damage.offset,
            message: &damage.message,
        }
    }
}

/// A torn tail in JSON.
#[derive(Serialize)]
pub(crate) struct TornTailJson<'a> {
    offset: u64,
    reason: &'a str,
}

impl<'a> TornTailJson<'a> {
    pub(crate) fn new(tail: Option<&'a TornTail>) -> Option<TornTailJson<'a>> {
        tail.map(|tail| TornTailJson {
            offset: tail.offset,
            reason: &tail.reason,
        })
    }
}

/// One file in `verify --json`.
#[derive(Serialize)]
struct FileJson<'a> {
    file: &'a str,
    kind: &'static str,
    bytes: u64,
    /// Data blocks of a table, records of a log or manifest.
    units: u64,
    entries: u64,
    torn_tail: Option<TornTailJson<'a>>,
    skipped: Option<&'a str>,
    damages: Vec<DamageJson<'a>>,
}

impl<'a> FileJson<'a> {
    fn new(check: &'a FileCheck) -> FileJson<'a> {
        FileJson {
            file: &check.file,
            kind: kind_name(check.kind),
            bytes: check.len,
            units: check.units,
            entries: check.entries,
            torn_tail: TornTailJson::new(check.torn_tail.as_ref()),
            skipped: check.skipped.as_deref(),
            damages: check.damages.iter().map(DamageJson::from).collect(),
        }
    }
}

/// What `verify --json` prints.
#[derive(Serialize)]
struct ReportJson<'a> {
    clean: bool,
    bytes: u64,
    seconds: f64,
    mb_per_second: f64,
    files: Vec<FileJson<'a>>,
    database: Vec<DamageJson<'a>>,
    obsolete: &'a [String],
}

fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::Current => "current",
        FileType::Manifest => "manifest",
        FileType::Log => "log",
        FileType::Table => "table",
        _ => "other",
    }
}

/// The progress bar: on stderr when it is a terminal, hidden otherwise.
fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "verifying [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// `verify`: exits 0 when every file is sound, 2 when something is damaged.
pub(crate) fn verify(ctx: &mut Context, threads: Option<usize>) -> Outcome {
    let dir = ctx.dir()?;
    let mut verifier = Verifier::new(dir)?;
    if let Some(threads) = threads {
        verifier = verifier.threads(threads);
    }
    let bar = progress_bar(verifier.total_bytes());
    let start = Instant::now();
    let report = verifier.run(|bytes| bar.inc(bytes));
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    if ctx.json {
        print_json(ctx, &report, elapsed)?;
    } else {
        print_human(ctx, &report, elapsed)?;
    }
    if report.is_clean() {
        Ok(())
    } else {
        Err(Failure::Damaged)
    }
}

fn rate(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9)
}

fn print_json(ctx: &mut Context, report: &VerifyReport, elapsed: Duration) -> Outcome {
    let json = ReportJson {
        clean: report.is_clean(),
        bytes: report.bytes,
        seconds: elapsed.as_secs_f64(),
        mb_per_second: rate(report.bytes, elapsed),
        files: report.files.iter().map(FileJson::new).collect(),
        database: report.database.iter().map(DamageJson::from).collect(),
        obsolete: &report.obsolete,
    };
    ctx.print_json(&json)
}

/// What the files of one kind added up to.
#[derive(Default)]
struct Tally {
    files: u64,
    bytes: u64,
    units: u64,
    entries: u64,
}

fn print_human(ctx: &mut Context, report: &VerifyReport, elapsed: Duration) -> Outcome {
    let out = &mut ctx.out;
    let mut tallies: [(FileType, Tally); 4] = [
        (FileType::Table, Tally::default()),
        (FileType::Log, Tally::default()),
        (FileType::Manifest, Tally::default()),
        (FileType::Current, Tally::default()),
    ];
    for check in &report.files {
        if let Some((_, tally)) = tallies.iter_mut().find(|(kind, _)| *kind == check.kind) {
            tally.files += 1;
            tally.bytes += check.len;
            tally.units += check.units;
            tally.entries += check.entries;
        }
        if let Some(tail) = &check.torn_tail {
            writeln!(
                out,
                "note: {} ends in a torn tail at offset {} ({}); recovery drops it",
                check.file, tail.offset, tail.reason
            )?;
        }
        if let Some(why) = &check.skipped {
            writeln!(out, "note: {} skipped: {why}", check.file)?;
        }
    }
    for damage in report.damages() {
        writeln!(
            out,
            "DAMAGED: {} at offset {}: {}",
            damage.file, damage.offset, damage.message
        )?;
    }
    writeln!(
        out,
        "checked {} files, {} in {:.2} s ({:.0} MB/s)",
        report.files.len(),
        human_bytes(report.bytes),
        elapsed.as_secs_f64(),
        rate(report.bytes, elapsed)
    )?;
    for (kind, tally) in &tallies {
        let what = match kind {
            FileType::Table => format!("{} data blocks, {} entries", tally.units, tally.entries),
            FileType::Log => format!("{} records, {} writes", tally.units, tally.entries),
            FileType::Manifest => format!("{} edits", tally.entries),
            _ => String::new(),
        };
        if tally.files > 0 && !what.is_empty() {
            writeln!(
                out,
                "  {:<9} {:>5} files {:>11}  {what}",
                kind_name(*kind).to_owned() + "s",
                tally.files,
                human_bytes(tally.bytes)
            )?;
        }
    }
    if !report.obsolete.is_empty() {
        writeln!(
            out,
            "  obsolete files the next open removes: {}",
            report.obsolete.join(", ")
        )?;
    }
    let damages = report.damages().count();
    if damages == 0 {
        writeln!(out, "no damage found")?;
    } else {
        writeln!(out, "damaged structures found: {damages}")?;
    }
    Ok(())
}
