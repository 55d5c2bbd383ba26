//! Which APIs and versions the broker implements, and routing a request frame to its
//! handler. ApiVersions advertises exactly this table.
//!
//! A request this broker can't handle (unknown API key, unsupported version, a body that
//! does not decode) closes its connection with one log line, as Kafka brokers do — except
//! ApiVersions at an unsupported version, which is answered with UNSUPPORTED_VERSION and
//! our list in a v0 body so the client can retry with a version we speak.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};

use super::server::Context;

/// (API, lowest version, highest version) this broker implements.
///
/// Produce is advertised from v0 even though only the v2 record format is accepted:
/// librdkafka turns compression off when a broker's Produce range starts above v0-v2.
/// Fetch starts at v4 (the first with the v2 record format and isolation levels),
/// ListOffsets at v1 (v0 is the pre-timestamp API). The transaction APIs stop at v3:
/// AddPartitionsToTxn v4 batches transactions and verifies partitions (KIP-890), which is
/// not implemented.
const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 6),
    (ApiKey::Metadata, 0, 9),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
];

/// The APIs and version ranges the broker implements.
pub fn supported_apis() -> &'static [(ApiKey, i16, i16)] {
    SUPPORTED
}

/// What to do after a request.
pub(crate) enum Outcome {
    /// Send these bytes (a whole response frame).
    Respond(BytesMut),
    /// Send nothing (Produce with acks=0).
    NoResponse,
    /// Close the connection, logging why.
    Close(String),
}

/// Encodes a response frame: length, response header, body.
pub(crate) fn encode_response<R: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Outcome {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    if let Err(e) = header.encode(&mut buf, api.response_header_version(version)) {
        return Outcome::Close(format!("encoding {api:?} v{version} response header: {e}"));
    }
    if let Err(e) = body.encode(&mut buf, version) {
        return Outcome::Close(format!("encoding {api:?} v{version} response: {e}"));
    }
    let len = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&len.to_be_bytes());
    Outcome::Respond(buf)
}

macro_rules! route {
    ($ctx:expr, $body:expr, $header:expr, $api:expr, $version:expr, $req:ty, $handler:path) => {{
        match <$req>::decode(&mut $body, $version) {
            Ok(request) => {
                let response = $handler($ctx, &$header, request, $version).await;
                encode_response($api, $version, $header.correlation_id, &response)
            }
            Err(e) => Outcome::Close(format!("malformed {:?} v{} request: {e}", $api, $version)),
        }
    }};
}

/// Decodes a request frame (header and body) the way [`handle`] does, without acting on
/// it: for the request-decoding fuzz target and diagnostic tools. An error says why the
/// broker would close the connection.
pub fn decode_request(frame: Bytes) -> Result<(), String> {
    let (Some(key), Some(version)) = (frame.get(0..2), frame.get(2..4)) else {
        return Err("shorter than a request header".into());
    };
    let raw_key = i16::from_be_bytes([key[0], key[1]]);
    let version = i16::from_be_bytes([version[0], version[1]]);
    let api = ApiKey::try_from(raw_key).map_err(|_| format!("unknown API key {raw_key}"))?;
    if !SUPPORTED
        .iter()
        .any(|&(k, min, max)| k == api && (min..=max).contains(&version))
    {
        return Err(format!("{api:?} v{version} not supported"));
    }
    let mut body = frame;
    RequestHeader::decode(&mut body, api.request_header_version(version))
        .map_err(|e| e.to_string())?;
    macro_rules! body {
        ($($key:ident => $req:ty),* $(,)?) => {
            match api {
                $(ApiKey::$key => <$req>::decode(&mut body, version).map(drop).map_err(|e| e.to_string()),)*
                other => Err(format!("{other:?} has no decoder here")),
            }
        };
    }
    body!(
        ApiVersions => ApiVersionsRequest,
        Metadata => MetadataRequest,
        Produce => ProduceRequest,
        Fetch => FetchRequest,
        ListOffsets => ListOffsetsRequest,
        CreateTopics => CreateTopicsRequest,
        DeleteTopics => DeleteTopicsRequest,
        InitProducerId => InitProducerIdRequest,
        FindCoordinator => FindCoordinatorRequest,
        OffsetCommit => OffsetCommitRequest,
        OffsetFetch => OffsetFetchRequest,
        DescribeConfigs => DescribeConfigsRequest,
        AlterConfigs => AlterConfigsRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        DeleteRecords => DeleteRecordsRequest,
        CreatePartitions => CreatePartitionsRequest,
        JoinGroup => JoinGroupRequest,
        SyncGroup => SyncGroupRequest,
        Heartbeat => HeartbeatRequest,
        LeaveGroup => LeaveGroupRequest,
        ListGroups => ListGroupsRequest,
        DescribeGroups => DescribeGroupsRequest,
        DeleteGroups => DeleteGroupsRequest,
        AddPartitionsToTxn => AddPartitionsToTxnRequest,
        AddOffsetsToTxn => AddOffsetsToTxnRequest,
        EndTxn => EndTxnRequest,
        TxnOffsetCommit => TxnOffsetCommitRequest,
    )
}

/// Handles one request frame, timing it for `sluice_request_duration_seconds`.
pub(crate) async fn handle(ctx: &Context, frame: Bytes) -> Outcome {
    let started = std::time::Instant::now();
    // Only known API keys become labels, so a hostile client can't grow the series.
    let api = frame
        .get(0..2)
        .and_then(|k| ApiKey::try_from(i16::from_be_bytes([k[0], k[1]])).ok());
    let outcome = route_request(ctx, frame).await;
    if let Some(api) = api {
        ctx.metrics.request(api, started.elapsed());
    }
    outcome
}

async fn route_request(ctx: &Context, frame: Bytes) -> Outcome {
    let (Some(key), Some(version)) = (frame.get(0..2), frame.get(2..4)) else {
        return Outcome::Close(format!(
            "request of {} bytes is shorter than a request header",
            frame.len()
        ));
    };
    let raw_key = i16::from_be_bytes([key[0], key[1]]);
    let version = i16::from_be_bytes([version[0], version[1]]);
    let Ok(api) = ApiKey::try_from(raw_key) else {
        return Outcome::Close(format!("unknown API key {raw_key}"));
    };
    let supported = SUPPORTED.iter().find(|(k, _, _)| *k == api);
    let in_range = supported.is_some_and(|&(_, min, max)| (min..=max).contains(&version));
    if api == ApiKey::ApiVersions && !in_range {
        return super::api_versions::unsupported(&frame);
    }
    let Some(&(_, min, max)) = supported else {
        return Outcome::Close(format!(
            "{api:?} (key {raw_key}) is not implemented by this broker"
        ));
    };
    if !in_range {
        return Outcome::Close(format!(
            "{api:?} v{version} is not supported (this broker speaks v{min}..=v{max})"
        ));
    }
    let mut body = frame.clone();
    let header = match RequestHeader::decode(&mut body, api.request_header_version(version)) {
        Ok(h) => h,
        Err(e) => {
            return Outcome::Close(format!("malformed {api:?} v{version} request header: {e}"));
        }
    };
    match api {
        ApiKey::ApiVersions => route!(
            ctx,
            body,
            header,
            api,
            version,
            ApiVersionsRequest,
            super::api_versions::handle
        ),
        ApiKey::Metadata => route!(
            ctx,
            body,
            header,
            api,
            version,
            MetadataRequest,
            super::metadata::handle
        ),
        ApiKey::Produce => match ProduceRequest::decode(&mut body, version) {
            Ok(request) => {
                let acks = request.acks;
                let response = super::produce::handle(ctx, &header, request, version).await;
                if acks == 0 {
                    Outcome::NoResponse
                } else {
                    encode_response(api, version, header.correlation_id, &response)
                }
            }
            Err(e) => Outcome::Close(format!("malformed Produce v{version} request: {e}")),
        },
        ApiKey::Fetch => route!(
            ctx,
            body,
            header,
            api,
            version,
            FetchRequest,
            super::fetch::handle
        ),
        ApiKey::ListOffsets => route!(
            ctx,
            body,
            header,
            api,
            version,
            ListOffsetsRequest,
            super::list_offsets::handle
        ),
        ApiKey::CreateTopics => route!(
            ctx,
            body,
            header,
            api,
            version,
            CreateTopicsRequest,
            super::admin::create_topics
        ),
        ApiKey::DeleteTopics => route!(
            ctx,
            body,
            header,
            api,
            version,
            DeleteTopicsRequest,
            super::admin::delete_topics
        ),
        ApiKey::InitProducerId => {
            route!(
                ctx,
                body,
                header,
                api,
                version,
                InitProducerIdRequest,
                super::coordinator::init_producer_id
            )
        }
        ApiKey::FindCoordinator => {
            route!(
                ctx,
                body,
                header,
                api,
                version,
                FindCoordinatorRequest,
                super::coordinator::find_coordinator
            )
        }
        ApiKey::OffsetCommit => route!(
            ctx,
            body,
            header,
            api,
            version,
            OffsetCommitRequest,
            super::coordinator::offset_commit
        ),
        ApiKey::OffsetFetch => route!(
            ctx,
            body,
            header,
            api,
            version,
            OffsetFetchRequest,
            super::coordinator::offset_fetch
        ),
        ApiKey::DescribeConfigs => route!(
            ctx,
            body,
            header,
            api,
            version,
            DescribeConfigsRequest,
            super::configs::describe_configs
        ),
        ApiKey::AlterConfigs => route!(
            ctx,
            body,
            header,
            api,
            version,
            AlterConfigsRequest,
            super::configs::alter_configs
        ),
        ApiKey::IncrementalAlterConfigs => route!(
            ctx,
            body,
            header,
            api,
            version,
            IncrementalAlterConfigsRequest,
            super::configs::incremental_alter_configs
        ),
        ApiKey::DeleteRecords => route!(
            ctx,
            body,
            header,
            api,
            version,
            DeleteRecordsRequest,
            super::admin::delete_records
        ),
        ApiKey::CreatePartitions => route!(
            ctx,
            body,
            header,
            api,
            version,
            CreatePartitionsRequest,
            super::admin::create_partitions
        ),
        ApiKey::JoinGroup => route!(
            ctx,
            body,
            header,
            api,
            version,
            JoinGroupRequest,
            super::group::join_group
        ),
        ApiKey::SyncGroup => route!(
            ctx,
            body,
            header,
            api,
            version,
            SyncGroupRequest,
            super::group::sync_group
        ),
        ApiKey::Heartbeat => route!(
            ctx,
            body,
            header,
            api,
            version,
            HeartbeatRequest,
            super::group::heartbeat
        ),
        ApiKey::LeaveGroup => route!(
            ctx,
            body,
            header,
            api,
            version,
            LeaveGroupRequest,
            super::group::leave_group
        ),
        ApiKey::ListGroups => route!(
            ctx,
            body,
            header,
            api,
            version,
            ListGroupsRequest,
            super::group::list_groups
        ),
        ApiKey::DescribeGroups => route!(
            ctx,
            body,
            header,
            api,
            version,
            DescribeGroupsRequest,
            super::group::describe_groups
        ),
        ApiKey::DeleteGroups => route!(
            ctx,
            body,
            header,
            api,
            version,
            DeleteGroupsRequest,
            super::group::delete_groups
        ),
        ApiKey::AddPartitionsToTxn => route!(
            ctx,
            body,
            header,
            api,
            version,
            AddPartitionsToTxnRequest,
            super::txn::add_partitions_to_txn
        ),
        ApiKey::AddOffsetsToTxn => route!(
            ctx,
            body,
            header,
            api,
            version,
            AddOffsetsToTxnRequest,
            super::txn::add_offsets_to_txn
        ),
        ApiKey::EndTxn => route!(
            ctx,
            body,
            header,
            api,
            version,
            EndTxnRequest,
            super::txn::end_txn
        ),
        ApiKey::TxnOffsetCommit => route!(
            ctx,
            body,
            header,
            api,
            version,
            TxnOffsetCommitRequest,
            super::txn::txn_offset_commit
        ),
        other => Outcome::Close(format!("{other:?} is not implemented by this broker")),
    }
}
