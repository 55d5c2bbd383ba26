//! Text records to Arrow rows, in bulk: the parsing shared by the `file` and `stdin`
//! sources.
//!
//! Callers hand [`RecordParser::parse`] a chunk of whole records (each ends with `\n`),
//! found by [`RecordParser::record_ends`]. A chunk is decoded in one call of arrow's
//! decoder; only when that fails is it decoded record by record, so that the bad records
//! become [`Reject`]s named `file:line` and the good ones still flow.
//!
//! A CSV record ends at a newline outside quotes (a quoted field may hold newlines); a
//! JSON line and a text line end at any newline.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::csv_fast::FastCsv;
use crate::batch::Reject;
use crate::error::{Error, Result};

/// How the bytes of a record are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextFormat {
    /// One VARCHAR column `line` per line.
    Lines,
    /// One JSON object per line.
    Jsonl,
    /// Delimited values.
    Csv,
}

impl TextFormat {
    /// The format's name in pipeline files.
    pub fn name(self) -> &'static str {
        match self {
            TextFormat::Lines => "lines",
            TextFormat::Jsonl => "jsonl",
            TextFormat::Csv => "csv",
        }
    }
}

/// CSV dialect.
#[derive(Debug, Clone, Copy)]
pub struct CsvOptions {
    /// Whether each file's first record names the columns (and is not a row).
    pub header: bool,
    /// The field separator.
    pub delimiter: u8,
    /// The quote character.
    pub quote: u8,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            header: true,
            delimiter: b',',
            quote: b'"',
        }
    }
}

/// Where a chunk of complete records ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordEnds {
    /// Bytes of the complete records (0: none complete yet).
    pub end: usize,
    /// Records in them.
    pub records: usize,
    /// Newlines in them (records can span lines in CSV).
    pub lines: u64,
}

/// Parses records of one format into rows of one schema.
#[derive(Debug, Clone)]
pub struct RecordParser {
    format: TextFormat,
    schema: SchemaRef,
    csv: CsvOptions,
    /// The fast path for CSV, when the schema's types allow it.
    fast: Option<FastCsv>,
}

/// The schema of the `lines` format.
pub fn lines_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("line", DataType::Utf8, false)]))
}

impl RecordParser {
    /// A parser of `format` records into rows of `schema`.
    pub fn new(format: TextFormat, schema: SchemaRef, csv: CsvOptions) -> RecordParser {
        let fast = match format {
            TextFormat::Csv => FastCsv::new(&schema, csv),
            _ => None,
        };
        RecordParser {
            format,
            schema,
            csv,
            fast,
        }
    }

    /// This parser without its CSV fast path: every chunk through arrow's decoder. The
    /// answers are the same (that is the fast path's contract); for comparing the two, in
    /// tests, fuzzing and benchmarks.
    pub fn arrow_only(mut self) -> RecordParser {
        self.fast = None;
        self
    }

    /// The rows' schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Finds the end of the first `max_records` complete records in `buf` (or of all of
    /// them if fewer are complete).
    pub fn record_ends(&self, buf: &[u8], max_records: usize) -> RecordEnds {
        if max_records == 0 {
            return RecordEnds {
                end: 0,
                records: 0,
                lines: 0,
            };
        }
        match self.format {
            TextFormat::Csv => unquoted_record_ends(buf, max_records, self.csv.quote)
                .unwrap_or_else(|| self.csv_record_ends(buf, max_records)),
            TextFormat::Jsonl | TextFormat::Lines => line_ends(buf, max_records),
        }
    }

    /// CSV record ends in one pass over the bytes, quotes and all.
    fn csv_record_ends(&self, buf: &[u8], max_records: usize) -> RecordEnds {
        let mut ends = RecordEnds {
            end: 0,
            records: 0,
            lines: 0,
        };
        // Only quotes and newlines matter: jump between them (memchr2 looks at a word of
        // bytes at a time) rather than stepping through every byte.
        let quote = self.csv.quote;
        let mut quoted = false;
        let mut lines = 0;
        for i in memchr::memchr2_iter(quote, b'\n', buf) {
            if buf.get(i) == Some(&quote) {
                quoted = !quoted;
                continue;
            }
            lines += 1;
            if !quoted {
                ends.records += 1;
                ends.end = i + 1;
                // Newlines past the last record end belong to a partial record.
                ends.lines = lines;
                if ends.records == max_records {
                    break;
                }
            }
        }
        ends
    }

    /// Parses `chunk`, whole records each ending with `\n`. `label` names the file in
    /// rejects, `first_line` is the 1-based line the chunk starts at.
    pub fn parse(
        &self,
        chunk: &[u8],
        label: &str,
        first_line: u64,
    ) -> Result<(RecordBatch, Vec<Reject>)> {
        if chunk.is_empty() {
            return Ok((RecordBatch::new_empty(self.schema.clone()), Vec::new()));
        }
        match self.format {
            TextFormat::Lines => Ok(self.parse_lines(chunk, label, first_line)),
            TextFormat::Jsonl | TextFormat::Csv => match self.decode(chunk) {
                Ok(rows) => Ok((rows, Vec::new())),
                Err(_) => self.parse_one_by_one(chunk, label, first_line),
            },
        }
    }

    /// Decodes a chunk with arrow's decoder in one go.
    fn decode(&self, chunk: &[u8]) -> Result<RecordBatch> {
        // A row per line at most: an upper bound on the rows, so one flush takes them all.
        let rows_max = count_newlines(chunk) as usize + 1;
        if let Some(rows) = self.fast.as_ref().and_then(|f| f.decode(chunk, rows_max)) {
            return Ok(rows);
        }
        let batch = match self.format {
            TextFormat::Csv => {
                let mut decoder = arrow::csv::ReaderBuilder::new(self.schema.clone())
                    .with_header(false)
                    .with_delimiter(self.csv.delimiter)
                    .with_quote(self.csv.quote)
                    .with_batch_size(rows_max)
                    .build_decoder();
                feed(chunk, |b| decoder.decode(b))?;
                decoder.flush()?
            }
            TextFormat::Jsonl => {
                let mut decoder = arrow::json::ReaderBuilder::new(self.schema.clone())
                    .with_batch_size(rows_max)
                    .build_decoder()?;
                feed(chunk, |b| decoder.decode(b))?;
                decoder.flush()?
            }
            TextFormat::Lines => None,
        };
        Ok(batch.unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone())))
    }

    /// The slow path: each record alone, to name the bad ones; then the good ones in bulk.
    fn parse_one_by_one(
        &self,
        chunk: &[u8],
        label: &str,
        first_line: u64,
    ) -> Result<(RecordBatch, Vec<Reject>)> {
        let mut good = Vec::with_capacity(chunk.len());
        let mut rejects = Vec::new();
        let mut rest = chunk;
        let mut line = first_line;
        while !rest.is_empty() {
            let ends = self.record_ends(rest, 1);
            // Chunks hold whole records only; a tail without newline is one record.
            let end = if ends.end == 0 { rest.len() } else { ends.end };
            let (record, tail) = rest.split_at(end);
            let blank = record.iter().all(u8::is_ascii_whitespace);
            if !blank {
                match self.decode(record) {
                    Ok(rows) if rows.num_rows() == 1 => good.extend_from_slice(record),
                    Ok(rows) => rejects.push(Reject {
                        position: format!("{label}:{line}"),
                        bytes: trim_newline(record).to_vec(),
                        error: format!("a record gave {} rows, expected 1", rows.num_rows()),
                    }),
                    Err(e) => rejects.push(Reject {
                        position: format!("{label}:{line}"),
                        bytes: trim_newline(record).to_vec(),
                        error: e.to_string(),
                    }),
                }
            }
            line += count_newlines(record).max(1);
            rest = tail;
        }
        let rows = self.decode(&good)?;
        Ok((rows, rejects))
    }

    /// `lines`: one row per line, `\r\n` taken as one line end; lines that are not UTF-8
    /// are rejected.
    fn parse_lines(
        &self,
        chunk: &[u8],
        label: &str,
        first_line: u64,
    ) -> (RecordBatch, Vec<Reject>) {
        let body = chunk.strip_suffix(b"\n").unwrap_or(chunk);
        let lines = count_newlines(body) as usize + 1;
        let mut builder = StringBuilder::with_capacity(lines, chunk.len());
        let mut rejects = Vec::new();
        let append = |builder: &mut StringBuilder, text: &str| {
            builder.append_value(text.strip_suffix('\r').unwrap_or(text));
        };
        match std::str::from_utf8(body) {
            Ok(text) => text.split('\n').for_each(|l| append(&mut builder, l)),
            Err(_) => {
                for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
                    match std::str::from_utf8(raw) {
                        Ok(text) => append(&mut builder, text),
                        Err(e) => rejects.push(Reject {
                            position: format!("{label}:{}", first_line + i as u64),
                            bytes: raw.to_vec(),
                            error: format!("not UTF-8: {e}"),
                        }),
                    }
                }
            }
        }
        let column = Arc::new(builder.finish());
        let rows = RecordBatch::try_new(self.schema.clone(), vec![column])
            .unwrap_or_else(|_| RecordBatch::new_empty(self.schema.clone()));
        (rows, rejects)
    }
}

/// The ends of the first `max_records` lines of `buf` (or of all its complete lines),
/// each line a record: `None` if a `quote` is among the bytes it looked at (in CSV a
/// quoted field can hold newlines, so its records are found another way).
///
/// Newlines are counted a block at a time (memchr counts 32 bytes per step) rather than
/// visited one by one, which cost a call per record: the block is sized from the lines
/// seen so far, grown until it holds enough, and the last few newlines past the wanted
/// one are stepped back over.
fn unquoted_record_ends(buf: &[u8], max_records: usize, quote: u8) -> Option<RecordEnds> {
    /// Bytes guessed per line before any is seen.
    const FIRST_GUESS: usize = 64;
    let (mut end, mut lines) = (0, 0);
    while lines < max_records && end < buf.len() {
        let wanted = max_records - lines;
        let per_line = if lines == 0 {
            FIRST_GUESS
        } else {
            end.div_ceil(lines)
        };
        // A tenth more than the guess, so one step usually does.
        let step = wanted.saturating_mul(per_line + per_line / 10 + 1);
        let next = end.saturating_add(step).min(buf.len());
        let block = buf.get(end..next).unwrap_or_default();
        if memchr::memchr(quote, block).is_some() {
            return None;
        }
        lines += memchr::memchr_iter(b'\n', block).count();
        end = next;
    }
    // Back to the end of the last whole line, and past any lines beyond `max_records`.
    let mut last = memchr::memrchr(b'\n', buf.get(..end).unwrap_or_default());
    while lines > max_records {
        lines -= 1;
        last = last.and_then(|i| memchr::memrchr(b'\n', buf.get(..i).unwrap_or_default()));
    }
    let end = last.map_or(0, |i| i + 1);
    Some(RecordEnds {
        end,
        records: lines,
        lines: lines as u64,
    })
}

/// The ends of the first `max_records` lines of `buf`, or of all its complete lines.
fn line_ends(buf: &[u8], max_records: usize) -> RecordEnds {
    let mut start = 0;
    let mut records = 0;
    while let Some(i) = memchr::memchr(b'\n', buf.get(start..).unwrap_or_default()) {
        start += i + 1;
        records += 1;
        if records == max_records {
            break;
        }
    }
    RecordEnds {
        end: start,
        records,
        lines: records as u64,
    }
}

/// Feeds all of `chunk` to a decoder that may take it in parts.
fn feed(
    chunk: &[u8],
    mut decode: impl FnMut(&[u8]) -> Result<usize, arrow::error::ArrowError>,
) -> Result<()> {
    let mut rest = chunk;
    while !rest.is_empty() {
        let read = decode(rest)?;
        if read == 0 {
            return Err(Error::Data {
                position: "decoder".into(),
                reason: "the decoder stopped taking input: more rows than expected".into(),
            });
        }
        rest = rest.get(read..).unwrap_or_default();
    }
    Ok(())
}

/// Newlines in `bytes`.
pub(crate) fn count_newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

fn trim_newline(record: &[u8]) -> &[u8] {
    let record = record.strip_suffix(b"\n").unwrap_or(record);
    record.strip_suffix(b"\r").unwrap_or(record)
}

/// Infers a schema from the start of a file's text: CSV by its header and arrow-csv's type
/// inference, JSONL by arrow-json's. `sample` is the file's first bytes.
pub fn infer_schema(
    format: TextFormat,
    csv: CsvOptions,
    sample: &[u8],
    records_max: usize,
) -> Result<SchemaRef> {
    let schema = match format {
        TextFormat::Lines => return Ok(lines_schema()),
        TextFormat::Csv => {
            arrow::csv::reader::Format::default()
                .with_header(csv.header)
                .with_delimiter(csv.delimiter)
                .with_quote(csv.quote)
                .infer_schema(sample, Some(records_max))?
                .0
        }
        TextFormat::Jsonl => arrow::json::reader::infer_json_schema(sample, Some(records_max))?.0,
    };
    if schema.fields().is_empty() {
        return Err(Error::config(
            "no columns could be inferred from the first file: declare them with columns = \"id BIGINT, name VARCHAR\"",
        ));
    }
    Ok(Arc::new(schema))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse_schema;

    #[test]
    fn csv_records_end_outside_quotes() {
        let parser = RecordParser::new(
            TextFormat::Csv,
            parse_schema("a INT, b VARCHAR").unwrap(),
            CsvOptions::default(),
        );
        let buf = b"1,\"x\ny\"\n2,z\n3,partial";
        let ends = parser.record_ends(buf, 10);
        assert_eq!((ends.end, ends.records, ends.lines), (12, 2, 3));
        let ends = parser.record_ends(buf, 1);
        assert_eq!((ends.end, ends.records, ends.lines), (8, 1, 2));
    }

    #[test]
    fn record_ends_counted_in_blocks_are_the_scans() {
        // Lines of random lengths (empty ones too, and `\r\n`), with and without a
        // quote somewhere, cut anywhere: the block count (or its giving up) must find
        // what the one-pass scan finds, for every cap on records.
        let parser = RecordParser::new(
            TextFormat::Csv,
            parse_schema("a VARCHAR").unwrap(),
            CsvOptions::default(),
        );
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n) as usize
        };
        for round in 0..300 {
            let mut buf = Vec::new();
            let short = round % 3 == 0;
            for _ in 0..next(400) {
                let len = if short { next(4) } else { next(200) };
                buf.extend(std::iter::repeat_n(b'a' + (next(26) as u8), len));
                buf.extend_from_slice(if next(5) == 0 { b"\r\n" } else { b"\n" });
            }
            if round % 4 == 1 && !buf.is_empty() {
                let at = next(buf.len() as u64);
                buf[at] = b'"';
            }
            buf.truncate(buf.len() - next(buf.len() as u64 / 4 + 1));
            for max in [1, 2, 7, 100, 399, 400, 1000] {
                let scanned = parser.csv_record_ends(&buf, max);
                assert_eq!(
                    parser.record_ends(&buf, max),
                    scanned,
                    "round {round}, max {max}"
                );
                match unquoted_record_ends(&buf, max, b'"') {
                    Some(counted) => assert_eq!(counted, scanned, "round {round}, max {max}"),
                    None => assert!(
                        buf.contains(&b'"'),
                        "round {round}: gave up without a quote"
                    ),
                }
            }
        }
    }

    #[test]
    fn bad_csv_records_are_named_by_line() {
        let parser = RecordParser::new(
            TextFormat::Csv,
            parse_schema("a INT, b VARCHAR").unwrap(),
            CsvOptions::default(),
        );
        let (rows, rejects) = parser.parse(b"1,a\nx,b\n3,c\n", "f.csv", 2).unwrap();
        assert_eq!(rows.num_rows(), 2);
        assert_eq!(rejects.len(), 1);
        assert_eq!(rejects[0].position, "f.csv:3");
        assert_eq!(rejects[0].bytes, b"x,b");
    }

    #[test]
    fn the_csv_fast_path_changes_no_rows_and_no_rejects() {
        // Guards against the fast path answering differently from arrow's decoder where it
        // should have handed the chunk over: bad records, a wrong field count, quotes,
        // CRLF and a lone CR, NULL in a NOT NULL column.
        let schema = parse_schema("a INT, b VARCHAR NOT NULL, c TIMESTAMP").unwrap();
        let fast = RecordParser::new(TextFormat::Csv, schema, CsvOptions::default());
        assert!(fast.fast.is_some());
        let arrow = fast.clone().arrow_only();
        let chunks: [&[u8]; 6] = [
            b"1,a,2024-03-01 00:00:00\n2,\"b,\"\"c\",2024-03-01T00:00:00.5\r\n",
            b"1,a,2024-03-01 00:00:00\nx,b,\n3,c,not a time\n4,d\n",
            b"1,,2024-03-01 00:00:00\n2,b,\n",
            b"1,a,\r2,b,\n",
            b"1,\"open,\n",
            b" 7 ,e,2024-03-01 12:00:00+02:00\n",
        ];
        for chunk in chunks {
            let got = fast.parse(chunk, "f.csv", 1).map_err(|e| e.to_string());
            let want = arrow.parse(chunk, "f.csv", 1).map_err(|e| e.to_string());
            assert_eq!(got, want, "{}", String::from_utf8_lossy(chunk));
        }
    }
}
