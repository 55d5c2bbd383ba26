//! Bad records, handled by the connector's `on_error`: fail (stop, naming the record),
//! skip (count it), or dead_letter (write it to the dead-letter topic).
//!
//! A dead-letter record keeps the original bytes as its value (and the original key), with
//! headers saying what went wrong and where: `sluice.error`, `sluice.position`,
//! `sluice.connector` and `sluice.pipeline`.

use sluice_core::ProducerRecord;

use crate::batch::Reject;
use crate::config::OnError;
use crate::error::{Error, Result};
use crate::runtime::stats::ConnectorStats;

/// Header names of dead-letter records.
pub const ERROR_HEADER: &str = "sluice.error";
/// Where the record came from.
pub const POSITION_HEADER: &str = "sluice.position";
/// The source or sink that rejected it.
pub const CONNECTOR_HEADER: &str = "sluice.connector";
/// The pipeline.
pub const PIPELINE_HEADER: &str = "sluice.pipeline";

/// Applies `policy` to rejects: an error for `fail`, counts for `skip`, records to produce
/// for `dead_letter`.
pub(crate) fn handle(
    policy: OnError,
    rejects: Vec<(Reject, Option<Vec<u8>>)>,
    topic: &str,
    pipeline: &str,
    connector: &str,
    stats: &ConnectorStats,
) -> Result<Vec<ProducerRecord>> {
    use std::sync::atomic::Ordering;
    if rejects.is_empty() {
        return Ok(Vec::new());
    }
    match policy {
        OnError::Fail => {
            let (first, _) = &rejects[0];
            let more = if rejects.len() > 1 {
                format!(" (and {} more)", rejects.len() - 1)
            } else {
                String::new()
            };
            Err(Error::Data {
                position: first.position.clone(),
                reason: format!(
                    "{}{more}; set on_error = \"skip\" or \"dead_letter\" to go on past bad records",
                    first.error
                ),
            })
        }
        OnError::Skip => {
            for (reject, _) in &rejects {
                tracing::warn!(connector, position = %reject.position, error = %reject.error, "skipped a bad record");
            }
            stats
                .skipped
                .fetch_add(rejects.len() as u64, Ordering::Relaxed);
            Ok(Vec::new())
        }
        OnError::DeadLetter => {
            stats
                .dead_lettered
                .fetch_add(rejects.len() as u64, Ordering::Relaxed);
            Ok(rejects
                .into_iter()
                .map(|(reject, key)| {
                    let mut record = ProducerRecord::to(topic)
                        .value(reject.bytes)
                        .header(ERROR_HEADER, reject.error.into_bytes())
                        .header(POSITION_HEADER, reject.position.into_bytes())
                        .header(CONNECTOR_HEADER, connector.as_bytes().to_vec())
                        .header(PIPELINE_HEADER, pipeline.as_bytes().to_vec());
                    if let Some(key) = key {
                        record = record.key(key);
                    }
                    record
                })
                .collect())
        }
    }
}
