//! The raw baseline of `sluice bench log`: the same batches written to one plain file per
//! partition with `pwrite`, under the same fsync policy as the log (per write for `sync`, a
//! flusher thread for `interval`, a final fsync timed apart), then read back with `pread`
//! in chunks of one batch. It is the machine's own limit the log's figures are set beside.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use sluice_core::Durability;

use super::{Feed, per_partition};

/// Seconds each raw step of one run took.
pub(super) struct RawTimes {
    pub(super) write_s: f64,
    /// The final `sync_data` of every file.
    pub(super) flush_s: f64,
    pub(super) read_s: f64,
}

/// Writes then reads back every feed's batches in `dir`, one file per partition.
pub(super) fn bench_raw(
    dir: &Path,
    feeds: &[Feed],
    durability: Durability,
) -> anyhow::Result<RawTimes> {
    let files = (0..feeds.len())
        .map(|p| {
            let path = dir.join(format!("raw-{p}.bin"));
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))
        })
        .collect::<anyhow::Result<Vec<File>>>()?;

    let start = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        // Like the log's background thread: one flusher for every file, on its own thread.
        let (stop, stopped) = mpsc::channel::<()>();
        let files = &files;
        let flusher = match durability {
            Durability::Interval(ms) => Some(s.spawn(move || -> anyhow::Result<()> {
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_millis(ms))
                {
                    for file in files {
                        file.sync_data()?;
                    }
                }
                Ok(())
            })),
            _ => None,
        };
        let written = per_partition(feeds.iter().zip(files), |(feed, file)| {
            let mut position = 0u64;
            for batch in feed.batches() {
                file.write_all_at(&batch.bytes, position)?;
                if durability == Durability::Sync {
                    file.sync_data()?;
                }
                position += batch.bytes.len() as u64;
            }
            Ok(())
        });
        drop(stop);
        if let Some(flusher) = flusher {
            flusher
                .join()
                .map_err(|_| anyhow!("raw flusher thread panicked"))??;
        }
        written.map(drop)
    })?;
    let write_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for file in &files {
        file.sync_data()?;
    }
    let flush_s = start.elapsed().as_secs_f64();

    let start = Instant::now();
    per_partition(feeds.iter().zip(&files), |(feed, file)| {
        let largest = feed.pool.iter().map(|b| b.bytes.len()).max().unwrap_or(0);
        let mut buf = vec![0u8; largest];
        let mut position = 0u64;
        for batch in feed.batches() {
            let chunk = buf
                .get_mut(..batch.bytes.len())
                .ok_or_else(|| anyhow!("read buffer too small"))?;
            file.read_exact_at(chunk, position)?;
            position += chunk.len() as u64;
        }
        std::hint::black_box(&buf);
        Ok(())
    })?;
    let read_s = start.elapsed().as_secs_f64();
    Ok(RawTimes {
        write_s,
        flush_s,
        read_s,
    })
}
