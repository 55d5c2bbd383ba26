//! The progress of `connect run`: a live display (one line per source and sink: state,
//! records, bytes, rate, lag) on a terminal, plain log lines otherwise, and a summary at
//! the end.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sluice_connectors::runtime::{ConnectorStats, Snapshot, State};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// `live` on a terminal, `lines` otherwise.
    Auto,
    /// Lines redrawn in place.
    Live,
    /// A line per connector every interval.
    Lines,
    /// Nothing until the summary.
    None,
}

/// A running display.
pub struct Display {
    task: Option<tokio::task::JoinHandle<()>>,
    stop: Arc<tokio::sync::Notify>,
}

impl Display {
    /// Stops the display (drawing one last time).
    pub async fn finish(self) {
        self.stop.notify_one();
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}

/// Starts showing progress.
pub fn start(
    mode: Mode,
    pipeline: &str,
    stats: Vec<Arc<ConnectorStats>>,
    interval: Duration,
) -> Display {
    let stop = Arc::new(tokio::sync::Notify::new());
    let live = match mode {
        Mode::Auto => std::io::stderr().is_terminal(),
        Mode::Live => true,
        Mode::Lines => false,
        Mode::None => return Display { task: None, stop },
    };
    let pipeline = pipeline.to_string();
    let notified = stop.clone();
    let task = tokio::spawn(async move {
        let started = Instant::now();
        let mut last: Vec<(Instant, u64)> = stats.iter().map(|_| (started, 0)).collect();
        let mut rates = vec![0.0f64; stats.len()];
        if live {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{prefix:.bold} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let bars: Vec<ProgressBar> = stats
                .iter()
                .map(|s| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(style.clone());
                    bar.set_prefix(format!("{:<6} {:<20}", s.role, s.name));
                    bar
                })
                .collect();
            loop {
                let done = tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => false,
                    _ = notified.notified() => true,
                };
                for (i, s) in stats.iter().enumerate() {
                    let snap = s.snapshot();
                    rates[i] = rate(&mut last[i], snap.records);
                    bars[i].set_message(describe(&snap, rates[i]));
                }
                if done {
                    for bar in &bars {
                        bar.finish();
                    }
                    return;
                }
            }
        } else {
            loop {
                let done = tokio::select! {
                    _ = tokio::time::sleep(interval) => false,
                    _ = notified.notified() => true,
                };
                if done {
                    return;
                }
                for (i, s) in stats.iter().enumerate() {
                    let snap = s.snapshot();
                    let r = rate(&mut last[i], snap.records);
                    eprintln!(
                        "[{pipeline}] {} {}: {}",
                        snap.role,
                        snap.name,
                        describe(&snap, r)
                    );
                }
            }
        }
    });
    Display {
        task: Some(task),
        stop,
    }
}

/// Records per second since the last reading.
fn rate(last: &mut (Instant, u64), records: u64) -> f64 {
    let now = Instant::now();
    let secs = now.duration_since(last.0).as_secs_f64();
    let r = if secs > 0.0 {
        (records.saturating_sub(last.1)) as f64 / secs
    } else {
        0.0
    };
    *last = (now, records);
    r
}

fn describe(s: &Snapshot, rate: f64) -> String {
    let state = match &s.state {
        State::Starting => "starting".to_string(),
        State::Running => "running".to_string(),
        State::Retrying(e) => format!("retrying ({e})"),
        State::Done => "done".to_string(),
        State::Failed(e) => format!("FAILED: {e}"),
    };
    let mut line = format!(
        "{state:<9} {} records  {}  {}/s",
        thousands(s.records),
        bytes(s.bytes),
        thousands(rate as u64)
    );
    if let Some(lag) = s.lag {
        line.push_str(&format!("  lag {}", thousands(lag as u64)));
    }
    if s.skipped > 0 {
        line.push_str(&format!("  skipped {}", thousands(s.skipped)));
    }
    if s.dead_lettered > 0 {
        line.push_str(&format!("  dead-lettered {}", thousands(s.dead_lettered)));
    }
    line
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Prints what each connector did.
pub fn summary(pipeline: &str, stats: &[Arc<ConnectorStats>]) {
    for s in stats {
        let snap = s.snapshot();
        eprintln!(
            "[{pipeline}] {} {}: {}",
            snap.role,
            snap.name,
            describe(&snap, 0.0).replace("  0/s", "")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
