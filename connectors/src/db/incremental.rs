//! The database sources' modes, their positions, and the query each poll runs (the modes
//! of Kafka Connect's JDBC source).
//!
//! | mode | a poll reads | position |
//! |---|---|---|
//! | `bulk` | the next page of the table in primary-key order; `Done` at the end | last key read |
//! | `incrementing` | rows with `incrementing_column` > the last one seen | `{"id": 1042}` |
//! | `timestamp` | rows with `timestamp_column` > the last one seen | `{"ts": "…"}` |
//! | `timestamp+incrementing` | rows after (ts, id) in (ts, id) order | `{"ts": "…", "id": 7}` |
//!
//! Timestamp modes read only rows older than now − `timestamp_delay_ms`, so a transaction
//! that commits late with an older timestamp is still seen if it commits within the delay.
//! In `timestamp` mode a page never ends inside a run of equal timestamps (the run is cut
//! before it, or read whole when it is all the page holds): resuming after a timestamp
//! then skips nothing.

use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Int16Type, Int32Type, Int64Type, SchemaRef,
    TimestampMicrosecondType,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::DbSourceConfig;
use super::dialect::Dialect;
use super::table::TableInfo;
use super::types::{format_date, format_decimal, format_timestamp, parse_timestamp};
use crate::batch::{Poll, Position, Reject, SourceBatch};
use crate::error::{Error, Result};

/// How a source finds new rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Mode {
    /// The whole table once.
    #[default]
    #[serde(rename = "bulk")]
    Bulk,
    /// Rows whose incrementing column passed the last one seen.
    #[serde(rename = "incrementing")]
    Incrementing,
    /// Rows whose timestamp column passed the last one seen.
    #[serde(rename = "timestamp")]
    Timestamp,
    /// Rows after the last (timestamp, incrementing) pair seen.
    #[serde(rename = "timestamp+incrementing")]
    TimestampIncrementing,
}

/// Where a database source resumes (stored as JSON in the log).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcePosition {
    /// Last incrementing value read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Last timestamp read, `YYYY-MM-DD HH:MM:SS.ffffff` (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    /// bulk: the primary key of the last row read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pk: Option<Vec<Value>>,
    /// bulk over a table without a primary key: rows read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// Fetches rows for a query: all rows read (bad values null, under an all-nullable
/// schema) and the bad ones as (row, column, reason).
#[async_trait]
pub trait Fetch: Send {
    /// Runs `sql`, which returns the columns of `schema` in order.
    async fn fetch(
        &mut self,
        sql: &str,
        schema: &SchemaRef,
    ) -> Result<(RecordBatch, crate::db::cells::BadValues)>;
}

/// The query planner and poll loop of one source.
#[derive(Debug)]
pub struct Incremental {
    dialect: Dialect,
    table: String,
    quoted_table: String,
    select: String,
    mode: Mode,
    inc: Option<String>,
    ts: Option<String>,
    /// Bulk pagination key: the primary key when every column of it can be a literal.
    page_key: Vec<String>,
    primary_key: Vec<String>,
    schema: SchemaRef,
    delay_ms: u64,
    poll_interval: Duration,
    position: SourcePosition,
    idle_since: Option<Instant>,
}

impl Incremental {
    /// Plans reading `table` described by `info` per `config`; problems (missing or
    /// unsuitable columns) all at once.
    pub fn new(
        dialect: Dialect,
        info: &TableInfo,
        config: &DbSourceConfig,
    ) -> Result<Incremental, Vec<String>> {
        let table = &config.table;
        if !info.exists() {
            return Err(vec![format!(
                "table `{table}` does not exist (or has no columns this user can see)"
            )]);
        }
        let mut problems = Vec::new();
        let schema = match info.source_schema(table) {
            Ok(schema) => Some(schema),
            Err(p) => {
                problems.extend(p);
                None
            }
        };
        let mut need = |key: &str,
                        column: &Option<String>,
                        ok: fn(&DataType) -> bool,
                        what: &str|
         -> Option<String> {
            let Some(name) = column else {
                problems.push(format!("mode {:?} needs `{key}`", config.mode));
                return None;
            };
            match info.column(name) {
                None => problems.push(format!("{key} `{name}` is not a column of `{table}`")),
                Some(c) if !c.arrow.as_ref().is_some_and(ok) => problems.push(format!(
                    "{key} `{name}` has type {}; it must be {what}",
                    c.sql_type
                )),
                Some(_) => {}
            }
            Some(name.clone())
        };
        let integer =
            |t: &DataType| matches!(t, DataType::Int16 | DataType::Int32 | DataType::Int64);
        let timestamp = |t: &DataType| matches!(t, DataType::Timestamp(..));
        let (inc, ts) = match config.mode {
            Mode::Bulk => (None, None),
            Mode::Incrementing => (
                need(
                    "incrementing_column",
                    &config.incrementing_column,
                    integer,
                    "an integer",
                ),
                None,
            ),
            Mode::Timestamp => (
                None,
                need(
                    "timestamp_column",
                    &config.timestamp_column,
                    timestamp,
                    "a timestamp",
                ),
            ),
            Mode::TimestampIncrementing => (
                need(
                    "incrementing_column",
                    &config.incrementing_column,
                    integer,
                    "an integer",
                ),
                need(
                    "timestamp_column",
                    &config.timestamp_column,
                    timestamp,
                    "a timestamp",
                ),
            ),
        };
        let Some(schema) = schema.filter(|_| problems.is_empty()) else {
            return Err(problems);
        };
        let literal_key = info.primary_key.iter().all(|k| {
            info.column(k)
                .and_then(|c| c.arrow.as_ref())
                .is_some_and(|t| {
                    matches!(
                        t,
                        DataType::Int16
                            | DataType::Int32
                            | DataType::Int64
                            | DataType::Utf8
                            | DataType::Date32
                            | DataType::Decimal128(..)
                            | DataType::Timestamp(..)
                    )
                })
        });
        let columns: Vec<String> = info.columns.iter().map(|c| c.name.clone()).collect();
        Ok(Incremental {
            dialect,
            table: table.clone(),
            quoted_table: dialect.quote_table(table),
            select: dialect.column_list(&columns),
            mode: config.mode,
            inc,
            ts,
            page_key: if literal_key {
                info.primary_key.clone()
            } else {
                Vec::new()
            },
            primary_key: info.primary_key.clone(),
            schema,
            delay_ms: config.timestamp_delay_ms,
            poll_interval: Duration::from_millis(config.poll_interval_ms),
            position: SourcePosition::default(),
            idle_since: None,
        })
    }

    /// The Arrow schema of the rows.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Starts from `position` (`None`: the beginning).
    pub fn open(&mut self, position: Option<Position>) -> Result<()> {
        self.position = match position {
            None | Some(Value::Null) => SourcePosition::default(),
            Some(value) => serde_json::from_value(value.clone()).map_err(|e| {
                Error::connector(&self.table, format!("stored position {value} is not a database source position ({e}); was the source's type changed?"))
            })?,
        };
        Ok(())
    }

    /// The query of the next page of at most `limit` rows, reading only rows older than
    /// `upper_micros` in timestamp modes.
    pub fn next_query(&self, upper_micros: i64, limit: usize) -> String {
        let d = self.dialect;
        let p = &self.position;
        let mut conditions = Vec::new();
        let order: Vec<String>;
        let mut offset = String::new();
        if let Some(inc) = &self.inc {
            conditions.push(format!("{} IS NOT NULL", d.quote(inc)));
        }
        if let Some(ts) = &self.ts {
            conditions.push(format!(
                "{} < {}",
                d.quote(ts),
                d.timestamp_literal(upper_micros)
            ));
        }
        match self.mode {
            Mode::Bulk if self.page_key.is_empty() => {
                order = self.primary_key.clone();
                offset = format!(" OFFSET {}", p.offset.unwrap_or(0));
            }
            Mode::Bulk => {
                if let Some(pk) = &p.pk {
                    let values: Vec<String> = pk.iter().map(|v| self.literal(v)).collect();
                    conditions.push(format!(
                        "({}) > ({})",
                        d.column_list(&self.page_key),
                        values.join(", ")
                    ));
                }
                order = self.page_key.clone();
            }
            Mode::Incrementing => {
                let inc = self.inc.clone().unwrap_or_default();
                if let Some(id) = p.id {
                    conditions.push(format!("{} > {id}", d.quote(&inc)));
                }
                order = vec![inc];
            }
            Mode::Timestamp => {
                let ts = self.ts.clone().unwrap_or_default();
                if let Some(last) = p.ts.as_deref().and_then(parse_timestamp) {
                    conditions.push(format!("{} > {}", d.quote(&ts), d.timestamp_literal(last)));
                }
                order = vec![ts];
            }
            Mode::TimestampIncrementing => {
                let ts = self.ts.clone().unwrap_or_default();
                let inc = self.inc.clone().unwrap_or_default();
                if let (Some(last), Some(id)) = (p.ts.as_deref().and_then(parse_timestamp), p.id) {
                    let (qt, qi, lit) = (d.quote(&ts), d.quote(&inc), d.timestamp_literal(last));
                    let same = d.timestamp_equals(&qt, last);
                    conditions.push(format!("({qt} > {lit} OR ({same} AND {qi} > {id}))"));
                }
                order = vec![ts, inc];
            }
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let order = if order.is_empty() {
            String::new()
        } else {
            format!(" ORDER BY {}", d.column_list(&order))
        };
        format!(
            "SELECT {} FROM {}{filter}{order} LIMIT {limit}{offset}",
            self.select, self.quoted_table
        )
    }

    fn literal(&self, value: &Value) -> String {
        match value {
            Value::Number(n) => n.to_string(),
            Value::String(s) => self.dialect.string_literal(s),
            other => self.dialect.string_literal(&other.to_string()),
        }
    }

    /// Reads the next batch of at most `max_rows` rows through `fetch`.
    pub async fn poll(&mut self, fetch: &mut dyn Fetch, max_rows: usize) -> Result<Poll> {
        let limit = max_rows.max(1);
        if self.mode != Mode::Bulk
            && let Some(since) = self.idle_since
        {
            // The runtime may poll again at once: keep the configured pace here.
            let wait = self.poll_interval.saturating_sub(since.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        let now_micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        let upper = now_micros
            .saturating_sub(i64::try_from(self.delay_ms.saturating_mul(1000)).unwrap_or(i64::MAX));
        let sql = self.next_query(upper, limit);
        let (mut all, mut bad) = fetch.fetch(&sql, &self.schema).await?;
        if self.mode == Mode::Timestamp && all.num_rows() >= limit {
            (all, bad) = self.whole_timestamp_runs(fetch, all, bad).await?;
        }
        if all.num_rows() == 0 {
            if self.mode == Mode::Bulk {
                return Ok(Poll::Done);
            }
            self.idle_since = Some(Instant::now());
            return Ok(Poll::Idle);
        }
        self.idle_since = None;
        self.advance(&all)?;
        let rejects = self.rejects(&all, &bad);
        let rows = super::cells::RowsBuilder::good_rows(&self.schema, &all, &bad)?;
        Ok(Poll::Batch(SourceBatch {
            stream: Some(self.table.clone()),
            rows,
            tombstones: None,
            default_key: self.primary_key.clone(),
            rejects,
            position: serde_json::to_value(&self.position)
                .map_err(|e| Error::connector(&self.table, e))?,
        }))
    }

    /// A full page in timestamp mode: cut the last run of equal timestamps (it may go on
    /// past the page), or, when the page is one run, read that run whole.
    async fn whole_timestamp_runs(
        &self,
        fetch: &mut dyn Fetch,
        all: RecordBatch,
        bad: Vec<(usize, String, String)>,
    ) -> Result<(RecordBatch, crate::db::cells::BadValues)> {
        let column = self.ts_column(&all)?;
        let n = all.num_rows();
        let last = column.value(n - 1);
        let run = (0..n)
            .rev()
            .take_while(|&i| column.is_valid(i) && column.value(i) == last)
            .count();
        if run < n {
            let keep = n - run;
            let bad = bad.into_iter().filter(|(row, _, _)| *row < keep).collect();
            return Ok((all.slice(0, keep), bad));
        }
        let d = self.dialect;
        let ts = self.ts.clone().unwrap_or_default();
        let sql = format!(
            "SELECT {} FROM {} WHERE {}",
            self.select,
            self.quoted_table,
            d.timestamp_equals(&d.quote(&ts), last)
        );
        fetch.fetch(&sql, &self.schema).await
    }

    fn ts_column<'a>(
        &self,
        rows: &'a RecordBatch,
    ) -> Result<&'a arrow::array::PrimitiveArray<TimestampMicrosecondType>> {
        let name = self.ts.as_deref().unwrap_or_default();
        rows.column_by_name(name)
            .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
            .ok_or_else(|| {
                Error::connector(
                    &self.table,
                    format!("timestamp column `{name}` missing from the rows read"),
                )
            })
    }

    /// Moves the position past the last row of `rows`.
    fn advance(&mut self, rows: &RecordBatch) -> Result<()> {
        let last = rows.num_rows() - 1;
        if let Some(inc) = &self.inc {
            let column = rows
                .column_by_name(inc)
                .ok_or_else(|| Error::connector(&self.table, format!("`{inc}` missing")))?;
            self.position.id = integer_at(column.as_ref(), last);
        }
        if self.ts.is_some() {
            let column = self.ts_column(rows)?;
            if column.is_valid(last) {
                self.position.ts = Some(format_timestamp(column.value(last)));
            }
        }
        if self.mode == Mode::Bulk {
            if self.page_key.is_empty() {
                self.position.offset =
                    Some(self.position.offset.unwrap_or(0) + rows.num_rows() as u64);
            } else {
                let values = self
                    .page_key
                    .iter()
                    .map(|k| {
                        rows.column_by_name(k)
                            .map_or(Value::Null, |c| json_at(c.as_ref(), last))
                    })
                    .collect();
                self.position.pk = Some(values);
            }
        }
        Ok(())
    }

    fn rejects(&self, all: &RecordBatch, bad: &[(usize, String, String)]) -> Vec<Reject> {
        let mut rejects: Vec<Reject> = Vec::new();
        for (row, column, reason) in bad {
            let key: Vec<String> = self
                .primary_key
                .iter()
                .filter_map(|k| {
                    all.column_by_name(k)
                        .map(|c| format!("{k}={}", json_at(c.as_ref(), *row)))
                })
                .collect();
            let position = format!(
                "{}[{}]",
                self.table,
                if key.is_empty() {
                    format!("row {row}")
                } else {
                    key.join(",")
                }
            );
            if let Some(previous) = rejects.last_mut().filter(|r| r.position == position) {
                previous
                    .error
                    .push_str(&format!("; column `{column}`: {reason}"));
                continue;
            }
            let mut bytes = Vec::new();
            let mut writer = arrow::json::LineDelimitedWriter::new(&mut bytes);
            let _ = writer
                .write(&all.slice(*row, 1))
                .and_then(|()| writer.finish());
            rejects.push(Reject {
                position,
                bytes,
                error: format!("column `{column}`: {reason}"),
            });
        }
        rejects
    }
}

fn integer_at(column: &dyn Array, row: usize) -> Option<i64> {
    if column.is_null(row) {
        return None;
    }
    match column.data_type() {
        DataType::Int16 => Some(i64::from(column.as_primitive::<Int16Type>().value(row))),
        DataType::Int32 => Some(i64::from(column.as_primitive::<Int32Type>().value(row))),
        DataType::Int64 => Some(column.as_primitive::<Int64Type>().value(row)),
        _ => None,
    }
}

/// A key value as JSON: integers as numbers, the rest as the text of a SQL literal.
fn json_at(column: &dyn Array, row: usize) -> Value {
    if column.is_null(row) {
        return Value::Null;
    }
    if let Some(v) = integer_at(column, row) {
        return Value::from(v);
    }
    match column.data_type() {
        DataType::Utf8 => Value::from(column.as_string::<i32>().value(row)),
        DataType::Date32 => Value::from(format_date(i64::from(
            column.as_primitive::<Date32Type>().value(row),
        ))),
        DataType::Timestamp(..) => Value::from(format_timestamp(
            column.as_primitive::<TimestampMicrosecondType>().value(row),
        )),
        DataType::Decimal128(_, s) => Value::from(format_decimal(
            column.as_primitive::<Decimal128Type>().value(row),
            *s,
        )),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::table::Column;

    fn info() -> TableInfo {
        let col = |name: &str, ty: DataType| Column {
            name: name.into(),
            sql_type: "x".into(),
            arrow: Some(ty),
            nullable: false,
        };
        TableInfo {
            columns: vec![
                col("id", DataType::Int64),
                col(
                    "ts",
                    DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
                ),
                col("name", DataType::Utf8),
            ],
            primary_key: vec!["id".into()],
        }
    }

    fn config(mode: Mode) -> DbSourceConfig {
        DbSourceConfig {
            url: None,
            path: None,
            table: "t".into(),
            mode,
            incrementing_column: Some("id".into()),
            timestamp_column: Some("ts".into()),
            poll_interval_ms: 10,
            timestamp_delay_ms: 0,
        }
    }

    #[test]
    fn queries_resume_after_the_position() {
        // Proves each mode's query starts strictly after the stored position.
        let mut plan = Incremental::new(
            Dialect::Postgres,
            &info(),
            &config(Mode::TimestampIncrementing),
        )
        .unwrap();
        plan.open(Some(
            serde_json::json!({"id": 7, "ts": "2024-01-01 00:00:00.000000"}),
        ))
        .unwrap();
        let sql = plan.next_query(0, 10);
        assert!(sql.contains("(\"ts\" > '2024-01-01 00:00:00.000000' OR (\"ts\" = '2024-01-01 00:00:00.000000' AND \"id\" > 7))"), "{sql}");
        assert!(sql.ends_with("ORDER BY \"ts\", \"id\" LIMIT 10"), "{sql}");
        let mut bulk = Incremental::new(Dialect::Mysql, &info(), &config(Mode::Bulk)).unwrap();
        bulk.open(Some(serde_json::json!({"pk": [41]}))).unwrap();
        assert!(
            bulk.next_query(0, 5)
                .contains("WHERE (`id`) > (41) ORDER BY `id` LIMIT 5")
        );
    }

    #[test]
    fn missing_mode_columns_are_all_reported() {
        // Proves a source names every missing or unsuitable mode column at once.
        let mut cfg = config(Mode::TimestampIncrementing);
        cfg.incrementing_column = Some("name".into());
        cfg.timestamp_column = Some("nope".into());
        let problems = Incremental::new(Dialect::Sqlite, &info(), &cfg).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("must be an integer") && problems[1].contains("`nope`"));
    }
}
