//! Checkpoint files: per task, the changelog offset each persistent store is current to.
//!
//! `<state dir>/<task>/.checkpoint` holds `{"<changelog topic>": <next offset>}` as JSON,
//! written to a temporary file, fsynced and renamed into place. At-least-once writes it
//! after every commit; exactly-once only on a clean close, and deletes it when the task
//! starts, so after a crash the store (which may hold uncommitted writes) is rebuilt
//! from the committed changelog.
//!
//! Each write uses its own temporary file: during a rebalance two threads of one instance
//! may briefly both hold a task (embedded groups have no revoke barrier), and a shared
//! temporary name let one rename the other's file away.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use crate::error::{Result, StreamsError};

const FILE: &str = ".checkpoint";

fn io_err(path: &Path, source: std::io::Error) -> StreamsError {
    StreamsError::StateDir {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn read(task_dir: &Path) -> HashMap<String, i64> {
    let path = task_dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), "ignoring an unreadable checkpoint ({e}): restoring from the changelog");
            HashMap::new()
        }),
        Err(_) => HashMap::new(),
    }
}

pub(crate) fn write(task_dir: &Path, offsets: &HashMap<String, i64>) -> Result<()> {
    std::fs::create_dir_all(task_dir).map_err(|e| io_err(task_dir, e))?;
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = task_dir.join(format!(".checkpoint.{n}.tmp"));
    let bytes = serde_json::to_vec(offsets).unwrap_or_default();
    let mut f = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(&bytes).map_err(|e| io_err(&tmp, e))?;
    f.sync_all().map_err(|e| io_err(&tmp, e))?;
    let path = task_dir.join(FILE);
    std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    Ok(())
}

pub(crate) fn delete(task_dir: &Path) -> Result<()> {
    let path = task_dir.join(FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&path, e)),
    }
}
