//! Black-box tests of the `sluice` binary: the README's quickstart and the topics /
//! produce / consume commands, as a user runs them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn sluice(dir: &Path, args: &[&str]) -> Output {
    sluice_with_stdin(dir, args, "")
}

fn sluice_with_stdin(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .env_remove("SLUICE_DATA_DIR")
        .env_remove("SLUICE_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sluice");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for sluice")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "sluice failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, got success: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// The README's first command must work on a fresh directory and when run again.
#[test]
fn quickstart_runs_and_reruns() {
    let dir = tempfile::tempdir().unwrap();
    let first = ok(&sluice(dir.path(), &["quickstart", "--records", "2000"]));
    assert!(first.contains("created (3 partitions)"), "{first}");
    assert!(first.contains("consumed 2000 records back"), "{first}");
    assert!(
        dir.path()
            .join("sluice-data/topics/quickstart-pageviews")
            .is_dir()
    );
    let second = ok(&sluice(dir.path(), &["quickstart", "--records", "1000"]));
    assert!(second.contains("already there"), "{second}");
    assert!(second.contains("consumed 1000 records back"), "{second}");
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
    let d = dir.path();
    let out = ok(&sluice(
        d,
        &[
            "topics",
            "create",
            "orders",
            "--partitions",
            "4",
            "--config",
            "retention.ms=1000",
        ],
    ));
    assert!(
        out.contains("Created topic orders with 4 partition(s)"),
        "{out}"
    );
    assert_eq!(ok(&sluice(d, &["topics", "list"])).trim(), "orders");
    assert!(
        ok(&sluice(d, &["topics", "list", "--include-internal"])).contains("__consumer_offsets")
    );
    let described = ok(&sluice(d, &["topics", "describe", "orders"]));
    assert!(described.contains("Partitions: 4"), "{described}");
    assert!(described.contains("retention.ms=1000 (set)"), "{described}");

    let err = failed(&sluice(d, &["topics", "create", "orders"]));
    assert!(err.contains("already exists"), "{err}");
    ok(&sluice(
        d,
        &["topics", "create", "orders", "--if-not-exists"],
    ));
    let err = failed(&sluice(
        d,
        &["topics", "create", "x", "--config", "retention.mss=5"],
    ));
    assert!(err.contains("retention.mss"), "{err}");
    let err = failed(&sluice(d, &["topics", "create", "bad name"]));
    assert!(err.contains("invalid topic name"), "{err}");

    ok(&sluice(d, &["topics", "delete", "orders"]));
    assert_eq!(ok(&sluice(d, &["topics", "list"])).trim(), "");
    let err = failed(&sluice(d, &["topics", "describe", "orders"]));
    assert!(err.contains("unknown topic 'orders'"), "{err}");
}

// produce reads stdin lines; consume prints them back with each start option.
#[test]
fn produce_and_consume() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&sluice(d, &["topics", "create", "t", "--partitions", "1"]));
    let out = sluice_with_stdin(
        d,
        &["produce", "t", "--key-separator", ":"],
        "a:1\nb:2\r\nc:3\n",
    );
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Produced 3 record(s)"));

    let all = ok(&sluice(
        d,
        &["consume", "t", "--from-beginning", "--timeout-ms", "300"],
    ));
    assert_eq!(all, "1\n2\n3\n");
    let kv = ok(&sluice(
        d,
        &[
            "consume",
            "t",
            "--from-beginning",
            "--max-records",
            "2",
            "--format",
            "key-value",
        ],
    ));
    assert_eq!(kv, "a\t1\nb\t2\n");
    let from_offset = ok(&sluice(
        d,
        &["consume", "t", "--offset", "1", "--timeout-ms", "200"],
    ));
    assert_eq!(from_offset, "2\n3\n");
    let json = ok(&sluice(
        d,
        &[
            "consume",
            "t",
            "--from-beginning",
            "--max-records",
            "1",
            "--format",
            "json",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["key"], "a");
    assert_eq!(v["offset"], 0);
    let future = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 60_000)
        .to_string();
    let none = ok(&sluice(
        d,
        &[
            "consume",
            "t",
            "--from-timestamp",
            &future,
            "--timeout-ms",
            "200",
        ],
    ));
    assert_eq!(none, "");
    let past = ok(&sluice(
        d,
        &[
            "consume",
            "t",
            "--from-timestamp",
            "0",
            "--timeout-ms",
            "200",
        ],
    ));
    assert_eq!(past, "1\n2\n3\n");
    // Without a start flag, only new records: none arrive, so nothing is printed.
    assert_eq!(ok(&sluice(d, &["consume", "t", "--timeout-ms", "200"])), "");

    // A group resumes after what it printed.
    let first = ok(&sluice(
        d,
        &[
            "consume",
            "t",
            "--group",
            "g",
            "--from-beginning",
            "--max-records",
            "2",
        ],
    ));
    assert_eq!(first, "1\n2\n");
    let rest = ok(&sluice(
        d,
        &["consume", "t", "--group", "g", "--timeout-ms", "300"],
    ));
    assert_eq!(rest, "3\n");

    // A line without the separator stops produce with its line number; earlier lines stay.
    let out = sluice_with_stdin(d, &["produce", "t", "--key-separator", ":"], "d:4\nnokey\n");
    let err = failed(&out);
    assert!(err.contains("line 2 has no key separator"), "{err}");
    let tail = ok(&sluice(
        d,
        &["consume", "t", "--offset", "3", "--timeout-ms", "200"],
    ));
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
