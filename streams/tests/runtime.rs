//! The runtime on the embedded log: jobs run, commit, restart from their stores, share
//! work between instances and hand tasks over.

mod common;

use std::time::Duration;

use common::*;
use sluice_core::Log;
use sluice_streams::prelude::*;

const WAIT: Duration = Duration::from_secs(30);

fn config(app: &str, log: &Log, state: &std::path::Path) -> StreamsConfig {
    StreamsConfig::new(app)
        .log(log.clone())
        .state_dir(state)
        .commit_interval(Duration::from_millis(100))
}

// A job counts words at least once; after a restart it continues from its stores
// (persistent: from the checkpoint; in memory: from the changelog), so counts go on
// from where they were instead of starting over.
#[test]
fn wordcount_runs_and_resumes_after_restart() {
    for in_memory in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path().join("data")).unwrap();
        create(&log, "text-input", 2);
        let first = lines(200, 1);
        produce_lines(&log, "text-input", &first);
        let state = dir.path().join("state");
        let mut job = KafkaStreams::new(wordcount(in_memory), config("wc", &log, &state)).unwrap();
        job.start().unwrap();
        let want = expected_counts(&first);
        wait_for(WAIT, "first counts", || {
            latest(&read_counts(&log, "word-counts", false)) == want
        });
        assert_eq!(
            job.stats().processed,
            200 + 600,
            "input records plus repartitioned words"
        );
        job.close().unwrap();

        let second = lines(100, 2);
        produce_lines(&log, "text-input", &second);
        let mut job = KafkaStreams::new(wordcount(in_memory), config("wc", &log, &state)).unwrap();
        job.start().unwrap();
        let all: Vec<String> = first.iter().chain(&second).cloned().collect();
        let want = expected_counts(&all);
        wait_for(WAIT, "counts after restart", || {
            latest(&read_counts(&log, "word-counts", false)) == want
        });
        job.close().unwrap();
        // Internal topics exist with the input's partition count; the changelog is compacted.
        assert_eq!(log.partition_count("wc-words-repartition").unwrap(), 2);
        assert_eq!(log.partition_count("wc-counts-changelog").unwrap(), 2);
    }
}

// A missing input topic is a clear error naming it and saying how to create it.
#[test]
fn missing_input_topic_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path().join("data")).unwrap();
    let err =
        KafkaStreams::new(wordcount(true), config("wc", &log, &dir.path().join("s"))).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("'text-input' does not exist") && text.contains("sluice topics create"),
        "{text}"
    );
}

// Two instances of one application share the partitions through the consumer group;
// when one closes, the other takes its tasks over and, exactly-once, every count update
// appears once in the committed output (the record cache is off, so every update is
// emitted and a lost or repeated one shows).
#[test]
fn instances_share_work_and_take_over_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path().join("data")).unwrap();
    create(&log, "text-input", 4);
    let first = lines(400, 3);
    produce_lines(&log, "text-input", &first);
    let eos = |state: &str| {
        config("shared", &log, &dir.path().join(state))
            .processing_guarantee(ProcessingGuarantee::ExactlyOnce)
            .cache_max_bytes(0)
    };
    let mut a = KafkaStreams::new(wordcount(false), eos("a")).unwrap();
    let mut b = KafkaStreams::new(wordcount(false), eos("b")).unwrap();
    a.start().unwrap();
    b.start().unwrap();
    let want = expected_counts(&first);
    wait_for(WAIT, "counts from two instances", || {
        latest(&read_counts(&log, "word-counts", true)) == want
    });
    assert!(
        a.stats().processed > 0 && b.stats().processed > 0,
        "both instances worked: {:?} / {:?}",
        a.stats(),
        b.stats()
    );
    a.close().unwrap();

    let second = lines(200, 4);
    produce_lines(&log, "text-input", &second);
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    let want = expected_counts(&all);
    wait_for(WAIT, "counts after take-over", || {
        latest(&read_counts(&log, "word-counts", true)) == want
    });
    assert!(b.error().is_none(), "{:?}", b.error());
    b.close().unwrap();
    assert_exactly_once(&read_counts(&log, "word-counts", true));
}

/// Views per page per 10-second tumbling window, emitted once when a window closes; the
/// value is the count, the key `page@window_start`.
fn views_per_window() -> sluice_streams::Topology {
    let b = StreamsBuilder::new();
    b.stream("views", Consumed::with(Str, Str))
        .group_by(
            |_, page| page.clone(),
            Grouped::with(Str, Str).named("by-page"),
        )
        .windowed_by(TimeWindows::of(Duration::from_secs(10)).grace(Duration::from_secs(2)))
        .emit_strategy(EmitStrategy::OnWindowClose)
        .count_with(Materialized::named("views"))
        .to_stream()
        .map(|w, n| (format!("{}@{}", w.key, w.window.start), n))
        .to("view-counts", Produced::with(Str, I64));
    b.build().expect("views")
}

fn produce_views(log: &Log, views: &[(&str, i64)]) {
    let p = log
        .producer(sluice_core::ProducerConfig::default())
        .expect("views");
    for (page, ts) in views {
        p.send(
            sluice_core::ProducerRecord::to("views")
                .key("user")
                .value(page.to_string())
                .timestamp(*ts),
        )
        .expect("views");
    }
    p.flush().expect("views");
}

// Final window results are emitted once each, across a restart: the windowed store
// remembers the stream time of its last close, so a record for a window that closed
// before the restart is dropped as late instead of opening that window again.
#[test]
fn emit_final_windows_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path().join("data")).unwrap();
    create(&log, "views", 1);
    produce_views(
        &log,
        &[("/a", 1_000), ("/a", 2_000), ("/b", 5_000), ("/a", 13_000)],
    );
    let state = dir.path().join("state");
    let cfg = || config("pv", &log, &state).idle_timeout(None);
    let mut job = KafkaStreams::new(views_per_window(), cfg()).unwrap();
    job.start().unwrap();
    // Stream time 13 s is past the end of [0, 10 s) plus 2 s of grace: it closes.
    wait_for(WAIT, "the first window", || {
        read_counts(&log, "view-counts", false).len() == 2
    });
    job.close().unwrap();

    // Late for the closed window [0, 10 s), then enough to close [10 s, 20 s).
    produce_views(&log, &[("/a", 3_000), ("/a", 15_000), ("/a", 25_000)]);
    let mut job = KafkaStreams::new(views_per_window(), cfg()).unwrap();
    job.start().unwrap();
    wait_for(WAIT, "the second window", || {
        read_counts(&log, "view-counts", false).len() == 3
    });
    std::thread::sleep(Duration::from_millis(300));
    job.close().unwrap();
    let mut out = read_counts(&log, "view-counts", false);
    out.sort();
    assert_eq!(
        out,
        vec![
            ("/a@0".into(), 2),
            ("/a@10000".into(), 2),
            ("/b@0".into(), 1)
        ]
    );
}

// Two worker threads in one instance split the tasks and produce the same counts.
#[test]
fn several_worker_threads() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path().join("data")).unwrap();
    create(&log, "text-input", 4);
    let input = lines(300, 5);
    produce_lines(&log, "text-input", &input);
    let mut job = KafkaStreams::new(
        wordcount(false),
        config("threads", &log, &dir.path().join("state")).threads(2),
    )
    .unwrap();
    job.start().unwrap();
    let want = expected_counts(&input);
    wait_for(WAIT, "counts from two threads", || {
        latest(&read_counts(&log, "word-counts", false)) == want
    });
    job.close().unwrap();
}

// A record the job cannot deserialize stops it (with the default handler) with an error
// naming the topic, partition and offset; nothing after it is committed.
#[test]
fn undeserializable_record_stops_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path().join("data")).unwrap();
    create(&log, "numbers", 1);
    let p = log
        .producer(sluice_core::ProducerConfig::default())
        .unwrap();
    p.send(
        sluice_core::ProducerRecord::to("numbers")
            .key("a")
            .value(7i64.to_be_bytes().to_vec()),
    )
    .unwrap();
    p.send(
        sluice_core::ProducerRecord::to("numbers")
            .key("b")
            .value("seven"),
    )
    .unwrap();
    p.flush().unwrap();
    let b = StreamsBuilder::new();
    b.stream("numbers", Consumed::with(Str, I64))
        .to("doubled", Produced::with(Str, I64));
    let mut job = KafkaStreams::new(
        b.build().unwrap(),
        config("strict", &log, &dir.path().join("state")),
    )
    .unwrap();
    job.start().unwrap();
    wait_for(WAIT, "the job to stop", || !job.is_running());
    let err = job.close().unwrap_err().to_string();
    assert!(err.contains("numbers-0 offset 1"), "{err}");
    assert_eq!(
        log.committed_offset("strict", "numbers", 0)
            .map(|c| c.offset),
        None
    );
}

// Replaying a backlog spread over several partitions through a repartition topic: the
// thread processes its tasks in timestamp order and waits for partitions it knows have
// unread records, so the downstream windowed count's stream time does not run ahead of
// the slower partitions and nothing is dropped as late (with a grace of only 2 s over
// 5 minutes of backlog).
#[test]
fn backlog_over_partitions_is_not_dropped_as_late() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path().join("data")).unwrap();
    create(&log, "views", 3);
    let pages = ["/a", "/b", "/c", "/d", "/e"];
    let mut expected: std::collections::BTreeMap<String, i64> = Default::default();
    let p = log
        .producer(sluice_core::ProducerConfig::default())
        .unwrap();
    for i in 0..6_000i64 {
        let ts = i * 50; // 5 minutes of event time
        let page = pages[(i as usize * 7) % pages.len()];
        p.send(
            sluice_core::ProducerRecord::to("views")
                .key(format!("user-{}", i % 97))
                .value(page)
                .timestamp(ts),
        )
        .unwrap();
        *expected
            .entry(format!("{page}@{}", ts / 10_000 * 10_000))
            .or_insert(0) += 1;
    }
    // A view of every page an hour later closes every window (each page's count task
    // gets one).
    for page in pages {
        p.send(
            sluice_core::ProducerRecord::to("views")
                .key("closer")
                .value(page)
                .timestamp(3_600_000),
        )
        .unwrap();
    }
    p.flush().unwrap();
    let mut job = KafkaStreams::new(
        views_per_window(),
        config("backlog", &log, &dir.path().join("state")).idle_timeout(None),
    )
    .unwrap();
    job.start().unwrap();
    wait_for(WAIT, "every window", || {
        read_counts(&log, "view-counts", false).len() >= expected.len()
    });
    std::thread::sleep(Duration::from_millis(300));
    job.close().unwrap();
    let got: std::collections::BTreeMap<String, i64> = read_counts(&log, "view-counts", false)
        .into_iter()
        .collect();
    assert_eq!(got, expected);
}

// With the dead-letter handler, a record the job cannot read goes to the dead-letter
// topic (created at start) with its bytes and where it came from; the job goes on.
#[test]
fn dead_letter_topic_in_the_runtime() {
    let dir = tempfile::tempdir().expect("dir");
    let log = Log::open(dir.path().join("data")).expect("log");
    create(&log, "numbers", 1);
    let p = log
        .producer(sluice_core::ProducerConfig::default())
        .expect("producer");
    p.send(
        sluice_core::ProducerRecord::to("numbers")
            .key("b")
            .value("seven"),
    )
    .expect("send");
    p.send(
        sluice_core::ProducerRecord::to("numbers")
            .key("a")
            .value(7i64.to_be_bytes().to_vec()),
    )
    .expect("send");
    p.flush().expect("flush");
    let b = StreamsBuilder::new();
    b.stream("numbers", Consumed::with(Str, I64))
        .map_values(|v| v * 2)
        .to("doubled", Produced::with(Str, I64));
    let config = config("dlq", &log, &dir.path().join("state"))
        .deserialization_handler(DeserializationHandler::DeadLetter("numbers-dlq".into()));
    let mut job = KafkaStreams::new(b.build().expect("topology"), config).expect("job");
    job.start().expect("start");
    wait_for(WAIT, "the good record", || {
        read_counts(&log, "doubled", false) == vec![("a".to_string(), 14)]
    });
    job.close().expect("close");
    assert_eq!(job_stats_dead_lettered(&log), 1);
}

/// Records in `numbers-dlq`, checking the first one's provenance headers.
fn job_stats_dead_lettered(log: &Log) -> usize {
    let mut c = log.consumer(sluice_core::ConsumerConfig::default());
    c.assign(vec![sluice_core::TopicPartition::new("numbers-dlq", 0)])
        .expect("assign");
    let records = c.poll(Duration::from_secs(1)).expect("poll");
    let first = records.first().expect("a dead letter");
    assert_eq!(first.value.as_deref(), Some(&b"seven"[..]));
    let offset = first
        .headers
        .iter()
        .find(|h| h.key == "sluice.source.offset")
        .and_then(|h| h.value.clone());
    assert_eq!(offset.as_deref(), Some(&b"0"[..]));
    records.len()
}

// The record cache: with a long commit interval, 6,000 word counts processed before the
// first commit reach the output as one update per word (the latest), not one per record;
// with the cache off every update is sent. Guards the flush at commit (nothing held may
// be lost) and the coalescing itself, which is what makes aggregations cheap.
#[test]
fn record_cache_sends_each_key_once_per_commit() {
    for cache_bytes in [10 << 20, 0] {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path().join("data")).unwrap();
        create(&log, "text-input", 1);
        let input = lines(2_000, 5);
        produce_lines(&log, "text-input", &input);
        let config = config("cached", &log, &dir.path().join("state"))
            .commit_interval(Duration::from_secs(3600))
            .cache_max_bytes(cache_bytes);
        let mut job = KafkaStreams::new(wordcount(true), config).unwrap();
        job.start().unwrap();
        wait_for(WAIT, "every record processed", || {
            job.stats().processed == 2_000 + 6_000
        });
        // Closing commits, which flushes the cache.
        job.close().unwrap();
        let updates = read_counts(&log, "word-counts", false);
        let want = expected_counts(&input);
        assert_eq!(latest(&updates), want);
        if cache_bytes == 0 {
            assert_exactly_once(&updates);
        } else {
            assert_eq!(
                updates.len(),
                want.len(),
                "one update per word: {updates:?}"
            );
        }
    }
}

// What the job has committed of its repartition topic is deleted (Kafka's purge of
// repartition topics), so internal topics do not grow without bound; nothing uncommitted
// is, and the counts are unaffected.
#[test]
fn committed_repartition_records_are_purged() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path().join("data")).unwrap();
    create(&log, "text-input", 2);
    let input = lines(300, 6);
    produce_lines(&log, "text-input", &input);
    let config =
        config("purge", &log, &dir.path().join("state")).repartition_purge_interval(Duration::ZERO);
    let mut job = KafkaStreams::new(wordcount(true), config).unwrap();
    job.start().unwrap();
    let want = expected_counts(&input);
    wait_for(WAIT, "counts", || {
        latest(&read_counts(&log, "word-counts", false)) == want
    });
    let purged = |p: i32| {
        let start = log
            .partition("purge-words-repartition", p)
            .unwrap()
            .log_start_offset();
        let committed = log
            .committed_offset("purge", "purge-words-repartition", p)
            .map_or(0, |c| c.offset);
        (start, committed)
    };
    wait_for(WAIT, "the repartition topic purged", || {
        (0..2).all(|p| {
            let (start, committed) = purged(p);
            start > 0 && start <= committed
        })
    });
    job.close().unwrap();
    let total: i64 = (0..2)
        .map(|p| {
            log.partition("purge-words-repartition", p)
                .unwrap()
                .log_end_offset()
        })
        .sum();
    assert_eq!(total, 900, "every word went through the repartition topic");
}
