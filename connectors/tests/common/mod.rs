//! What the connector tests share: the addresses of the real databases they use, and the
//! rule for when one is missing.
//!
//! Each database's URL comes from an environment variable, defaulting to the service on
//! this machine. When a database is unreachable a test prints a loud message and skips,
//! unless `SLUICE_REQUIRE_SERVICES=1` (set by `.ci/run`), which makes it fail instead.

#![allow(dead_code)]

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// PostgreSQL: `SLUICE_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`.
pub fn postgres_url() -> Option<String> {
    service(
        "SLUICE_TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
        "127.0.0.1:5432",
    )
}

/// MariaDB / MySQL: `SLUICE_TEST_MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`.
pub fn mysql_url() -> Option<String> {
    service(
        "SLUICE_TEST_MYSQL_URL",
        "mysql://root@127.0.0.1:3306/test",
        "127.0.0.1:3306",
    )
}

fn service(var: &str, default: &str, default_addr: &str) -> Option<String> {
    let url = std::env::var(var).unwrap_or_else(|_| default.to_string());
    let addr = host_port(&url).unwrap_or_else(|| default_addr.to_string());
    let reachable = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    if reachable {
        return Some(url);
    }
    let message = format!("{url} ({var}) is unreachable");
    if std::env::var("SLUICE_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{message}, and SLUICE_REQUIRE_SERVICES=1 requires it");
    }
    eprintln!("\n!!! SKIPPED: {message}; set SLUICE_REQUIRE_SERVICES=1 to fail instead\n");
    None
}

/// `host:port` of `scheme://user@host:port/db`.
fn host_port(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hostport = rest.split(['/', '?']).next()?;
    Some(hostport.to_string())
}

/// A name no other test run uses at the same time (tables, slots, publications).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 10_000
    )
}
