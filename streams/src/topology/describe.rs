//! `Topology::describe`: the graph as text, laid out as Kafka Streams prints it.

use std::fmt::Write;

use super::{NodeKind, Topology};

pub(super) fn describe(t: &Topology) -> String {
    let g = &t.graph;
    let mut out = String::from("Topologies:\n");
    for sub in t.subtopologies.iter() {
        let _ = writeln!(out, "   Sub-topology: {}", sub.id);
        for &id in &sub.nodes {
            let node = &g.nodes[id];
            let stores: Vec<&str> = node
                .stores
                .iter()
                .map(|s| g.stores[*s].name.as_str())
                .collect();
            let _ = match &node.kind {
                NodeKind::Source { topics } => {
                    let topics: Vec<String> = topics.iter().map(|t| t.display()).collect();
                    writeln!(
                        out,
                        "    Source: {} (topics: [{}])",
                        node.name,
                        topics.join(", ")
                    )
                }
                NodeKind::Processor => {
                    writeln!(
                        out,
                        "    Processor: {} (stores: [{}])",
                        node.name,
                        stores.join(", ")
                    )
                }
                NodeKind::Sink { topic } => {
                    let topic = topic
                        .as_ref()
                        .map_or("<chosen per record>".into(), |t| t.display());
                    writeln!(out, "    Sink: {} (topic: {topic})", node.name)
                }
            };
            let children: Vec<&str> = t.children[id]
                .iter()
                .map(|c| g.nodes[*c].name.as_str())
                .collect();
            if !children.is_empty() {
                let _ = writeln!(out, "      --> {}", children.join(", "));
            }
            let parents: Vec<&str> = node
                .parents
                .iter()
                .map(|p| g.nodes[*p].name.as_str())
                .collect();
            if !parents.is_empty() {
                let _ = writeln!(out, "      <-- {}", parents.join(", "));
            }
        }
    }
    out
}
