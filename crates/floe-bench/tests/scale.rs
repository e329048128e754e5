//! The `scale` suite end to end on a tiny database: the binary starts itself twice per
//! engine (floe and fjall), one child loading and closing, the other dropping the files
//! from the page cache, reopening, reading, seeking and running a short mixed phase, and
//! the parent prints the table and writes the JSON results and the mixed run's CSV and
//! chart. A correctness check of the plumbing, not a speed test.

use std::process::Command;

#[test]
fn the_scale_suite_runs_every_phase_on_floe_and_fjall() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let json = dir.path().join("out").join("results.json");
    let output = Command::new(env!("CARGO_BIN_EXE_floe-bench"))
        .args(["scale", "--keys", "2000", "--reads", "500", "--quiet"])
        .args(["--value-kind", "half", "--write-buffer", "64KiB"])
        .args(["--mixed-minutes", "0.03", "--cache-mb", "1"])
        .arg("--dir")
        .arg(dir.path().join("runs"))
        .arg("--json")
        .arg(&json)
        .output()
        .expect("the binary starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");

    assert!(
        stdout.contains("| metric | floe | fjall | floe/fjall |"),
        "{stdout}"
    );
    for row in [
        "| disk after clean close, MiB |",
        "| cold point reads, ops/s |",
        "| warm point reads, ops/s |",
        "| seek + 10 next, ops/s |",
        "| mixed: writes/s |",
        "| peak RssAnon, cold reads, MiB |",
        "| peak RssFile, mixed, MiB |",
    ] {
        let line = stdout
            .lines()
            .find(|line| line.starts_with(row))
            .unwrap_or_else(|| panic!("no row {row:?} in\n{stdout}"));
        assert!(!line.contains('–'), "a figure is missing: {line}");
    }

    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the JSON results")).expect("JSON");
    let measurements = results["measurements"].as_array().expect("measurements");
    for engine in ["floe", "fjall"] {
        for workload in [
            "scale/load",
            "scale/read-cold",
            "scale/read-warm",
            "scale/seek",
        ] {
            let m = measurements
                .iter()
                .find(|m| m["workload"] == workload && m["subject"] == engine)
                .unwrap_or_else(|| panic!("no {workload} for {engine}"));
            let ops = m["ops"].as_u64().expect("ops");
            let expected = if workload == "scale/load" { 2000 } else { 500 };
            assert_eq!(ops, expected, "{workload} on {engine}");
        }
    }
    assert_eq!(results["config"]["value_kind"], "half");
    let csv = std::fs::read_to_string(dir.path().join("out").join("results-mixed-rss.csv"))
        .expect("the mixed run's samples");
    assert!(csv.starts_with("engine,second,rss_anon_bytes"));
    assert!(csv.lines().any(|l| l.starts_with("floe,1,")), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("fjall,1,")), "{csv}");
    assert!(
        dir.path()
            .join("out")
            .join("results-mixed-rss.svg")
            .exists()
    );
    // Every child removed its database.
    let left = std::fs::read_dir(dir.path().join("runs"))
        .expect("listing")
        .count();
    assert_eq!(left, 0);
}
