//! Exactly-once under crashes: a child process runs a word-count job with
//! `ProcessingGuarantee::ExactlyOnce` on an embedded log and is killed with SIGKILL
//! part-way, several times; a final run finishes the input. A read_committed reader of
//! the output must then see every count update exactly once: for each word, the counts
//! 1, 2, 3, ... with nothing repeated and nothing missing.
//!
//! The child is this test binary re-executed to run only [`eos_child_runs_until_killed`],
//! which does nothing unless [`CHILD_ENV`] is set.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sluice_core::Log;
use sluice_streams::prelude::*;

/// Set (to the test's directory) only in the child process.
const CHILD_ENV: &str = "SLUICE_STREAMS_EOS_CHILD_DIR";
const CHILD_TEST: &str = "eos_child_runs_until_killed";
const ROUNDS: usize = 4;
const LINES: usize = 30_000;
/// Per input line in the child, so a kill lands mid-input.
const PAUSE: Duration = Duration::from_micros(10);

fn config(dir: &std::path::Path) -> StreamsConfig {
    StreamsConfig::new("eos-crash")
        .state_dir(dir.join("state"))
        .processing_guarantee(ProcessingGuarantee::ExactlyOnce)
        .commit_interval(Duration::from_millis(250))
}

#[test]
fn eos_child_runs_until_killed() {
    // Not a test on its own: the body of the child process the crash test kills.
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    let mut job = KafkaStreams::new(
        wordcount_paced(false, PAUSE),
        config(dir).data_dir(dir.join("data")),
    )
    .expect("child: job");
    job.start().expect("child: start");
    println!("\nrunning");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) && job.is_running() {
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("child: not killed in time (error: {:?})", job.error());
}

#[test]
fn sigkill_mid_job_exactly_once_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = lines(LINES, 7);
    {
        let log = Log::open(dir.path().join("data")).unwrap();
        create(&log, "text-input", 2);
        produce_lines(&log, "text-input", &input);
    }
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x9e37_79b9u64;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines_out = BufReader::new(stdout).lines();
        let ready = lines_out.any(|l| l.is_ok_and(|l| l == "running"));
        assert!(ready, "round {round}: the child never started");
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(300 + seed % 1000));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the child exited by itself"
        );
    }
    // A last run finishes the input.
    let log = Log::open(dir.path().join("data")).unwrap();
    let want = expected_counts(&input);
    let mut job = KafkaStreams::new(
        wordcount_paced(false, PAUSE),
        config(dir.path()).log(log.clone()),
    )
    .unwrap();
    job.start().unwrap();
    wait_for(Duration::from_secs(60), "the final run to finish", || {
        latest(&read_counts(&log, "word-counts", true)) == want
    });
    job.close().unwrap();
    let committed = read_counts(&log, "word-counts", true);
    assert_exactly_once(&committed);
    assert_eq!(latest(&committed), want);
    // Killed attempts may have left records of aborted transactions behind, which only
    // read_uncommitted sees.
    let everything = read_counts(&log, "word-counts", false);
    assert!(everything.len() >= committed.len());
}
