//! Reading a JSON record value into the table's declared columns in one pass: each key is
//! matched against the column names as it is read (borrowed from the record, no
//! allocation), its value is parsed only if a column wants it, and everything else is
//! skipped unparsed. Building a whole `serde_json::Value` per record first (a map of owned
//! keys) took about half the scan's time in `sluice bench sql`.
//!
//! Semantics are those of parsing into an object and looking each column up: a key seen
//! twice keeps its last value; a column missing from the object is absent (`None`).

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::catalog::table::ColumnDef;

/// Why a value could not be read as an object.
pub(crate) enum NotAnObject {
    /// Not JSON at all (the parser's message).
    NotJson(String),
    /// JSON, but not an object.
    NotObject,
}

/// Fills `out` (resized to one slot per column) with the value of each column's key in
/// the JSON object `value`.
pub(crate) fn read_object(
    value: &[u8],
    columns: &[ColumnDef],
    out: &mut Vec<Option<serde_json::Value>>,
) -> Result<(), NotAnObject> {
    out.clear();
    out.resize(columns.len(), None);
    let mut de = serde_json::Deserializer::from_slice(value);
    let result = Fields { columns, out }
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
struct Fields<'a> {
    columns: &'a [ColumnDef],
    out: &'a mut Vec<Option<serde_json::Value>>,
}

impl<'de> DeserializeSeed<'de> for Fields<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(column) = map.next_key_seed(ColumnOf(self.columns))? {
            match column.and_then(|i| self.out.get_mut(i)) {
                Some(slot) => *slot = Some(map.next_value()?),
                None => {
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

    fn columns() -> Vec<ColumnDef> {
        ["id", "name"]
            .iter()
            .map(|n| ColumnDef {
                name: n.to_string(),
                ty: ColumnType::Varchar,
                nullable: true,
            })
            .collect()
    }

    fn read(value: &str) -> Result<Vec<Option<serde_json::Value>>, String> {
        let mut out = Vec::new();
        read_object(value.as_bytes(), &columns(), &mut out).map_err(|e| match e {
            NotAnObject::NotJson(_) => "not json".to_string(),
            NotAnObject::NotObject => "not object".to_string(),
        })?;
        Ok(out)
    }

    // Guards the one-pass reader against departing from "parse, then look each column
    // up": last duplicate wins, missing keys are absent, other keys (even nested) are
    // skipped, and non-objects / non-JSON are told apart.
    #[test]
    fn reads_like_a_parsed_object() {
        let got = read(r#"{"skip":{"a":[1,{"b":2}]},"id":1,"id":"two","x":null}"#).unwrap();
        assert_eq!(got, vec![Some(serde_json::json!("two")), None]);
        let got = read(r#"{"name":"a\"b","id":null}"#).unwrap();
        assert_eq!(
            got,
            vec![
                Some(serde_json::Value::Null),
                Some(serde_json::json!("a\"b"))
            ]
        );
        assert_eq!(read("[1, 2]").unwrap_err(), "not object");
        assert_eq!(read("42").unwrap_err(), "not object");
        assert_eq!(read("{\"id\": 1").unwrap_err(), "not json");
        assert_eq!(read("{} trailing").unwrap_err(), "not json");
    }
}
