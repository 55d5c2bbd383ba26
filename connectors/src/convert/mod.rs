//! Converters: rows (Arrow) to record values in a topic and back, in the pipeline's
//! `value_format`.
//!
//! | format | a record value is |
//! |---|---|
//! | `json` | one JSON object per row (nulls left out), Arrow's JSON encoding |
//! | `csv` | one CSV line per row, no header, columns in schema order |
//! | `avro` | one Avro binary datum per row, the schema derived from the columns |
//! | `raw` | the bytes of the row's single column (`value`: VARCHAR or BYTEA) |
//!
//! Record keys are the key fields encoded the same way (`{"id":7}` in json). Decoding is
//! all-or-nothing per batch for speed; when a batch fails, each value is decoded alone so
//! the bad ones can be named and handled by `on_error` while the good ones go on.

mod avro;
mod csv;
mod json;
mod json_flat;
mod raw;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};

/// The value formats a topic's records can have.
pub const FORMATS: &[&str] = &["json", "csv", "avro", "raw"];

/// The values (or keys) a batch of rows encodes to, in one buffer: no allocation and no
/// reference count per value, and the producer copies each straight into its batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoded {
    bytes: Vec<u8>,
    /// Where each value starts and ends in `bytes`.
    spans: Vec<(usize, usize)>,
    /// Where the value being written started.
    open: usize,
}

impl Encoded {
    /// Room for `values` values of `bytes` bytes in all.
    fn with_capacity(values: usize, bytes: usize) -> Encoded {
        Encoded {
            bytes: Vec::with_capacity(bytes),
            spans: Vec::with_capacity(values),
            open: 0,
        }
    }

    /// The values `bytes` holds back to back, value `i` ending at `ends[i]`.
    fn from_ends(bytes: Vec<u8>, ends: &[usize]) -> Encoded {
        let mut start = 0;
        let spans = ends
            .iter()
            .map(|&end| (std::mem::replace(&mut start, end), end))
            .collect();
        Encoded {
            open: bytes.len(),
            bytes,
            spans,
        }
    }

    /// The buffer the value being written goes at the end of; [`Encoded::end_value`]
    /// closes it.
    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Closes the value being written: it is what the buffer gained since the last one.
    fn end_value(&mut self) {
        self.spans.push((self.open, self.bytes.len()));
        self.open = self.bytes.len();
    }

    /// Adds a value.
    fn push(&mut self, value: &[u8]) {
        self.bytes.extend_from_slice(value);
        self.end_value();
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Value `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let &(start, end) = self.spans.get(i)?;
        self.bytes.get(start..end)
    }

    /// The values in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.spans
            .iter()
            .map(|&(start, end)| self.bytes.get(start..end).unwrap_or_default())
    }
}

/// Rows to record values and back, for one schema.
#[derive(Debug, Clone)]
pub struct Converter {
    format: Format,
    schema: SchemaRef,
}

#[derive(Debug, Clone)]
enum Format {
    Json,
    Csv,
    Avro(Box<avro::Codec>),
    Raw,
}

impl Converter {
    /// A converter for `format` over rows of `schema`.
    pub fn new(format: &str, schema: SchemaRef) -> Result<Converter> {
        let format = match format {
            "json" => Format::Json,
            "csv" => {
                csv::check(&schema)?;
                Format::Csv
            }
            "avro" => Format::Avro(Box::new(avro::Codec::new(&schema)?)),
            "raw" => {
                raw::check(&schema)?;
                Format::Raw
            }
            other => {
                return Err(Error::config(format!(
                    "unknown value_format `{other}`: use {}",
                    FORMATS.join(", ")
                )));
            }
        };
        Ok(Converter { format, schema })
    }

    /// The format's name.
    pub fn format(&self) -> &'static str {
        match self.format {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Avro(_) => "avro",
            Format::Raw => "raw",
        }
    }

    /// The schema of the rows.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// One record value per row, all in one buffer.
    pub fn encode(&self, rows: &RecordBatch) -> Result<Encoded> {
        match &self.format {
            Format::Json => json::encode(rows),
            Format::Avro(codec) => codec.encode(rows),
            Format::Csv => csv::encode(rows),
            Format::Raw => raw::encode(rows),
        }
    }

    /// The key side of rows of `schema` keyed by `key_fields` (`None` when there are
    /// none): the key fields' indices in `schema` and a converter of rows projected to
    /// them. `who` names the connector in the error (`source "orders"`).
    pub fn for_key(
        format: &str,
        schema: &SchemaRef,
        key_fields: &[String],
        who: &str,
    ) -> Result<Option<(Vec<usize>, Converter)>> {
        if key_fields.is_empty() {
            return Ok(None);
        }
        let indices = key_fields
            .iter()
            .map(|k| {
                schema.index_of(k).map_err(|_| {
                    Error::config(format!(
                        "{who}: key field `{k}` is not among the rows' fields ({})",
                        crate::schema::format_schema(schema)
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let key_schema = std::sync::Arc::new(schema.project(&indices)?);
        Ok(Some((indices, Converter::new(format, key_schema)?)))
    }

    /// Decodes values (all of them, or an error for the batch).
    pub fn decode(&self, values: &[&[u8]]) -> Result<RecordBatch> {
        match &self.format {
            Format::Json => json::decode(&self.schema, values),
            Format::Csv => csv::decode(&self.schema, values),
            Format::Avro(codec) => codec.decode(values),
            Format::Raw => raw::decode(&self.schema, values),
        }
    }

    /// Decodes values, setting aside the ones that fail: the rows of the good ones, and the
    /// index and error of each bad one.
    pub fn decode_lenient(&self, values: &[&[u8]]) -> (Result<RecordBatch>, Vec<(usize, String)>) {
        match self.decode(values) {
            Ok(rows) => (Ok(rows), Vec::new()),
            Err(_) => {
                let mut good = Vec::with_capacity(values.len());
                let mut bad = Vec::new();
                for (i, value) in values.iter().enumerate() {
                    match self.decode(std::slice::from_ref(value)) {
                        Ok(_) => good.push(*value),
                        Err(e) => bad.push((i, e.to_string())),
                    }
                }
                (self.decode(&good), bad)
            }
        }
    }
}

/// Feeds `values`, each followed by a newline, to a streaming arrow decoder (`decode`
/// returns the bytes it took); the rows are then the decoder's to flush.
fn feed_lines(
    values: &[&[u8]],
    mut decode: impl FnMut(&[u8]) -> std::result::Result<usize, arrow::error::ArrowError>,
) -> Result<()> {
    let mut buf = Vec::with_capacity(values.iter().map(|v| v.len() + 1).sum());
    for value in values {
        buf.extend_from_slice(value);
        buf.push(b'\n');
    }
    let mut rest = &buf[..];
    while !rest.is_empty() {
        let read = decode(rest)?;
        if read == 0 {
            break;
        }
        rest = &rest[read..];
    }
    Ok(())
}

/// The rows a decoder flushed for `values`, failing unless each value gave exactly one;
/// `unit` names what a value should hold ("JSON objects").
fn one_row_each(
    schema: &SchemaRef,
    flushed: Option<RecordBatch>,
    values: usize,
    format: &str,
    unit: &str,
) -> Result<RecordBatch> {
    let batch = flushed.unwrap_or_else(|| RecordBatch::new_empty(schema.clone()));
    if batch.num_rows() != values {
        return Err(Error::Data {
            position: format.into(),
            reason: format!("{values} values held {} {unit}", batch.num_rows()),
        });
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array,
        Int64Array, StringArray, TimestampMicrosecondArray,
    };

    use super::*;
    use crate::schema::parse_schema;

    fn sample() -> RecordBatch {
        let schema = parse_schema(
            "id BIGINT NOT NULL, name VARCHAR, qty INT, price DOUBLE, paid BOOLEAN, \
             amount DECIMAL(12,2), day DATE, ts TIMESTAMP, blob BYTEA",
        )
        .unwrap();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![
                    Some("a, \"quoted\"\nline"),
                    None,
                    Some("ü"),
                ])),
                Arc::new(Int32Array::from(vec![Some(5), Some(-1), None])),
                Arc::new(Float64Array::from(vec![Some(1.5), None, Some(-0.25)])),
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
                Arc::new(
                    Decimal128Array::from(vec![Some(12345), None, Some(-1)])
                        .with_precision_and_scale(12, 2)
                        .unwrap(),
                ),
                Arc::new(Date32Array::from(vec![Some(20_000), None, Some(0)])),
                Arc::new(TimestampMicrosecondArray::from(vec![
                    Some(1_764_000_000_123_456),
                    None,
                    Some(0),
                ])),
                Arc::new(BinaryArray::from(vec![
                    Some(&b"\x00\x01"[..]),
                    None,
                    Some(b""),
                ])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn every_format_round_trips_every_type() {
        let rows = sample();
        for format in ["json", "csv", "avro"] {
            // CSV carries no bytes: leave the BYTEA column out.
            let rows = if format == "csv" {
                rows.project(&[0, 1, 2, 3, 4, 5, 6, 7]).unwrap()
            } else {
                rows.clone()
            };
            let converter = Converter::new(format, rows.schema()).unwrap();
            let values = converter.encode(&rows).unwrap();
            assert_eq!(values.len(), 3, "{format}");
            let refs: Vec<&[u8]> = values.iter().collect();
            let back = converter.decode(&refs).unwrap();
            assert_eq!(back, rows, "{format}");
        }
    }

    #[test]
    fn raw_carries_one_column() {
        let schema = parse_schema("value VARCHAR").unwrap();
        let rows = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec![Some("x"), Some("")]))],
        )
        .unwrap();
        let converter = Converter::new("raw", schema).unwrap();
        let values = converter.encode(&rows).unwrap();
        assert_eq!(values.iter().collect::<Vec<_>>(), [b"x".as_slice(), b""]);
        let refs: Vec<&[u8]> = values.iter().collect();
        assert_eq!(converter.decode(&refs).unwrap(), rows);
        assert!(Converter::new("raw", parse_schema("a INT, b INT").unwrap()).is_err());
    }

    #[test]
    fn lenient_decoding_sets_aside_only_bad_values() {
        let schema = parse_schema("id BIGINT, name VARCHAR").unwrap();
        let converter = Converter::new("json", schema).unwrap();
        let values: Vec<&[u8]> = vec![
            br#"{"id":1,"name":"a"}"#,
            br#"{"id":"nope"}"#,
            b"{not json",
            br#"{"id":4}"#,
        ];
        let (rows, bad) = converter.decode_lenient(&values);
        let rows = rows.unwrap();
        assert_eq!(rows.num_rows(), 2);
        assert_eq!(bad.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![1, 2]);
    }
}
