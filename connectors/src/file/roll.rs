//! Rolling data files for the file sinks: one open file per (topic, directory), closed
//! into the next commit when it reaches its row or byte limit or its age; commits go
//! through the [`Committer`].
//!
//! A commit must take every open file: the offsets it stores cover all rows written. So
//! "rolling" a file means the commit that follows is due (the sink accepts it); a file
//! that reached `roll_rows` takes no more rows and the next rows start a new file, which
//! keeps files at exactly `roll_rows` rows except the last of a commit.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use serde::Deserialize;

use super::commit::{Committer, Staged};
use crate::batch::Offsets;
use crate::error::Result;

/// Files open at once past which a commit is due at once (many partition directories).
const OPEN_FILES_MAX: usize = 256;
/// Rows buffered in memory by all open writers past which they write them out.
const MEMORY_BYTES_MAX: usize = 512 << 20;

/// The roll keys, common to the file sinks.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Roll {
    /// Rows per file at most.
    pub rows: Option<u64>,
    /// Bytes per file at most (checked after each write, so a file may pass it by a batch).
    pub bytes: Option<u64>,
    /// Age of a file at which it is due.
    pub interval: Duration,
}

/// What a writer learns when its file is finished: for footers.
#[derive(Debug, Clone, Copy)]
pub struct FinishInfo<'a> {
    /// The sink's name.
    pub sink: &'a str,
    /// The offsets the commit starts from (`None`: unknown, the first commit).
    pub start: Option<&'a Offsets>,
    /// The offsets the commit stores.
    pub end: &'a Offsets,
}

/// One data file being written in a format.
pub trait PartWriter: Send {
    /// Appends rows.
    fn write(&mut self, rows: &RecordBatch) -> Result<()>;
    /// Bytes written so far (an estimate for buffered formats).
    fn bytes(&self) -> u64;
    /// Bytes held in memory, not yet in the file.
    fn memory(&self) -> usize {
        0
    }
    /// Writes out what is held in memory.
    fn flush_memory(&mut self) -> Result<()> {
        Ok(())
    }
    /// Completes the file (footer, flush) and fsyncs it.
    fn finish(self: Box<Self>, info: &FinishInfo<'_>) -> Result<()>;
}

/// Makes the writer of a new staged file.
pub type MakeWriter = dyn Fn(&Path) -> Result<Box<dyn PartWriter>> + Send + Sync;

struct OpenPart {
    writer: Box<dyn PartWriter>,
    staging: String,
    path: String,
    rows: u64,
    opened: Instant,
}

/// The open files of a sink and its commits.
pub struct Parts {
    committer: Committer,
    sink: String,
    ext: &'static str,
    roll: Roll,
    make: Box<MakeWriter>,
    open: BTreeMap<(String, String), OpenPart>,
    full: Vec<OpenPart>,
}

impl Parts {
    /// Files named `<dir>/<topic>-<sink>-<seq>.<ext>`, made by `make`.
    pub fn new(
        committer: Committer,
        sink: &str,
        ext: &'static str,
        roll: Roll,
        make: Box<MakeWriter>,
    ) -> Parts {
        Parts {
            committer,
            sink: sink.to_string(),
            ext,
            roll,
            make,
            open: BTreeMap::new(),
            full: Vec::new(),
        }
    }

    /// The committer (for crash tests and the committed offsets).
    pub fn committer(&mut self) -> &mut Committer {
        &mut self.committer
    }

    /// Writes `rows` of `topic` into directory `dir` (`""`: the root), starting new files
    /// at the roll limits.
    pub fn write(&mut self, topic: &str, dir: &str, rows: &RecordBatch) -> Result<()> {
        let total = rows.num_rows();
        let mut done = 0;
        while done < total {
            let key = (topic.to_string(), dir.to_string());
            if !self.open.contains_key(&key) {
                let (seq, staging) = self.committer.stage();
                let name = format!(
                    "{}-{}-{seq:010}.{}",
                    escape(topic),
                    escape(&self.sink),
                    self.ext
                );
                let path = if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                };
                let part = OpenPart {
                    writer: (self.make)(&staging)?,
                    staging: staging
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    path,
                    rows: 0,
                    opened: Instant::now(),
                };
                self.open.insert(key.clone(), part);
            }
            let Some(part) = self.open.get_mut(&key) else {
                break;
            };
            let room = self
                .roll
                .rows
                .map_or(u64::MAX, |r| r.saturating_sub(part.rows).max(1));
            let take = (total - done).min(usize::try_from(room).unwrap_or(usize::MAX));
            part.writer.write(&rows.slice(done, take))?;
            part.rows += take as u64;
            done += take;
            let full = self.roll.rows.is_some_and(|r| part.rows >= r)
                || self.roll.bytes.is_some_and(|b| part.writer.bytes() >= b);
            if full && let Some(part) = self.open.remove(&key) {
                self.full.push(part);
            }
        }
        let memory: usize = self.parts().map(|p| p.writer.memory()).sum();
        if memory > MEMORY_BYTES_MAX {
            for part in self.open.values_mut().chain(self.full.iter_mut()) {
                part.writer.flush_memory()?;
            }
        }
        Ok(())
    }

    fn parts(&self) -> impl Iterator<Item = &OpenPart> {
        self.open.values().chain(self.full.iter())
    }

    /// Whether a file is due to roll: full, old enough, or too many open.
    pub fn due(&self) -> bool {
        !self.full.is_empty()
            || self.open.len() > OPEN_FILES_MAX
            || self
                .open
                .values()
                .any(|p| p.opened.elapsed() >= self.roll.interval)
    }

    /// Whether any file is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty() && self.full.is_empty()
    }

    /// Finishes every file and commits them with `offsets`.
    pub fn commit(&mut self, offsets: &Offsets) -> Result<()> {
        let start = self.committer.committed().cloned();
        let info = FinishInfo {
            sink: &self.sink,
            start: start.as_ref(),
            end: offsets,
        };
        let mut staged = Vec::new();
        let parts: Vec<OpenPart> = std::mem::take(&mut self.full)
            .into_iter()
            .chain(std::mem::take(&mut self.open).into_values())
            .collect();
        for part in parts {
            part.writer.finish(&info)?;
            staged.push(Staged {
                staging: part.staging,
                path: part.path,
                rows: part.rows,
            });
        }
        self.committer.commit(staged, offsets)
    }
}

/// Escapes a value for one path component, Hive style: `/`, `=`, `%`, control characters
/// and the characters file systems refuse become `%XX`.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_control()
            || matches!(
                c,
                '/' | '\\'
                    | '='
                    | '%'
                    | ':'
                    | '*'
                    | '?'
                    | '"'
                    | '<'
                    | '>'
                    | '|'
                    | '#'
                    | '\''
                    | '['
                    | ']'
                    | '{'
                    | '}'
                    | '^'
            )
        {
            let mut bytes = [0u8; 4];
            for b in c.encode_utf8(&mut bytes).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out == "." || out == ".." {
        out = out.replace('.', "%2E");
    }
    out
}

/// The inverse of [`escape`].
pub fn unescape(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let Some(hex) = value.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
