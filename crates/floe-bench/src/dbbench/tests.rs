//! A tiny run of every workload on every built engine: a correctness check of the
//! adapters and the workloads (each read is verified inside the workload), not a speed test.

use super::*;

fn tiny(dir: &Path) -> (Config, DbBenchOptions) {
    let config = Config {
        keys: 1000,
        threads: vec![1],
        ..Config::default()
    };
    let options = DbBenchOptions {
        engines: EngineKind::ALL
            .into_iter()
            .filter(|kind| kind.is_built())
            .collect(),
        // A 32 KiB write buffer makes the load flush several tables, so reads cross
        // memtables and tables.
        write_buffer: 32 << 10,
        // `deleterange` and `transactions` have tests of their own.
        workloads: Workload::ALL
            .into_iter()
            .filter(|&w| w != Workload::DeleteRange && w != Workload::Transactions)
            .collect(),
        threads: Some(vec![1, 2]),
        sync_ops: 20,
        dir: dir.to_path_buf(),
        display: Display::Quiet,
        ..DbBenchOptions::default()
    };
    (config, options)
}

#[test]
fn every_workload_runs_and_reads_back_what_it_wrote() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (config, options) = tiny(dir.path());
    let measurements = run(&config, &options).expect("every workload succeeds");
    for &workload in &options.workloads {
        // `keyspaces` reports its two phases apart, on the engines that have keyspaces.
        let (names, engines) = if workload == Workload::Keyspaces {
            let engines = options.engines.iter().filter(|e| e.has_keyspaces());
            (
                vec!["keyspaces-write".to_string(), "keyspaces-read".to_string()],
                engines.collect::<Vec<_>>(),
            )
        } else {
            (
                vec![workload.name().to_string()],
                options.engines.iter().collect(),
            )
        };
        assert!(!engines.is_empty(), "{workload} ran on no engine");
        for engine in engines {
            let runs: Vec<&Measurement> = measurements
                .iter()
                .filter(|m| names.contains(&m.workload) && m.subject == engine.name())
                .collect();
            assert_eq!(
                runs.len(),
                names.len() * options.threads_for(workload).len(),
                "{workload} on {engine}"
            );
            for m in runs {
                let expected = match workload {
                    Workload::SeekRandom => 100,
                    Workload::FillSync => 20 * m.threads as u64,
                    _ => 1000,
                };
                assert_eq!(m.ops, expected, "{workload} x{} on {engine}", m.threads);
                let note = |name: &str| {
                    m.notes
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, value)| value.as_str())
                };
                if workload == Workload::FillSync {
                    // Four interleaved rounds of 5 writes per thread, pooled.
                    assert_eq!(note("rounds"), Some("4"), "{engine}");
                    assert_eq!(note("ops_per_thread"), Some("20"), "{engine}");
                    if *engine == EngineKind::Floe {
                        assert!(note("floe_writes_per_sync").is_some());
                    }
                }
                assert_eq!(m.latency_ns.is_some(), workload != Workload::ReadSeq);
                if let Some([p50, p99, p999]) = m.latency_ns {
                    assert!(
                        p50 <= p99 && p99 <= p999,
                        "{workload}: percentiles out of order"
                    );
                }
                if workload.measures_space() {
                    let per_entry = m.bytes_per_entry.expect("fills measure their size");
                    assert!(
                        per_entry > 0.0,
                        "{workload} on {engine} left an empty directory"
                    );
                }
            }
        }
    }
    // Every run's directory was removed.
    assert_eq!(std::fs::read_dir(dir.path()).expect("listing").count(), 0);
}

#[test]
fn deleterange_reports_its_phases_and_on_floe_both_targets() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (mut config, mut options) = tiny(dir.path());
    config.keys = 2000;
    options.workloads = vec![Workload::DeleteRange];
    let measurements = run(&config, &options).expect("deleterange succeeds");
    let note = |m: &Measurement, name: &str| {
        m.notes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.clone())
    };
    for &engine in &options.engines {
        let rows: Vec<&Measurement> = measurements
            .iter()
            .filter(|m| m.subject == engine.name())
            .collect();
        let names: Vec<&str> = rows.iter().map(|m| m.workload.as_str()).collect();
        let mut expected = vec![
            "deleterange-readbefore",
            "deleterange",
            "deleterange-readafter",
        ];
        if engine.has_range_delete() {
            expected.extend([
                "deleterange-perkey",
                "deleterange-readclean",
                "deleterange-readtombs",
            ]);
        }
        assert_eq!(names, expected, "{engine}");
        let ops: Vec<u64> = rows.iter().map(|m| m.ops).collect();
        let mut expected_ops = vec![2000, 200, 2000];
        if engine.has_range_delete() {
            expected_ops.extend([200, 2000, 2000]);
        }
        assert_eq!(ops, expected_ops, "{engine}");
        assert!(rows.iter().all(|m| m.threads == 1));
        let method = if engine.has_range_delete() {
            "range_delete"
        } else {
            "remove_per_key"
        };
        assert_eq!(note(rows[1], "method").as_deref(), Some(method));
        assert_eq!(note(rows[1], "keys_deleted").as_deref(), Some("200"));
        // A tenth of the reads after the delete land in the slice; none before it.
        assert_eq!(note(rows[0], "absent_reads").as_deref(), Some("0"));
        let absent: u64 = note(rows[2], "absent_reads")
            .expect("absent_reads")
            .parse()
            .expect("a count");
        assert!((100..=300).contains(&absent), "{engine}: {absent}");
        assert!(rows[1].latency_ns.is_none());
        assert!(rows[0].latency_ns.is_some() && rows[2].latency_ns.is_some());
        if engine.has_range_delete() {
            let (per_key, tombs) = (rows[3], rows[5]);
            assert_eq!(note(per_key, "method").as_deref(), Some("delete_per_key"));
            assert_eq!(note(per_key, "target_min").as_deref(), Some("100.00"));
            assert_eq!(note(tombs, "target_min").as_deref(), Some("0.80"));
            // 2000 keys hold 400 small ranges (pairs 10 keys apart), half of them flushed.
            assert_eq!(note(tombs, "range_tombstones").as_deref(), Some("400"));
            assert_eq!(note(tombs, "flushed").as_deref(), Some("200"));
            assert_eq!(note(tombs, "absent_reads").as_deref(), Some("0"));
            for m in [per_key, tombs] {
                let ratio: f64 = note(m, "target_ratio")
                    .expect("a ratio")
                    .parse()
                    .expect("a number");
                // A ratio of timings: its value is not asserted, only its presence.
                assert!(
                    ratio.is_finite() && ratio >= 0.0,
                    "{engine}: {}",
                    m.workload
                );
                assert!(matches!(
                    note(m, "target_met").as_deref(),
                    Some("yes" | "no")
                ));
            }
        }
    }
    assert_eq!(std::fs::read_dir(dir.path()).expect("listing").count(), 0);
}

#[test]
fn transactions_report_both_contentions_with_their_conflicts_and_the_target() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (config, mut options) = tiny(dir.path());
    options.workloads = vec![Workload::Transactions];
    let measurements = run(&config, &options).expect("transactions succeed");
    let note = |m: &Measurement, name: &str| {
        m.notes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.clone())
    };
    let count = |m: &Measurement, name: &str| -> u64 {
        note(m, name)
            .unwrap_or_else(|| panic!("{} has no {name}", m.workload))
            .parse()
            .expect("a count")
    };
    // Thread count by thread count, each engine's two phases side by side.
    let mut expected = Vec::new();
    for threads in [1, 2] {
        for phase in ["transactions-low", "transactions-high"] {
            for engine in &options.engines {
                expected.push((phase.to_string(), engine.name().to_string(), threads));
            }
        }
    }
    let shape: Vec<(String, String, usize)> = measurements
        .iter()
        .map(|m| (m.workload.clone(), m.subject.clone(), m.threads))
        .collect();
    assert_eq!(shape, expected);
    for m in &measurements {
        let what = format!("{} x{} on {}", m.workload, m.threads, m.subject);
        // A fifth as many commits as keys, at either contention.
        assert_eq!(m.ops, 200, "{what}");
        assert_eq!(count(m, "commits"), 200, "{what}");
        let keys = if m.workload == "transactions-low" {
            1000
        } else {
            100
        };
        assert_eq!(count(m, "keys"), keys, "{what}");
        assert_eq!(count(m, "counter_sum"), 400, "{what}");
        let conflicts = count(m, "conflicts");
        assert_eq!(count(m, "attempts"), 200 + conflicts, "{what}");
        let rate: f64 = note(m, "conflict_rate")
            .expect("a conflict rate")
            .parse()
            .expect("a number");
        assert!((0.0..1.0).contains(&rate), "{what}: {rate}");
        if m.threads == 1 {
            assert_eq!(
                conflicts, 0,
                "{what}: one thread has no one to conflict with"
            );
        }
        assert!(m.latency_ns.is_some(), "{what}");
        // Only floe's low-contention row at 2 threads carries the target.
        let target = m.subject == "floe" && m.workload == "transactions-low" && m.threads == 2;
        assert_eq!(note(m, "target_min").is_some(), target, "{what}");
        if target {
            assert_eq!(note(m, "target_min").as_deref(), Some("2.00"));
            let ratio: f64 = note(m, "target_ratio")
                .expect("a ratio")
                .parse()
                .expect("a number");
            // A ratio of timings: its value is not asserted, only its presence.
            assert!(ratio.is_finite() && ratio > 0.0, "{ratio}");
            assert!(matches!(
                note(m, "target_met").as_deref(),
                Some("yes" | "no")
            ));
        }
    }
    assert_eq!(crate::report::targets(&measurements).len(), 1);
    assert_eq!(std::fs::read_dir(dir.path()).expect("listing").count(), 0);
}

#[test]
fn adapters_agree_on_puts_deletes_batches_and_scans() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Each engine with its own default cache, and with one of 1 MiB (floe then reads its
    // tables through its block cache instead of mapping them).
    // Each also with LZ4 blocks.
    let built = EngineKind::ALL.into_iter().filter(|kind| kind.is_built());
    let settings = built.flat_map(|kind| {
        [
            (kind, None, ::floe::Compression::None),
            (kind, Some(1 << 20), ::floe::Compression::None),
            (kind, None, ::floe::Compression::Lz4),
        ]
    });
    for (kind, cache_bytes, compression) in settings {
        let options = EngineOptions {
            write_buffer: 1 << 20,
            sync: kind == EngineKind::Fjall,
            cache_bytes,
            compression,
        };
        let name = format!("{kind}-{}-{compression:?}", cache_bytes.unwrap_or(0));
        let engine = kind.open(&dir.path().join(name), options).expect("open");
        engine.put(b"b", b"2").expect("put");
        engine
            .write_batch(&[
                (b"a".to_vec(), b"1".to_vec()),
                (b"c".to_vec(), b"3".to_vec()),
            ])
            .expect("batch");
        engine.delete(b"b").expect("delete");
        let mut value = Vec::new();
        assert!(
            !engine.get(b"b", &mut value).expect("get"),
            "{kind}: deleted key found"
        );
        assert!(
            engine.get(b"c", &mut value).expect("get"),
            "{kind}: batch key missing"
        );
        assert_eq!(value, b"3");
        engine.flush().expect("flush");
        let mut seen = Vec::new();
        let count = engine
            .scan(b"", usize::MAX, &mut |k, v| {
                seen.push((k.to_vec(), v.to_vec()))
            })
            .expect("scan");
        assert_eq!(count, 2);
        assert_eq!(
            seen,
            [
                (b"a".to_vec(), b"1".to_vec()),
                (b"c".to_vec(), b"3".to_vec())
            ],
            "{kind}"
        );
        seen.clear();
        assert_eq!(
            engine
                .scan(b"aa", 1, &mut |k, v| seen.push((k.to_vec(), v.to_vec())))
                .expect("scan"),
            1
        );
        assert_eq!(
            seen,
            [(b"c".to_vec(), b"3".to_vec())],
            "{kind}: seek past a"
        );
        // A range delete over a flushed key and one in the memtable, end excluded.
        engine.put(b"b", b"2").expect("put");
        engine.put(b"d", b"4").expect("put");
        engine.delete_range(b"b", b"d").expect("delete_range");
        for round in ["before", "after"] {
            for (key, found) in [
                (&b"a"[..], true),
                (b"b", false),
                (b"c", false),
                (b"d", true),
            ] {
                assert_eq!(
                    engine.get(key, &mut value).expect("get"),
                    found,
                    "{kind}: {key:?} after delete_range, {round} a full compaction"
                );
            }
            engine.compact().expect("compact");
        }
        engine.close().expect("close");
    }
}

#[test]
fn keyspace_adapters_keep_keyspaces_apart_and_batch_across_them() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for kind in EngineKind::ALL
        .into_iter()
        .filter(|kind| kind.has_keyspaces())
    {
        let options = EngineOptions {
            write_buffer: 1 << 20,
            ..EngineOptions::default()
        };
        let engine = kind
            .open_keyspaces(&dir.path().join(kind.name()), options, 3)
            .expect("open");
        engine.put(0, b"k", b"zero").expect("put");
        engine
            .write_batch(&[(1, b"k", b"one"), (2, b"j", b"two")])
            .expect("batch");
        let mut value = Vec::new();
        for round in ["memtables", "tables"] {
            for (keyspace, key, found) in [
                (0, &b"k"[..], Some(&b"zero"[..])),
                (1, b"k", Some(b"one")),
                (2, b"j", Some(b"two")),
                (2, b"k", None),
                (0, b"j", None),
            ] {
                let hit = engine.get(keyspace, key, &mut value).expect("get");
                assert_eq!(
                    hit.then_some(value.as_slice()),
                    found,
                    "{kind}, {round}: keyspace {keyspace}"
                );
            }
            engine.flush().expect("flush");
        }
        engine.close().expect("close");
    }
    assert!(!EngineKind::RocksDb.has_keyspaces());
}

#[test]
fn names_round_trip_and_thread_overrides_apply_to_parallel_workloads() {
    for workload in Workload::ALL {
        assert_eq!(
            workload.name().parse::<Workload>().expect("parses"),
            workload
        );
    }
    assert!("fillrandomly".parse::<Workload>().is_err());
    assert_eq!(
        "fjall".parse::<EngineKind>().expect("parses"),
        EngineKind::Fjall
    );
    assert!("leveldb".parse::<EngineKind>().is_err());
    assert_eq!(
        "rocksdb".parse::<EngineKind>().is_ok(),
        cfg!(feature = "rocksdb")
    );

    let mut options = DbBenchOptions::default();
    assert_eq!(options.threads_for(Workload::Overwrite), [1, 2, 4]);
    assert_eq!(options.threads_for(Workload::FillSync), [1, 4]);
    assert_eq!(options.threads_for(Workload::ReadSeq), [1]);
    options.threads = Some(vec![3]);
    assert_eq!(options.threads_for(Workload::ReadRandom), [3]);
    assert_eq!(options.threads_for(Workload::FillSeq), [1]);
}

#[test]
fn a_wrong_configuration_is_refused() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (mut config, options) = tiny(dir.path());
    config.key_size = 4;
    assert!(run(&config, &options).is_err());
    let (config, mut options) = tiny(dir.path());
    options.workloads.clear();
    assert!(run(&config, &options).is_err());
    // A transaction's counter takes 8 bytes of the value.
    let (mut config, mut options) = tiny(dir.path());
    config.value_size = 4;
    options.workloads = vec![Workload::Transactions];
    assert!(run(&config, &options).is_err());
}

#[test]
fn the_kernel_counts_the_bytes_a_synced_file_writes() {
    let Some(before) = super::disk_write_bytes() else {
        // Not Linux, or /proc/self/io is hidden: the write_amp note is simply left out.
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("written");
    let mut file = std::fs::File::create(&path).expect("a file");
    std::io::Write::write_all(&mut file, &vec![7u8; 1 << 20]).expect("written");
    file.sync_all().expect("synced");
    let after = super::disk_write_bytes().expect("still readable");
    // tmpfs does not count page dirtying (nothing goes to storage); elsewhere the
    // megabyte must show up.
    let on_tmpfs = std::fs::read_to_string("/proc/self/mounts").is_ok_and(|mounts| {
        mounts
            .lines()
            .any(|line| line.split(' ').nth(1) == Some("/tmp") && line.contains(" tmpfs "))
    });
    if !on_tmpfs || !dir.path().starts_with("/tmp") {
        assert!(
            after - before >= 1 << 20,
            "only {} bytes counted",
            after - before
        );
    }
}
