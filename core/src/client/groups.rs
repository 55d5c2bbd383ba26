//! The consumer-group half of the admin API on [`Log`].

use std::collections::BTreeMap;

use crate::error::Result;
use crate::group::CommittedOffset;
use crate::log::Log;

impl Log {
    /// Durably commits `(topic, partition, next offset)` positions for `group`.
    pub fn commit_offsets(&self, group: &str, offsets: &[(String, i32, i64)]) -> Result<()> {
        let with_meta: Vec<(String, i32, i64, String)> = offsets
            .iter()
            .map(|(t, p, o)| (t.clone(), *p, *o, String::new()))
            .collect();
        self.inner.groups.commit(self, group, &with_meta)
    }

    /// The offset `group` committed for a partition, if any.
    pub fn committed_offset(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Option<CommittedOffset> {
        self.inner.groups.committed(group, topic, partition)
    }

    /// Every committed offset of a group, by (topic, partition).
    pub fn group_offsets(&self, group: &str) -> BTreeMap<(String, i32), CommittedOffset> {
        self.inner.groups.group_offsets(group)
    }

    /// Groups that have committed offsets.
    pub fn list_groups(&self) -> Vec<String> {
        self.inner.groups.groups()
    }

    /// Members of a group currently joined in this process.
    pub fn group_members(&self, group: &str) -> Vec<String> {
        self.inner.coordinator.members(group)
    }

    /// Deletes a group's committed offsets; returns how many there were.
    pub fn delete_group(&self, group: &str) -> Result<usize> {
        self.inner.groups.delete_group(self, group)
    }
}
