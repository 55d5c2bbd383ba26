//! The registry of groups with members: which group a request is for, fresh member ids, the
//! limits from [`GroupLimits`], and the timer task that acts on deadlines.
//!
//! One lock covers every group. It is never held across an `.await`: a request takes it,
//! runs one state-machine step and drops it, and waits (for the rest of a rebalance) on a
//! oneshot channel instead. A group is forgotten as soon as it has no members, so memory
//! is bounded by `groups_max * members_max`; groups that only have committed offsets live
//! in `__consumer_offsets`, not here.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;

use super::GroupLimits;
use super::messages::{GroupSummary, JoinRequest, JoinResult, Reply, SyncResult};
use super::state::{Group, Phase};

pub(crate) struct GroupCoordinator {
    groups: Mutex<HashMap<String, Group>>,
    limits: GroupLimits,
    /// Set when the broker stops: waiters have been answered and no new ones may start.
    stopped: AtomicBool,
}

impl GroupCoordinator {
    pub fn new(limits: GroupLimits) -> GroupCoordinator {
        GroupCoordinator {
            groups: Mutex::new(HashMap::new()),
            limits,
            stopped: AtomicBool::new(false),
        }
    }

    pub fn join(&self, group_id: &str, mut request: JoinRequest) -> Reply<JoinResult> {
        let asked_as = request.member_id.clone();
        let refuse = |e| Reply::Now(JoinResult::error(e, &asked_as));
        if self.stopped.load(Ordering::Acquire) {
            return refuse(ResponseError::CoordinatorNotAvailable);
        }
        let limits = &self.limits;
        if !(limits.session_timeout_min..=limits.session_timeout_max)
            .contains(&request.session_timeout)
        {
            return refuse(ResponseError::InvalidSessionTimeout);
        }
        request.rebalance_timeout = request.rebalance_timeout.min(limits.rebalance_timeout_max);
        let new_member_id = if request.member_id.is_empty() {
            new_member_id(&request.client_id)
        } else {
            String::new()
        };
        let mut groups = self.groups.lock();
        if !groups.contains_key(group_id) {
            if !request.member_id.is_empty() {
                return refuse(ResponseError::UnknownMemberId);
            }
            if groups.len() >= limits.groups_max {
                tracing::warn!(
                    group = group_id,
                    max = limits.groups_max,
                    "too many groups with members; refusing a join"
                );
                return refuse(ResponseError::CoordinatorNotAvailable);
            }
        }
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id));
        let reply = group.join(request, new_member_id, limits.members_max, Instant::now());
        if group.is_empty() {
            groups.remove(group_id);
        }
        reply
    }

    pub fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
    ) -> Reply<SyncResult> {
        let mut groups = self.groups.lock();
        match groups.get_mut(group_id) {
            Some(group) => group.sync(
                member_id,
                generation,
                protocol.0,
                protocol.1,
                assignments,
                Instant::now(),
            ),
            None => Reply::Now(SyncResult::error(ResponseError::UnknownMemberId)),
        }
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        generation: i32,
    ) -> Option<ResponseError> {
        let mut groups = self.groups.lock();
        match groups.get_mut(group_id) {
            Some(group) => group.heartbeat(member_id, generation, Instant::now()),
            None => Some(ResponseError::UnknownMemberId),
        }
    }

    /// Removes members; one result per member id, in order.
    pub fn leave(&self, group_id: &str, member_ids: &[String]) -> Vec<Option<ResponseError>> {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return vec![Some(ResponseError::UnknownMemberId); member_ids.len()];
        };
        let now = Instant::now();
        let results = member_ids.iter().map(|id| group.leave(id, now)).collect();
        if group.is_empty() {
            groups.remove(group_id);
        }
        results
    }

    /// Whether an OffsetCommit may be stored; see `Group::validate_commit`. A group with no
    /// members here is Empty: only anonymous commits (generation -1, no member id) pass.
    pub fn validate_commit(
        &self,
        group_id: &str,
        member_id: &str,
        generation: i32,
    ) -> Option<ResponseError> {
        match self.groups.lock().get(group_id) {
            Some(group) => group.validate_commit(member_id, generation),
            None => Group::new(group_id).validate_commit(member_id, generation),
        }
    }

    /// Whether a TxnOffsetCommit may stage offsets; see `Group::validate_txn_commit`.
    pub fn validate_txn_commit(
        &self,
        group_id: &str,
        member_id: &str,
        generation: i32,
    ) -> Option<ResponseError> {
        match self.groups.lock().get(group_id) {
            Some(group) => group.validate_txn_commit(member_id, generation),
            None => Group::new(group_id).validate_txn_commit(member_id, generation),
        }
    }

    /// Every group with members: (id, state, protocol type).
    pub fn list(&self) -> Vec<(String, Phase, String)> {
        self.groups
            .lock()
            .iter()
            .map(|(id, g)| (id.clone(), g.phase(), g.protocol_type().to_string()))
            .collect()
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupSummary> {
        self.groups.lock().get(group_id).map(Group::summary)
    }

    /// Forgets a group that has no members, for DeleteGroups. Ok(true) if it was known
    /// here; NON_EMPTY_GROUP while members remain.
    pub fn delete(&self, group_id: &str) -> Result<bool, ResponseError> {
        let mut groups = self.groups.lock();
        match groups.get(group_id) {
            Some(group) if !group.is_empty() => Err(ResponseError::NonEmptyGroup),
            Some(_) => {
                groups.remove(group_id);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Acts on every group's deadlines.
    pub fn tick(&self, now: Instant) {
        let mut groups = self.groups.lock();
        for group in groups.values_mut() {
            group.tick(now);
        }
        groups.retain(|_, g| !g.is_empty());
    }

    /// Runs `tick` every `limits.tick` until the task is aborted.
    pub async fn run_timers(self: Arc<Self>) {
        let mut interval = tokio::time::interval(self.limits.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            self.tick(Instant::now());
        }
    }

    /// Answers every waiting JoinGroup and SyncGroup and refuses new joins, so connections
    /// can finish their in-flight request and close.
    pub fn shutdown(&self) {
        self.stopped.store(true, Ordering::Release);
        for group in self.groups.lock().values_mut() {
            group.shutdown();
        }
    }
}

/// A fresh member id, `<client id>-<uuid>` as Kafka makes them: unique, and telling an
/// operator which client it belongs to.
fn new_member_id(client_id: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Each RandomState has its own random keys, so these are unpredictable; the counter
    // keeps two ids apart even if the keys repeated.
    let high = RandomState::new().hash_one(n);
    let low = RandomState::new().hash_one((n, high)) ^ n;
    format!(
        "{client_id}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_name_the_client_and_are_unique() {
        // Proves member ids look like Kafka's (`<client id>-<uuid>`) and don't repeat.
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| new_member_id("rdkafka")).collect();
        assert_eq!(ids.len(), 1000);
        let id = ids.iter().next().cloned().unwrap_or_default();
        assert!(id.starts_with("rdkafka-"), "{id}");
        assert_eq!(id.len(), "rdkafka-".len() + 36, "{id}");
    }
}
