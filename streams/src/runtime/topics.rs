//! Before a job starts: check its input topics, work out the partition counts of its
//! internal topics and create them (repartition topics, compacted changelogs) and any
//! missing output topics.

use std::collections::HashMap;

use crate::error::{Result, StreamsError};
use crate::runtime::backend::Backend;
use crate::topology::{NodeKind, TopicName, Topology};

/// What the runtime needs to know about the job's topics.
#[derive(Debug, Default)]
pub(crate) struct TopicPlan {
    /// Every topic the job reads (full names), to subscribe to.
    pub source_topics: Vec<String>,
    /// Input topic -> the sub-topology reading it.
    pub topic_subtopology: HashMap<String, usize>,
    /// The repartition topics the job reads (full names): what it has committed of them
    /// is purged (see `runtime::thread`).
    pub repartition_topics: std::collections::HashSet<String>,
}

/// `dead_letter`: the job-wide dead-letter topic, created (1 partition) if missing.
pub(crate) fn prepare(
    topology: &Topology,
    app: &str,
    dead_letter: Option<&str>,
    backend: &dyn Backend,
) -> Result<TopicPlan> {
    if let Some(dlq) = dead_letter
        && backend.partitions(dlq)?.is_none()
    {
        tracing::info!(topic = %dlq, "creating the job's dead-letter topic");
        backend.ensure_topic(dlq, 1, false)?;
    }
    let graph = &topology.graph;
    let subs = &topology.subtopologies;
    // Which sub-topology writes each repartition topic.
    let mut writer: HashMap<TopicName, usize> = HashMap::new();
    for sub in subs.iter() {
        for t in &sub.sink_topics {
            writer.insert(t.clone(), sub.id);
        }
    }
    let asked: HashMap<TopicName, Option<i32>> = graph
        .repartition_topics
        .iter()
        .map(|t| (t.name.clone(), t.partitions))
        .collect();
    let mut sub_partitions: Vec<Option<i32>> = vec![None; subs.len()];
    // Sub-topologies in id order see their upstream first; loop until nothing changes
    // in case an explicit layout says otherwise.
    for _ in 0..=subs.len() {
        let mut changed = false;
        for sub in subs.iter() {
            if sub_partitions[sub.id].is_some() {
                continue;
            }
            let mut counts = Vec::new();
            let mut unknown = false;
            for t in &sub.source_topics {
                let n = match t {
                    TopicName::User(name) => Some(backend.partitions(name)?.ok_or_else(|| {
                        StreamsError::Topology(format!(
                            "input topic '{name}' does not exist: create it first (sluice topics create {name} --partitions N)"
                        ))
                    })?),
                    TopicName::Internal(_) => match asked.get(t).copied().flatten() {
                        Some(n) => Some(n),
                        None => writer.get(t).and_then(|w| sub_partitions[*w]),
                    },
                };
                match n {
                    Some(n) => counts.push((t.display(), n)),
                    None => unknown = true,
                }
            }
            if unknown {
                continue;
            }
            if let Some((first, n)) = counts.first() {
                if let Some((other, m)) = counts.iter().find(|(_, m)| m != n) {
                    return Err(StreamsError::Topology(format!(
                        "topics read together must have the same number of partitions: '{first}' has {n}, '{other}' has {m}"
                    )));
                }
                sub_partitions[sub.id] = Some(*n);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut plan = TopicPlan::default();
    for sub in subs.iter() {
        let n = sub_partitions[sub.id].ok_or_else(|| {
            StreamsError::Topology(format!(
                "cannot work out the partition count of sub-topology {}",
                sub.id
            ))
        })?;
        for t in &sub.source_topics {
            let name = t.resolve(app);
            if let TopicName::Internal(_) = t {
                backend.ensure_topic(&name, n, false)?;
                plan.repartition_topics.insert(name.clone());
            }
            plan.topic_subtopology.insert(name.clone(), sub.id);
            plan.source_topics.push(name);
        }
        for &s in &sub.stores {
            if let Some(changelog) = graph.stores[s].changelog() {
                backend.ensure_topic(&changelog.resolve(app), n, true)?;
            }
        }
        for &id in &sub.nodes {
            if let NodeKind::Sink {
                topic: Some(TopicName::User(out)),
            } = &graph.nodes[id].kind
                && backend.partitions(out)?.is_none()
            {
                tracing::info!(topic = %out, partitions = n, "creating the job's output topic");
                backend.ensure_topic(out, n, false)?;
            }
        }
    }
    Ok(plan)
}
