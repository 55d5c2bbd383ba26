//! The `pg_catalog` schema and the PostgreSQL functions around it, so PostgreSQL tools that
//! describe a database through the system catalogs — psql's `\dt`, `\d`, `\d table`,
//! `\dn`, `\l`, drivers and ORMs that list tables and columns — see the session's tables.
//!
//! - [`tables`]: the catalog tables (`pg_class`, `pg_attribute`, `pg_namespace`, `pg_type`,
//!   `pg_database`, `pg_roles`, ...), each built from the session's catalogs when a query
//!   names it, so it is always current. Catalogs of things Sluice does not have (indexes,
//!   constraints, defaults, policies, publications, ...) are there with PostgreSQL's
//!   columns and no rows.
//! - [`search_path`]: unqualified names find the catalog tables (`FROM pg_class`), as
//!   PostgreSQL searches `pg_catalog` before `public`.
//! - [`functions`]: `pg_table_is_visible`, `format_type`, `pg_get_userbyid`, `version()`
//!   and the other functions catalog queries call, and `regclass` / `regtype` /
//!   `regnamespace`, what `::regclass` casts become.
//! - [`rewrite`]: PostgreSQL syntax DataFusion does not plan (`OPERATOR(pg_catalog.~)`,
//!   `COLLATE pg_catalog.default`, `pg_catalog.` function and type names, `::regclass`),
//!   rewritten in the parsed statement; and, for a catalog query DataFusion cannot plan
//!   as written, its query blocks over catalogs Sluice keeps empty.
//!
//! Object ids: schemas and types have PostgreSQL's well-known ids (`pg_catalog` 11,
//! `public` 2200, `int8` 20, ...). A table's id is a hash of its schema and name, from
//! 16384 up, so it stays the same across statements — psql looks a table up by name in one
//! query and describes it by id in the next — and across `CREATE TABLE` of other tables
//! (two names hashing alike are told apart by probing in name order). Everything is owned
//! by one role, `sluice` (id 10); there is no access control, so every privilege check
//! answers true.

mod functions;
mod rewrite;
mod search_path;
mod tables;

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{CatalogProviderList, MemTable, SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::TableType;
use datafusion::prelude::SessionContext;
use futures::FutureExt;

pub(crate) use rewrite::{prune_empty_catalogs, rewrite};

use crate::TopicTable;
use crate::backend::Backend;

/// The schema's name.
pub const SCHEMA: &str = "pg_catalog";
/// PostgreSQL's ids of its own schemas; others get ids in `SCHEMA_OIDS`.
const PG_CATALOG_OID: i32 = 11;
const PUBLIC_OID: i32 = 2200;
const INFORMATION_SCHEMA_OID: i32 = 13_000;
/// Where other schemas' ids are hashed into.
const SCHEMA_OIDS: std::ops::Range<i32> = 14_000..16_384;
/// Where tables' ids are hashed into (PostgreSQL's first id for user objects on up).
const TABLE_OIDS: std::ops::Range<i32> = 16_384..i32::MAX;
/// PostgreSQL's bootstrap superuser id, the owner of everything here.
const OWNER_OID: i32 = 10;
/// The role that owns everything.
const OWNER: &str = "sluice";

/// Registers the `pg_catalog` schema in the session's default catalog, puts it on the
/// default schema's search path, and registers the catalog functions.
pub(crate) fn register(ctx: &SessionContext, backend: &Backend) -> Result<()> {
    let state = ctx.state();
    let options = &state.config().options().catalog;
    let (catalog_name, schema_name) = (
        options.default_catalog.clone(),
        options.default_schema.clone(),
    );
    let objects = Arc::new(Objects {
        backend: backend.clone(),
        catalogs: Arc::downgrade(state.catalog_list()),
        catalog: catalog_name.clone(),
        default_schema: schema_name.clone(),
    });
    let catalog = ctx
        .catalog(&catalog_name)
        .ok_or_else(|| DataFusionError::Internal(format!("no default catalog {catalog_name}")))?;
    let pg = Arc::new(PgCatalog {
        objects: Arc::clone(&objects),
    });
    catalog.register_schema(SCHEMA, Arc::clone(&pg) as Arc<dyn SchemaProvider>)?;
    if let Some(schema) = catalog.schema(&schema_name) {
        catalog.register_schema(
            &schema_name,
            Arc::new(search_path::SearchPath::new(schema, pg)),
        )?;
    }
    functions::register(ctx, &objects);
    Ok(())
}

/// Where the catalogs come from: the session's catalog list (weak: it holds the
/// `pg_catalog` schema, which holds this).
#[derive(Debug)]
pub(crate) struct Objects {
    /// Where the topic tables are, for their sizes.
    backend: Backend,
    catalogs: Weak<dyn CatalogProviderList>,
    /// The session's catalog, the one database listed.
    catalog: String,
    /// The schema unqualified names resolve in after `pg_catalog`.
    default_schema: String,
}

/// A schema as `pg_namespace` lists it.
#[derive(Debug, Clone)]
pub(crate) struct Namespace {
    oid: i32,
    name: String,
}

/// A table or view as `pg_class` lists it (without its columns: see [`Relation`]).
#[derive(Debug, Clone)]
pub(crate) struct RelationName {
    oid: i32,
    namespace: i32,
    schema: String,
    name: String,
}

/// A table or view with what `pg_class` and `pg_attribute` say of it.
#[derive(Debug)]
pub(crate) struct Relation {
    id: RelationName,
    /// `r` for a table, `v` for a view.
    kind: &'static str,
    columns: SchemaRef,
    /// Columns declared `NOT NULL` (a topic table keeps that outside its Arrow schema).
    not_null: HashSet<String>,
}

/// Everything the catalog tables are built from, read once per table scan.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    database: String,
    namespaces: Vec<Namespace>,
    relations: Vec<Relation>,
}

impl Objects {
    fn catalogs(&self) -> Result<Arc<dyn CatalogProviderList>> {
        self.catalogs
            .upgrade()
            .ok_or_else(|| DataFusionError::Internal("the session is gone".into()))
    }

    /// Every schema of the session's catalog with its id, sorted by name.
    fn namespaces(&self) -> Result<Vec<Namespace>> {
        let Some(catalog) = self.catalogs()?.catalog(&self.catalog) else {
            return Ok(Vec::new());
        };
        let mut names = catalog.schema_names();
        names.sort();
        let mut taken = HashSet::new();
        Ok(names
            .into_iter()
            .map(|name| {
                let oid = match name.as_str() {
                    SCHEMA => PG_CATALOG_OID,
                    "public" => PUBLIC_OID,
                    "information_schema" => INFORMATION_SCHEMA_OID,
                    _ => hashed_oid(&name, SCHEMA_OIDS, &mut taken),
                };
                Namespace { oid, name }
            })
            .collect())
    }

    /// Every table and view with its id, sorted by schema and name.
    fn relation_names(&self) -> Result<Vec<RelationName>> {
        let Some(catalog) = self.catalogs()?.catalog(&self.catalog) else {
            return Ok(Vec::new());
        };
        let mut relations = Vec::new();
        let mut taken = HashSet::new();
        for namespace in self.namespaces()? {
            let mut names = if namespace.name == SCHEMA {
                tables::names().map(str::to_string).collect()
            } else {
                match catalog.schema(&namespace.name) {
                    Some(schema) => schema.table_names(),
                    None => continue,
                }
            };
            names.sort();
            for name in names {
                let key = format!("{}.{name}", namespace.name);
                relations.push(RelationName {
                    oid: hashed_oid(&key, TABLE_OIDS, &mut taken),
                    namespace: namespace.oid,
                    schema: namespace.name.clone(),
                    name,
                });
            }
        }
        Ok(relations)
    }

    /// Whether an unqualified name finds this relation: it is in `pg_catalog`, or in the
    /// default schema and not hidden by a catalog table of the same name.
    fn is_visible(&self, relation: &RelationName) -> bool {
        relation.schema == SCHEMA
            || (relation.schema == self.default_schema && !tables::exists(&relation.name))
    }

    /// The bytes a relation takes on disk (`pg_table_size`): its topic's segments for a
    /// topic table, 0 for what lives in memory (views, catalog and in-memory tables),
    /// `None` for an id that is no relation.
    fn size_bytes(&self, oid: i64) -> Result<Option<i64>> {
        let Some(id) = self
            .relation_names()?
            .into_iter()
            .find(|r| i64::from(r.oid) == oid)
        else {
            return Ok(None);
        };
        let schema = self
            .catalogs()?
            .catalog(&self.catalog)
            .and_then(|c| c.schema(&id.schema));
        let schema = match schema {
            Some(s) => match s.downcast_ref::<search_path::SearchPath>() {
                Some(path) => path.inner(),
                None => s,
            },
            None => return Ok(Some(0)),
        };
        // Tables of memory schemas are at hand at once; a provider that would have to wait
        // is counted as in memory rather than blocking the query.
        let provider = schema.table(&id.name).now_or_never().transpose()?.flatten();
        let Some(topic) = provider
            .as_ref()
            .and_then(|p| p.downcast_ref::<TopicTable>())
            .map(|t| t.definition().topic.clone())
        else {
            return Ok(Some(0));
        };
        // A cluster's sizes are the brokers' (DescribeLogDirs): not asked, counted as 0.
        let Backend::Log(log) = &self.backend else {
            return Ok(Some(0));
        };
        let mut bytes = 0_u64;
        for partition in 0..log.partition_count(&topic).unwrap_or(0) {
            bytes += log
                .partition(&topic, partition)
                .map_or(0, |p| p.info().size_bytes);
        }
        Ok(Some(i64::try_from(bytes).unwrap_or(i64::MAX)))
    }

    /// The namespaces and relations with their kinds and columns.
    async fn snapshot(&self) -> Result<Snapshot> {
        let mut snapshot = Snapshot {
            database: self.catalog.clone(),
            namespaces: self.namespaces()?,
            relations: Vec::new(),
        };
        let catalogs = self.catalogs()?;
        let Some(catalog) = catalogs.catalog(&self.catalog) else {
            return Ok(snapshot);
        };
        for id in self.relation_names()? {
            let relation = if id.schema == SCHEMA {
                let Some(columns) = tables::schema(&id.name) else {
                    continue;
                };
                Relation {
                    kind: tables::kind(&id.name),
                    columns,
                    not_null: HashSet::new(),
                    id,
                }
            } else {
                let Some(schema) = catalog.schema(&id.schema) else {
                    continue;
                };
                // The default schema's own tables, not the catalog tables it also finds.
                let schema = match schema.downcast_ref::<search_path::SearchPath>() {
                    Some(path) => path.inner(),
                    None => schema,
                };
                let Some(provider) = schema.table(&id.name).await? else {
                    continue;
                };
                let not_null = provider
                    .downcast_ref::<TopicTable>()
                    .map(|t| {
                        let def = t.definition();
                        def.columns
                            .iter()
                            .filter(|c| !c.nullable)
                            .map(|c| c.name.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                Relation {
                    kind: match provider.table_type() {
                        TableType::View => "v",
                        _ => "r",
                    },
                    columns: provider.schema(),
                    not_null,
                    id,
                }
            };
            snapshot.relations.push(relation);
        }
        Ok(snapshot)
    }
}

impl Relation {
    /// Whether column `field` is `NOT NULL`.
    fn is_not_null(&self, field: &datafusion::arrow::datatypes::Field) -> bool {
        !field.is_nullable() || self.not_null.contains(field.name())
    }
}

/// A stable id for `key` in `range`: its FNV-1a hash, moved up past ids already `taken`
/// (wrapping around; once every id of the range is taken, ids repeat).
fn hashed_oid(key: &str, range: std::ops::Range<i32>, taken: &mut HashSet<i32>) -> i32 {
    let hash = key.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let span = u32::try_from(range.end - range.start).unwrap_or(1).max(1);
    // `hash % span` < span, which fits the range: the conversion cannot fail.
    let first = range.start + i32::try_from(hash % span).unwrap_or(0);
    let mut oid = first;
    for _ in 0..span {
        if taken.insert(oid) {
            return oid;
        }
        oid = if oid + 1 >= range.end {
            range.start
        } else {
            oid + 1
        };
    }
    first
}

/// The `pg_catalog` schema over the catalogs of one session.
#[derive(Debug)]
pub(crate) struct PgCatalog {
    objects: Arc<Objects>,
}

#[async_trait]
impl SchemaProvider for PgCatalog {
    fn table_names(&self) -> Vec<String> {
        tables::names().map(str::to_string).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let name = name.to_ascii_lowercase();
        if !tables::exists(&name) {
            return Ok(None);
        }
        let snapshot = if tables::reads_snapshot(&name) {
            self.objects.snapshot().await?
        } else {
            Snapshot::default()
        };
        let Some(batch) = tables::build(&name, &snapshot)? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(MemTable::try_new(
            batch.schema(),
            vec![vec![batch]],
        )?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        tables::exists(&name.to_ascii_lowercase())
    }
}

/// The PostgreSQL type id a column of this type is sent as (see `pg::encode`).
fn type_oid(t: &DataType) -> i32 {
    i32::try_from(crate::pg::encode::pg_type(t).oid()).unwrap_or(functions::TEXT_OID)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids are a function of the name alone unless two names collide, and never repeat.
    #[test]
    fn hashed_oids_are_stable_and_distinct() {
        let mut taken = HashSet::new();
        let a = hashed_oid("public.orders", TABLE_OIDS, &mut taken);
        let mut fresh = HashSet::new();
        assert_eq!(a, hashed_oid("public.orders", TABLE_OIDS, &mut fresh));
        assert!(TABLE_OIDS.contains(&a));
        // The same key again (a collision) moves on to a free id.
        let b = hashed_oid("public.orders", TABLE_OIDS, &mut taken);
        assert_ne!(a, b);
        let mut small = HashSet::new();
        let ids: HashSet<i32> = (0..5)
            .map(|i| hashed_oid(&format!("k{i}"), 0..5, &mut small))
            .collect();
        assert_eq!(ids.len(), 5, "a full range is used up without repeats");
    }
}
