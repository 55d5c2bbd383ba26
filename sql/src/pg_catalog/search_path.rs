//! The session's default schema as PostgreSQL resolves names in it: PostgreSQL searches
//! `pg_catalog` before the schemas of `search_path`, so `SELECT * FROM pg_class` is the
//! catalog's `pg_class`. [`SearchPath`] stands in for the default schema (`public`): a
//! name of a catalog table finds the catalog table, any other name the schema's own table.
//! The schema's own tables are what it lists, registers and drops; a table of its own with
//! a catalog table's name is reachable only qualified (`public.pg_class`), as in
//! PostgreSQL.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::Result;

use super::PgCatalog;

/// The default schema, with `pg_catalog` searched first (see the module docs).
#[derive(Debug)]
pub(crate) struct SearchPath {
    /// The schema's own tables.
    schema: Arc<dyn SchemaProvider>,
    /// Searched first.
    pg_catalog: Arc<PgCatalog>,
}

impl SearchPath {
    pub(crate) fn new(schema: Arc<dyn SchemaProvider>, pg_catalog: Arc<PgCatalog>) -> Self {
        Self { schema, pg_catalog }
    }

    /// The schema's own tables, without the catalog in front.
    pub(crate) fn inner(&self) -> Arc<dyn SchemaProvider> {
        Arc::clone(&self.schema)
    }
}

#[async_trait]
impl SchemaProvider for SearchPath {
    fn owner_name(&self) -> Option<&str> {
        self.schema.owner_name()
    }

    fn table_names(&self) -> Vec<String> {
        self.schema.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if self.pg_catalog.table_exist(name) {
            return self.pg_catalog.table(name).await;
        }
        self.schema.table(name).await
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        self.schema.register_table(name, table)
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.schema.deregister_table(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.pg_catalog.table_exist(name) || self.schema.table_exist(name)
    }
}
