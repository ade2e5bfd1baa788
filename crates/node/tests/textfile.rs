//! The textfile collector with good and bad files side by side: one bad file is reported
//! through `node_textfile_scrape_error` and the log, and never hides the others.

#![allow(clippy::unwrap_used)]

mod support;

use support::Running;

fn start(dir: &std::path::Path) -> Running {
    Running::kiln(&[
        "--collector.disable-defaults".into(),
        "--collector.textfile".into(),
        format!("--collector.textfile.directory={}", dir.display()),
    ])
}

#[test]
fn bad_files_are_skipped_and_reported_while_good_ones_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "good.prom",
        "# HELP job_runs_total Runs.\n# TYPE job_runs_total counter\njob_runs_total{job=\"etl\"} 7\n",
    );
    write(
        "also_good.prom",
        "# TYPE job_runs_total counter\njob_runs_total{job=\"backup\",host=\"a\"} 3\nrole_info{role=\"gpu\"} 1\n",
    );
    write("broken.prom", "job_runs_total{job=\"x\" 1\n");
    write("timestamps.prom", "stamped_metric 1 1700000000000\n");
    write(
        "zz_duplicate.prom",
        "# TYPE job_runs_total counter\njob_runs_total{job=\"etl\"} 99\n",
    );
    write("ignored.txt", "not_a_prom_file 1\n");

    let exporter = start(dir.path());
    let body = exporter.scrape();
    let parsed = kiln_scraper::parse(&body).unwrap();

    assert_eq!(parsed.value("node_textfile_scrape_error", &[]), Some(1.0));
    // Files are read in name order; the first value of a duplicated series wins, and a
    // label some series lack is "".
    assert_eq!(
        parsed.value("job_runs_total", &[("job", "etl"), ("host", "")]),
        Some(7.0)
    );
    assert_eq!(
        parsed.value("job_runs_total", &[("job", "backup"), ("host", "a")]),
        Some(3.0)
    );
    assert_eq!(parsed.value("role_info", &[("role", "gpu")]), Some(1.0));
    assert_eq!(
        parsed.family("job_runs_total").unwrap().help.as_deref(),
        Some("Runs.")
    );
    let role_help = parsed
        .family("role_info")
        .unwrap()
        .help
        .as_deref()
        .unwrap()
        .to_owned();
    assert!(
        role_help.starts_with("Metric read from ") && role_help.ends_with("also_good.prom"),
        "{role_help}"
    );
    assert!(parsed.family("stamped_metric").is_none());
    assert!(parsed.family("not_a_prom_file").is_none());

    let mtimes: Vec<&str> = parsed
        .family("node_textfile_mtime_seconds")
        .unwrap()
        .samples
        .iter()
        .filter_map(|s| s.label("file"))
        .map(|f| f.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(mtimes, ["also_good.prom", "good.prom"]);

    // Once the bad files are fixed or removed, the error clears.
    for name in ["broken.prom", "timestamps.prom", "zz_duplicate.prom"] {
        std::fs::remove_file(dir.path().join(name)).unwrap();
    }
    let parsed_text = exporter.scrape();
    let parsed = kiln_scraper::parse(&parsed_text).unwrap();
    assert_eq!(parsed.value("node_textfile_scrape_error", &[]), Some(0.0));
}

#[test]
fn a_missing_directory_is_an_error_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not-yet");
    let exporter = start(&missing);
    let parsed_text = exporter.scrape();
    let parsed = kiln_scraper::parse(&parsed_text).unwrap();
    assert_eq!(parsed.value("node_textfile_scrape_error", &[]), Some(1.0));
    assert_eq!(
        parsed.value(
            "node_scrape_collector_success",
            &[("collector", "textfile")]
        ),
        Some(1.0)
    );
    // Created later: read without a restart.
    std::fs::create_dir(&missing).unwrap();
    std::fs::write(missing.join("late.prom"), "late_metric 5\n").unwrap();
    let parsed_text = exporter.scrape();
    let parsed = kiln_scraper::parse(&parsed_text).unwrap();
    assert_eq!(parsed.value("late_metric", &[]), Some(5.0));
    assert_eq!(parsed.value("node_textfile_scrape_error", &[]), Some(0.0));
}
