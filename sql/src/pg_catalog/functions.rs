//! The PostgreSQL functions catalog queries call, answered from the session's catalogs:
//!
//! | function | answer |
//! |---|---|
//! | `pg_table_is_visible(oid)` | whether an unqualified name finds the table |
//! | `pg_type_is_visible(oid)` | true for the types in `pg_type` |
//! | `format_type(oid, typmod)` | the type's SQL name: `bigint`, `character varying`, `numeric(10,2)` |
//! | `pg_get_userbyid(oid)` | `sluice` for the one role (10) |
//! | `pg_encoding_to_char(int)` | `UTF8` for 6, the one encoding |
//! | `current_setting(name)` | what `SHOW name` answers (see `session`) |
//! | `pg_table_size(oid)`, `pg_relation_size`, `pg_total_relation_size` | bytes on disk: a topic table's segments, 0 for what is in memory |
//! | `pg_size_pretty(bigint)` | `10 kB`, `977 kB`, `3 MB` |
//! | `version()` | `PostgreSQL 15.0 (Sluice ..., Apache DataFusion ...)` |
//! | `has_table_privilege`, `has_schema_privilege`, `has_database_privilege` | true: no access control |
//! | `pg_relation_is_publishable(oid)` | false: no publications |
//! | `pg_get_expr`, `pg_get_constraintdef`, `pg_get_indexdef`, `pg_get_statisticsobjdef_columns`, `pg_get_serial_sequence`, `obj_description`, `col_description`, `shobj_description` | NULL: Sluice keeps no expressions, constraints, indexes, statistics, sequences or comments |
//! | `pg_collation_is_visible(oid)` | NULL: no collations |
//! | `regclass(x)`, `regtype(x)`, `regnamespace(x)` | what `x::regclass` (...) becomes (see `rewrite`): an id gives the name, a name the id |
//! | `to_regclass(text)`, `to_regtype(text)` | the id, NULL for an unknown name |
//!
//! `regclass('orders')` finds the table the way an unqualified name does (`pg_catalog`,
//! then the default schema) and fails for an unknown one, like PostgreSQL's cast.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, Int64Array, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use super::{OWNER, OWNER_OID, Objects};

/// `text`'s type id, what a column without a closer PostgreSQL type is sent as.
pub(super) const TEXT_OID: i32 = 25;

/// A type `pg_type` lists.
#[derive(Debug)]
pub(super) struct PgType {
    pub(super) oid: i32,
    /// `typname`.
    pub(super) name: &'static str,
    /// What `format_type` answers.
    sql_name: &'static str,
    /// `typlen`: bytes, or -1 for variable length.
    pub(super) length: i16,
    /// `typcategory`.
    pub(super) category: &'static str,
    /// `typarray`: the id of the array type.
    pub(super) array: i32,
}

const fn ty(
    oid: i32,
    name: &'static str,
    sql_name: &'static str,
    length: i16,
    category: &'static str,
    array: i32,
) -> PgType {
    PgType {
        oid,
        name,
        sql_name,
        length,
        category,
        array,
    }
}

/// PostgreSQL's ids and names for the types results and catalog columns have.
pub(super) const TYPES: &[PgType] = &[
    ty(16, "bool", "boolean", 1, "B", 1000),
    ty(17, "bytea", "bytea", -1, "U", 1001),
    ty(18, "char", "\"char\"", 1, "Z", 1002),
    ty(19, "name", "name", 64, "S", 1003),
    ty(20, "int8", "bigint", 8, "N", 1016),
    ty(21, "int2", "smallint", 2, "N", 1005),
    ty(23, "int4", "integer", 4, "N", 1007),
    ty(TEXT_OID, "text", "text", -1, "S", 1009),
    ty(26, "oid", "oid", 4, "N", 1028),
    ty(700, "float4", "real", 4, "N", 1021),
    ty(701, "float8", "double precision", 8, "N", 1022),
    ty(1043, "varchar", "character varying", -1, "S", 1015),
    ty(1082, "date", "date", 4, "D", 1182),
    ty(
        1114,
        "timestamp",
        "timestamp without time zone",
        8,
        "D",
        1115,
    ),
    ty(
        1184,
        "timestamptz",
        "timestamp with time zone",
        8,
        "D",
        1185,
    ),
    ty(1700, "numeric", "numeric", -1, "N", 1231),
];

const NUMERIC_OID: i32 = 1700;
const VARCHAR_OID: i32 = 1043;

/// PostgreSQL's type modifier of a column of this type (`atttypmod`): precision and scale
/// for a decimal, -1 (none) for the rest.
pub(super) fn type_modifier(t: &DataType) -> i32 {
    match t {
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            ((i32::from(*p) << 16) | (i32::from(*s) & 0xffff)) + 4
        }
        _ => -1,
    }
}

/// `format_type(oid, typmod)`.
fn format_type(oid: i64, typmod: Option<i64>) -> String {
    if oid == 0 {
        return "-".into();
    }
    let Some(t) = TYPES.iter().find(|t| i64::from(t.oid) == oid) else {
        return "???".into();
    };
    match (t.oid, typmod) {
        (NUMERIC_OID, Some(m)) if m >= 4 => {
            let m = m - 4;
            format!("numeric({},{})", (m >> 16) & 0xffff, m & 0xffff)
        }
        (VARCHAR_OID, Some(m)) if m >= 4 => format!("character varying({})", m - 4),
        _ => t.sql_name.into(),
    }
}

/// `pg_size_pretty`: bytes below 10 kB, then the largest unit that keeps the number
/// under 20480 halves, rounded half away from zero (PostgreSQL's rule).
fn size_pretty(bytes: i64) -> String {
    const LIMIT: i64 = 10 * 1024;
    if bytes.abs() < LIMIT {
        return format!("{bytes} bytes");
    }
    // One extra bit for rounding.
    let mut halves = bytes >> 9;
    let units = ["kB", "MB", "GB", "TB", "PB"];
    for (i, unit) in units.iter().enumerate() {
        if halves.abs() < 2 * LIMIT - 1 || i == units.len() - 1 {
            let rounded = (halves + halves.signum()) / 2;
            return format!("{rounded} {unit}");
        }
        halves >>= 10;
    }
    format!("{bytes} bytes")
}

/// What each function computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    TableIsVisible,
    TypeIsVisible,
    FormatType,
    UserById,
    EncodingToChar,
    Version,
    /// Always true: no access control.
    Granted,
    /// Always false: no publications.
    NotPublishable,
    /// Always NULL text: Sluice keeps none of what it describes.
    NoText,
    /// Always NULL (PostgreSQL's answer for an unknown id): there are no collations.
    NoCollation,
    Regclass,
    Regtype,
    Regnamespace,
    /// `current_setting(name [, missing_ok])`: what `SHOW name` answers.
    CurrentSetting,
    /// `pg_table_size(oid)` and its kin: bytes on disk (no indexes, no TOAST here).
    TableSize,
    /// `pg_size_pretty(bigint)`: `10 kB`, `3 MB`, as PostgreSQL rounds.
    SizePretty,
    /// `to_regclass(text)`: the id, NULL for an unknown name.
    ToRegclass,
    ToRegtype,
}

/// Registers every function of the module docs on `ctx`.
pub(super) fn register(ctx: &SessionContext, objects: &Arc<Objects>) {
    use Kind::*;
    let functions: &[(&str, Kind, &[usize])] = &[
        ("pg_table_is_visible", TableIsVisible, &[1]),
        ("pg_type_is_visible", TypeIsVisible, &[1]),
        ("format_type", FormatType, &[2]),
        ("pg_get_userbyid", UserById, &[1]),
        ("pg_encoding_to_char", EncodingToChar, &[1]),
        ("version", Version, &[0]),
        ("has_table_privilege", Granted, &[2, 3]),
        ("has_schema_privilege", Granted, &[2, 3]),
        ("has_database_privilege", Granted, &[2, 3]),
        ("pg_relation_is_publishable", NotPublishable, &[1]),
        ("pg_get_expr", NoText, &[2, 3]),
        ("pg_get_constraintdef", NoText, &[1, 2]),
        ("pg_get_indexdef", NoText, &[1, 3]),
        ("pg_get_statisticsobjdef_columns", NoText, &[1]),
        ("obj_description", NoText, &[1, 2]),
        ("col_description", NoText, &[2]),
        ("shobj_description", NoText, &[2]),
        ("pg_get_serial_sequence", NoText, &[2]),
        ("pg_collation_is_visible", NoCollation, &[1]),
        ("regclass", Regclass, &[1]),
        ("regtype", Regtype, &[1]),
        ("regnamespace", Regnamespace, &[1]),
        ("current_setting", CurrentSetting, &[1, 2]),
        ("pg_table_size", TableSize, &[1]),
        ("pg_relation_size", TableSize, &[1, 2]),
        ("pg_total_relation_size", TableSize, &[1]),
        ("pg_size_pretty", SizePretty, &[1]),
        ("to_regclass", ToRegclass, &[1]),
        ("to_regtype", ToRegtype, &[1]),
    ];
    for (name, kind, arities) in functions {
        let signature = match arities {
            _ if matches!(kind, ToRegclass | ToRegtype) => Signature::string(1, Volatility::Stable),
            [0] => Signature::nullary(Volatility::Stable),
            _ => Signature::one_of(
                arities.iter().map(|n| TypeSignature::Any(*n)).collect(),
                Volatility::Stable,
            ),
        };
        ctx.register_udf(ScalarUDF::new_from_impl(PgFunction {
            name,
            kind: *kind,
            signature,
            objects: Arc::clone(objects),
        }));
    }
}

/// One of the functions of the module docs.
#[derive(Debug)]
struct PgFunction {
    name: &'static str,
    kind: Kind,
    signature: Signature,
    objects: Arc<Objects>,
}

impl PartialEq for PgFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.objects, &other.objects)
    }
}

impl Eq for PgFunction {}

impl std::hash::Hash for PgFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// An argument as ids (NULL where it is NULL or not a number).
fn ids(column: &ArrayRef) -> Result<Vec<Option<i64>>> {
    let column = cast(column, &DataType::Int64)?;
    Ok(column.as_primitive::<Int64Type>().iter().collect())
}

/// An argument as text.
fn texts(column: &ArrayRef) -> Result<Vec<Option<String>>> {
    let column = cast(column, &DataType::Utf8)?;
    Ok(column
        .as_string::<i32>()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect())
}

/// A name as an unqualified or qualified PostgreSQL identifier says it: `"Mixed"` keeps
/// its case, anything else is lower-cased.
fn identifier_parts(name: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = name.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut current)),
            c if quoted => current.push(c),
            c => current.extend(c.to_lowercase()),
        }
    }
    parts.push(current);
    parts
}

impl PgFunction {
    /// `regclass(x)`; `strict`: an unknown name is an error (the cast), not NULL
    /// (`to_regclass`).
    fn regclass(&self, column: &ArrayRef, strict: bool) -> Result<ArrayRef> {
        let relations = self.objects.relation_names()?;
        if is_text(column.data_type()) {
            let mut out = Vec::with_capacity(column.len());
            for name in texts(column)? {
                let Some(name) = name else {
                    out.push(None);
                    continue;
                };
                let parts = identifier_parts(&name);
                let found = match parts.as_slice() {
                    [table] => relations
                        .iter()
                        .find(|r| &r.name == table && self.objects.is_visible(r)),
                    [schema, table] => relations
                        .iter()
                        .find(|r| &r.schema == schema && &r.name == table),
                    _ => None,
                };
                match found {
                    Some(relation) => out.push(Some(relation.oid)),
                    None if strict => {
                        return Err(DataFusionError::Execution(format!(
                            "relation \"{name}\" does not exist"
                        )));
                    }
                    None => out.push(None),
                }
            }
            return Ok(Arc::new(Int32Array::from(out)));
        }
        let names: StringArray = ids(column)?
            .into_iter()
            .map(|id| {
                let id = id?;
                Some(match relations.iter().find(|r| i64::from(r.oid) == id) {
                    Some(r) if self.objects.is_visible(r) => r.name.clone(),
                    Some(r) => format!("{}.{}", r.schema, r.name),
                    None => id.to_string(),
                })
            })
            .collect();
        Ok(Arc::new(names))
    }

    fn regnamespace(&self, column: &ArrayRef) -> Result<ArrayRef> {
        let namespaces = self.objects.namespaces()?;
        if is_text(column.data_type()) {
            let mut out = Vec::with_capacity(column.len());
            for name in texts(column)? {
                let Some(name) = name else {
                    out.push(None);
                    continue;
                };
                let wanted = identifier_parts(&name).join(".");
                let namespace = namespaces
                    .iter()
                    .find(|n| n.name == wanted)
                    .ok_or_else(|| {
                        DataFusionError::Execution(format!("schema \"{name}\" does not exist"))
                    })?;
                out.push(Some(namespace.oid));
            }
            return Ok(Arc::new(Int32Array::from(out)));
        }
        let names: StringArray = ids(column)?
            .into_iter()
            .map(|id| {
                let id = id?;
                Some(
                    namespaces
                        .iter()
                        .find(|n| i64::from(n.oid) == id)
                        .map_or_else(|| id.to_string(), |n| n.name.clone()),
                )
            })
            .collect();
        Ok(Arc::new(names))
    }

    /// `regtype(x)`; `strict` as for [`regclass`](Self::regclass).
    fn regtype(column: &ArrayRef, strict: bool) -> Result<ArrayRef> {
        if is_text(column.data_type()) {
            let mut out = Vec::with_capacity(column.len());
            for name in texts(column)? {
                let Some(name) = name else {
                    out.push(None);
                    continue;
                };
                let wanted = name.trim().to_lowercase();
                let wanted = wanted.strip_prefix("pg_catalog.").unwrap_or(&wanted);
                match TYPES
                    .iter()
                    .find(|t| t.name == wanted || t.sql_name == wanted)
                {
                    Some(t) => out.push(Some(t.oid)),
                    None if strict => {
                        return Err(DataFusionError::Execution(format!(
                            "type \"{name}\" does not exist"
                        )));
                    }
                    None => out.push(None),
                }
            }
            return Ok(Arc::new(Int32Array::from(out)));
        }
        let names: StringArray = ids(column)?
            .into_iter()
            .map(|id| {
                let id = id?;
                Some(match TYPES.iter().find(|t| i64::from(t.oid) == id) {
                    Some(t) => t.sql_name.to_string(),
                    None => id.to_string(),
                })
            })
            .collect();
        Ok(Arc::new(names))
    }
}

impl ScalarUDFImpl for PgFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::TableIsVisible
            | Kind::TypeIsVisible
            | Kind::Granted
            | Kind::NotPublishable
            | Kind::NoCollation => DataType::Boolean,
            Kind::Regclass | Kind::Regtype | Kind::Regnamespace
                if args.first().is_some_and(is_text) =>
            {
                DataType::Int32
            }
            Kind::ToRegclass | Kind::ToRegtype => DataType::Int32,
            Kind::TableSize => DataType::Int64,
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let columns = ColumnarValue::values_to_arrays(&args.args)?;
        let first = columns.first();
        let column = |i: usize| {
            columns.get(i).ok_or_else(|| {
                DataFusionError::Internal(format!("{}: argument {} missing", self.name, i + 1))
            })
        };
        let result: ArrayRef = match self.kind {
            Kind::Version => {
                let version = format!(
                    "PostgreSQL 15.0 (Sluice {}, Apache DataFusion {})",
                    env!("CARGO_PKG_VERSION"),
                    datafusion::DATAFUSION_VERSION
                );
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                    version, rows,
                )))
            }
            Kind::Granted | Kind::NotPublishable => {
                let value = self.kind == Kind::Granted;
                Arc::new(BooleanArray::from(vec![value; rows]))
            }
            Kind::NoText => Arc::new(StringArray::from(vec![None::<&str>; rows])),
            Kind::NoCollation => Arc::new(BooleanArray::from(vec![None; rows])),
            Kind::TableIsVisible => {
                let relations = self.objects.relation_names()?;
                let visible: BooleanArray = ids(column(0)?)?
                    .into_iter()
                    .map(|id| {
                        let id = id?;
                        let relation = relations.iter().find(|r| i64::from(r.oid) == id)?;
                        Some(self.objects.is_visible(relation))
                    })
                    .collect();
                Arc::new(visible)
            }
            Kind::TypeIsVisible => {
                let visible: BooleanArray = ids(column(0)?)?
                    .into_iter()
                    .map(|id| {
                        TYPES
                            .iter()
                            .any(|t| Some(i64::from(t.oid)) == id)
                            .then_some(true)
                    })
                    .collect();
                Arc::new(visible)
            }
            Kind::FormatType => {
                let modifiers = ids(column(1)?)?;
                let names: StringArray = ids(column(0)?)?
                    .into_iter()
                    .zip(modifiers)
                    .map(|(oid, typmod)| Some(format_type(oid?, typmod)))
                    .collect();
                Arc::new(names)
            }
            Kind::UserById => {
                let names: StringArray = ids(column(0)?)?
                    .into_iter()
                    .map(|id| {
                        let id = id?;
                        Some(if id == i64::from(OWNER_OID) {
                            OWNER.to_string()
                        } else {
                            format!("unknown (OID={id})")
                        })
                    })
                    .collect();
                Arc::new(names)
            }
            Kind::EncodingToChar => {
                let names: StringArray = ids(column(0)?)?
                    .into_iter()
                    .map(|id| Some(if id? == 6 { "UTF8" } else { "" }))
                    .collect();
                Arc::new(names)
            }
            Kind::CurrentSetting => {
                let missing_ok = match columns.get(1) {
                    Some(c) => cast(c, &DataType::Boolean)?
                        .as_boolean()
                        .iter()
                        .map(|b| b.unwrap_or(false))
                        .collect(),
                    None => vec![false; rows],
                };
                let mut values = Vec::with_capacity(rows);
                for (name, missing_ok) in texts(column(0)?)?.into_iter().zip(missing_ok) {
                    let Some(name) = name else {
                        values.push(None);
                        continue;
                    };
                    match crate::session::setting(&name) {
                        Some(value) => values.push(Some(value)),
                        None if missing_ok => values.push(None),
                        None => {
                            return Err(DataFusionError::Execution(format!(
                                "unrecognized configuration parameter \"{name}\""
                            )));
                        }
                    }
                }
                Arc::new(StringArray::from(values))
            }
            Kind::TableSize => {
                let mut sizes = Vec::with_capacity(rows);
                for oid in ids(column(0)?)? {
                    sizes.push(match oid {
                        Some(oid) => self.objects.size_bytes(oid)?,
                        None => None,
                    });
                }
                Arc::new(Int64Array::from(sizes))
            }
            Kind::SizePretty => {
                let pretty: StringArray = ids(column(0)?)?
                    .into_iter()
                    .map(|bytes| bytes.map(size_pretty))
                    .collect();
                Arc::new(pretty)
            }
            Kind::Regclass => self.regclass(column(0)?, true)?,
            Kind::ToRegclass => self.regclass(column(0)?, false)?,
            Kind::Regtype => Self::regtype(column(0)?, true)?,
            Kind::ToRegtype => Self::regtype(column(0)?, false)?,
            Kind::Regnamespace => self.regnamespace(column(0)?)?,
        };
        debug_assert!(first.is_none_or(|c| c.len() == result.len()));
        Ok(ColumnarValue::Array(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `format_type` names types the way PostgreSQL does, modifiers included.
    #[test]
    fn format_type_names_like_postgresql() {
        assert_eq!(format_type(20, Some(-1)), "bigint");
        assert_eq!(format_type(1043, Some(-1)), "character varying");
        assert_eq!(format_type(1043, Some(14)), "character varying(10)");
        let typmod = type_modifier(&DataType::Decimal128(10, 2));
        assert_eq!(format_type(1700, Some(i64::from(typmod))), "numeric(10,2)");
        assert_eq!(format_type(1114, None), "timestamp without time zone");
        assert_eq!(format_type(0, None), "-");
        assert_eq!(format_type(424_242, None), "???");
    }

    /// Sizes print as PostgreSQL prints them.
    #[test]
    fn sizes_print_like_postgresql() {
        assert_eq!(size_pretty(123), "123 bytes");
        assert_eq!(size_pretty(10_239), "10239 bytes");
        assert_eq!(size_pretty(10_240), "10 kB");
        assert_eq!(size_pretty(1_000_000), "977 kB");
        assert_eq!(size_pretty(10 * 1024 * 1024), "10 MB");
        assert_eq!(size_pretty(-10_240), "-10 kB");
    }

    /// Qualified and quoted names split like PostgreSQL identifiers.
    #[test]
    fn identifiers_split_and_fold() {
        assert_eq!(identifier_parts("Orders"), ["orders"]);
        assert_eq!(
            identifier_parts("public.\"Mixed.Case\""),
            ["public", "Mixed.Case"]
        );
        assert_eq!(identifier_parts("\"a\"\"b\""), ["a\"b"]);
    }
}
