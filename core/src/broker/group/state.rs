//! One group's state machine, as Kafka's GroupCoordinator runs it for the classic protocol.
//!
//! ```text
//!          join               all members rejoined            leader's SyncGroup
//!  Empty ───────▶ PreparingRebalance ─────────────▶ CompletingRebalance ───────────▶ Stable
//!                   ▲  (or rebalance timeout)            │                             │
//!                   └────────── join / leave / expiry ───┴─────────────────────────────┘
//! ```
//!
//! Invariants kept here:
//! - `Empty` exactly when there are no members; every completed join bumps the generation,
//!   also one that ends with nobody left.
//! - In PreparingRebalance the join completes as soon as every member has a JoinGroup
//!   waiting and no id handed out with MEMBER_ID_REQUIRED is outstanding, or at the
//!   rebalance deadline; members that did not rejoin by then are removed.
//! - In CompletingRebalance, members that have not sent SyncGroup by the deadline are
//!   removed (which starts a new rebalance), so a follower never waits on a dead leader for
//!   longer than the rebalance timeout.
//! - A member with a JoinGroup or SyncGroup waiting is not expired by its session timeout
//!   (it waits on us, not the other way round); every other member must heartbeat.
//! - Every waiter is answered exactly once: by the completion it waits for, by a new
//!   rebalance (REBALANCE_IN_PROGRESS), by its removal (UNKNOWN_MEMBER_ID) or at shutdown.
//! - `leader` names a member whenever there are members.
//!
//! Nothing here reads the clock or blocks: `now` comes in, and waiters are oneshot senders,
//! so tests drive every transition with made-up instants.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::member::{Member, fits, select_protocol};
use super::messages::{
    GroupSummary, JoinRequest, JoinResult, JoinedMember, MemberSummary, Reply, SyncResult,
};

/// Where a group is in its rebalance cycle; the names are Kafka's, as tools show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl Phase {
    /// The state name DescribeGroups and ListGroups report.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Empty => "Empty",
            Phase::PreparingRebalance => "PreparingRebalance",
            Phase::CompletingRebalance => "CompletingRebalance",
            Phase::Stable => "Stable",
        }
    }
}

/// One consumer group's membership.
pub(crate) struct Group {
    /// For log lines.
    id: String,
    phase: Phase,
    generation: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader: Option<String>,
    /// Sorted, so the member list the leader gets (and leader succession) is stable.
    members: BTreeMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED and not joined yet, with their expiry.
    pending: HashMap<String, Instant>,
    /// PreparingRebalance: when the join completes without the stragglers.
    /// CompletingRebalance: when members that haven't sent SyncGroup are removed.
    rebalance_deadline: Option<Instant>,
}

impl Group {
    pub fn new(id: &str) -> Group {
        Group {
            id: id.to_string(),
            phase: Phase::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            rebalance_deadline: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    #[cfg(test)]
    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn protocol_type(&self) -> &str {
        self.protocol_type.as_deref().unwrap_or_default()
    }

    /// No members and no outstanding member ids: the registry may forget the group.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }

    /// Handles a JoinGroup. `new_member_id` is used when the request has no member id.
    pub fn join(
        &mut self,
        request: JoinRequest,
        new_member_id: String,
        members_max: usize,
        now: Instant,
    ) -> Reply<JoinResult> {
        let member_id = request.member_id.clone();
        if member_id.is_empty() {
            if !self.supports(&request.protocol_type, &request.protocols, None) {
                return Reply::Now(JoinResult::error(
                    ResponseError::InconsistentGroupProtocol,
                    "",
                ));
            }
            if self.members.len() + self.pending.len() >= members_max {
                return Reply::Now(JoinResult::error(ResponseError::GroupMaxSizeReached, ""));
            }
            if request.require_known_member_id {
                self.pending
                    .insert(new_member_id.clone(), now + request.session_timeout);
                return Reply::Now(JoinResult::error(
                    ResponseError::MemberIdRequired,
                    &new_member_id,
                ));
            }
            return self.add_member(new_member_id, request, now);
        }
        if self.pending.contains_key(&member_id) {
            if !self.supports(&request.protocol_type, &request.protocols, None) {
                return Reply::Now(JoinResult::error(
                    ResponseError::InconsistentGroupProtocol,
                    &member_id,
                ));
            }
            self.pending.remove(&member_id);
            return self.add_member(member_id, request, now);
        }
        let Some(member) = self.members.get(&member_id) else {
            return Reply::Now(JoinResult::error(
                ResponseError::UnknownMemberId,
                &member_id,
            ));
        };
        if !self.supports(&request.protocol_type, &request.protocols, Some(&member_id)) {
            return Reply::Now(JoinResult::error(
                ResponseError::InconsistentGroupProtocol,
                &member_id,
            ));
        }
        let unchanged = member.protocols == request.protocols;
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        match self.phase {
            // A member that already has this generation asks again (its answer was lost, or
            // a follower restarts its join): answer with what it would have been told.
            Phase::CompletingRebalance if unchanged => Reply::Now(self.joined(&member_id, now)),
            Phase::Stable if unchanged && !is_leader => Reply::Now(self.joined(&member_id, now)),
            Phase::PreparingRebalance => {
                let rx = self.update_member(&member_id, request, now);
                self.maybe_complete_join(now);
                self.later(rx, now)
            }
            // Changed metadata, or the leader asking for a new assignment (say, because a
            // subscribed topic grew): everyone rejoins.
            _ => {
                let rx = self.update_member(&member_id, request, now);
                self.prepare_rebalance(now, "a member rejoined with new metadata");
                self.later(rx, now)
            }
        }
    }

    /// Handles a SyncGroup. `protocol_type` and `protocol_name` are given from v5 on.
    pub fn sync(
        &mut self,
        member_id: &str,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Reply<SyncResult> {
        let Some(member) = self.members.get_mut(member_id) else {
            return Reply::Now(SyncResult::error(ResponseError::UnknownMemberId));
        };
        if generation != self.generation {
            return Reply::Now(SyncResult::error(ResponseError::IllegalGeneration));
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol_name.as_deref())
        {
            return Reply::Now(SyncResult::error(ResponseError::InconsistentGroupProtocol));
        }
        member.last_seen = now;
        match self.phase {
            Phase::Empty => Reply::Now(SyncResult::error(ResponseError::UnknownMemberId)),
            Phase::PreparingRebalance => {
                Reply::Now(SyncResult::error(ResponseError::RebalanceInProgress))
            }
            Phase::Stable => {
                let assignment = member.assignment.clone();
                Reply::Now(self.synced(assignment))
            }
            Phase::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                member.awaiting_sync = Some(tx);
                if self.leader.as_deref() == Some(member_id) {
                    self.complete_sync(assignments, now);
                }
                self.later(rx, now)
            }
        }
    }

    /// Handles a Heartbeat: `None` means carry on.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        generation: i32,
        now: Instant,
    ) -> Option<ResponseError> {
        let Some(member) = self.members.get_mut(member_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        if generation != self.generation {
            return Some(ResponseError::IllegalGeneration);
        }
        member.last_seen = now;
        match self.phase {
            Phase::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            _ => None,
        }
    }

    /// Handles one member of a LeaveGroup.
    pub fn leave(&mut self, member_id: &str, now: Instant) -> Option<ResponseError> {
        if self.pending.remove(member_id).is_some() {
            self.maybe_complete_join(now);
            return None;
        }
        if !self.members.contains_key(member_id) {
            return Some(ResponseError::UnknownMemberId);
        }
        tracing::info!(group = %self.id, member = member_id, "member left the group");
        self.remove_member(member_id, now, "a member left");
        None
    }

    /// Whether an OffsetCommit from `member_id` at `generation` may be stored (Kafka's
    /// `validateOffsetCommit`): commits naming a member must come from a current member of
    /// the current generation, outside the window where assignments are being handed out;
    /// anonymous commits (generation -1, no member: consumers that `assign`) only while the
    /// group has no members.
    pub fn validate_commit(&self, member_id: &str, generation: i32) -> Option<ResponseError> {
        if generation >= 0 || !member_id.is_empty() {
            if !self.members.contains_key(member_id) {
                return Some(ResponseError::UnknownMemberId);
            }
            if generation != self.generation {
                return Some(ResponseError::IllegalGeneration);
            }
            if self.phase == Phase::CompletingRebalance {
                return Some(ResponseError::RebalanceInProgress);
            }
            None
        } else if self.phase != Phase::Empty {
            Some(ResponseError::UnknownMemberId)
        } else {
            None
        }
    }

    /// Whether a TxnOffsetCommit may stage offsets, as Kafka decides it: a member id must
    /// be a current member and a generation (>= 0) the current one; a producer outside the
    /// group (no member id, generation -1, and every request before v3) always may.
    pub fn validate_txn_commit(&self, member_id: &str, generation: i32) -> Option<ResponseError> {
        if !member_id.is_empty() && !self.members.contains_key(member_id) {
            Some(ResponseError::UnknownMemberId)
        } else if generation >= 0 && generation != self.generation {
            Some(ResponseError::IllegalGeneration)
        } else {
            None
        }
    }

    /// Acts on deadlines: expires silent members and outstanding member ids, ends a
    /// rebalance whose timeout passed.
    pub fn tick(&mut self, now: Instant) {
        let outstanding = self.pending.len();
        self.pending.retain(|_, expiry| *expiry > now);
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                !m.is_waiting() && now.duration_since(m.last_seen) >= m.session_timeout
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member expired: no heartbeat within its session timeout");
            self.remove_member(&id, now, "a member's session expired");
        }
        if self.pending.len() != outstanding {
            self.maybe_complete_join(now);
        }
        if self
            .rebalance_deadline
            .is_some_and(|deadline| now >= deadline)
        {
            match self.phase {
                Phase::PreparingRebalance => self.complete_join(now),
                Phase::CompletingRebalance => {
                    let laggards: Vec<String> = self
                        .members
                        .iter()
                        .filter(|(_, m)| m.awaiting_sync.is_none())
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in laggards {
                        tracing::info!(group = %self.id, member = %id, "member removed: no SyncGroup within the rebalance timeout");
                        self.remove_member(&id, now, "a member did not sync in time");
                    }
                }
                Phase::Empty | Phase::Stable => self.rebalance_deadline = None,
            }
        }
    }

    /// Answers every waiter with COORDINATOR_NOT_AVAILABLE: the broker is stopping.
    pub fn shutdown(&mut self) {
        for (id, member) in &mut self.members {
            if let Some(tx) = member.awaiting_join.take() {
                let _ = tx.send(JoinResult::error(
                    ResponseError::CoordinatorNotAvailable,
                    id,
                ));
            }
            if let Some(tx) = member.awaiting_sync.take() {
                let _ = tx.send(SyncResult::error(ResponseError::CoordinatorNotAvailable));
            }
        }
    }

    pub fn summary(&self) -> GroupSummary {
        let stable = self.phase == Phase::Stable;
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupSummary {
            phase: self.phase,
            protocol_type: self.protocol_type().to_string(),
            protocol_name: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: self
                .members
                .iter()
                .map(|(id, m)| MemberSummary {
                    member_id: id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }

    /// Whether a member joining with these protocols fits the group: the same protocol
    /// type, and at least one protocol every other member supports.
    fn supports(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
        except: Option<&str>,
    ) -> bool {
        fits(
            &self.members,
            self.protocol_type.as_deref(),
            protocol_type,
            protocols,
            except,
        )
    }

    fn add_member(&mut self, id: String, request: JoinRequest, now: Instant) -> Reply<JoinResult> {
        let (tx, rx) = oneshot::channel();
        self.protocol_type = Some(request.protocol_type);
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        self.members.insert(
            id,
            Member {
                client_id: request.client_id,
                client_host: request.client_host,
                group_instance_id: request.group_instance_id,
                session_timeout: request.session_timeout,
                rebalance_timeout: request.rebalance_timeout,
                protocols: request.protocols,
                assignment: Bytes::new(),
                last_seen: now,
                awaiting_join: Some(tx),
                awaiting_sync: None,
            },
        );
        self.prepare_rebalance(now, "a member joined");
        self.later(rx, now)
    }

    /// Records a known member's (re)join; its previous waiting JoinGroup, if any, is
    /// superseded (the sender is dropped, so that handler answers REBALANCE_IN_PROGRESS).
    fn update_member(
        &mut self,
        id: &str,
        request: JoinRequest,
        now: Instant,
    ) -> oneshot::Receiver<JoinResult> {
        let (tx, rx) = oneshot::channel();
        self.protocol_type = Some(request.protocol_type);
        if let Some(member) = self.members.get_mut(id) {
            member.client_id = request.client_id;
            member.client_host = request.client_host;
            member.group_instance_id = request.group_instance_id;
            member.session_timeout = request.session_timeout;
            member.rebalance_timeout = request.rebalance_timeout;
            member.protocols = request.protocols;
            member.last_seen = now;
            member.awaiting_join = Some(tx);
        }
        rx
    }

    fn remove_member(&mut self, id: &str, now: Instant, why: &'static str) {
        if let Some(member) = self.members.remove(id) {
            if let Some(tx) = member.awaiting_join {
                let _ = tx.send(JoinResult::error(ResponseError::UnknownMemberId, id));
            }
            if let Some(tx) = member.awaiting_sync {
                let _ = tx.send(SyncResult::error(ResponseError::UnknownMemberId));
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
        match self.phase {
            Phase::Stable | Phase::CompletingRebalance => self.prepare_rebalance(now, why),
            Phase::PreparingRebalance => self.maybe_complete_join(now),
            Phase::Empty => {}
        }
    }

    fn prepare_rebalance(&mut self, now: Instant, why: &'static str) {
        if self.phase == Phase::CompletingRebalance {
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                if let Some(tx) = member.awaiting_sync.take() {
                    let _ = tx.send(SyncResult::error(ResponseError::RebalanceInProgress));
                }
            }
        }
        if self.phase != Phase::PreparingRebalance {
            tracing::info!(group = %self.id, generation = self.generation, reason = why, "preparing to rebalance");
            self.phase = Phase::PreparingRebalance;
            self.rebalance_deadline = Some(now + self.rebalance_timeout());
        }
        self.maybe_complete_join(now);
    }

    fn maybe_complete_join(&mut self, now: Instant) {
        if self.phase == Phase::PreparingRebalance
            && self.pending.is_empty()
            && self.members.values().all(|m| m.awaiting_join.is_some())
        {
            self.complete_join(now);
        }
    }

    /// Starts the next generation with the members that rejoined and answers their joins.
    fn complete_join(&mut self, now: Instant) {
        let stragglers: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.awaiting_join.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in &stragglers {
            tracing::info!(group = %self.id, member = %id, "member removed: did not rejoin within the rebalance timeout");
            self.members.remove(id);
        }
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.generation += 1;
        self.rebalance_deadline = None;
        if self.members.is_empty() {
            self.become_empty();
            return;
        }
        let Some(protocol) = self.select_protocol() else {
            // Members changed protocols mid-rebalance until none is common to all.
            for (id, member) in std::mem::take(&mut self.members) {
                if let Some(tx) = member.awaiting_join {
                    let _ = tx.send(JoinResult::error(
                        ResponseError::InconsistentGroupProtocol,
                        &id,
                    ));
                }
            }
            self.become_empty();
            return;
        };
        self.protocol_name = Some(protocol);
        self.phase = Phase::CompletingRebalance;
        self.rebalance_deadline = Some(now + self.rebalance_timeout());
        tracing::info!(
            group = %self.id,
            generation = self.generation,
            members = self.members.len(),
            protocol = self.protocol_name.as_deref().unwrap_or_default(),
            leader = self.leader.as_deref().unwrap_or_default(),
            "members joined; waiting for the leader's assignment"
        );
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.joined(&id, now);
            if let Some(tx) = self
                .members
                .get_mut(&id)
                .and_then(|m| m.awaiting_join.take())
            {
                let _ = tx.send(result);
            }
        }
    }

    /// Stores the leader's assignments, answers every waiting SyncGroup, and the group is
    /// Stable. Members the leader left out get an empty assignment.
    fn complete_sync(&mut self, assignments: Vec<(String, Bytes)>, now: Instant) {
        let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
        for (id, member) in &mut self.members {
            member.assignment = given.remove(id).unwrap_or_default();
        }
        self.phase = Phase::Stable;
        self.rebalance_deadline = None;
        tracing::info!(group = %self.id, generation = self.generation, "group stable");
        let answered: Vec<(oneshot::Sender<SyncResult>, Bytes)> = self
            .members
            .values_mut()
            .filter_map(|m| {
                m.last_seen = now;
                m.awaiting_sync.take().map(|tx| (tx, m.assignment.clone()))
            })
            .collect();
        for (tx, assignment) in answered {
            let _ = tx.send(self.synced(assignment));
        }
    }

    fn become_empty(&mut self) {
        self.phase = Phase::Empty;
        self.protocol_name = None;
        self.leader = None;
        self.rebalance_deadline = None;
        tracing::info!(group = %self.id, generation = self.generation, "group is empty");
    }

    /// The current generation as `id` would have learnt it from JoinGroup.
    fn joined(&mut self, id: &str, now: Instant) -> JoinResult {
        if let Some(member) = self.members.get_mut(id) {
            member.last_seen = now;
        }
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let is_leader = self.leader.as_deref() == Some(id);
        JoinResult {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: id.to_string(),
            members: if is_leader {
                self.members
                    .iter()
                    .map(|(member_id, m)| JoinedMember {
                        member_id: member_id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        metadata: m.metadata(&protocol),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    fn synced(&self, assignment: Bytes) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    fn select_protocol(&self) -> Option<String> {
        select_protocol(&self.members)
    }

    /// The longest rebalance timeout among members: how long a rebalance may take.
    fn rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    fn later<T>(&self, rx: oneshot::Receiver<T>, now: Instant) -> Reply<T> {
        Reply::Later {
            rx,
            answer_by: self.rebalance_deadline.unwrap_or(now) + super::ANSWER_SLACK,
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
