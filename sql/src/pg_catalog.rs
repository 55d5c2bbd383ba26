//! A small `pg_catalog` schema, so PostgreSQL tools that list tables and columns through
//! the system catalogs (rather than `information_schema`) see the session's tables:
//! `pg_namespace`, `pg_class`, `pg_attribute`, `pg_type`, `pg_database` and the
//! `pg_tables` view, with the columns such tools read. Each is built from the session's
//! catalogs when a query names it, so it is always current.
//!
//! Object ids are made up per query (schemas and types have PostgreSQL's well-known ids;
//! tables are numbered in name order from 16384), so they join consistently within a query
//! but are not stable across `CREATE TABLE`. Names must be qualified (`pg_catalog.pg_class`):
//! the session's search path is `public`. psql's `\d` commands call functions this
//! endpoint does not have (`pg_table_is_visible`, `format_type`, ...), so they still fail.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, BooleanArray, Int16Array, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{CatalogProviderList, MemTable, SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result};

/// The schema's name.
pub const SCHEMA: &str = "pg_catalog";
const TABLES: &[&str] = &[
    "pg_namespace",
    "pg_class",
    "pg_attribute",
    "pg_type",
    "pg_database",
    "pg_tables",
];
/// PostgreSQL's ids of its own schemas; others are numbered from `FIRST_SCHEMA_OID`.
const PG_CATALOG_OID: i32 = 11;
const PUBLIC_OID: i32 = 2200;
const INFORMATION_SCHEMA_OID: i32 = 13_000;
const FIRST_SCHEMA_OID: i32 = 14_000;
const FIRST_TABLE_OID: i32 = 16_384;
/// PostgreSQL's bootstrap superuser id, the owner of everything here.
const OWNER_OID: i32 = 10;

/// The `pg_catalog` schema over the catalogs of one session.
#[derive(Debug)]
pub(crate) struct PgCatalog {
    /// The session's catalogs (weak: they hold this schema).
    catalogs: Weak<dyn CatalogProviderList>,
    /// The session's catalog, whose tables are listed.
    catalog: String,
}

impl PgCatalog {
    pub(crate) fn new(catalogs: &Arc<dyn CatalogProviderList>, catalog: &str) -> Self {
        Self {
            catalogs: Arc::downgrade(catalogs),
            catalog: catalog.to_string(),
        }
    }

    /// Every schema of the session's catalog with its id, and every table with its id,
    /// schema id, name, kind and columns.
    async fn snapshot(&self) -> Result<Snapshot> {
        let catalogs = self
            .catalogs
            .upgrade()
            .ok_or_else(|| DataFusionError::Internal("the session is gone".into()))?;
        let mut snapshot = Snapshot::default();
        let Some(catalog) = catalogs.catalog(&self.catalog) else {
            return Ok(snapshot);
        };
        let mut schemas = catalog.schema_names();
        schemas.sort();
        let mut next_schema = FIRST_SCHEMA_OID;
        let mut next_table = FIRST_TABLE_OID;
        for name in schemas {
            let oid = match name.as_str() {
                SCHEMA => PG_CATALOG_OID,
                "public" => PUBLIC_OID,
                "information_schema" => INFORMATION_SCHEMA_OID,
                _ => {
                    next_schema += 1;
                    next_schema
                }
            };
            snapshot.schemas.push((oid, name.clone()));
            if name == SCHEMA {
                continue;
            }
            let Some(schema) = catalog.schema(&name) else {
                continue;
            };
            let mut tables = schema.table_names();
            tables.sort();
            for table in tables {
                let Some(provider) = schema.table(&table).await? else {
                    continue;
                };
                let kind = match provider.table_type() {
                    datafusion::logical_expr::TableType::View => "v",
                    _ => "r",
                };
                snapshot.tables.push(TableRow {
                    oid: next_table,
                    schema_oid: oid,
                    schema: name.clone(),
                    name: table,
                    kind,
                    columns: provider.schema(),
                });
                next_table += 1;
            }
        }
        Ok(snapshot)
    }
}

#[derive(Default)]
struct Snapshot {
    schemas: Vec<(i32, String)>,
    tables: Vec<TableRow>,
}

struct TableRow {
    oid: i32,
    schema_oid: i32,
    schema: String,
    name: String,
    kind: &'static str,
    columns: SchemaRef,
}

#[async_trait]
impl SchemaProvider for PgCatalog {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|t| (*t).to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let name = name.to_ascii_lowercase();
        if !TABLES.contains(&name.as_str()) {
            return Ok(None);
        }
        let snapshot = self.snapshot().await?;
        let (fields, columns): (Vec<Field>, Vec<ArrayRef>) = match name.as_str() {
            "pg_namespace" => (
                vec![int("oid"), text("nspname"), int("nspowner")],
                vec![
                    ints(snapshot.schemas.iter().map(|s| s.0)),
                    texts(snapshot.schemas.iter().map(|s| s.1.clone())),
                    ints(snapshot.schemas.iter().map(|_| OWNER_OID)),
                ],
            ),
            "pg_class" => {
                let t = &snapshot.tables;
                (
                    vec![
                        int("oid"),
                        text("relname"),
                        int("relnamespace"),
                        text("relkind"),
                        int("relowner"),
                        small("relnatts"),
                    ],
                    vec![
                        ints(t.iter().map(|r| r.oid)),
                        texts(t.iter().map(|r| r.name.clone())),
                        ints(t.iter().map(|r| r.schema_oid)),
                        texts(t.iter().map(|r| r.kind.to_string())),
                        ints(t.iter().map(|_| OWNER_OID)),
                        smalls(t.iter().map(|r| r.columns.fields().len())),
                    ],
                )
            }
            "pg_attribute" => {
                let mut rel = Vec::new();
                let mut names = Vec::new();
                let mut types = Vec::new();
                let mut nums = Vec::new();
                let mut not_null = Vec::new();
                for table in &snapshot.tables {
                    for (i, field) in table.columns.fields().iter().enumerate() {
                        rel.push(table.oid);
                        names.push(field.name().clone());
                        types.push(type_oid(field.data_type()));
                        nums.push(i + 1);
                        not_null.push(!field.is_nullable());
                    }
                }
                let count = rel.len();
                (
                    vec![
                        int("attrelid"),
                        text("attname"),
                        int("atttypid"),
                        small("attnum"),
                        boolean("attnotnull"),
                        boolean("attisdropped"),
                        int("atttypmod"),
                    ],
                    vec![
                        ints(rel),
                        texts(names),
                        ints(types),
                        smalls(nums),
                        Arc::new(BooleanArray::from(not_null)),
                        Arc::new(BooleanArray::from(vec![false; count])),
                        ints(std::iter::repeat_n(-1, count)),
                    ],
                )
            }
            "pg_type" => {
                let types = TYPES;
                (
                    vec![int("oid"), text("typname"), int("typnamespace")],
                    vec![
                        ints(types.iter().map(|t| t.0)),
                        texts(types.iter().map(|t| t.1.to_string())),
                        ints(types.iter().map(|_| PG_CATALOG_OID)),
                    ],
                )
            }
            "pg_database" => (
                vec![int("oid"), text("datname")],
                vec![ints([1]), texts([self.catalog.clone()])],
            ),
            _ => {
                let t: Vec<&TableRow> = snapshot
                    .tables
                    .iter()
                    .filter(|r| r.kind == "r" && r.schema != "information_schema")
                    .collect();
                (
                    vec![text("schemaname"), text("tablename"), text("tableowner")],
                    vec![
                        texts(t.iter().map(|r| r.schema.clone())),
                        texts(t.iter().map(|r| r.name.clone())),
                        texts(t.iter().map(|_| "sluice".to_string())),
                    ],
                )
            }
        };
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        Ok(Some(Arc::new(MemTable::try_new(
            schema,
            vec![vec![batch]],
        )?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.contains(&name.to_ascii_lowercase().as_str())
    }
}

/// PostgreSQL's type ids and names for the types results can have.
const TYPES: &[(i32, &str)] = &[
    (16, "bool"),
    (17, "bytea"),
    (20, "int8"),
    (21, "int2"),
    (23, "int4"),
    (25, "text"),
    (700, "float4"),
    (701, "float8"),
    (1043, "varchar"),
    (1082, "date"),
    (1114, "timestamp"),
    (1184, "timestamptz"),
    (1700, "numeric"),
];

/// The PostgreSQL type id a column of this type is sent as (see `pg::encode`).
fn type_oid(t: &DataType) -> i32 {
    i32::try_from(crate::pg::encode::pg_type(t).oid()).unwrap_or(25)
}

fn int(name: &str) -> Field {
    Field::new(name, DataType::Int32, false)
}

fn small(name: &str) -> Field {
    Field::new(name, DataType::Int16, false)
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

fn boolean(name: &str) -> Field {
    Field::new(name, DataType::Boolean, false)
}

fn ints(values: impl IntoIterator<Item = i32>) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(values))
}

fn smalls(values: impl IntoIterator<Item = usize>) -> ArrayRef {
    Arc::new(Int16Array::from_iter_values(
        values
            .into_iter()
            .map(|v| i16::try_from(v).unwrap_or(i16::MAX)),
    ))
}

fn texts(values: impl IntoIterator<Item = String>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}
