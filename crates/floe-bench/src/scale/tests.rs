//! The child's command line reads back as the parent's settings; the suite end to end is
//! `tests/scale.rs`, which needs the binary.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::cli::{Command as Cli, parse};
use crate::dbbench::EngineKind;
use crate::values::ValueKind;

fn parsed(args: Vec<String>) -> crate::cli::Args {
    match parse(args).expect("the child's arguments parse") {
        Cli::Run(args) => *args,
        Cli::Help => panic!("help"),
    }
}

/// Durations sent as decimal text come back within a microsecond.
fn close(a: Duration, b: Duration) -> bool {
    a.abs_diff(b) < Duration::from_micros(1)
}

#[test]
fn a_child_reads_back_the_settings_of_its_parent() {
    let config = Config {
        key_size: 24,
        value_size: 300,
        value_kind: ValueKind::Text,
        seed: 42,
        ..Config::default()
    };
    let options = DbBenchOptions {
        engines: vec![EngineKind::Fjall],
        write_buffer: 8 << 20,
        seek_nexts: 7,
        cache_bytes: Some(96 << 20),
        dir: PathBuf::from("/tmp/some where"),
        display: Display::Quiet,
        ..DbBenchOptions::default()
    };
    let scale = ScaleOptions {
        keys: 12_345,
        large: true,
        reads: 777,
        read_time: Duration::from_millis(1500),
        mixed: Some(Duration::from_secs_f64(7.3)),
        exe: None,
    };
    let child = parsed(child_args(&config, &options, &scale, READS_SUITE).expect("args"));
    assert_eq!(child.suites, [READS_SUITE]);
    assert_eq!(child.dbbench.engines, [EngineKind::Fjall]);
    assert_eq!(child.config.key_size, 24);
    assert_eq!(child.config.value_size, 300);
    assert_eq!(child.config.value_kind, ValueKind::Text);
    assert_eq!(child.config.seed, 42);
    assert_eq!(child.dbbench.write_buffer, 8 << 20);
    assert_eq!(child.dbbench.seek_nexts, 7);
    assert_eq!(child.dbbench.cache_bytes, Some(96 << 20));
    assert_eq!(child.dbbench.dir, options.dir);
    assert_eq!(child.dbbench.display, Display::Quiet);
    assert_eq!(child.scale.keys, 12_345);
    assert!(child.scale.large);
    assert_eq!(child.scale.reads, 777);
    assert!(close(child.scale.read_time, scale.read_time));
    assert!(close(
        child.scale.mixed.expect("a mixed run"),
        Duration::from_secs_f64(7.3)
    ));

    // The defaults: no cache, no mixed run, progress shown.
    let floe = DbBenchOptions {
        engines: vec![EngineKind::Floe],
        ..DbBenchOptions::default()
    };
    let sent = child_args(
        &Config::default(),
        &floe,
        &ScaleOptions::default(),
        LOAD_SUITE,
    );
    let child = parsed(sent.expect("args"));
    assert_eq!(child.suites, [LOAD_SUITE]);
    assert_eq!(child.dbbench.engines, [EngineKind::Floe]);
    assert_eq!(child.dbbench.cache_bytes, None);
    assert_eq!(child.scale.mixed, None);
    assert_eq!(child.dbbench.display, Display::Auto);
    assert_eq!(child.scale.keys, DEFAULT_KEYS);
    assert!(!child.scale.large);
}

#[test]
fn a_child_gets_one_engine_and_a_cache_of_whole_mib() {
    let sent = |options: &DbBenchOptions| {
        child_args(
            &Config::default(),
            options,
            &ScaleOptions::default(),
            LOAD_SUITE,
        )
    };
    let odd_cache = DbBenchOptions {
        engines: vec![EngineKind::Floe],
        cache_bytes: Some((1 << 20) + 1),
        ..DbBenchOptions::default()
    };
    assert!(sent(&odd_cache).is_err(), "a cache size is not rounded");
    let two = DbBenchOptions {
        engines: vec![EngineKind::Floe, EngineKind::Fjall],
        ..DbBenchOptions::default()
    };
    assert!(sent(&two).is_err());
}

#[test]
fn too_many_keys_without_large_are_refused_before_any_child_starts() {
    let scale = ScaleOptions {
        keys: DEFAULT_KEYS + 1,
        exe: Some(PathBuf::from("/nonexistent/floe-bench")),
        ..ScaleOptions::default()
    };
    let error = run(&Config::default(), &DbBenchOptions::default(), &scale)
        .expect_err("refused")
        .to_string();
    assert!(error.contains("--large"), "{error}");
}
