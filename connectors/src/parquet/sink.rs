//! The `parquet` sink: rows into Parquet files, rolled by rows, bytes or age, split into
//! Hive-style directories, committed exactly once with the offsets they hold
//! ([`crate::file::commit`]). Each file's footer carries the sink's name and the offsets
//! range of its commit (`sluice.offsets.start`, `sluice.offsets.end`, JSON).
//!
//! Rows are written with arrow's `ArrowWriter` in large row groups (`row_group_rows`,
//! default 1 000 000, and at most [`ROW_GROUP_BYTES_MAX`] buffered); nothing is done per
//! row unless the rows are partitioned. Each open file's writer encodes on a thread of its
//! own, a batch or two behind the sink, so Parquet encoding overlaps consuming and
//! decoding. Which columns get a dictionary is chosen from each file's first batch
//! ([`Dictionary::Auto`], the `dictionary` key). Deletes are skipped: Parquet files are
//! append-only.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::row::{RowConverter, SortField};
use async_trait::async_trait;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::Deserialize;

use super::partition::Partitioner;
use crate::batch::{Offsets, SinkBatch, SinkOp};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::file::commit::Committer;
use crate::file::roll::{FinishInfo, PartWriter, Parts, Roll};
use crate::file::sink::{check_dir, commit_parts, roll_from};
use crate::sink::{Sink, SinkContext};

/// Bytes a row group may hold in memory before it is written out.
pub const ROW_GROUP_BYTES_MAX: usize = 256 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParquetSinkConfig {
    path: String,
    #[serde(default = "default_compression")]
    compression: String,
    #[serde(default = "default_row_group_rows")]
    row_group_rows: usize,
    #[serde(default)]
    roll_rows: Option<u64>,
    #[serde(default)]
    roll_bytes: Option<u64>,
    #[serde(default)]
    roll_interval_ms: Option<u64>,
    #[serde(default)]
    partition_by: Vec<String>,
    #[serde(default)]
    time_partition: Option<TimePartition>,
    #[serde(default = "default_dictionary")]
    dictionary: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimePartition {
    #[serde(default)]
    field: Option<String>,
    #[serde(default = "default_time_format")]
    format: String,
}

fn default_compression() -> String {
    "zstd".into()
}
fn default_row_group_rows() -> usize {
    1_000_000
}
fn default_dictionary() -> String {
    "auto".into()
}
fn default_time_format() -> String {
    "dt=%Y-%m-%d".into()
}

/// The `parquet` sink.
pub struct ParquetSink {
    name: String,
    root: PathBuf,
    compression: Compression,
    row_group_rows: usize,
    dictionary: Dictionary,
    roll: Roll,
    partition_by: Vec<String>,
    time_partition: Option<(Option<String>, String)>,
    partitioner: Option<Partitioner>,
    /// Columns kept in the files: all but the `partition_by` fields.
    data_columns: Vec<usize>,
    parts: Option<Parts>,
}

impl ParquetSink {
    /// Builds the sink from its keys (nothing is opened).
    pub fn new(settings: &Settings) -> Result<ParquetSink> {
        let config: ParquetSinkConfig = settings.parse()?;
        let compression = match config.compression.as_str() {
            "zstd" => Compression::ZSTD(ZstdLevel::default()),
            "snappy" => Compression::SNAPPY,
            "gzip" => Compression::GZIP(GzipLevel::default()),
            "lz4" => Compression::LZ4_RAW,
            "none" => Compression::UNCOMPRESSED,
            other => {
                return Err(settings.error(
                    Some("compression"),
                    format!("unknown compression `{other}`: use zstd, snappy, gzip, lz4 or none"),
                ));
            }
        };
        let dictionary = match config.dictionary.as_str() {
            "auto" => Dictionary::Auto,
            "on" => Dictionary::On,
            "off" => Dictionary::Off,
            other => {
                return Err(settings.error(
                    Some("dictionary"),
                    format!("unknown dictionary setting `{other}`: use auto, on or off"),
                ));
            }
        };
        if config.row_group_rows == 0 {
            return Err(settings.error(Some("row_group_rows"), "row_group_rows must be at least 1"));
        }
        let roll = roll_from(
            settings,
            config.roll_rows,
            config.roll_bytes,
            config.roll_interval_ms,
        )?;
        Ok(ParquetSink {
            name: settings.name.clone(),
            root: settings.resolve_path(&config.path),
            compression,
            row_group_rows: config.row_group_rows,
            dictionary,
            roll,
            partition_by: config.partition_by,
            time_partition: config.time_partition.map(|t| (t.field, t.format)),
            partitioner: None,
            data_columns: Vec::new(),
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
impl Sink for ParquetSink {
    async fn check(&mut self) -> Vec<String> {
        check_dir(&self.name, &self.root)
    }

    async fn open(&mut self, context: &SinkContext) -> Result<Option<Offsets>> {
        let partitioner = Partitioner::new(
            self.partition_by.clone(),
            self.time_partition.clone(),
            &context.schema,
        )
        .map_err(|e| Error::connector(&self.name, e))?;
        self.data_columns = (0..context.schema.fields().len())
            .filter(|&i| {
                !partitioner
                    .fields()
                    .contains(context.schema.field(i).name())
            })
            .collect();
        let schema: SchemaRef = Arc::new(context.schema.project(&self.data_columns)?);
        self.partitioner = Some(partitioner);
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        let committer = Committer::open(&self.root, &context.sink)?;
        let offsets = committer.committed().cloned();
        let properties = WriterProperties::builder()
            .set_compression(self.compression)
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_dictionary_enabled(self.dictionary != Dictionary::Off)
            .build();
        let dictionary = self.dictionary;
        let make = Box::new(move |path: &Path| -> Result<Box<dyn PartWriter>> {
            Ok(Box::new(ParquetPart::create(
                path,
                schema.clone(),
                properties.clone(),
                dictionary,
            )?))
        });
        self.parts = Some(Parts::new(
            committer,
            &context.sink,
            "parquet",
            self.roll,
            make,
        ));
        Ok(offsets)
    }

    async fn write(&mut self, batch: SinkBatch) -> Result<()> {
        let (Some(parts), Some(partitioner)) = (&mut self.parts, &self.partitioner) else {
            return Err(Error::connector(
                &self.name,
                "write before open (a bug, please report)",
            ));
        };
        for op in &batch.ops {
            let SinkOp::Upsert(rows) = op else { continue };
            for (dir, rows) in partitioner.split(rows)? {
                let rows = if self.data_columns.len() == rows.num_columns() {
                    rows
                } else {
                    rows.project(&self.data_columns)?
                };
                parts.write(&batch.topic, &dir, &rows)?;
            }
        }
        Ok(())
    }

    async fn commit(&mut self, offsets: &Offsets, closing: bool) -> Result<bool> {
        commit_parts(&self.name, self.parts.as_mut(), offsets, closing)
    }
}

/// One Parquet file being written. Its `ArrowWriter` runs on a thread of its own, fed
/// through a short queue, so encoding a batch overlaps consuming and decoding the next.
/// A failure on that thread is returned by the next call after it (at the latest by
/// `finish`, before the commit that would store the offsets).
struct ParquetPart {
    path: PathBuf,
    schema: SchemaRef,
    jobs: Option<SyncSender<Job>>,
    worker: Option<JoinHandle<Result<()>>>,
    /// What the writer last reported: bytes written plus buffered, and memory held.
    sizes: Arc<Sizes>,
}

#[derive(Default)]
struct Sizes {
    bytes: AtomicU64,
    memory: AtomicUsize,
}

/// Work for a part's writer thread.
enum Job {
    Write(RecordBatch),
    /// Write out the row group in memory, then answer.
    Flush(SyncSender<Result<()>>),
    /// Add the footer's metadata, finish, fsync and stop.
    Finish(Vec<KeyValue>),
}

/// Whether columns are dictionary-encoded (the sink's `dictionary` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dictionary {
    /// Each file's first batch decides, column by column: a column whose values there are
    /// mostly distinct ([`DISTINCT_SHARE_MAX`]) is written plain.
    Auto,
    /// Every column is dictionary-encoded (until its dictionary outgrows a page, as the
    /// parquet crate does).
    On,
    /// No column is.
    Off,
}

/// Rows of a file's first batch looked at by [`Dictionary::Auto`], at most.
const SAMPLE_ROWS: usize = 10_000;
/// Fewer rows than this in the first batch say too little: every column keeps its
/// dictionary.
const SAMPLE_ROWS_MIN: usize = 1_000;
/// The share of distinct values in the sample above which a column is written plain.
///
/// A column that is mostly distinct (ids, timestamps, measurements) fills the parquet
/// crate's dictionary page (1 MiB) long before a row group ends; the crate then falls
/// back to plain encoding for the rest of the column chunk, having hashed every value up
/// to there for nothing. parquet-mr gives up on such a dictionary after the first page
/// for the same reason.
const DISTINCT_SHARE_MAX: f64 = 0.5;

/// What a part's writer thread opens its `ArrowWriter` with.
struct Unopened {
    out: BufWriter<File>,
    schema: SchemaRef,
    properties: WriterProperties,
    dictionary: Dictionary,
}

impl Unopened {
    /// The writer, its columns' encodings chosen from `sample` (the file's first batch).
    fn open(
        self,
        sample: Option<&RecordBatch>,
    ) -> parquet::errors::Result<ArrowWriter<BufWriter<File>>> {
        let properties = match sample {
            Some(rows) if self.dictionary == Dictionary::Auto => mostly_distinct(rows)
                .into_iter()
                .fold(self.properties.into_builder(), |builder, column| {
                    builder.set_column_dictionary_enabled(ColumnPath::from(column), false)
                })
                .build(),
            _ => self.properties,
        };
        ArrowWriter::try_new(self.out, self.schema, Some(properties))
    }
}

/// The columns of `rows` (flat ones, not booleans) whose first [`SAMPLE_ROWS`] values are
/// more than [`DISTINCT_SHARE_MAX`] distinct; none if `rows` has fewer than
/// [`SAMPLE_ROWS_MIN`] rows.
fn mostly_distinct(rows: &RecordBatch) -> Vec<String> {
    let n = rows.num_rows().min(SAMPLE_ROWS);
    if n < SAMPLE_ROWS_MIN {
        return Vec::new();
    }
    let schema = rows.schema();
    schema
        .fields()
        .iter()
        .zip(rows.columns())
        .filter(|(field, _)| {
            let dt = field.data_type();
            !dt.is_nested() && *dt != DataType::Boolean && *dt != DataType::Null
        })
        .filter(|(_, column)| {
            // Values as comparable byte rows: one way to count them for every type.
            let converter = RowConverter::new(vec![SortField::new(column.data_type().clone())]);
            let Ok(values) = converter.and_then(|c| c.convert_columns(&[column.slice(0, n)]))
            else {
                return false;
            };
            let distinct: HashSet<_> = values.iter().collect();
            distinct.len() as f64 > n as f64 * DISTINCT_SHARE_MAX
        })
        .map(|(field, _)| field.name().clone())
        .collect()
}

/// Batches queued for a part's writer thread beyond the one it is encoding.
const QUEUED_BATCHES: usize = 2;

impl ParquetPart {
    fn create(
        path: &Path,
        schema: SchemaRef,
        properties: WriterProperties,
        dictionary: Dictionary,
    ) -> Result<ParquetPart> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let unopened = Unopened {
            out: BufWriter::with_capacity(1 << 20, file),
            schema: schema.clone(),
            properties,
            dictionary,
        };
        let sizes = Arc::new(Sizes::default());
        let (jobs, queue) = std::sync::mpsc::sync_channel(QUEUED_BATCHES);
        let worker = {
            let path = path.to_path_buf();
            let sizes = sizes.clone();
            std::thread::Builder::new()
                .name("sluice-parquet".into())
                .spawn(move || encode(&path, unopened, &queue, &sizes))
        }
        .map_err(|e| Error::io(path, e))?;
        Ok(ParquetPart {
            path: path.to_path_buf(),
            schema,
            jobs: Some(jobs),
            worker: Some(worker),
            sizes,
        })
    }

    /// Hands a job to the writer thread; its error if it has stopped.
    fn send(&mut self, job: Job) -> Result<()> {
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok());
        if sent { Ok(()) } else { Err(self.stopped()) }
    }

    /// Why the writer thread stopped (it stops early only on an error).
    fn stopped(&mut self) -> Error {
        self.jobs = None;
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => Error::connector(
                self.path.display().to_string(),
                "the Parquet writer thread panicked (a bug, please report)",
            ),
            Some(Ok(Ok(()))) | None => Error::connector(
                self.path.display().to_string(),
                "the Parquet writer thread has stopped",
            ),
        }
    }
}

/// The writer thread of a part: encodes what it is sent until told to finish (or the
/// part is dropped, which abandons the file). The `ArrowWriter` is made at the first job,
/// so that the first batch can choose the columns' encodings ([`Dictionary::Auto`]).
fn encode(path: &Path, unopened: Unopened, queue: &Receiver<Job>, sizes: &Sizes) -> Result<()> {
    let report = |writer: &ArrowWriter<BufWriter<File>>| {
        sizes.bytes.store(
            (writer.bytes_written() + writer.in_progress_size()) as u64,
            Ordering::Relaxed,
        );
        sizes.memory.store(writer.memory_size(), Ordering::Relaxed);
    };
    let Ok(first) = queue.recv() else {
        return Ok(());
    };
    let sample = match &first {
        Job::Write(rows) => Some(rows),
        Job::Flush(_) | Job::Finish(_) => None,
    };
    let mut writer = unopened.open(sample).map_err(|e| parquet_error(path, e))?;
    for job in std::iter::once(first).chain(queue.iter()) {
        match job {
            Job::Write(rows) => {
                writer.write(&rows).map_err(|e| parquet_error(path, e))?;
                if writer.in_progress_size() > ROW_GROUP_BYTES_MAX {
                    writer.flush().map_err(|e| parquet_error(path, e))?;
                }
            }
            Job::Flush(done) => {
                let flushed = writer.flush().map_err(|e| parquet_error(path, e));
                let failed = flushed.is_err();
                // The part waits for the answer; if it is gone, so is the file.
                let _ = done.send(flushed);
                if failed {
                    return Ok(());
                }
            }
            Job::Finish(metadata) => {
                for kv in metadata {
                    writer.append_key_value_metadata(kv);
                }
                writer.finish().map_err(|e| parquet_error(path, e))?;
                let out = writer.inner_mut();
                out.flush().map_err(|e| Error::io(path, e))?;
                return out.get_ref().sync_all().map_err(|e| Error::io(path, e));
            }
        }
        report(&writer);
    }
    Ok(())
}

fn parquet_error(path: &Path, e: parquet::errors::ParquetError) -> Error {
    match e {
        parquet::errors::ParquetError::External(inner) => {
            match inner.downcast::<std::io::Error>() {
                Ok(io) => Error::io(path, *io),
                Err(other) => Error::connector(path.display().to_string(), other),
            }
        }
        other => Error::connector(path.display().to_string(), other),
    }
}

impl PartWriter for ParquetPart {
    fn write(&mut self, rows: &RecordBatch) -> Result<()> {
        // The writer's schema is the sink's; rows whose fields differ only in nullability
        // or metadata are given the writer's schema.
        let rows = if rows.schema() == self.schema {
            rows.clone()
        } else {
            RecordBatch::try_new(self.schema.clone(), rows.columns().to_vec())?
        };
        self.send(Job::Write(rows))
    }

    fn bytes(&self) -> u64 {
        self.sizes.bytes.load(Ordering::Relaxed)
    }

    fn memory(&self) -> usize {
        self.sizes.memory.load(Ordering::Relaxed)
    }

    fn flush_memory(&mut self) -> Result<()> {
        let (done, answer) = std::sync::mpsc::sync_channel(1);
        self.send(Job::Flush(done))?;
        match answer.recv() {
            Ok(flushed) => flushed,
            Err(_) => Err(self.stopped()),
        }
    }

    fn finish(mut self: Box<Self>, info: &FinishInfo<'_>) -> Result<()> {
        let offsets = |o: &Offsets| {
            let map: serde_json::Map<String, serde_json::Value> = o
                .iter()
                .map(|((t, p), off)| (format!("{t}/{p}"), (*off).into()))
                .collect();
            serde_json::Value::Object(map).to_string()
        };
        let mut metadata = vec![KeyValue::new("sluice.sink".into(), info.sink.to_string())];
        if let Some(start) = info.start {
            metadata.push(KeyValue::new("sluice.offsets.start".into(), offsets(start)));
        }
        metadata.push(KeyValue::new(
            "sluice.offsets.end".into(),
            offsets(info.end),
        ));
        self.send(Job::Finish(metadata))?;
        // The thread ends after finishing: its result is the file's.
        self.jobs = None;
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(self.stopped()),
        }
    }
}
