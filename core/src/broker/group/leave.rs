//! LeaveGroup (v0-4): members leave, and the rest rebalance without waiting for their
//! session to expire. v0-2 name one member and answer with one error; v3+ name a batch and
//! answer per member; v4+ is flexible.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse, RequestHeader};

use crate::broker::server::Context;

pub(crate) async fn handle(
    ctx: &Context,
    _header: &RequestHeader,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let code = |e: Option<ResponseError>| e.map_or(0, |e| e.code());
    if request.group_id.0.is_empty() {
        return LeaveGroupResponse::default().with_error_code(ResponseError::InvalidGroupId.code());
    }
    if version < 3 {
        let errors = ctx
            .groups
            .leave(&request.group_id.0, &[request.member_id.to_string()]);
        return LeaveGroupResponse::default()
            .with_error_code(code(errors.into_iter().next().flatten()));
    }
    let ids: Vec<String> = request
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .collect();
    let errors = ctx.groups.leave(&request.group_id.0, &ids);
    let members = request
        .members
        .into_iter()
        .zip(errors)
        .map(|(m, error)| {
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(code(error))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
