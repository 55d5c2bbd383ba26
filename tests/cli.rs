//! Black-box tests of the `sluice` binary: the README's quickstart and the topics /
//! produce / consume commands, as a user runs them, against the embedded log and (with
//! `--bootstrap`) against a `sluice serve` child, which must print the same.

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;
use common::*;

/// Runs commands against one backend: the embedded log in a directory, or a broker.
struct Backend<'a> {
    dir: &'a Path,
    /// Appended to every command (`--bootstrap ADDR`, or nothing).
    extra: Vec<String>,
}

impl<'a> Backend<'a> {
    fn embedded(dir: &'a Path) -> Self {
        Backend { dir, extra: vec![] }
    }

    fn remote(dir: &'a Path, addr: &str) -> Self {
        Backend {
            dir,
            extra: vec!["--bootstrap".into(), addr.into()],
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(self.extra.iter().map(String::as_str));
        sluice_with_stdin(self.dir, &all, stdin)
    }
}

/// A `sluice serve` child over `data_dir` (Kafka only), stopped when dropped.
fn serve_broker(data_dir: &Path) -> Served {
    let dir = data_dir.parent().unwrap_or(data_dir);
    serve(
        dir,
        &["--data-dir", &data_dir.display().to_string(), "--no-pg"],
    )
}

// The README's first command must work on a fresh directory and when run again.
#[test]
fn quickstart_runs_and_reruns() {
    let dir = tempfile::tempdir().unwrap();
    let first = ok(&sluice(dir.path(), &["quickstart", "--records", "2000"]));
    assert!(first.contains("created (3 partitions)"), "{first}");
    assert!(first.contains("consumed 2000 records back"), "{first}");
    // The streaming job counted every page in each of the five sample windows, and the
    // quickstart says how to run it yourself.
    assert!(first.contains("30 page/window counts emitted"), "{first}");
    assert!(first.contains("window (UTC)"), "{first}");
    assert!(first.contains("--example pageviews"), "{first}");
    // Then SQL over the same topic: the six pages, 2,000 views in all, and how to go on.
    assert!(first.contains("table quickstart_pageviews"), "{first}");
    assert!(first.contains("| /docs/sql "), "{first}");
    assert!(first.contains("psql -h 127.0.0.1 -p 5433"), "{first}");
    assert!(
        dir.path()
            .join("sluice-data/topics/quickstart-pageviews")
            .is_dir()
    );
    let second = ok(&sluice(dir.path(), &["quickstart", "--records", "1000"]));
    assert!(second.contains("already there"), "{second}");
    assert!(second.contains("consumed 1000 records back"), "{second}");
    // The job resumes and finds this run's windows, none of them late.
    assert!(second.contains("30 page/window counts emitted"), "{second}");
    let topics = ok(&sluice(
        dir.path(),
        &[
            "topics",
            "describe",
            "quickstart-pageviews",
            "--format",
            "json",
        ],
    ));
    let d: serde_json::Value = serde_json::from_str(&topics).unwrap();
    let total: i64 = d["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["log_end_offset"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 3000);
}

// Topic administration through the CLI, including the errors a typo produces.
#[test]
fn topics_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    topics_lifecycle_in(&Backend::embedded(dir.path()));
}

// The same administration against `sluice serve` gives the same output and errors.
#[test]
fn topics_lifecycle_over_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let broker = serve_broker(&dir.path().join("broker-data"));
    topics_lifecycle_in(&Backend::remote(dir.path(), &broker.kafka));
}

fn topics_lifecycle_in(d: &Backend) {
    let out = ok(&d.run(&[
        "topics",
        "create",
        "orders",
        "--partitions",
        "4",
        "--config",
        "retention.ms=1000",
    ]));
    assert!(
        out.contains("Created topic orders with 4 partition(s)"),
        "{out}"
    );
    assert_eq!(ok(&d.run(&["topics", "list"])).trim(), "orders");
    assert!(ok(&d.run(&["topics", "list", "--include-internal"])).contains("__consumer_offsets"));
    let described = ok(&d.run(&["topics", "describe", "orders"]));
    assert!(described.contains("Partitions: 4"), "{described}");
    assert!(described.contains("retention.ms=1000 (set)"), "{described}");

    let err = failed(&d.run(&["topics", "create", "orders"]));
    assert!(err.contains("already exists"), "{err}");
    ok(&d.run(&["topics", "create", "orders", "--if-not-exists"]));
    let err = failed(&d.run(&["topics", "create", "x", "--config", "retention.mss=5"]));
    assert!(err.contains("retention.mss"), "{err}");
    let err = failed(&d.run(&["topics", "create", "bad name"]));
    assert!(err.contains("invalid topic name"), "{err}");

    ok(&d.run(&["topics", "delete", "orders"]));
    assert_eq!(ok(&d.run(&["topics", "list"])).trim(), "");
    let err = failed(&d.run(&["topics", "describe", "orders"]));
    assert!(err.contains("unknown topic 'orders'"), "{err}");
}

// produce reads stdin lines; consume prints them back with each start option.
#[test]
fn produce_and_consume() {
    let dir = tempfile::tempdir().unwrap();
    produce_and_consume_in(&Backend::embedded(dir.path()));
}

// The same records, start options, group commits and errors over `--bootstrap`.
#[test]
fn produce_and_consume_over_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let broker = serve_broker(&dir.path().join("broker-data"));
    produce_and_consume_in(&Backend::remote(dir.path(), &broker.kafka));
}

fn produce_and_consume_in(d: &Backend) {
    ok(&d.run(&["topics", "create", "t", "--partitions", "1"]));
    let out = d.run_with_stdin(
        &["produce", "t", "--key-separator", ":"],
        "a:1\nb:2\r\nc:3\n",
    );
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Produced 3 record(s)"));

    let all = ok(&d.run(&["consume", "t", "--from-beginning", "--timeout-ms", "300"]));
    assert_eq!(all, "1\n2\n3\n");
    let kv = ok(&d.run(&[
        "consume",
        "t",
        "--from-beginning",
        "--max-records",
        "2",
        "--format",
        "key-value",
    ]));
    assert_eq!(kv, "a\t1\nb\t2\n");
    let from_offset = ok(&d.run(&["consume", "t", "--offset", "1", "--timeout-ms", "200"]));
    assert_eq!(from_offset, "2\n3\n");
    let json = ok(&d.run(&[
        "consume",
        "t",
        "--from-beginning",
        "--max-records",
        "1",
        "--format",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON record");
    assert_eq!(v["key"], "a");
    assert_eq!(v["offset"], 0);
    let future = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis()
        + 60_000)
        .to_string();
    let none = ok(&d.run(&[
        "consume",
        "t",
        "--from-timestamp",
        &future,
        "--timeout-ms",
        "200",
    ]));
    assert_eq!(none, "");
    let past = ok(&d.run(&[
        "consume",
        "t",
        "--from-timestamp",
        "0",
        "--timeout-ms",
        "200",
    ]));
    assert_eq!(past, "1\n2\n3\n");
    // Without a start flag, only new records: none arrive, so nothing is printed.
    assert_eq!(ok(&d.run(&["consume", "t", "--timeout-ms", "200"])), "");

    // A group resumes after what it printed.
    let first = ok(&d.run(&[
        "consume",
        "t",
        "--group",
        "g",
        "--from-beginning",
        "--max-records",
        "2",
    ]));
    assert_eq!(first, "1\n2\n");
    let rest = ok(&d.run(&["consume", "t", "--group", "g", "--timeout-ms", "300"]));
    assert_eq!(rest, "3\n");

    // A line without the separator stops produce with its line number; earlier lines stay.
    let out = d.run_with_stdin(&["produce", "t", "--key-separator", ":"], "d:4\nnokey\n");
    let err = failed(&out);
    assert!(err.contains("line 2 has no key separator"), "{err}");
    let tail = ok(&d.run(&["consume", "t", "--offset", "3", "--timeout-ms", "200"]));
    assert_eq!(tail, "4\n");
}

// Bad settings stop the command with a message naming the setting.
#[test]
fn bad_settings_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("bad.toml"), "[log]\nsegment_bytes = 1\n").unwrap();
    let err = failed(&sluice(d, &["topics", "list", "--config-file", "bad.toml"]));
    assert!(err.contains("log.segment_bytes"), "{err}");
    std::fs::write(d.join("sluice.toml"), "[log]\ndurablity = \"sync\"\n").unwrap();
    let err = failed(&sluice(d, &["topics", "list"]));
    assert!(err.contains("durablity"), "{err}");
    std::fs::write(
        d.join("sluice.toml"),
        "data_dir = \"elsewhere\"\n[log]\ndurability = \"sync\"\n",
    )
    .unwrap();
    ok(&sluice(d, &["topics", "create", "x"]));
    assert!(d.join("elsewhere/topics/x").is_dir());
}

// Piping into a command that exits early (head) must not make sluice panic.
#[test]
fn broken_pipe_is_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&sluice(d, &["topics", "create", "t"]));
    let lines: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    ok(&sluice_with_stdin(d, &["produce", "t"], &lines));
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["consume", "t", "--from-beginning", "--timeout-ms", "500"])
        .current_dir(d)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// `bench produce` and `bench consume` run end to end against a broker and print the JSON
// keys scripts rely on (`records_per_s`, `mb_per_s`, `latency_ms.{p50,p99,p999}`).
#[test]
fn bench_produce_and_consume_report_json() {
    let dir = tempfile::tempdir().unwrap();
    let broker = serve_broker(&dir.path().join("broker-data"));
    let bench = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["bench"];
        all.extend_from_slice(args);
        all.extend(["--bootstrap", broker.kafka.as_str(), "--json"]);
        let out = ok(&sluice(dir.path(), &all));
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let check = |report: &serde_json::Value, records: u64| {
        assert_eq!(report["records"], records, "{report}");
        assert!(report["records_per_s"].as_f64().unwrap() > 0.0, "{report}");
        assert!(report["mb_per_s"].as_f64().unwrap() > 0.0, "{report}");
        for key in ["p50", "p99", "p999"] {
            assert!(
                report["latency_ms"][key].as_f64().unwrap() >= 0.0,
                "{key}: {report}"
            );
        }
    };
    // 640 records: unpaced runs stamp one in 64, so there are latency samples.
    let produced = bench(&["produce", "--records", "640", "--acks", "all"]);
    check(&produced, 640);
    assert_eq!(produced["config"]["client_api"], "batch");
    assert_eq!(produced["latency_ms"]["samples"], 10);
    // Several batch calls and a partial last one; then librdkafka's per-message call.
    let batched = bench(&["produce", "--topic", "b", "--records", "2500"]);
    check(&batched, 2500);
    assert_eq!(batched["latency_ms"]["samples"], 40);
    let per_message = bench(&[
        "produce",
        "--topic",
        "b",
        "--records",
        "640",
        "--client-api",
        "per-message",
    ]);
    check(&per_message, 640);
    assert_eq!(per_message["config"]["client_api"], "per-message");
    let consumed = bench(&["consume", "--records", "640"]);
    check(&consumed, 640);
    assert_eq!(consumed["latency_measures"], "record_age");
    assert_eq!(consumed["api"], "batch");
    // The per-message path reads the same records, with the same report.
    let polled = bench(&["consume", "--records", "640", "--api", "poll"]);
    check(&polled, 640);
    assert_eq!(polled["api"], "poll");
    assert_eq!(
        polled["latency_ms"]["samples"],
        consumed["latency_ms"]["samples"]
    );
    let end_to_end = bench(&[
        "consume",
        "--topic",
        "paced",
        "--partitions",
        "2",
        "--records",
        "200",
        "--produce-rate",
        "2000",
    ]);
    check(&end_to_end, 200);
    assert_eq!(end_to_end["latency_measures"], "produce_to_consume");
    assert_eq!(end_to_end["latency_ms"]["samples"], 200);
}

// `bench streams` runs both jobs over records in the embedded log and prints one JSON
// object with each job's throughput and per-core rate: the keys docs/benchmarks.md reports.
#[test]
fn bench_streams_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bench-data");
    let data = data.to_str().unwrap();
    let out = ok(&sluice(
        dir.path(),
        &[
            "bench",
            "streams",
            "--records",
            "2000",
            "--runs",
            "1",
            "--keys",
            "50",
            "--data-dir",
            data,
            "--json",
        ],
    ));
    let report: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    for job in ["stateless", "windowed"] {
        let r = &report["jobs"][job];
        for key in ["records_per_s", "records_per_core_s", "seconds"] {
            assert!(r[key].as_f64().unwrap() > 0.0, "{job}.{key}: {report}");
        }
        assert!(r["cpu_seconds"].as_f64().unwrap() >= 0.0, "{report}");
        assert!(r["target_met"].is_boolean(), "{report}");
        assert_eq!(r["runs"].as_array().unwrap().len(), 1, "{report}");
    }
    assert_eq!(report["config"]["records"], 2000);
    assert_eq!(report["config"]["store"], "memory");
}

// `bench sql` runs its queries over a small topic and prints the JSON report's keys; with
// the DuckDB reference (the Python package; required in CI), DuckDB answers the same
// query over the same records as a JSON file and the benchmark fails unless the answers
// agree, so this is also a check of Sluice's JSON scan against an independent engine.
#[test]
fn bench_sql_reports_json_and_agrees_with_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bench-data");
    let duckdb = std::process::Command::new("python3")
        .args(["-c", "import duckdb"])
        .status()
        .is_ok_and(|s| s.success());
    if !duckdb {
        assert!(
            std::env::var_os("SLUICE_REQUIRE_SERVICES").is_none(),
            "the DuckDB Python package is required: python3 -m pip install duckdb"
        );
        eprintln!("SKIPPING the DuckDB reference: python3 -m pip install duckdb to run it");
    }
    let out = ok(&sluice(
        dir.path(),
        &[
            "bench",
            "sql",
            "--records",
            "3000",
            "--partitions",
            "3",
            "--runs",
            "1",
            "--reference",
            if duckdb { "duckdb" } else { "none" },
            "--data-dir",
            data.to_str().unwrap(),
            "--json",
        ],
    ));
    let report: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["records"], 3000, "{report}");
    assert!(
        report["sluice"]["seconds"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        report["tail"]["speedup_over_full_scan"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    if duckdb {
        assert!(
            report["duckdb"]["seconds"].as_f64().unwrap() > 0.0,
            "{report}"
        );
        assert!(
            report["duckdb_seconds_over_sluice_seconds"]
                .as_f64()
                .is_some()
        );
    }
}

#[test]
fn bench_connect_reports_json_and_checks_every_output() {
    // Guards `sluice bench connect` end to end on a tiny run: both pipelines go through the
    // real runtime, the report keeps its keys, and every output was checked against what
    // the generator wrote (a wrong output fails the command, so success means it agreed).
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bench-data");
    let duckdb = std::process::Command::new("python3")
        .args(["-c", "import duckdb"])
        .status()
        .is_ok_and(|s| s.success());
    if !duckdb {
        assert!(
            std::env::var_os("SLUICE_REQUIRE_SERVICES").is_none(),
            "the DuckDB Python package is required: python3 -m pip install duckdb"
        );
        eprintln!("SKIPPING the DuckDB reference: python3 -m pip install duckdb to run it");
    }
    let out = ok(&sluice(
        dir.path(),
        &[
            "bench",
            "connect",
            "--rows",
            "3000",
            "--runs",
            "1",
            "--reference",
            if duckdb { "duckdb" } else { "none" },
            "--data-dir",
            data.to_str().unwrap(),
            "--json",
        ],
    ));
    let report: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["rows"], 3000, "{report}");
    assert_eq!(report["expected"]["distinct_ids"], 3000, "{report}");
    let parquet = &report["parquet"];
    assert!(
        parquet["sluice"]["seconds"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        parquet["direct"]["seconds"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        parquet["direct_seconds_over_sluice_seconds"]
            .as_f64()
            .unwrap()
            > 0.0,
        "{report}"
    );
    if duckdb {
        assert_eq!(parquet["outputs_checked"], true, "{report}");
        assert!(
            parquet["duckdb"]["seconds"].as_f64().unwrap() > 0.0,
            "{report}"
        );
        assert!(
            parquet["duckdb_seconds_over_sluice_seconds"]
                .as_f64()
                .unwrap()
                > 0.0,
            "{report}"
        );
        assert!(parquet["target_met"].is_boolean(), "{report}");
    }
    // Skipped only when PostgreSQL does not answer (and SLUICE_REQUIRE_SERVICES is unset:
    // with it, the command fails instead).
    let postgres = &report["postgres"];
    if postgres["skipped"].is_null() {
        assert_eq!(postgres["outputs_checked"], true, "{report}");
        assert!(
            postgres["sluice"]["seconds"].as_f64().unwrap() > 0.0,
            "{report}"
        );
        assert!(
            postgres["psql_copy"]["seconds"].as_f64().unwrap() > 0.0,
            "{report}"
        );
        assert!(
            postgres["sluice_rate_over_copy_rate"].as_f64().unwrap() > 0.0,
            "{report}"
        );
    } else {
        assert!(postgres["skipped"].is_string(), "{report}");
    }
}
