//! One JSON value as a field of a declared column: [`FieldOf`] takes every JSON value and
//! converts it to the column's type, a value of the wrong type being [`Field::Bad`] (never
//! a parse error). The object reader hands values to it as a serde `Visitor`, its fast path
//! through the same conversions as plain methods (`bool`, `u64`, `int`, `f64`, `str`,
//! which the visitor calls), so there is one set of conversion rules (see the parent
//! module for them).

use std::fmt::{self, Write as _};

use datafusion::arrow::compute::kernels::cast_utils::Parser;
use datafusion::arrow::datatypes::Date32Type;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::catalog::ColumnType;
use crate::format::cell::{Cell, Field, int_cell, mismatch, parse_timestamp_ms};

/// One JSON value as a field of a column of type `ty`. Accepts every JSON value (a value
/// of the wrong type is [`Field::Bad`], not an error), so the only errors it returns are
/// the parser's.
pub(crate) struct FieldOf<'a> {
    pub(crate) ty: ColumnType,
    /// Keep VARCHAR/BYTEA text in `text` (else a valid string is only [`Field::Checked`]).
    pub(crate) keep: bool,
    pub(crate) text: &'a mut String,
}

impl FieldOf<'_> {
    /// `s` as the field of a VARCHAR or BYTEA column.
    #[inline]
    fn text(self, s: &str) -> Field {
        if !self.keep {
            return Field::Checked;
        }
        let start = self.text.len();
        self.text.push_str(s);
        Field::Text(start..self.text.len())
    }

    /// A non-string value as VARCHAR text, or a mismatch naming it.
    #[cold]
    fn text_or_bad(self, json: impl fmt::Display) -> Field {
        if self.ty != ColumnType::Varchar {
            return Field::Bad(mismatch(self.ty, &json.to_string()));
        }
        if !self.keep {
            return Field::Checked;
        }
        let start = self.text.len();
        // Writing into a `String` cannot fail.
        let _ = write!(self.text, "{json}");
        Field::Text(start..self.text.len())
    }

    /// Whether any valid string gives [`Field::Checked`] (a text column the query does not
    /// read), so a reader need not even make it a `&str`.
    #[inline]
    pub(super) fn checks_text_only(&self) -> bool {
        !self.keep && matches!(self.ty, ColumnType::Varchar | ColumnType::Bytea)
    }

    /// A JSON boolean.
    #[inline]
    pub(super) fn bool(self, v: bool) -> Field {
        match self.ty {
            ColumnType::Boolean => Field::Cell(Cell::Bool(v)),
            _ => self.text_or_bad(v),
        }
    }

    /// A non-negative JSON integer.
    #[inline]
    pub(super) fn u64(self, v: u64) -> Field {
        if let Ok(v) = i64::try_from(v) {
            return self.int(v);
        }
        match self.ty {
            ColumnType::Real => Field::Cell(Cell::F32(v as f64 as f32)),
            ColumnType::Double => Field::Cell(Cell::F64(v as f64)),
            _ => self.text_or_bad(v),
        }
    }

    /// A JSON number that is not an integer (or `-0`).
    #[inline]
    pub(super) fn f64(self, v: f64) -> Field {
        match self.ty {
            ColumnType::Real => Field::Cell(Cell::F32(v as f32)),
            ColumnType::Double => Field::Cell(Cell::F64(v)),
            // serde_json's text for the number (`2.0`, `1e300`), as a parsed value prints.
            _ => self.text_or_bad(Value::from(v)),
        }
    }

    /// A JSON string.
    #[inline]
    pub(super) fn str(self, s: &str) -> Field {
        let ty = self.ty;
        let cell = match ty {
            ColumnType::Varchar | ColumnType::Bytea => return self.text(s),
            ColumnType::Date => Date32Type::parse(s.trim()).map(Cell::Date),
            ColumnType::Timestamp => parse_timestamp_ms(s).map(Cell::TimestampMs),
            _ => None,
        };
        cell.map_or_else(
            || Field::Bad(mismatch(ty, &Value::from(s).to_string())),
            Field::Cell,
        )
    }

    /// A JSON integer.
    #[inline]
    pub(super) fn int(self, v: i64) -> Field {
        let cell = match self.ty {
            ColumnType::TinyInt | ColumnType::SmallInt | ColumnType::Int | ColumnType::BigInt => {
                int_cell(self.ty, v)
            }
            // Through f64 first, as any JSON number is read for a float column.
            ColumnType::Real => Some(Cell::F32(v as f64 as f32)),
            ColumnType::Double => Some(Cell::F64(v as f64)),
            ColumnType::Timestamp => Some(Cell::TimestampMs(v)),
            _ => return self.text_or_bad(v),
        };
        cell.map_or_else(
            || Field::Bad(mismatch(self.ty, &v.to_string())),
            Field::Cell,
        )
    }

    /// A structured value (array or object): only VARCHAR takes it, as its JSON text.
    fn structured(self, value: Value) -> Field {
        self.text_or_bad(value)
    }
}

impl<'de> DeserializeSeed<'de> for FieldOf<'_> {
    type Value = Field;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Field, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldOf<'_> {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Field, E> {
        Ok(Field::NULL)
    }

    fn visit_none<E: de::Error>(self) -> Result<Field, E> {
        Ok(Field::NULL)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Field, E> {
        Ok(self.bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Field, E> {
        Ok(self.int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field, E> {
        Ok(self.u64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Field, E> {
        Ok(self.f64(v))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Field, E> {
        Ok(self.str(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(self.structured(Value::Array(items)))
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Field, M::Error> {
        // Inserted as serde_json builds its own objects: a repeated key keeps its last value.
        let mut object = serde_json::Map::new();
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            object.insert(key, value);
        }
        Ok(self.structured(Value::Object(object)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One JSON value as a field of a `ty` column, text resolved to a `Cell`.
    fn field(ty: ColumnType, json: &str) -> Field {
        let mut text = String::new();
        let mut de = serde_json::Deserializer::from_str(json);
        let seed = FieldOf {
            ty,
            keep: true,
            text: &mut text,
        };
        let got = seed.deserialize(&mut de).unwrap();
        match got {
            Field::Text(r) => Field::Cell(Cell::Text(text.get(r).unwrap().to_string())),
            other => other,
        }
    }

    fn text(s: &str) -> Field {
        Field::Cell(Cell::Text(s.into()))
    }

    // Guards the strict conversions: a value that would change when converted is a
    // mismatch, not a silently different number; VARCHAR takes any value as its JSON text.
    #[test]
    fn conversions_are_strict_where_data_would_change() {
        assert_eq!(field(ColumnType::BigInt, "7"), Field::Cell(Cell::I64(7)));
        assert_eq!(field(ColumnType::BigInt, "-7"), Field::Cell(Cell::I64(-7)));
        assert!(matches!(field(ColumnType::BigInt, "1.5"), Field::Bad(_)));
        assert!(matches!(field(ColumnType::BigInt, "\"7\""), Field::Bad(_)));
        assert!(matches!(
            field(ColumnType::BigInt, "18446744073709551615"),
            Field::Bad(_)
        ));
        assert!(matches!(field(ColumnType::TinyInt, "300"), Field::Bad(_)));
        assert_eq!(field(ColumnType::Double, "2"), Field::Cell(Cell::F64(2.0)));
        assert_eq!(field(ColumnType::Real, "1.5"), Field::Cell(Cell::F32(1.5)));
        assert_eq!(field(ColumnType::Int, "null"), Field::NULL);
        assert_eq!(
            field(ColumnType::Varchar, r#"{"b":1,"a":[true,null]}"#),
            text(r#"{"a":[true,null],"b":1}"#)
        );
        assert_eq!(field(ColumnType::Varchar, "2.50"), text("2.5"));
        assert_eq!(field(ColumnType::Varchar, "false"), text("false"));
        assert_eq!(field(ColumnType::Varchar, "\"\\u00e9\""), text("é"));
        assert_eq!(field(ColumnType::Bytea, "\"ab\""), text("ab"));
        assert_eq!(
            field(ColumnType::Boolean, "true"),
            Field::Cell(Cell::Bool(true))
        );
        assert_eq!(
            field(ColumnType::Date, "\"2024-03-01\""),
            Field::Cell(Cell::Date(19_783))
        );
        let err = field(ColumnType::Double, "\"abc\"");
        assert_eq!(err, Field::Bad("expected DOUBLE, found \"abc\"".into()));
        let err = field(ColumnType::Int, "[1,{\"a\":2}]");
        assert_eq!(err, Field::Bad("expected INT, found [1,{\"a\":2}]".into()));
        let err = field(ColumnType::Boolean, "1.0");
        assert_eq!(err, Field::Bad("expected BOOLEAN, found 1.0".into()));
    }

    // Timestamps are read from ISO text or epoch milliseconds, to the same instant.
    #[test]
    fn timestamps_from_text_or_epoch_ms() {
        let want = Field::Cell(Cell::TimestampMs(1_709_294_400_250));
        assert_eq!(
            field(ColumnType::Timestamp, "\"2024-03-01T12:00:00.250Z\""),
            want
        );
        assert_eq!(field(ColumnType::Timestamp, "1709294400250"), want);
        assert!(matches!(field(ColumnType::Timestamp, "1.5"), Field::Bad(_)));
    }
}
