//! Turning the SQL of a topic table — `CREATE TABLE name (columns) WITH (topic = ...)`, as
//! sqlparser parsed it — into a [`TableDef`], with every option checked here so a bad
//! definition never reaches the catalog.

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::ast::{
    self, ColumnOption, CreateTable, CreateTableOptions, Expr, ObjectName, ObjectNamePart,
    SqlOption, Value,
};

use super::table::{ColumnDef, ColumnType, Format, KeyFormat, METADATA_COLUMNS, OnError, TableDef};
use super::topic_schema::{self, SchemaEntry};
use crate::{Error, Result};

/// The options `WITH (...)` accepts; anything else is an error (a typo must not be ignored).
const OPTIONS: [&str; 7] = [
    "topic",
    "format",
    "timestamp",
    "on_error",
    "key_format",
    "partitions",
    "schema",
];

/// What CREATE TABLE asked for beyond the stored definition.
#[derive(Debug)]
pub struct CreateTopicTable {
    /// The definition to store.
    pub def: TableDef,
    /// Partitions of the topic if CREATE TABLE must create it (`partitions`, default 1).
    pub partitions: i32,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// `OR REPLACE`.
    pub or_replace: bool,
}

/// The `WITH (...)` options of a CREATE TABLE, keys lower-cased; empty if there are none.
pub fn with_options(create: &CreateTable) -> BTreeMap<String, String> {
    let options = match &create.table_options {
        CreateTableOptions::With(options) | CreateTableOptions::Options(options) => options,
        _ => return BTreeMap::new(),
    };
    options
        .iter()
        .filter_map(|o| match o {
            SqlOption::KeyValue { key, value } => {
                Some((key.value.to_ascii_lowercase(), option_text(value)))
            }
            _ => None,
        })
        .collect()
}

/// Whether this CREATE TABLE defines a topic table (it has a `topic` option).
pub fn is_topic_table(create: &CreateTable) -> bool {
    with_options(create).contains_key("topic")
}

fn option_text(value: &Expr) -> String {
    match value {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(ident) => ident.value.clone(),
        other => other.to_string(),
    }
}

/// A table or column name as DataFusion resolves it: unquoted names are lower-cased.
pub fn normalize_ident(ident: &ast::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    }
}

/// A one-part table name, normalised; `None` for `schema.table` and other forms.
pub fn table_name(name: &ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => Some(normalize_ident(ident)),
        _ => None,
    }
}

/// The topic a topic-table CREATE TABLE reads, if it names one.
pub fn topic_option(create: &CreateTable) -> Option<String> {
    with_options(create).get("topic").cloned()
}

/// Whether a CREATE TABLE leaves its columns to the topic's schema entry: it declares no
/// columns and no Avro schema.
pub fn takes_schema_entry(create: &CreateTable) -> bool {
    create.columns.is_empty() && !with_options(create).contains_key("schema")
}

/// Checks a topic-table CREATE TABLE and builds its definition. `entry`: the topic's
/// schema entry, which gives a table that declares no columns its columns, its format if
/// it names none, and for `avro` the Avro schema (see `topic_schema`).
pub fn parse_create(create: &CreateTable, entry: Option<&SchemaEntry>) -> Result<CreateTopicTable> {
    let name = table_name(&create.name).ok_or_else(|| Error::InvalidTable {
        table: create.name.to_string(),
        reason: "topic tables live in the default schema: give a plain name".into(),
    })?;
    let invalid = |reason: String| Error::InvalidTable {
        table: name.clone(),
        reason,
    };
    if create.query.is_some() || create.external || create.like.is_some() {
        return Err(invalid(
            "a topic table takes a column list only (no AS SELECT, LIKE or EXTERNAL)".into(),
        ));
    }
    let options = with_options(create);
    if let Some(unknown) = options.keys().find(|k| !OPTIONS.contains(&k.as_str())) {
        return Err(invalid(format!(
            "unknown option {unknown} (the options are {})",
            OPTIONS.join(", ")
        )));
    }
    let topic = options.get("topic").cloned().unwrap_or_default();
    sluice_core::log::validate_topic_name(&topic)
        .map_err(|e| invalid(format!("topic = '{topic}': {e}")))?;
    let entry = entry.filter(|_| create.columns.is_empty() && !options.contains_key("schema"));
    let entry_format = entry
        .map(|e| {
            e.format()
                .map_err(|reason| invalid(format!("the schema entry of topic {topic}: {reason}")))
        })
        .transpose()?;
    let format_option = options
        .get("format")
        .map(|f| f.to_ascii_lowercase())
        .or_else(|| entry.map(|e| e.format.to_ascii_lowercase()));
    let format = match format_option.as_deref() {
        Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some("raw") => Format::Raw,
        Some("avro") => Format::Avro,
        Some(other) => {
            return Err(invalid(format!(
                "unknown format '{other}' (use 'json', 'csv', 'raw' or 'avro')"
            )));
        }
        None => {
            return Err(invalid(format!(
                "the format option is required ('json', 'csv', 'raw' or 'avro'): topic \
                 {topic} has no schema entry to take it from"
            )));
        }
    };
    // The entry describes the records only in its own format.
    let why_no_entry = match entry {
        Some(e) if entry_format != Some(format) => format!(
            "the schema entry of topic {topic} is for format '{}', not this one",
            e.format
        ),
        _ => format!("topic {topic} has no schema entry"),
    };
    let entry = entry.filter(|_| entry_format == Some(format));
    let on_error = match options
        .get("on_error")
        .map(|f| f.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("fail") => OnError::Fail,
        Some("skip") => OnError::Skip,
        Some("null") => OnError::Null,
        Some(other) => {
            return Err(invalid(format!(
                "unknown on_error '{other}' (use 'fail', 'skip' or 'null')"
            )));
        }
    };
    let key_format = match options
        .get("key_format")
        .map(|f| f.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("string") => KeyFormat::String,
        Some("bytes") => KeyFormat::Bytes,
        Some(other) => {
            return Err(invalid(format!(
                "unknown key_format '{other}' (use 'string' or 'bytes')"
            )));
        }
    };
    let partitions = match options.get("partitions") {
        None => 1,
        Some(p) => p
            .parse::<i32>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid(format!("partitions = '{p}' is not a positive number")))?,
    };

    let mut columns = Vec::with_capacity(create.columns.len());
    for column in &create.columns {
        let column_name = normalize_ident(&column.name);
        if METADATA_COLUMNS.contains(&column_name.as_str()) {
            return Err(invalid(format!(
                "column {column_name} is a metadata column every topic table has; rename it"
            )));
        }
        if columns.iter().any(|c: &ColumnDef| c.name == column_name) {
            return Err(invalid(format!("column {column_name} is declared twice")));
        }
        let sql_type = column.data_type.to_string();
        let ty = ColumnType::from_sql(&sql_type).ok_or_else(|| {
            invalid(format!(
                "column {column_name}: type {sql_type} is not supported (use BOOLEAN, \
                 TINYINT, SMALLINT, INT, BIGINT, REAL, DOUBLE, VARCHAR, BYTEA, DATE or TIMESTAMP)"
            ))
        })?;
        let nullable = !column
            .options
            .iter()
            .any(|o| matches!(o.option, ColumnOption::NotNull));
        columns.push(ColumnDef {
            name: column_name,
            ty,
            nullable,
        });
    }
    if !create.constraints.is_empty() {
        return Err(invalid(
            "table constraints are not supported on topic tables".into(),
        ));
    }
    let mut schema = options.get("schema").cloned();
    if let Some(entry) = entry {
        columns = entry
            .columns()
            .map_err(|reason| invalid(format!("the schema entry of topic {topic}: {reason}")))?;
        if format == Format::Avro {
            schema = Some(topic_schema::avro_schema(&columns).map_err(|reason| {
                invalid(format!("the schema entry of topic {topic}: {reason}"))
            })?);
        }
    }
    match format {
        Format::Raw => {
            if columns.is_empty() {
                columns.push(ColumnDef {
                    name: "value".into(),
                    ty: ColumnType::Varchar,
                    nullable: true,
                });
            }
            let ok = matches!(columns.as_slice(), [c] if c.name == "value"
                && matches!(c.ty, ColumnType::Varchar | ColumnType::Bytea));
            if !ok {
                return Err(invalid(
                    "a raw table has one column, value VARCHAR or value BYTEA".into(),
                ));
            }
        }
        Format::Json | Format::Csv if columns.is_empty() => {
            return Err(invalid(format!(
                "{why_no_entry}: declare the columns, CREATE TABLE {name} (id BIGINT, ...) \
                 WITH (...)"
            )));
        }
        _ => {}
    }
    match (format, &schema) {
        (Format::Avro, None) => {
            return Err(invalid(format!(
                "{why_no_entry}: an avro table needs its record schema, \
                 WITH (schema = '{{\"type\": \"record\", ...}}')"
            )));
        }
        (Format::Avro, Some(text)) => {
            let parsed = crate::format::avro::parse_schema(text).map_err(&invalid)?;
            if columns.is_empty() {
                columns = crate::format::avro::columns_from_schema(&parsed).map_err(&invalid)?;
            } else if let Some(c) = columns
                .iter()
                .find(|c| !crate::format::avro::has_field(&parsed, &c.name))
            {
                return Err(invalid(format!(
                    "column {} is not a field of the Avro schema",
                    c.name
                )));
            }
        }
        (_, Some(_)) => {
            return Err(invalid(
                "the schema option is for format 'avro' only".into(),
            ));
        }
        (_, None) => {}
    }
    let timestamp = match options.get("timestamp") {
        None => None,
        Some(t) => {
            let t = t.to_ascii_lowercase();
            let column = columns
                .iter()
                .find(|c| c.name == t)
                .ok_or_else(|| invalid(format!("timestamp = '{t}' names no declared column")))?;
            if column.ty != ColumnType::Timestamp {
                return Err(invalid(format!(
                    "timestamp column {t} must be a TIMESTAMP, not {}",
                    column.ty.sql_name()
                )));
            }
            Some(t)
        }
    };
    Ok(CreateTopicTable {
        def: TableDef {
            name,
            topic,
            format,
            columns,
            timestamp,
            on_error,
            key_format,
            schema,
        },
        partitions,
        if_not_exists: create.if_not_exists,
        or_replace: create.or_replace,
    })
}
