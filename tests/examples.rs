//! Runs every program in `examples/` (cargo builds them before the tests), so an example a
//! user copies is known to work. The streams examples run as a user runs them: on a data
//! directory (stopped with SIGTERM, output read from the log) and against a broker.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sluice::prelude::*;

mod common;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<test-binary> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target profile dir");
    profile_dir.join("examples").join(name)
}

// The log_basics example: a group resumes after reopen, reading each record exactly once.
#[test]
fn log_basics() {
    let path = example("log_basics");
    assert!(
        path.exists(),
        "{} not built; run through cargo test",
        path.display()
    );
    let out = Command::new(&path).output().expect("run example");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("first poll: 10 records"), "{stdout}");
    assert!(stdout.contains("total: 30"), "{stdout}");
}

// ---- The streams examples, run for real: a data directory or a broker, SIGTERM, check. ----

/// The first event time of the sample page views: a minute boundary, so windows are
/// `[BASE + k min, BASE + (k + 1) min)`.
const BASE_MS: i64 = 28_333_334 * 60_000;
const MINUTE_MS: i64 = 60_000;
/// Most run -> SIGTERM -> check rounds before a test gives up on its expected output.
const ROUNDS_MAX: usize = 10;
/// How long each round lets the example run before SIGTERM.
const ROUND_RUN: Duration = Duration::from_millis(1500);

fn page_view(user: &str, page: &str, ts: i64) -> String {
    format!(r#"{{"user":"{user}","page":"{page}","ts":{ts}}}"#)
}

/// Page views covering the windowed count's cases: two windows, a record within the
/// grace period (counted), one after it (dropped as late), and a final view ten minutes
/// on whose stream time closes both windows (its own window stays open).
fn sample_page_views() -> Vec<String> {
    let at = |s: i64| BASE_MS + s * 1000;
    vec![
        page_view("alice", "/home", at(1)),
        page_view("bob", "/docs", at(5)),
        page_view("carol", "/home", at(20)),
        page_view("alice", "/docs", at(40)),
        page_view("bob", "/home", at(58)),
        page_view("carol", "/home", at(65)),
        // Window 0 ended at 60 s but its grace lasts until 70 s: still counted.
        page_view("dave", "/docs", at(59)),
        page_view("alice", "/pricing", at(75)),
        // Stream time is 75 s: window 0 is closed, this view is late and dropped.
        page_view("erin", "/home", at(30)),
        page_view("bob", "/pricing", at(100)),
        page_view("zed", "/sentinel", at(600)),
    ]
}

/// What `pageviews` must emit for [`sample_page_views`], sorted.
fn expected_page_counts() -> Vec<(String, serde_json::Value)> {
    let row = |page: &str, window: i64, count: i64| {
        let start = BASE_MS + window * MINUTE_MS;
        let value = serde_json::json!({
            "page": page, "window_start": start, "window_end": start + MINUTE_MS, "count": count,
        });
        (page.to_string(), value)
    };
    let mut want = vec![
        row("/docs", 0, 3),
        row("/home", 0, 3),
        row("/home", 1, 1),
        row("/pricing", 1, 2),
    ];
    want.sort_by_key(|(k, v)| (k.clone(), v.to_string()));
    want
}

/// Page views of three users: alice has two sessions (a 35-minute gap splits them), bob
/// one; a view a day later closes them all (its own session stays open).
fn sample_session_views() -> Vec<String> {
    let at = |m: i64| BASE_MS + m * MINUTE_MS;
    vec![
        page_view("alice", "/home", at(0)),
        page_view("bob", "/docs", at(5)),
        page_view("alice", "/docs", at(10)),
        page_view("bob", "/pricing", at(20)),
        page_view("alice", "/pricing", at(35)),
        page_view("alice", "/home", at(70)),
        page_view("zed", "/sentinel", at(24 * 60)),
    ]
}

/// What `sessions` must emit for [`sample_session_views`], sorted.
fn expected_sessions() -> Vec<(String, serde_json::Value)> {
    let row = |user: &str, start_min: i64, end_min: i64, views: i64| {
        let value = serde_json::json!({
            "user": user,
            "session_start": BASE_MS + start_min * MINUTE_MS,
            "session_end": BASE_MS + end_min * MINUTE_MS,
            "views": views,
        });
        (user.to_string(), value)
    };
    let mut want = vec![
        row("alice", 0, 35, 3),
        row("alice", 70, 70, 1),
        row("bob", 5, 20, 2),
    ];
    want.sort_by_key(|(k, v)| (k.clone(), v.to_string()));
    want
}

/// Creates `topic` (one partition) in the log at `dir` and appends `values` to it.
fn produce_to_dir(dir: &Path, topic: &str, values: &[String]) {
    let log = Log::open(dir).expect("open log");
    log.ensure_topic(NewTopic::new(topic, 1))
        .expect("create topic");
    let producer = log.producer(ProducerConfig::default()).expect("producer");
    for v in values {
        producer
            .send(ProducerRecord::to(topic).value(v.clone()))
            .expect("send");
    }
    producer.flush().expect("flush");
    drop(producer);
    log.close().expect("close log");
}

/// Every (key, value) of `topic` in the log at `dir`, in partition then offset order;
/// empty if the topic does not exist yet.
fn read_topic(dir: &Path, topic: &str) -> Vec<(String, String)> {
    let log = Log::open(dir).expect("open log");
    let mut out = Vec::new();
    if let Ok(partitions) = log.partition_count(topic) {
        let mut consumer = log.consumer(ConsumerConfig::default().enable_auto_commit(false));
        let tps: Vec<TopicPartition> = (0..partitions)
            .map(|p| TopicPartition::new(topic, p))
            .collect();
        consumer.assign(tps.clone()).expect("assign");
        for tp in &tps {
            consumer.seek(tp, Seek::Beginning).expect("seek");
        }
        loop {
            let batch = consumer.poll(Duration::from_millis(100)).expect("poll");
            if batch.is_empty() {
                break;
            }
            for r in batch {
                let text = |b: Option<bytes::Bytes>| {
                    String::from_utf8_lossy(&b.unwrap_or_default()).into_owned()
                };
                out.push((text(r.key), text(r.value)));
            }
        }
    }
    log.close().expect("close log");
    out
}

/// Parses JSON values and sorts, for comparison with an expected set.
fn sorted_json(records: &[(String, String)]) -> Vec<(String, serde_json::Value)> {
    let mut rows: Vec<(String, serde_json::Value)> = records
        .iter()
        .map(|(k, v)| {
            let value = serde_json::from_str(v).unwrap_or_else(|e| panic!("{v}: {e}"));
            (k.clone(), value)
        })
        .collect();
    rows.sort_by_key(|(k, v)| (k.clone(), v.to_string()));
    rows
}

/// A running example; killed if the test fails before it stops.
struct Running {
    child: Child,
    name: String,
    /// Its stderr, collected by a thread that keeps draining the pipe.
    stderr: Arc<Mutex<String>>,
}

impl Running {
    /// Starts `name` with `args` and waits until it says it is running, so the SIGTERM
    /// that ends it meets its signal handler.
    fn start(name: &str, args: &[String]) -> Self {
        let path = example(name);
        assert!(
            path.exists(),
            "{} not built; run through cargo test",
            path.display()
        );
        let mut child = Command::new(&path)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start example");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if line.contains("stops it") {
                    let _ = tx.send(());
                }
                let mut s = sink.lock().expect("stderr lock");
                s.push_str(&line);
                s.push('\n');
            }
        });
        let running = Running {
            child,
            name: name.to_string(),
            stderr,
        };
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            panic!(
                "{name} did not start:\n{}",
                running.stderr.lock().expect("stderr lock")
            );
        }
        // The handler is registered right after the line; let it be.
        std::thread::sleep(Duration::from_millis(200));
        running
    }

    /// Sends SIGTERM and asserts a clean exit (status 0) within 30 s.
    fn stop(mut self) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on a child this test started and has not reaped yet.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill {pid}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop on SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // Let the drain thread read the last lines.
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            self.name,
            self.stderr.lock().expect("stderr lock")
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `name` on the data directory `data` in rounds (run, SIGTERM, read `output`) until
/// `done` accepts what `output` holds; returns that. Each round resumes from the offsets
/// the previous one committed, so a slow machine takes more rounds, not a failure.
fn run_until(
    name: &str,
    data: &Path,
    extra: &[&str],
    output: &str,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let state = data.with_extension("state");
    let mut args = vec![
        "--data-dir".to_string(),
        data.display().to_string(),
        "--state-dir".into(),
        state.display().to_string(),
        "--commit-interval-ms".into(),
        "100".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut records = Vec::new();
    for _ in 0..ROUNDS_MAX {
        let running = Running::start(name, &args);
        std::thread::sleep(ROUND_RUN);
        running.stop();
        records = read_topic(data, output);
        if done(&records) {
            return records;
        }
    }
    panic!("{name}: output incomplete after {ROUNDS_MAX} rounds: {records:?}");
}

// The wordcount example counts the words of lines already in the log, writing each
// count as decimal text, and a restart with new lines continues the counts.
#[test]
fn wordcount_on_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    produce_to_dir(&data, "text-input", &["the cat and the hat".into()]);
    let latest = |records: &[(String, String)]| -> BTreeMap<String, String> {
        records.iter().cloned().collect()
    };
    let want = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let first = want(&[("the", "2"), ("cat", "1"), ("and", "1"), ("hat", "1")]);
    run_until("wordcount", &data, &[], "word-counts", |r| {
        latest(r) == first
    });
    produce_to_dir(&data, "text-input", &["The Hat".into()]);
    let second = want(&[("the", "3"), ("cat", "1"), ("and", "1"), ("hat", "2")]);
    run_until("wordcount", &data, &[], "word-counts", |r| {
        latest(r) == second
    });
}

// The pageviews example emits one count per page and closed 1-minute window, honouring
// the grace period and dropping the late view.
#[test]
fn pageviews_on_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    produce_to_dir(&data, "pageviews", &sample_page_views());
    let want = expected_page_counts();
    let idle = ["--idle-timeout-ms", "1000"];
    let got = run_until("pageviews", &data, &idle, "pageview-counts", |r| {
        r.len() >= want.len()
    });
    assert_eq!(sorted_json(&got), want);
}

// The sessions example emits each user's sessions once they close.
#[test]
fn sessions_on_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    produce_to_dir(&data, "pageviews", &sample_session_views());
    let want = expected_sessions();
    let got = run_until("sessions", &data, &[], "user-sessions", |r| {
        r.len() >= want.len()
    });
    assert_eq!(sorted_json(&got), want);
}

/// A `sluice serve` child on a free port; killed on drop.
struct Broker {
    _served: common::Served,
    addr: String,
}

impl Broker {
    fn start(data: &Path) -> Self {
        let dir = data.parent().unwrap_or(data);
        let served = common::serve(dir, &["--data-dir", &data.display().to_string(), "--no-pg"]);
        let addr = served.kafka.clone();
        Broker {
            _served: served,
            addr,
        }
    }

    /// Runs the `sluice` CLI against this broker; asserts success.
    fn cli(&self, args: &[&str], stdin: &str) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .args(["--bootstrap", &self.addr])
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
        let out = child.wait_with_output().expect("wait for sluice");
        assert!(
            out.status.success(),
            "sluice {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Reads partition 0 of `topic` from the start until `n` records arrived or `max` passed.
fn read_from_broker(addr: &str, topic: &str, n: usize, max: Duration) -> Vec<(String, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "examples-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("rdkafka consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + max;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        if let Some(msg) = consumer.poll(Duration::from_millis(200)) {
            let msg = msg.expect("consume");
            let text =
                |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
            out.push((text(msg.key()), text(msg.payload())));
        }
    }
    out
}

// The pageviews example against a `sluice serve` broker: input produced and output read
// over the Kafka protocol, same results as on a data directory.
#[test]
fn pageviews_over_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("broker"));
    broker.cli(&["topics", "create", "pageviews", "--partitions", "1"], "");
    broker.cli(&["produce", "pageviews"], &sample_page_views().join("\n"));
    let state = dir.path().join("state");
    let args: Vec<String> = [
        "--bootstrap",
        &broker.addr,
        "--state-dir",
        &state.display().to_string(),
        "--commit-interval-ms",
        "100",
        "--idle-timeout-ms",
        "1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let running = Running::start("pageviews", &args);
    let want = expected_page_counts();
    let got = read_from_broker(
        &broker.addr,
        "pageview-counts",
        want.len(),
        Duration::from_secs(60),
    );
    running.stop();
    assert_eq!(sorted_json(&got), want);
}
