//! ListGroups (v0-4), DescribeGroups (v0-5) and DeleteGroups (v0-2).
//!
//! A group is known if it has members here or committed offsets in `__consumer_offsets`
//! (then it is Empty with no protocol type, like a group of `assign` consumers in Kafka).
//! DescribeGroups answers an unknown group with state Dead and no error, as Kafka does;
//! DeleteGroups refuses a group with members (NON_EMPTY_GROUP) and otherwise deletes its
//! committed offsets.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;

use super::state::Phase;
use crate::broker::errors::code;
use crate::broker::server::Context;

fn str(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub(crate) async fn list_groups(
    ctx: &Context,
    _header: &RequestHeader,
    request: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let mut groups: BTreeMap<String, (&'static str, String)> = ctx
        .log
        .list_groups()
        .into_iter()
        .map(|g| (g, (Phase::Empty.name(), String::new())))
        .collect();
    for (id, phase, protocol_type) in ctx.groups.list() {
        groups.insert(id, (phase.name(), protocol_type));
    }
    // v4+: only groups in one of these states (none given: all).
    let wanted = |state: &str| {
        version < 4
            || request.states_filter.is_empty()
            || request
                .states_filter
                .iter()
                .any(|s| s.eq_ignore_ascii_case(state))
    };
    let listed = groups
        .into_iter()
        .filter(|(_, (state, _))| wanted(state))
        .map(|(id, (state, protocol_type))| {
            ListedGroup::default()
                .with_group_id(GroupId(str(id)))
                .with_protocol_type(str(protocol_type))
                .with_group_state(if version >= 4 {
                    StrBytes::from_static_str(state)
                } else {
                    StrBytes::default()
                })
        })
        .collect();
    ListGroupsResponse::default().with_groups(listed)
}

pub(crate) async fn describe_groups(
    ctx: &Context,
    _header: &RequestHeader,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            let id = group_id.0.to_string();
            let described = DescribedGroup::default().with_group_id(group_id);
            if id.is_empty() {
                return described.with_error_code(ResponseError::InvalidGroupId.code());
            }
            let Some(summary) = ctx.groups.describe(&id) else {
                let state = if ctx.log.group_offsets(&id).is_empty() {
                    "Dead"
                } else {
                    Phase::Empty.name()
                };
                return described.with_group_state(StrBytes::from_static_str(state));
            };
            let members = summary
                .members
                .into_iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(str(m.member_id))
                        .with_group_instance_id(if version >= 4 {
                            m.group_instance_id.map(StrBytes::from_string)
                        } else {
                            None
                        })
                        .with_client_id(str(m.client_id))
                        .with_client_host(str(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment)
                })
                .collect();
            described
                .with_group_state(StrBytes::from_static_str(summary.phase.name()))
                .with_protocol_type(str(summary.protocol_type))
                .with_protocol_data(str(summary.protocol_name))
                .with_members(members)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

pub(crate) async fn delete_groups(
    ctx: &Context,
    _header: &RequestHeader,
    request: DeleteGroupsRequest,
    _version: i16,
) -> DeleteGroupsResponse {
    let results = request
        .groups_names
        .into_iter()
        .map(|group_id| {
            let id = group_id.0.to_string();
            let error = if id.is_empty() {
                ResponseError::InvalidGroupId.code()
            } else {
                match ctx.groups.delete(&id) {
                    Err(e) => e.code(),
                    Ok(known_here) => {
                        // Tombstones on __consumer_offsets: a durable (fsynced) append.
                        match tokio::task::block_in_place(|| ctx.log.delete_group(&id)) {
                            Ok(0) if !known_here => ResponseError::GroupIdNotFound.code(),
                            Ok(_) => 0,
                            Err(e) => code(&e),
                        }
                    }
                }
            };
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(error)
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
