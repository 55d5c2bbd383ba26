//! The `stdin` source: lines, JSON lines or CSV from standard input, parsed like the
//! `file` source ([`crate::file::parse`]), done at end of input. Standard input cannot be
//! read again, so its position only counts lines (for people); a restarted pipeline reads
//! whatever its new standard input holds.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::batch::{Poll, Position, SourceBatch};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::file::TextSettings;
use crate::file::parse::{
    CsvOptions, RecordParser, TextFormat, count_newlines, infer_schema, lines_schema,
};
use crate::source::Source;

/// Bytes read at a time.
const READ_CHUNK_BYTES: usize = 1 << 20;
/// The longest record accepted.
const RECORD_BYTES_MAX: usize = 64 << 20;
/// Bytes gathered to infer columns.
const INFER_SAMPLE_BYTES: usize = 4 << 20;
/// How long a poll waits for input before answering Idle.
const POLL_WAIT: Duration = Duration::from_millis(200);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StdinConfig {
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
    #[serde(default = "default_infer_rows")]
    infer_rows: usize,
}

fn yes() -> bool {
    true
}
fn default_infer_rows() -> usize {
    1000
}

/// The `stdin` source.
pub struct StdinSource {
    name: String,
    format: TextFormat,
    csv: CsvOptions,
    declared: Option<arrow::datatypes::SchemaRef>,
    infer_rows: usize,
    input: Box<dyn AsyncRead + Send + Unpin>,
    parser: Option<RecordParser>,
    /// Read, not yet handed out: `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    line: u64,
    eof: bool,
    header_pending: bool,
}

impl StdinSource {
    /// Reads the process's standard input.
    pub fn new(settings: &Settings) -> Result<StdinSource> {
        StdinSource::with_input(settings, Box::new(tokio::io::stdin()))
    }

    /// Reads `input` instead (tests, embedding).
    pub fn with_input(
        settings: &Settings,
        input: Box<dyn AsyncRead + Send + Unpin>,
    ) -> Result<StdinSource> {
        let config: StdinConfig = settings.parse()?;
        let format = config.format.unwrap_or(TextFormat::Lines);
        let text = TextSettings::check(
            settings,
            Some(format),
            "",
            config.columns.as_deref(),
            config.header,
            config.delimiter.as_deref(),
            config.quote.as_deref(),
        )?;
        Ok(StdinSource {
            name: settings.name.clone(),
            format,
            csv: text.csv,
            declared: text.declared,
            infer_rows: config.infer_rows.max(1),
            input,
            parser: None,
            buf: Vec::new(),
            pos: 0,
            line: 1,
            eof: false,
            header_pending: format == TextFormat::Csv && text.csv.header,
        })
    }

    fn pending(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Reads more input; `false` if none came within the poll's wait.
    async fn fill(&mut self) -> Result<bool> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.len() > RECORD_BYTES_MAX {
            return Err(Error::connector(
                &self.name,
                format!(
                    "a record at line {} is longer than {RECORD_BYTES_MAX} bytes: is the format right?",
                    self.line
                ),
            ));
        }
        let start = self.buf.len();
        self.buf.resize(start + READ_CHUNK_BYTES, 0);
        let target = self.buf.get_mut(start..).unwrap_or_default();
        let read = tokio::time::timeout(POLL_WAIT, self.input.read(target)).await;
        let read = match read {
            Err(_) => 0,
            Ok(Ok(0)) => {
                self.eof = true;
                0
            }
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                self.buf.truncate(start);
                return Err(Error::io("<stdin>", e));
            }
        };
        self.buf.truncate(start + read);
        Ok(read > 0)
    }

    fn consume(&mut self, end: usize, lines: u64) {
        self.pos += end;
        self.line += lines;
    }

    fn position(&self) -> Position {
        serde_json::json!({ "line": self.line })
    }
}

#[async_trait]
impl Source for StdinSource {
    async fn check(&mut self) -> Vec<String> {
        Vec::new()
    }

    async fn open(&mut self, _position: Option<Position>) -> Result<()> {
        Ok(())
    }

    async fn poll(&mut self, max_rows: usize) -> Result<Poll> {
        let max_rows = max_rows.max(1);
        if self.parser.is_none() {
            while !self.eof
                && self.pending().len() < INFER_SAMPLE_BYTES
                && (count_newlines(self.pending()) as usize) <= self.infer_rows
            {
                if !self.fill().await? && !self.eof {
                    return Ok(Poll::Idle);
                }
            }
            let schema = match (&self.declared, self.format) {
                (Some(s), _) => s.clone(),
                (None, TextFormat::Lines) => lines_schema(),
                (None, format) => {
                    if self.pending().iter().all(u8::is_ascii_whitespace) {
                        return Ok(Poll::Done);
                    }
                    infer_schema(format, self.csv, self.pending(), self.infer_rows)
                        .map_err(|e| Error::connector(&self.name, format!("standard input: {e}")))?
                }
            };
            self.parser = Some(RecordParser::new(self.format, schema, self.csv));
        }
        let Some(parser) = self.parser.clone() else {
            return Ok(Poll::Idle);
        };
        if self.header_pending {
            let ends = parser.record_ends(self.pending(), 1);
            if ends.records == 1 {
                self.consume(ends.end, ends.lines);
                self.header_pending = false;
            } else if self.eof {
                return Ok(Poll::Done);
            } else {
                self.fill().await?;
                return Ok(Poll::Idle);
            }
        }
        let mut ends = parser.record_ends(self.pending(), max_rows);
        if ends.records < max_rows && !self.eof {
            self.fill().await?;
            ends = parser.record_ends(self.pending(), max_rows);
        }
        let (end, lines, add_newline) = if ends.records > 0 {
            (ends.end, ends.lines, false)
        } else if self.eof && !self.pending().is_empty() {
            let tail = self.pending().len();
            (tail, count_newlines(self.pending()) + 1, true)
        } else if self.eof {
            return Ok(Poll::Done);
        } else {
            return Ok(Poll::Idle);
        };
        let chunk = self.pending().get(..end).unwrap_or_default();
        let (rows, rejects) = if add_newline {
            let mut owned = chunk.to_vec();
            owned.push(b'\n');
            parser.parse(&owned, "<stdin>", self.line)?
        } else {
            parser.parse(chunk, "<stdin>", self.line)?
        };
        self.consume(end, lines);
        let mut batch = SourceBatch::new(rows, self.position());
        batch.rejects = rejects;
        Ok(Poll::Batch(batch))
    }
}
