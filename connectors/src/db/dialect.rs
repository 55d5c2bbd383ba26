//! The SQL spellings that differ between PostgreSQL, MySQL/MariaDB and SQLite: quoting,
//! column types, upserts, literals and the exactly-once offsets table.
//!
//! The offsets table, one per database (or per PostgreSQL schema of the target table):
//!
//! ```sql
//! CREATE TABLE sluice_connect_offsets (
//!     pipeline TEXT, sink TEXT, topic TEXT, kafka_partition INT, next_offset BIGINT,
//!     PRIMARY KEY (pipeline, sink, topic, kafka_partition))
//! ```
//!
//! A row holds the next offset a sink will read from one partition; it is written in the
//! transaction that writes the rows before that offset.

use arrow::datatypes::{DataType, Schema, TimeUnit};

use crate::batch::Offsets;
use crate::error::{Error, Result};

/// The name of the exactly-once offsets table.
pub const OFFSETS_TABLE: &str = "sluice_connect_offsets";

/// One of the three SQL dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL and MariaDB.
    Mysql,
    /// SQLite.
    Sqlite,
}

impl Dialect {
    /// The connector type's name.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// A quoted identifier.
    pub fn quote(self, ident: &str) -> String {
        match self {
            Dialect::Mysql => format!("`{}`", ident.replace('`', "``")),
            _ => format!("\"{}\"", ident.replace('"', "\"\"")),
        }
    }

    /// A quoted, possibly schema-qualified table name (`sales.orders`).
    pub fn quote_table(self, table: &str) -> String {
        match table.split_once('.') {
            Some((schema, name)) => format!("{}.{}", self.quote(schema), self.quote(name)),
            None => self.quote(table),
        }
    }

    /// The offsets table, in the schema of `table` if `table` names one.
    pub fn offsets_table(self, table: &str) -> String {
        match table.split_once('.') {
            Some((schema, _)) => format!("{}.{}", self.quote(schema), OFFSETS_TABLE),
            None => OFFSETS_TABLE.to_string(),
        }
    }

    /// A quoted string literal.
    pub fn string_literal(self, text: &str) -> String {
        let escaped = text.replace('\'', "''");
        match self {
            // MySQL reads backslashes as escapes in string literals (by default).
            Dialect::Mysql => format!("'{}'", escaped.replace('\\', "\\\\")),
            _ => format!("'{escaped}'"),
        }
    }

    /// The `n`-th (1-based) bound parameter.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            _ => "?".to_string(),
        }
    }

    /// The column type `CREATE TABLE` uses for a canonical Arrow type (`is_key`: the
    /// column is part of the primary key, which MySQL cannot index as TEXT or BLOB).
    pub fn column_type(self, ty: &DataType, is_key: bool) -> Option<String> {
        let name = match (self, ty) {
            (_, DataType::Boolean) => "BOOLEAN",
            (_, DataType::Int16) => "SMALLINT",
            (Dialect::Mysql | Dialect::Sqlite, DataType::Int32) => "INT",
            (Dialect::Postgres, DataType::Int32) => "INTEGER",
            (_, DataType::Int64) => "BIGINT",
            (Dialect::Postgres, DataType::Float32) => "REAL",
            (_, DataType::Float32) => "FLOAT",
            (Dialect::Postgres, DataType::Float64) => "DOUBLE PRECISION",
            (_, DataType::Float64) => "DOUBLE",
            (Dialect::Postgres, DataType::Decimal128(p, s)) => {
                return Some(format!("NUMERIC({p},{s})"));
            }
            (_, DataType::Decimal128(p, s)) => return Some(format!("DECIMAL({p},{s})")),
            (Dialect::Mysql, DataType::Utf8) if is_key => "VARCHAR(255)",
            (_, DataType::Utf8) => "TEXT",
            (Dialect::Postgres, DataType::Binary) => "BYTEA",
            (Dialect::Mysql, DataType::Binary) if is_key => "VARBINARY(255)",
            (Dialect::Mysql, DataType::Binary) => "LONGBLOB",
            (Dialect::Sqlite, DataType::Binary) => "BLOB",
            (_, DataType::Date32) => "DATE",
            (Dialect::Mysql, DataType::Timestamp(TimeUnit::Microsecond, None)) => "DATETIME(6)",
            (Dialect::Mysql, DataType::Timestamp(TimeUnit::Microsecond, Some(_))) => "TIMESTAMP(6)",
            (_, DataType::Timestamp(TimeUnit::Microsecond, None)) => "TIMESTAMP",
            (_, DataType::Timestamp(TimeUnit::Microsecond, Some(_))) => "TIMESTAMPTZ",
            _ => return None,
        };
        Some(name.to_string())
    }

    /// The Arrow type of a column the database describes: `name` lower-case as the
    /// catalog spells it (`integer`, `character varying`, `tinyint(1)`, `DECIMAL(12,2)`),
    /// with the numeric precision and scale where the catalog gives them apart.
    pub fn arrow_type(
        self,
        name: &str,
        precision: Option<i64>,
        scale: Option<i64>,
    ) -> Option<DataType> {
        let name = name.trim().to_ascii_lowercase();
        let base = name.split('(').next().unwrap_or("").trim();
        let base = base.trim_end_matches(" unsigned");
        let decimal = |p: Option<i64>, s: Option<i64>| match (p, s) {
            (Some(p @ 1..=38), Some(s)) if (0..=p).contains(&s) => {
                Some(DataType::Decimal128(p as u8, s as i8))
            }
            (None, _) => Some(DataType::Decimal128(38, 10)),
            _ => None,
        };
        // Precision and scale written into the type name: `decimal(12,2)`.
        let (name_p, name_s) = match name.split_once('(') {
            Some((_, args)) => {
                let args = args.trim_end_matches(|c| c != ')').trim_end_matches(')');
                let mut parts = args.split(',').map(|a| a.trim().parse::<i64>().ok());
                (
                    parts.next().flatten(),
                    Some(parts.next().flatten().unwrap_or(0)),
                )
            }
            None => (None, None),
        };
        let ts = |tz: bool| DataType::Timestamp(TimeUnit::Microsecond, tz.then(|| "UTC".into()));
        Some(match (self, base) {
            (Dialect::Mysql, "tinyint") if name.starts_with("tinyint(1)") => DataType::Boolean,
            (_, "boolean" | "bool") => DataType::Boolean,
            (_, "smallint" | "int2" | "tinyint") => DataType::Int16,
            (Dialect::Sqlite, "integer") => DataType::Int64,
            (_, "integer" | "int" | "int4" | "mediumint") => DataType::Int32,
            (_, "bigint" | "int8") => DataType::Int64,
            (Dialect::Postgres, "real" | "float4") => DataType::Float32,
            (Dialect::Mysql | Dialect::Sqlite, "float") => DataType::Float32,
            (_, "double precision" | "double" | "float8" | "real" | "float") => DataType::Float64,
            (_, "numeric" | "decimal") => decimal(precision.or(name_p), scale.or(name_s))?,
            (
                _,
                "text" | "varchar" | "character varying" | "char" | "character" | "bpchar"
                | "tinytext" | "mediumtext" | "longtext" | "clob" | "name",
            ) => DataType::Utf8,
            (
                _,
                "bytea" | "blob" | "tinyblob" | "mediumblob" | "longblob" | "binary" | "varbinary",
            ) => DataType::Binary,
            (_, "date") => DataType::Date32,
            (Dialect::Mysql, "datetime") => ts(false),
            (Dialect::Mysql, "timestamp") => ts(true),
            (_, "timestamp" | "timestamp without time zone" | "datetime") => ts(false),
            (_, "timestamptz" | "timestamp with time zone") => ts(true),
            _ => return None,
        })
    }

    /// `CREATE TABLE IF NOT EXISTS` for rows of `schema` (canonical types) with `key` as
    /// the primary key; an error names every column no SQL type holds.
    pub fn create_table(self, table: &str, schema: &Schema, key: &[String]) -> Result<String> {
        let mut columns = Vec::new();
        let mut problems = Vec::new();
        for field in schema.fields() {
            let is_key = key.iter().any(|k| k == field.name());
            match super::types::canonical(field.data_type())
                .and_then(|ty| self.column_type(&ty, is_key))
            {
                Some(ty) => {
                    let null = if field.is_nullable() && !is_key {
                        // MariaDB gives a bare TIMESTAMP column NOT NULL DEFAULT now().
                        if self == Dialect::Mysql { " NULL" } else { "" }
                    } else {
                        " NOT NULL"
                    };
                    columns.push(format!("{} {ty}{null}", self.quote(field.name())));
                }
                None => problems.push(format!(
                    "column `{}` has type {}, which no {} column holds",
                    field.name(),
                    field.data_type(),
                    self.name()
                )),
            }
        }
        for k in key {
            if schema.field_with_name(k).is_err() {
                problems.push(format!("key field `{k}` is not a column of the rows"));
            }
        }
        if !problems.is_empty() {
            return Err(Error::config(problems.join("; ")));
        }
        if !key.is_empty() {
            columns.push(format!("PRIMARY KEY ({})", self.column_list(key)));
        }
        Ok(format!(
            "CREATE TABLE IF NOT EXISTS {} ({})",
            self.quote_table(table),
            columns.join(", ")
        ))
    }

    /// Quoted names, comma-separated.
    pub fn column_list(self, names: &[String]) -> String {
        names
            .iter()
            .map(|n| self.quote(n))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// What follows an `INSERT ... VALUES/SELECT` to make it an upsert on `key`.
    pub fn upsert_clause(self, key: &[String], columns: &[String]) -> String {
        let rest: Vec<&String> = columns.iter().filter(|c| !key.contains(c)).collect();
        match self {
            Dialect::Mysql => {
                let sets: Vec<String> = if rest.is_empty() {
                    key.iter()
                        .take(1)
                        .map(|k| format!("{0} = {0}", self.quote(k)))
                        .collect()
                } else {
                    rest.iter()
                        .map(|c| format!("{0} = VALUES({0})", self.quote(c)))
                        .collect()
                };
                format!(" ON DUPLICATE KEY UPDATE {}", sets.join(", "))
            }
            _ => {
                let target = self.column_list(key);
                if rest.is_empty() {
                    return format!(" ON CONFLICT ({target}) DO NOTHING");
                }
                let sets: Vec<String> = rest
                    .iter()
                    .map(|c| format!("{0} = EXCLUDED.{0}", self.quote(c)))
                    .collect();
                format!(" ON CONFLICT ({target}) DO UPDATE SET {}", sets.join(", "))
            }
        }
    }

    /// `CREATE TABLE IF NOT EXISTS` of the offsets table next to `table`.
    pub fn create_offsets_table(self, table: &str) -> String {
        let text = if self == Dialect::Mysql {
            "VARCHAR(255)"
        } else {
            "TEXT"
        };
        format!(
            "CREATE TABLE IF NOT EXISTS {} (pipeline {text} NOT NULL, sink {text} NOT NULL, \
             topic {text} NOT NULL, kafka_partition INT NOT NULL, next_offset BIGINT NOT NULL, \
             PRIMARY KEY (pipeline, sink, topic, kafka_partition))",
            self.offsets_table(table)
        )
    }

    /// The query reading a sink's stored offsets: parameters pipeline, sink; columns
    /// topic, kafka_partition, next_offset.
    pub fn select_offsets(self, table: &str) -> String {
        format!(
            "SELECT topic, kafka_partition, next_offset FROM {} WHERE pipeline = {} AND sink = {}",
            self.offsets_table(table),
            self.placeholder(1),
            self.placeholder(2)
        )
    }

    /// One statement storing `offsets` (literals: the values are ours, names escaped).
    pub fn upsert_offsets(
        self,
        table: &str,
        pipeline: &str,
        sink: &str,
        offsets: &Offsets,
    ) -> Option<String> {
        if offsets.is_empty() {
            return None;
        }
        let rows: Vec<String> = offsets
            .iter()
            .map(|((topic, partition), next)| {
                format!(
                    "({}, {}, {}, {partition}, {next})",
                    self.string_literal(pipeline),
                    self.string_literal(sink),
                    self.string_literal(topic)
                )
            })
            .collect();
        let key: Vec<String> = ["pipeline", "sink", "topic", "kafka_partition"]
            .map(String::from)
            .into();
        let columns: Vec<String> = key
            .iter()
            .cloned()
            .chain(["next_offset".to_string()])
            .collect();
        Some(format!(
            "INSERT INTO {} (pipeline, sink, topic, kafka_partition, next_offset) VALUES {}{}",
            self.offsets_table(table),
            rows.join(", "),
            self.upsert_clause(&key, &columns)
        ))
    }

    /// `column` (quoted) holds the instant `micros`. SQLite compares timestamps as text, and
    /// the same instant has several spellings (`…01`, `…01.5`, `…01.500000`): they all lie
    /// between the shortest and the longest spelling, and nothing else does.
    pub fn timestamp_equals(self, column: &str, micros: i64) -> String {
        let full = super::types::format_timestamp(micros);
        match self {
            Dialect::Sqlite => {
                let short = full.trim_end_matches('0').trim_end_matches('.');
                format!("{column} BETWEEN '{short}' AND '{full}'")
            }
            _ => format!("{column} = '{full}'"),
        }
    }

    /// A timestamp literal the dialect compares with a timestamp column (UTC sessions).
    pub fn timestamp_literal(self, micros: i64) -> String {
        format!("'{}'", super::types::format_timestamp(micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse_schema;

    #[test]
    fn quoting_escapes_quotes() {
        // Proves identifiers and literals with quote characters cannot break out.
        assert_eq!(Dialect::Postgres.quote_table("s.o\"x"), "\"s\".\"o\"\"x\"");
        assert_eq!(Dialect::Mysql.quote("a`b"), "`a``b`");
        assert_eq!(Dialect::Mysql.string_literal("it's \\"), "'it''s \\\\'");
    }

    #[test]
    fn every_sluice_type_has_a_column_type_that_maps_back() {
        // Proves CREATE TABLE types read back as the Arrow types they were made from.
        let schema = parse_schema(
            "b BOOLEAN, s SMALLINT, i INT, l BIGINT, r REAL, d DOUBLE, n DECIMAL(12,2), \
             t VARCHAR, y BYTEA, dt DATE, ts TIMESTAMP, tz TIMESTAMPTZ",
        )
        .unwrap();
        for dialect in [Dialect::Postgres, Dialect::Mysql, Dialect::Sqlite] {
            for field in schema.fields() {
                let name = dialect.column_type(field.data_type(), false).unwrap();
                let back = dialect.arrow_type(&name, None, None);
                assert_eq!(back.as_ref(), Some(field.data_type()), "{dialect:?} {name}");
            }
        }
    }

    #[test]
    fn create_table_names_unmappable_columns_and_upserts_on_key() {
        // Proves CREATE TABLE carries the key and refuses a list column by name.
        let schema = parse_schema("id BIGINT NOT NULL, name VARCHAR").unwrap();
        let sql = Dialect::Mysql
            .create_table("t", &schema, &["id".into()])
            .unwrap();
        assert!(
            sql.contains("PRIMARY KEY (`id`)") && sql.contains("`name` TEXT NULL"),
            "{sql}"
        );
        let clause = Dialect::Postgres.upsert_clause(&["id".into()], &["id".into(), "name".into()]);
        assert_eq!(
            clause,
            " ON CONFLICT (\"id\") DO UPDATE SET \"name\" = EXCLUDED.\"name\""
        );
        let list = arrow::datatypes::Field::new(
            "tags",
            DataType::List(std::sync::Arc::new(arrow::datatypes::Field::new(
                "x",
                DataType::Int32,
                true,
            ))),
            true,
        );
        let bad = Schema::new(vec![list]);
        let err = Dialect::Sqlite
            .create_table("t", &bad, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`tags`"), "{err}");
    }
}
