//! Exactly-once under crashes: a child process runs a word-count job with
//! `ProcessingGuarantee::ExactlyOnce` on an embedded log and is killed with SIGKILL
//! part-way, several times; a final run finishes the input. A read_committed reader of
//! the output must then see every count update exactly once: for each word, the counts
//! 1, 2, 3, ... with nothing repeated and nothing missing.
//!
//! Two variants: a persistent store behind the default write cache, and an in-memory
//! store with the cache off, so every count update goes to the changelog and each restart
//! rebuilds the store from a long changelog (that variant caught restores that stopped
//! with records still in the consumer's buffer).
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
/// Set in the child when it runs the in-memory, no-cache variant.
const CHILD_IN_MEMORY_ENV: &str = "SLUICE_STREAMS_EOS_CHILD_IN_MEMORY";
const CHILD_TEST: &str = "eos_child_runs_until_killed";
const ROUNDS: usize = 4;
const LINES: usize = 30_000;
/// Per input line in the child, so a kill lands mid-input.
const PAUSE: Duration = Duration::from_micros(10);

/// The job's config; `in_memory` turns the write cache off too (see the module docs).
fn config(dir: &std::path::Path, in_memory: bool) -> StreamsConfig {
    let config = StreamsConfig::new("eos-crash")
        .state_dir(dir.join("state"))
        .processing_guarantee(ProcessingGuarantee::ExactlyOnce)
        .commit_interval(Duration::from_millis(250));
    if in_memory {
        config.cache_max_bytes(0)
    } else {
        config
    }
}

#[test]
fn eos_child_runs_until_killed() {
    // Not a test on its own: the body of the child process the crash test kills.
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    let in_memory = std::env::var_os(CHILD_IN_MEMORY_ENV).is_some();
    let mut job = KafkaStreams::new(
        wordcount_paced(in_memory, PAUSE),
        config(dir, in_memory).data_dir(dir.join("data")),
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
    kill_and_check(false);
}

#[test]
fn sigkill_mid_job_in_memory_every_update_logged() {
    kill_and_check(true);
}

/// Kills the child [`ROUNDS`] times, finishes the input in this process, and checks the
/// committed output.
fn kill_and_check(in_memory: bool) {
    let dir = tempfile::tempdir().expect("crash test");
    let input = lines(LINES, 7);
    {
        let log = Log::open(dir.path().join("data")).expect("crash test");
        create(&log, "text-input", 2);
        produce_lines(&log, "text-input", &input);
    }
    let exe = std::env::current_exe().expect("crash test");
    let mut seed = 0x9e37_79b9u64;
    for round in 0..ROUNDS {
        // The child's stderr, shown if it fails to start.
        let child_log = dir.path().join(format!("child-{round}.log"));
        let mut command = Command::new(&exe);
        command.env_remove(CHILD_IN_MEMORY_ENV);
        if in_memory {
            command.env(CHILD_IN_MEMORY_ENV, "1");
        }
        let mut child = command
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&child_log).expect("crash test"))
            .spawn()
            .expect("crash test");
        let stdout = child.stdout.take().expect("crash test");
        let mut lines_out = BufReader::new(stdout).lines();
        let ready = lines_out.any(|l| l.is_ok_and(|l| l == "running"));
        assert!(
            ready,
            "round {round}: the child never started; its stderr:\n{}",
            std::fs::read_to_string(&child_log).unwrap_or_default()
        );
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(300 + seed % 1000));
        child.kill().expect("crash test");
        let status = child.wait().expect("crash test");
        assert!(
            !status.success(),
            "round {round}: the child exited by itself"
        );
    }
    // A last run finishes the input.
    let log = Log::open(dir.path().join("data")).expect("crash test");
    let want = expected_counts(&input);
    let mut job = KafkaStreams::new(
        wordcount_paced(in_memory, PAUSE),
        config(dir.path(), in_memory).log(log.clone()),
    )
    .expect("crash test");
    job.start().expect("crash test");
    wait_for(Duration::from_secs(60), "the final run to finish", || {
        latest(&read_counts(&log, "word-counts", true)) == want
    });
    job.close().expect("crash test");
    let committed = read_counts(&log, "word-counts", true);
    if in_memory {
        assert_exactly_once(&committed);
    } else {
        assert_counts_increase(&committed);
    }
    assert_eq!(latest(&committed), want);
    // Killed attempts may have left records of aborted transactions behind, which only
    // read_uncommitted sees.
    let everything = read_counts(&log, "word-counts", false);
    assert!(everything.len() >= committed.len());
}
