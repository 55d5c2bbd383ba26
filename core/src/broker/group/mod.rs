//! The classic consumer-group protocol, as Kafka's GroupCoordinator runs it on one node:
//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup keep each group's membership;
//! ListGroups, DescribeGroups and DeleteGroups administer groups.
//!
//! - `state.rs`: one group's state machine (Empty, PreparingRebalance,
//!   CompletingRebalance, Stable), pure: time comes in as an argument.
//! - `messages.rs`: what handlers ask the state machine and what it answers;
//!   `member.rs`: a member, and protocol selection across members.
//! - `coordinator.rs`: the registry of groups, member ids, the timer task that completes
//!   rebalances at their deadline and expires silent members.
//! - `join.rs`, `sync.rs`, `heartbeat.rs`, `leave.rs`: one handler per membership API.
//! - `admin.rs`: ListGroups, DescribeGroups, DeleteGroups.
//!
//! The broker never looks inside protocol metadata or assignments: the assignors (range,
//! roundrobin, cooperative-sticky) run in the group's leader. The broker picks a protocol
//! every member supports and relays bytes. Cooperative rebalancing needs nothing more from
//! it: a member that gave partitions up simply rejoins, which starts the next round.
//!
//! Membership lives in memory only. After a restart members get UNKNOWN_MEMBER_ID and
//! rejoin; committed offsets (on `__consumer_offsets`) are what survives. Static membership
//! (`group.instance.id`) is not implemented: such members are treated as dynamic ones (the
//! id is echoed back, but a restarted instance joins as a new member).

mod admin;
mod coordinator;
mod heartbeat;
mod join;
mod leave;
mod member;
mod messages;
mod state;
mod sync;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub(crate) use admin::{delete_groups, describe_groups, list_groups};
pub(crate) use coordinator::GroupCoordinator;
pub(crate) use heartbeat::handle as heartbeat;
pub(crate) use join::handle as join_group;
pub(crate) use leave::handle as leave_group;
pub(crate) use sync::handle as sync_group;

/// Bounds on what clients may ask of the coordinator.
#[derive(Debug, Clone)]
pub(crate) struct GroupLimits {
    /// Shortest session timeout a member may ask for (Kafka's
    /// `group.min.session.timeout.ms` is 6 s; 1 s lets tests and local setups fail fast).
    pub session_timeout_min: Duration,
    /// Longest session timeout (Kafka's `group.max.session.timeout.ms`).
    pub session_timeout_max: Duration,
    /// Rebalance timeouts above this are lowered to it, so a rebalance always ends.
    pub rebalance_timeout_max: Duration,
    /// Members (joined or holding an id from MEMBER_ID_REQUIRED) per group.
    pub members_max: usize,
    /// Groups with members at once; groups that only have committed offsets don't count.
    pub groups_max: usize,
    /// How often deadlines (rebalance timeouts, session timeouts) are checked.
    pub tick: Duration,
}

impl Default for GroupLimits {
    fn default() -> Self {
        GroupLimits {
            session_timeout_min: Duration::from_secs(1),
            session_timeout_max: Duration::from_secs(30 * 60),
            rebalance_timeout_max: Duration::from_secs(30 * 60),
            members_max: 10_000,
            groups_max: 100_000,
            tick: Duration::from_millis(50),
        }
    }
}

/// How long past a group's own deadline a request handler waits before giving up on an
/// answer from the state machine. The timer task answers at the deadline; this only guards
/// against a bug leaving a connection stuck forever.
const ANSWER_SLACK: Duration = Duration::from_secs(5);

/// The address of the client whose request is being handled, as Kafka shows it
/// (`/127.0.0.1`), or empty outside a connection task.
fn client_host() -> String {
    super::connection::PEER
        .try_with(|peer| format!("/{}", peer.ip()))
        .unwrap_or_default()
}
