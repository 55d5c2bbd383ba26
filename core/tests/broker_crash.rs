//! Crash test of the broker: a child process serves a log over the Kafka protocol while a
//! librdkafka idempotent producer (`acks=all`) writes to it; the parent kills the child
//! with SIGKILL again and again, restarts it on the same directory and port, and the
//! producer carries on through the restarts. At the end every acknowledged record must be
//! in the log exactly once, at the offset its delivery report gave, and in production order
//! within its partition.
//!
//! What this exercises beyond `crash.rs`: the broker answers only after the fsync, and the
//! producer state (which sequence each producer id wrote last) is rebuilt from the log on
//! open, so a batch the dead broker wrote but never acknowledged is recognised as a retry
//! by the next broker instead of being written twice.
//!
//! The child is this same test binary, re-executed to run only
//! [`broker_crash_child_serves_until_killed`], which does nothing unless [`CHILD_DIR_ENV`]
//! is set. `--exact NAME --nocapture` is understood by every libtest binary, so this works
//! the same under `cargo test` and `cargo nextest run`.

// Tests fail loudly on the first unexpected error.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{Rng, decode_all};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use sluice_core::broker::{Broker, BrokerConfig};
use sluice_core::record::BatchIter;
use sluice_core::{Log, NewTopic};

/// Set (to the data directory) only in the child process.
const CHILD_DIR_ENV: &str = "SLUICE_BROKER_CRASH_DIR";
/// Set (to the port to listen on) only in the child process.
const CHILD_PORT_ENV: &str = "SLUICE_BROKER_CRASH_PORT";
/// The child's test function, as libtest names it.
const CHILD_TEST: &str = "broker_crash_child_serves_until_killed";
/// What the child prints once it listens.
const READY_LINE: &str = "broker-crash-child ready";

const TOPIC: &str = "crash";
/// Two partitions, so the producer keeps two sequences (one per partition) going at once.
const PARTITIONS: i32 = 2;
/// Small segments, so rolls (and the producer-state scan across segments) happen too.
const SEGMENT_BYTES: &str = "16384";

/// Kill-and-restart rounds.
const ROUNDS: usize = 10;
/// A child is killed this long (uniformly random within) after it printed ready.
const KILL_AFTER_MS_MIN: u64 = 100;
const KILL_AFTER_MS_MAX: u64 = 400;
/// The port stays closed for up to this long between a kill and the restart.
const DOWN_MS_MAX: u64 = 50;
/// An early-killed restart lives up to this long (a child takes 10-30 ms to listen).
const EARLY_KILL_MS_MAX: u64 = 25;
// The limits below keep the whole test under a minute even when every wait runs to its
// limit without failing (a run typically takes 4 s): rounds stop starting at 20 s, the last
// round may take 5 + 5 + 0.4 + 5 s, then the flush 10 s and the stop 5 s.

/// No new round starts after this long.
const ROUNDS_TIME_MAX: Duration = Duration::from_secs(20);
/// Longest a child may take to print ready (open and recover the log, bind); typically
/// 10-30 ms.
const READY_WAIT_MAX: Duration = Duration::from_secs(5);
/// Longest the producer may take to get a new acknowledgement from a restarted broker.
const PROGRESS_WAIT_MAX: Duration = Duration::from_secs(5);
/// Longest the final flush (every queued record acknowledged) may take.
const FLUSH_WAIT_MAX: Duration = Duration::from_secs(10);
/// Longest the last child may take to stop after its stdin closed.
const STOP_WAIT_MAX: Duration = Duration::from_secs(5);
/// A child nobody kills or stops exits by itself after this long.
const CHILD_TIME_MAX: Duration = Duration::from_secs(90);
/// librdkafka gives up on a record after this long; longer than the whole test, so every
/// record survives every restart.
const MESSAGE_TIMEOUT_MS: &str = "60000";
/// The producing thread pauses while this many records await their delivery report.
const UNREPORTED_MAX: u64 = 2_000;
/// The producing thread sleeps 1 ms after each run of this many records.
const RECORDS_PER_MS: u64 = 4;

/// The value of the `seq`-th record produced; sequence numbers are unique in a run.
fn value_of(seq: u64) -> String {
    format!("r{seq:07}")
}

fn seq_of(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value)
        .ok()?
        .strip_prefix('r')?
        .parse()
        .ok()
}

#[test]
fn broker_crash_child_serves_until_killed() {
    // Not a test on its own: the body of the child process that
    // `kill_9_broker_during_idempotent_produce_keeps_every_ack_exactly_once` starts and
    // kills.
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let port: u16 = std::env::var(CHILD_PORT_ENV)
        .expect("child: port env")
        .parse()
        .expect("child: port");
    // The background thread runs as in production: its checkpoints can be killed too.
    let log = Log::options()
        .background(true)
        .open(&dir)
        .expect("child: open log");
    log.ensure_topic(
        NewTopic::new(TOPIC, PARTITIONS)
            .config("flush.messages", "1")
            .config("segment.bytes", SEGMENT_BYTES),
    )
    .expect("child: create topic");
    let config = BrokerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        auto_create_topics: false,
        metrics_listen: None,
        ..BrokerConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("child: runtime");
    runtime.block_on(async move {
        let broker = Broker::bind(log.clone(), config)
            .await
            .expect("child: bind");
        // libtest may have printed "test NAME ... " without a newline: end that line first.
        println!("\n{READY_LINE}");
        std::io::stdout().flush().expect("child: stdout");
        // The parent closes stdin to stop the last child cleanly; a parent that died closes
        // it too, so no child outlives its test.
        let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            let _ = eof_tx.send(());
        });
        broker
            .run(async move {
                tokio::select! {
                    _ = eof_rx => {}
                    () = tokio::time::sleep(CHILD_TIME_MAX) => {}
                }
            })
            .await
            .expect("child: broker run");
        log.close().expect("child: close log");
    });
}

/// A port outside the kernel's ephemeral range that is free now. Every restarted broker
/// binds it again, and between a kill and the restart no outgoing connection (of this test
/// or any other process) can take it as its local port.
fn pick_port(rng: &mut Rng) -> u16 {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low = 10_000u16;
    if ephemeral_low > low + 1000 {
        for _ in 0..100 {
            let port = low + rng.below(u64::from(ephemeral_low - low)) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    // No room below the ephemeral range: any free port will do, with a small risk.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// One child broker process; killed on drop if still running.
struct BrokerProcess {
    child: Child,
    stderr_path: PathBuf,
    /// Keeps reading the child's stdout, so it never blocks on a full pipe.
    reader: Option<std::thread::JoinHandle<()>>,
    /// Receives once the child listens.
    ready: mpsc::Receiver<()>,
}

impl BrokerProcess {
    /// Starts a child on `dir` listening on `port`, without waiting for it.
    fn spawn(exe: &Path, dir: &Path, port: u16, stderr_path: PathBuf) -> Self {
        let stderr = std::fs::File::create(&stderr_path).expect("create child stderr file");
        let mut child = Command::new(exe)
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, dir)
            .env(CHILD_PORT_ENV, port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let (ready_tx, ready) = mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line == READY_LINE {
                    let _ = ready_tx.send(());
                }
            }
        });
        BrokerProcess {
            child,
            stderr_path,
            reader: Some(reader),
            ready,
        }
    }

    /// Waits until the child listens; fails the test if it takes too long.
    fn wait_ready(&self) {
        if self.ready.recv_timeout(READY_WAIT_MAX).is_err() {
            panic!(
                "child broker not ready within {READY_WAIT_MAX:?}; its stderr:\n{}",
                self.stderr()
            );
        }
    }

    /// Whether the child has said it listens.
    fn is_ready(&self) -> bool {
        self.ready.try_recv().is_ok()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGKILL; the child must not have exited on its own before.
    fn kill(mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "child broker exited on its own ({status}) before the kill; its stderr:\n{}",
                self.stderr()
            );
        }
        self.child.kill().expect("kill child");
        let status = self.child.wait().expect("wait for child");
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "child broker ended with {status} instead of SIGKILL; its stderr:\n{}",
            self.stderr()
        );
        if let Some(reader) = self.reader.take() {
            reader.join().expect("child stdout reader");
        }
    }

    /// Closes the child's stdin (its signal to shut down cleanly) and waits, bounded, for a
    /// successful exit.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + STOP_WAIT_MAX;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                break status;
            }
            if Instant::now() > deadline {
                panic!(
                    "child broker did not stop within {STOP_WAIT_MAX:?}; its stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(
            status.success(),
            "child broker stopped with {status}; its stderr:\n{}",
            self.stderr()
        );
        if let Some(reader) = self.reader.take() {
            reader.join().expect("child stdout reader");
        }
    }
}

impl Drop for BrokerProcess {
    /// A test that fails midway leaves no child behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Where one acknowledged record was written, as its delivery report said.
#[derive(Debug, Clone, Copy)]
struct Ack {
    seq: u64,
    partition: i32,
    offset: i64,
}

/// Delivery reports collected so far.
#[derive(Debug, Default)]
struct Reports {
    acked: Vec<Ack>,
    /// Records librdkafka gave up on, with why.
    failed: Vec<(u64, String)>,
}

impl Reports {
    fn count(&self) -> u64 {
        (self.acked.len() + self.failed.len()) as u64
    }
}

/// The producer's context: records every delivery report.
struct Recorder(Arc<Mutex<Reports>>);

impl ClientContext for Recorder {}

impl ProducerContext for Recorder {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        // librdkafka calls this from C: a panic here would abort the test binary, so
        // anything odd is recorded as a failure for the test thread to report.
        let Ok(mut reports) = self.0.lock() else {
            return;
        };
        match result {
            Ok(message) => match message.payload().and_then(seq_of) {
                Some(seq) => reports.acked.push(Ack {
                    seq,
                    partition: message.partition(),
                    offset: message.offset(),
                }),
                None => reports.failed.push((
                    u64::MAX,
                    format!("acknowledged a foreign payload: {message:?}"),
                )),
            },
            Err((e, message)) => {
                let seq = message.payload().and_then(seq_of).unwrap_or(u64::MAX);
                reports.failed.push((seq, e.to_string()));
            }
        }
    }
}

fn acked_count(reports: &Mutex<Reports>) -> usize {
    reports.lock().unwrap().acked.len()
}

/// Produces records `0, 1, 2, ...` until `stop` is set; returns how many it produced.
fn produce_until(
    producer: &ThreadedProducer<Recorder>,
    reports: &Mutex<Reports>,
    stop: &AtomicBool,
) -> u64 {
    let mut seq = 0u64;
    while !stop.load(Ordering::Acquire) {
        if seq - reports.lock().unwrap().count() >= UNREPORTED_MAX {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let value = value_of(seq);
        // Keys spread the records over both partitions; murmur2 as Kafka's Java client.
        let key = format!("k{}", seq % 16);
        let record = BaseRecord::to(TOPIC).key(&key).payload(&value);
        match producer.send(record) {
            Ok(()) => seq += 1,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => panic!("enqueueing record {seq}: {e}"),
        }
        if seq.is_multiple_of(RECORDS_PER_MS) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    seq
}

/// Sets its flag when dropped, on success and on panic alike.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The distinct `(producer id, epoch)` pairs that wrote a partition.
type ProducerEpochs = Vec<(i64, i16)>;

/// Every record of `partition`, as `(offset, value)`, read straight from the log; also the
/// distinct `(producer id, epoch)` pairs of its batches.
fn read_partition(log: &Log, partition: i32) -> (Vec<(i64, Vec<u8>)>, ProducerEpochs) {
    let p = log.partition(TOPIC, partition).unwrap();
    assert_eq!(
        p.log_start_offset(),
        0,
        "partition {partition} lost its start"
    );
    let end = p.log_end_offset();
    let mut offset = 0;
    let mut records = Vec::new();
    let mut producers = Vec::new();
    while offset < end {
        let read = log
            .read(TOPIC, partition, offset, 1 << 20)
            .unwrap_or_else(|e| panic!("read {TOPIC}-{partition} at {offset}: {e}"));
        assert!(
            !read.records.is_empty(),
            "empty read at {offset} below end {end} of partition {partition}"
        );
        for item in BatchIter::new(&read.records) {
            let (_, header) = item.unwrap();
            let producer = (header.producer_id(), header.producer_epoch());
            if !producers.contains(&producer) {
                producers.push(producer);
            }
        }
        for record in decode_all(&read.records) {
            if record.offset >= offset {
                assert_eq!(
                    record.offset, offset,
                    "gap in partition {partition} at {offset}"
                );
                offset = record.offset + 1;
                records.push((record.offset, record.value.unwrap_or_default().to_vec()));
            }
        }
    }
    (records, producers)
}

/// What the kill-and-restart rounds did, to show the kills landed where they matter.
#[derive(Debug, Default)]
struct Rounds {
    kills: usize,
    /// Kills after the producer got an acknowledgement from that broker.
    kills_among_acks: usize,
    /// Restarts killed again within [`EARLY_KILL_MS_MAX`].
    early_kills: usize,
    /// Of those, the ones that landed before the child listened (during recovery).
    early_kills_before_ready: usize,
}

/// Kills `broker` and restarts it on the same directory and port, [`ROUNDS`] times (fewer
/// if [`ROUNDS_TIME_MAX`] runs out), while the producer keeps writing. Returns the broker
/// running last.
fn kill_and_restart(
    mut broker: BrokerProcess,
    start: &dyn Fn(usize, &str) -> BrokerProcess,
    reports: &Mutex<Reports>,
    rng: &mut Rng,
    started: Instant,
) -> (BrokerProcess, Rounds) {
    let mut rounds = Rounds::default();
    while rounds.kills < ROUNDS && started.elapsed() < ROUNDS_TIME_MAX {
        let ready_at = Instant::now();
        let acked_at_start = acked_count(reports);
        // Every other round waits for the producer to get through to this broker first: the
        // kill then lands among acknowledged appends, and a producer that never reconnects
        // fails the test. The others may kill it while the producer is still reconnecting.
        if rounds.kills % 2 == 1 {
            let deadline = Instant::now() + PROGRESS_WAIT_MAX;
            while acked_count(reports) == acked_at_start {
                assert!(
                    Instant::now() < deadline,
                    "round {}: no record acknowledged within {PROGRESS_WAIT_MAX:?} of the restart; broker stderr:\n{}",
                    rounds.kills,
                    broker.stderr()
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let kill_after = Duration::from_millis(
            KILL_AFTER_MS_MIN + rng.below(KILL_AFTER_MS_MAX - KILL_AFTER_MS_MIN + 1),
        );
        std::thread::sleep(kill_after.saturating_sub(ready_at.elapsed()));
        if acked_count(reports) > acked_at_start {
            rounds.kills_among_acks += 1;
        }
        broker.kill();
        rounds.kills += 1;
        std::thread::sleep(Duration::from_millis(rng.below(DOWN_MS_MAX + 1)));
        // Every third restart is itself killed early: while the child recovers the log and
        // rebuilds producer state, or just after it starts taking the producer's retries.
        if rounds.kills % 3 == 0 {
            let early = start(rounds.kills, "early");
            std::thread::sleep(Duration::from_millis(rng.below(EARLY_KILL_MS_MAX + 1)));
            rounds.early_kills += 1;
            if !early.is_ready() {
                rounds.early_kills_before_ready += 1;
            }
            early.kill();
        }
        broker = start(rounds.kills, "");
        broker.wait_ready();
    }
    (broker, rounds)
}

/// Where each record in the log lies, by sequence number, checking on the way that no
/// record is there twice and that each partition holds its records in production order.
/// Also returns the distinct `(producer id, epoch)` pairs of each partition's batches.
fn read_log(dir: &Path, produced: u64) -> (HashMap<u64, (i32, i64)>, Vec<ProducerEpochs>) {
    let log = Log::options().background(false).open(dir).unwrap();
    let mut found: HashMap<u64, (i32, i64)> = HashMap::new();
    let mut producers = Vec::new();
    for partition in 0..PARTITIONS {
        let (records, ids) = read_partition(&log, partition);
        producers.push(ids);
        let mut previous: Option<u64> = None;
        for (offset, value) in records {
            let seq = seq_of(&value).unwrap_or_else(|| {
                panic!("foreign value {value:?} at {partition}@{offset}");
            });
            assert!(seq < produced, "record {seq} was never produced");
            if let Some(first) = found.insert(seq, (partition, offset)) {
                panic!(
                    "record {seq} is in the log twice: at {}@{} and at {partition}@{offset}",
                    first.0, first.1
                );
            }
            // The idempotent producer's guarantee: a partition holds its records in the
            // order they were produced (acknowledged or not).
            if let Some(previous) = previous {
                assert!(
                    seq > previous,
                    "partition {partition} holds record {seq} at {offset}, after record {previous}"
                );
            }
            previous = Some(seq);
        }
    }
    log.close().unwrap();
    (found, producers)
}

#[test]
fn kill_9_broker_during_idempotent_produce_keeps_every_ack_exactly_once() {
    // Guards against the broker losing an acknowledged record when it dies, against a
    // producer's retry after a restart being written a second time (producer state must be
    // rebuilt from the log), against a retry being answered with offsets other than where
    // the record lies, and against records of a partition landing out of production order.
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    eprintln!("broker crash test seed {seed:#x}");
    let mut rng = Rng::new(seed);
    let port = pick_port(&mut rng);
    let start = |round: usize, label: &str| {
        let stderr_path = scratch.path().join(format!("child-{round}{label}.stderr"));
        BrokerProcess::spawn(&exe, dir.path(), port, stderr_path)
    };
    let first = start(0, "");
    first.wait_ready();

    let reports = Arc::new(Mutex::new(Reports::default()));
    let producer: ThreadedProducer<Recorder> = ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .set("broker.address.family", "v4")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("message.timeout.ms", MESSAGE_TIMEOUT_MS)
        .set("linger.ms", "2")
        // Reconnect to a restarted broker quickly, not after librdkafka's 10 s backoff cap.
        .set("reconnect.backoff.ms", "10")
        .set("reconnect.backoff.max.ms", "100")
        .set("retry.backoff.ms", "10")
        .set("retry.backoff.max.ms", "100")
        .set("socket.timeout.ms", "10000")
        .create_with_context(Recorder(reports.clone()))
        .unwrap();
    let stop = AtomicBool::new(false);
    let ((last, rounds), produced) = std::thread::scope(|scope| {
        let producing = scope.spawn(|| produce_until(&producer, &reports, &stop));
        // The scope joins the producing thread even when a check panics: stop it first.
        let stop_producing = StopOnDrop(&stop);
        let outcome = kill_and_restart(first, &start, &reports, &mut rng, started);
        drop(stop_producing);
        (outcome, producing.join().unwrap())
    });

    // Let the last broker take everything still queued or in flight, then stop it cleanly.
    let flushed = producer.flush(FLUSH_WAIT_MAX);
    let fatal = producer.client().fatal_error();
    drop(producer);
    last.stop();
    flushed.unwrap_or_else(|e| panic!("producer flush within {FLUSH_WAIT_MAX:?}: {e}"));
    assert!(fatal.is_none(), "producer hit a fatal error: {fatal:?}");
    let reports = std::mem::take(&mut *reports.lock().unwrap());
    assert!(
        reports.failed.is_empty(),
        "{} of {produced} records failed (first few: {:?})",
        reports.failed.len(),
        &reports.failed[..reports.failed.len().min(5)]
    );

    let (found, producers) = read_log(dir.path(), produced);
    let mut acked_seqs = HashSet::new();
    for ack in &reports.acked {
        assert!(
            acked_seqs.insert(ack.seq),
            "record {} acknowledged twice",
            ack.seq
        );
        match found.get(&ack.seq) {
            Some(&(partition, offset)) => assert_eq!(
                (partition, offset),
                (ack.partition, ack.offset),
                "record {} was acknowledged at {}@{} but lies at {partition}@{offset}",
                ack.seq,
                ack.partition,
                ack.offset
            ),
            None => panic!(
                "record {} was acknowledged at {}@{} but is not in the log",
                ack.seq, ack.partition, ack.offset
            ),
        }
    }

    eprintln!(
        "broker crash test: {rounds:?}, {produced} records produced, {} acknowledged, {} in the log, (producer id, epoch) per partition {producers:?}, {:?}",
        reports.acked.len(),
        found.len(),
        started.elapsed()
    );
    assert!(
        rounds.kills >= 5,
        "only {} rounds ran in {ROUNDS_TIME_MAX:?}",
        rounds.kills
    );
    assert!(
        rounds.kills_among_acks >= rounds.kills / 2,
        "too few kills landed among acknowledgements: {rounds:?}"
    );
    // With retries unbounded and a message timeout longer than the test, every record is
    // acknowledged in the end (not only those the broker took before a kill).
    assert_eq!(
        reports.acked.len() as u64,
        produced,
        "every record produced must be acknowledged in the end"
    );
}
