//! The `parquet` source: Parquet files (a file, a directory searched recursively for
//! `*.parquet`, or a glob) read in name order, in batches of at most the poll's rows.
//!
//! The position is the last file read to its end and the next row of the file being
//! read, so resuming is exact. With `hive_partitions = true`, `key=value` directories
//! between the root and a file become VARCHAR columns (unescaped). In `watch` mode the
//! source waits for files that sort after the last one read (such as the sink's
//! sequence-numbered files) instead of ending.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use async_trait::async_trait;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use serde::{Deserialize, Serialize};

use crate::batch::{Poll, Position, SourceBatch};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::file::discover::{is_hidden, list_files};
use crate::file::roll::unescape;
use crate::source::Source;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParquetSourceConfig {
    path: String,
    #[serde(default)]
    hive_partitions: bool,
    #[serde(default)]
    mode: WatchMode,
}

/// Whether the source ends after the last file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// Read every file, then done.
    #[default]
    Once,
    /// Keep waiting for new files.
    Watch,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ParquetPosition {
    done: Option<PathBuf>,
    file: Option<PathBuf>,
    row: u64,
}

struct Reading {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    batch_rows: usize,
    row: u64,
    /// The Hive columns' names and values for this file.
    hive: Vec<(String, String)>,
}

/// The `parquet` source.
pub struct ParquetSource {
    name: String,
    pattern: PathBuf,
    hive_partitions: bool,
    mode: WatchMode,
    done: Option<PathBuf>,
    reading: Option<Reading>,
    /// A file to open at a row (from a stored position).
    resume: Option<(PathBuf, u64)>,
}

impl ParquetSource {
    /// Builds the source from its keys (nothing is opened).
    pub fn new(settings: &Settings) -> Result<ParquetSource> {
        let config: ParquetSourceConfig = settings.parse()?;
        Ok(ParquetSource {
            name: settings.name.clone(),
            pattern: settings.resolve_path(&config.path),
            hive_partitions: config.hive_partitions,
            mode: config.mode,
            done: None,
            reading: None,
            resume: None,
        })
    }

    fn files(&self) -> Result<Vec<PathBuf>> {
        // Hidden names below the root (`_sluice/`, staged files) are not data.
        let root = self.root();
        let visible = |f: &PathBuf| {
            let relative = f.strip_prefix(&root).unwrap_or(f);
            !relative
                .components()
                .any(|c| is_hidden(Path::new(c.as_os_str())))
        };
        list_files(&self.pattern, true, &|p| {
            p.extension().is_some_and(|e| e == "parquet")
        })
        .map(|files| files.into_iter().filter(visible).collect())
    }

    /// The directory Hive columns are taken below.
    fn root(&self) -> PathBuf {
        if self.pattern.is_dir() {
            return self.pattern.clone();
        }
        let mut root = PathBuf::new();
        for component in self.pattern.components() {
            if component
                .as_os_str()
                .to_string_lossy()
                .contains(['*', '?', '['])
            {
                return root;
            }
            root.push(component);
        }
        root.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    fn hive_columns(&self, path: &Path) -> Vec<(String, String)> {
        if !self.hive_partitions {
            return Vec::new();
        }
        let root = self.root();
        let relative = path.strip_prefix(&root).unwrap_or(path);
        let mut columns = Vec::new();
        if let Some(parent) = relative.parent() {
            for component in parent.components() {
                let text = component.as_os_str().to_string_lossy();
                if let Some((key, value)) = text.split_once('=') {
                    columns.push((unescape(key), unescape(value)));
                }
            }
        }
        columns
    }

    fn open_file(&self, path: &Path, row: u64, batch_rows: usize) -> Result<Reading> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| {
                b.with_batch_size(batch_rows)
                    .with_offset(usize::try_from(row).unwrap_or(usize::MAX))
                    .build()
            })
            .map_err(|e| Error::connector(&self.name, format!("{}: {e}", path.display())))?;
        Ok(Reading {
            path: path.to_path_buf(),
            reader,
            batch_rows,
            row,
            hive: self.hive_columns(path),
        })
    }

    fn position(&self) -> Position {
        let position = ParquetPosition {
            done: self.done.clone(),
            file: self.reading.as_ref().map(|r| r.path.clone()),
            row: self.reading.as_ref().map_or(0, |r| r.row),
        };
        serde_json::to_value(position).unwrap_or_default()
    }
}

/// Appends the Hive columns (constant per file) the rows do not have already.
fn with_hive(rows: RecordBatch, hive: &[(String, String)]) -> Result<RecordBatch> {
    if hive.is_empty() {
        return Ok(rows);
    }
    let schema = rows.schema();
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    let mut columns: Vec<ArrayRef> = rows.columns().to_vec();
    for (key, value) in hive {
        if schema.field_with_name(key).is_ok() {
            continue;
        }
        let value = (value != super::partition::NULL_PARTITION).then_some(value.as_str());
        fields.push(Arc::new(Field::new(key, DataType::Utf8, true)));
        columns.push(Arc::new(StringArray::from(vec![value; rows.num_rows()])));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

#[async_trait]
impl Source for ParquetSource {
    async fn check(&mut self) -> Vec<String> {
        match self.files() {
            Ok(files) if files.is_empty() && self.mode == WatchMode::Once => vec![format!(
                "{}: path `{}` holds no .parquet file: check the path",
                self.name,
                self.pattern.display()
            )],
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("{}: {e}", self.name)],
        }
    }

    async fn open(&mut self, position: Option<Position>) -> Result<()> {
        self.reading = None;
        self.done = None;
        self.resume = None;
        if let Some(position) = position {
            let position: ParquetPosition = serde_json::from_value(position).map_err(|e| {
                Error::connector(&self.name, format!("the stored position is not a parquet position ({e}): reset the pipeline's positions"))
            })?;
            self.done = position.done;
            if let Some(file) = position.file {
                if file.exists() {
                    self.resume = Some((file, position.row));
                } else {
                    self.done = Some(file);
                }
            }
        }
        Ok(())
    }

    async fn poll(&mut self, max_rows: usize) -> Result<Poll> {
        let max_rows = max_rows.max(1);
        loop {
            if let Some((path, row)) = self.resume.take() {
                self.reading = Some(self.open_file(&path, row, max_rows)?);
            }
            if self.reading.is_none() {
                let next = self
                    .files()?
                    .into_iter()
                    .find(|f| self.done.as_ref().is_none_or(|d| f > d));
                match next {
                    Some(path) => self.reading = Some(self.open_file(&path, 0, max_rows)?),
                    None if self.mode == WatchMode::Once => return Ok(Poll::Done),
                    None => return Ok(Poll::Idle),
                }
            }
            let Some(reading) = &mut self.reading else {
                continue;
            };
            if reading.batch_rows != max_rows {
                let (path, row) = (reading.path.clone(), reading.row);
                self.reading = Some(self.open_file(&path, row, max_rows)?);
                continue;
            }
            match reading.reader.next() {
                Some(rows) => {
                    let rows = rows?;
                    reading.row += rows.num_rows() as u64;
                    let rows = with_hive(rows, &reading.hive)?;
                    return Ok(Poll::Batch(SourceBatch::new(rows, self.position())));
                }
                None => {
                    self.done = self.reading.take().map(|r| r.path);
                }
            }
        }
    }
}
