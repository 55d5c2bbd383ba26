//! A `json` record's value read in one pass into a row of [`Field`]s: each key is matched
//! against the column names as it is read (borrowed from the record, no allocation), the
//! value of a column the query reads is parsed straight into the column's type (a string
//! copied once into a reused text buffer), the value of a column the query does not read
//! is only checked when `on_error` must see it, and everything else is skipped unparsed.
//! Building a `serde_json::Value` per record (a map of owned keys, a `String` per field)
//! and converting it afterwards took most of the scan's time in `sluice bench sql`.
//!
//! Semantics are those of parsing the value into an object, looking each column up and
//! converting its field: a key seen twice keeps its last value; a missing column is NULL;
//! integer columns take JSON integers in range (not 1.5, not "1"), REAL/DOUBLE any number,
//! VARCHAR a string or any other value as its JSON text (`serde_json`'s compact form),
//! BYTEA a string's UTF-8 bytes, DATE and TIMESTAMP text (TIMESTAMP also epoch ms). A field
//! that does not convert is a [`Field::Bad`] naming the JSON it found, never a parse error,
//! so it is told apart from a value that is not JSON at all.

use std::fmt::{self, Write as _};

use datafusion::arrow::compute::kernels::cast_utils::Parser;
use datafusion::arrow::datatypes::Date32Type;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::cell::{Cell, Field, int_cell, mismatch, parse_timestamp_ms};
use crate::catalog::ColumnType;
use crate::catalog::table::ColumnDef;

/// What a scan needs of one declared column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// The query reads it: its value, converted.
    Value,
    /// The query does not read it, but `on_error` must judge it: convert without keeping
    /// text (a valid string is [`Field::Checked`]).
    Check,
    /// Nothing: the key is skipped unparsed (the column is NULL).
    Skip,
}

/// Why a value could not be read as an object.
pub(crate) enum NotAnObject {
    /// Not JSON at all (the parser's message).
    NotJson(String),
    /// JSON, but not an object.
    NotObject,
}

/// Fills `fields` (one per column, `wants` in step with `columns`) from the JSON object
/// `value`; [`Field::Text`] ranges point into `text`, which is cleared first.
pub(crate) fn read_object(
    value: &[u8],
    columns: &[ColumnDef],
    wants: &[Want],
    fields: &mut Vec<Field>,
    text: &mut String,
) -> Result<(), NotAnObject> {
    fields.clear();
    fields.resize(columns.len(), Field::NULL);
    text.clear();
    let mut de = serde_json::Deserializer::from_slice(value);
    let result = Object {
        columns,
        wants,
        fields,
        text,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    result.map_err(|e| {
        if e.is_data() {
            NotAnObject::NotObject
        } else {
            NotAnObject::NotJson(e.to_string())
        }
    })
}

/// The object's fields, routed to their columns' slots.
struct Object<'a> {
    columns: &'a [ColumnDef],
    wants: &'a [Want],
    fields: &'a mut Vec<Field>,
    text: &'a mut String,
}

impl<'de> DeserializeSeed<'de> for Object<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Object<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(column) = map.next_key_seed(ColumnOf(self.columns))? {
            let target = column.and_then(|i| {
                let want = *self.wants.get(i)?;
                let ty = self.columns.get(i)?.ty;
                Some((want, ty, self.fields.get_mut(i)?))
            });
            match target {
                Some((want, ty, slot)) if want != Want::Skip => {
                    *slot = map.next_value_seed(FieldOf {
                        ty,
                        keep: want == Want::Value,
                        text: self.text,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A key as the index of the column it names (`None`: no column does).
struct ColumnOf<'a>(&'a [ColumnDef]);

impl<'de> DeserializeSeed<'de> for ColumnOf<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for ColumnOf<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|c| c.name == key))
    }
}

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
    fn text(self, s: &str) -> Field {
        if !self.keep {
            return Field::Checked;
        }
        let start = self.text.len();
        self.text.push_str(s);
        Field::Text(start..self.text.len())
    }

    /// A non-string value as VARCHAR text, or a mismatch naming it.
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

    fn int(self, v: i64) -> Field {
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
        Ok(match self.ty {
            ColumnType::Boolean => Field::Cell(Cell::Bool(v)),
            _ => self.text_or_bad(v),
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Field, E> {
        Ok(self.int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field, E> {
        if let Ok(v) = i64::try_from(v) {
            return Ok(self.int(v));
        }
        Ok(match self.ty {
            ColumnType::Real => Field::Cell(Cell::F32(v as f64 as f32)),
            ColumnType::Double => Field::Cell(Cell::F64(v as f64)),
            _ => self.text_or_bad(v),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Field, E> {
        Ok(match self.ty {
            ColumnType::Real => Field::Cell(Cell::F32(v as f32)),
            ColumnType::Double => Field::Cell(Cell::F64(v)),
            // serde_json's text for the number (`2.0`, `1e300`), as a parsed value prints.
            _ => self.text_or_bad(Value::from(v)),
        })
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Field, E> {
        let ty = self.ty;
        let cell = match ty {
            ColumnType::Varchar | ColumnType::Bytea => return Ok(self.text(s)),
            ColumnType::Date => Date32Type::parse(s.trim()).map(Cell::Date),
            ColumnType::Timestamp => parse_timestamp_ms(s).map(Cell::TimestampMs),
            _ => None,
        };
        Ok(cell.map_or_else(
            || Field::Bad(mismatch(ty, &Value::from(s).to_string())),
            Field::Cell,
        ))
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

    fn columns(types: &[(&str, ColumnType)]) -> Vec<ColumnDef> {
        types
            .iter()
            .map(|(n, ty)| ColumnDef {
                name: n.to_string(),
                ty: *ty,
                nullable: true,
            })
            .collect()
    }

    /// Each column's field, text resolved to a `Cell`, and parse errors as words.
    fn read_as(value: &str, columns: &[ColumnDef], wants: &[Want]) -> Result<Vec<Field>, String> {
        let mut fields = Vec::new();
        let mut text = String::new();
        read_object(value.as_bytes(), columns, wants, &mut fields, &mut text).map_err(
            |e| match e {
                NotAnObject::NotJson(_) => "not json".to_string(),
                NotAnObject::NotObject => "not object".to_string(),
            },
        )?;
        let resolve = |f: Field| match f {
            Field::Text(r) => Field::Cell(Cell::Text(text.get(r).unwrap().to_string())),
            other => other,
        };
        Ok(fields.into_iter().map(resolve).collect())
    }

    fn read(value: &str) -> Result<Vec<Field>, String> {
        let columns = columns(&[("id", ColumnType::Varchar), ("name", ColumnType::Varchar)]);
        read_as(value, &columns, &[Want::Value, Want::Value])
    }

    /// One value as a field of a `ty` column.
    fn field(ty: ColumnType, json: &str) -> Field {
        let columns = columns(&[("c", ty)]);
        let mut got = read_as(&format!(r#"{{"c": {json}}}"#), &columns, &[Want::Value]).unwrap();
        got.pop().unwrap()
    }

    fn text(s: &str) -> Field {
        Field::Cell(Cell::Text(s.into()))
    }

    // Guards the one-pass reader against departing from "parse, then look each column
    // up": last duplicate wins, missing keys are NULL, other keys (even nested) are
    // skipped, and non-objects / non-JSON are told apart.
    #[test]
    fn reads_like_a_parsed_object() {
        let got = read(r#"{"skip":{"a":[1,{"b":2}]},"id":1,"id":"two","x":null}"#).unwrap();
        assert_eq!(got, vec![text("two"), Field::NULL]);
        let got = read(r#"{"name":"a\"b","id":null}"#).unwrap();
        assert_eq!(got, vec![Field::NULL, text("a\"b")]);
        assert_eq!(read("[1, 2]").unwrap_err(), "not object");
        assert_eq!(read("42").unwrap_err(), "not object");
        assert_eq!(read("{\"id\": 1").unwrap_err(), "not json");
        assert_eq!(read("{} trailing").unwrap_err(), "not json");
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

    // A column the query does not read is checked (so on_error sees a bad value) without
    // keeping its text, or skipped unparsed.
    #[test]
    fn unread_columns_are_checked_or_skipped() {
        let columns = columns(&[
            ("n", ColumnType::BigInt),
            ("s", ColumnType::Varchar),
            ("x", ColumnType::BigInt),
        ]);
        let wants = [Want::Check, Want::Check, Want::Skip];
        let got = read_as(r#"{"n":"one","s":"kept?","x":"bad"}"#, &columns, &wants).unwrap();
        assert_eq!(
            got,
            vec![
                Field::Bad("expected BIGINT, found \"one\"".into()),
                Field::Checked,
                Field::NULL
            ]
        );
    }
}
