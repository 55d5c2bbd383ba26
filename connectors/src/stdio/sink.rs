//! The `stdout` sink: rows as JSON lines, CSV (one header line first) or text lines on
//! standard output, flushed at each commit. Output cannot be taken back, so delivery is
//! at-least-once: after a crash the rows since the last commit are written again.
//! Deletes are skipped.

use async_trait::async_trait;
use serde::Deserialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::batch::{Offsets, SinkBatch, SinkOp};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::file::sink::{OutputFormat, encode};
use crate::sink::{Sink, SinkContext};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StdoutConfig {
    #[serde(default)]
    format: OutputFormat,
    #[serde(default = "yes")]
    header: bool,
}

fn yes() -> bool {
    true
}

/// The `stdout` sink.
pub struct StdoutSink {
    name: String,
    format: OutputFormat,
    header: bool,
    output: Box<dyn AsyncWrite + Send + Unpin>,
    header_written: bool,
    /// One batch encoded at a time.
    scratch: Vec<u8>,
}

impl StdoutSink {
    /// Writes to the process's standard output.
    pub fn new(settings: &Settings) -> Result<StdoutSink> {
        StdoutSink::with_output(settings, Box::new(tokio::io::stdout()))
    }

    /// Writes to `output` instead (tests, embedding).
    pub fn with_output(
        settings: &Settings,
        output: Box<dyn AsyncWrite + Send + Unpin>,
    ) -> Result<StdoutSink> {
        let config: StdoutConfig = settings.parse()?;
        Ok(StdoutSink {
            name: settings.name.clone(),
            format: config.format,
            header: config.header,
            output,
            header_written: false,
            scratch: Vec::new(),
        })
    }
}

#[async_trait]
impl Sink for StdoutSink {
    async fn check(&mut self) -> Vec<String> {
        Vec::new()
    }

    async fn open(&mut self, context: &SinkContext) -> Result<Option<Offsets>> {
        if self.format == OutputFormat::Lines && context.schema.fields().len() != 1 {
            return Err(Error::connector(
                &self.name,
                format!(
                    "format `lines` writes one column, but the rows have {}: use jsonl or csv",
                    context.schema.fields().len()
                ),
            ));
        }
        Ok(None)
    }

    async fn write(&mut self, batch: SinkBatch) -> Result<()> {
        for op in &batch.ops {
            let SinkOp::Upsert(rows) = op else { continue };
            self.scratch.clear();
            let header = self.header && !self.header_written;
            encode(self.format, rows, header, &mut self.scratch)?;
            self.header_written |= header;
            self.output
                .write_all(&self.scratch)
                .await
                .map_err(|e| Error::io("<stdout>", e))?;
        }
        Ok(())
    }

    async fn commit(&mut self, _offsets: &Offsets, _closing: bool) -> Result<bool> {
        self.output
            .flush()
            .await
            .map_err(|e| Error::io("<stdout>", e))?;
        Ok(true)
    }
}
