//! Consumer groups: rebalances as members join and leave, committed offsets and their
//! durability.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluice_core::{ConsumerConfig, Log, NewTopic, ProducerConfig, ProducerRecord};

use crate::common::{open, poll_n};

fn group_member(log: &Log, group: &str, topic: &str) -> sluice_core::Consumer {
    let mut c = log.consumer(
        ConsumerConfig::default()
            .group(group)
            .enable_auto_commit(false)
            .max_poll_records(7),
    );
    c.subscribe(&[topic]).unwrap();
    c
}

#[test]
fn consumer_group_delivers_each_record_once_without_crashes() {
    // Guards against a rebalance losing records (a partition handed over past what was
    // processed) or duplicating them (handed over before what was committed), and against
    // committed offsets that do not survive a reopen of the log.
    //
    // The members are driven from one thread, each committing right after processing what
    // a poll returned; joins and leaves happen between polls. Under that schedule the
    // in-process coordinator gives exactly-once delivery. (Members on separate threads
    // only get at-least-once: see `consumer_group_on_threads_is_at_least_once`.)
    let dir = tempfile::tempdir().unwrap();
    let mut produced: BTreeSet<(i32, i64)> = BTreeSet::new();
    let committed_before_close: BTreeMap<(String, i32), i64>;
    {
        let log = open(dir.path());
        log.create_topic(NewTopic::new("grp", 6)).unwrap();
        let producer = log
            .producer(
                ProducerConfig::default()
                    .batch_records(4)
                    .linger(Duration::from_secs(600)),
            )
            .unwrap();
        let produce = |n: usize, produced: &mut BTreeSet<(i32, i64)>| {
            let ds: Vec<_> = (0..n)
                .map(|j| {
                    let key = format!("key-{}-{j}", produced.len());
                    producer
                        .send(ProducerRecord::to("grp").key(key).value("v"))
                        .unwrap()
                })
                .collect();
            producer.flush().unwrap();
            for d in ds {
                let m = d.result().unwrap().unwrap();
                assert!(produced.insert((m.partition, m.offset)));
            }
        };

        let mut members: Vec<(usize, sluice_core::Consumer)> = Vec::new();
        let mut next_id = 0;
        let mut received: Vec<(i32, i64, usize)> = Vec::new();
        let poll_and_commit = |members: &mut Vec<(usize, sluice_core::Consumer)>,
                               received: &mut Vec<_>| {
            for (id, m) in members.iter_mut() {
                for r in m.poll(Duration::from_millis(5)).unwrap() {
                    received.push((r.partition, r.offset, *id));
                }
                m.commit().unwrap();
            }
        };
        for round in 0..14 {
            match round {
                0 | 2 | 4 | 9 => {
                    members.push((next_id, group_member(&log, "g1", "grp")));
                    next_id += 1;
                }
                6 | 11 => {
                    // The oldest member leaves after committing what it processed.
                    let (_, mut m) = members.remove(0);
                    m.commit().unwrap();
                    m.close().unwrap();
                }
                _ => {}
            }
            produce(40, &mut produced);
            poll_and_commit(&mut members, &mut received);
            // After everyone synced, the members' assignments partition the topic.
            let mut owned: Vec<i32> = members
                .iter()
                .flat_map(|(_, m)| m.assignment().iter().map(|tp| tp.partition))
                .collect();
            owned.sort_unstable();
            assert_eq!(owned, (0..6).collect::<Vec<_>>(), "round {round}");
            assert_eq!(log.group_members("g1").len(), members.len());
        }
        // Drain.
        let deadline = Instant::now() + Duration::from_secs(20);
        while received.len() < produced.len() && Instant::now() < deadline {
            poll_and_commit(&mut members, &mut received);
        }
        poll_and_commit(&mut members, &mut received);

        let mut seen = BTreeSet::new();
        let duplicates: Vec<_> = received
            .iter()
            .filter(|(p, o, _)| !seen.insert((*p, *o)))
            .collect();
        assert!(duplicates.is_empty(), "delivered twice: {duplicates:?}");
        assert_eq!(seen, produced, "every record delivered");
        // Every member, including those that left, was given records to process.
        let by_member: BTreeSet<usize> = received.iter().map(|r| r.2).collect();
        assert_eq!(by_member.len(), next_id);

        // Commits now point at the end of every partition.
        for p in 0..6 {
            let end = log.partition("grp", p).unwrap().log_end_offset();
            assert_eq!(log.committed_offset("g1", "grp", p).unwrap().offset, end);
        }
        for (_, mut m) in members.drain(..) {
            m.commit().unwrap();
            m.close().unwrap();
        }
        assert!(log.group_members("g1").is_empty());
        assert_eq!(log.list_groups(), vec!["g1".to_string()]);

        // Produce more that nobody reads yet, and move partition 0's commit back by one
        // (an explicit commit of an arbitrary position) so the resume point is not just
        // "the end as of the last poll".
        produce(30, &mut produced);
        let p0 = log.committed_offset("g1", "grp", 0).unwrap().offset;
        log.commit_offsets("g1", &[("grp".to_string(), 0, p0 - 1)])
            .unwrap();
        committed_before_close = log
            .group_offsets("g1")
            .into_iter()
            .map(|(k, v)| (k, v.offset))
            .collect();
        drop(producer);
        log.close().unwrap();
    }

    let log = open(dir.path());
    let after: BTreeMap<(String, i32), i64> = log
        .group_offsets("g1")
        .into_iter()
        .map(|(k, v)| (k, v.offset))
        .collect();
    assert_eq!(after, committed_before_close, "commits are durable");
    // A new member resumes from the commits: it gets exactly the records at or after them.
    let unread: BTreeSet<(i32, i64)> = produced
        .iter()
        .filter(|(p, o)| *o >= after[&("grp".to_string(), *p)])
        .copied()
        .collect();
    assert_eq!(unread.len(), 31);
    let mut m = group_member(&log, "g1", "grp");
    let got = poll_n(&mut m, unread.len());
    let got_set: BTreeSet<(i32, i64)> = got.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(got.len(), got_set.len());
    assert_eq!(got_set, unread);
    assert!(m.poll(Duration::from_millis(50)).unwrap().is_empty());
}

#[test]
fn consumer_group_on_threads_is_at_least_once() {
    // Guards against records lost when members on their own threads join and leave while
    // records are produced. The in-process coordinator hands a partition to its new owner
    // at once, without waiting for the old owner to commit and let go (no rebalance
    // barrier), so a record can reach two members around a rebalance: delivery here is
    // at-least-once, and the test asserts exactly that.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(NewTopic::new("grpt", 6)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let log = log.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut got: Vec<(i32, i64)> = Vec::new();
                let mut session = 0u64;
                while !stop.load(Ordering::Acquire) {
                    let mut c = group_member(&log, "g2", "grpt");
                    // Stay a while, then leave: every worker churns at its own pace.
                    let polls = 5 + (session * 7 + w) % 11;
                    for _ in 0..polls {
                        for r in c.poll(Duration::from_millis(3)).unwrap() {
                            got.push((r.partition, r.offset));
                        }
                        c.commit().unwrap();
                    }
                    c.close().unwrap();
                    session += 1;
                }
                // Final drain as a stable member.
                let mut c = group_member(&log, "g2", "grpt");
                let mut idle = 0;
                while idle < 30 {
                    let batch = c.poll(Duration::from_millis(10)).unwrap();
                    idle = if batch.is_empty() { idle + 1 } else { 0 };
                    got.extend(batch.iter().map(|r| (r.partition, r.offset)));
                    c.commit().unwrap();
                }
                got
            })
        })
        .collect();
    let producer = log
        .producer(ProducerConfig::default().batch_records(8))
        .unwrap();
    let mut produced = BTreeSet::new();
    for round in 0..60 {
        let ds: Vec<_> = (0..25)
            .map(|i| {
                producer
                    .send(
                        ProducerRecord::to("grpt")
                            .key(format!("{round}-{i}"))
                            .value("v"),
                    )
                    .unwrap()
            })
            .collect();
        producer.flush().unwrap();
        for d in ds {
            let m = d.result().unwrap().unwrap();
            produced.insert((m.partition, m.offset));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Release);
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.join().unwrap());
    }
    // The workers' last members may leave while a partition just moved to one of them;
    // whatever they left uncommitted goes to the next member, as it would in a real group.
    let mut last = group_member(&log, "g2", "grpt");
    loop {
        let batch = last.poll(Duration::from_millis(100)).unwrap();
        if batch.is_empty() {
            break;
        }
        all.extend(batch.iter().map(|r| (r.partition, r.offset)));
        last.commit().unwrap();
    }
    let delivered: BTreeSet<(i32, i64)> = all.iter().copied().collect();
    assert_eq!(delivered, produced, "every record reached some member");
    eprintln!(
        "threaded group: {} records, {} deliveries ({} duplicates)",
        produced.len(),
        all.len(),
        all.len() - delivered.len()
    );
}
