//! The pipeline runtime on the real embedded log, with in-test sources and sinks whose
//! behaviour (bad rows, outside failures, stored offsets) each test controls. The
//! connectors of real systems have their own tests; these pin the runtime's contracts:
//! positions, exactly-once writes into topics, commits only after the sink accepts,
//! on_error, retries, schema entries, tombstones and routing.

#![allow(clippy::unwrap_used)] // test helpers may unwrap: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, BooleanArray, Int64Array, RecordBatch, StringArray};
use async_trait::async_trait;
use parking_lot::Mutex;
use sluice_connectors::registry::Extensions;
use sluice_connectors::runtime::{POSITIONS_TOPIC, Pipeline, RunOptions, read_positions};
use sluice_connectors::schema::parse_schema;
use sluice_connectors::{
    Error, Offsets, PipelineFile, Poll, Position, Reject, Result, Settings, Sink, SinkBatch,
    SinkContext, SinkOp, Source, SourceBatch,
};
use sluice_core::{ConsumerConfig, IsolationLevel, Log, Seek, TopicPartition};
use tokio::sync::watch;

/// What an in-test source does.
#[derive(Clone, Default)]
struct Plan {
    rows: i64,
    /// Rows with these ids are reported as rejects instead of rows.
    bad: Vec<i64>,
    /// Rows with these ids are tombstones.
    deleted: Vec<i64>,
    /// Fail with an outside error on these poll numbers (1-based, counted across opens).
    unavailable_on: Vec<usize>,
    /// Fail for good on this poll number.
    fatal_on: Option<usize>,
}

struct MemSource {
    plan: Plan,
    next: i64,
    polls: Arc<Mutex<usize>>,
    opened_at: Arc<Mutex<Vec<Option<Position>>>>,
}

#[async_trait]
impl Source for MemSource {
    async fn check(&mut self) -> Vec<String> {
        Vec::new()
    }

    async fn open(&mut self, position: Option<Position>) -> Result<()> {
        self.opened_at.lock().push(position.clone());
        self.next = position.and_then(|p| p["next"].as_i64()).unwrap_or(0);
        Ok(())
    }

    async fn poll(&mut self, max_rows: usize) -> Result<Poll> {
        let n = {
            let mut polls = self.polls.lock();
            *polls += 1;
            *polls
        };
        if self.plan.unavailable_on.contains(&n) {
            return Err(Error::unavailable("memory", "injected outage"));
        }
        if self.plan.fatal_on == Some(n) {
            return Err(Error::connector("mem", "injected failure"));
        }
        if self.next >= self.plan.rows {
            return Ok(Poll::Done);
        }
        let end = (self.next + max_rows as i64).min(self.plan.rows);
        let mut ids = Vec::new();
        let mut rejects = Vec::new();
        for id in self.next..end {
            if self.plan.bad.contains(&id) {
                rejects.push(Reject {
                    position: format!("mem:{id}"),
                    bytes: format!("bad {id}").into_bytes(),
                    error: format!("row {id} is bad"),
                });
            } else {
                ids.push(id);
            }
        }
        let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
        let region: Vec<&str> = ids
            .iter()
            .map(|i| if i % 2 == 0 { "even" } else { "odd" })
            .collect();
        let rows = RecordBatch::try_new(
            parse_schema("id BIGINT NOT NULL, name VARCHAR, region VARCHAR").unwrap(),
            vec![
                Arc::new(Int64Array::from(ids.clone())),
                Arc::new(StringArray::from(names)),
                Arc::new(StringArray::from(region)),
            ],
        )
        .unwrap();
        self.next = end;
        let mut batch = SourceBatch::new(rows, serde_json::json!({ "next": end }));
        batch.rejects = rejects;
        batch.default_key = vec!["id".into()];
        if !self.plan.deleted.is_empty() {
            batch.tombstones = Some(BooleanArray::from(
                ids.iter()
                    .map(|i| self.plan.deleted.contains(i))
                    .collect::<Vec<_>>(),
            ));
        }
        Ok(Poll::Batch(batch))
    }
}

/// What an in-test sink saw and committed.
#[derive(Default)]
struct SinkState {
    /// Upserted ids (committed), in order; deletes as negative ids.
    committed: Vec<i64>,
    /// Written since the last commit.
    pending: Vec<i64>,
    /// Offsets stored with the data (exactly-once mode).
    offsets: Option<Offsets>,
    context: Option<SinkContext>,
    /// Fail the next N commits with an outside error.
    fail_commits: usize,
    commits: usize,
}

struct MemSink {
    state: Arc<Mutex<SinkState>>,
    exactly_once: bool,
}

#[async_trait]
impl Sink for MemSink {
    async fn check(&mut self) -> Vec<String> {
        Vec::new()
    }

    async fn open(&mut self, context: &SinkContext) -> Result<Option<Offsets>> {
        let mut state = self.state.lock();
        state.pending.clear();
        state.context = Some(context.clone());
        Ok(if self.exactly_once {
            state.offsets.clone()
        } else {
            None
        })
    }

    async fn write(&mut self, batch: SinkBatch) -> Result<()> {
        let mut state = self.state.lock();
        for op in &batch.ops {
            let ids = op
                .rows()
                .column_by_name("id")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone();
            for id in ids.values() {
                state.pending.push(match op {
                    SinkOp::Upsert(_) => *id,
                    SinkOp::Delete(_) => -id,
                });
            }
        }
        Ok(())
    }

    async fn commit(&mut self, offsets: &Offsets, _closing: bool) -> Result<bool> {
        let mut state = self.state.lock();
        state.commits += 1;
        if state.fail_commits > 0 {
            state.fail_commits -= 1;
            state.pending.clear();
            return Err(Error::unavailable("memory sink", "injected commit failure"));
        }
        let pending = std::mem::take(&mut state.pending);
        state.committed.extend(pending);
        state.offsets = Some(offsets.clone());
        Ok(true)
    }
}

struct Harness {
    plan: Plan,
    polls: Arc<Mutex<usize>>,
    opened_at: Arc<Mutex<Vec<Option<Position>>>>,
    sink: Arc<Mutex<SinkState>>,
    exactly_once: bool,
}

impl Harness {
    fn new(plan: Plan) -> Harness {
        Harness {
            plan,
            polls: Default::default(),
            opened_at: Default::default(),
            sink: Default::default(),
            exactly_once: true,
        }
    }

    fn extensions(&self) -> Extensions {
        let (plan, polls, opened_at) = (
            self.plan.clone(),
            self.polls.clone(),
            self.opened_at.clone(),
        );
        let (sink, exactly_once) = (self.sink.clone(), self.exactly_once);
        Extensions::new()
            .source("mem", move |_s: &Settings| {
                Ok(Box::new(MemSource {
                    plan: plan.clone(),
                    next: 0,
                    polls: polls.clone(),
                    opened_at: opened_at.clone(),
                }) as Box<dyn Source>)
            })
            .sink("mem", move |_s: &Settings| {
                Ok(Box::new(MemSink {
                    state: sink.clone(),
                    exactly_once,
                }) as Box<dyn Sink>)
            })
    }

    async fn run(&self, log: &Log, text: &str) -> Result<()> {
        self.run_file(log, PipelineFile::parse("test.toml", text, &|_| None)?)
            .await
    }

    async fn run_file(&self, log: &Log, file: PipelineFile) -> Result<()> {
        let pipeline = Pipeline::with_extensions(file, log.clone(), &self.extensions())?;
        let (_tx, rx) = watch::channel(false);
        tokio::time::timeout(
            Duration::from_secs(60),
            pipeline.run(RunOptions { once: true }, rx),
        )
        .await
        .expect("the pipeline finishes")
    }
}

const PIPELINE: &str = r#"
[pipeline]
name = "t"
commit_interval_ms = 50
retry_timeout_ms = 20000

[[source]]
name = "src"
type = "mem"
topic = "numbers"
batch_rows = 7
# A transaction per batch, so tests can name the batches a failure keeps.
transaction_interval_ms = 0

[[sink]]
name = "dst"
type = "mem"
topics = ["numbers"]
"#;

/// Every committed record of a topic: (key, value) as strings.
fn topic_records(log: &Log, topic: &str) -> Vec<(Option<String>, Option<String>)> {
    let mut consumer =
        log.consumer(ConsumerConfig::default().isolation_level(IsolationLevel::ReadCommitted));
    let parts = log.partition_count(topic).unwrap();
    let tps: Vec<_> = (0..parts).map(|p| TopicPartition::new(topic, p)).collect();
    consumer.assign(tps.clone()).unwrap();
    consumer.seek_all(Seek::Beginning).unwrap();
    let mut out = Vec::new();
    for _ in 0..20 {
        for r in consumer.poll(Duration::from_millis(50)).unwrap() {
            let s = |b: Option<bytes::Bytes>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
            out.push((s(r.key), s(r.value)));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_flow_from_source_through_the_topic_to_the_sink_exactly_once() {
    // Proves: a bounded pipeline runs to the end on its own, every row reaches the topic
    // once (keyed by the default key, JSON values) and the sink once, and the sink learns
    // the source's schema and key from the topic's schema entry.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let h = Harness::new(Plan {
        rows: 50,
        ..Default::default()
    });
    h.run(&log, PIPELINE).await.unwrap();
    let records = topic_records(&log, "numbers");
    assert_eq!(records.len(), 50);
    assert_eq!(
        records[3],
        (
            Some(r#"{"id":3}"#.into()),
            Some(r#"{"id":3,"name":"n3","region":"odd"}"#.into())
        )
    );
    let entry = sluice_connectors::runtime::read_schema_entry(&log, "numbers").unwrap();
    assert_eq!(entry.map(|e| e.key), Some(vec!["id".to_string()]));
    let sink = h.sink.lock();
    assert_eq!(sink.committed, (0..50).collect::<Vec<_>>());
    let context = sink.context.clone().unwrap();
    assert_eq!(context.key, vec!["id".to_string()]);
    assert_eq!(
        sluice_connectors::schema::format_schema(&context.schema),
        "id BIGINT NOT NULL, name VARCHAR, region VARCHAR"
    );
    let positions = read_positions(&log).unwrap();
    assert_eq!(
        positions["t/src"].position,
        serde_json::json!({ "next": 50 })
    );
    assert_eq!(positions["t/src"].records, 50);
    let group = log.group_offsets("sluice-connect.t.dst");
    assert_eq!(
        group[&("numbers".to_string(), 0)].offset,
        log.partition("numbers", 0).unwrap().log_end_offset()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_pipeline_resumes_from_the_stored_position_and_offsets() {
    // Proves: a second run opens the source at the stored position and the sink at its
    // stored offsets: nothing is written to the topic or the sink twice.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let h = Harness::new(Plan {
        rows: 30,
        ..Default::default()
    });
    h.run(&log, PIPELINE).await.unwrap();
    h.run(&log, PIPELINE).await.unwrap();
    assert_eq!(
        h.opened_at.lock().last().unwrap(),
        &Some(serde_json::json!({ "next": 30 }))
    );
    assert_eq!(topic_records(&log, "numbers").len(), 30);
    assert_eq!(h.sink.lock().committed, (0..30).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_source_leaves_exactly_its_committed_batches() {
    // Proves: when a source fails for good, the pipeline stops with its error, the topic
    // holds exactly the batches committed before, and a rerun continues after them.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let h = Harness::new(Plan {
        rows: 40,
        fatal_on: Some(4),
        ..Default::default()
    });
    let err = h.run(&log, PIPELINE).await.unwrap_err().to_string();
    assert!(err.contains("injected failure"), "{err}");
    assert_eq!(
        topic_records(&log, "numbers").len(),
        21,
        "three batches of 7"
    );
    let again = Harness::new(Plan {
        rows: 40,
        ..Default::default()
    });
    again.run(&log, PIPELINE).await.unwrap();
    assert_eq!(
        again.opened_at.lock()[0],
        Some(serde_json::json!({ "next": 21 }))
    );
    let ids: Vec<String> = topic_records(&log, "numbers")
        .into_iter()
        .map(|(k, _)| k.unwrap())
        .collect();
    let expected: Vec<String> = (0..40).map(|i| format!("{{\"id\":{i}}}")).collect();
    assert_eq!(ids, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_read_back_to_back_share_one_transaction() {
    // Proves: within transaction_interval_ms a source's batches go in one transaction with
    // one position (a bulk load does not pay a commit per batch), and a failure aborts the
    // whole open transaction: the rerun starts from the last committed position and every
    // row ends up in the topic once.
    let shared = PIPELINE.replace(
        "transaction_interval_ms = 0",
        "transaction_interval_ms = 60000",
    );
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let h = Harness::new(Plan {
        rows: 40,
        ..Default::default()
    });
    h.run(&log, &shared).await.unwrap();
    assert_eq!(topic_records(&log, "numbers").len(), 40);
    assert_eq!(
        topic_records(&log, POSITIONS_TOPIC).len(),
        1,
        "six batches, one commit"
    );

    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let failing = Harness::new(Plan {
        rows: 40,
        fatal_on: Some(4),
        ..Default::default()
    });
    let err = failing.run(&log, &shared).await.unwrap_err().to_string();
    assert!(err.contains("injected failure"), "{err}");
    assert_eq!(
        topic_records(&log, "numbers").len(),
        0,
        "nothing was committed"
    );
    let again = Harness::new(Plan {
        rows: 40,
        ..Default::default()
    });
    again.run(&log, &shared).await.unwrap();
    assert_eq!(again.opened_at.lock()[0], None);
    let ids: Vec<String> = topic_records(&log, "numbers")
        .into_iter()
        .map(|(k, _)| k.unwrap())
        .collect();
    let expected: Vec<String> = (0..40).map(|i| format!("{{\"id\":{i}}}")).collect();
    assert_eq!(ids, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_failures_are_retried_from_the_last_position() {
    // Proves: an unavailable source is reopened at its last committed position after a
    // backoff, and a sink whose commit fails is reopened and fed again from its committed
    // offsets: the end result has every row once.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let h = Harness::new(Plan {
        rows: 35,
        unavailable_on: vec![2, 3],
        ..Default::default()
    });
    h.sink.lock().fail_commits = 1;
    h.run(&log, PIPELINE).await.unwrap();
    let opened = h.opened_at.lock().clone();
    assert_eq!(
        opened.len(),
        3,
        "opened, then reopened after each outage: {opened:?}"
    );
    assert_eq!(opened[1], Some(serde_json::json!({ "next": 7 })));
    assert_eq!(topic_records(&log, "numbers").len(), 35);
    let sink = h.sink.lock();
    assert_eq!(sink.committed, (0..35).collect::<Vec<_>>());
    assert!(sink.commits >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_failures_past_the_retry_timeout_fail_the_pipeline() {
    // Proves: retries are bounded: an outage longer than retry_timeout_ms fails loudly.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let h = Harness::new(Plan {
        rows: 10,
        unavailable_on: (1..1000).collect(),
        ..Default::default()
    });
    let text = PIPELINE.replace("retry_timeout_ms = 20000", "retry_timeout_ms = 300");
    let err = h.run(&log, &text).await.unwrap_err().to_string();
    assert!(
        err.contains("still failing") && err.contains("injected outage"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_fail_skip_or_go_to_the_dead_letter_topic() {
    // Proves: on_error = fail stops naming the bad record's position; skip drops it and
    // goes on; dead_letter writes its original bytes with the error and position headers.
    let plan = Plan {
        rows: 20,
        bad: vec![4, 15],
        ..Default::default()
    };
    for (policy, expect_rows) in [
        ("fail", None),
        ("skip", Some(18)),
        ("dead_letter", Some(18)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path()).unwrap();
        let h = Harness::new(plan.clone());
        let text = PIPELINE.replace(
            "name = \"t\"",
            &format!("name = \"t\"\non_error = \"{policy}\""),
        );
        let result = h.run(&log, &text).await;
        match expect_rows {
            None => {
                let err = result.unwrap_err().to_string();
                assert!(
                    err.contains("mem:4")
                        && err.contains("row 4 is bad")
                        && err.contains("on_error"),
                    "{err}"
                );
                assert!(
                    topic_records(&log, "numbers").is_empty(),
                    "the failing batch is not written"
                );
            }
            Some(n) => {
                result.unwrap();
                assert_eq!(topic_records(&log, "numbers").len(), n, "{policy}");
            }
        }
        if policy == "dead_letter" {
            let mut consumer = log
                .consumer(ConsumerConfig::default().isolation_level(IsolationLevel::ReadCommitted));
            let tp = TopicPartition::new("t.dead-letter", 0);
            consumer.assign(vec![tp.clone()]).unwrap();
            consumer.seek(&tp, Seek::Beginning).unwrap();
            let dead = consumer.poll(Duration::from_millis(200)).unwrap();
            assert_eq!(dead.len(), 2);
            assert_eq!(dead[0].value.as_deref(), Some(&b"bad 4"[..]));
            let header = |name: &str| {
                dead[0]
                    .headers
                    .iter()
                    .find(|h| h.key == name)
                    .and_then(|h| h.value.clone())
                    .map(|v| String::from_utf8_lossy(&v).into_owned())
            };
            assert_eq!(header("sluice.position").as_deref(), Some("mem:4"));
            assert_eq!(header("sluice.error").as_deref(), Some("row 4 is bad"));
            assert_eq!(header("sluice.connector").as_deref(), Some("src"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_reach_the_sink_as_deletes_in_order() {
    // Proves: a row a source marks as a tombstone is written as the row then a key-only
    // record, and reaches the sink as an upsert then a Delete run holding the key columns,
    // in offset order with the other upserts.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let h = Harness::new(Plan {
        rows: 6,
        deleted: vec![2, 3],
        ..Default::default()
    });
    h.run(&log, PIPELINE).await.unwrap();
    let records = topic_records(&log, "numbers");
    assert_eq!(records[3], (Some(r#"{"id":2}"#.into()), None));
    assert_eq!(h.sink.lock().committed, vec![0, 1, 2, -2, 3, -3, 4, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_without_a_key_is_a_bad_record_named_by_its_offset() {
    // Proves: a tombstone that carries no key (written by some other producer) names no
    // row to delete: it goes to on_error as itself, at its own offset, while the records
    // around it (an upsert, a keyed tombstone) still reach the sink in order.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    log.ensure_topic(sluice_core::NewTopic::new("raw", 1))
        .unwrap();
    let producer = log
        .producer(sluice_core::ProducerConfig::default())
        .unwrap();
    let to = || sluice_core::ProducerRecord::to("raw").partition(0);
    producer
        .send(to().key(r#"{"id":1}"#).value(r#"{"id":1}"#))
        .unwrap();
    producer.send(to().key(r#"{"id":1}"#)).unwrap();
    producer.send(to()).unwrap();
    producer
        .send(to().key(r#"{"id":3}"#).value(r#"{"id":3}"#))
        .unwrap();
    producer.flush().unwrap();
    let h = Harness::new(Plan::default());
    let text = r#"
[pipeline]
name = "k"
commit_interval_ms = 50
on_error = "dead_letter"

[[sink]]
name = "dst"
type = "mem"
topics = ["raw"]
schema = "id BIGINT"
key = ["id"]
"#;
    h.run(&log, text).await.unwrap();
    assert_eq!(h.sink.lock().committed, vec![1, -1, 3]);
    let mut consumer =
        log.consumer(ConsumerConfig::default().isolation_level(IsolationLevel::ReadCommitted));
    let tp = TopicPartition::new("k.dead-letter", 0);
    consumer.assign(vec![tp.clone()]).unwrap();
    consumer.seek(&tp, Seek::Beginning).unwrap();
    let dead = consumer.poll(Duration::from_millis(200)).unwrap();
    assert_eq!(dead.len(), 1);
    let position = dead[0]
        .headers
        .iter()
        .find(|h| h.key == "sluice.position")
        .and_then(|h| h.value.clone());
    assert_eq!(position.as_deref(), Some(&b"raw/0@2"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_and_sink_transforms_shape_what_arrives() {
    // Proves: a source's route transform splits rows across topics by a field, and a
    // sink's filter transform drops rows before the sink sees them.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let h = Harness::new(Plan {
        rows: 10,
        ..Default::default()
    });
    let text = r#"
[pipeline]
name = "r"
commit_interval_ms = 50

[[source]]
name = "src"
type = "mem"
topic = "unused"

[[source.transform]]
type = "route"
topic = "numbers.{region}"

[[sink]]
name = "dst"
type = "mem"
topics = ["numbers.even"]
schema = "id BIGINT, name VARCHAR, region VARCHAR"

[[sink.transform]]
type = "filter"
condition = "id >= 4"
"#;
    // The sink's topic is made by the route: create it first so the sink can start.
    log.ensure_topic(sluice_core::NewTopic::new("numbers.even", 1))
        .unwrap();
    h.run(&log, text).await.unwrap();
    assert_eq!(topic_records(&log, "numbers.odd").len(), 5);
    assert_eq!(topic_records(&log, "numbers.even").len(), 5);
    assert_eq!(h.sink.lock().committed, vec![4, 6, 8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problems_are_reported_together_with_their_lines() {
    // Proves: a pipeline file with several mistakes reports all of them, each with the
    // line it came from, before anything runs.
    let text = r#"[pipeline]
name = "bad"

[[source]]
name = "a"
type = "nosuch"
topic = "x"
value_format = "xml"

[[sink]]
name = "a"
type = "mem"
topics = ["x"]
start = "middle"
schema = "id LONG"
"#;
    let err = PipelineFile::parse("bad.toml", text, &|_| None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("bad.toml:8: file \"a\"") || err.contains("bad.toml:8:"),
        "{err}"
    );
    assert!(err.contains("value_format `xml`"), "{err}");
    assert!(
        err.contains("bad.toml:14:") && err.contains("start is"),
        "{err}"
    );
    assert!(
        err.contains("bad.toml:15:") && err.contains("unknown type `LONG`"),
        "{err}"
    );
    assert!(
        err.contains("another source or sink has this name"),
        "{err}"
    );
    let ok = PipelineFile::parse(
        "ok.toml",
        &text
            .replace("\"xml\"", "\"json\"")
            .replace("middle", "latest")
            .replace("LONG", "BIGINT")
            .replace(
                "name = \"a\"\ntype = \"mem\"",
                "name = \"b\"\ntype = \"mem\"",
            ),
        &|_| None,
    )
    .unwrap();
    let err = Pipeline::new(ok, Log::open(tempfile::tempdir().unwrap().path()).unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("ok.toml:6:") && err.contains("unknown source type `nosuch`"),
        "{err}"
    );
    assert!(err.contains("unknown sink type `mem`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yaml_pipeline_runs_and_reports_like_its_toml_form() {
    // Proves: PIPELINE spelled in YAML runs the same (every row once in the topic and in
    // the sink, positions stored under the same names), and a problem only a connector's
    // factory finds (it never learns the file's syntax) lands on the YAML line of its key.
    let yaml = r#"pipeline:
  name: t
  commit_interval_ms: 50
source:
  - name: src
    type: mem
    topic: numbers
    batch_rows: 7
sink:
  - name: dst
    type: mem
    topics: [numbers]
"#;
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let h = Harness::new(Plan {
        rows: 20,
        ..Default::default()
    });
    let file = PipelineFile::parse_yaml("test.yaml", yaml, &|_| None).unwrap();
    h.run_file(&log, file).await.unwrap();
    assert_eq!(topic_records(&log, "numbers").len(), 20);
    assert_eq!(h.sink.lock().committed, (0..20).collect::<Vec<_>>());
    assert_eq!(read_positions(&log).unwrap()["t/src"].records, 20);

    let typo = yaml.replace(
        "    type: mem\n    topic",
        "    type: file\n    pathh: x\n    topic",
    );
    let file = PipelineFile::parse_yaml("typo.yaml", &typo, &|_| None).unwrap();
    let err = Pipeline::new(file, log.clone()).err().unwrap().to_string();
    assert!(
        err.contains("typo.yaml:7: source \"src\": unknown field `pathh`"),
        "{err}"
    );
}
