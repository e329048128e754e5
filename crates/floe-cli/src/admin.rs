//! The commands about the database as a whole: `stats`, `compact`, `flush`, `checkpoint`
//! and `keyspaces`.

use std::io::Write;
use std::path::Path;

use floe::Stats;
use serde::Serialize;

use crate::context::{Context, close, human_bytes};
use crate::failure::Outcome;

/// One level, as `stats --json` prints it.
#[derive(Serialize)]
struct LevelJson {
    level: usize,
    tables: usize,
    bytes: u64,
    target_bytes: u64,
    bytes_written: u64,
    bytes_moved_in: u64,
    bytes_rewritten: u64,
    compaction_seconds: f64,
}

/// A latency summary, as `stats --json` prints it (in microseconds).
#[derive(Serialize)]
struct LatencyJson {
    samples: u64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    max_us: f64,
}

impl LatencyJson {
    fn new(latency: &floe::Latency) -> LatencyJson {
        let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
        LatencyJson {
            samples: latency.samples,
            p50_us: us(latency.p50),
            p99_us: us(latency.p99),
            p999_us: us(latency.p999),
            max_us: us(latency.max),
        }
    }
}

/// What `stats --json` prints.
#[derive(Serialize)]
struct StatsJson {
    keyspaces: Vec<String>,
    levels: Vec<LevelJson>,
    tables: usize,
    table_bytes: u64,
    log_bytes: u64,
    write_amplification: f64,
    space_amplification: f64,
    memory_bytes: u64,
    memtable_bytes: u64,
    transaction_history_bytes: u64,
    block_cache_bytes: u64,
    block_cache_capacity: u64,
    pinned_table_bytes: u64,
    user_bytes_written: u64,
    flush_bytes_written: u64,
    flushes: u64,
    compaction_bytes_written: u64,
    compaction_bytes_read: u64,
    compactions: u64,
    trivial_moves: u64,
    writes: u64,
    write_groups: u64,
    log_syncs: u64,
    slowdowns: u64,
    stops: u64,
    memtable_stops: u64,
    stall_seconds: f64,
    slowdown_seconds: f64,
    stop_seconds: f64,
    memtable_stop_seconds: f64,
    subcompactions: u64,
    gets: u64,
    get_latency: LatencyJson,
    write_latency: LatencyJson,
    bloom_checked: u64,
    bloom_useful: u64,
    bloom_false_positives: u64,
}

impl StatsJson {
    fn new(stats: &Stats, keyspaces: Vec<String>, log_bytes: u64) -> StatsJson {
        StatsJson {
            keyspaces,
            levels: stats
                .levels
                .iter()
                .enumerate()
                .map(|(level, l)| LevelJson {
                    level,
                    tables: l.tables,
                    bytes: l.bytes,
                    target_bytes: l.target_bytes,
                    bytes_written: l.bytes_written,
                    bytes_moved_in: l.bytes_moved_in,
                    bytes_rewritten: l.bytes_rewritten,
                    compaction_seconds: l.compaction_time.as_secs_f64(),
                })
                .collect(),
            tables: stats.levels.iter().map(|l| l.tables).sum(),
            table_bytes: stats.table_bytes(),
            log_bytes,
            write_amplification: stats.write_amplification(),
            space_amplification: stats.space_amplification(),
            memory_bytes: stats.memory_bytes(),
            memtable_bytes: stats.memtable_bytes,
            transaction_history_bytes: stats.transaction_history_bytes,
            block_cache_bytes: stats.block_cache_bytes,
            block_cache_capacity: stats.block_cache_capacity,
            pinned_table_bytes: stats.pinned_table_bytes,
            user_bytes_written: stats.user_bytes_written,
            flush_bytes_written: stats.flush_bytes_written,
            flushes: stats.flushes,
            compaction_bytes_written: stats.compaction_bytes_written,
            compaction_bytes_read: stats.compaction_bytes_read,
            compactions: stats.compactions,
            trivial_moves: stats.trivial_moves,
            writes: stats.writes,
            write_groups: stats.write_groups,
            log_syncs: stats.log_syncs,
            slowdowns: stats.slowdowns,
            stops: stats.stops,
            memtable_stops: stats.memtable_stops,
            stall_seconds: stats.stall_time.as_secs_f64(),
            slowdown_seconds: stats.slowdown_time.as_secs_f64(),
            stop_seconds: stats.stop_time.as_secs_f64(),
            memtable_stop_seconds: stats.memtable_stop_time.as_secs_f64(),
            subcompactions: stats.subcompactions,
            gets: stats.gets,
            get_latency: LatencyJson::new(&stats.get_latency),
            write_latency: LatencyJson::new(&stats.write_latency),
            bloom_checked: stats.bloom_checked,
            bloom_useful: stats.bloom_useful,
            bloom_false_positives: stats.bloom_false_positives,
        }
    }
}

/// The bytes of the log segments in `dir`.
fn log_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".log"))
        .filter_map(|entry| entry.metadata().ok())
        .map(|meta| meta.len())
        .sum()
}

/// `stats`: the levels as a table, then the totals, amplification and memory.
pub(crate) fn stats(ctx: &mut Context) -> Outcome {
    let db = ctx.open()?;
    let stats = db.stats();
    let keyspaces = db.keyspace_names();
    close(db)?;
    let report = StatsJson::new(&stats, keyspaces, log_bytes(ctx.dir()?));
    if ctx.json {
        return ctx.print_json(&report);
    }
    let out = &mut ctx.out;
    writeln!(
        out,
        "{:<6} {:>7} {:>11} {:>11} {:>11}",
        "level", "tables", "size", "target", "written"
    )?;
    for level in &report.levels {
        let target = match level.target_bytes {
            0 => "-".to_owned(),
            bytes => human_bytes(bytes),
        };
        writeln!(
            out,
            "{:<6} {:>7} {:>11} {:>11} {:>11}",
            format!("L{}", level.level),
            level.tables,
            human_bytes(level.bytes),
            target,
            human_bytes(level.bytes_written)
        )?;
    }
    writeln!(
        out,
        "{:<6} {:>7} {:>11}",
        "total",
        report.tables,
        human_bytes(report.table_bytes)
    )?;
    writeln!(out)?;
    let rows = [
        ("keyspaces", report.keyspaces.join(", ")),
        ("log on disk", human_bytes(report.log_bytes)),
        (
            "space amplification",
            format!("{:.2}", report.space_amplification),
        ),
        (
            "write amplification",
            format!("{:.2} (since open)", report.write_amplification),
        ),
        (
            "memory",
            format!(
                "{} (memtables {}, transaction history {})",
                human_bytes(report.memory_bytes),
                human_bytes(report.memtable_bytes),
                human_bytes(report.transaction_history_bytes)
            ),
        ),
        (
            "block cache",
            format!(
                "{} of {}",
                human_bytes(report.block_cache_bytes),
                human_bytes(report.block_cache_capacity)
            ),
        ),
        (
            "pinned by tables",
            format!(
                "{} (indexes, filters, range tombstones)",
                human_bytes(report.pinned_table_bytes)
            ),
        ),
        (
            "since open",
            format!(
                "{} flushes, {} compactions, {} trivial moves, {} stalls ({:.3} s)",
                report.flushes,
                report.compactions,
                report.trivial_moves,
                report.slowdowns + report.stops + report.memtable_stops,
                report.stall_seconds
            ),
        ),
    ];
    for (name, value) in rows {
        writeln!(out, "{name:<20} {value}")?;
    }
    Ok(())
}

/// `compact`: a full manual compaction, then the new shape of the tree.
pub(crate) fn compact(ctx: &mut Context) -> Outcome {
    let db = ctx.open()?;
    db.compact()?;
    let stats = db.stats();
    close(db)?;
    let tables: usize = stats.levels.iter().map(|l| l.tables).sum();
    if ctx.json {
        return ctx.print_json(&serde_json::json!({
            "tables": tables,
            "table_bytes": stats.table_bytes(),
        }));
    }
    writeln!(
        ctx.out,
        "compacted: {tables} tables, {}",
        human_bytes(stats.table_bytes())
    )?;
    Ok(())
}

/// `flush`: every memtable to a table.
pub(crate) fn flush(ctx: &mut Context) -> Outcome {
    let db = ctx.open()?;
    db.flush()?;
    close(db)?;
    if ctx.json {
        return ctx.print_json(&serde_json::json!({ "flushed": true }));
    }
    writeln!(ctx.out, "flushed")?;
    Ok(())
}

/// `checkpoint DIR`.
pub(crate) fn checkpoint(ctx: &mut Context, dir: &Path) -> Outcome {
    let db = ctx.open()?;
    db.checkpoint(dir)?;
    close(db)?;
    if ctx.json {
        return ctx.print_json(&serde_json::json!({ "checkpoint": dir.display().to_string() }));
    }
    writeln!(ctx.out, "checkpoint written to {}", dir.display())?;
    Ok(())
}

/// `keyspaces`: one name per line, or a JSON array.
pub(crate) fn keyspaces(ctx: &mut Context) -> Outcome {
    let db = ctx.open()?;
    let names = db.keyspace_names();
    close(db)?;
    if ctx.json {
        return ctx.print_json(&names);
    }
    for name in names {
        writeln!(ctx.out, "{name}")?;
    }
    Ok(())
}
