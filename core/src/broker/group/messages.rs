//! What request handlers ask a group's state machine and what it answers: a JoinRequest
//! (any JoinGroup version) goes in; JoinResult, SyncResult, GroupSummary come out, now or
//! later (a [`Reply`]).

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::state::Phase;

/// A JoinGroup request, whatever its version.
#[derive(Debug, Clone)]
pub(crate) struct JoinRequest {
    /// Empty for a member joining for the first time.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a new member first gets its id back with MEMBER_ID_REQUIRED and joins with it,
    /// so a client that retries a timed-out join doesn't leave a ghost member behind.
    pub require_known_member_id: bool,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct JoinResult {
    pub error: Option<ResponseError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Every member's metadata for the chosen protocol; only the leader gets it.
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    pub fn error(error: ResponseError, member_id: &str) -> JoinResult {
        JoinResult {
            error: Some(error),
            generation: -1,
            member_id: member_id.to_string(),
            ..JoinResult::default()
        }
    }
}

/// A member as the leader sees it in its JoinGroup answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SyncResult {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: ResponseError) -> SyncResult {
        SyncResult {
            error: Some(error),
            ..SyncResult::default()
        }
    }
}

/// An answer available now, or one to wait for.
#[derive(Debug)]
pub(crate) enum Reply<T> {
    Now(T),
    /// The state machine answers through `rx`, at the latest around `answer_by` (the
    /// group's deadline); past that a handler may give up.
    Later {
        rx: oneshot::Receiver<T>,
        answer_by: Instant,
    },
}

/// What DescribeGroups shows of a group.
#[derive(Debug, Clone)]
pub(crate) struct GroupSummary {
    pub phase: Phase,
    pub protocol_type: String,
    /// The chosen protocol; empty unless the group is Stable (as Kafka reports it).
    pub protocol_name: String,
    pub members: Vec<MemberSummary>,
}

#[derive(Debug, Clone)]
pub(crate) struct MemberSummary {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Empty unless the group is Stable.
    pub metadata: Bytes,
    /// Empty unless the group is Stable.
    pub assignment: Bytes,
}
