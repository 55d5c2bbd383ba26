//! JoinGroup (v0-7): a member enters the group or rejoins for the next generation.
//!
//! The request waits while the group rebalances (up to the rebalance timeout), as Kafka's
//! does. Version notes: v0 has no rebalance timeout (the session timeout stands in);
//! v4+ gets MEMBER_ID_REQUIRED for an empty member id; v5+ carries `group.instance.id`
//! (echoed, not acted on); v6+ is flexible; v7+ names the protocol type in the answer and
//! may leave the protocol name null.

use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use super::messages::{JoinRequest, JoinResult, Reply};
use crate::broker::server::Context;

pub(crate) async fn handle(
    ctx: &Context,
    header: &RequestHeader,
    request: JoinGroupRequest,
    version: i16,
) -> JoinGroupResponse {
    let group_id = request.group_id.0.to_string();
    let member_id = request.member_id.to_string();
    if group_id.is_empty() {
        return response(
            JoinResult::error(ResponseError::InvalidGroupId, &member_id),
            version,
        );
    }
    let millis = |ms: i32| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    let session_timeout = millis(request.session_timeout_ms);
    let rebalance_timeout = if version >= 1 {
        millis(request.rebalance_timeout_ms)
    } else {
        session_timeout
    };
    let join = JoinRequest {
        member_id: member_id.clone(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        client_id: header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        client_host: super::client_host(),
        session_timeout,
        rebalance_timeout,
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let result = match ctx.groups.join(&group_id, join) {
        Reply::Now(result) => result,
        Reply::Later { rx, answer_by } => {
            let deadline = tokio::time::Instant::from_std(answer_by);
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(result)) => result,
                // Superseded by a newer JoinGroup from the same member, or (a bug) not
                // answered in time: the client rejoins.
                Ok(Err(_)) | Err(_) => {
                    JoinResult::error(ResponseError::RebalanceInProgress, &member_id)
                }
            }
        }
    };
    response(result, version)
}

/// The JoinGroup response at `version`, with only the fields that version has.
pub(super) fn response(result: JoinResult, version: i16) -> JoinGroupResponse {
    let members = result
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(m.member_id))
                .with_group_instance_id(if version >= 5 {
                    m.group_instance_id.map(StrBytes::from_string)
                } else {
                    None
                })
                .with_metadata(m.metadata)
        })
        .collect();
    let protocol_name = match result.protocol_name {
        Some(name) => Some(StrBytes::from_string(name)),
        // Null only from v7; before, an empty string.
        None if version >= 7 => None,
        None => Some(StrBytes::default()),
    };
    JoinGroupResponse::default()
        .with_error_code(result.error.map_or(0, |e| e.code()))
        .with_generation_id(result.generation)
        .with_protocol_type(if version >= 7 {
            result.protocol_type.map(StrBytes::from_string)
        } else {
            None
        })
        .with_protocol_name(protocol_name)
        .with_leader(StrBytes::from_string(result.leader))
        .with_member_id(StrBytes::from_string(result.member_id))
        .with_members(members)
}
