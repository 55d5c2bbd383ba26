//! What the in-process benchmarks share: a working directory they clean up, and cheap
//! pseudo-random record values.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, bail};
use bytes::Bytes;

/// xorshift64: cheap pseudo-random bytes for record values.
pub(super) struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Lowercase ASCII: random enough that compression cannot collapse it, regular enough
    /// that it has something to do.
    pub fn text(&mut self, len: usize) -> Bytes {
        let mut value = Vec::with_capacity(len);
        while value.len() < len {
            let word = self.next().to_le_bytes();
            let take = (len - value.len()).min(word.len());
            value.extend(word.iter().take(take).map(|b| b'a' + b % 26));
        }
        Bytes::from(value)
    }
}

/// A benchmark's working directory: `--data-dir` (which must be empty) or a new one under
/// the temp dir. On drop it removes what it made: the whole directory if it created it,
/// else the phase directories it handed out.
pub(super) struct Scratch {
    pub root: PathBuf,
    /// Whether the directory is ours to remove (it was created for this run).
    owned: bool,
    phases: Mutex<Vec<PathBuf>>,
}

impl Scratch {
    /// `bench` names the temp directory (`sluice-bench-<bench>-...`).
    pub fn new(requested: Option<&Path>, bench: &str) -> anyhow::Result<Scratch> {
        let (root, owned) = match requested {
            Some(dir) => {
                let empty = match std::fs::read_dir(dir) {
                    Ok(mut entries) => entries.next().is_none(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                    Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
                };
                if !empty {
                    bail!(
                        "--data-dir {} is not empty; give an empty or new directory (the \
                         benchmark deletes what it writes there)",
                        dir.display()
                    );
                }
                (dir.to_path_buf(), false)
            }
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let name = format!("sluice-bench-{bench}-{}-{nanos}", std::process::id());
                (std::env::temp_dir().join(name), true)
            }
        };
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        Ok(Scratch {
            root,
            owned,
            phases: Mutex::new(Vec::new()),
        })
    }

    /// A subdirectory, created if needed and removed on drop.
    pub fn phase_dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        if !phases.contains(&dir) {
            phases.push(dir.clone());
        }
        Ok(dir)
    }

    /// Leaves everything in place on drop (the caller keeps the data for later use).
    pub fn keep(&self) {
        self.phases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Removes a subdirectory now.
    pub fn remove_phase_dir(&self, name: &str) -> anyhow::Result<()> {
        let dir = self.root.join(name);
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.root);
        } else {
            let phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
            for dir in phases.iter() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// The median of `xs` (NaN when empty).
pub(super) fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        return f64::NAN;
    }
    let upper = xs.get(n / 2).copied().unwrap_or(f64::NAN);
    if n % 2 == 1 {
        upper
    } else {
        (xs.get(n / 2 - 1).copied().unwrap_or(f64::NAN) + upper) / 2.0
    }
}
