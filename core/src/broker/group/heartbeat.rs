//! Heartbeat (v0-4): a member says it is alive, and learns whether to rejoin
//! (REBALANCE_IN_PROGRESS) or that it is no longer a member (UNKNOWN_MEMBER_ID,
//! ILLEGAL_GENERATION). v3+ carries `group.instance.id` (not acted on); v4+ is flexible.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse, RequestHeader};

use crate::broker::server::Context;

pub(crate) async fn handle(
    ctx: &Context,
    _header: &RequestHeader,
    request: HeartbeatRequest,
    _version: i16,
) -> HeartbeatResponse {
    let error = if request.group_id.0.is_empty() {
        Some(ResponseError::InvalidGroupId)
    } else {
        ctx.groups.heartbeat(
            &request.group_id.0,
            &request.member_id,
            request.generation_id,
        )
    };
    HeartbeatResponse::default().with_error_code(error.map_or(0, |e| e.code()))
}
