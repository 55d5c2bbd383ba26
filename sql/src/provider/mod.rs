//! Topic tables as DataFusion tables: [`TopicTable`] is the `TableProvider` (schema, scan
//! with pushdown, INSERT), [`exec`] the scan's execution plan, [`pushdown`] the filters it
//! uses, [`sink`] the INSERT side.

pub mod exec;
pub(crate) mod pushdown;
pub mod sink;

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use sluice_core::Log;

use crate::catalog::TableDef;
use exec::{PartitionRange, TopicScanExec};
use pushdown::ScanBounds;
use sink::TopicSink;

/// A topic table on the embedded log.
#[derive(Debug)]
pub struct TopicTable {
    table: Arc<TableDef>,
    log: Log,
    schema: SchemaRef,
}

impl TopicTable {
    /// The table `def` over the topics of `log`.
    pub fn new(def: TableDef, log: Log) -> Self {
        let schema = def.schema();
        Self {
            table: Arc::new(def),
            log,
            schema,
        }
    }

    /// The table's definition.
    pub fn definition(&self) -> &TableDef {
        &self.table
    }

    /// Each partition's offset range to read under `bounds`, from the log as it is now.
    fn plan_ranges(&self, bounds: &ScanBounds) -> crate::Result<Vec<PartitionRange>> {
        let count = self.log.partition_count(&self.table.topic)?;
        let mut ranges = Vec::new();
        for id in 0..count {
            if bounds.partitions.as_ref().is_some_and(|p| !p.contains(&id)) {
                continue;
            }
            let partition = self.log.partition(&self.table.topic, id)?;
            let mut start = partition.log_start_offset();
            let mut end = partition.last_stable_offset();
            if let Some(min) = bounds.offset_min {
                start = start.max(min);
            }
            if let Some(max) = bounds.offset_max {
                end = end.min(max.saturating_add(1));
            }
            if let Some(ms) = bounds.timestamp_min_ms {
                // Every record before this offset is older than `ms` (the time index keeps
                // the running maximum timestamp), so skipping them loses nothing.
                match partition.offset_for_timestamp(ms)? {
                    Some(offset) => start = start.max(offset),
                    None => start = end,
                }
            }
            ranges.push(PartitionRange {
                partition,
                start: start.min(end),
                end,
            });
        }
        Ok(ranges)
    }
}

#[async_trait]
impl TableProvider for TopicTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut bounds = ScanBounds::default();
        for filter in filters {
            bounds.apply(filter);
        }
        // A limit reaches the scan only when no filter is left above it.
        let limit = if filters.is_empty() { limit } else { None };
        let ranges = self.plan_ranges(&bounds).map_err(DataFusionError::from)?;
        Ok(Arc::new(TopicScanExec::new(
            Arc::clone(&self.table),
            ranges,
            bounds,
            projection.cloned(),
            limit,
        )?))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if pushdown::is_supported(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::NotImplemented(format!(
                "{insert_op} on topic table {}: a topic is append-only, use INSERT INTO",
                self.table.name
            )));
        }
        let sink = TopicSink::new(Arc::clone(&self.table), self.log.clone());
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}
