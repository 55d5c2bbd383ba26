//! `INSERT INTO topic_table ...`: a DataFusion `DataSink` that encodes each incoming row as
//! a record in the table's format and produces it to the topic with an embedded producer.
//! The statement's count is returned only after the producer has flushed every record, so
//! a successful INSERT means the records are in the log.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::sink::DataSink;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::StreamExt;
use sluice_core::{Log, ProducerConfig};

use crate::catalog::TableDef;
use crate::format::encode::encode_rows;

/// Writes rows to a topic table's topic.
#[derive(Debug)]
pub struct TopicSink {
    table: Arc<TableDef>,
    log: Log,
    schema: SchemaRef,
}

impl TopicSink {
    pub(crate) fn new(table: Arc<TableDef>, log: Log) -> Self {
        let schema = table.schema();
        Self { table, log, schema }
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
        let producer = Arc::new(
            self.log
                .producer(ProducerConfig::default())
                .map_err(|e| DataFusionError::from(crate::Error::from(e)))?,
        );
        let mut count = 0u64;
        while let Some(batch) = data.next().await {
            let batch = batch?;
            let records = encode_rows(&self.table, &batch)?;
            count += records.len() as u64;
            let producer = Arc::clone(&producer);
            // Appends may fsync: keep them off the async worker threads.
            tokio::task::spawn_blocking(move || producer.send_all(records))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
                .map_err(|e| DataFusionError::from(crate::Error::from(e)))?;
        }
        tokio::task::spawn_blocking(move || producer.flush())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .map_err(|e| DataFusionError::from(crate::Error::from(e)))?;
        Ok(count)
    }
}
