//! A `json` record's value read in one pass into a row of [`Field`]s: each key is matched
//! against the column names as it is read (borrowed from the record, no allocation), the
//! value of a column the query reads is parsed straight into the column's type (a string
//! copied once into a reused text buffer), the value of a column the query does not read
//! is only checked when `on_error` must see it, and everything else is skipped unparsed.
//! Building a `serde_json::Value` per record (a map of owned keys, a `String` per field)
//! and converting it afterwards took most of the scan's time in `sluice bench sql`.
//!
//! Layout: [`field`] converts one value to a column's type (the rules below, once);
//! [`flat`] is the fast path for flat objects of plain values (scanning strings and digits
//! eight bytes at a time with [`swar`]); the serde_json reader here takes every record
//! the fast path gives up on and reports every error.
//!
//! Semantics are those of parsing the value into an object, looking each column up and
//! converting its field: a key seen twice keeps its last value; a missing column is NULL;
//! integer columns take JSON integers in range (not 1.5, not "1"), REAL/DOUBLE any number,
//! VARCHAR a string or any other value as its JSON text (`serde_json`'s compact form),
//! BYTEA a string's UTF-8 bytes, DATE and TIMESTAMP text (TIMESTAMP also epoch ms). A field
//! that does not convert is a [`Field::Bad`] naming the JSON it found, never a parse error,
//! so it is told apart from a value that is not JSON at all.

mod field;
mod flat;
mod swar;

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::cell::Field;
use crate::catalog::table::ColumnDef;
use field::FieldOf;
pub(crate) use flat::{KeyPattern, key_patterns};

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

/// Fills `fields` (one per column, `keys` ([`key_patterns`] of `columns`) and `wants` in
/// step with `columns`) from the JSON object `value`; [`Field::Text`] ranges point into `text`, which is cleared first.
pub(crate) fn read_object(
    value: &[u8],
    columns: &[ColumnDef],
    keys: &[Option<KeyPattern>],
    wants: &[Want],
    fields: &mut Vec<Field>,
    text: &mut String,
) -> Result<(), NotAnObject> {
    reset(fields, columns.len());
    text.clear();
    if flat::read(value, columns, keys, wants, fields, text).is_some() {
        return Ok(());
    }
    read_object_with_serde(value, columns, wants, fields, text)
}

/// Makes `fields` `len` NULLs; by assignment when the length is right, which is cheaper
/// than `resize` (a `clone` per slot).
fn reset(fields: &mut Vec<Field>, len: usize) {
    if fields.len() == len {
        fields.fill_with(|| Field::NULL);
    } else {
        fields.clear();
        fields.resize(len, Field::NULL);
    }
}

/// [`read_object`] by serde_json: whatever the fast path leaves, and every error.
fn read_object_with_serde(
    value: &[u8],
    columns: &[ColumnDef],
    wants: &[Want],
    fields: &mut Vec<Field>,
    text: &mut String,
) -> Result<(), NotAnObject> {
    reset(fields, columns.len());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ColumnType;
    use crate::format::cell::Cell;

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
        let keys = key_patterns(columns);
        read_object(
            value.as_bytes(),
            columns,
            &keys,
            wants,
            &mut fields,
            &mut text,
        )
        .map_err(|e| match e {
            NotAnObject::NotJson(_) => "not json".to_string(),
            NotAnObject::NotObject => "not object".to_string(),
        })?;
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
