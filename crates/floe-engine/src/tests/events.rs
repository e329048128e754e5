//! What the database reports: the listener's calls after flushes and compactions, on
//! stalls and on the error that poisons it, with the stats they agree with; and the
//! `tracing` events, none of which comes from the path of a single write or read.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{leveled, open};
use crate::testing::{FaultOp, FaultyFs};
use crate::{
    BackgroundErrorInfo, CompactionInfo, Error, EventListener, FlushInfo, Options, StallCause,
    StallInfo,
};

/// Every call a listener got, in order.
#[derive(Debug, Clone)]
enum Call {
    Flush(FlushInfo),
    Compaction(CompactionInfo),
    StallBegin(StallCause),
    StallEnd(StallCause),
    Error(String),
}

#[derive(Debug, Default)]
struct Recorder {
    calls: Mutex<Vec<Call>>,
}

impl Recorder {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn push(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }
}

impl EventListener for Recorder {
    fn on_flush_completed(&self, info: &FlushInfo) {
        self.push(Call::Flush(info.clone()));
    }

    fn on_compaction_completed(&self, info: &CompactionInfo) {
        self.push(Call::Compaction(info.clone()));
    }

    fn on_stall_begin(&self, info: &StallInfo) {
        assert!(info.duration.is_none());
        self.push(Call::StallBegin(info.cause));
    }

    fn on_stall_end(&self, info: &StallInfo) {
        assert!(info.duration.is_some());
        self.push(Call::StallEnd(info.cause));
    }

    fn on_background_error(&self, info: &BackgroundErrorInfo) {
        self.push(Call::Error(info.error.to_string()));
    }
}

/// Checks that every stall begin in `calls` is followed by the end of that stall before
/// another begins (level-0 stalls and memtable stalls each on their own), and returns
/// the causes that began.
fn check_stall_pairs(calls: &[Call]) -> Vec<StallCause> {
    let mut began = Vec::new();
    let (mut level0, mut memtables) = (None, None);
    for call in calls {
        match *call {
            Call::StallBegin(cause) => {
                let open = if cause == StallCause::TooManyMemtables {
                    &mut memtables
                } else {
                    &mut level0
                };
                assert_eq!(
                    *open, None,
                    "{cause:?} began inside another stall: {calls:?}"
                );
                *open = Some(cause);
                began.push(cause);
            }
            Call::StallEnd(cause) => {
                let open = if cause == StallCause::TooManyMemtables {
                    &mut memtables
                } else {
                    &mut level0
                };
                assert_eq!(
                    open.take(),
                    Some(cause),
                    "an end without its begin: {calls:?}"
                );
            }
            _ => {}
        }
    }
    began
}

#[test]
fn the_listener_hears_every_flush_and_compaction_as_the_stats_count_them() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let db = open(dir.path(), leveled().event_listener(recorder.clone()));
    let other = db.keyspace("other").unwrap();
    for i in 0..3000u32 {
        db.put(format!("k{:05}", (i * 7919) % 3000), [b'v'; 24])
            .unwrap();
        if i % 3 == 0 {
            other.put(format!("o{i:05}"), "x").unwrap();
        }
    }
    db.wait_for_compactions().unwrap();
    db.compact().unwrap();
    let stats = db.stats();
    let calls = recorder.calls();
    let flushes: Vec<&FlushInfo> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Flush(info) => Some(info),
            _ => None,
        })
        .collect();
    let compactions: Vec<&CompactionInfo> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Compaction(info) => Some(info),
            _ => None,
        })
        .collect();
    assert_eq!(flushes.len() as u64, stats.flushes, "{stats:?}");
    assert!(flushes.iter().any(|f| f.keyspace == "default"));
    assert!(flushes.iter().any(|f| f.keyspace == "other"));
    for flush in &flushes {
        assert!(flush.table_number.is_some() && flush.entries > 0 && flush.bytes > 0);
    }
    assert_eq!(
        flushes.iter().map(|f| f.bytes).sum::<u64>(),
        stats.flush_bytes_written
    );
    let rewritten: Vec<_> = compactions.iter().filter(|c| !c.trivial_move).collect();
    assert_eq!(rewritten.len() as u64, stats.compactions, "{stats:?}");
    assert_eq!(
        compactions.iter().filter(|c| c.trivial_move).count() as u64,
        stats.trivial_moves
    );
    assert_eq!(
        rewritten.iter().map(|c| c.bytes_written).sum::<u64>(),
        stats.compaction_bytes_written
    );
    for compaction in &compactions {
        assert!(compaction.output_level > compaction.input_level || compaction.manual);
        assert!(!compaction.inputs.is_empty());
        if compaction.trivial_move {
            assert_eq!(compaction.inputs, compaction.outputs);
        } else {
            assert!(compaction.bytes_read > 0);
        }
    }
    assert!(compactions.iter().any(|c| c.manual));
    assert!(compactions.iter().any(|c| !c.manual));
    // The per-level times add up to what the flushes and compactions took.
    assert!(!stats.levels[0].compaction_time.is_zero());
    assert!(
        stats.levels[1..]
            .iter()
            .any(|l| !l.compaction_time.is_zero())
    );
    check_stall_pairs(&calls);
    assert!(!calls.iter().any(|c| matches!(c, Call::Error(_))));
}

#[test]
fn the_listener_hears_level_0_stalls_begin_and_end() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let options = leveled()
        .l0_slowdown_trigger(3)
        .l0_stop_trigger(4)
        .event_listener(recorder.clone());
    let db = open(dir.path(), options);
    // Holding the compaction mutex keeps the background worker from running, so level 0
    // fills to the stop trigger.
    let paused = crate::sync::lock(&db.shared().compaction);
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for i in 0..1500u32 {
                db.put(format!("k{:05}", (i * 7919) % 1500), [b'v'; 24])
                    .unwrap();
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.stats().stops == 0 {
        assert!(Instant::now() < deadline, "the writer never stopped");
        std::thread::yield_now();
    }
    let began = check_stall_pairs(&recorder.calls());
    assert!(began.contains(&StallCause::Level0Slowdown), "{began:?}");
    assert!(began.contains(&StallCause::Level0Stop), "{began:?}");
    drop(paused);
    writer.join().unwrap();
    db.wait_for_compactions().unwrap();
    let calls = recorder.calls();
    check_stall_pairs(&calls);
    // Compaction brought level 0 back under the triggers: the last level-0 stall ended.
    let last_level0 = calls.iter().rev().find_map(|c| match c {
        Call::StallBegin(cause) | Call::StallEnd(cause)
            if *cause != StallCause::TooManyMemtables =>
        {
            Some(c.clone())
        }
        _ => None,
    });
    assert!(
        matches!(last_level0, Some(Call::StallEnd(..))),
        "{last_level0:?}"
    );
    let stats = db.stats();
    assert!(
        !stats.slowdown_time.is_zero() && !stats.stop_time.is_zero(),
        "{stats:?}"
    );
    assert!(
        stats.slowdown_time + stats.stop_time + stats.memtable_stop_time
            <= stats.stall_time + Duration::from_micros(1)
    );
}

#[test]
fn the_listener_hears_a_memtable_stall_and_the_error_that_poisons_once() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let fs = FaultyFs::new();
    let options = leveled()
        .max_immutable_memtables(1)
        .event_listener(recorder.clone())
        .file_system(Arc::new(fs.clone()));
    let db = open(dir.path(), options);
    // Holding the manifest mutex keeps the flush worker from installing its table, so
    // the next switch waits for room.
    let paused = crate::sync::lock(&db.shared().manifest);
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for i in 0..200u32 {
                db.put(format!("k{i:04}"), "v".repeat(64)).unwrap();
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.stats().memtable_stops == 0 {
        assert!(Instant::now() < deadline, "the writer never waited");
        std::thread::yield_now();
    }
    drop(paused);
    writer.join().unwrap();
    let began = check_stall_pairs(&recorder.calls());
    assert!(began.contains(&StallCause::TooManyMemtables), "{began:?}");
    assert!(!db.stats().memtable_stop_time.is_zero());

    // A failing log write poisons the database: one error call, whatever follows.
    fs.fail_always_on(FaultOp::Write, Some(".log"));
    let failures = AtomicUsize::new(0);
    for i in 0..50u32 {
        if db.put(format!("late{i}"), "x").is_err() {
            failures.fetch_add(1, Ordering::Relaxed);
        }
    }
    assert!(failures.load(Ordering::Relaxed) > 0);
    let errors: Vec<_> = recorder
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Error(message) => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("injected"), "{errors:?}");
    assert!(matches!(db.put("after", "x"), Err(Error::Poisoned { .. })));
    fs.heal();
}

/// A `tracing` subscriber that keeps the message of every event with the thread that
/// emitted it. It is the process's global subscriber (a scoped one can miss callsites
/// that tests on other threads registered first), so each test looks at its own thread.
#[cfg(feature = "tracing")]
#[derive(Default)]
struct Recording {
    events: Mutex<Vec<(std::thread::ThreadId, String)>>,
    spans: Mutex<Vec<(std::thread::ThreadId, String)>>,
}

#[cfg(feature = "tracing")]
impl Recording {
    /// The global recording, installed at the first call.
    fn global() -> &'static Recording {
        static RECORDING: std::sync::OnceLock<Arc<Recording>> = std::sync::OnceLock::new();
        RECORDING.get_or_init(|| {
            let recording = Arc::new(Recording::default());
            tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::from(Arc::clone(
                &recording,
            )))
            .expect("no other test sets a global subscriber");
            recording
        })
    }

    /// The messages of the events this thread emitted so far.
    fn mine(&self) -> Vec<String> {
        Recording::of_this_thread(&self.events.lock().unwrap())
    }

    /// The names of the spans this thread made so far.
    fn my_spans(&self) -> Vec<String> {
        Recording::of_this_thread(&self.spans.lock().unwrap())
    }

    fn of_this_thread(all: &[(std::thread::ThreadId, String)]) -> Vec<String> {
        let me = std::thread::current().id();
        all.iter()
            .filter(|(thread, _)| *thread == me)
            .map(|(_, text)| text.clone())
            .collect()
    }
}

#[cfg(feature = "tracing")]
impl tracing_core::Subscriber for Recording {
    fn enabled(&self, _: &tracing_core::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &tracing_core::span::Attributes<'_>) -> tracing_core::span::Id {
        let name = span.metadata().name().to_owned();
        let thread = std::thread::current().id();
        self.spans.lock().unwrap().push((thread, name));
        tracing_core::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing_core::span::Id, _: &tracing_core::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing_core::span::Id, _: &tracing_core::span::Id) {}

    fn event(&self, event: &tracing_core::Event<'_>) {
        struct Visit<'a>(&'a mut String);
        impl tracing_core::field::Visit for Visit<'_> {
            fn record_debug(&mut self, field: &tracing_core::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0.push_str(&format!("{value:?}"));
                }
            }
        }
        let mut message = String::new();
        event.record(&mut Visit(&mut message));
        let thread = std::thread::current().id();
        self.events.lock().unwrap().push((thread, message));
    }

    fn enter(&self, _: &tracing_core::span::Id) {}

    fn exit(&self, _: &tracing_core::span::Id) {}
}

#[cfg(feature = "tracing")]
#[test]
fn writes_and_reads_emit_no_tracing_event_and_background_work_does() {
    let recording = Recording::global();
    let dir = tempfile::tempdir().unwrap();
    // Without background threads, flushes and compactions run in this thread, where the
    // recording looks for their events.
    let db = open(
        dir.path(),
        Options::default()
            .write_buffer_size(1 << 20)
            .manual_background(true),
    );
    assert_eq!(recording.mine(), ["opened"], "open reports itself");
    assert_eq!(recording.my_spans(), ["open"]);
    for i in 0..5000u32 {
        db.put(format!("k{i:05}"), "value").unwrap();
        assert!(db.get(format!("k{i:05}")).unwrap().is_some());
    }
    let mut batch = crate::WriteBatch::new();
    batch.put("batch", "x");
    batch.delete("k00001");
    db.write(batch).unwrap();
    assert_eq!(db.iter().count(), 5000);
    let snapshot = db.snapshot();
    assert!(snapshot.get("k00002").unwrap().is_some());
    drop(snapshot);
    let mut transaction = db.transaction();
    let default = db.default_keyspace();
    assert!(transaction.get(&default, "k00003").unwrap().is_some());
    transaction.commit().unwrap();
    assert_eq!(
        recording.mine(),
        ["opened"],
        "the write and read paths emitted events"
    );
    assert_eq!(
        recording.my_spans(),
        ["open"],
        "the write and read paths made spans"
    );
    db.flush().unwrap();
    assert!(
        recording.mine().iter().any(|m| m == "flush completed"),
        "{:?}",
        recording.mine()
    );
    db.compact().unwrap();
    assert!(
        recording.mine().iter().any(|m| m == "compaction completed"),
        "{:?}",
        recording.mine()
    );
    let spans = recording.my_spans();
    assert!(spans.iter().any(|s| s == "flush"), "{spans:?}");
    assert!(spans.iter().any(|s| s == "compaction"), "{spans:?}");
}

#[test]
fn stats_count_gets_sample_latencies_and_bloom_filters_and_print_for_people() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), leveled());
    for i in 0..2000u32 {
        db.put(format!("k{i:05}"), [b'v'; 24]).unwrap();
    }
    db.flush().unwrap();
    db.wait_for_compactions().unwrap();
    // Each thread samples its first call and every 64th after it.
    let lookups: u32 = 64 * 40;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..lookups {
                // Every other sampled key (the sampled calls are those at multiples of
                // 64) is missing but within the tables' key ranges: filters rule most of
                // them out.
                let key = if i % 128 == 64 {
                    format!("k{:05}-missing", i % 2000)
                } else {
                    format!("k{:05}", i % 2000)
                };
                let _ = db.get(key).unwrap();
            }
        });
    });
    let stats = db.stats();
    assert_eq!(stats.gets, u64::from(lookups), "{stats:?}");
    assert_eq!(stats.get_latency.samples, 40);
    assert!(stats.get_latency.p50 <= stats.get_latency.p99);
    assert!(stats.get_latency.p999 <= stats.get_latency.max);
    assert!(stats.write_latency.samples >= 2000 / 64);
    assert!(stats.bloom_checked > 0, "{stats:?}");
    assert!(stats.bloom_useful > 0, "{stats:?}");
    assert!(stats.bloom_useful + stats.bloom_false_positives <= stats.bloom_checked);
    let text = stats.to_string();
    for expected in [
        "Level",
        "L0",
        "Sum",
        "Stalls:",
        "Gets: 2560",
        "Bloom filters",
        "Memory:",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}
