//! `TopicScanExec`: the physical scan of a topic table. One output partition per topic
//! partition read, each decoded on a blocking thread (log reads are synchronous `pread`s;
//! a cluster's are librdkafka polls) and sent as Arrow batches through a bounded channel,
//! so DataFusion reads partitions in parallel and a slow consumer holds the reader back.
//!
//! The offset range of each partition is fixed when the plan is made (and printed by
//! EXPLAIN): records appended after planning are not read.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType, SchedulingType};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream,
};

use super::pushdown::ScanBounds;
use crate::backend::{Backend, PartitionRange};
use crate::catalog::TableDef;
use crate::format::decode::RowsBuilder;

/// Batches in flight per scanned partition.
const CHANNEL_BATCHES: usize = 2;

/// Scans a topic table: see the module docs.
#[derive(Debug)]
pub struct TopicScanExec {
    table: Arc<TableDef>,
    backend: Backend,
    ranges: Vec<PartitionRange>,
    bounds: ScanBounds,
    projection: Option<Vec<usize>>,
    /// Rows each partition stops after (DataFusion applies the overall limit above).
    limit: Option<usize>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl TopicScanExec {
    pub(crate) fn new(
        table: Arc<TableDef>,
        backend: Backend,
        ranges: Vec<PartitionRange>,
        bounds: ScanBounds,
        projection: Option<Vec<usize>>,
        limit: Option<usize>,
    ) -> Result<Self> {
        let full = table.schema();
        let schema = match &projection {
            Some(p) => Arc::new(full.project(p)?),
            None => full,
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            // At least one output partition, even when no topic partition is read.
            Partitioning::UnknownPartitioning(ranges.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        )
        // The batches come through a tokio channel, whose receiver takes part in tokio's
        // cooperative budget, so DataFusion need not wrap the scan in a CooperativeExec.
        .with_scheduling_type(SchedulingType::Cooperative);
        Ok(Self {
            table,
            backend,
            ranges,
            bounds,
            projection,
            limit,
            schema,
            properties: Arc::new(properties),
        })
    }
}

impl DisplayAs for TopicScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let ranges: Vec<String> = self
            .ranges
            .iter()
            .map(|r| format!("{}:[{}, {})", r.partition, r.start, r.end))
            .collect();
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(
                    f,
                    "TopicScanExec: topic={}, format={:?}, partitions=[{}]",
                    self.table.topic,
                    self.table.format,
                    ranges.join(", ")
                )?;
                if let Some(ms) = self.bounds.timestamp_min_ms {
                    write!(f, ", timestamp>={ms}")?;
                }
                if let Some(ms) = self.bounds.timestamp_max_ms {
                    write!(f, ", timestamp<={ms}")?;
                }
                if let Some(limit) = self.limit {
                    write!(f, ", limit={limit}")?;
                }
                Ok(())
            }
            DisplayFormatType::TreeRender => {
                writeln!(f, "topic={}", self.table.topic)?;
                write!(f, "partitions=[{}]", ranges.join(", "))
            }
        }
    }
}

impl ExecutionPlan for TopicScanExec {
    fn name(&self) -> &'static str {
        "TopicScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let mut builder =
            RecordBatchReceiverStreamBuilder::new(Arc::clone(&self.schema), CHANNEL_BATCHES);
        let Some(range) = self.ranges.get(partition).copied() else {
            // The one empty output partition of a scan that reads no topic partition.
            return Ok(builder.build());
        };
        let tx = builder.tx();
        let table = Arc::clone(&self.table);
        let backend = self.backend.clone();
        let projection = self.projection.clone();
        let limit = self.limit.unwrap_or(usize::MAX);
        let batch_rows = context.session_config().batch_size().max(1);
        builder.spawn_blocking(move || {
            let id = range.partition;
            let mut reader = backend
                .reader(&table.topic, range)
                .map_err(DataFusionError::from)?;
            // Only the projected columns are built (see `RowsBuilder` for what on_error
            // still checks of the others).
            let mut rows =
                RowsBuilder::new(table, projection.as_deref()).map_err(DataFusionError::from)?;
            let mut total = 0usize;
            let send = |rows: &mut RowsBuilder| -> Result<bool> {
                let batch = rows.finish()?;
                // A send fails only when the query no longer wants rows.
                Ok(tx.blocking_send(Ok(batch)).is_ok())
            };
            // The query stopped wanting rows (a send failed): end without an error.
            let mut unwanted = false;
            loop {
                let more = reader
                    .visit_next(|record| {
                        if total >= limit {
                            return Ok(false);
                        }
                        if rows.push(id, record)? {
                            total += 1;
                        }
                        if rows.rows() >= batch_rows
                            && !send(&mut rows).map_err(crate::Error::from)?
                        {
                            unwanted = true;
                            return Ok(false);
                        }
                        Ok(true)
                    })
                    .map_err(DataFusionError::from)?;
                if unwanted {
                    return Ok(());
                }
                if !more {
                    break;
                }
            }
            if rows.rows() > 0 {
                send(&mut rows)?;
            }
            Ok(())
        });
        Ok(builder.build())
    }
}
