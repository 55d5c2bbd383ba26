//! The `file` source: text files (lines, JSON lines, CSV) read once or followed as they
//! grow.
//!
//! Files are read in name order, in large chunks cut at record ends and decoded in bulk
//! ([`RecordParser`]). The position names the last file read to its end and, for the file
//! being read, its path, inode and the byte offset and line number after the last record
//! handed out, so resuming never repeats or skips a record.
//!
//! In `tail` mode a record without its newline is held back until the newline comes. A
//! file is left for a newer one when one appears (its unterminated tail is then taken as
//! complete); a file renamed away and recreated (a new inode at the path) is read to its
//! end through the open handle, then the new file from its start; a file that shrank was
//! truncated and is read again from its start.
//!
//! A file with more than one batch of records at hand (a bulk load, or a followed file
//! far behind) is parsed `parse_threads` batches at a time, each on a thread of its own;
//! the batches are handed out one per poll in file order, each with the position after
//! it, exactly as one thread would.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::ahead::ParseAhead;
use super::discover::list_files;
use super::parse::{CsvOptions, RecordParser, TextFormat, count_newlines, infer_schema};
use super::{SourceMode, TextSettings};
use crate::batch::{Poll, Position, SourceBatch};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::source::Source;

/// Bytes read from a file at a time.
const READ_CHUNK_BYTES: usize = 1 << 20;
/// The least read while cutting batches for the parsing threads.
const READ_AHEAD_MIN_BYTES: usize = 64 << 10;
/// The longest record accepted: past this without a record end the file is refused.
const RECORD_BYTES_MAX: usize = 64 << 20;
/// Bytes of a file's start sampled to infer its schema.
const INFER_SAMPLE_BYTES: u64 = 4 << 20;

/// The `file` source's keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSourceConfig {
    path: String,
    #[serde(default)]
    format: Option<TextFormat>,
    #[serde(default)]
    columns: Option<String>,
    #[serde(default = "yes")]
    header: bool,
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    quote: Option<String>,
    #[serde(default)]
    mode: SourceMode,
    #[serde(default = "default_infer_rows")]
    infer_rows: usize,
    #[serde(default)]
    parse_threads: Option<usize>,
}

fn yes() -> bool {
    true
}
fn default_infer_rows() -> usize {
    1000
}

/// Batches parsed side by side by default: one per core, at most this many.
const PARSE_THREADS_MAX_DEFAULT: usize = 4;

fn default_parse_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(PARSE_THREADS_MAX_DEFAULT)
}

/// Where the source is, as stored in the log.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct FilePosition {
    /// The last file read to its end, in name order (files up to it are done).
    done: Option<PathBuf>,
    /// The file being read.
    file: Option<PathBuf>,
    /// Its inode, to tell it from a file recreated at the same path.
    inode: u64,
    /// Bytes of it handed out.
    offset: u64,
    /// The line the next record starts on (1-based).
    line: u64,
}

/// The file being read.
struct Reading {
    path: PathBuf,
    /// The path as rejects name it.
    label: Arc<str>,
    file: File,
    inode: u64,
    /// Bytes of the file before `buf[pos..]`.
    offset: u64,
    line: u64,
    /// Bytes read but not handed out are `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    /// The next record is the file's CSV header, to skip.
    header_pending: bool,
    /// Tail mode: the file was rotated or a newer one appeared; read it to its end, then
    /// switch.
    ending: Option<TailEvent>,
}

impl Reading {
    fn open(path: &Path, offset: u64, line: u64, header: bool) -> Result<Reading> {
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let inode = file.metadata().map_err(|e| Error::io(path, e))?.ino();
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io(path, e))?;
        Ok(Reading {
            path: path.to_path_buf(),
            label: path.display().to_string().into(),
            file,
            inode,
            offset,
            line,
            buf: Vec::new(),
            pos: 0,
            header_pending: header && offset == 0,
            ending: None,
        })
    }

    fn pending(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Reads up to a chunk more; returns the bytes read (0 at end of file).
    fn fill(&mut self) -> Result<usize> {
        self.fill_up_to(READ_CHUNK_BYTES)
    }

    /// Reads up to `bytes` more; returns the bytes read (0 at end of file).
    fn fill_up_to(&mut self, bytes: usize) -> Result<usize> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.len() > RECORD_BYTES_MAX {
            return Err(Error::connector(
                &*self.label,
                format!(
                    "a record at line {} is longer than {RECORD_BYTES_MAX} bytes: is the format right?",
                    self.line
                ),
            ));
        }
        // `read_to_end` reads into the spare capacity without zeroing it first (a
        // `resize` did, for every chunk), retrying on `Interrupted`; what it read before an
        // error stays in the buffer.
        self.buf.reserve(bytes);
        (&mut self.file)
            .take(bytes as u64)
            .read_to_end(&mut self.buf)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Hands out `end` bytes of `lines` lines in a buffer of their own: the returned
    /// buffer's bytes from the returned index. When fewer bytes stay behind than go, the
    /// read buffer itself goes, and what stays is copied into `spare`, which becomes the
    /// read buffer; otherwise the bytes that go are copied into `spare`.
    fn take(&mut self, end: usize, lines: u64, mut spare: Vec<u8>) -> (Vec<u8>, usize) {
        let (start, stop) = (self.pos, self.pos + end);
        let rest = self.buf.get(stop..).unwrap_or_default();
        spare.clear();
        let taken = if rest.len() < end {
            spare.extend_from_slice(rest);
            let mut taken = std::mem::replace(&mut self.buf, spare);
            taken.truncate(stop);
            self.pos = 0;
            (taken, start)
        } else {
            spare.extend_from_slice(self.buf.get(start..stop).unwrap_or_default());
            self.pos = stop;
            (spare, 0)
        };
        self.offset += end as u64;
        self.line += lines;
        taken
    }

    /// Hands out `end` bytes of `lines` lines.
    fn consume(&mut self, end: usize, lines: u64) {
        self.pos += end;
        self.offset += end as u64;
        self.line += lines;
    }
}

/// The `file` source.
pub struct FileSource {
    name: String,
    pattern: PathBuf,
    format: TextFormat,
    csv: CsvOptions,
    declared: Option<arrow::datatypes::SchemaRef>,
    infer_rows: usize,
    mode: SourceMode,
    parser: Option<Arc<RecordParser>>,
    done: Option<PathBuf>,
    reading: Option<Reading>,
    /// Threads parsing a file's batches ahead of the polls (1: none, the poll parses).
    parse_threads: usize,
    /// Those threads and the batches they were given, once a file had more than a batch
    /// at hand.
    ahead: Option<ParseAhead>,
    /// Bytes read at a time for them: the last batch's and a sixteenth.
    batch_bytes: usize,
}

impl FileSource {
    /// Builds the source from its keys (nothing is opened).
    pub fn new(settings: &Settings) -> Result<FileSource> {
        let config: FileSourceConfig = settings.parse()?;
        let text = TextSettings::check(
            settings,
            config.format,
            &config.path,
            config.columns.as_deref(),
            config.header,
            config.delimiter.as_deref(),
            config.quote.as_deref(),
        )?;
        let parse_threads = match config.parse_threads {
            Some(0) => {
                return Err(settings.error(
                    Some("parse_threads"),
                    "parse_threads must be at least 1 (1 parses on the source's own thread)",
                ));
            }
            Some(n) => n,
            None => default_parse_threads(),
        };
        Ok(FileSource {
            name: settings.name.clone(),
            pattern: settings.resolve_path(&config.path),
            format: text.format,
            csv: text.csv,
            declared: text.declared,
            infer_rows: config.infer_rows.max(1),
            mode: config.mode,
            parser: None,
            done: None,
            reading: None,
            parse_threads,
            ahead: None,
            batch_bytes: 0,
        })
    }

    fn files(&self) -> Result<Vec<PathBuf>> {
        list_files(&self.pattern, false, &|_| true)
    }

    /// The first file after `done` in name order.
    fn next_file(&self) -> Result<Option<PathBuf>> {
        let files = self.files()?;
        Ok(files
            .into_iter()
            .find(|f| self.done.as_ref().is_none_or(|d| f > d)))
    }

    fn position(&self) -> Position {
        file_position(&self.done, self.reading.as_ref())
    }

    /// The parser, inferring the schema from `path` the first time.
    fn ensure_parser(&mut self, path: &Path) -> Result<bool> {
        if self.parser.is_some() {
            return Ok(true);
        }
        let schema = match (&self.declared, self.format) {
            (Some(schema), _) => schema.clone(),
            (None, TextFormat::Lines) => super::parse::lines_schema(),
            (None, format) => {
                let mut sample = Vec::new();
                File::open(path)
                    .and_then(|f| f.take(INFER_SAMPLE_BYTES).read_to_end(&mut sample))
                    .map_err(|e| Error::io(path, e))?;
                // Whole lines only, unless the file is one line.
                if let Some(end) = memchr::memrchr(b'\n', &sample) {
                    sample.truncate(end + 1);
                }
                if sample.iter().all(u8::is_ascii_whitespace) {
                    return Ok(false);
                }
                infer_schema(format, self.csv, &sample, self.infer_rows)
                    .map_err(|e| Error::connector(&self.name, format!("{}: {e}", path.display())))?
            }
        };
        self.parser = Some(Arc::new(RecordParser::new(self.format, schema, self.csv)));
        Ok(true)
    }

    /// At the end of the current file in tail mode: whether it was rotated or truncated, or
    /// a newer file appeared.
    fn tail_switch(&mut self) -> Result<TailEvent> {
        let Some(reading) = &self.reading else {
            return Ok(TailEvent::Nothing);
        };
        let at_path = std::fs::metadata(&reading.path).ok();
        match at_path {
            Some(meta) if meta.ino() != reading.inode => return Ok(TailEvent::Rotated),
            Some(meta) if meta.len() < reading.offset + reading.pending().len() as u64 => {
                return Ok(TailEvent::Truncated);
            }
            _ => {}
        }
        let newer = self.files()?.into_iter().any(|f| f > reading.path);
        Ok(if newer {
            TailEvent::Newer
        } else {
            TailEvent::Nothing
        })
    }

    fn batch(&mut self, chunk_end: usize, lines: u64, add_newline: bool) -> Result<SourceBatch> {
        let (Some(reading), Some(parser)) = (&mut self.reading, &self.parser) else {
            return Err(Error::connector(
                &self.name,
                "internal: no file open (a bug, please report)",
            ));
        };
        let chunk = reading.pending().get(..chunk_end).unwrap_or_default();
        let parsed = if add_newline {
            let mut owned = chunk.to_vec();
            owned.push(b'\n');
            parser.parse(&owned, &reading.label, reading.line)?
        } else {
            parser.parse(chunk, &reading.label, reading.line)?
        };
        reading.consume(chunk_end, lines);
        let (rows, rejects) = parsed;
        let mut batch = SourceBatch::new(rows, self.position());
        batch.rejects = rejects;
        Ok(batch)
    }

    /// Submits the full batches of records at hand (reading more if needed) to the
    /// parsing threads, as many as they take; started the first time.
    fn parse_ahead(&mut self, max_rows: usize) -> Result<()> {
        if self.ahead.is_none() {
            self.ahead = Some(ParseAhead::start(&self.name, self.parse_threads)?);
        }
        let (Some(reading), Some(parser), Some(ahead)) =
            (&mut self.reading, &self.parser, &mut self.ahead)
        else {
            return Ok(());
        };
        while ahead.wants_more() {
            let mut ends = parser.record_ends(reading.pending(), max_rows);
            while ends.records < max_rows {
                // Reading about a batch's bytes at a time, the read buffer usually holds
                // one batch and a part of a record: it goes to the workers whole, and only
                // that part is copied.
                let wanted = self
                    .batch_bytes
                    .saturating_sub(reading.pending().len())
                    .clamp(READ_AHEAD_MIN_BYTES, READ_CHUNK_BYTES);
                if reading.fill_up_to(wanted)? == 0 {
                    break;
                }
                ends = parser.record_ends(reading.pending(), max_rows);
            }
            if ends.records < max_rows {
                // A short batch is left to the poll that reaches it, where the file's end
                // and tail mode's held-back line are handled.
                break;
            }
            self.batch_bytes = ends.end + ends.end / 16;
            let first_line = reading.line;
            let (chunk, start) = reading.take(ends.end, ends.lines, ahead.spare());
            let position = file_position(&self.done, Some(reading));
            ahead.submit(parser, chunk, start, &reading.label, first_line, position)?;
        }
        Ok(())
    }

    /// The next batch parsed ahead, after handing the workers what they can take.
    fn next_ahead(&mut self, max_rows: usize) -> Result<Poll> {
        self.parse_ahead(max_rows)?;
        match self.ahead.as_mut().and_then(ParseAhead::next) {
            Some(batch) => batch.map(Poll::Batch),
            None => Err(Error::connector(
                &self.name,
                "internal: nothing parsed ahead (a bug, please report)",
            )),
        }
    }

    /// The current file is read: on to the next one.
    fn finish_file(&mut self) {
        if let Some(reading) = self.reading.take() {
            self.done = Some(reading.path);
        }
    }
}

/// The position after the records handed out of `reading`, files up to `done` read.
fn file_position(done: &Option<PathBuf>, reading: Option<&Reading>) -> Position {
    let position = match reading {
        Some(r) => FilePosition {
            done: done.clone(),
            file: Some(r.path.clone()),
            inode: r.inode,
            offset: r.offset,
            line: r.line,
        },
        None => FilePosition {
            done: done.clone(),
            ..FilePosition::default()
        },
    };
    serde_json::to_value(position).unwrap_or_default()
}

fn reading_path(reading: &Option<Reading>) -> PathBuf {
    reading.as_ref().map(|r| r.path.clone()).unwrap_or_default()
}

/// What changed at a followed file's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TailEvent {
    Nothing,
    Rotated,
    Truncated,
    Newer,
}

#[async_trait]
impl Source for FileSource {
    async fn check(&mut self) -> Vec<String> {
        match self.files() {
            Ok(files) if files.is_empty() && self.mode == SourceMode::Once => {
                vec![format!(
                    "{}: path `{}` matches no file: check the path (relative paths start at the pipeline file's folder)",
                    self.name,
                    self.pattern.display()
                )]
            }
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("{}: {e}", self.name)],
        }
    }

    fn prepares_ahead(&self) -> bool {
        self.parse_threads > 1
    }

    async fn open(&mut self, position: Option<Position>) -> Result<()> {
        self.reading = None;
        self.done = None;
        if let Some(ahead) = &mut self.ahead {
            ahead.clear();
        }
        let Some(position) = position else {
            return Ok(());
        };
        let position: FilePosition = serde_json::from_value(position).map_err(|e| {
            Error::connector(&self.name, format!("the stored position is not a file position ({e}): was the source's type changed? Reset the pipeline's positions"))
        })?;
        self.done = position.done;
        if let Some(path) = position.file {
            let same = std::fs::metadata(&path)
                .ok()
                .filter(|m| m.ino() == position.inode && m.len() >= position.offset);
            let header = self.format == TextFormat::Csv && self.csv.header;
            self.reading = Some(match same {
                Some(_) => Reading::open(&path, position.offset, position.line, header)?,
                // Replaced or truncated while stopped: the file at the path is new.
                None if path.exists() => Reading::open(&path, 0, 1, header)?,
                None => {
                    // Gone: it counts as read, the next file follows it.
                    self.done = Some(path);
                    return Ok(());
                }
            });
        }
        Ok(())
    }

    async fn poll(&mut self, max_rows: usize) -> Result<Poll> {
        let max_rows = max_rows.max(1);
        if let Some(ahead) = &self.ahead
            && !ahead.is_empty()
        {
            return self.next_ahead(max_rows);
        }
        // Each round either hands out rows, or moves to another file, or ends the poll.
        loop {
            if self.reading.is_none() {
                match self.next_file()? {
                    Some(path) => {
                        if !self.ensure_parser(&path)? {
                            // An empty file cannot tell its columns yet.
                            if self.mode == SourceMode::Tail {
                                return Ok(Poll::Idle);
                            }
                            self.done = Some(path);
                            continue;
                        }
                        let header = self.format == TextFormat::Csv && self.csv.header;
                        self.reading = Some(Reading::open(&path, 0, 1, header)?);
                    }
                    None if self.mode == SourceMode::Once => return Ok(Poll::Done),
                    None => return Ok(Poll::Idle),
                }
            }
            if self.parser.is_none() {
                let path = self
                    .reading
                    .as_ref()
                    .map(|r| r.path.clone())
                    .unwrap_or_default();
                if !self.ensure_parser(&path)? {
                    return Ok(Poll::Idle);
                }
            }
            let (Some(reading), Some(parser)) = (&mut self.reading, &self.parser) else {
                continue;
            };
            let mut at_eof = false;
            if reading.header_pending {
                let mut ends = parser.record_ends(reading.pending(), 1);
                if ends.records == 0 {
                    at_eof = reading.fill()? == 0;
                    ends = parser.record_ends(reading.pending(), 1);
                }
                if ends.records == 1 {
                    reading.consume(ends.end, ends.lines);
                    reading.header_pending = false;
                } else if !at_eof {
                    continue;
                }
            }
            let mut ends = parser.record_ends(reading.pending(), max_rows);
            if ends.records < max_rows && !at_eof {
                at_eof = reading.fill()? == 0;
                ends = parser.record_ends(reading.pending(), max_rows);
            }
            if ends.records == max_rows && self.parse_threads > 1 {
                // More than a batch at hand: parse ahead, side by side.
                return self.next_ahead(max_rows);
            }
            if ends.records > 0 {
                return Ok(Poll::Batch(self.batch(ends.end, ends.lines, false)?));
            }
            if !at_eof {
                continue;
            }
            // At the end of the file, with at most an unterminated record pending.
            let tail = reading.pending().len();
            let tail_lines = count_newlines(reading.pending());
            let header_only = reading.header_pending;
            match self.mode {
                SourceMode::Once => {
                    if tail > 0 && !header_only {
                        let mut batch = self.batch(tail, tail_lines + 1, true)?;
                        self.finish_file();
                        batch.position = self.position();
                        return Ok(Poll::Batch(batch));
                    }
                    self.finish_file();
                }
                SourceMode::Tail => {
                    if let Some(ending) = reading.ending {
                        // Read to its very end: its unterminated tail is a record.
                        let batch = (tail > 0 && !header_only)
                            .then(|| self.batch(tail, tail_lines + 1, true))
                            .transpose()?;
                        let path = self
                            .reading
                            .as_ref()
                            .map(|r| r.path.clone())
                            .unwrap_or_default();
                        match ending {
                            TailEvent::Rotated => {
                                let header = self.format == TextFormat::Csv && self.csv.header;
                                self.reading = Some(Reading::open(&path, 0, 1, header)?);
                            }
                            _ => self.finish_file(),
                        }
                        if let Some(mut batch) = batch {
                            batch.position = self.position();
                            return Ok(Poll::Batch(batch));
                        }
                        continue;
                    }
                    match self.tail_switch()? {
                        TailEvent::Nothing => return Ok(Poll::Idle),
                        TailEvent::Truncated => {
                            let path = reading_path(&self.reading);
                            let header = self.format == TextFormat::Csv && self.csv.header;
                            self.reading = Some(Reading::open(&path, 0, 1, header)?);
                        }
                        // Read what was appended before the switch, then switch.
                        event => {
                            if let Some(reading) = &mut self.reading {
                                reading.ending = Some(event);
                            }
                        }
                    }
                }
            }
        }
    }
}
