//! Broker settings: the `[broker]` section of `sluice.toml`.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the broker listens and what it accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Address to listen on for the Kafka protocol. Default 127.0.0.1:9092.
    pub listen: SocketAddr,
    /// Largest request frame accepted, in bytes; a bigger one closes the connection.
    /// Default 100 MiB (Kafka's `socket.request.max.bytes`).
    pub max_frame_bytes: usize,
    /// Connections idle this long are closed. Default 10 minutes
    /// (Kafka's `connections.max.idle.ms`).
    #[serde(with = "millis", rename = "idle_timeout_ms")]
    pub idle_timeout: Duration,
    /// Most connections open at once; more are closed on accept. Default 10 000.
    pub max_connections: usize,
    /// Most request bytes held in memory at once, across all connections: a connection
    /// whose next request would exceed it waits (backpressure) until others finish.
    /// Default 256 MiB; raised to `max_frame_bytes` if smaller.
    pub max_inflight_bytes: usize,
    /// Create a topic when a client's Metadata request names an unknown one. Default true.
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics (0: the log's `default_partitions`).
    pub default_partitions: i32,
    /// This broker's node id in metadata. Default 0.
    pub node_id: i32,
    /// Host name clients are told to connect to; default: the listen address's IP.
    pub advertised_host: Option<String>,
    /// Address of the Prometheus `GET /metrics` endpoint (plain HTTP). Default
    /// 127.0.0.1:9308; port 0 picks a free port; `"off"` (or `""`) turns it off.
    #[serde(with = "optional_addr")]
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            max_frame_bytes: 100 << 20,
            idle_timeout: Duration::from_secs(600),
            max_connections: 10_000,
            max_inflight_bytes: 256 << 20,
            auto_create_topics: true,
            default_partitions: 0,
            node_id: 0,
            advertised_host: None,
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9308))),
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// `Option<SocketAddr>` in TOML, which has no null: `"off"` or `""` is `None`.
mod optional_addr {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(a: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        match a {
            Some(addr) => s.collect_str(addr),
            None => s.serialize_str("off"),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() || text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|e| {
            D::Error::custom(format!(
                "metrics_listen {text:?} is not HOST:PORT ({e}); use e.g. \"127.0.0.1:9308\" or \"off\""
            ))
        })
    }
}
