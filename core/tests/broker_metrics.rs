//! The broker's Prometheus endpoint: Produce and Fetch over the wire move the per-topic
//! record and byte counters by exactly what was sent, every request is counted and timed
//! per API, and scrape-time gauges (log end offset, consumer-group lag, open connections)
//! match the log. Also guards the tiny HTTP responder: 404 for other paths, and an
//! oversized request head is refused without taking the endpoint (or the broker) down.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, ProduceRequest, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use sluice_core::broker::{Broker, BrokerConfig};
use sluice_core::record::{ProducerStamp, Record, encode_batch};
use sluice_core::{Compression, LogOptions, NewTopic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOPIC: &str = "metered";

fn frame<R: Encodable>(api: ApiKey, version: i16, correlation_id: i32, request: &R) -> Bytes {
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("metrics-test")))
        .encode(&mut body, api.request_header_version(version))
        .unwrap();
    request.encode(&mut body, version).unwrap();
    let mut out = BytesMut::new();
    out.put_i32(body.len() as i32);
    out.extend_from_slice(&body);
    out.freeze()
}

/// Sends one request and returns the response body after its header.
async fn call<R: Encodable>(s: &mut TcpStream, api: ApiKey, version: i16, request: &R) -> Bytes {
    s.write_all(&frame(api, version, 1, request)).await.unwrap();
    let mut len = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut len))
        .await
        .unwrap()
        .unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await.unwrap();
    let mut body = Bytes::from(body);
    use kafka_protocol::protocol::Decodable;
    ResponseHeader::decode(&mut body, api.response_header_version(version)).unwrap();
    body
}

fn batch(values: &[&str]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            offset: i as i64,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: Vec::new(),
        })
        .collect();
    encode_batch(&records, Compression::None, ProducerStamp::default())
        .unwrap()
        .freeze()
}

/// GETs `path` and returns (status line, body); the endpoint closes after answering.
async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of the sample whose name-and-labels text is exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_reports_traffic_and_lag() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogOptions::new().open(dir.path()).unwrap();
    log.create_topic(NewTopic::new(TOPIC, 1)).unwrap();
    let broker = Broker::bind(
        log.clone(),
        BrokerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..BrokerConfig::default()
        },
    )
    .await
    .unwrap();
    let addr = broker.local_addr();
    let metrics = broker.metrics_addr().expect("metrics are on");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(broker.run(async {
        let _ = stopped.await;
    }));

    // Two batches, five records, over the wire.
    let batches = [batch(&["a", "b", "c"]), batch(&["d", "e"])];
    let produced_bytes: usize = batches.iter().map(Bytes::len).sum();
    let mut kafka = TcpStream::connect(addr).await.unwrap();
    for records in &batches {
        let request = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(1000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(records.clone())),
                    ]),
            ]);
        call(&mut kafka, ApiKey::Produce, 9, &request).await;
    }
    // Fetch everything from offset 0 once.
    let fetch = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    call(&mut kafka, ApiKey::Fetch, 12, &fetch).await;
    // A group that has read two of the five records.
    log.commit_offsets("readers", &[(TOPIC.to_string(), 0, 2)])
        .unwrap();

    let (status, text) = http_get(metrics, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{text}");
    let topic = format!("{{topic=\"{TOPIC}\"}}");
    assert_eq!(
        sample(&text, &format!("sluice_records_in_total{topic}")),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("sluice_bytes_in_total{topic}")),
        Some(produced_bytes as f64)
    );
    assert_eq!(
        sample(&text, &format!("sluice_records_out_total{topic}")),
        Some(5.0)
    );
    assert!(sample(&text, &format!("sluice_bytes_out_total{topic}")).unwrap() > 0.0);
    assert_eq!(
        sample(&text, "sluice_requests_total{api=\"Produce\"}"),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "sluice_requests_total{api=\"Fetch\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "sluice_request_duration_seconds_count{api=\"Produce\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert!(text.contains("# TYPE sluice_request_duration_seconds histogram"));
    assert_eq!(
        sample(
            &text,
            &format!("sluice_log_end_offset{{topic=\"{TOPIC}\",partition=\"0\"}}")
        ),
        Some(5.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "sluice_consumer_group_lag{{group=\"readers\",topic=\"{TOPIC}\",partition=\"0\"}}"
            )
        ),
        Some(3.0),
        "lag is end (5) minus committed (2)"
    );
    assert_eq!(sample(&text, "sluice_open_connections"), Some(1.0));

    let (status, _) = http_get(metrics, "/nope").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    // A request line far beyond the 8 KiB bound: refused and closed, endpoint unharmed.
    let mut huge = TcpStream::connect(metrics).await.unwrap();
    let line = format!("GET /{} HTTP/1.1\r\n", "x".repeat(64 * 1024));
    let _ = huge.write_all(line.as_bytes()).await; // may fail once the endpoint hangs up
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), huge.read_to_end(&mut answer))
        .await
        .expect("the endpoint did not close an oversized request");
    if closed.is_ok() && !answer.is_empty() {
        assert!(answer.starts_with(b"HTTP/1.1 431"), "{answer:?}");
    }
    let (status, _) = http_get(metrics, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");

    drop(kafka);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

// `metrics_listen = "off"` binds nothing.
#[tokio::test]
async fn metrics_can_be_turned_off() {
    let config: BrokerConfig = toml::from_str("metrics_listen = \"off\"").unwrap();
    assert_eq!(config.metrics_listen, None);
    let dir = tempfile::tempdir().unwrap();
    let log = LogOptions::new().open(dir.path()).unwrap();
    let broker = Broker::bind(
        log,
        BrokerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..config
        },
    )
    .await
    .unwrap();
    assert_eq!(broker.metrics_addr(), None);
}
