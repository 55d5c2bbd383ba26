//! Crash test for embedded transactions: a child process commits one transaction, leaves a
//! second one open (its records in the log) and is killed with SIGKILL; the parent reopens
//! the log and checks that the open transaction was aborted at open, so read_committed
//! never exposes it and the last stable offset is not held back.
//!
//! The child is this same test binary, re-executed to run only
//! [`txn_crash_child_leaves_a_transaction_open`], which does nothing unless
//! [`CHILD_DIR_ENV`] is set (the scheme of `crash.rs`).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sluice_core::{
    ConsumerConfig, IsolationLevel, Log, NewTopic, ProducerConfig, ProducerRecord, TopicPartition,
};

/// Set (to the data directory) only in the child process.
const CHILD_DIR_ENV: &str = "SLUICE_TXN_CRASH_CHILD_DIR";
/// The child's test function, as libtest names it.
const CHILD_TEST: &str = "txn_crash_child_leaves_a_transaction_open";
/// How long the parent waits for the child to have its transaction open.
const READY_WAIT_MAX: Duration = Duration::from_secs(30);
/// A child that is never killed gives up after this long.
const CHILD_TIME_MAX: Duration = Duration::from_secs(60);

fn send(producer: &sluice_core::Producer, value: &str) {
    producer
        .send(
            ProducerRecord::to("t")
                .partition(0)
                .value(value.to_string()),
        )
        .unwrap();
}

#[test]
fn txn_crash_child_leaves_a_transaction_open() {
    // Not a test on its own: the body of the child process that
    // `kill_9_mid_transaction_aborts_it_on_reopen` starts and kills.
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    // The background thread runs as in production.
    let log = Log::open(Path::new(&dir)).expect("child: open log");
    log.ensure_topic(NewTopic::new("t", 1))
        .expect("child: create topic");
    let producer = log
        .producer(ProducerConfig::default().transactional_id("crashy"))
        .expect("child: producer");
    producer.init_transactions().expect("child: init");
    producer.begin_transaction().expect("child: begin");
    send(&producer, "committed");
    producer.commit_transaction().expect("child: commit");
    producer.begin_transaction().expect("child: begin");
    send(&producer, "open-1");
    send(&producer, "open-2");
    producer.flush().expect("child: flush");
    let mut out = std::io::stdout().lock();
    // libtest may have printed "test NAME ... " without a newline: end that line first.
    writeln!(out).expect("child: stdout");
    writeln!(out, "ready").expect("child: stdout");
    out.flush().expect("child: stdout");
    std::thread::sleep(CHILD_TIME_MAX);
}

fn values(log: &Log, level: IsolationLevel) -> Vec<String> {
    let mut consumer = log.consumer(ConsumerConfig::default().isolation_level(level));
    consumer.assign(vec![TopicPartition::new("t", 0)]).unwrap();
    let mut out = Vec::new();
    loop {
        let records = consumer.poll(Duration::from_millis(50)).unwrap();
        if records.is_empty() {
            return out;
        }
        out.extend(
            records
                .into_iter()
                .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap()),
        );
    }
}

#[test]
fn kill_9_mid_transaction_aborts_it_on_reopen() {
    // Guards against a transaction whose embedded producer died with its process staying
    // open after the log reopens: it would hold every read_committed reader at its first
    // offset until the timeout (or forever, with no background thread), and committing it
    // later must be impossible. The committed transaction before it must survive.
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line == "ready" {
                let _ = ready_tx.send(());
            }
        }
    });
    let ready = ready_rx.recv_timeout(READY_WAIT_MAX);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert!(
        ready.is_ok(),
        "child never opened its transaction ({status})"
    );
    assert_eq!(status.signal(), Some(libc::SIGKILL), "child was not killed");

    let log = Log::options().background(false).open(dir.path()).unwrap();
    let p = log.partition("t", 0).unwrap();
    assert_eq!(p.last_stable_offset(), p.log_end_offset());
    assert_eq!(p.aborted_transactions_full(0, p.log_end_offset()).len(), 1);
    assert_eq!(values(&log, IsolationLevel::ReadCommitted), ["committed"]);
    assert_eq!(
        values(&log, IsolationLevel::ReadUncommitted),
        ["committed", "open-1", "open-2"]
    );

    // The transactional id carries on at a newer epoch.
    let producer = log
        .producer(ProducerConfig::default().transactional_id("crashy"))
        .unwrap();
    producer.init_transactions().unwrap();
    producer.begin_transaction().unwrap();
    send(&producer, "after");
    producer.commit_transaction().unwrap();
    assert_eq!(
        values(&log, IsolationLevel::ReadCommitted),
        ["committed", "after"]
    );
}

/// Set (to the round number) in the child of the repeated-crash test.
const ROUND_ENV: &str = "SLUICE_TXN_CRASH_ROUND";
const REPEATED_CHILD_TEST: &str = "txn_crash_child_commits_then_leaves_one_open";

#[test]
fn txn_crash_child_commits_then_leaves_one_open() {
    // Not a test on its own: the child of `repeated_kills_keep_every_committed_record`.
    let (Some(dir), Some(round)) = (std::env::var_os(CHILD_DIR_ENV), std::env::var_os(ROUND_ENV))
    else {
        return;
    };
    let round = round.to_string_lossy().to_string();
    let log = Log::open(Path::new(&dir)).expect("child: open log");
    log.ensure_topic(NewTopic::new("t", 1))
        .expect("child: create topic");
    let producer = log
        .producer(ProducerConfig::default().transactional_id("crashy"))
        .expect("child: producer");
    producer.init_transactions().expect("child: init");
    for t in 0..3 {
        producer.begin_transaction().expect("child: begin");
        send(&producer, &format!("r{round}t{t}"));
        producer.commit_transaction().expect("child: commit");
    }
    producer.begin_transaction().expect("child: begin");
    send(&producer, "open-1");
    send(&producer, "open-2");
    producer.flush().expect("child: flush");
    let mut out = std::io::stdout().lock();
    writeln!(out).expect("child: stdout");
    writeln!(out, "ready").expect("child: stdout");
    out.flush().expect("child: stdout");
    std::thread::sleep(CHILD_TIME_MAX);
}

#[test]
fn repeated_kills_keep_every_committed_record() {
    // Guards against the aborted range of a transaction orphaned by a kill covering
    // records the same transactional id committed later, at a newer epoch: after several
    // rounds of commits and kills, read_committed must still see every committed record.
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut want = Vec::new();
    for round in 0..4 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                REPEATED_CHILD_TEST,
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .env(ROUND_ENV, round.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let ready = BufReader::new(stdout)
            .lines()
            .any(|l| l.is_ok_and(|l| l == "ready"));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(ready, "round {round}: the child never got ready");
        want.extend((0..3).map(|t| format!("r{round}t{t}")));
    }
    let log = Log::open(dir.path()).unwrap();
    assert_eq!(values(&log, IsolationLevel::ReadCommitted), want);
}
