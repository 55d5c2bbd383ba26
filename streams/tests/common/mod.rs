//! Helpers shared by the runtime tests: a topology, producing input, reading output.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sluice_core::client::IsolationLevel;
use sluice_core::{
    ConsumerConfig, Log, NewTopic, ProducerConfig, ProducerRecord, Seek, TopicPartition,
};
use sluice_streams::Topology;
use sluice_streams::prelude::*;

/// Running word counts from `text-input` to `word-counts`, the count store named `counts`.
pub fn wordcount(in_memory: bool) -> Topology {
    wordcount_paced(in_memory, Duration::ZERO)
}

/// [`wordcount`], sleeping `pause` per input line (so a crash test can kill it mid-way).
pub fn wordcount_paced(in_memory: bool, pause: Duration) -> Topology {
    let b = StreamsBuilder::new();
    let store = if in_memory {
        Materialized::named("counts").in_memory()
    } else {
        Materialized::named("counts")
    };
    b.stream("text-input", Consumed::with(Unit, Str))
        .peek(move |_, _| {
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
        })
        .flat_map_values(|line: String| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .group_by(|_, w| w.clone(), Grouped::with(Str, Str).named("words"))
        .count_with(store)
        .to_stream()
        .to("word-counts", Produced::with(Str, I64));
    b.build().expect("topology")
}

/// Creates `topic` unless it exists.
pub fn create(log: &Log, topic: &str, partitions: i32) {
    log.ensure_topic(NewTopic::new(topic, partitions))
        .expect("create topic");
}

/// Writes `lines` to `topic`, keyed by line number.
pub fn produce_lines(log: &Log, topic: &str, lines: &[String]) {
    let p = log.producer(ProducerConfig::default()).expect("producer");
    for (i, l) in lines.iter().enumerate() {
        p.send(
            ProducerRecord::to(topic)
                .key(format!("line-{i}"))
                .value(l.clone()),
        )
        .expect("send");
    }
    p.flush().expect("flush");
}

/// Every (key, count) update in `topic`, in offset order per partition.
pub fn read_counts(log: &Log, topic: &str, committed: bool) -> Vec<(String, i64)> {
    let level = if committed {
        IsolationLevel::ReadCommitted
    } else {
        IsolationLevel::ReadUncommitted
    };
    let mut c = log.consumer(ConsumerConfig::default().isolation_level(level));
    let n = log.partition_count(topic).expect("partitions");
    let tps: Vec<TopicPartition> = (0..n).map(|p| TopicPartition::new(topic, p)).collect();
    c.assign(tps).expect("assign");
    c.seek_all(Seek::Beginning).expect("seek");
    let mut out = Vec::new();
    loop {
        let records = c.poll(Duration::from_millis(50)).expect("poll");
        if records.is_empty() {
            return out;
        }
        for r in records {
            let k = String::from_utf8(r.key.expect("key").to_vec()).expect("utf8");
            let v = i64::from_be_bytes(
                r.value
                    .expect("value")
                    .as_ref()
                    .try_into()
                    .expect("8 bytes"),
            );
            out.push((k, v));
        }
    }
}

/// The last count per key.
pub fn latest(updates: &[(String, i64)]) -> BTreeMap<String, i64> {
    updates.iter().cloned().collect()
}

/// Waits until `f` holds, polling; panics with `what` after `max`.
pub fn wait_for(max: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < max, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The word counts of `lines`.
pub fn expected_counts(lines: &[String]) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for l in lines {
        for w in l.split_whitespace() {
            *m.entry(w.to_string()).or_insert(0) += 1;
        }
    }
    m
}

/// `n` lines of three words from a fixed vocabulary; `seed` varies them.
pub fn lines(n: usize, seed: usize) -> Vec<String> {
    let words = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
    ];
    (0..n)
        .map(|i| {
            let a = words[(i * 7 + seed) % words.len()];
            let b = words[(i * 3 + seed * 5) % words.len()];
            format!("{a} {b} {a}")
        })
        .collect()
}

/// Asserts each key's committed updates are exactly 1, 2, 3, ...: nothing repeated or
/// missing. Only for jobs with the record cache off (`cache_max_bytes(0)`), which emit
/// every update.
pub fn assert_exactly_once(updates: &[(String, i64)]) {
    let mut next: BTreeMap<&str, i64> = BTreeMap::new();
    for (k, v) in updates {
        let n = next.entry(k).or_insert(1);
        assert_eq!(*v, *n, "key {k}: update {v} where {n} was due");
        *n += 1;
    }
}

/// Asserts each key's committed counts only ever grow: with the record cache on, a job
/// emits a key once per commit (so counts skip), but a count processed twice or lost
/// would show as one repeated or going back.
pub fn assert_counts_increase(updates: &[(String, i64)]) {
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for (k, v) in updates {
        let prev = last.entry(k).or_insert(0);
        assert!(*v > *prev, "key {k}: count {v} after {prev}");
        *prev = *v;
    }
}
