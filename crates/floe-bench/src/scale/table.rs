//! What the `scale` suite reports: a markdown table of every engine's figures with the
//! ratios of floe to each other engine, measurements for the JSON results, and the mixed
//! run's per-second samples as CSV and as a chart.

use std::fmt::Write as _;
use std::time::Duration;

use super::child::{EngineRun, Timed};
use super::memory::Resident;
use crate::Measurement;
use crate::chart::{self, Series};
use crate::dbbench::progress::human;
use crate::values::ValueKind;

/// Every engine's run of the suite, in the order they ran.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleReport {
    /// One run per engine.
    pub runs: Vec<EngineRun>,
    /// The kind of values loaded.
    pub value_kind: ValueKind,
    /// Entries read after each seek.
    pub seek_nexts: usize,
}

/// How a figure is shown, and which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// Operations per second (higher is better).
    Rate,
    /// Seconds, shown as such (lower is better).
    Seconds,
    /// Seconds, shown in milliseconds (lower is better).
    Millis,
    /// Nanoseconds, shown in microseconds (lower is better).
    Micros,
    /// Bytes, shown in MiB (lower is better).
    Mib,
    /// A plain ratio (lower is better).
    Ratio,
}

impl Unit {
    /// The smallest step [`Unit::show`] shows, in the figure's own unit (`None` for rates,
    /// shown to three significant digits): ratios are taken of figures rounded to it, so
    /// that two times that both show as 0.00 have no ratio rather than a large one.
    fn resolution(self) -> Option<f64> {
        match self {
            Unit::Rate => None,
            Unit::Seconds => Some(0.01),
            Unit::Millis => Some(1e-4),
            Unit::Micros => Some(100.0),
            Unit::Mib => Some(f64::from(1 << 20) / 10.0),
            Unit::Ratio => Some(1e-3),
        }
    }

    /// `value` rounded to the step it is shown at.
    fn rounded(self, value: f64) -> f64 {
        match self.resolution() {
            Some(step) => (value / step).round() * step,
            None => value,
        }
    }

    fn show(self, value: f64) -> String {
        match self {
            Unit::Rate => human(value),
            Unit::Seconds => format!("{value:.2}"),
            Unit::Millis => format!("{:.1}", value * 1e3),
            Unit::Micros => format!("{:.1}", value / 1e3),
            Unit::Mib => format!("{:.1}", value / f64::from(1 << 20)),
            Unit::Ratio => format!("{value:.3}"),
        }
    }
}

/// How a run gives the figure of one line of the table, where it has one.
type Figure = Box<dyn Fn(&EngineRun) -> Option<f64>>;

/// How a run gives its peak memory in one phase, where it has one.
type PhaseMemory = fn(&EngineRun) -> Option<Resident>;

/// One line of the table: its name, how it is shown, and how a run gives its figure.
struct Row {
    name: String,
    unit: Unit,
    value: Figure,
}

impl Row {
    fn new(
        name: impl Into<String>,
        unit: Unit,
        value: impl Fn(&EngineRun) -> Option<f64> + 'static,
    ) -> Row {
        Row {
            name: name.into(),
            unit,
            value: Box::new(value),
        }
    }
}

/// The phases whose memory the table reports, each with how a run gives it.
const PHASES: [(&str, PhaseMemory); 7] = [
    ("load", |r| r.load.memory),
    ("settle", |r| r.settle.memory),
    ("cold open", |r| r.open_cold.memory),
    ("cold reads", |r| r.read_cold.memory),
    ("warm reads", |r| r.read_warm.memory),
    ("seeks", |r| r.seek.memory),
    ("mixed", |r| r.mixed.as_ref().and_then(|m| m.reads.memory)),
];

/// A latency percentile of `timed` (0: p50, 1: p99, 2: p99.9), in nanoseconds.
fn percentile(timed: &Timed, which: usize) -> Option<f64> {
    timed.latency_ns.map(|l| l[which] as f64)
}

impl ScaleReport {
    /// The lines of the table, in order.
    fn rows(&self) -> Vec<Row> {
        let nexts = self.seek_nexts;
        let mut rows = vec![
            Row::new("load (batches of 1000), ops/s", Unit::Rate, |r| {
                Some(r.load.ops_per_sec())
            }),
            Row::new("compactions left by the load, s", Unit::Seconds, |r| {
                Some(r.settle.secs)
            }),
            Row::new("disk after clean close, MiB", Unit::Mib, |r| {
                Some(r.disk_bytes as f64)
            }),
            Row::new("disk / raw key+value bytes", Unit::Ratio, |r| {
                Some(r.disk_bytes as f64 / r.raw_bytes.max(1) as f64)
            }),
            Row::new("open, cold page cache, ms", Unit::Millis, |r| {
                Some(r.open_cold.secs)
            }),
            Row::new("open, warm page cache, ms", Unit::Millis, |r| {
                Some(r.open_warm.secs)
            }),
            Row::new("cold point reads, ops/s", Unit::Rate, |r| {
                Some(r.read_cold.ops_per_sec())
            }),
            Row::new("cold point read p50, µs", Unit::Micros, |r| {
                percentile(&r.read_cold, 0)
            }),
            Row::new("cold point read p99, µs", Unit::Micros, |r| {
                percentile(&r.read_cold, 1)
            }),
            Row::new("warm point reads, ops/s", Unit::Rate, |r| {
                Some(r.read_warm.ops_per_sec())
            }),
            Row::new("warm point read p99, µs", Unit::Micros, |r| {
                percentile(&r.read_warm, 1)
            }),
            Row::new(format!("seek + {nexts} next, ops/s"), Unit::Rate, |r| {
                Some(r.seek.ops_per_sec())
            }),
            Row::new(format!("seek + {nexts} next p99, µs"), Unit::Micros, |r| {
                percentile(&r.seek, 1)
            }),
        ];
        if self.runs.iter().any(|r| r.mixed.is_some()) {
            rows.push(Row::new("mixed: reads/s", Unit::Rate, |r| {
                r.mixed.as_ref().map(|m| m.reads.ops_per_sec())
            }));
            rows.push(Row::new("mixed: writes/s", Unit::Rate, |r| {
                r.mixed
                    .as_ref()
                    .map(|m| m.writes as f64 / m.reads.secs.max(1e-9))
            }));
            rows.push(Row::new("mixed: RssAnon at the end, MiB", Unit::Mib, |r| {
                let last = r.mixed.as_ref()?.samples.last()?;
                Some(last.anon as f64)
            }));
        }
        for (figure, pick) in [
            ("RssAnon", (|m: Resident| m.anon) as fn(Resident) -> u64),
            ("RssFile", |m: Resident| m.file),
        ] {
            for (phase, memory) in PHASES {
                if phase == "mixed" && !self.runs.iter().any(|r| r.mixed.is_some()) {
                    continue;
                }
                rows.push(Row::new(
                    format!("peak {figure}, {phase}, MiB"),
                    Unit::Mib,
                    move |r| memory(r).map(|m| pick(m) as f64),
                ));
            }
        }
        rows
    }

    /// The table in markdown: a line per figure, a column per engine, and a column of
    /// floe's figure over each other engine's where floe ran.
    #[must_use]
    pub fn markdown(&self) -> String {
        let floe = self.runs.iter().find(|r| r.engine == "floe");
        let others: Vec<&EngineRun> = match floe {
            Some(_) => self.runs.iter().filter(|r| r.engine != "floe").collect(),
            None => Vec::new(),
        };
        let mut out = String::new();
        let keys = self.runs.first().map_or(0, |r| r.keys);
        // Writing to a String cannot fail, so the results of `write!` are ignored.
        let _ = writeln!(
            out,
            "scale: {keys} keys, {} values; each engine in processes of its own.",
            self.value_kind
        );
        if floe.is_some() && !others.is_empty() {
            out.push_str(
                "Ratios are floe's figure over the other engine's: for rates above 1 is \
                 better, for times, sizes and memory below 1.\n",
            );
        }
        out.push('\n');
        let mut header = String::from("| metric |");
        let mut rule = String::from("|---|");
        for run in &self.runs {
            let _ = write!(header, " {} |", run.engine);
            rule.push_str("---:|");
        }
        for other in &others {
            let _ = write!(header, " floe/{} |", other.engine);
            rule.push_str("---:|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        for row in self.rows() {
            let mut line = format!("| {} |", row.name);
            for run in &self.runs {
                let cell = (row.value)(run).map_or_else(|| "–".to_string(), |v| row.unit.show(v));
                let _ = write!(line, " {cell} |");
            }
            if let Some(floe) = floe {
                for other in &others {
                    let shown = |run| (row.value)(run).map(|v| row.unit.rounded(v));
                    let ratio = match (shown(floe), shown(other)) {
                        (Some(ours), Some(theirs)) if theirs > 0.0 => {
                            format!("{:.2}x", ours / theirs)
                        }
                        _ => "–".to_string(),
                    };
                    let _ = write!(line, " {ratio} |");
                }
            }
            let _ = writeln!(out, "{line}");
        }
        out
    }

    /// The runs as measurements for the JSON results: `scale/load` (its bytes per entry
    /// the space on disk), `scale/read-cold`, `scale/read-warm`, `scale/seek`, and with
    /// a mixed run `scale/mixed-read` and `scale/mixed-write`; the other figures (open
    /// times, compactions left, memory peaks) are notes.
    #[must_use]
    pub fn measurements(&self) -> Vec<Measurement> {
        let mut out = Vec::new();
        for run in &self.runs {
            let measure = |name: &str, timed: &Timed| {
                let mut m = Measurement::new(
                    &format!("scale/{name}"),
                    &run.engine,
                    1,
                    timed.ops,
                    Duration::from_secs_f64(timed.secs),
                );
                m.latency_ns = timed.latency_ns;
                if let Some(memory) = timed.memory {
                    m.notes.extend([
                        ("peak_rss_anon".to_string(), memory.anon.to_string()),
                        ("peak_rss_file".to_string(), memory.file.to_string()),
                    ]);
                }
                m
            };
            let mut load = measure("load", &run.load);
            load.bytes_per_entry = Some(run.disk_bytes as f64 / run.keys.max(1) as f64);
            load.notes.extend([
                ("value_kind".to_string(), self.value_kind.to_string()),
                ("disk_bytes".to_string(), run.disk_bytes.to_string()),
                (
                    "space_amp".to_string(),
                    format!("{:.3}", run.disk_bytes as f64 / run.raw_bytes.max(1) as f64),
                ),
                ("settle_secs".to_string(), format!("{:.3}", run.settle.secs)),
                (
                    "open_cold_ms".to_string(),
                    format!("{:.2}", run.open_cold.secs * 1e3),
                ),
                (
                    "open_warm_ms".to_string(),
                    format!("{:.2}", run.open_warm.secs * 1e3),
                ),
            ]);
            load.notes.extend(run.notes.iter().cloned());
            out.push(load);
            out.push(measure("read-cold", &run.read_cold));
            out.push(measure("read-warm", &run.read_warm));
            out.push(measure("seek", &run.seek));
            if let Some(mixed) = &run.mixed {
                out.push(measure("mixed-read", &mixed.reads));
                let mut writes = measure(
                    "mixed-write",
                    &Timed {
                        ops: mixed.writes,
                        ..mixed.reads.clone()
                    },
                );
                writes.notes.clear();
                out.push(writes);
            }
        }
        out
    }

    /// The mixed runs' samples as CSV, one line per engine and second; `None` without a
    /// mixed run.
    #[must_use]
    pub fn mixed_csv(&self) -> Option<String> {
        let mut out = String::from("engine,second,rss_anon_bytes,rss_file_bytes,reads,writes\n");
        let mut any = false;
        for run in &self.runs {
            for s in run.mixed.iter().flat_map(|m| &m.samples) {
                any = true;
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{}",
                    run.engine, s.second, s.anon, s.file, s.reads, s.writes
                );
            }
        }
        any.then_some(out)
    }

    /// The mixed runs' `RssAnon` over time as an SVG line chart titled `title`; `None`
    /// without a mixed run.
    #[must_use]
    pub fn mixed_svg(&self, title: &str) -> Option<String> {
        let series: Vec<Series> = self
            .runs
            .iter()
            .filter_map(|run| {
                let mixed = run.mixed.as_ref()?;
                Some(Series {
                    name: run.engine.clone(),
                    points: mixed
                        .samples
                        .iter()
                        .map(|s| (s.second as f64, s.anon as f64 / f64::from(1 << 20)))
                        .collect(),
                })
            })
            .collect();
        (!series.is_empty()).then(|| chart::lines(&series, title, "seconds", "RssAnon, MiB"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::child::{Mixed, MixedSample};
    use super::*;

    fn timed(ops: u64, secs: f64, anon_mib: u64) -> Timed {
        Timed {
            ops,
            secs,
            latency_ns: Some([1000, 5000, 9000]),
            memory: Some(Resident {
                anon: anon_mib << 20,
                file: 1 << 20,
            }),
        }
    }

    fn run(engine: &str, speed: f64, mixed: bool) -> EngineRun {
        EngineRun {
            engine: engine.to_string(),
            keys: 1000,
            raw_bytes: 116_000,
            load: timed(1000, 1.0 / speed, 10),
            settle: timed(0, 0.5, 10),
            disk_bytes: (120_000.0 / speed) as u64,
            open_cold: timed(1, 0.01, 2),
            read_cold: timed(100, 1.0 / speed, 3),
            read_warm: timed(100, 0.5 / speed, 3),
            seek: timed(100, 2.0 / speed, 3),
            open_warm: timed(1, 0.005, 2),
            mixed: mixed.then(|| Mixed {
                reads: timed(500, 2.0, 4),
                writes: 300,
                samples: vec![
                    MixedSample {
                        second: 1,
                        anon: 4 << 20,
                        file: 1 << 20,
                        reads: 250,
                        writes: 150,
                    },
                    MixedSample {
                        second: 2,
                        anon: 5 << 20,
                        file: 1 << 20,
                        reads: 500,
                        writes: 300,
                    },
                ],
            }),
            notes: Vec::new(),
        }
    }

    #[test]
    fn the_table_has_a_column_per_engine_and_ratios_to_floe() {
        let report = ScaleReport {
            runs: vec![run("floe", 2.0, true), run("fjall", 1.0, true)],
            value_kind: ValueKind::Half,
            seek_nexts: 10,
        };
        let text = report.markdown();
        assert!(
            text.contains("| metric | floe | fjall | floe/fjall |"),
            "{text}"
        );
        assert!(text.contains("| load (batches of 1000), ops/s | 2.0k | 1.0k | 2.00x |"));
        assert!(text.contains("| disk / raw key+value bytes | 0.517 | 1.034 | 0.50x |"));
        assert!(text.contains("| seek + 10 next, ops/s |"));
        assert!(text.contains("| peak RssAnon, mixed, MiB | 4.0 | 4.0 | 1.00x |"));
        assert!(text.contains("| mixed: RssAnon at the end, MiB | 5.0 | 5.0 | 1.00x |"));
        // Times too short to show have no ratio.
        assert!(text.contains("| open, cold page cache, ms | 10.0 | 10.0 | 1.00x |"));
        let mut quick = report.clone();
        quick.runs[0].settle.secs = 0.0001;
        quick.runs[1].settle.secs = 0.004;
        let text = quick.markdown();
        assert!(
            text.contains("| compactions left by the load, s | 0.00 | 0.00 | – |"),
            "{text}"
        );
        let rows = text.lines().filter(|l| l.starts_with("| ")).count();
        assert_eq!(rows, 1 + report.rows().len());
        // Every line of the table has the same number of cells.
        let cells: Vec<usize> = text
            .lines()
            .filter(|l| l.starts_with('|'))
            .map(|l| l.matches('|').count())
            .collect();
        assert!(cells.iter().all(|&c| c == cells[0]), "{text}");

        let csv = report.mixed_csv().expect("a mixed run");
        assert_eq!(csv.lines().count(), 1 + 4);
        assert!(csv.contains("fjall,2,5242880,1048576,500,300"));
        let svg = report.mixed_svg("mixed").expect("a mixed run");
        assert_eq!(svg.matches("<polyline").count(), 2);

        let measurements = report.measurements();
        assert_eq!(measurements.len(), 2 * 6);
        let ratios = crate::report::ratios(&measurements, "floe", "fjall");
        let load = ratios
            .iter()
            .find(|r| r.workload == "scale/load")
            .expect("load ratio");
        assert!((load.throughput - 2.0).abs() < 1e-9);
        assert!(load.space.is_some_and(|s| (s - 0.5).abs() < 1e-3));
    }

    #[test]
    fn without_floe_or_a_mixed_run_the_table_has_no_ratios_or_mixed_rows() {
        let report = ScaleReport {
            runs: vec![run("fjall", 1.0, false)],
            value_kind: ValueKind::Random,
            seek_nexts: 10,
        };
        let text = report.markdown();
        assert!(!text.contains("floe/"), "{text}");
        assert!(!text.contains("mixed"), "{text}");
        assert!(report.mixed_csv().is_none() && report.mixed_svg("x").is_none());
    }
}
