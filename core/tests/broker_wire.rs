//! The broker at the byte level: framing, ApiVersions quirks, request ordering, limits,
//! and bad input (oversized, zero, negative and truncated frames, unknown APIs and
//! versions, HTTP, random bytes). A bad connection is closed with one log line; the
//! broker keeps serving everyone else.

#![allow(clippy::unwrap_used)]

/// As the `sluice` binary does: hostile array counts become address space, not an abort.
#[global_allocator]
static ALLOC: sluice_core::alloc::ReserveLargeAllocator = sluice_core::alloc::ReserveLargeAllocator;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use sluice_core::LogOptions;
use sluice_core::broker::{Broker, BrokerConfig, supported_apis};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

async fn start(config: BrokerConfig) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let log = LogOptions::new().open(dir.path()).unwrap();
    let broker = Broker::bind(
        log,
        BrokerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: None,
            ..config
        },
    )
    .await
    .unwrap();
    let addr = broker.local_addr();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        broker
            .run(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Running {
        addr,
        stop: Some(tx),
        task,
        _dir: dir,
    }
}

fn frame<R: Encodable>(api: ApiKey, version: i16, correlation_id: i32, request: &R) -> Bytes {
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")))
        .encode(&mut body, api.request_header_version(version))
        .unwrap();
    request.encode(&mut body, version).unwrap();
    let mut out = BytesMut::new();
    out.put_i32(body.len() as i32);
    out.extend_from_slice(&body);
    out.freeze()
}

/// Reads one response frame, or `None` if the broker closed the connection.
async fn read_response(stream: &mut TcpStream) -> Option<Bytes> {
    let mut len = [0u8; 4];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut len))
        .await
        .unwrap();
    if read.is_err() {
        return None;
    }
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).await.unwrap();
    Some(Bytes::from(body))
}

async fn api_versions(addr: SocketAddr, version: i16) -> (i32, ApiVersionsResponse) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&frame(
        ApiKey::ApiVersions,
        version,
        7,
        &ApiVersionsRequest::default(),
    ))
    .await
    .unwrap();
    let mut body = read_response(&mut s).await.unwrap();
    // The ApiVersions response header is always v0: just the correlation id.
    let header = ResponseHeader::decode(&mut body, 0).unwrap();
    (
        header.correlation_id,
        ApiVersionsResponse::decode(&mut body, version.min(3)).unwrap(),
    )
}

/// Asserts the broker closes the connection after `bytes`, then still answers others.
async fn closes_and_survives(addr: SocketAddr, bytes: &[u8], close_write: bool) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    if close_write {
        s.shutdown().await.unwrap();
    }
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("broker did not close")
        .unwrap_or(0);
    assert_eq!(n, 0, "expected the connection to be closed, got {n} bytes");
    let (id, response) = api_versions(addr, 3).await;
    assert_eq!(
        (id, response.error_code),
        (7, 0),
        "broker stopped serving after bad input"
    );
}

// ApiVersions advertises exactly the implemented table, with a v0 response header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_lists_exactly_what_is_implemented() {
    let broker = start(BrokerConfig::default()).await;
    for version in 0..=3 {
        let (id, response) = api_versions(broker.addr, version).await;
        assert_eq!(id, 7);
        assert_eq!(response.error_code, 0);
        let listed: Vec<(i16, i16, i16)> = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        let expected: Vec<(i16, i16, i16)> = supported_apis()
            .iter()
            .map(|&(k, min, max)| (k as i16, min, max))
            .collect();
        assert_eq!(listed, expected);
        let produce = listed
            .iter()
            .find(|k| k.0 == ApiKey::Produce as i16)
            .unwrap();
        assert_eq!(
            produce.1, 0,
            "Produce must be advertised from v0 (librdkafka disables compression otherwise)"
        );
    }
    broker.stop().await;
}

// A client asking ApiVersions at a version we don't speak gets UNSUPPORTED_VERSION with
// our list in a v0 body, so it can retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_at_an_unknown_version_answers_in_v0() {
    let broker = start(BrokerConfig::default()).await;
    let mut s = TcpStream::connect(broker.addr).await.unwrap();
    let mut body = BytesMut::new();
    body.put_i16(ApiKey::ApiVersions as i16);
    body.put_i16(99);
    body.put_i32(42);
    body.put_i16(-1); // null client id
    body.extend_from_slice(&[0u8; 8]); // a future body we can't parse
    let mut out = BytesMut::new();
    out.put_i32(body.len() as i32);
    out.extend_from_slice(&body);
    s.write_all(&out).await.unwrap();
    let mut response = read_response(&mut s).await.unwrap();
    assert_eq!(response.get_i32(), 42);
    let decoded = ApiVersionsResponse::decode(&mut response, 0).unwrap();
    assert_eq!(decoded.error_code, 35, "UNSUPPORTED_VERSION");
    assert_eq!(decoded.api_keys.len(), supported_apis().len());
    broker.stop().await;
}

// Pipelined requests are answered in order; acks=0 produce gets no response at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_come_back_in_request_order() {
    let broker = start(BrokerConfig::default()).await;
    let mut s = TcpStream::connect(broker.addr).await.unwrap();
    let mut out = BytesMut::new();
    out.extend_from_slice(&frame(
        ApiKey::Metadata,
        9,
        1,
        &MetadataRequest::default().with_topics(None),
    ));
    out.extend_from_slice(&frame(
        ApiKey::Produce,
        9,
        2,
        &ProduceRequest::default().with_acks(0).with_timeout_ms(1000),
    ));
    out.extend_from_slice(&frame(
        ApiKey::ApiVersions,
        3,
        3,
        &ApiVersionsRequest::default(),
    ));
    out.extend_from_slice(&frame(ApiKey::Metadata, 1, 4, &MetadataRequest::default()));
    s.write_all(&out).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let mut r = read_response(&mut s).await.unwrap();
        ids.push(r.get_i32());
    }
    assert_eq!(ids, vec![1, 3, 4]);
    broker.stop().await;
}

// Frames that are too big, zero, negative, truncated, not Kafka at all, or name an API or
// version we don't implement close that connection only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_only_their_connection() {
    let broker = start(BrokerConfig {
        max_frame_bytes: 1 << 20,
        ..BrokerConfig::default()
    })
    .await;
    // A healthy connection open throughout.
    let mut healthy = TcpStream::connect(broker.addr).await.unwrap();

    // Oversized: claims 2 GiB; must not be allocated.
    closes_and_survives(broker.addr, &0x7fff_ffffi32.to_be_bytes(), false).await;
    closes_and_survives(broker.addr, &(2i32 << 20).to_be_bytes(), false).await;
    // Zero and negative lengths.
    closes_and_survives(broker.addr, &0i32.to_be_bytes(), false).await;
    closes_and_survives(broker.addr, &(-5i32).to_be_bytes(), false).await;
    // Truncated: says 100 bytes, sends 10, closes its side.
    let mut truncated = 100i32.to_be_bytes().to_vec();
    truncated.extend_from_slice(&[0u8; 10]);
    closes_and_survives(broker.addr, &truncated, true).await;
    // HTTP on the Kafka port.
    closes_and_survives(
        broker.addr,
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        false,
    )
    .await;
    // Unknown API key 999 and a known API at an unsupported version (Fetch v0).
    let mut unknown = BytesMut::new();
    unknown.put_i32(10);
    unknown.put_i16(999);
    unknown.put_i16(0);
    unknown.put_i32(1);
    unknown.put_i16(-1);
    closes_and_survives(broker.addr, &unknown, false).await;
    let mut old_fetch = BytesMut::new();
    old_fetch.put_i32(10);
    old_fetch.put_i16(ApiKey::Fetch as i16);
    old_fetch.put_i16(0);
    old_fetch.put_i32(1);
    old_fetch.put_i16(-1);
    closes_and_survives(broker.addr, &old_fetch, false).await;
    // A request whose body does not decode (Metadata v1 with a truncated topic array).
    let mut malformed = BytesMut::new();
    malformed.put_i32(12);
    malformed.put_i16(ApiKey::Metadata as i16);
    malformed.put_i16(1);
    malformed.put_i32(1);
    malformed.put_i16(-1);
    malformed.put_i16(0x7f);
    closes_and_survives(broker.addr, &malformed, false).await;
    // Random bytes (fixed seed), many times.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..50 {
        let bytes: Vec<u8> = (0..64)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut s = TcpStream::connect(broker.addr).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        let mut buf = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
    }

    // The healthy connection still works.
    healthy
        .write_all(&frame(
            ApiKey::ApiVersions,
            3,
            99,
            &ApiVersionsRequest::default(),
        ))
        .await
        .unwrap();
    let mut r = read_response(&mut healthy).await.unwrap();
    assert_eq!(r.get_i32(), 99);
    broker.stop().await;
}

// Idle connections are closed after the configured time; the connection cap closes
// connections beyond it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_and_connection_cap() {
    let broker = start(BrokerConfig {
        idle_timeout: Duration::from_millis(300),
        max_connections: 2,
        ..BrokerConfig::default()
    })
    .await;
    let mut a = TcpStream::connect(broker.addr).await.unwrap();
    let mut b = TcpStream::connect(broker.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut c = TcpStream::connect(broker.addr).await.unwrap();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "third connection should be closed by the cap");
    // a and b go idle and are closed after ~300 ms.
    for s in [&mut a, &mut b] {
        let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
            .await
            .expect("idle connection not closed")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }
    // With them gone, new connections are served again.
    let (id, _) = api_versions(broker.addr, 3).await;
    assert_eq!(id, 7);
    broker.stop().await;
}

// Metadata v1 (null topics = all) lists created topics; the broker advertises itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_describes_this_node() {
    let broker = start(BrokerConfig::default()).await;
    let mut s = TcpStream::connect(broker.addr).await.unwrap();
    s.write_all(&frame(
        ApiKey::Metadata,
        9,
        5,
        &MetadataRequest::default().with_topics(None),
    ))
    .await
    .unwrap();
    let mut r = read_response(&mut s).await.unwrap();
    let header =
        ResponseHeader::decode(&mut r, ApiKey::Metadata.response_header_version(9)).unwrap();
    assert_eq!(header.correlation_id, 5);
    let m = MetadataResponse::decode(&mut r, 9).unwrap();
    assert_eq!(m.brokers.len(), 1);
    assert_eq!(m.brokers[0].port, i32::from(broker.addr.port()));
    assert!(m.topics.iter().any(|t| {
        t.name
            .as_ref()
            .is_some_and(|n| &*n.0 == "__consumer_offsets")
    }));
    broker.stop().await;
}

// Request bytes held in memory are capped across connections: while one connection sits
// on a half-received 800-byte request, another's 400-byte request waits for the bytes to
// be released instead of the broker allocating past the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inflight_bytes_cap_applies_backpressure() {
    let broker = start(BrokerConfig {
        max_frame_bytes: 1000,
        max_inflight_bytes: 1000,
        ..BrokerConfig::default()
    })
    .await;
    let mut hog = TcpStream::connect(broker.addr).await.unwrap();
    let mut partial = 800i32.to_be_bytes().to_vec();
    partial.extend_from_slice(&[0u8; 10]);
    hog.write_all(&partial).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_string("x".repeat(300)))
        .with_client_software_version(StrBytes::from_static_str("1"));
    let mut waiting = TcpStream::connect(broker.addr).await.unwrap();
    waiting
        .write_all(&frame(ApiKey::ApiVersions, 3, 11, &request))
        .await
        .unwrap();
    let mut len = [0u8; 4];
    let early =
        tokio::time::timeout(Duration::from_millis(400), waiting.read_exact(&mut len)).await;
    assert!(
        early.is_err(),
        "answered while the in-flight cap was exhausted"
    );

    drop(hog);
    let mut response = read_response(&mut waiting)
        .await
        .expect("answered after the bytes were released");
    assert_eq!(response.get_i32(), 11);
    broker.stop().await;
}

// Requests whose array counts claim billions of elements (kafka-protocol 0.18 reserves
// capacity from the count before checking the frame; the fuzz target found a 14-byte
// one asking for 17 GB) close their connection; the broker neither aborts nor commits
// the memory, and keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn array_count_bombs_do_not_take_the_broker_down() {
    let broker = start(BrokerConfig::default()).await;
    // Metadata v1: header v1, then a topics array claiming i32::MAX entries.
    let mut classic = BytesMut::new();
    classic.put_i32(14);
    classic.put_i16(ApiKey::Metadata as i16);
    classic.put_i16(1);
    classic.put_i32(1);
    classic.put_i16(-1);
    classic.put_i32(i32::MAX);
    closes_and_survives(broker.addr, &classic, false).await;
    // Metadata v9 (flexible): header v2, then a compact array claiming u32::MAX - 1.
    let mut compact = BytesMut::new();
    compact.put_i32(16);
    compact.put_i16(ApiKey::Metadata as i16);
    compact.put_i16(9);
    compact.put_i32(2);
    compact.put_i16(-1);
    compact.put_u8(0); // no tagged fields in the header
    compact.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // varint u32::MAX
    closes_and_survives(broker.addr, &compact, false).await;
    // Produce v3: null transactional id, acks, timeout, topic array claiming i32::MAX.
    let mut produce = BytesMut::new();
    produce.put_i32(20);
    produce.put_i16(ApiKey::Produce as i16);
    produce.put_i16(3);
    produce.put_i32(3);
    produce.put_i16(-1);
    produce.put_i16(-1);
    produce.put_i16(1);
    produce.put_i32(1000);
    produce.put_i32(i32::MAX);
    closes_and_survives(broker.addr, &produce, false).await;
    broker.stop().await;
}
