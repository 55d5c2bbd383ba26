//! The catalog tables: each one's PostgreSQL columns (those tools read; PostgreSQL 15's
//! names and order) and its rows, built from a [`Snapshot`] of the session's catalogs.
//! The catalogs of things Sluice does not have — indexes, constraints, column defaults,
//! inheritance, comments, collations, policies, statistics, publications, triggers, enums,
//! sequences, tablespaces, access methods and operator classes — have their columns and no rows: every answer about them is "none".
//! [`is_kept_empty`] says which, for the rewrite that leaves such catalogs out of queries
//! DataFusion cannot plan (see `rewrite`).

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Int16Array, Int32Array, RecordBatch, StringArray,
    new_null_array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::error::Result;

use super::functions::{TYPES, type_modifier};
use super::{OWNER, OWNER_OID, PG_CATALOG_OID, Snapshot, type_oid};

/// How a catalog table's rows are made.
enum Content {
    /// From the snapshot (`true`) or from constants (`false`).
    Built(fn(&Snapshot) -> Table, bool),
    /// No rows, these columns.
    Empty(&'static [(&'static str, Ty)]),
}

/// Every catalog table: name, `pg_class.relkind` (`r` table, `v` view), content.
const TABLES: &[(&str, &str, Content)] = &[
    ("pg_am", "r", Content::Empty(PG_AM)),
    ("pg_attrdef", "r", Content::Empty(PG_ATTRDEF)),
    ("pg_attribute", "r", Content::Built(pg_attribute, true)),
    ("pg_class", "r", Content::Built(pg_class, true)),
    ("pg_collation", "r", Content::Empty(PG_COLLATION)),
    ("pg_constraint", "r", Content::Empty(PG_CONSTRAINT)),
    ("pg_database", "r", Content::Built(pg_database, true)),
    ("pg_description", "r", Content::Empty(PG_DESCRIPTION)),
    ("pg_enum", "r", Content::Empty(PG_ENUM)),
    ("pg_index", "r", Content::Empty(PG_INDEX)),
    ("pg_inherits", "r", Content::Empty(PG_INHERITS)),
    ("pg_namespace", "r", Content::Built(pg_namespace, true)),
    ("pg_opclass", "r", Content::Empty(PG_OPCLASS)),
    ("pg_policy", "r", Content::Empty(PG_POLICY)),
    ("pg_publication", "r", Content::Empty(PG_PUBLICATION)),
    (
        "pg_publication_namespace",
        "r",
        Content::Empty(PG_PUBLICATION_NAMESPACE),
    ),
    (
        "pg_publication_rel",
        "r",
        Content::Empty(PG_PUBLICATION_REL),
    ),
    ("pg_roles", "v", Content::Built(pg_roles, false)),
    ("pg_sequence", "r", Content::Empty(PG_SEQUENCE)),
    ("pg_settings", "v", Content::Built(pg_settings, false)),
    ("pg_statistic_ext", "r", Content::Empty(PG_STATISTIC_EXT)),
    ("pg_tables", "v", Content::Built(pg_tables, true)),
    ("pg_tablespace", "r", Content::Empty(PG_TABLESPACE)),
    ("pg_trigger", "r", Content::Empty(PG_TRIGGER)),
    ("pg_type", "r", Content::Built(pg_type, false)),
    ("pg_user", "v", Content::Built(pg_user, false)),
    ("pg_views", "v", Content::Built(pg_views, true)),
];

fn find(name: &str) -> Option<&'static (&'static str, &'static str, Content)> {
    TABLES.iter().find(|t| t.0 == name)
}

/// The names of the catalog tables.
pub(super) fn names() -> impl Iterator<Item = &'static str> {
    TABLES.iter().map(|t| t.0)
}

/// Whether `name` (lower case) is a catalog table.
pub(super) fn exists(name: &str) -> bool {
    find(name).is_some()
}

/// Whether `name` is a catalog table Sluice never has rows in.
pub(crate) fn is_kept_empty(name: &str) -> bool {
    matches!(find(name), Some((_, _, Content::Empty(_))))
}

/// Whether building `name` needs a snapshot of the session's catalogs.
pub(super) fn reads_snapshot(name: &str) -> bool {
    matches!(find(name), Some((_, _, Content::Built(_, true))))
}

/// `pg_class.relkind` of catalog table `name`.
pub(super) fn kind(name: &str) -> &'static str {
    find(name).map_or("r", |t| t.1)
}

/// The columns of catalog table `name`.
pub(super) fn schema(name: &str) -> Option<SchemaRef> {
    build(name, &Snapshot::default())
        .ok()
        .flatten()
        .map(|b| b.schema())
}

/// Catalog table `name`'s rows, `None` if there is no such table.
pub(super) fn build(name: &str, snapshot: &Snapshot) -> Result<Option<RecordBatch>> {
    let Some((_, _, content)) = find(name) else {
        return Ok(None);
    };
    let table = match content {
        Content::Built(build, _) => build(snapshot),
        Content::Empty(columns) => columns
            .iter()
            .fold(Table::new(0), |t, (name, ty)| t.null(name, *ty)),
    };
    table.finish().map(Some)
}

/// A catalog column's type, for the columns that hold no values here.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Oid,
    Int2,
    Int4,
    Int8,
    Float4,
    Bool,
    /// `name` and `"char"` as well as `text`.
    Text,
    /// `int2vector`, `int2[]`.
    Int2s,
    /// `oidvector`, `oid[]`.
    Oids,
    /// `aclitem[]`, `text[]`, `"char"[]`.
    Texts,
    Timestamp,
}

impl Ty {
    fn data_type(self) -> DataType {
        let list = |t: DataType| DataType::List(Arc::new(Field::new("item", t, true)));
        match self {
            Ty::Oid | Ty::Int4 => DataType::Int32,
            Ty::Int2 => DataType::Int16,
            Ty::Int8 => DataType::Int64,
            Ty::Float4 => DataType::Float32,
            Ty::Bool => DataType::Boolean,
            Ty::Text => DataType::Utf8,
            Ty::Int2s => list(DataType::Int16),
            Ty::Oids => list(DataType::Int32),
            Ty::Texts => list(DataType::Utf8),
            Ty::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }
}

/// A catalog table being built column by column; every column has `rows` values.
struct Table {
    rows: usize,
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
}

impl Table {
    fn new(rows: usize) -> Self {
        Self {
            rows,
            fields: Vec::new(),
            columns: Vec::new(),
        }
    }

    fn column(mut self, field: Field, column: ArrayRef) -> Self {
        self.fields.push(field);
        self.columns.push(column);
        self
    }

    fn oid(self, name: &str, values: impl IntoIterator<Item = i32>) -> Self {
        let values = Int32Array::from_iter_values(values);
        self.column(Field::new(name, DataType::Int32, false), Arc::new(values))
    }

    fn int4(self, name: &str, values: impl IntoIterator<Item = i32>) -> Self {
        self.oid(name, values)
    }

    fn int2(self, name: &str, values: impl IntoIterator<Item = i16>) -> Self {
        let values = Int16Array::from_iter_values(values);
        self.column(Field::new(name, DataType::Int16, false), Arc::new(values))
    }

    fn text<S: AsRef<str>>(self, name: &str, values: impl IntoIterator<Item = S>) -> Self {
        let values = StringArray::from_iter_values(values);
        self.column(Field::new(name, DataType::Utf8, false), Arc::new(values))
    }

    fn texts_or_null(self, name: &str, values: impl IntoIterator<Item = Option<String>>) -> Self {
        let values: StringArray = values.into_iter().collect();
        self.column(Field::new(name, DataType::Utf8, true), Arc::new(values))
    }

    fn bool(self, name: &str, values: impl IntoIterator<Item = bool>) -> Self {
        let values: BooleanArray = values.into_iter().map(Some).collect();
        self.column(Field::new(name, DataType::Boolean, false), Arc::new(values))
    }

    /// Columns holding `value` in every row.
    fn oids_all(self, names: &[&str], value: i32) -> Self {
        let rows = self.rows;
        names
            .iter()
            .fold(self, |t, n| t.oid(n, std::iter::repeat_n(value, rows)))
    }

    fn bools_all(self, names: &[&str], value: bool) -> Self {
        let rows = self.rows;
        names
            .iter()
            .fold(self, |t, n| t.bool(n, std::iter::repeat_n(value, rows)))
    }

    fn text_all(self, name: &str, value: &str) -> Self {
        let rows = self.rows;
        self.text(name, std::iter::repeat_n(value, rows))
    }

    /// A column of NULLs: what Sluice does not keep (access lists, options, expressions).
    fn null(self, name: &str, ty: Ty) -> Self {
        let data_type = ty.data_type();
        let column = new_null_array(&data_type, self.rows);
        self.column(Field::new(name, data_type, true), column)
    }

    fn finish(self) -> Result<RecordBatch> {
        let schema = Arc::new(Schema::new(self.fields));
        Ok(RecordBatch::try_new(schema, self.columns)?)
    }
}

fn pg_namespace(s: &Snapshot) -> Table {
    let n = &s.namespaces;
    Table::new(n.len())
        .oid("oid", n.iter().map(|n| n.oid))
        .text("nspname", n.iter().map(|n| &n.name))
        .oids_all(&["nspowner"], OWNER_OID)
        .null("nspacl", Ty::Texts)
}

fn pg_class(s: &Snapshot) -> Table {
    let r = &s.relations;
    Table::new(r.len())
        .oid("oid", r.iter().map(|r| r.id.oid))
        .text("relname", r.iter().map(|r| &r.id.name))
        .oid("relnamespace", r.iter().map(|r| r.id.namespace))
        .oids_all(&["reltype", "reloftype"], 0)
        .oids_all(&["relowner"], OWNER_OID)
        .oids_all(&["relam", "relfilenode", "reltablespace"], 0)
        .int4("relpages", r.iter().map(|_| 0))
        .column(
            Field::new("reltuples", DataType::Float32, false),
            Arc::new(Float32Array::from_iter_values(r.iter().map(|_| -1.0))),
        )
        .int4("relallvisible", r.iter().map(|_| 0))
        .oids_all(&["reltoastrelid"], 0)
        .bools_all(&["relhasindex", "relisshared"], false)
        .text_all("relpersistence", "p")
        .text("relkind", r.iter().map(|r| r.kind))
        .int2(
            "relnatts",
            r.iter()
                .map(|r| i16::try_from(r.columns.fields().len()).unwrap_or(i16::MAX)),
        )
        .int2("relchecks", r.iter().map(|_| 0))
        .bools_all(
            &[
                "relhasrules",
                "relhastriggers",
                "relhassubclass",
                "relrowsecurity",
                "relforcerowsecurity",
            ],
            false,
        )
        .bools_all(&["relispopulated"], true)
        // PostgreSQL's replica identity: `d` (default) for tables, `n` (nothing) for views.
        .text(
            "relreplident",
            r.iter().map(|r| if r.kind == "v" { "n" } else { "d" }),
        )
        .bools_all(&["relispartition"], false)
        .oids_all(&["relrewrite"], 0)
        .null("relacl", Ty::Texts)
        .null("reloptions", Ty::Texts)
        .null("relpartbound", Ty::Text)
}

fn pg_attribute(s: &Snapshot) -> Table {
    let columns: Vec<_> = s
        .relations
        .iter()
        .flat_map(|r| {
            r.columns
                .fields()
                .iter()
                .enumerate()
                .map(move |(i, f)| (r, i, f))
        })
        .collect();
    let types: Vec<i32> = columns
        .iter()
        .map(|(_, _, f)| type_oid(f.data_type()))
        .collect();
    Table::new(columns.len())
        .oid("attrelid", columns.iter().map(|(r, _, _)| r.id.oid))
        .text("attname", columns.iter().map(|(_, _, f)| f.name()))
        .oid("atttypid", types.iter().copied())
        .int4("attstattarget", columns.iter().map(|_| -1))
        .int2(
            "attlen",
            types
                .iter()
                .map(|t| TYPES.iter().find(|p| p.oid == *t).map_or(-1, |p| p.length)),
        )
        .int2(
            "attnum",
            columns
                .iter()
                .map(|(_, i, _)| i16::try_from(i + 1).unwrap_or(i16::MAX)),
        )
        .int4("attndims", columns.iter().map(|_| 0))
        .int4(
            "atttypmod",
            columns.iter().map(|(_, _, f)| type_modifier(f.data_type())),
        )
        .bool(
            "attnotnull",
            columns.iter().map(|(r, _, f)| r.is_not_null(f)),
        )
        .bools_all(&["atthasdef", "atthasmissing"], false)
        .text_all("attidentity", "")
        .text_all("attgenerated", "")
        .bools_all(&["attisdropped"], false)
        .bools_all(&["attislocal"], true)
        .int4("attinhcount", columns.iter().map(|_| 0))
        // Sluice compares text bytewise and has no collations.
        .oids_all(&["attcollation"], 0)
        .null("attacl", Ty::Texts)
        .null("attoptions", Ty::Texts)
}

fn pg_type(_: &Snapshot) -> Table {
    Table::new(TYPES.len())
        .oid("oid", TYPES.iter().map(|t| t.oid))
        .text("typname", TYPES.iter().map(|t| t.name))
        .oids_all(&["typnamespace"], PG_CATALOG_OID)
        .oids_all(&["typowner"], OWNER_OID)
        .int2("typlen", TYPES.iter().map(|t| t.length))
        .bool(
            "typbyval",
            TYPES.iter().map(|t| (1..=8).contains(&t.length)),
        )
        .text_all("typtype", "b")
        .text("typcategory", TYPES.iter().map(|t| t.category))
        .bools_all(&["typispreferred"], false)
        .bools_all(&["typisdefined"], true)
        .text_all("typdelim", ",")
        .oids_all(&["typrelid", "typelem"], 0)
        .oid("typarray", TYPES.iter().map(|t| t.array))
        .bools_all(&["typnotnull"], false)
        .oids_all(&["typbasetype"], 0)
        .int4("typtypmod", TYPES.iter().map(|_| -1))
        .int4("typndims", TYPES.iter().map(|_| 0))
        .oids_all(&["typcollation"], 0)
        .null("typdefault", Ty::Text)
        .null("typacl", Ty::Texts)
}

fn pg_database(s: &Snapshot) -> Table {
    Table::new(1)
        .oid("oid", [1])
        .text("datname", [&s.database])
        .oids_all(&["datdba"], OWNER_OID)
        // 6: PostgreSQL's number for UTF8 (see `pg_encoding_to_char`).
        .int4("encoding", [6])
        .text_all("datlocprovider", "c")
        .bools_all(&["datistemplate"], false)
        .bools_all(&["datallowconn"], true)
        .int4("datconnlimit", [-1])
        .oids_all(&["dattablespace"], 0)
        .text_all("datcollate", "C")
        .text_all("datctype", "C")
        .null("daticulocale", Ty::Text)
        .null("datcollversion", Ty::Text)
        .null("datacl", Ty::Texts)
}

fn pg_tables(s: &Snapshot) -> Table {
    let t: Vec<_> = s
        .relations
        .iter()
        .filter(|r| r.kind == "r" && r.id.schema != "information_schema")
        .collect();
    Table::new(t.len())
        .text("schemaname", t.iter().map(|r| &r.id.schema))
        .text("tablename", t.iter().map(|r| &r.id.name))
        .text_all("tableowner", OWNER)
        .null("tablespace", Ty::Text)
        .bools_all(
            &["hasindexes", "hasrules", "hastriggers", "rowsecurity"],
            false,
        )
}

fn pg_views(s: &Snapshot) -> Table {
    let v: Vec<_> = s.relations.iter().filter(|r| r.kind == "v").collect();
    Table::new(v.len())
        .text("schemaname", v.iter().map(|r| &r.id.schema))
        .text("viewname", v.iter().map(|r| &r.id.name))
        .text_all("viewowner", OWNER)
        .null("definition", Ty::Text)
}

fn pg_roles(_: &Snapshot) -> Table {
    Table::new(1)
        .text("rolname", [OWNER])
        .bools_all(
            &[
                "rolsuper",
                "rolinherit",
                "rolcreaterole",
                "rolcreatedb",
                "rolcanlogin",
                "rolreplication",
            ],
            true,
        )
        .int4("rolconnlimit", [-1])
        .text_all("rolpassword", "********")
        .null("rolvaliduntil", Ty::Timestamp)
        .bools_all(&["rolbypassrls"], true)
        .null("rolconfig", Ty::Texts)
        .oid("oid", [OWNER_OID])
}

fn pg_user(_: &Snapshot) -> Table {
    Table::new(1)
        .text("usename", [OWNER])
        .oid("usesysid", [OWNER_OID])
        .bools_all(
            &["usecreatedb", "usesuper", "userepl", "usebypassrls"],
            true,
        )
        .text_all("passwd", "********")
        .null("valuntil", Ty::Timestamp)
        .null("useconfig", Ty::Texts)
}

fn pg_settings(_: &Snapshot) -> Table {
    let s = crate::session::SETTINGS;
    Table::new(s.len())
        .text("name", s.iter().map(|s| s.0))
        .text("setting", s.iter().map(|s| s.1))
        .null("unit", Ty::Text)
        .text_all("context", "user")
        .text_all("vartype", "string")
        .text_all("source", "default")
        .text("boot_val", s.iter().map(|s| s.1))
        .text("reset_val", s.iter().map(|s| s.1))
        .texts_or_null("sourcefile", s.iter().map(|_| None))
        .bools_all(&["pending_restart"], false)
}

const PG_AM: &[(&str, Ty)] = &[
    ("oid", Ty::Oid),
    ("amname", Ty::Text),
    ("amhandler", Ty::Oid),
    ("amtype", Ty::Text),
];
const PG_ATTRDEF: &[(&str, Ty)] = &[
    ("oid", Ty::Oid),
    ("adrelid", Ty::Oid),
    ("adnum", Ty::Int2),
    ("adbin", Ty::Text),
];
const PG_COLLATION: &[(&str, Ty)] = &[
    ("oid", Ty::Oid),
    ("collname", Ty::Text),
    ("collnamespace", Ty::Oid),
    ("collowner", Ty::Oid),
    ("collprovider", Ty::Text),
    ("collisdeterministic", Ty::Bool),
    ("collencoding", Ty::Int4),
    ("collcollate", Ty::Text),
    ("collctype", Ty::Text),
];
const PG_CONSTRAINT: &[(&str, Ty)] = &[
    ("oid", Ty::Oid),
    ("conname", Ty::Text),
    ("connamespace", Ty::Oid),
    ("contype", Ty::Text),
    ("condeferrable", Ty::Bool),
    ("condeferred", Ty::Bool),
    ("convalidated", Ty::Bool),
    ("conrelid", Ty::Oid),
    ("contypid", Ty::Oid),
    ("conindid", Ty::Oid),
    ("conparentid", Ty::Oid),
    ("confrelid", Ty::Oid),
    ("confupdtype", Ty::Text),
    ("confdeltype", Ty::Text),
    ("confmatchtype", Ty::Text),
    ("conislocal", Ty::Bool),
    ("coninhcount", Ty::Int4),
    ("connoinherit", Ty::Bool),
    ("conkey", Ty::Int2s),
    ("confkey", Ty::Int2s),
    ("conbin", Ty::Text),
];
const PG_DESCRIPTION: &[(&str, Ty)] = &[
    ("objoid", Ty::Oid),
    ("classoid", Ty::Oid),
    ("objsubid", Ty::Int4),
    ("description", Ty::Text),
];
const PG_ENUM: &[(&str, Ty)] = &[
    ("oid", Ty::Oid),
    ("enumtypid", Ty::Oid),
    ("enumsortorder", Ty::Float4),
    ("enumlabel", Ty::Text),
];
const PG_INDEX: &[(&str, Ty)] = &[
    ("indexrelid", Ty::Oid),
    ("indrelid", Ty::Oid),
    ("indnatts", Ty::Int2),
    ("indnkeyatts", Ty::Int2),
    ("indisunique", Ty::Bool),
    ("indnullsnotdistinct", Ty::Bool),
    ("indisprimary", Ty::Bool),
    ("indisexclusion", Ty::Bool),
    ("indimmediate", Ty::Bool),
    ("indisclustered", Ty::Bool),
    ("indisvalid", Ty::Bool),
    ("indcheckxmin", Ty::Bool),
    ("indisready", Ty::Bool),
    ("indislive", Ty::Bool),
    ("indisreplident", Ty::Bool),
    ("indkey", Ty::Int2s),
    ("indcollation", Ty::Oids),
    ("indclass", Ty::Oids),
    ("indoption", Ty::Int2s),
    ("indexprs", Ty::Text),
    ("indpred", Ty::Text),
];
const PG_INHERITS: &[(&str, Ty)] = &[
    ("inhrelid", Ty::Oid),
    ("inhparent", Ty::Oid),
    ("inhseqno", Ty::Int4),
    ("inhdetachpending", Ty::Bool),
];
const PG_OPCLASS: &[(&str, Ty)] = &[
    ("oid", Ty::Oid),
    ("opcmethod", Ty::Oid),
    ("opcname", Ty::Text),
    ("opcnamespace", Ty::Oid),
    ("opcowner", Ty::Oid),
    ("opcfamily", Ty::Oid),
    ("opcintype", Ty::Oid),
    ("opcdefault", Ty::Bool),
    ("opckeytype", Ty::Oid),
];
const PG_POLICY: &[(&str, Ty)] = &[
    ("oid", Ty::Oid),
    ("polname", Ty::Text),
    ("polrelid", Ty::Oid),
    ("polcmd", Ty::Text),
    ("polpermissive", Ty::Bool),
    ("polroles", Ty::Oids),
    ("polqual", Ty::Text),
    ("polwithcheck", Ty::Text),
];
const PG_PUBLICATION: &[(&str, Ty)] = &[
    ("oid", Ty::Oid),
    ("pubname", Ty::Text),
    ("pubowner", Ty::Oid),
    ("puballtables", Ty::Bool),
    ("pubinsert", Ty::Bool),
    ("pubupdate", Ty::Bool),
    ("pubdelete", Ty::Bool),
    ("pubtruncate", Ty::Bool),
    ("pubviaroot", Ty::Bool),
];
const PG_PUBLICATION_NAMESPACE: &[(&str, Ty)] =
    &[("oid", Ty::Oid), ("pnpubid", Ty::Oid), ("pnnspid", Ty::Oid)];
const PG_PUBLICATION_REL: &[(&str, Ty)] = &[
    ("oid", Ty::Oid),
    ("prpubid", Ty::Oid),
    ("prrelid", Ty::Oid),
    ("prqual", Ty::Text),
    ("prattrs", Ty::Int2s),
];
const PG_SEQUENCE: &[(&str, Ty)] = &[
    ("seqrelid", Ty::Oid),
    ("seqtypid", Ty::Oid),
    ("seqstart", Ty::Int8),
    ("seqincrement", Ty::Int8),
    ("seqmax", Ty::Int8),
    ("seqmin", Ty::Int8),
    ("seqcache", Ty::Int8),
    ("seqcycle", Ty::Bool),
];
const PG_STATISTIC_EXT: &[(&str, Ty)] = &[
    ("oid", Ty::Oid),
    ("stxrelid", Ty::Oid),
    ("stxname", Ty::Text),
    ("stxnamespace", Ty::Oid),
    ("stxowner", Ty::Oid),
    ("stxstattarget", Ty::Int4),
    ("stxkeys", Ty::Int2s),
    ("stxkind", Ty::Texts),
    ("stxexprs", Ty::Text),
];
const PG_TABLESPACE: &[(&str, Ty)] = &[
    ("oid", Ty::Oid),
    ("spcname", Ty::Text),
    ("spcowner", Ty::Oid),
    ("spcacl", Ty::Texts),
    ("spcoptions", Ty::Texts),
];
const PG_TRIGGER: &[(&str, Ty)] = &[
    ("oid", Ty::Oid),
    ("tgrelid", Ty::Oid),
    ("tgparentid", Ty::Oid),
    ("tgname", Ty::Text),
    ("tgfoid", Ty::Oid),
    ("tgtype", Ty::Int2),
    ("tgenabled", Ty::Text),
    ("tgisinternal", Ty::Bool),
];
