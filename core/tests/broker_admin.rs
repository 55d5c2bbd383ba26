//! Topic settings and partition administration through the broker, with a real Kafka
//! admin client: librdkafka (through `rdkafka::admin::AdminClient`) runs DescribeConfigs,
//! AlterConfigs, CreatePartitions and DeleteRecords against a `Broker` over a `Log` in a
//! temporary directory, and the tests check both what the client sees and what the log
//! holds afterwards.
//!
//! The `rdkafka` crate has no IncrementalAlterConfigs and reports every resource of an
//! AlterConfigs or DescribeConfigs as a success (it drops their error codes and messages),
//! so those are checked with requests encoded by `kafka-protocol` over a plain TCP
//! connection.
//!
//! The broker runs on its own multi-thread runtime in a background thread, so a test may
//! block in librdkafka calls; every wait is bounded.

// Tests fail loudly on the first unexpected error.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, DescribeConfigsRequest,
    DescribeConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    RequestHeader, ResponseHeader, alter_configs_request, incremental_alter_configs_request,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sluice_core::broker::{Broker, BrokerConfig};
use sluice_core::config::TOPIC_CONFIG_KEYS;
use sluice_core::{Log, LogOptions};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a broker may take to bind, or to stop after its shutdown signal.
const BROKER_START_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest any single client call may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The broker's node id; not 0, so a test notices a hard-coded one.
const NODE_ID: i32 = 3;

/// `ConfigResource.Type` codes.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
/// IncrementalAlterConfigs operations.
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// A broker over a log in a temporary directory. Stops (bounded) when dropped.
struct TestBroker {
    addr: SocketAddr,
    log: Log,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<sluice_core::Result<()>>>,
    _dir: TempDir,
}

impl TestBroker {
    fn start() -> TestBroker {
        let dir = tempfile::tempdir().unwrap();
        let log = LogOptions::new().open(dir.path()).unwrap();
        let broker_log = log.clone();
        let config = BrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            node_id: NODE_ID,
            metrics_listen: None,
            ..BrokerConfig::default()
        };
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let broker = Broker::bind(broker_log, config).await?;
                let _ = addr_tx.send(broker.local_addr());
                broker
                    .run(async move {
                        let _ = shutdown_rx.await;
                    })
                    .await
            })
        });
        let addr = addr_rx
            .recv_timeout(BROKER_START_STOP_TIMEOUT)
            .expect("broker did not bind in time");
        TestBroker {
            addr,
            log,
            shutdown: Some(shutdown),
            thread: Some(thread),
            _dir: dir,
        }
    }

    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.addr.to_string())
            .set("broker.address.family", "v4")
            .set("socket.timeout.ms", "10000");
        config
    }

    fn admin(&self) -> AdminClient<DefaultClientContext> {
        self.client_config().create().unwrap()
    }

    fn consumer(&self) -> BaseConsumer {
        self.client_config().create().unwrap()
    }

    fn producer(&self) -> FutureProducer {
        self.client_config()
            .set("acks", "all")
            .set("message.timeout.ms", "10000")
            .create()
            .unwrap()
    }

    fn overrides(&self, topic: &str) -> Vec<(String, String)> {
        let overrides = self.log.describe_topic(topic).unwrap().overrides;
        overrides.into_iter().collect()
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let deadline = Instant::now() + BROKER_START_STOP_TIMEOUT;
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            // A second panic while unwinding would abort and hide the first one.
            if !std::thread::panicking() {
                assert!(thread.is_finished(), "broker did not stop in time");
                thread.join().unwrap().unwrap();
            }
        }
    }
}

fn options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(CLIENT_TIMEOUT))
        .operation_timeout(Some(CLIENT_TIMEOUT))
}

/// Awaits an admin request, failing the test if it errs as a whole or takes too long.
async fn with_deadline<T>(request: impl Future<Output = KafkaResult<T>>) -> T {
    tokio::time::timeout(CLIENT_TIMEOUT * 2, request)
        .await
        .expect("admin request timed out")
        .expect("admin request failed")
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Sends one request on a fresh connection and decodes the response.
async fn call<Req: Encodable, Resp: Decodable>(
    addr: SocketAddr,
    api: ApiKey,
    version: i16,
    request: &Req,
) -> Resp {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut body = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(17)
            .with_client_id(Some(text("broker-admin-test")))
            .encode(&mut body, api.request_header_version(version))
            .unwrap();
        request.encode(&mut body, version).unwrap();
        let mut frame = BytesMut::new();
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        stream.write_all(&frame).await.unwrap();
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await.unwrap();
        let mut response = vec![0u8; i32::from_be_bytes(len) as usize];
        stream.read_exact(&mut response).await.unwrap();
        let mut response = Bytes::from(response);
        let header =
            ResponseHeader::decode(&mut response, api.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, 17);
        Resp::decode(&mut response, version).unwrap()
    };
    tokio::time::timeout(CLIENT_TIMEOUT, exchange)
        .await
        .expect("no response in time")
}

/// IncrementalAlterConfigs of one topic; returns (error code, error message).
async fn incremental(
    broker: &TestBroker,
    topic: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, String) {
    let configs = ops
        .iter()
        .map(|&(name, op, value)| {
            incremental_alter_configs_request::AlterableConfig::default()
                .with_name(text(name))
                .with_config_operation(op)
                .with_value(value.map(text))
        })
        .collect();
    let request = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(text(topic))
                .with_configs(configs),
        ]);
    let response: IncrementalAlterConfigsResponse =
        call(broker.addr, ApiKey::IncrementalAlterConfigs, 1, &request).await;
    let r = &response.responses[0];
    assert_eq!(r.resource_name.as_str(), topic);
    (
        r.error_code,
        r.error_message.as_deref().unwrap_or("").to_string(),
    )
}

#[tokio::test]
async fn describe_configs_reports_overrides_and_defaults() {
    // Proves DescribeConfigs lists every topic setting with its effective value, marking
    // a topic's overrides DYNAMIC_TOPIC_CONFIG and the rest DEFAULT_CONFIG (what
    // `kafka-configs --describe` and UIs show), and describes the broker's log defaults.
    let broker = TestBroker::start();
    let admin = broker.admin();
    let topic = NewTopic::new("described", 2, TopicReplication::Fixed(1))
        .set("retention.ms", "3600000")
        .set("cleanup.policy", "compact");
    let created = with_deadline(admin.create_topics([&topic], &options())).await;
    assert_eq!(created, vec![Ok("described".to_string())]);

    let described = with_deadline(admin.describe_configs(
        &[
            ResourceSpecifier::Topic("described"),
            ResourceSpecifier::Broker(NODE_ID),
        ],
        &options(),
    ))
    .await;
    assert_eq!(described.len(), 2);
    let topic = described[0].as_ref().unwrap();
    for key in TOPIC_CONFIG_KEYS {
        let entry = topic.get(key).unwrap_or_else(|| panic!("{key} missing"));
        assert!(!entry.is_read_only && !entry.is_sensitive, "{entry:?}");
        assert!(entry.value.is_some(), "{entry:?}");
    }
    let retention = topic.get("retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    assert!(!retention.is_default);
    let policy = topic.get("cleanup.policy").unwrap();
    assert_eq!(policy.value.as_deref(), Some("compact"));
    assert_eq!(policy.source, ConfigSource::DynamicTopic);
    let segment = topic.get("segment.bytes").unwrap();
    assert_eq!(segment.value.as_deref(), Some("1073741824"));
    assert_eq!(segment.source, ConfigSource::Default);
    assert!(segment.is_default);

    let brokers = described[1].as_ref().unwrap();
    let retention = brokers.get("log.retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("604800000"));
    assert_eq!(retention.source, ConfigSource::Default);
    assert_eq!(
        brokers.get("num.partitions").unwrap().value.as_deref(),
        Some("1")
    );

    // At v4 (flexible encoding): a key filter, types and documentation; an unknown topic
    // is an error of its own resource only.
    let request = DescribeConfigsRequest::default()
        .with_include_documentation(true)
        .with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(text("described"))
                .with_configuration_keys(Some(vec![text("cleanup.policy"), text("nope")])),
            DescribeConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(text("missing")),
        ]);
    let response: DescribeConfigsResponse =
        call(broker.addr, ApiKey::DescribeConfigs, 4, &request).await;
    let filtered = &response.results[0];
    assert_eq!(filtered.error_code, 0);
    assert_eq!(filtered.configs.len(), 1);
    let policy = &filtered.configs[0];
    assert_eq!(policy.name.as_str(), "cleanup.policy");
    assert_eq!(policy.config_type, 7, "LIST");
    assert!(policy.documentation.is_some());
    let missing = &response.results[1];
    assert_eq!(
        missing.error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert!(
        missing
            .error_message
            .as_deref()
            .unwrap()
            .contains("missing"),
        "{missing:?}"
    );
}

#[tokio::test]
async fn alter_configs_replaces_overrides_and_validates_them() {
    // Proves AlterConfigs replaces a topic's whole set of overrides and the log applies
    // them; validate_only changes nothing; a bad key or value is INVALID_CONFIG with a
    // message naming the key, and leaves the topic as it was; broker settings are refused.
    let broker = TestBroker::start();
    let admin = broker.admin();
    let topic = NewTopic::new("altered", 1, TopicReplication::Fixed(1))
        .set("retention.ms", "3600000")
        .set("segment.bytes", "1048576");
    with_deadline(admin.create_topics([&topic], &options())).await;

    let change = AlterConfig::new(ResourceSpecifier::Topic("altered")).set("retention.ms", "1000");
    let checked =
        with_deadline(admin.alter_configs([&change], &options().validate_only(true))).await;
    assert!(checked[0].is_ok(), "{checked:?}");
    assert_eq!(
        broker.overrides("altered"),
        vec![
            ("retention.ms".to_string(), "3600000".to_string()),
            ("segment.bytes".to_string(), "1048576".to_string()),
        ]
    );

    let altered = with_deadline(admin.alter_configs([&change], &options())).await;
    assert!(altered[0].is_ok(), "{altered:?}");
    let d = broker.log.describe_topic("altered").unwrap();
    assert_eq!(
        d.overrides.into_iter().collect::<Vec<_>>(),
        vec![("retention.ms".to_string(), "1000".to_string())]
    );
    assert_eq!(d.config["retention.ms"], "1000");
    assert_eq!(d.config["segment.bytes"], "1073741824");
    let described =
        with_deadline(admin.describe_configs(&[ResourceSpecifier::Topic("altered")], &options()))
            .await;
    let described = described[0].as_ref().unwrap();
    let retention = described.get("retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("1000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    assert_eq!(
        described.get("segment.bytes").unwrap().source,
        ConfigSource::Default
    );

    for (key, value) in [("retention.mss", "5"), ("retention.ms", "soon")] {
        let (code, message) = alter(&broker, TOPIC, "altered", &[(key, value)]).await;
        assert_eq!(code, ResponseError::InvalidConfig.code(), "{key}");
        assert!(message.contains(key), "{message}");
    }
    assert_eq!(
        broker.overrides("altered"),
        vec![("retention.ms".to_string(), "1000".to_string())]
    );
    let (code, _) = alter(&broker, TOPIC, "missing", &[("retention.ms", "1")]).await;
    assert_eq!(code, ResponseError::UnknownTopicOrPartition.code());
    let node = NODE_ID.to_string();
    let (code, message) = alter(&broker, BROKER, &node, &[("log.retention.ms", "1")]).await;
    assert_eq!(code, ResponseError::InvalidConfig.code());
    assert!(message.contains("sluice.toml"), "{message}");
}

/// AlterConfigs (v0) of one resource; returns (error code, error message). The `rdkafka`
/// crate reports every resource of an AlterConfigs as a success, so errors are checked here.
async fn alter(
    broker: &TestBroker,
    resource_type: i8,
    name: &str,
    configs: &[(&str, &str)],
) -> (i16, String) {
    let configs = configs
        .iter()
        .map(|&(key, value)| {
            alter_configs_request::AlterableConfig::default()
                .with_name(text(key))
                .with_value(Some(text(value)))
        })
        .collect();
    let request = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(text(name))
            .with_configs(configs),
    ]);
    let response: AlterConfigsResponse = call(broker.addr, ApiKey::AlterConfigs, 0, &request).await;
    let r = &response.responses[0];
    assert_eq!(r.resource_name.as_str(), name);
    (
        r.error_code,
        r.error_message.as_deref().unwrap_or("").to_string(),
    )
}

#[tokio::test]
async fn incremental_alter_configs_edits_overrides() {
    // Proves IncrementalAlterConfigs (what `kafka-configs --alter` sends) edits overrides in
    // place: SET and DELETE keep the others, APPEND and SUBTRACT edit list settings from
    // their effective value, only list settings take them, and validate_only changes
    // nothing.
    let broker = TestBroker::start();
    broker
        .log
        .create_topic(sluice_core::NewTopic::new("edited", 1).config("segment.bytes", "1048576"))
        .unwrap();
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };

    let ok = incremental(
        &broker,
        "edited",
        &[("retention.ms", SET, Some("5000"))],
        true,
    )
    .await;
    assert_eq!(ok.0, 0, "{ok:?}");
    assert_eq!(
        broker.overrides("edited"),
        pairs(&[("segment.bytes", "1048576")])
    );

    let ok = incremental(
        &broker,
        "edited",
        &[
            ("retention.ms", SET, Some("5000")),
            ("cleanup.policy", APPEND, Some("compact")),
        ],
        false,
    )
    .await;
    assert_eq!(ok.0, 0, "{ok:?}");
    assert_eq!(
        broker.overrides("edited"),
        pairs(&[
            ("cleanup.policy", "delete,compact"),
            ("retention.ms", "5000"),
            ("segment.bytes", "1048576"),
        ])
    );
    let d = broker.log.describe_topic("edited").unwrap();
    assert_eq!(d.config["cleanup.policy"], "compact,delete");
    assert_eq!(d.config["retention.ms"], "5000");

    let ok = incremental(
        &broker,
        "edited",
        &[
            ("cleanup.policy", SUBTRACT, Some("delete")),
            ("segment.bytes", DELETE, None),
        ],
        false,
    )
    .await;
    assert_eq!(ok.0, 0, "{ok:?}");
    assert_eq!(
        broker.overrides("edited"),
        pairs(&[("cleanup.policy", "compact"), ("retention.ms", "5000")])
    );

    let (code, message) = incremental(
        &broker,
        "edited",
        &[("retention.ms", APPEND, Some("1"))],
        false,
    )
    .await;
    assert_eq!(code, ResponseError::InvalidConfig.code());
    assert!(message.contains("retention.ms"), "{message}");
    let (code, message) = incremental(
        &broker,
        "edited",
        &[("cleanup.policy", SUBTRACT, Some("compact"))],
        false,
    )
    .await;
    assert_eq!(code, ResponseError::InvalidConfig.code());
    assert!(message.contains("cleanup.policy"), "{message}");
    let (code, message) = incremental(
        &broker,
        "edited",
        &[("segment.bytez", SET, Some("1"))],
        false,
    )
    .await;
    assert_eq!(code, ResponseError::InvalidConfig.code());
    assert!(message.contains("segment.bytez"), "{message}");
    let (code, _) = incremental(
        &broker,
        "missing",
        &[("retention.ms", SET, Some("1"))],
        false,
    )
    .await;
    assert_eq!(code, ResponseError::UnknownTopicOrPartition.code());
    assert_eq!(
        broker.overrides("edited"),
        pairs(&[("cleanup.policy", "compact"), ("retention.ms", "5000")])
    );

    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(text(&NODE_ID.to_string()))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(text("log.retention.ms"))
                    .with_config_operation(SET)
                    .with_value(Some(text("1"))),
            ]),
    ]);
    let response: IncrementalAlterConfigsResponse =
        call(broker.addr, ApiKey::IncrementalAlterConfigs, 0, &request).await;
    assert_eq!(
        response.responses[0].error_code,
        ResponseError::InvalidConfig.code()
    );
}

#[tokio::test]
async fn create_partitions_grows_a_topic() {
    // Proves CreatePartitions grows a topic in the log and in metadata so a producer can
    // write to the new partitions, and refuses with Kafka's errors what it can't do:
    // shrinking or keeping the count (INVALID_PARTITIONS), replicas on other brokers
    // (INVALID_REPLICA_ASSIGNMENT), unknown topics; validate_only changes nothing.
    let broker = TestBroker::start();
    let admin = broker.admin();
    let topic = NewTopic::new("grown", 1, TopicReplication::Fixed(1));
    with_deadline(admin.create_topics([&topic], &options())).await;

    let checked = with_deadline(admin.create_partitions(
        [&NewPartitions::new("grown", 6)],
        &options().validate_only(true),
    ))
    .await;
    assert_eq!(checked, vec![Ok("grown".to_string())]);
    assert_eq!(broker.log.partition_count("grown").unwrap(), 1);

    let grown =
        with_deadline(admin.create_partitions([&NewPartitions::new("grown", 4)], &options())).await;
    assert_eq!(grown, vec![Ok("grown".to_string())]);
    assert_eq!(broker.log.partition_count("grown").unwrap(), 4);
    let metadata = broker
        .consumer()
        .fetch_metadata(Some("grown"), CLIENT_TIMEOUT)
        .unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 4);

    let producer = broker.producer();
    let delivery = tokio::time::timeout(
        CLIENT_TIMEOUT,
        producer.send(
            FutureRecord::to("grown").partition(3).key("k").payload("v"),
            CLIENT_TIMEOUT,
        ),
    )
    .await
    .expect("no delivery report in time")
    .map_err(|(e, _)| e)
    .unwrap();
    assert_eq!((delivery.partition, delivery.offset), (3, 0));
    assert_eq!(
        broker.log.partition("grown", 3).unwrap().log_end_offset(),
        1
    );

    for (count, expected) in [
        (4, RDKafkaErrorCode::InvalidPartitions),
        (2, RDKafkaErrorCode::InvalidPartitions),
    ] {
        let refused = with_deadline(
            admin.create_partitions([&NewPartitions::new("grown", count)], &options()),
        )
        .await;
        assert_eq!(
            refused,
            vec![Err(("grown".to_string(), expected))],
            "{count}"
        );
    }
    let elsewhere: &[&[i32]] = &[&[NODE_ID + 1]];
    let refused = with_deadline(admin.create_partitions(
        [&NewPartitions::new("grown", 5).assign(elsewhere)],
        &options(),
    ))
    .await;
    assert_eq!(
        refused,
        vec![Err((
            "grown".to_string(),
            RDKafkaErrorCode::InvalidReplicaAssignment
        ))]
    );
    let refused =
        with_deadline(admin.create_partitions([&NewPartitions::new("missing", 2)], &options()))
            .await;
    assert_eq!(
        refused,
        vec![Err((
            "missing".to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))]
    );
    assert_eq!(broker.log.partition_count("grown").unwrap(), 4);
}

#[tokio::test]
async fn delete_records_advances_the_low_watermark() {
    // Proves DeleteRecords moves a partition's log start offset (the low watermark clients
    // see through ListOffsets), that -1 means "up to the high watermark", that an offset
    // past the end is OFFSET_OUT_OF_RANGE and changes nothing, and that the committed
    // offsets in `__consumer_offsets` can't be trimmed away.
    let broker = TestBroker::start();
    let admin = broker.admin();
    let topic = NewTopic::new("trimmed", 1, TopicReplication::Fixed(1));
    with_deadline(admin.create_topics([&topic], &options())).await;
    let producer = broker.producer();
    for i in 0..10 {
        let value = format!("v{i}");
        tokio::time::timeout(
            CLIENT_TIMEOUT,
            producer.send(
                FutureRecord::<(), _>::to("trimmed")
                    .partition(0)
                    .payload(&value),
                CLIENT_TIMEOUT,
            ),
        )
        .await
        .expect("no delivery report in time")
        .map_err(|(e, _)| e)
        .unwrap();
    }
    let consumer = broker.consumer();
    assert_eq!(
        consumer
            .fetch_watermarks("trimmed", 0, CLIENT_TIMEOUT)
            .unwrap(),
        (0, 10)
    );

    let delete = |offset: Offset| {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset("trimmed", 0, offset).unwrap();
        list
    };
    let result = with_deadline(admin.delete_records(&delete(Offset::Offset(4)), &options())).await;
    let element = &result.elements()[0];
    assert!(element.error().is_ok(), "{:?}", element.error());
    assert_eq!(element.offset(), Offset::Offset(4));
    assert_eq!(
        consumer
            .fetch_watermarks("trimmed", 0, CLIENT_TIMEOUT)
            .unwrap(),
        (4, 10)
    );
    assert_eq!(
        broker
            .log
            .partition("trimmed", 0)
            .unwrap()
            .log_start_offset(),
        4
    );

    let result = with_deadline(admin.delete_records(&delete(Offset::Offset(50)), &options())).await;
    let element = &result.elements()[0];
    // rdkafka reports a partition's error in a result list as `OffsetFetch`.
    assert!(
        matches!(
            element.error(),
            Err(rdkafka::error::KafkaError::OffsetFetch(
                RDKafkaErrorCode::OffsetOutOfRange
            ))
        ),
        "{:?}",
        element.error()
    );
    assert_eq!(
        broker
            .log
            .partition("trimmed", 0)
            .unwrap()
            .log_start_offset(),
        4
    );

    let result = with_deadline(admin.delete_records(&delete(Offset::End), &options())).await;
    let element = &result.elements()[0];
    assert!(element.error().is_ok(), "{:?}", element.error());
    assert_eq!(element.offset(), Offset::Offset(10));
    assert_eq!(
        consumer
            .fetch_watermarks("trimmed", 0, CLIENT_TIMEOUT)
            .unwrap(),
        (10, 10)
    );

    let mut internal = TopicPartitionList::new();
    internal
        .add_partition_offset("__consumer_offsets", 0, Offset::End)
        .unwrap();
    let result = with_deadline(admin.delete_records(&internal, &options())).await;
    assert!(
        matches!(
            result.elements()[0].error(),
            Err(rdkafka::error::KafkaError::OffsetFetch(
                RDKafkaErrorCode::InvalidTopic
            ))
        ),
        "{:?}",
        result.elements()[0].error()
    );
}
