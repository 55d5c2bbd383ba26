//! SyncGroup (v0-5): the leader hands in every member's assignment; followers wait for
//! theirs (until the leader syncs, or the group starts another rebalance).
//!
//! Version notes: v3+ carries `group.instance.id` (not acted on); v4+ is flexible; v5 names
//! the protocol type and name in both directions, and a mismatch is
//! INCONSISTENT_GROUP_PROTOCOL.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{RequestHeader, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::messages::{Reply, SyncResult};
use crate::broker::server::Context;

pub(crate) async fn handle(
    ctx: &Context,
    _header: &RequestHeader,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let group_id = request.group_id.0.to_string();
    if group_id.is_empty() {
        return response(SyncResult::error(ResponseError::InvalidGroupId), version);
    }
    let protocol_type = request.protocol_type.as_ref().map(|s| s.to_string());
    let protocol_name = request.protocol_name.as_ref().map(|s| s.to_string());
    let assignments = request
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let reply = ctx.groups.sync(
        &group_id,
        &request.member_id,
        request.generation_id,
        (protocol_type.as_deref(), protocol_name.as_deref()),
        assignments,
    );
    let result = match reply {
        Reply::Now(result) => result,
        Reply::Later { rx, answer_by } => {
            let deadline = tokio::time::Instant::from_std(answer_by);
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) | Err(_) => SyncResult::error(ResponseError::RebalanceInProgress),
            }
        }
    };
    response(result, version)
}

/// The SyncGroup response at `version`, with only the fields that version has.
pub(super) fn response(result: SyncResult, version: i16) -> SyncGroupResponse {
    let v5 = |s: Option<String>| {
        if version >= 5 {
            s.map(StrBytes::from_string)
        } else {
            None
        }
    };
    SyncGroupResponse::default()
        .with_error_code(result.error.map_or(0, |e| e.code()))
        .with_protocol_type(v5(result.protocol_type))
        .with_protocol_name(v5(result.protocol_name))
        .with_assignment(result.assignment)
}
