//! [`SqlEngine`]: a DataFusion session over the topics of a data directory's log or of a
//! Kafka-compatible cluster (see [`Backend`]). It parses each
//! statement with DataFusion's parser and handles the statements that concern topic tables
//! itself — `CREATE TABLE ... WITH (topic = ...)`, `DROP TABLE` of a topic table, and
//! `INSERT INTO topic_table` without a column list (which would otherwise have to list the
//! metadata columns too) — before handing everything to DataFusion, so `SELECT`, `EXPLAIN`,
//! `SHOW TABLES`, `DESCRIBE`, `CREATE EXTERNAL TABLE`, `COPY` and the rest are DataFusion's.
//! What goes to DataFusion has PostgreSQL's syntax rewritten first, and a catalog query
//! that does not plan as written gets a second try (see `pg_catalog`).

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, ObjectType, Statement as SqlStatement, TableObject,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use sluice_core::Log;

use crate::backend::Backend;
use crate::catalog::ddl::{self, table_name};
use crate::catalog::{Catalog, TableDef};
use crate::provider::TopicTable;
use crate::{Error, Result};

/// What one statement returned: rows for a query (and INSERT's count), nothing for DDL.
#[derive(Debug, Clone)]
pub struct StatementOutput {
    /// The result's schema (no fields for a statement that returns nothing).
    pub schema: SchemaRef,
    /// The result rows.
    pub batches: Vec<RecordBatch>,
}

impl StatementOutput {
    pub(crate) fn empty() -> Self {
        Self {
            schema: Arc::new(Schema::empty()),
            batches: Vec::new(),
        }
    }

    /// Rows in the result.
    pub fn row_count(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Whether the statement returns rows at all (a query does, DDL does not).
    pub fn has_rows(&self) -> bool {
        !self.schema.fields().is_empty()
    }
}

/// SQL over the topics of one log or cluster: see the module docs.
pub struct SqlEngine {
    backend: Backend,
    ctx: SessionContext,
    catalog: Catalog,
}

impl std::fmt::Debug for SqlEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlEngine")
            .field("backend", &self.backend)
            .finish()
    }
}

impl SqlEngine {
    /// An engine over the embedded `log`, with every topic table of its catalog
    /// registered.
    pub fn open(log: Log) -> Result<Self> {
        Self::with_backend(Backend::Log(log))
    }

    /// An engine over the topics of the Kafka-compatible cluster at `bootstrap`
    /// (`HOST:PORT`, comma-separated for several): a `sluice serve` broker (whose catalog
    /// is the one `sluice sql --data-dir` sees) or any Kafka.
    pub fn connect(bootstrap: &str) -> Result<Self> {
        Self::with_backend(Backend::kafka(bootstrap)?)
    }

    /// An engine over `backend`, with every topic table of its catalog registered.
    pub fn with_backend(backend: Backend) -> Result<Self> {
        let config = SessionConfig::new().with_information_schema(true);
        // `SELECT * FROM 'file.parquet'` reads a file without CREATE EXTERNAL TABLE, as
        // datafusion-cli allows.
        let ctx = SessionContext::new_with_config(config).enable_url_table();
        crate::session::register_functions(&ctx);
        crate::pg_catalog::register(&ctx, &backend)?;
        let catalog = Catalog::open(&backend)?;
        let engine = Self {
            backend,
            ctx,
            catalog,
        };
        for def in engine.catalog.tables() {
            engine.register(def)?;
        }
        Ok(engine)
    }

    /// Where the engine's topics live.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The embedded log the engine reads and writes, `None` on a cluster.
    pub fn log(&self) -> Option<&Log> {
        match &self.backend {
            Backend::Log(log) => Some(log),
            Backend::Kafka(_) => None,
        }
    }

    /// The DataFusion session, for registering more tables or functions.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The topic-table catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Splits `sql` into statements (separated by `;`), as [`execute`](Self::execute) and
    /// [`execute_statement`](Self::execute_statement) take them.
    pub fn parse(sql: &str) -> Result<Vec<DfStatement>> {
        Ok(DFParser::parse_sql_with_dialect(sql, &GenericDialect {})?.into())
    }

    /// Runs every statement in `sql` (separated by `;`) in order and returns each one's
    /// output; the first failure stops the rest.
    pub async fn execute(&self, sql: &str) -> Result<Vec<StatementOutput>> {
        let statements = Self::parse(sql)?;
        let mut outputs = Vec::with_capacity(statements.len());
        for statement in statements {
            outputs.push(self.execute_statement(statement).await?);
        }
        Ok(outputs)
    }

    /// Runs one parsed statement.
    pub async fn execute_statement(&self, statement: DfStatement) -> Result<StatementOutput> {
        self.refresh_catalog()?;
        // Transaction control, client session settings (see `session`).
        if let Some(output) = crate::session::answer(&statement) {
            return Ok(output);
        }
        let statement = match statement {
            DfStatement::Statement(boxed) => match *boxed {
                SqlStatement::CreateTable(create) if ddl::is_topic_table(&create) => {
                    return self.create_topic_table(&create);
                }
                SqlStatement::Drop {
                    object_type: ObjectType::Table,
                    if_exists,
                    names,
                    ..
                } if names.iter().any(|n| self.topic_table(n).is_some()) => {
                    return self.drop_tables(&names, if_exists).await;
                }
                other => DfStatement::Statement(Box::new(other)),
            },
            other => other,
        };
        let mut statement = statement;
        self.complete_inserts(&mut statement);
        self.run_datafusion(statement).await
    }

    /// Gives an `INSERT INTO topic_table` without a column list (also under EXPLAIN) the
    /// list of declared columns: the values fill those, and DataFusion would otherwise
    /// demand values for the metadata columns too (which may still be named explicitly).
    fn complete_inserts(&self, statement: &mut DfStatement) {
        match statement {
            DfStatement::Explain(explain) => self.complete_inserts(&mut explain.statement),
            DfStatement::Statement(boxed) => {
                if let SqlStatement::Insert(insert) = boxed.as_mut()
                    && insert.columns.is_empty()
                    && let TableObject::TableName(name) = &insert.table
                    && let Some(def) = self.topic_table(name)
                {
                    insert.columns = def
                        .columns
                        .iter()
                        .map(|c| ObjectName::from(vec![Ident::with_quote('"', &c.name)]))
                        .collect();
                }
            }
            _ => {}
        }
    }

    /// Plans a statement without running it, for clients that prepare statements and bind
    /// parameters (`$1`, `$2`, ...) later: `None` for the statements the engine runs
    /// itself (CREATE and DROP of topic tables), which take no parameters and go to
    /// [`execute_statement`](Self::execute_statement) as they are.
    pub async fn plan_statement(&self, statement: &DfStatement) -> Result<Option<LogicalPlan>> {
        if crate::session::answer(statement).is_some() {
            return Ok(None);
        }
        self.refresh_catalog()?;
        if let DfStatement::Statement(boxed) = statement {
            match boxed.as_ref() {
                SqlStatement::CreateTable(create) if ddl::is_topic_table(create) => {
                    return Ok(None);
                }
                SqlStatement::Drop {
                    object_type: ObjectType::Table,
                    names,
                    ..
                } if names.iter().any(|n| self.topic_table(n).is_some()) => return Ok(None),
                _ => {}
            }
        }
        let mut statement = statement.clone();
        self.complete_inserts(&mut statement);
        Ok(Some(self.plan(statement).await?))
    }

    /// Runs a plan made by [`plan_statement`](Self::plan_statement) (parameters bound).
    pub async fn execute_plan(&self, plan: LogicalPlan) -> Result<StatementOutput> {
        let frame = self.ctx.execute_logical_plan(plan).await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await?;
        Ok(StatementOutput { schema, batches })
    }

    /// Plans and runs a statement in DataFusion alone.
    async fn run_datafusion(&self, statement: DfStatement) -> Result<StatementOutput> {
        let plan = self.plan(statement).await?;
        self.execute_plan(plan).await
    }

    /// Picks up tables created, replaced or dropped by other processes (or engines) since
    /// the last statement, so a long-running session (the PostgreSQL endpoint, a shell)
    /// sees what `sluice sql` elsewhere did. A name held by a table that is not a topic
    /// table (`CREATE EXTERNAL TABLE` in this session) keeps it.
    fn refresh_catalog(&self) -> Result<()> {
        for (name, def) in self.catalog.refresh()? {
            if let Some(old) = self.ctx.deregister_table(name.as_str())?
                && !old.is::<TopicTable>()
            {
                self.ctx.register_table(name.as_str(), old)?;
                continue;
            }
            if let Some(def) = def {
                self.register(def)?;
            }
        }
        Ok(())
    }

    /// Plans a statement in DataFusion, PostgreSQL syntax rewritten first; a catalog query
    /// DataFusion cannot plan or optimize as written is planned again with its blocks over
    /// catalogs Sluice keeps empty pruned (see `pg_catalog::rewrite`), and fails with the
    /// first error if that does not plan either.
    async fn plan(&self, mut statement: DfStatement) -> Result<LogicalPlan> {
        crate::pg_catalog::rewrite(&mut statement);
        let state = self.ctx.state();
        let is_aggregate = |name: &str| state.aggregate_functions().contains_key(name);
        let pruned = crate::pg_catalog::prune_empty_catalogs(&statement, &is_aggregate);
        let planned = state.statement_to_plan(statement).await;
        let Some(pruned) = pruned else {
            return Ok(planned?);
        };
        if let Ok(plan) = &planned
            && state.optimize(plan).is_ok()
        {
            return Ok(planned?);
        }
        match state.statement_to_plan(pruned).await {
            Ok(plan) => Ok(plan),
            Err(_) => Ok(planned?),
        }
    }

    fn topic_table(&self, name: &ObjectName) -> Option<TableDef> {
        self.catalog.get(&table_name(name)?)
    }

    fn register(&self, def: TableDef) -> Result<()> {
        let name = def.name.clone();
        let table = TopicTable::new(def, self.backend.clone());
        self.ctx.register_table(name.as_str(), Arc::new(table))?;
        Ok(())
    }

    fn create_topic_table(
        &self,
        create: &datafusion::sql::sqlparser::ast::CreateTable,
    ) -> Result<StatementOutput> {
        // A table without columns takes them from the topic's schema entry, if any.
        let entry = match ddl::topic_option(create) {
            Some(topic) if ddl::takes_schema_entry(create) => {
                crate::catalog::topic_schema::read(&self.backend, &topic)?
            }
            _ => None,
        };
        let parsed = ddl::parse_create(create, entry.as_ref())?;
        let name = parsed.def.name.clone();
        let is_topic_table = self.catalog.get(&name).is_some();
        if self.ctx.table_exist(name.as_str())? {
            if parsed.if_not_exists {
                return Ok(StatementOutput::empty());
            }
            if !(parsed.or_replace && is_topic_table) {
                return Err(Error::TableExists(name));
            }
        }
        self.backend
            .ensure_topic(&parsed.def.topic, parsed.partitions, &[])?;
        self.catalog.put(parsed.def.clone())?;
        self.ctx.deregister_table(name.as_str())?;
        self.register(parsed.def)?;
        Ok(StatementOutput::empty())
    }

    async fn drop_tables(&self, names: &[ObjectName], if_exists: bool) -> Result<StatementOutput> {
        for name in names {
            match self.topic_table(name) {
                Some(def) => {
                    self.catalog.remove(&def.name)?;
                    self.ctx.deregister_table(def.name.as_str())?;
                }
                None => {
                    let exists = if if_exists { " IF EXISTS" } else { "" };
                    let sql = format!("DROP TABLE{exists} {name}");
                    for statement in DFParser::parse_sql_with_dialect(&sql, &GenericDialect {})? {
                        self.run_datafusion(statement).await?;
                    }
                }
            }
        }
        Ok(StatementOutput::empty())
    }
}
