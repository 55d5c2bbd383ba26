//! The group handlers at every version the broker advertises, called with decoded requests
//! and their responses encoded at the same version: no version gets a field it doesn't
//! have ("A field is set that is not available on the selected protocol version"), and
//! the version-specific behaviour (MEMBER_ID_REQUIRED from JoinGroup v4, LeaveGroup
//! batches from v3, state filters from ListGroups v4) holds. librdkafka only exercises
//! the lower versions; these cover the rest.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::{GroupCoordinator, GroupLimits};
use crate::broker::server::Context;
use crate::broker::{BrokerConfig, supported_apis};
use crate::log::{Log, NewTopic};

const TOPIC: &str = "t";

fn context(dir: &std::path::Path) -> Arc<Context> {
    let log = Log::open(dir).unwrap();
    log.create_topic(NewTopic::new(TOPIC, 2)).unwrap();
    let (_stop, stopping) = tokio::sync::watch::channel(false);
    Arc::new(Context {
        log: log.clone(),
        inflight: tokio::sync::Semaphore::new(1 << 20),
        config: BrokerConfig::default(),
        advertised_host: "127.0.0.1".into(),
        advertised_port: 9092,
        stopping,
        groups: Arc::new(GroupCoordinator::new(GroupLimits::default())),
        txn: log.txn_coordinator().unwrap(),
        metrics: crate::broker::prometheus::Metrics::new(),
        open_connections: std::sync::atomic::AtomicUsize::new(0),
    })
}

fn header() -> RequestHeader {
    RequestHeader::default().with_client_id(Some(StrBytes::from_static_str("test-client")))
}

fn max_version(api: ApiKey) -> i16 {
    supported_apis()
        .iter()
        .find(|(k, _, _)| *k == api)
        .map(|&(_, _, max)| max)
        .unwrap()
}

/// Encodes `response` at `version`, failing the test if that version can't carry it.
fn encodes<R: Encodable>(response: &R, version: i16) {
    let mut buf = BytesMut::new();
    if let Err(e) = response.encode(&mut buf, version) {
        panic!("{} at v{version}: {e}", std::any::type_name::<R>());
    }
}

fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// JoinGroup at `version`, taking the MEMBER_ID_REQUIRED round trip (v4+) if it comes.
async fn join(
    ctx: Arc<Context>,
    group: String,
    member_id: String,
    version: i16,
) -> JoinGroupResponse {
    let request = |member_id: &str| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(str(&group)))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(str(member_id))
            .with_protocol_type(str("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(str("range"))
                    .with_metadata(Bytes::from_static(b"subscription")),
            ])
    };
    let first = super::join_group(&ctx, &header(), request(&member_id), version).await;
    encodes(&first, version);
    if first.error_code != ResponseError::MemberIdRequired.code() {
        return first;
    }
    assert!(version >= 4, "MEMBER_ID_REQUIRED at v{version}");
    assert!(first.member_id.starts_with("test-client-"));
    let second = super::join_group(&ctx, &header(), request(&first.member_id), version).await;
    encodes(&second, version);
    second
}

async fn heartbeat(ctx: &Context, group: &str, member: &str, generation: i32, version: i16) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(str(group)))
        .with_member_id(str(member))
        .with_generation_id(generation);
    let response = super::heartbeat(ctx, &header(), request, version).await;
    encodes(&response, version);
    response.error_code
}

async fn sync(
    ctx: Arc<Context>,
    group: String,
    member: String,
    generation: i32,
    assignments: Vec<(String, &'static str)>,
    version: i16,
) -> SyncGroupResponse {
    let request = SyncGroupRequest::default()
        .with_group_id(GroupId(str(&group)))
        .with_member_id(str(&member))
        .with_generation_id(generation)
        .with_protocol_type((version >= 5).then(|| str("consumer")))
        .with_protocol_name((version >= 5).then(|| str("range")))
        .with_assignments(
            assignments
                .into_iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(str(&m))
                        .with_assignment(Bytes::from_static(a.as_bytes()))
                })
                .collect(),
        );
    let response = super::sync_group(&ctx, &header(), request, version).await;
    encodes(&response, version);
    response
}

async fn commit(ctx: &Context, group: &str, member: &str, generation: i32) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(str(group)))
        .with_member_id(str(member))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(str(TOPIC)))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(0),
                ]),
        ]);
    let response = crate::broker::coordinator::offset_commit(ctx, &header(), request, 8).await;
    response.topics[0].partitions[0].error_code
}

async fn describe(ctx: &Context, group: &str, version: i16) -> DescribeGroupsResponse {
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(str(group))]);
    let response = super::describe_groups(ctx, &header(), request, version).await;
    encodes(&response, version);
    response
}

async fn delete(ctx: &Context, group: &str, version: i16) -> i16 {
    let request = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(str(group))]);
    let response = super::delete_groups(ctx, &header(), request, version).await;
    encodes(&response, version);
    response.results[0].error_code
}

/// One group's whole life with every API at `min(step, its highest version)`.
async fn lifecycle(ctx: Arc<Context>, step: i16) {
    let v = |api| step.min(max_version(api));
    let group = format!("group-{step}");
    let join_v = v(ApiKey::JoinGroup);

    let a = join(ctx.clone(), group.clone(), String::new(), join_v).await;
    assert_eq!(a.error_code, 0);
    assert_eq!((a.generation_id, &a.leader), (1, &a.member_id));
    let a_id = a.member_id.to_string();

    // b's join waits until a, told by its heartbeat, rejoins.
    let b_join = tokio::spawn(join(ctx.clone(), group.clone(), String::new(), join_v));
    let deadline = Instant::now() + Duration::from_secs(5);
    while heartbeat(&ctx, &group, &a_id, 1, v(ApiKey::Heartbeat)).await
        != ResponseError::RebalanceInProgress.code()
    {
        assert!(
            Instant::now() < deadline,
            "b's join never started a rebalance"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let a = join(ctx.clone(), group.clone(), a_id.clone(), join_v).await;
    let b = b_join.await.unwrap();
    let b_id = b.member_id.to_string();
    assert_eq!((a.error_code, b.error_code), (0, 0));
    assert_eq!((a.generation_id, b.generation_id), (2, 2));
    assert_eq!(a.members.len(), 2, "the leader sees every member");
    assert!(b.members.is_empty());
    assert_eq!(
        a.protocol_type.as_ref().map(|s| s.to_string()).as_deref(),
        (join_v >= 7).then_some("consumer")
    );

    let sync_v = v(ApiKey::SyncGroup);
    let b_sync = tokio::spawn(sync(
        ctx.clone(),
        group.clone(),
        b_id.clone(),
        2,
        vec![],
        sync_v,
    ));
    let assignments = vec![(a_id.clone(), "to-a"), (b_id.clone(), "to-b")];
    let a_sync = sync(
        ctx.clone(),
        group.clone(),
        a_id.clone(),
        2,
        assignments,
        sync_v,
    )
    .await;
    let b_sync = b_sync.await.unwrap();
    assert_eq!((a_sync.error_code, b_sync.error_code), (0, 0));
    assert_eq!(&b_sync.assignment[..], b"to-b");
    assert_eq!(
        heartbeat(&ctx, &group, &b_id, 2, v(ApiKey::Heartbeat)).await,
        0
    );
    assert_eq!(
        heartbeat(&ctx, &group, &b_id, 1, v(ApiKey::Heartbeat)).await,
        ResponseError::IllegalGeneration.code()
    );

    assert_eq!(commit(&ctx, &group, &a_id, 2).await, 0);
    assert_eq!(
        commit(&ctx, &group, &a_id, 1).await,
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(
        commit(&ctx, &group, "", -1).await,
        ResponseError::UnknownMemberId.code()
    );

    let list_v = v(ApiKey::ListGroups);
    let filter = if list_v >= 4 {
        vec![str("stable")]
    } else {
        vec![]
    };
    let listed = super::list_groups(
        &ctx,
        &header(),
        ListGroupsRequest::default().with_states_filter(filter),
        list_v,
    )
    .await;
    encodes(&listed, list_v);
    let ours = listed
        .groups
        .iter()
        .find(|g| g.group_id.0.as_str() == group)
        .expect("listed");
    assert_eq!(ours.protocol_type.as_str(), "consumer");
    assert_eq!(
        ours.group_state.as_str(),
        if list_v >= 4 { "Stable" } else { "" }
    );

    let described = describe(&ctx, &group, v(ApiKey::DescribeGroups)).await;
    let described = &described.groups[0];
    assert_eq!(described.group_state.as_str(), "Stable");
    assert_eq!(described.protocol_data.as_str(), "range");
    assert_eq!(described.members.len(), 2);
    assert!(
        described
            .members
            .iter()
            .all(|m| m.client_id.as_str() == "test-client")
    );

    assert_eq!(
        delete(&ctx, &group, v(ApiKey::DeleteGroups)).await,
        ResponseError::NonEmptyGroup.code()
    );

    let leave_v = v(ApiKey::LeaveGroup);
    if leave_v >= 3 {
        let request = LeaveGroupRequest::default()
            .with_group_id(GroupId(str(&group)))
            .with_members(
                [&a_id, &b_id, "ghost"]
                    .iter()
                    .map(|id| MemberIdentity::default().with_member_id(str(id)))
                    .collect(),
            );
        let left = super::leave_group(&ctx, &header(), request, leave_v).await;
        encodes(&left, leave_v);
        let errors: Vec<i16> = left.members.iter().map(|m| m.error_code).collect();
        assert_eq!(errors, vec![0, 0, ResponseError::UnknownMemberId.code()]);
    } else {
        for id in [&a_id, &b_id] {
            let request = LeaveGroupRequest::default()
                .with_group_id(GroupId(str(&group)))
                .with_member_id(str(id));
            let left = super::leave_group(&ctx, &header(), request, leave_v).await;
            encodes(&left, leave_v);
            assert_eq!(left.error_code, 0);
        }
    }

    let described = describe(&ctx, &group, v(ApiKey::DescribeGroups)).await;
    assert_eq!(described.groups[0].group_state.as_str(), "Empty");
    assert_eq!(delete(&ctx, &group, v(ApiKey::DeleteGroups)).await, 0);
    assert!(ctx.log.group_offsets(&group).is_empty());
    assert_eq!(
        delete(&ctx, &group, v(ApiKey::DeleteGroups)).await,
        ResponseError::GroupIdNotFound.code()
    );
    let described = describe(&ctx, &group, v(ApiKey::DescribeGroups)).await;
    assert_eq!(described.groups[0].group_state.as_str(), "Dead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_advertised_version_round_trips_a_group_lifecycle() {
    // Proves that each group API, at every version in the advertised table, answers with a
    // response that encodes at that version and carries that version's semantics.
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    for step in 0..=7 {
        lifecycle(ctx.clone(), step).await;
    }
    ctx.log.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_with_an_out_of_range_session_timeout_is_refused() {
    // Proves the session-timeout bounds: INVALID_SESSION_TIMEOUT, and no member is added.
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(str("g")))
        .with_session_timeout_ms(10)
        .with_protocol_type(str("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default().with_name(str("range")),
        ]);
    let response = super::join_group(&ctx, &header(), request, 5).await;
    assert_eq!(
        response.error_code,
        ResponseError::InvalidSessionTimeout.code()
    );
    assert!(ctx.groups.list().is_empty());
    ctx.log.close().unwrap();
}
