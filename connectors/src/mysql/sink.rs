//! The MySQL sink's backend: multi-row statements with bound parameters, as many rows a
//! statement as the placeholder limit allows (up to 1,000).

use arrow::array::RecordBatch;
use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Value};

use super::{PLACEHOLDERS_MAX, breaks_connection, classify, connect, table_info};
use crate::batch::Offsets;
use crate::config::Settings;
use crate::db::config::{DbSinkConfig, address, require_url};
use crate::db::sink::{Backend, DbSink, WritePlan};
use crate::db::table::TableInfo;
use crate::db::types::{MICROS_PER_DAY, civil_from_days, format_decimal};
use crate::db::values::{Param, param};
use crate::db::{Dialect, SinkMode};
use crate::error::{Error, Result};

/// The `type = "mysql"` sink.
pub type MysqlSink = DbSink<MysqlBackend>;

/// Rows a statement at most (fewer when the columns would pass the placeholder limit).
const STATEMENT_ROWS_MAX: usize = 1000;

/// Builds the sink from its section of the pipeline file.
pub fn build(settings: &Settings) -> Result<MysqlSink> {
    let config: DbSinkConfig = settings.parse()?;
    let url = require_url(settings, &config.url, &config.path, "mysql")?;
    Ok(DbSink::new(
        &settings.name,
        config,
        MysqlBackend {
            url,
            name: settings.name.clone(),
            conn: None,
        },
    ))
}

/// A MySQL connection for a sink.
pub struct MysqlBackend {
    url: String,
    name: String,
    conn: Option<Conn>,
}

/// A parameter as MySQL's binary protocol sends it.
pub(crate) fn value(p: Param<'_>) -> Value {
    match p {
        Param::Null => Value::NULL,
        Param::Int(v) => Value::Int(v),
        Param::Float(v) => Value::Float(v),
        Param::Double(v) => Value::Double(v),
        Param::Decimal(v, s) => Value::Bytes(format_decimal(v, s).into_bytes()),
        Param::Text(v) => Value::Bytes(v.as_bytes().to_vec()),
        Param::Bytes(v) => Value::Bytes(v.to_vec()),
        Param::Date(d) => {
            let (y, m, day) = civil_from_days(d);
            Value::Date(y as u16, m as u8, day as u8, 0, 0, 0, 0)
        }
        Param::Timestamp(t) => {
            let (y, m, day) = civil_from_days(t.div_euclid(MICROS_PER_DAY));
            let rest = t.rem_euclid(MICROS_PER_DAY);
            let secs = rest / 1_000_000;
            Value::Date(
                y as u16,
                m as u8,
                day as u8,
                (secs / 3600) as u8,
                (secs / 60 % 60) as u8,
                (secs % 60) as u8,
                (rest % 1_000_000) as u32,
            )
        }
    }
}

impl MysqlBackend {
    async fn run(&mut self, sql: &str, params: Vec<Value>) -> Result<()> {
        let conn = self.conn.as_mut().ok_or_else(|| {
            Error::unavailable(format!("mysql {}", address(&self.url)), "not connected")
        })?;
        let result = if params.is_empty() {
            conn.query_drop(sql).await
        } else {
            conn.exec_drop(sql, Params::Positional(params)).await
        };
        let result = result.map_err(|e| classify(&self.url, &self.name, e));
        if let Err(e) = &result
            && breaks_connection(e)
        {
            self.conn = None;
        }
        result
    }

    /// Runs `head` + `(?, ...), (?, ...)` + `tail` over `rows` in statements of as many
    /// rows as the placeholder limit allows.
    async fn multi_row(&mut self, head: &str, tail: &str, rows: &RecordBatch) -> Result<()> {
        let width = rows.num_columns().max(1);
        let per_statement = (PLACEHOLDERS_MAX / width).clamp(1, STATEMENT_ROWS_MAX);
        let tuple = format!("({})", vec!["?"; width].join(", "));
        let mut start = 0;
        while start < rows.num_rows() {
            let n = per_statement.min(rows.num_rows() - start);
            let mut params = Vec::with_capacity(n * width);
            for row in start..start + n {
                for column in rows.columns() {
                    params.push(value(param(column.as_ref(), row)));
                }
            }
            let sql = format!("{head}{}{tail}", vec![tuple.as_str(); n].join(", "));
            self.run(&sql, params).await?;
            start += n;
        }
        Ok(())
    }
}

#[async_trait]
impl Backend for MysqlBackend {
    fn dialect(&self) -> Dialect {
        Dialect::Mysql
    }

    fn address(&self) -> String {
        format!("mysql {}", address(&self.url))
    }

    async fn connect(&mut self) -> Result<()> {
        if self.conn.is_none() {
            self.conn = Some(connect(&self.url, &self.name).await?);
        }
        Ok(())
    }

    fn connected(&self) -> bool {
        self.conn.is_some()
    }

    async fn execute(&mut self, sql: &str) -> Result<()> {
        self.run(sql, Vec::new()).await
    }

    async fn table_info(&mut self, table: &str) -> Result<TableInfo> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Error::unavailable("mysql", "not connected"))?;
        table_info(conn, table)
            .await
            .map_err(|e| classify(&self.url, &self.name, e))
    }

    async fn read_offsets(&mut self, select: &str, pipeline: &str, sink: &str) -> Result<Offsets> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Error::unavailable("mysql", "not connected"))?;
        let rows: Vec<(String, i32, i64)> = conn
            .exec(select, (pipeline, sink))
            .await
            .map_err(|e| classify(&self.url, &self.name, e))?;
        Ok(rows.into_iter().map(|(t, p, n)| ((t, p), n)).collect())
    }

    async fn prepare(&mut self, _plan: &WritePlan) -> Result<()> {
        Ok(())
    }

    async fn write_rows(&mut self, plan: &WritePlan, rows: &RecordBatch) -> Result<()> {
        let d = Dialect::Mysql;
        let head = format!(
            "INSERT INTO {} ({}) VALUES ",
            plan.quoted,
            d.column_list(&plan.columns)
        );
        let tail = if plan.mode == SinkMode::Upsert {
            d.upsert_clause(&plan.key, &plan.columns)
        } else {
            String::new()
        };
        self.multi_row(&head, &tail, rows).await
    }

    async fn delete_rows(&mut self, plan: &WritePlan, keys: &RecordBatch) -> Result<()> {
        let d = Dialect::Mysql;
        let head = format!(
            "DELETE FROM {} WHERE ({}) IN (",
            plan.quoted,
            d.column_list(&plan.key)
        );
        self.multi_row(&head, ")", keys).await
    }
}
