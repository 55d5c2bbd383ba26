//! A group member as the coordinator tracks it, and the two protocol questions asked of
//! the member set: does a joining member fit, and which protocol does the group use.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::messages::{JoinResult, SyncResult};

/// One member of a group.
pub(super) struct Member {
    pub client_id: String,
    pub client_host: String,
    pub group_instance_id: Option<String>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocols: Vec<(String, Bytes)>,
    /// What the leader assigned it in the current generation (empty until then).
    pub assignment: Bytes,
    /// Last sign of life: a heartbeat, a join or sync, or the answer to one.
    pub last_seen: Instant,
    pub awaiting_join: Option<oneshot::Sender<JoinResult>>,
    pub awaiting_sync: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    pub fn is_waiting(&self) -> bool {
        self.awaiting_join.is_some() || self.awaiting_sync.is_some()
    }
}

/// Whether a member with `protocol_type` and `protocols` fits beside `members` (all but
/// `except`, the joining member itself): the group's protocol type, and at least one
/// protocol every other member supports. A lone member fits if it names any protocol.
pub(super) fn fits(
    members: &BTreeMap<String, Member>,
    group_protocol_type: Option<&str>,
    protocol_type: &str,
    protocols: &[(String, Bytes)],
    except: Option<&str>,
) -> bool {
    if protocol_type.is_empty() || protocols.is_empty() {
        return false;
    }
    let others: Vec<&Member> = members
        .iter()
        .filter(|(id, _)| Some(id.as_str()) != except)
        .map(|(_, m)| m)
        .collect();
    if others.is_empty() {
        return true;
    }
    if group_protocol_type != Some(protocol_type) {
        return false;
    }
    protocols
        .iter()
        .any(|(name, _)| others.iter().all(|m| m.supports(name)))
}

/// Kafka's choice: among protocols every member supports, each member votes for the first
/// in its own order of preference; most votes wins, ties go to the earlier one in the first
/// member's list. None if no protocol is common to all.
pub(super) fn select_protocol(members: &BTreeMap<String, Member>) -> Option<String> {
    let first = members.values().next()?;
    let candidates: Vec<&str> = first
        .protocols
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| members.values().all(|m| m.supports(name)))
        .collect();
    let mut votes = vec![0usize; candidates.len()];
    for member in members.values() {
        let choice = member
            .protocols
            .iter()
            .find_map(|(name, _)| candidates.iter().position(|c| c == name));
        if let Some(count) = choice.and_then(|i| votes.get_mut(i)) {
            *count += 1;
        }
    }
    candidates
        .iter()
        .zip(&votes)
        .enumerate()
        .max_by_key(|(i, (_, v))| (**v, std::cmp::Reverse(*i)))
        .map(|(_, (name, _))| name.to_string())
}
