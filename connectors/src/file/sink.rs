//! The `file` sink: rows as JSON lines, CSV or text lines, in files rolled by rows, bytes
//! or age and committed exactly once with the offsets they hold ([`super::commit`]).
//!
//! Deletes (tombstones) have no place in an append-only file and are skipped.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use serde::Deserialize;

use super::commit::Committer;
use super::roll::{FinishInfo, PartWriter, Parts, Roll};
use crate::batch::{Offsets, SinkBatch, SinkOp};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::sink::{Sink, SinkContext};

/// Default roll limits of the file sinks.
pub(crate) const ROLL_BYTES_DEFAULT: u64 = 128 << 20;
pub(crate) const ROLL_INTERVAL_MS_DEFAULT: u64 = 60_000;

/// The formats the `file` sink writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// One JSON object per line.
    #[default]
    Jsonl,
    /// CSV, with a header line per file unless `header = false`.
    Csv,
    /// The value of the single column, one per line.
    Lines,
}

impl OutputFormat {
    fn ext(self) -> &'static str {
        match self {
            OutputFormat::Jsonl => "jsonl",
            OutputFormat::Csv => "csv",
            OutputFormat::Lines => "txt",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSinkConfig {
    path: String,
    #[serde(default)]
    format: OutputFormat,
    #[serde(default = "yes")]
    header: bool,
    #[serde(default)]
    roll_rows: Option<u64>,
    #[serde(default)]
    roll_bytes: Option<u64>,
    #[serde(default)]
    roll_interval_ms: Option<u64>,
}

fn yes() -> bool {
    true
}

/// The roll keys checked: limits at least 1, defaults filled in.
pub(crate) fn roll_from(
    settings: &Settings,
    rows: Option<u64>,
    bytes: Option<u64>,
    interval_ms: Option<u64>,
) -> Result<Roll> {
    for (key, value) in [
        ("roll_rows", rows),
        ("roll_bytes", bytes),
        ("roll_interval_ms", interval_ms),
    ] {
        if value == Some(0) {
            return Err(settings.error(Some(key), format!("{key} must be at least 1")));
        }
    }
    Ok(Roll {
        rows,
        bytes: Some(bytes.unwrap_or(ROLL_BYTES_DEFAULT)),
        interval: Duration::from_millis(interval_ms.unwrap_or(ROLL_INTERVAL_MS_DEFAULT)),
    })
}

/// The `file` sink.
pub struct FileSink {
    name: String,
    root: PathBuf,
    format: OutputFormat,
    header: bool,
    roll: Roll,
    parts: Option<Parts>,
}

impl FileSink {
    /// Builds the sink from its keys (nothing is opened).
    pub fn new(settings: &Settings) -> Result<FileSink> {
        let config: FileSinkConfig = settings.parse()?;
        let roll = roll_from(
            settings,
            config.roll_rows,
            config.roll_bytes,
            config.roll_interval_ms,
        )?;
        Ok(FileSink {
            name: settings.name.clone(),
            root: settings.resolve_path(&config.path),
            format: config.format,
            header: config.header,
            roll,
            parts: None,
        })
    }

    /// The open files and commits (`None` before `open`): crash tests reach the committer
    /// through it.
    pub fn parts(&mut self) -> Option<&mut Parts> {
        self.parts.as_mut()
    }
}

#[async_trait]
impl Sink for FileSink {
    async fn check(&mut self) -> Vec<String> {
        check_dir(&self.name, &self.root)
    }

    async fn open(&mut self, context: &SinkContext) -> Result<Option<Offsets>> {
        if self.format == OutputFormat::Lines && context.schema.fields().len() != 1 {
            return Err(Error::connector(
                &self.name,
                format!(
                    "format `lines` writes one column, but the rows have {}: use jsonl or csv, or a transform that keeps one column",
                    context.schema.fields().len()
                ),
            ));
        }
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        let committer = Committer::open(&self.root, &context.sink)?;
        let offsets = committer.committed().cloned();
        let (format, header) = (self.format, self.header);
        let make = Box::new(move |path: &Path| -> Result<Box<dyn PartWriter>> {
            Ok(Box::new(TextPart::create(path, format, header)?))
        });
        self.parts = Some(Parts::new(
            committer,
            &context.sink,
            self.format.ext(),
            self.roll,
            make,
        ));
        Ok(offsets)
    }

    async fn write(&mut self, batch: SinkBatch) -> Result<()> {
        let Some(parts) = &mut self.parts else {
            return Err(Error::connector(
                &self.name,
                "write before open (a bug, please report)",
            ));
        };
        for op in &batch.ops {
            if let SinkOp::Upsert(rows) = op {
                parts.write(&batch.topic, "", rows)?;
            }
        }
        Ok(())
    }

    async fn commit(&mut self, offsets: &Offsets, closing: bool) -> Result<bool> {
        commit_parts(&self.name, self.parts.as_mut(), offsets, closing)
    }
}

/// The commit decision of the file sinks: decline until a file is due, unless closing.
pub(crate) fn commit_parts(
    name: &str,
    parts: Option<&mut Parts>,
    offsets: &Offsets,
    closing: bool,
) -> Result<bool> {
    let Some(parts) = parts else {
        return Err(Error::connector(
            name,
            "commit before open (a bug, please report)",
        ));
    };
    let moved = parts.committer().committed() != Some(offsets);
    if !moved && parts.is_empty() {
        return Ok(true);
    }
    if !closing && !parts.is_empty() && !parts.due() {
        return Ok(false);
    }
    parts.commit(offsets)?;
    Ok(true)
}

/// `check` of the file sinks: the directory exists or can be made.
pub(crate) fn check_dir(name: &str, root: &Path) -> Vec<String> {
    if root.is_file() {
        return vec![format!(
            "{name}: path `{}` is a file: name a directory",
            root.display()
        )];
    }
    let existing = root.ancestors().find(|p| p.exists());
    match existing.map(std::fs::metadata) {
        Some(Ok(meta)) if meta.permissions().readonly() => {
            vec![format!("{name}: `{}` is read-only", root.display())]
        }
        _ => Vec::new(),
    }
}

/// One text file being written.
struct TextPart {
    path: PathBuf,
    out: BufWriter<File>,
    format: OutputFormat,
    header: bool,
    bytes: u64,
    /// One batch encoded at a time, then written: bounded by the batch.
    scratch: Vec<u8>,
}

impl TextPart {
    fn create(path: &Path, format: OutputFormat, header: bool) -> Result<TextPart> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        Ok(TextPart {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, file),
            format,
            header,
            bytes: 0,
            scratch: Vec::new(),
        })
    }
}

impl PartWriter for TextPart {
    fn write(&mut self, rows: &RecordBatch) -> Result<()> {
        self.scratch.clear();
        encode(
            self.format,
            rows,
            self.header && self.bytes == 0,
            &mut self.scratch,
        )?;
        self.out
            .write_all(&self.scratch)
            .map_err(|e| Error::io(&self.path, e))?;
        self.bytes += self.scratch.len() as u64;
        Ok(())
    }

    fn bytes(&self) -> u64 {
        self.bytes
    }

    fn finish(self: Box<Self>, _info: &FinishInfo<'_>) -> Result<()> {
        let path = self.path;
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&path, e))
    }
}

/// Encodes rows in a text format, appending to `out`.
pub(crate) fn encode(
    format: OutputFormat,
    rows: &RecordBatch,
    header: bool,
    out: &mut Vec<u8>,
) -> Result<()> {
    match format {
        OutputFormat::Jsonl => {
            let mut writer = arrow::json::LineDelimitedWriter::new(out);
            writer.write(rows)?;
            writer.finish()?;
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(header)
                .build(out);
            writer.write(rows)?;
        }
        OutputFormat::Lines => {
            let Some(column) = rows.columns().first() else {
                return Ok(());
            };
            let options = FormatOptions::default().with_null("");
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
            use std::fmt::Write as _;
            let mut line = String::new();
            for row in 0..rows.num_rows() {
                line.clear();
                write!(line, "{}", formatter.value(row)).map_err(|e| Error::Data {
                    position: format!("row {row}"),
                    reason: e.to_string(),
                })?;
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
    }
    Ok(())
}
