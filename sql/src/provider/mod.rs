//! Topic tables as DataFusion tables: [`TopicTable`] is the `TableProvider` (schema, scan
//! with pushdown, INSERT), [`exec`] the scan's execution plan, [`pushdown`] the filters it
//! uses, [`sink`] the INSERT side. Each reads and writes through a [`Backend`]: the
//! embedded log or a Kafka-compatible cluster.

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

use crate::backend::Backend;
use crate::catalog::TableDef;
use exec::TopicScanExec;
use pushdown::ScanBounds;
use sink::TopicSink;

/// A topic table.
#[derive(Debug)]
pub struct TopicTable {
    table: Arc<TableDef>,
    backend: Backend,
    schema: SchemaRef,
}

impl TopicTable {
    /// The table `def` over the topics of `backend`.
    pub fn new(def: TableDef, backend: Backend) -> Self {
        let schema = def.schema();
        Self {
            table: Arc::new(def),
            backend,
            schema,
        }
    }

    /// The table's definition.
    pub fn definition(&self) -> &TableDef {
        &self.table
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
        // Planning asks the log or the broker for offsets: off the async worker threads.
        let (backend, topic, plan_bounds) = (
            self.backend.clone(),
            self.table.topic.clone(),
            bounds.clone(),
        );
        let ranges = tokio::task::spawn_blocking(move || backend.plan_ranges(&topic, &plan_bounds))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .map_err(DataFusionError::from)?;
        Ok(Arc::new(TopicScanExec::new(
            Arc::clone(&self.table),
            self.backend.clone(),
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
        let sink = TopicSink::new(Arc::clone(&self.table), self.backend.clone());
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}
