//! In-process group membership for embedded consumers.
//!
//! Consumers of one process that share a group id split the subscribed topics' partitions
//! with the range assignor. Every join or leave starts a new generation; members notice on
//! their next poll, commit what they were given so far (when auto-commit is on) and switch
//! to the new assignment. Delivery across a rebalance is at-least-once, as with Kafka's
//! eager protocol. Groups spanning processes use the broker's group protocol instead.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::range_assign;

#[derive(Default)]
struct GroupState {
    generation: i32,
    members: BTreeMap<String, Vec<String>>,
    assignment: BTreeMap<String, Vec<(String, i32)>>,
}

#[derive(Default)]
pub(crate) struct GroupCoordinator {
    groups: Mutex<HashMap<String, GroupState>>,
    next_member: AtomicU64,
}

impl GroupCoordinator {
    /// Adds a member subscribed to `topics`; returns its member id.
    pub fn join(
        &self,
        group: &str,
        topics: Vec<String>,
        partitions: &dyn Fn(&str) -> i32,
    ) -> String {
        let id = format!(
            "{group}-member-{}",
            self.next_member.fetch_add(1, Ordering::Relaxed)
        );
        let mut groups = self.groups.lock();
        let state = groups.entry(group.to_string()).or_default();
        state.members.insert(id.clone(), topics);
        Self::rebalance(state, partitions);
        id
    }

    /// Removes a member; the others get its partitions.
    pub fn leave(&self, group: &str, member: &str, partitions: &dyn Fn(&str) -> i32) {
        let mut groups = self.groups.lock();
        if let Some(state) = groups.get_mut(group)
            && state.members.remove(member).is_some()
        {
            if state.members.is_empty() {
                groups.remove(group);
            } else {
                Self::rebalance(state, partitions);
            }
        }
    }

    fn rebalance(state: &mut GroupState, partitions: &dyn Fn(&str) -> i32) {
        state.generation += 1;
        let mut counts = BTreeMap::new();
        for topics in state.members.values() {
            for t in topics {
                counts.entry(t.clone()).or_insert_with(|| partitions(t));
            }
        }
        state.assignment = range_assign(&state.members, &counts);
    }

    /// Current generation of a group (0 if it has no members).
    pub fn generation(&self, group: &str) -> i32 {
        self.groups.lock().get(group).map_or(0, |s| s.generation)
    }

    /// The member's partitions and the generation they belong to.
    pub fn assignment(&self, group: &str, member: &str) -> (i32, Vec<(String, i32)>) {
        let groups = self.groups.lock();
        match groups.get(group) {
            Some(state) => (
                state.generation,
                state.assignment.get(member).cloned().unwrap_or_default(),
            ),
            None => (0, Vec::new()),
        }
    }

    /// Members of a group, sorted.
    pub fn members(&self, group: &str) -> Vec<String> {
        self.groups
            .lock()
            .get(group)
            .map(|s| s.members.keys().cloned().collect())
            .unwrap_or_default()
    }
}
