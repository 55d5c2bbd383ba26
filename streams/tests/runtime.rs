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
// appears once in the committed output.
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
