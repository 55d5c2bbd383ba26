//! Helpers shared by the black-box tests of the `sluice` binary: run it in a directory
//! (with that directory as `HOME`, so no user settings or shell history leak in) and check
//! how it exited.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `sluice args` in `dir` with empty stdin.
pub fn sluice(dir: &Path, args: &[&str]) -> Output {
    sluice_with_stdin(dir, args, "")
}

/// Runs `sluice args` in `dir`, writing `stdin` to it.
pub fn sluice_with_stdin(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("SLUICE_DATA_DIR")
        .env_remove("SLUICE_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sluice");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for sluice")
}

/// Its stdout, after asserting it succeeded.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "sluice failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Its stderr, after asserting it failed.
pub fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, got success: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// PostgreSQL for the connector tests: `SLUICE_TEST_POSTGRES_URL`, default
/// `postgres://postgres@127.0.0.1:5432/test`. Unreachable: skip loudly, or fail when
/// `SLUICE_REQUIRE_SERVICES=1` (set by .ci/run).
pub fn postgres_url() -> Option<String> {
    let url = std::env::var("SLUICE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if psql(&url, "SELECT 1").is_some() {
        return Some(url);
    }
    let message = format!("PostgreSQL at {url} is unreachable (or psql is missing)");
    if std::env::var("SLUICE_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{message}, and SLUICE_REQUIRE_SERVICES=1 requires it");
    }
    eprintln!("\n!!! SKIPPED: {message}; set SLUICE_REQUIRE_SERVICES=1 to fail instead\n");
    None
}

/// Runs SQL through `psql` and returns its unaligned, tuples-only output (`None` if psql
/// failed).
pub fn psql(url: &str, sql: &str) -> Option<String> {
    let out = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs a DuckDB query (the Python package, an independent reader) and returns its rows,
/// one line each, columns separated by `|`.
pub fn duckdb(dir: &Path, query: &str) -> String {
    let script = format!(
        "import duckdb\nfor row in duckdb.sql({query:?}).fetchall():\n    print('|'.join('' if v is None else str(v) for v in row))\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .current_dir(dir)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A `sluice serve` child, killed (and reaped) on drop, so a failing test leaves no
/// server behind; with the addresses its ready lines announced.
pub struct Served {
    child: std::process::Child,
    /// The Kafka listener, HOST:PORT (`sluice broker ready on ...`).
    pub kafka: String,
    /// The PostgreSQL endpoint, HOST:PORT (`sluice sql (PostgreSQL wire) on ...`); `None`
    /// when `--no-pg` was given.
    pub pg: Option<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sluice serve ARGS` in `dir` with the Kafka listener on a free loopback port and
/// no metrics endpoint (add `--pg-listen 127.0.0.1:0` or `--no-pg` for the PostgreSQL
/// one), and waits up to 20 s for its ready lines.
pub fn serve(dir: &Path, args: &[&str]) -> Served {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;
    use std::time::Duration;

    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "127.0.0.1:0", "--no-metrics"])
        .args(args)
        .current_dir(dir)
        .env_remove("SLUICE_DATA_DIR")
        .env_remove("SLUICE_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    // Keeps draining stderr after the ready lines so the server never blocks on it.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("sluice broker ready on ") {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                let _ = tx.send((false, addr.to_string()));
            }
            if let Some(addr) = line.strip_prefix("sluice sql (PostgreSQL wire) on ") {
                let _ = tx.send((true, addr.trim().to_string()));
            }
        }
    });
    // In the guard before the wait, so a server that never gets ready is killed.
    let mut served = Served {
        child,
        kafka: String::new(),
        pg: None,
    };
    let want_pg = !args.contains(&"--no-pg");
    while served.kafka.is_empty() || (want_pg && served.pg.is_none()) {
        match rx
            .recv_timeout(Duration::from_secs(20))
            .expect("sluice serve printed no ready line")
        {
            (false, addr) => served.kafka = addr,
            (true, addr) => served.pg = Some(addr),
        }
    }
    served
}
