//! A topic table's definition — the value stored in the catalog topic — and the Arrow schema
//! it gives: the declared columns (always nullable in Arrow; `NOT NULL` is checked while
//! decoding) followed by the metadata columns every topic table has.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

/// Metadata column: the record key.
pub const KEY_COLUMN: &str = "_key";
/// Metadata column: the partition the record is in.
pub const PARTITION_COLUMN: &str = "_partition";
/// Metadata column: the record's offset in its partition.
pub const OFFSET_COLUMN: &str = "_offset";
/// Metadata column: the record timestamp (ms since the epoch, shown as a TIMESTAMP).
pub const TIMESTAMP_COLUMN: &str = "_timestamp";
/// Metadata column: the record headers, a list of `{key, value}` structs in record order.
pub const HEADERS_COLUMN: &str = "_headers";
/// Every metadata column, in the order they follow the declared columns.
pub const METADATA_COLUMNS: [&str; 5] = [
    KEY_COLUMN,
    PARTITION_COLUMN,
    OFFSET_COLUMN,
    TIMESTAMP_COLUMN,
    HEADERS_COLUMN,
];

/// How a record's value is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per value; columns are looked up by name.
    Json,
    /// One CSV line per value (RFC 4180 quoting); columns by position.
    Csv,
    /// The value as it is, in the single column `value` (VARCHAR or BYTEA).
    Raw,
    /// One Avro binary datum per value, of the record schema in [`TableDef::schema`];
    /// columns by field name.
    Avro,
}

/// What reading does with a record that does not match the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Fail the query with an error naming topic, partition and offset (the default:
    /// a query never silently returns less than the topic holds).
    #[default]
    Fail,
    /// Skip the record.
    Skip,
    /// Keep the record: a field that does not convert is NULL; a value that cannot be
    /// parsed at all gives NULL in every declared column (metadata columns are kept).
    Null,
}

/// The type of `_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyFormat {
    /// VARCHAR; bytes that are not UTF-8 are shown as U+FFFD, as `sluice consume` does.
    #[default]
    String,
    /// BYTEA, the key's bytes as they are.
    Bytes,
}

/// The SQL types a declared column may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// BOOLEAN.
    Boolean,
    /// TINYINT (8-bit).
    TinyInt,
    /// SMALLINT (16-bit).
    SmallInt,
    /// INT / INTEGER (32-bit).
    Int,
    /// BIGINT (64-bit).
    BigInt,
    /// REAL / FLOAT (32-bit float, as DataFusion maps them).
    Real,
    /// DOUBLE (64-bit float).
    Double,
    /// VARCHAR / TEXT / STRING.
    Varchar,
    /// BYTEA / BINARY / VARBINARY / BLOB.
    Bytea,
    /// DATE.
    Date,
    /// TIMESTAMP (without time zone, millisecond precision).
    Timestamp,
}

impl ColumnType {
    /// Parses a SQL type name as sqlparser prints it (`BIGINT`, `VARCHAR(20)`,
    /// `DOUBLE PRECISION`); `None` if it is not supported.
    pub fn from_sql(name: &str) -> Option<Self> {
        let upper = name.trim().to_ascii_uppercase();
        let base = upper.split('(').next().unwrap_or("").trim();
        Some(match base {
            "BOOLEAN" | "BOOL" => Self::Boolean,
            "TINYINT" | "INT1" => Self::TinyInt,
            "SMALLINT" | "INT2" => Self::SmallInt,
            "INT" | "INTEGER" | "INT4" => Self::Int,
            "BIGINT" | "INT8" | "LONG" => Self::BigInt,
            "REAL" | "FLOAT" | "FLOAT4" => Self::Real,
            "DOUBLE" | "DOUBLE PRECISION" | "FLOAT8" | "FLOAT64" => Self::Double,
            "VARCHAR" | "TEXT" | "STRING" | "CHAR" | "CHARACTER" | "CHARACTER VARYING" => {
                Self::Varchar
            }
            "BYTEA" | "BINARY" | "VARBINARY" | "BLOB" | "BYTES" => Self::Bytea,
            "DATE" => Self::Date,
            "TIMESTAMP" | "DATETIME" if !upper.contains("WITH TIME ZONE") => Self::Timestamp,
            _ => return None,
        })
    }

    /// The name the catalog and `DESCRIBE` use.
    pub fn sql_name(self) -> &'static str {
        match self {
            Self::Boolean => "BOOLEAN",
            Self::TinyInt => "TINYINT",
            Self::SmallInt => "SMALLINT",
            Self::Int => "INT",
            Self::BigInt => "BIGINT",
            Self::Real => "REAL",
            Self::Double => "DOUBLE",
            Self::Varchar => "VARCHAR",
            Self::Bytea => "BYTEA",
            Self::Date => "DATE",
            Self::Timestamp => "TIMESTAMP",
        }
    }

    /// The Arrow type columns of this type hold.
    pub fn arrow_type(self) -> DataType {
        match self {
            Self::Boolean => DataType::Boolean,
            Self::TinyInt => DataType::Int8,
            Self::SmallInt => DataType::Int16,
            Self::Int => DataType::Int32,
            Self::BigInt => DataType::Int64,
            Self::Real => DataType::Float32,
            Self::Double => DataType::Float64,
            Self::Varchar => DataType::Utf8,
            Self::Bytea => DataType::Binary,
            Self::Date => DataType::Date32,
            Self::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
        }
    }
}

/// One declared column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Column name (normalised: unquoted names are lower-cased, as DataFusion does).
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// `false` for `NOT NULL`: a record without a value there does not match the table.
    #[serde(default = "default_true")]
    pub nullable: bool,
}

fn default_true() -> bool {
    true
}

/// A topic table: what `CREATE TABLE ... WITH (topic = ...)` defined. Stored as JSON in
/// the catalog topic, so fields added later must have serde defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDef {
    /// Table name (normalised like column names).
    pub name: String,
    /// The topic it reads and writes.
    pub topic: String,
    /// Value format.
    pub format: Format,
    /// Declared columns, in order.
    pub columns: Vec<ColumnDef>,
    /// Event-time column: INSERT takes a row's record timestamp from it when `_timestamp`
    /// is not given. `None`: the record timestamp is the event time.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// What reading does with records that do not match.
    #[serde(default)]
    pub on_error: OnError,
    /// The type of `_key`.
    #[serde(default)]
    pub key_format: KeyFormat,
    /// The Avro schema (JSON text) of an `avro` table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
}

impl TableDef {
    /// The Arrow schema: declared columns, then the metadata columns.
    pub fn schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.ty.arrow_type(), true))
            .collect();
        let key_type = match self.key_format {
            KeyFormat::String => DataType::Utf8,
            KeyFormat::Bytes => DataType::Binary,
        };
        // Metadata columns are nullable so that INSERT may leave them out.
        fields.push(Field::new(KEY_COLUMN, key_type, true));
        fields.push(Field::new(PARTITION_COLUMN, DataType::Int32, true));
        fields.push(Field::new(OFFSET_COLUMN, DataType::Int64, true));
        fields.push(Field::new(
            TIMESTAMP_COLUMN,
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ));
        fields.push(Field::new(HEADERS_COLUMN, headers_type(), true));
        Arc::new(Schema::new(fields))
    }

    /// The index of the event-time column among the declared columns.
    pub fn timestamp_index(&self) -> Option<usize> {
        let name = self.timestamp.as_deref()?;
        self.columns.iter().position(|c| c.name == name)
    }
}

/// The fields of one header: `key` VARCHAR, `value` BYTEA (NULL for Kafka's null value).
/// `key` is nullable in the schema only so that INSERT can cast SQL struct literals (which
/// are always nullable) to it; a NULL key is rejected when the record is written.
pub fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, true),
        Field::new("value", DataType::Binary, true),
    ])
}

/// The type of `_headers`: a list of `{key, value}` structs. A list rather than a map
/// because Kafka allows a key to repeat and keeps header order.
pub fn headers_type() -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(header_fields()),
        true,
    )))
}
