//! `INSERT INTO topic_table ...`: a DataFusion `DataSink` that encodes each incoming row as
//! a record in the table's format and produces it to the topic (an embedded producer, or
//! an idempotent librdkafka producer on a cluster). The statement's count is returned only
//! after the producer has flushed every record, so a successful INSERT means the records
//! are in the log.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::sink::DataSink;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::StreamExt;

use crate::backend::Backend;
use crate::catalog::TableDef;
use crate::format::encode::encode_rows;

/// Writes rows to a topic table's topic.
#[derive(Debug)]
pub struct TopicSink {
    table: Arc<TableDef>,
    backend: Backend,
    schema: SchemaRef,
}

impl TopicSink {
    pub(crate) fn new(table: Arc<TableDef>, backend: Backend) -> Self {
        let schema = table.schema();
        Self {
            table,
            backend,
            schema,
        }
    }
}

impl DisplayAs for TopicSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "TopicSink: topic={}, format={:?}",
            self.table.topic, self.table.format
        )
    }
}

#[async_trait]
impl DataSink for TopicSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let backend = self.backend.clone();
        let writer = Arc::new(
            tokio::task::spawn_blocking(move || backend.writer())
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))??,
        );
        let mut count = 0u64;
        while let Some(batch) = data.next().await {
            let batch = batch?;
            let records = encode_rows(&self.table, &batch)?;
            count += records.len() as u64;
            let writer = Arc::clone(&writer);
            // Appends may fsync or wait for a broker: off the async worker threads.
            tokio::task::spawn_blocking(move || writer.send_all(records))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))??;
        }
        tokio::task::spawn_blocking(move || writer.flush())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))??;
        Ok(count)
    }
}
