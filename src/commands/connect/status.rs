//! `connect status`: sources' stored positions and sinks' committed offsets and lag, for
//! one pipeline file or every pipeline that has run on the data directory.

use anyhow::Context;
use serde_json::json;
use sluice_connectors::PipelineFile;
use sluice_connectors::runtime::{POSITIONS_TOPIC, ensure_internal_topics, read_positions};
use sluice_core::Log;

use super::StatusArgs;

const GROUP_PREFIX: &str = "sluice-connect.";

/// Runs `connect status`.
pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let log = args.log.open()?;
    let report = report(&log, args).context("reading the pipelines' state");
    log.close().context("closing the log")?;
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print_table(&report);
    Ok(())
}

fn report(log: &Log, args: &StatusArgs) -> anyhow::Result<serde_json::Value> {
    ensure_internal_topics(log)?;
    let positions = read_positions(log)?;
    // Which sources and sink groups to show.
    let (sources, groups): (Vec<String>, Vec<String>) = match &args.file {
        Some(file) => {
            let file = PipelineFile::load(file).map_err(|e| anyhow::anyhow!("{e}"))?;
            (
                file.sources
                    .iter()
                    .map(|s| format!("{}/{}", file.name, s.common.name))
                    .collect(),
                file.sinks
                    .iter()
                    .map(|s| {
                        s.common.group.clone().unwrap_or_else(|| {
                            format!("{GROUP_PREFIX}{}.{}", file.name, s.common.name)
                        })
                    })
                    .collect(),
            )
        }
        None => (
            positions.keys().cloned().collect(),
            log.list_groups()
                .into_iter()
                .filter(|g| g.starts_with(GROUP_PREFIX))
                .collect(),
        ),
    };
    let now = sluice_core::now_ms();
    let sources: Vec<_> = sources
        .iter()
        .map(|key| match positions.get(key) {
            Some(p) => json!({
                "source": key,
                "position": p.position,
                "records": p.records,
                "updated_ms_ago": now - p.updated_ms,
            }),
            None => json!({ "source": key, "position": null, "records": 0 }),
        })
        .collect();
    let sinks: Vec<_> = groups
        .iter()
        .map(|group| {
            let mut total_lag = 0i64;
            let partitions: Vec<_> = log
                .group_offsets(group)
                .into_iter()
                .map(|((topic, partition), committed)| {
                    let end = log
                        .partition(&topic, partition)
                        .map(|p| p.last_stable_offset())
                        .unwrap_or(committed.offset);
                    let lag = (end - committed.offset).max(0);
                    total_lag += lag;
                    json!({
                        "topic": topic,
                        "partition": partition,
                        "committed": committed.offset,
                        "end": end,
                        "lag": lag,
                        "committed_ms_ago": now - committed.commit_timestamp,
                    })
                })
                .collect();
            json!({ "group": group, "lag": total_lag, "partitions": partitions })
        })
        .collect();
    Ok(json!({ "positions_topic": POSITIONS_TOPIC, "sources": sources, "sinks": sinks }))
}

fn ago(ms: Option<i64>) -> String {
    match ms {
        None => "never".into(),
        Some(ms) if ms < 1_000 => "just now".into(),
        Some(ms) if ms < 120_000 => format!("{} s ago", ms / 1_000),
        Some(ms) if ms < 7_200_000 => format!("{} min ago", ms / 60_000),
        Some(ms) => format!("{} h ago", ms / 3_600_000),
    }
}

fn print_table(report: &serde_json::Value) {
    let empty = Vec::new();
    let sources = report["sources"].as_array().unwrap_or(&empty);
    let sinks = report["sinks"].as_array().unwrap_or(&empty);
    if sources.is_empty() && sinks.is_empty() {
        println!("no pipeline has run on this data directory");
        return;
    }
    for s in sources {
        println!(
            "source {:<32} records {:<10} updated {:<12} position {}",
            s["source"].as_str().unwrap_or(""),
            s["records"],
            ago(s["updated_ms_ago"].as_i64()),
            s["position"]
        );
    }
    for s in sinks {
        println!(
            "sink   {:<32} lag {}",
            s["group"].as_str().unwrap_or(""),
            s["lag"]
        );
        for p in s["partitions"].as_array().unwrap_or(&empty) {
            println!(
                "         {}/{}: committed {} of {} (lag {}), {}",
                p["topic"].as_str().unwrap_or(""),
                p["partition"],
                p["committed"],
                p["end"],
                p["lag"],
                ago(p["committed_ms_ago"].as_i64())
            );
        }
        if s["partitions"].as_array().is_none_or(|p| p.is_empty()) {
            println!("         nothing committed yet");
        }
    }
}
