//! The commit protocol of the file sinks (`file`, `parquet`): data files and the offsets
//! they hold become visible together, exactly once.
//!
//! Under the sink's directory `root`, each sink keeps `_sluice/<sink>/` (readers skip
//! names starting with `_`):
//!
//! ```text
//! root/_sluice/<sink>/staging/<seq>.tmp     data being written, not yet committed
//! root/_sluice/<sink>/manifest-<n>.json     the last commit: its files and offsets
//! root/<dir>/<topic>-<sink>-<seq>.<ext>     committed data, under its final name
//! ```
//!
//! A commit (1) fsyncs the staged files, (2) writes `manifest-<n+1>.json` under a
//! temporary name, fsyncs it and renames it into place, then fsyncs the directory: this
//! rename is the commit point; (3) renames each staged file to its final name and fsyncs
//! the directories that changed; (4) deletes the previous manifest.
//!
//! [`Committer::open`] recovers: it takes the highest-numbered manifest, redoes the
//! renames it lists whose staged file is still there (a crash after (2)), deletes every
//! other staged file (a crash before (2): data of a commit that did not happen) and
//! returns the manifest's offsets, from which the runtime resumes. A manifest that does
//! not parse is refused, never skipped: it was renamed into place whole, so it is damage.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::batch::Offsets;
use crate::error::{Error, Result};

/// A data file of a commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Staged {
    /// Its name in the staging directory.
    pub staging: String,
    /// Its final path under the root, `/`-separated.
    pub path: String,
    /// Rows in it.
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OffsetEntry {
    topic: String,
    partition: i32,
    offset: i64,
}

/// What a manifest file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    sink: String,
    number: u64,
    /// The next file sequence number, so names never repeat across restarts.
    next_seq: u64,
    offsets: Vec<OffsetEntry>,
    files: Vec<Staged>,
}

/// Where a test asks a commit to stop, as a crash would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After the data files are staged and fsynced, before the manifest.
    BeforeManifest,
    /// After the manifest is in place, before any data file is renamed.
    AfterManifest,
}

/// One sink's commits under one root directory.
#[derive(Debug)]
pub struct Committer {
    root: PathBuf,
    sink: String,
    dir: PathBuf,
    staging: PathBuf,
    number: u64,
    next_seq: u64,
    committed: Option<Offsets>,
    crash: Option<CrashPoint>,
}

impl Committer {
    /// Opens (creating) the sink's state under `root` and recovers from an interrupted
    /// commit.
    pub fn open(root: &Path, sink: &str) -> Result<Committer> {
        let dir = root.join("_sluice").join(sink);
        let staging = dir.join("staging");
        std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
        let mut committer = Committer {
            root: root.to_path_buf(),
            sink: sink.to_string(),
            dir,
            staging,
            number: 0,
            next_seq: 0,
            committed: None,
            crash: None,
        };
        committer.recover()?;
        Ok(committer)
    }

    /// The offsets of the last commit (`None`: nothing committed yet).
    pub fn committed(&self) -> Option<&Offsets> {
        self.committed.as_ref()
    }

    /// A new file to stage: its sequence number and staging path.
    pub fn stage(&mut self) -> (u64, PathBuf) {
        let seq = self.next_seq;
        self.next_seq += 1;
        (seq, self.staging.join(format!("{seq:010}.tmp")))
    }

    /// Makes a test's next commit stop at `point`, returning an error, as a crash would.
    pub fn crash_at(&mut self, point: Option<CrashPoint>) {
        self.crash = point;
    }

    /// Commits `files` (staged, closed) with `offsets`; see the module docs for the steps.
    pub fn commit(&mut self, files: Vec<Staged>, offsets: &Offsets) -> Result<()> {
        for file in &files {
            let path = self.staging.join(&file.staging);
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&path, e))?;
        }
        if self.crash == Some(CrashPoint::BeforeManifest) {
            return Err(crash(CrashPoint::BeforeManifest));
        }
        let manifest = Manifest {
            version: 1,
            sink: self.sink.clone(),
            number: self.number + 1,
            next_seq: self.next_seq,
            offsets: offsets
                .iter()
                .map(|((topic, partition), offset)| OffsetEntry {
                    topic: topic.clone(),
                    partition: *partition,
                    offset: *offset,
                })
                .collect(),
            files,
        };
        let path = self.manifest_path(manifest.number);
        let temp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::connector(&self.sink, format!("manifest: {e}")))?;
        File::create(&temp)
            .and_then(|mut f| {
                f.write_all(&text)?;
                f.sync_all()
            })
            .map_err(|e| Error::io(&temp, e))?;
        std::fs::rename(&temp, &path).map_err(|e| Error::io(&path, e))?;
        sync_dir(&self.dir)?;
        // Committed from here on: recovery rolls the renames forward.
        let previous = self.number;
        self.number = manifest.number;
        self.committed = Some(offsets.clone());
        if self.crash == Some(CrashPoint::AfterManifest) {
            return Err(crash(CrashPoint::AfterManifest));
        }
        self.roll_forward(&manifest)?;
        if previous > 0 {
            let old = self.manifest_path(previous);
            std::fs::remove_file(&old)
                .or_else(ignore_missing)
                .map_err(|e| Error::io(&old, e))?;
        }
        Ok(())
    }

    fn manifest_path(&self, number: u64) -> PathBuf {
        self.dir.join(format!("manifest-{number:010}.json"))
    }

    /// Renames a manifest's staged files that are still staged to their final names.
    fn roll_forward(&self, manifest: &Manifest) -> Result<()> {
        let mut dirs = BTreeSet::new();
        for file in &manifest.files {
            let from = self.staging.join(&file.staging);
            let to = self.root.join(&file.path);
            if !from.exists() {
                continue;
            }
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                dirs.insert(parent.to_path_buf());
            }
            std::fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
        }
        for dir in dirs {
            sync_dir(&dir)?;
        }
        Ok(())
    }

    fn recover(&mut self) -> Result<()> {
        let mut numbers = Vec::new();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json.tmp") {
                // A manifest that never became the commit point.
                std::fs::remove_file(entry.path())
                    .or_else(ignore_missing)
                    .map_err(|e| Error::io(entry.path(), e))?;
            } else if let Some(n) = name
                .strip_prefix("manifest-")
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();
        let mut listed = BTreeSet::new();
        if let Some(&latest) = numbers.last() {
            let path = self.manifest_path(latest);
            let text = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| {
                Error::connector(
                    &self.sink,
                    format!(
                        "{} is damaged ({e}): it records what was committed, so the sink will not guess; restore it or remove the directory {} to start over",
                        path.display(),
                        self.dir.display()
                    ),
                )
            })?;
            self.roll_forward(&manifest)?;
            listed.extend(manifest.files.iter().map(|f| f.staging.clone()));
            self.number = manifest.number;
            self.next_seq = manifest.next_seq;
            self.committed = Some(
                manifest
                    .offsets
                    .into_iter()
                    .map(|o| ((o.topic, o.partition), o.offset))
                    .collect(),
            );
            for &older in numbers.iter().filter(|&&n| n < latest) {
                let old = self.manifest_path(older);
                std::fs::remove_file(&old)
                    .or_else(ignore_missing)
                    .map_err(|e| Error::io(&old, e))?;
            }
        }
        // Staged files no manifest lists belong to a commit that did not happen.
        let entries = std::fs::read_dir(&self.staging).map_err(|e| Error::io(&self.staging, e))?;
        let mut highest_seq = None;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.staging, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !listed.contains(&name) {
                std::fs::remove_file(entry.path())
                    .or_else(ignore_missing)
                    .map_err(|e| Error::io(entry.path(), e))?;
            }
            if let Some(seq) = name
                .strip_suffix(".tmp")
                .and_then(|s| s.parse::<u64>().ok())
            {
                highest_seq = highest_seq.max(Some(seq));
            }
        }
        if let Some(seq) = highest_seq {
            self.next_seq = self.next_seq.max(seq + 1);
        }
        sync_dir(&self.staging)?;
        Ok(())
    }
}

fn crash(point: CrashPoint) -> Error {
    Error::connector("crash test", format!("stopped at {point:?} as asked"))
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// Fsyncs a directory, so the names created or renamed in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}
