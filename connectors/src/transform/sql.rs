//! `sql`: a DataFusion `SELECT` over each batch, the rows available as the table `input`
//! (`query = "SELECT id, upper(name) AS name FROM input WHERE amount > 10"`). Built with
//! the `sql` feature (the `sluice` binary has it).
//!
//! The query runs per batch: filters, projections, expressions and per-batch aggregates
//! work; state across batches (windows, joins with earlier rows) is the streaming SQL
//! layer's job, not a transform's.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use serde::Deserialize;
use sluice_sql::datafusion::prelude::SessionContext;

use super::{Applied, Rejected, Transform};
use crate::config::Settings;
use crate::error::{Error, Result};

struct Sql {
    query: String,
}

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Transform>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        query: String,
    }
    let config: Config = settings.parse()?;
    if !config
        .query
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("select")
        && !config
            .query
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("with")
    {
        return Err(settings.error(
            Some("query"),
            "the sql transform takes a SELECT over `input`",
        ));
    }
    Ok(Box::new(Sql {
        query: config.query,
    }))
}

impl Sql {
    /// Runs the query over `rows` (blocking on the current tokio runtime: the runtime calls
    /// transforms from blocking sections).
    fn run(&self, rows: RecordBatch) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let query = self.query.clone();
        let future = async move {
            let ctx = SessionContext::new();
            ctx.register_batch("input", rows)?;
            let frame = ctx.sql(&query).await?;
            let schema: SchemaRef = frame.schema().inner().clone();
            let batches = frame.collect().await?;
            Ok::<_, sluice_sql::datafusion::error::DataFusionError>((schema, batches))
        };
        let result = match tokio::runtime::Handle::try_current() {
            Ok(handle) => tokio::task::block_in_place(|| handle.block_on(future)),
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .build()
                .map_err(|e| Error::config(format!("sql transform: no runtime: {e}")))?
                .block_on(future),
        };
        result.map_err(|e| Error::config(format!("sql transform `{}`: {e}", self.query)))
    }
}

impl Transform for Sql {
    fn schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        Ok(self.run(RecordBatch::new_empty(input.clone()))?.0)
    }

    fn apply(&self, rows: RecordBatch) -> Result<Applied, Rejected> {
        let (schema, batches) = self.run(rows)?;
        let out = arrow::compute::concat_batches(&schema, &batches)?;
        Ok(out.into())
    }
}
