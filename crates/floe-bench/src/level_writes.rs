//! Where an engine's table writes went, level by level: for floe from its `Stats`, for
//! RocksDB from the event log it writes beside its tables (`LOG`), so that the two can be
//! compared level for level after the same workload.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// The table writes into one level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LevelWrites {
    /// Bytes of tables written into the level (by flushes for level 0, by compactions
    /// for the others).
    pub written: u64,
    /// Bytes read from the levels above by the compactions into this level: the data
    /// they moved down.
    pub moved_in: u64,
}

/// floe's per-level writes, from [`floe::Stats::levels`].
#[must_use]
pub fn floe(levels: &[floe::LevelStats]) -> Vec<LevelWrites> {
    levels
        .iter()
        .map(|level| LevelWrites {
            written: level.bytes_written,
            moved_in: level.bytes_moved_in,
        })
        .collect()
}

/// RocksDB's per-level writes, from the `EVENT_LOG_v1` records of its `LOG`: the tables
/// its flush jobs created go to level 0; each finished compaction adds its output bytes
/// to its output level, and the sizes of its input tables from other levels to what it
/// moved in. Lines that are not events, or not these events, are skipped.
#[must_use]
pub fn rocksdb(log: &str) -> Vec<LevelWrites> {
    let events: Vec<Value> = log
        .lines()
        .filter_map(|line| line.split_once("EVENT_LOG_v1 "))
        .filter_map(|(_, json)| serde_json::from_str(json).ok())
        .collect();
    let named = |name: &'static str| {
        events
            .iter()
            .filter(move |event| event["event"].as_str() == Some(name))
    };
    let flush_jobs: HashSet<u64> = named("flush_started")
        .filter_map(|event| event["job"].as_u64())
        .collect();
    let mut sizes = HashMap::new();
    let mut levels = vec![LevelWrites::default(); 1];
    for table in named("table_file_creation") {
        let (Some(number), Some(size)) =
            (table["file_number"].as_u64(), table["file_size"].as_u64())
        else {
            continue;
        };
        sizes.insert(number, size);
        if table["job"]
            .as_u64()
            .is_some_and(|job| flush_jobs.contains(&job))
        {
            levels[0].written += size;
        }
    }
    let started: HashMap<u64, &Value> = named("compaction_started")
        .filter_map(|event| Some((event["job"].as_u64()?, event)))
        .collect();
    for finished in named("compaction_finished") {
        let Some(output) = finished["output_level"].as_u64().map(|l| l as usize) else {
            continue;
        };
        if levels.len() <= output {
            levels.resize(output + 1, LevelWrites::default());
        }
        levels[output].written += finished["total_output_size"].as_u64().unwrap_or(0);
        let Some(inputs) = finished["job"]
            .as_u64()
            .and_then(|job| started.get(&job))
            .and_then(|event| event.as_object())
        else {
            continue;
        };
        for (key, files) in inputs {
            let from_above = key
                .strip_prefix("files_L")
                .and_then(|level| level.parse::<usize>().ok())
                .is_some_and(|level| level != output);
            if from_above {
                let files = files.as_array().map(Vec::as_slice).unwrap_or_default();
                levels[output].moved_in += files
                    .iter()
                    .filter_map(|file| sizes.get(&file.as_u64()?))
                    .sum::<u64>();
            }
        }
    }
    levels
}

/// The levels that were written to: the bytes written into each per user byte and,
/// below level 0, its own write amplification (bytes written per byte moved in from
/// above), e.g. `L0 1.09 L5 1.93(1.8x) L6 1.61(2.1x)`.
#[must_use]
pub fn describe(levels: &[LevelWrites], user_bytes: f64) -> String {
    levels
        .iter()
        .enumerate()
        .filter(|(_, level)| level.written > 0)
        .map(|(n, level)| {
            let share = level.written as f64 / user_bytes;
            if n == 0 || level.moved_in == 0 {
                format!("L{n} {share:.2}")
            } else {
                let own = level.written as f64 / level.moved_in as f64;
                format!("L{n} {share:.2}({own:.1}x)")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shortened RocksDB `LOG`: one flush (job 2, table 7), another flush (job 3,
    /// table 8), and a compaction (job 4) of both into level 6 together with level 6's
    /// table 5, written as table 9.
    const LOG: &str = r#"2026/11/22-02:48:11.337098 4428 Options.compaction_pri: kMinOverlappingRatio
2026/11/22-02:48:11.4 4432 EVENT_LOG_v1 {"time_micros": 1, "job": 1, "event": "table_file_creation", "file_number": 5, "file_size": 3000}
2026/11/22-02:48:11.5 4432 EVENT_LOG_v1 {"time_micros": 2, "job": 2, "event": "flush_started", "num_memtables": 1}
2026/11/22-02:48:11.6 4432 EVENT_LOG_v1 {"time_micros": 3, "job": 2, "event": "table_file_creation", "file_number": 7, "file_size": 1000}
2026/11/22-02:48:11.6 4432 EVENT_LOG_v1 {"time_micros": 3, "job": 3, "event": "flush_started", "num_memtables": 1}
2026/11/22-02:48:11.6 4432 EVENT_LOG_v1 {"time_micros": 3, "job": 3, "event": "table_file_creation", "file_number": 8, "file_size": 1100}
2026/11/22-02:48:11.7 4431 EVENT_LOG_v1 {"time_micros": 4, "job": 4, "event": "compaction_started", "files_L0": [7, 8], "files_L6": [5], "score": 1, "input_data_size": 5100}
2026/11/22-02:48:11.8 4431 EVENT_LOG_v1 {"time_micros": 5, "job": 4, "event": "table_file_creation", "file_number": 9, "file_size": 4000}
2026/11/22-02:48:11.8 4431 EVENT_LOG_v1 {"time_micros": 5, "job": 4, "event": "compaction_finished", "output_level": 6, "total_output_size": 4000, "lsm_state": [0, 0, 0, 0, 0, 0, 1]}
2026/11/22-02:48:11.9 4431 EVENT_LOG_v1 {not json"#;

    #[test]
    fn rocksdb_writes_come_from_its_flush_and_compaction_events() {
        let levels = rocksdb(LOG);
        assert_eq!(levels.len(), 7);
        assert_eq!(
            levels[0],
            LevelWrites {
                written: 2100,
                moved_in: 0
            }
        );
        assert_eq!(
            levels[6],
            LevelWrites {
                written: 4000,
                moved_in: 2100
            }
        );
        assert!(levels[1..6].iter().all(|l| *l == LevelWrites::default()));
        assert_eq!(describe(&levels, 1000.0), "L0 2.10 L6 4.00(1.9x)");
        assert!(rocksdb("no events here").iter().all(|l| l.written == 0));
    }
}
