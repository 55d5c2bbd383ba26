//! Printing statement results: an aligned table (arrow's pretty printer), CSV with a
//! header, or one JSON object per row; and the "N rows in T s" timing line.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::ValueEnum;
use sluice_sql::StatementOutput;
use std::sync::Arc;

use sluice_sql::datafusion::arrow::array::{ArrayRef, StringBuilder};
use sluice_sql::datafusion::arrow::datatypes::{DataType, Field, Schema};
use sluice_sql::datafusion::arrow::record_batch::RecordBatch;
use sluice_sql::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sluice_sql::datafusion::arrow::{csv, json, util::pretty};

/// How `sluice sql` prints results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON object per row (NULL columns left out).
    Json,
}

/// Prints one statement's rows; a statement without rows (DDL) prints nothing.
pub fn print(
    out: &mut impl Write,
    output: &StatementOutput,
    format: OutputFormat,
) -> anyhow::Result<()> {
    if !output.has_rows() {
        return Ok(());
    }
    match format {
        OutputFormat::Table => {
            let table =
                pretty::pretty_format_batches_with_schema(output.schema.clone(), &output.batches)
                    .context("formatting the result")?;
            writeln!(out, "{table}")?;
        }
        OutputFormat::Csv => {
            let mut writer = csv::WriterBuilder::new().with_header(true).build(&mut *out);
            if output.batches.is_empty() {
                let names: Vec<&str> = output
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect();
                writeln!(writer.into_inner(), "{}", names.join(","))?;
            } else {
                for batch in &output.batches {
                    writer
                        .write(&nested_as_text(batch)?)
                        .context("writing CSV")?;
                }
            }
        }
        OutputFormat::Json => {
            let mut writer = json::LineDelimitedWriter::new(&mut *out);
            for batch in &output.batches {
                writer.write(batch).context("writing JSON")?;
            }
            writer.finish().context("writing JSON")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The batch with every nested column (lists such as `_headers`, structs, maps) turned
/// into its display text, which CSV can hold.
fn nested_as_text(batch: &RecordBatch) -> anyhow::Result<RecordBatch> {
    let nested = |t: &DataType| t.is_nested();
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| nested(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let options = FormatOptions::default();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !nested(field.data_type()) {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
            continue;
        }
        let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
        let mut text = StringBuilder::new();
        for row in 0..column.len() {
            if column.is_null(row) {
                text.append_null();
            } else {
                text.append_value(formatter.value(row).to_string());
            }
        }
        fields.push(Field::new(field.name(), DataType::Utf8, true));
        columns.push(Arc::new(text.finish()));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// "3 rows in 0.012 s" for a query, "OK in 0.004 s" for a statement without rows.
pub fn timing(output: &StatementOutput, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    if !output.has_rows() {
        return format!("OK in {seconds:.3} s");
    }
    match output.row_count() {
        1 => format!("1 row in {seconds:.3} s"),
        n => format!("{n} rows in {seconds:.3} s"),
    }
}
