//! Crash test: a child process appends with `Durability::Sync` and reports every
//! acknowledged record on stdout; the parent kills it with SIGKILL at a random moment,
//! reopens the log and checks that nothing acknowledged was lost or changed. Many rounds
//! run against the same directory, so later rounds recover logs that earlier kills left
//! behind (mid-append, mid-roll, mid-checkpoint, mid-recovery).
//!
//! The child is this same test binary, re-executed to run only
//! [`crash_child_appends_until_killed`], which does nothing unless [`CHILD_DIR_ENV`] is set.
//! `--exact NAME --nocapture` is understood by every libtest binary, so this works the same
//! under `cargo test` and `cargo nextest run`.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// Set (to the data directory) only in the child process.
const CHILD_DIR_ENV: &str = "SLUICE_CRASH_CHILD_DIR";
/// The child's test function, as libtest names it.
const CHILD_TEST: &str = "crash_child_appends_until_killed";
/// Kill-and-recover rounds.
const ROUNDS: usize = 40;
/// The whole test stops starting rounds after this long.
const TEST_TIME_MAX: Duration = Duration::from_secs(25);
/// A child that is never killed stops by itself after this long (or this many appends).
const CHILD_TIME_MAX: Duration = Duration::from_secs(20);
const CHILD_APPENDS_MAX: i64 = 100_000;
/// How long the parent waits for a child's first acknowledgement.
const FIRST_ACK_WAIT_MAX: Duration = Duration::from_secs(10);

fn ack_hash(offset: i64) -> u32 {
    crc32c::crc32c(&value_for(offset))
}

#[test]
fn crash_child_appends_until_killed() {
    // Not a test on its own: the body of the child process that
    // `kill_9_during_sync_appends_loses_no_acknowledged_record` starts and kills.
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    // The background thread runs as in production: its checkpoints can be killed too.
    let log = options()
        .background(true)
        .open(dir)
        .expect("child: open log");
    log.ensure_topic(
        sluice_core::NewTopic::new(TOPIC, 1)
            .config("flush.messages", "1")
            .config("segment.bytes", "4096"),
    )
    .expect("child: create topic");
    let partition = log.partition(TOPIC, 0).expect("child: partition");
    let mut out = std::io::stdout().lock();
    // libtest may have printed "test NAME ... " without a newline: end that line first.
    writeln!(out).expect("child: stdout");
    let started = Instant::now();
    let mut next = partition.log_end_offset();
    for _ in 0..CHILD_APPENDS_MAX {
        if started.elapsed() > CHILD_TIME_MAX {
            break;
        }
        let count = 1 + next % 4;
        let mut batch = batch_for(next, count);
        let info = log.append(TOPIC, 0, &mut batch).expect("child: append");
        assert_eq!(
            info.base_offset, next,
            "child: append landed at the wrong offset"
        );
        for offset in next..next + count {
            writeln!(out, "ack {offset} {:08x}", ack_hash(offset)).expect("child: stdout");
        }
        out.flush().expect("child: stdout");
        next += count;
    }
}

/// What one child run acknowledged, and how it ended.
struct Round {
    acks: Vec<(i64, u32)>,
    killed: bool,
    status: std::process::ExitStatus,
}

fn run_child(
    exe: &Path,
    dir: &Path,
    stderr_path: &Path,
    kill_after: Duration,
    wait_for_ack: bool,
) -> Round {
    let stderr = std::fs::File::create(stderr_path).expect("create child stderr file");
    let mut child = Command::new(exe)
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    if wait_for_ack {
        // Wait until the child is appending, so the kill lands among appends.
        let deadline = Instant::now() + FIRST_ACK_WAIT_MAX;
        while !lines.iter().any(|l: &String| l.starts_with("ack ")) {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(_) => break,
            }
        }
    }
    std::thread::sleep(kill_after);
    // SIGKILL; Ok even if the child already exited (its status then says how).
    child.kill().expect("kill child");
    let status = child.wait().expect("wait for child");
    reader.join().expect("stdout reader");
    lines.extend(lines_rx.try_iter());

    let mut acks = Vec::new();
    for line in &lines {
        let Some(rest) = line.strip_prefix("ack ") else {
            continue;
        };
        let mut fields = rest.split(' ');
        let (Some(offset), Some(hash), None) = (fields.next(), fields.next(), fields.next()) else {
            panic!("malformed ack line from child: {line:?}");
        };
        let offset: i64 = offset
            .parse()
            .unwrap_or_else(|_| panic!("bad ack offset: {line:?}"));
        let hash =
            u32::from_str_radix(hash, 16).unwrap_or_else(|_| panic!("bad ack hash: {line:?}"));
        acks.push((offset, hash));
    }
    Round {
        acks,
        killed: status.signal() == Some(libc::SIGKILL),
        status,
    }
}

#[test]
fn kill_9_during_sync_appends_loses_no_acknowledged_record() {
    // Guards against losing or altering an acknowledged (fsynced) record when the process
    // dies at any point, against recovery leaving a gap or a half-written batch, and
    // against a log that a crash left behind failing to open or to take appends.
    let dir = tempfile::tempdir().expect("tempdir");
    let scratch = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    let started = Instant::now();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    eprintln!("crash test seed {seed:#x}");
    let mut rng = Rng::new(seed);
    let mut acked: BTreeMap<i64, u32> = BTreeMap::new();
    let mut rounds = 0;
    let mut kills_after_acks = 0;

    while rounds < ROUNDS && started.elapsed() < TEST_TIME_MAX {
        // Half the rounds kill at a random moment from spawn (possibly during open and
        // recovery), half a random moment after the first acknowledgement.
        let wait_for_ack = rounds % 2 == 0;
        let kill_after = Duration::from_millis(if wait_for_ack {
            rng.below(40)
        } else {
            rng.below(120)
        });
        let stderr_path = scratch.path().join(format!("child-{rounds}.stderr"));
        let round = run_child(&exe, dir.path(), &stderr_path, kill_after, wait_for_ack);
        rounds += 1;
        if !round.killed {
            panic!(
                "child exited on its own ({}) instead of being killed; its stderr:\n{}",
                round.status,
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        if wait_for_ack {
            assert!(
                !round.acks.is_empty(),
                "child acknowledged nothing in {FIRST_ACK_WAIT_MAX:?}; its stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        if !round.acks.is_empty() {
            kills_after_acks += 1;
        }
        for (offset, hash) in round.acks {
            assert_eq!(
                hash,
                ack_hash(offset),
                "child acknowledged a wrong value at {offset}"
            );
            // An offset acknowledged twice means the log handed it out again: an earlier
            // acknowledged record was lost.
            if let Some(previous) = acked.insert(offset, hash) {
                panic!(
                    "offset {offset} acknowledged twice (before: {previous:08x}): acknowledged data was lost"
                );
            }
        }

        // Recover in-process and check everything acknowledged so far.
        let log = open(dir.path());
        let partition = match log.partition(TOPIC, 0) {
            Ok(partition) => partition,
            // Killed before it created the topic.
            Err(sluice_core::Error::UnknownTopic { .. }) if acked.is_empty() => continue,
            Err(e) => panic!("round {rounds}: {e}"),
        };
        let end = partition.log_end_offset();
        assert_eq!(partition.log_start_offset(), 0);
        if let Some((&last, _)) = acked.last_key_value() {
            assert!(
                end > last,
                "round {rounds}: log end offset {end} but offset {last} was acknowledged"
            );
        }
        let records = read_all(&log);
        // Contiguous, and every record (acknowledged or not) is the one for its offset.
        assert_records(&records, end);
        for (&offset, &hash) in &acked {
            let value = records[offset as usize]
                .value
                .as_deref()
                .unwrap_or_default();
            assert_eq!(
                crc32c::crc32c(value),
                hash,
                "acknowledged record {offset} changed"
            );
        }
        log.close().expect("close after recovery");
    }

    eprintln!(
        "crash test: {rounds} rounds, {kills_after_acks} killed among appends, {} records acknowledged, {:?}",
        acked.len(),
        started.elapsed()
    );
    assert!(rounds >= 5, "only {rounds} rounds ran in {TEST_TIME_MAX:?}");
    assert!(
        kills_after_acks >= rounds / 2,
        "too few kills landed among appends"
    );
}
