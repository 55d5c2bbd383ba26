//! The catalog of topic tables: their definitions ([`table`]), the DDL that makes them
//! ([`ddl`]) and where they are kept ([`store`]).

pub mod ddl;
pub mod store;
pub mod table;
pub mod topic_schema;

pub use store::{CATALOG_TOPIC, Catalog, CatalogChange};
pub use table::{ColumnDef, ColumnType, Format, KeyFormat, OnError, TableDef};
