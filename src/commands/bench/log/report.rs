//! The report of `sluice bench log`: medians over the runs, each log figure set beside its
//! raw counterpart, printed as a table or as one JSON document, with the verdicts on the
//! throughput targets.
//!
//! Every rate is the median of the runs' seconds turned into records/s and MB/s over the
//! whole workload; a log figure's "vs raw" is the ratio of MB/s, so it does not depend on
//! how many records the bytes hold.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sluice_core::Durability;

use super::{LogBenchArgs, MB, READ_BYTES_MAX, RunTimes, Workload};

/// A median duration over the runs and the throughput it gives.
#[derive(Clone, Copy)]
struct Rate {
    seconds: f64,
    records_per_s: f64,
    mb_per_s: f64,
}

/// One figure of the report.
struct Line {
    /// Its key in the JSON output.
    key: &'static str,
    /// Its label in the table.
    label: &'static str,
    rate: Rate,
    /// For a log figure, the key of the raw figure it is compared with.
    raw: Option<&'static str>,
}

/// Medians over the runs, in the order they are printed.
pub(super) struct Report {
    lines: Vec<Line>,
    workload: Workload,
    data_dir: PathBuf,
}

impl Report {
    pub(super) fn new(
        args: &LogBenchArgs,
        workload: Workload,
        runs: &[RunTimes],
        dir: &Path,
    ) -> Report {
        let rate = |pick: fn(&RunTimes) -> f64| {
            let seconds = median(runs.iter().map(pick).collect());
            Rate {
                seconds,
                records_per_s: workload.records as f64 / seconds,
                mb_per_s: workload.bytes as f64 / MB / seconds,
            }
        };
        let line = |key, label, pick: fn(&RunTimes) -> f64, raw| Line {
            key,
            label,
            rate: rate(pick),
            raw,
        };
        let mut lines = vec![
            line("append", "append", |r| r.log.append_s, Some("raw_write")),
            line(
                "append_incl_flush",
                "append + final fsync",
                |r| r.log.append_s + r.log.flush_s,
                Some("raw_write_incl_flush"),
            ),
            line(
                "read",
                "read (page cache)",
                |r| r.log.read_s,
                Some("raw_read"),
            ),
            line("raw_write", "raw write", |r| r.raw.write_s, None),
            line(
                "raw_write_incl_flush",
                "raw write + final fsync",
                |r| r.raw.write_s + r.raw.flush_s,
                None,
            ),
            line("raw_read", "raw read (page cache)", |r| r.raw.read_s, None),
        ];
        if args.decode {
            let consume = |r: &RunTimes| r.log.consume_s.unwrap_or(f64::NAN);
            lines.insert(3, line("consume", "consume (read + decode)", consume, None));
        }
        Report {
            lines,
            workload,
            data_dir: dir.to_path_buf(),
        }
    }

    fn rate(&self, key: &str) -> Option<Rate> {
        self.lines.iter().find(|l| l.key == key).map(|l| l.rate)
    }

    /// `(name, log / raw)` for every log figure that has a raw counterpart.
    fn ratios(&self) -> Vec<(String, f64)> {
        let ratio = |l: &Line| {
            let raw = self.rate(l.raw?)?;
            Some((
                format!("{}_vs_{}", l.key, l.raw?),
                l.rate.mb_per_s / raw.mb_per_s,
            ))
        };
        self.lines.iter().filter_map(ratio).collect()
    }

    /// The targets, stated for `none`, 100-byte records and 1000 per batch.
    fn targets(&self) -> Vec<(&'static str, bool, String)> {
        let (Some(append), Some(read), Some(raw_write)) = (
            self.rate("append"),
            self.rate("read"),
            self.rate("raw_write"),
        ) else {
            return Vec::new();
        };
        let vs_raw = append.mb_per_s / raw_write.mb_per_s;
        vec![
            (
                "append >= 80% of raw write",
                vs_raw >= 0.8,
                format!("{:.1}%", vs_raw * 100.0),
            ),
            (
                "append >= 3M records/s",
                append.records_per_s >= 3e6,
                format!("{:.2}M records/s", append.records_per_s / 1e6),
            ),
            (
                "read >= 2 GB/s (page cache)",
                read.mb_per_s >= 2000.0,
                format!("{:.2} GB/s", read.mb_per_s / 1000.0),
            ),
        ]
    }

    pub(super) fn json(&self, args: &LogBenchArgs, runs: &[RunTimes]) -> Value {
        let mut out = serde_json::Map::new();
        for l in &self.lines {
            let figure = json!({
                "records_per_s": l.rate.records_per_s,
                "mb_per_s": l.rate.mb_per_s,
                "seconds": l.rate.seconds,
            });
            out.insert(l.key.into(), figure);
        }
        let ratios: serde_json::Map<String, Value> = self
            .ratios()
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect();
        out.insert("ratios".into(), Value::Object(ratios));
        out.insert(
            "config".into(),
            json!({
                "records": self.workload.records,
                "record_bytes": args.record_bytes,
                "batch_size": args.batch_size,
                "partitions": args.partitions,
                "durability": args.durability.to_string(),
                "compression": args.compression,
                "segment_bytes": args.segment_bytes,
                "runs": args.runs,
                "batches": self.workload.batches,
                "bytes": self.workload.bytes,
                "read_max_bytes": READ_BYTES_MAX,
                "data_dir": self.data_dir.display().to_string(),
            }),
        );
        let targets = self.targets().into_iter();
        let targets =
            targets.map(|(name, met, value)| json!({"target": name, "met": met, "value": value}));
        out.insert("targets".into(), Value::Array(targets.collect()));
        let runs = runs.iter().map(|r| {
            json!({
                "append_s": r.log.append_s,
                "flush_s": r.log.flush_s,
                "read_s": r.log.read_s,
                "consume_s": r.log.consume_s,
                "raw_write_s": r.raw.write_s,
                "raw_flush_s": r.raw.flush_s,
                "raw_read_s": r.raw.read_s,
            })
        });
        out.insert("runs".into(), Value::Array(runs.collect()));
        Value::Object(out)
    }

    pub(super) fn print(&self, args: &LogBenchArgs) {
        let w = &self.workload;
        println!(
            "sluice bench log: {} records of {} B in batches of {}, {} partition(s), \
             durability {}, compression {}; median of {} run(s)",
            w.records,
            args.record_bytes,
            args.batch_size,
            args.partitions,
            args.durability,
            format!("{:?}", args.compression).to_lowercase(),
            args.runs
        );
        println!(
            "{} batches, {:.1} MB on disk ({:.1} B per record), in {}{}\n",
            w.batches,
            w.bytes as f64 / MB,
            w.bytes as f64 / w.records as f64,
            self.data_dir.display(),
            if args.data_dir.is_none() {
                " (removed)"
            } else {
                ""
            }
        );
        println!(
            "{:<26} {:>9} {:>13} {:>10} {:>8}",
            "", "seconds", "records/s", "MB/s", "vs raw"
        );
        for l in &self.lines {
            let raw = l.raw.and_then(|key| self.rate(key));
            let ratio = raw.map_or(String::new(), |raw| {
                format!("{:.1}%", l.rate.mb_per_s / raw.mb_per_s * 100.0)
            });
            println!(
                "{:<26} {:>9.3} {:>13.0} {:>10.1} {ratio:>8}",
                l.label, l.rate.seconds, l.rate.records_per_s, l.rate.mb_per_s
            );
        }
        if args.durability == Durability::None {
            println!("\ntargets (stated for durability none, 100 B records, 1000 per batch):");
            for (name, met, value) in self.targets() {
                let verdict = if met { "met" } else { "MISSED" };
                println!("  {name:<30} {value:>18}  {verdict}");
            }
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match (values.get(mid.wrapping_sub(1)), values.get(mid)) {
        (Some(low), Some(high)) if values.len().is_multiple_of(2) => (low + high) / 2.0,
        (_, Some(middle)) => *middle,
        _ => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }
}
