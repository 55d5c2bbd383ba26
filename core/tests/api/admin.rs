//! Topic administration (create, list, describe, alter, delete) and per-topic settings
//! such as `message.timestamp.type`.

use std::collections::BTreeMap;

use sluice_core::{
    ConsumerConfig, Error, Log, NewTopic, ProducerConfig, ProducerRecord, Seek, TopicPartition,
};

use crate::common::{append, first_after, open, poll_n, read_all, record};

#[test]
fn topic_admin_create_list_describe_alter_delete() {
    // Guards against the admin API accepting bad names or unknown settings, losing config
    // changes across reopen, a deleted-then-recreated topic resurrecting old data or old
    // commits, and two `Log`s writing one directory at once.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    assert_eq!(log.list_topics(), vec!["__consumer_offsets".to_string()]);

    log.create_topic(NewTopic::new("orders", 3).config("retention.ms", "1234"))
        .unwrap();
    log.create_topic(NewTopic::new("a.b_c-d", 1)).unwrap();
    assert!(
        log.ensure_topic(NewTopic::new("orders", 3))
            .is_ok_and(|created| !created)
    );
    assert_eq!(
        log.list_topics(),
        vec!["__consumer_offsets", "a.b_c-d", "orders"]
    );
    let d = log.describe_topic("orders").unwrap();
    assert_eq!(d.name, "orders");
    assert_eq!(d.partitions.len(), 3);
    assert!(
        d.partitions
            .iter()
            .all(|p| p.log_end_offset == 0 && p.log_start_offset == 0)
    );
    assert_eq!(
        d.overrides.get("retention.ms").map(String::as_str),
        Some("1234")
    );
    assert_eq!(d.config["retention.ms"], "1234");
    assert_eq!(d.config["cleanup.policy"], "delete");
    assert_eq!(log.partition_count("orders").unwrap(), 3);
    let offsets = log.describe_topic("__consumer_offsets").unwrap();
    assert_eq!(offsets.config["cleanup.policy"], "compact");

    assert!(matches!(
        log.create_topic(NewTopic::new("orders", 1)),
        Err(Error::TopicExists { .. })
    ));
    for bad in [
        "",
        ".",
        "..",
        "has space",
        "slash/name",
        "ünï",
        &"x".repeat(250),
    ] {
        match log.create_topic(NewTopic::new(bad, 1)) {
            Err(Error::InvalidTopicName { name, .. }) => assert_eq!(name, bad),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(matches!(
        log.create_topic(NewTopic::new("zero", 0)),
        Err(Error::InvalidArgument(_))
    ));
    let err = log
        .create_topic(NewTopic::new("typo", 1).config("retention.mss", "5"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }));
    assert!(err.to_string().contains("retention.mss"), "{err}");
    for (key, value) in [
        ("segment.bytes", "10"),
        ("retention.ms", "-7"),
        ("cleanup.policy", "shred"),
        ("message.timestamp.type", "Whenever"),
        ("max.message.bytes", "lots"),
    ] {
        let err = log
            .create_topic(NewTopic::new("bad-value", 1).config(key, value))
            .unwrap_err();
        assert!(err.to_string().contains(key), "{key}: {err}");
    }
    assert!(!log.list_topics().contains(&"typo".to_string()));
    assert!(!log.list_topics().contains(&"bad-value".to_string()));
    assert!(!dir.path().join("topics/typo").exists());

    // Alter: validated first, nothing changes on error.
    let mut overrides = BTreeMap::new();
    overrides.insert("retention.ms".to_string(), "999".to_string());
    overrides.insert("segment.bytes".to_string(), "4096".to_string());
    log.alter_topic_config("orders", overrides.clone()).unwrap();
    let mut wrong = overrides.clone();
    wrong.insert("segment.bytez".to_string(), "1".to_string());
    let err = log.alter_topic_config("orders", wrong).unwrap_err();
    assert!(err.to_string().contains("segment.bytez"), "{err}");
    assert!(matches!(
        log.alter_topic_config("missing", overrides.clone()),
        Err(Error::UnknownTopic { .. })
    ));
    let d = log.describe_topic("orders").unwrap();
    assert_eq!(d.overrides, overrides);
    assert_eq!(d.config["retention.ms"], "999");
    assert_eq!(d.config["segment.bytes"], "4096");

    // Only one Log per directory.
    let err = Log::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("already open"), "{err}");

    // Delete, then recreate: empty again, and the group's old commits are gone.
    append(&log, "orders", 1, &[record(0, 1, Some("k"), Some("v"))]);
    log.commit_offsets("g", &[("orders".to_string(), 1, 1)])
        .unwrap();
    assert!(log.committed_offset("g", "orders", 1).is_some());
    log.delete_topic("orders").unwrap();
    assert!(!log.list_topics().contains(&"orders".to_string()));
    assert!(matches!(
        log.describe_topic("orders"),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(matches!(
        log.read("orders", 1, 0, 10),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(matches!(
        log.delete_topic("orders"),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(log.committed_offset("g", "orders", 1).is_none());
    log.create_topic(NewTopic::new("orders", 2)).unwrap();
    let d = log.describe_topic("orders").unwrap();
    assert_eq!(d.partitions.len(), 2);
    assert!(
        d.partitions
            .iter()
            .all(|p| p.log_end_offset == 0 && p.size_bytes == 0)
    );
    assert!(d.overrides.is_empty());
    assert!(log.read("orders", 1, 0, 10).unwrap().records.is_empty());
    assert!(log.committed_offset("g", "orders", 1).is_none());

    // Everything persists across a reopen.
    log.close().unwrap();
    drop(log);
    let log = open(dir.path());
    assert_eq!(
        log.list_topics(),
        vec!["__consumer_offsets", "a.b_c-d", "orders"]
    );
    assert_eq!(log.partition_count("orders").unwrap(), 2);
    assert!(log.committed_offset("g", "orders", 1).is_none());
    log.alter_topic_config("a.b_c-d", overrides.clone())
        .unwrap();
    log.close().unwrap();
    drop(log);
    let log = open(dir.path());
    assert_eq!(
        log.describe_topic("a.b_c-d").unwrap().config["retention.ms"],
        "999"
    );
}

#[test]
fn log_append_time_topics_report_append_time() {
    // Guards against a LogAppendTime topic serving the producer's timestamps instead of the
    // time the log appended the batch (in deliveries, reads and time seeks).
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(NewTopic::new("lat", 1).config("message.timestamp.type", "LogAppendTime"))
        .unwrap();
    let before = sluice_core::now_ms();
    let info = append(
        &log,
        "lat",
        0,
        &[
            record(0, 42, Some("k"), Some("v")),
            record(1, 43, None, Some("w")),
        ],
    );
    let after = sluice_core::now_ms();
    let stamped = info.log_append_time.unwrap();
    assert!((before..=after).contains(&stamped));
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let meta = producer
        .send_and_wait(ProducerRecord::to("lat").value("x").timestamp(7))
        .unwrap();
    assert!(meta.timestamp >= stamped && meta.timestamp <= sluice_core::now_ms());

    let records = read_all(&log, "lat", 0);
    assert_eq!(records[0].timestamp, stamped);
    assert_eq!(records[1].timestamp, stamped);
    assert_eq!(records[2].timestamp, meta.timestamp);
    let tp = TopicPartition::new("lat", 0);
    let mut c = log.consumer(ConsumerConfig::default());
    c.assign(vec![tp.clone()]).unwrap();
    let got = poll_n(&mut c, 3);
    assert!(got.iter().all(|r| r.timestamp >= before));
    // Time seeks use the append time: 42 is before everything.
    assert_eq!(first_after(&mut c, &tp, Seek::Timestamp(42)), Some(0));
    assert_eq!(
        first_after(&mut c, &tp, Seek::Timestamp(meta.timestamp)),
        Some(2).filter(|_| meta.timestamp > stamped).or(Some(0))
    );
}

#[test]
fn create_partitions_grows_a_topic_durably() {
    // Guards against adding partitions losing or moving existing data, letting a topic
    // shrink, new partitions ignoring the topic's overrides, the new count being forgotten
    // on reopen, and a leftover empty partition directory (a crash before `topic.json` was
    // rewritten) blocking the next attempt.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(NewTopic::new("grow", 1).config("max.message.bytes", "200"))
        .unwrap();
    append(&log, "grow", 0, &[record(0, 1, Some("k"), Some("v"))]);

    for not_more in [1, 0, -3] {
        match log.create_partitions("grow", not_more) {
            Err(Error::PartitionCountNotIncreased {
                current: 1,
                requested,
                ..
            }) => assert_eq!(requested, not_more),
            other => panic!("{not_more}: {other:?}"),
        }
    }
    assert!(matches!(
        log.create_partitions("missing", 4),
        Err(Error::UnknownTopic { .. })
    ));

    std::fs::create_dir_all(dir.path().join("topics/grow/1")).unwrap();
    log.create_partitions("grow", 4).unwrap();
    assert_eq!(log.partition_count("grow").unwrap(), 4);
    let d = log.describe_topic("grow").unwrap();
    assert_eq!(d.partitions.len(), 4);
    assert_eq!(d.partitions[0].log_end_offset, 1);
    assert!(d.partitions[1..].iter().all(|p| p.log_end_offset == 0));
    append(&log, "grow", 3, &[record(0, 2, None, Some("p3"))]);
    let big = "x".repeat(300);
    let mut too_big = sluice_core::record::encode_batch(
        &[record(0, 3, None, Some(&big))],
        sluice_core::Compression::None,
        sluice_core::record::ProducerStamp::default(),
    )
    .unwrap();
    assert!(matches!(
        log.append("grow", 2, &mut too_big),
        Err(Error::InvalidBatch { .. })
    ));
    let err = log.create_partitions("grow", 4).unwrap_err();
    assert!(err.to_string().contains("has 4 partitions"), "{err}");

    // Altering the config afterwards keeps every partition.
    log.alter_topic_config("grow", BTreeMap::new()).unwrap();
    assert_eq!(log.partition_count("grow").unwrap(), 4);

    log.close().unwrap();
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.partition_count("grow").unwrap(), 4);
    assert_eq!(read_all(&log, "grow", 0).len(), 1);
    assert_eq!(read_all(&log, "grow", 3).len(), 1);
    assert!(read_all(&log, "grow", 1).is_empty());
}
