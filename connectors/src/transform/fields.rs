//! The column transforms: rename, drop, select, insert, cast, mask, flatten, timestamp.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, StructArray,
    TimestampMicrosecondArray,
};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, FieldRef, SchemaRef, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::Deserialize;

use super::{Applied, Rejected, Transform, arc_schema};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::schema::{format_schema, parse_type};

fn missing(field: &str, schema: &SchemaRef) -> Error {
    Error::config(format!(
        "no field `{field}` in the rows (they have {})",
        format_schema(schema)
    ))
}

fn index(schema: &SchemaRef, field: &str) -> Result<usize> {
    schema.index_of(field).map_err(|_| missing(field, schema))
}

// ---- rename -------------------------------------------------------------------------

struct Rename {
    map: BTreeMap<String, String>,
}

pub(super) fn rename(settings: &Settings) -> Result<Box<dyn Transform>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        fields: BTreeMap<String, String>,
    }
    let config: Config = settings.parse()?;
    Ok(Box::new(Rename { map: config.fields }))
}

impl Transform for Rename {
    fn schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        for old in self.map.keys() {
            index(input, old)?;
        }
        let fields: Vec<FieldRef> = input
            .fields()
            .iter()
            .map(|f| match self.map.get(f.name()) {
                Some(new) => Arc::new(f.as_ref().clone().with_name(new)),
                None => f.clone(),
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        for f in &fields {
            if !seen.insert(f.name()) {
                return Err(Error::config(format!(
                    "rename: two fields would be named `{}`",
                    f.name()
                )));
            }
        }
        Ok(arc_schema(fields))
    }

    fn apply(&self, rows: RecordBatch) -> Result<Applied, Rejected> {
        let schema = self.schema(&rows.schema())?;
        Ok(RecordBatch::try_new(schema, rows.columns().to_vec())?.into())
    }
}

// ---- drop / select ------------------------------------------------------------------

struct Project {
    fields: Vec<String>,
    keep: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldList {
    fields: Vec<String>,
}

pub(super) fn drop(settings: &Settings) -> Result<Box<dyn Transform>> {
    let config: FieldList = settings.parse()?;
    Ok(Box::new(Project {
        fields: config.fields,
        keep: false,
    }))
}

pub(super) fn select(settings: &Settings) -> Result<Box<dyn Transform>> {
    let config: FieldList = settings.parse()?;
    Ok(Box::new(Project {
        fields: config.fields,
        keep: true,
    }))
}

impl Project {
    fn indices(&self, schema: &SchemaRef) -> Result<Vec<usize>> {
        let named = self
            .fields
            .iter()
            .map(|f| index(schema, f))
            .collect::<Result<Vec<_>>>()?;
        Ok(if self.keep {
            named
        } else {
            (0..schema.fields().len())
                .filter(|i| !named.contains(i))
                .collect()
        })
    }
}

impl Transform for Project {
    fn schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        Ok(Arc::new(input.project(&self.indices(input)?)?))
    }

    fn apply(&self, rows: RecordBatch) -> Result<Applied, Rejected> {
        let indices = self.indices(&rows.schema())?;
        Ok(rows.project(&indices)?.into())
    }
}

// ---- insert ---------------------------------------------------------------------------

struct Insert {
    constants: Vec<(String, toml::Value)>,
    now: Option<String>,
}

pub(super) fn insert(settings: &Settings) -> Result<Box<dyn Transform>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        #[serde(default)]
        fields: toml::Table,
        #[serde(default)]
        now: Option<String>,
    }
    let config: Config = settings.parse()?;
    for (name, value) in &config.fields {
        if !matches!(
            value,
            toml::Value::String(_)
                | toml::Value::Integer(_)
                | toml::Value::Float(_)
                | toml::Value::Boolean(_)
        ) {
            return Err(settings.error(
                Some("fields"),
                format!("insert: `{name}` must be a string, integer, float or boolean"),
            ));
        }
    }
    if config.fields.is_empty() && config.now.is_none() {
        return Err(settings.error(
            None,
            "insert: give `fields = { name = value }` or `now = \"field\"`",
        ));
    }
    Ok(Box::new(Insert {
        constants: config.fields.into_iter().collect(),
        now: config.now,
    }))
}

impl Insert {
    fn new_fields(&self) -> Vec<Field> {
        let mut fields: Vec<Field> = self
            .constants
            .iter()
            .map(|(name, value)| {
                let ty = match value {
                    toml::Value::Integer(_) => DataType::Int64,
                    toml::Value::Float(_) => DataType::Float64,
                    toml::Value::Boolean(_) => DataType::Boolean,
                    _ => DataType::Utf8,
                };
                Field::new(name, ty, false)
            })
            .collect();
        if let Some(now) = &self.now {
            fields.push(Field::new(
                now,
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ));
        }
        fields
    }
}

impl Transform for Insert {
    fn schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let mut fields: Vec<FieldRef> = input.fields().iter().cloned().collect();
        for field in self.new_fields() {
            if input.index_of(field.name()).is_ok() {
                return Err(Error::config(format!(
                    "insert: the rows already have `{}`",
                    field.name()
                )));
            }
            fields.push(Arc::new(field));
        }
        Ok(arc_schema(fields))
    }

    fn apply(&self, rows: RecordBatch) -> Result<Applied, Rejected> {
        let n = rows.num_rows();
        let schema = self.schema(&rows.schema())?;
        let mut columns = rows.columns().to_vec();
        for (_, value) in &self.constants {
            let column: ArrayRef = match value {
                toml::Value::Integer(v) => Arc::new(Int64Array::from(vec![*v; n])),
                toml::Value::Float(v) => Arc::new(Float64Array::from(vec![*v; n])),
                toml::Value::Boolean(v) => Arc::new(BooleanArray::from(vec![*v; n])),
                toml::Value::String(v) => Arc::new(StringArray::from(vec![v.as_str(); n])),
                _ => return Err(Rejected::Batch(Error::config("insert: unsupported value"))),
            };
            columns.push(column);
        }
        if self.now.is_some() {
            let now = chrono::Utc::now().timestamp_micros();
            columns.push(Arc::new(TimestampMicrosecondArray::from(vec![now; n])));
        }
        Ok(RecordBatch::try_new(schema, columns)?.into())
    }
}

// ---- cast ---------------------------------------------------------------------------

struct Cast {
    fields: Vec<(String, DataType)>,
}

pub(super) fn cast(settings: &Settings) -> Result<Box<dyn Transform>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        fields: BTreeMap<String, String>,
    }
    let config: Config = settings.parse()?;
    let fields = config
        .fields
        .into_iter()
        .map(|(name, ty)| {
            Ok((
                name,
                parse_type(&ty).map_err(|e| settings.error(Some("fields"), e))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Box::new(Cast { fields }))
}

impl Transform for Cast {
    fn schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let mut fields: Vec<FieldRef> = input.fields().iter().cloned().collect();
        for (name, ty) in &self.fields {
            let i = index(input, name)?;
            if !arrow::compute::can_cast_types(input.field(i).data_type(), ty) {
                return Err(Error::config(format!(
                    "cast: `{name}` ({}) cannot become {}",
                    input.field(i).data_type(),
                    ty
                )));
            }
            fields[i] = Arc::new(input.field(i).clone().with_data_type(ty.clone()));
        }
        Ok(arc_schema(fields))
    }

    fn apply(&self, rows: RecordBatch) -> Result<Applied, Rejected> {
        let schema = self.schema(&rows.schema())?;
        let mut columns = rows.columns().to_vec();
        let mut bad = Vec::new();
        let options = CastOptions {
            safe: true,
            ..Default::default()
        };
        for (name, ty) in &self.fields {
            let i = index(&rows.schema(), name)?;
            let input = rows.column(i);
            let out = cast_with_options(input, ty, &options)?;
            // `safe` casts give null for values that do not convert: those rows are bad.
            if out.null_count() != input.null_count() {
                let shown = ArrayFormatter::try_new(input.as_ref(), &FormatOptions::default())?;
                for row in 0..rows.num_rows() {
                    if input.is_valid(row) && out.is_null(row) {
                        bad.push((
                            row,
                            format!(
                                "cast: `{name}` value {} is not a valid {}",
                                shown.value(row),
                                crate::schema::type_name(ty)
                            ),
                        ));
                    }
                }
            }
            columns[i] = out;
        }
        if !bad.is_empty() {
            return Err(Rejected::Rows(bad));
        }
        Ok(RecordBatch::try_new(schema, columns)?.into())
    }
}

// ---- mask ---------------------------------------------------------------------------

struct Mask {
    fields: Vec<String>,
    with: String,
    keep_last: usize,
}

pub(super) fn mask(settings: &Settings) -> Result<Box<dyn Transform>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        fields: Vec<String>,
        #[serde(default = "stars")]
        with: String,
        #[serde(default)]
        keep_last: usize,
    }
    fn stars() -> String {
        "****".into()
    }
    let config: Config = settings.parse()?;
    Ok(Box::new(Mask {
        fields: config.fields,
        with: config.with,
        keep_last: config.keep_last,
    }))
}

impl Transform for Mask {
    fn schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        for name in &self.fields {
            let i = index(input, name)?;
            if input.field(i).data_type() != &DataType::Utf8 {
                return Err(Error::config(format!(
                    "mask: `{name}` is {}; mask works on VARCHAR (cast it first)",
                    input.field(i).data_type()
                )));
            }
        }
        Ok(input.clone())
    }

    fn apply(&self, rows: RecordBatch) -> Result<Applied, Rejected> {
        self.schema(&rows.schema())?;
        let mut columns = rows.columns().to_vec();
        for name in &self.fields {
            let i = index(&rows.schema(), name)?;
            let Some(strings) = columns[i].as_any().downcast_ref::<StringArray>() else {
                return Err(Rejected::Batch(Error::config(format!(
                    "mask: `{name}` is not VARCHAR"
                ))));
            };
            let masked: StringArray = strings
                .iter()
                .map(|v| {
                    v.map(|v| {
                        let chars: Vec<char> = v.chars().collect();
                        let keep = self.keep_last.min(chars.len());
                        let tail: String = chars[chars.len() - keep..].iter().collect();
                        format!("{}{tail}", self.with)
                    })
                })
                .collect();
            columns[i] = Arc::new(masked);
        }
        Ok(RecordBatch::try_new(rows.schema(), columns)?.into())
    }
}

// ---- flatten ------------------------------------------------------------------------

struct Flatten {
    separator: String,
}

pub(super) fn flatten(settings: &Settings) -> Result<Box<dyn Transform>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        #[serde(default = "underscore")]
        separator: String,
    }
    fn underscore() -> String {
        "_".into()
    }
    let config: Config = settings.parse()?;
    Ok(Box::new(Flatten {
        separator: config.separator,
    }))
}

impl Flatten {
    fn walk(
        &self,
        prefix: &str,
        field: &FieldRef,
        column: Option<&ArrayRef>,
        out: &mut Vec<(FieldRef, Option<ArrayRef>)>,
    ) {
        let name = if prefix.is_empty() {
            field.name().clone()
        } else {
            format!("{prefix}{}{}", self.separator, field.name())
        };
        match field.data_type() {
            DataType::Struct(children) => {
                let array = column.and_then(|c| c.as_any().downcast_ref::<StructArray>());
                for (i, child) in children.iter().enumerate() {
                    // A null parent makes its children null.
                    let child_column = array.map(|a| {
                        let c = a.column(i).clone();
                        match a.nulls() {
                            Some(parent) if parent.null_count() > 0 => {
                                let merged =
                                    arrow::buffer::NullBuffer::union(Some(parent), c.nulls());
                                arrow::array::make_array(
                                    c.to_data()
                                        .into_builder()
                                        .nulls(merged)
                                        .build()
                                        .unwrap_or_else(|_| c.to_data()),
                                )
                            }
                            _ => c,
                        }
                    });
                    let child = Arc::new(child.as_ref().clone().with_nullable(true));
                    self.walk(&name, &child, child_column.as_ref(), out);
                }
            }
            _ => out.push((
                Arc::new(field.as_ref().clone().with_name(name)),
                column.cloned(),
            )),
        }
    }
}

impl Transform for Flatten {
    fn schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let mut out = Vec::new();
        for field in input.fields() {
            self.walk("", field, None, &mut out);
        }
        Ok(arc_schema(out.into_iter().map(|(f, _)| f).collect()))
    }

    fn apply(&self, rows: RecordBatch) -> Result<Applied, Rejected> {
        let mut out = Vec::new();
        for (field, column) in rows.schema().fields().iter().zip(rows.columns()) {
            self.walk("", field, Some(column), &mut out);
        }
        let (fields, columns): (Vec<_>, Vec<_>) = out.into_iter().unzip();
        let columns = columns
            .into_iter()
            .map(|c| {
                c.ok_or_else(|| Rejected::Batch(Error::config("flatten: a column went missing")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(arc_schema(fields), columns)?.into())
    }
}

// ---- timestamp ----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TimeForm {
    EpochS,
    EpochMs,
    EpochUs,
    String,
    Timestamp,
}

/// Rows a step could not handle: index and why.
type BadRows = Vec<(usize, String)>;

struct Timestamp {
    field: String,
    from: TimeForm,
    to: TimeForm,
    format: Option<String>,
}

pub(super) fn timestamp(settings: &Settings) -> Result<Box<dyn Transform>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        field: String,
        from: TimeForm,
        #[serde(default = "to_timestamp")]
        to: TimeForm,
        #[serde(default)]
        format: Option<String>,
    }
    fn to_timestamp() -> TimeForm {
        TimeForm::Timestamp
    }
    let config: Config = settings.parse()?;
    Ok(Box::new(Timestamp {
        field: config.field,
        from: config.from,
        to: config.to,
        format: config.format,
    }))
}

impl Timestamp {
    fn out_type(&self) -> DataType {
        match self.to {
            TimeForm::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            TimeForm::String => DataType::Utf8,
            _ => DataType::Int64,
        }
    }

    /// Microseconds since the epoch of each value; `Err` rows could not be read.
    fn micros(&self, column: &ArrayRef) -> Result<(Vec<Option<i64>>, BadRows), Rejected> {
        let mut bad = Vec::new();
        let scale = match self.from {
            TimeForm::EpochS => Some(1_000_000),
            TimeForm::EpochMs => Some(1_000),
            TimeForm::EpochUs => Some(1),
            _ => None,
        };
        if let Some(scale) = scale {
            let ints = cast_with_options(column, &DataType::Int64, &CastOptions::default())?;
            let ints = ints
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| Rejected::Batch(Error::config("timestamp: not a number")))?;
            return Ok((
                ints.iter()
                    .map(|v| v.and_then(|v| v.checked_mul(scale)))
                    .collect(),
                bad,
            ));
        }
        if self.from == TimeForm::String
            && let Some(format) = &self.format
        {
            let strings = column
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| {
                    Rejected::Batch(Error::config(format!(
                        "timestamp: `{}` is not VARCHAR",
                        self.field
                    )))
                })?;
            let mut out = Vec::with_capacity(strings.len());
            for (row, v) in strings.iter().enumerate() {
                out.push(match v {
                    None => None,
                    Some(v) => match chrono::NaiveDateTime::parse_from_str(v, format)
                        .or_else(|_| chrono::NaiveDate::parse_from_str(v, format).map(|d| d.and_time(chrono::NaiveTime::MIN)))
                    {
                        Ok(t) => Some(t.and_utc().timestamp_micros()),
                        Err(e) => {
                            bad.push((row, format!("timestamp: `{}` value {v:?} does not match {format:?}: {e}", self.field)));
                            None
                        }
                    },
                });
            }
            return Ok((out, bad));
        }
        // A string without a format (ISO 8601 forms) or a timestamp of any unit.
        let target = DataType::Timestamp(TimeUnit::Microsecond, None);
        let ts = cast_with_options(
            column,
            &target,
            &CastOptions {
                safe: true,
                ..Default::default()
            },
        )?;
        let ts = ts
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| Rejected::Batch(Error::config("timestamp: cast failed")))?;
        for row in 0..ts.len() {
            if column.is_valid(row) && ts.is_null(row) {
                bad.push((
                    row,
                    format!(
                        "timestamp: `{}` holds a value that is not a timestamp (give `format`)",
                        self.field
                    ),
                ));
            }
        }
        Ok((ts.iter().collect(), bad))
    }
}

impl Transform for Timestamp {
    fn schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let i = index(input, &self.field)?;
        let mut fields: Vec<FieldRef> = input.fields().iter().cloned().collect();
        fields[i] = Arc::new(input.field(i).clone().with_data_type(self.out_type()));
        Ok(arc_schema(fields))
    }

    fn apply(&self, rows: RecordBatch) -> Result<Applied, Rejected> {
        let schema = self.schema(&rows.schema())?;
        let i = index(&rows.schema(), &self.field)?;
        let (micros, bad) = self.micros(rows.column(i))?;
        if !bad.is_empty() {
            return Err(Rejected::Rows(bad));
        }
        let out: ArrayRef = match self.to {
            TimeForm::Timestamp => Arc::new(TimestampMicrosecondArray::from(micros)),
            TimeForm::EpochS => Arc::new(Int64Array::from_iter(
                micros.iter().map(|v| v.map(|v| v.div_euclid(1_000_000))),
            )),
            TimeForm::EpochMs => Arc::new(Int64Array::from_iter(
                micros.iter().map(|v| v.map(|v| v.div_euclid(1_000))),
            )),
            TimeForm::EpochUs => Arc::new(Int64Array::from(micros)),
            TimeForm::String => {
                let format = self.format.as_deref().unwrap_or("%Y-%m-%dT%H:%M:%S%.6f");
                Arc::new(StringArray::from_iter(micros.iter().map(|v| {
                    v.and_then(chrono::DateTime::from_timestamp_micros)
                        .map(|t| t.naive_utc().format(format).to_string())
                })))
            }
        };
        let mut columns = rows.columns().to_vec();
        columns[i] = out;
        Ok(RecordBatch::try_new(schema, columns)?.into())
    }
}
