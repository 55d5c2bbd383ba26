//! The MySQL source's backend: runs each page's query through the binary protocol, so
//! values arrive typed (integers, floats, dates) rather than as text.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use super::{breaks_connection, classify, connect, table_info};
use crate::config::Settings;
use crate::db::Dialect;
use crate::db::cells::{Cell, RowsBuilder};
use crate::db::config::{DbSourceConfig, require_url};
use crate::db::incremental::Fetch;
use crate::db::source::{DbSource, SourceBackend};
use crate::db::table::TableInfo;
use crate::db::types::{MICROS_PER_DAY, days_from_civil};
use crate::error::{Error, Result};

/// The `type = "mysql"` source.
pub type MysqlSource = DbSource<MysqlReader>;

/// Builds the source from its section of the pipeline file.
pub fn build(settings: &Settings) -> Result<MysqlSource> {
    let config: DbSourceConfig = settings.parse()?;
    let url = require_url(settings, &config.url, &config.path, "mysql")?;
    Ok(DbSource::new(
        &settings.name,
        config,
        MysqlReader {
            url,
            name: settings.name.clone(),
            conn: None,
        },
    ))
}

/// A MySQL connection for a source.
pub struct MysqlReader {
    url: String,
    name: String,
    conn: Option<Conn>,
}

fn cell(value: &Value) -> Cell<'_> {
    match value {
        Value::NULL => Cell::Null,
        Value::Bytes(b) => Cell::Bytes(b),
        Value::Int(v) => Cell::Int(*v),
        Value::UInt(v) => {
            i64::try_from(*v).map_or(Cell::Text("unsigned value past BIGINT"), Cell::Int)
        }
        Value::Float(v) => Cell::Float(f64::from(*v)),
        Value::Double(v) => Cell::Float(*v),
        Value::Date(y, m, d, h, mi, s, us) => {
            let days = days_from_civil(i64::from(*y), u32::from(*m), u32::from(*d));
            let secs = i64::from(*h) * 3600 + i64::from(*mi) * 60 + i64::from(*s);
            Cell::Timestamp(days * MICROS_PER_DAY + secs * 1_000_000 + i64::from(*us))
        }
        Value::Time(..) => Cell::Text("a TIME value"),
    }
}

#[async_trait]
impl Fetch for MysqlReader {
    async fn fetch(
        &mut self,
        sql: &str,
        schema: &SchemaRef,
    ) -> Result<(RecordBatch, crate::db::cells::BadValues)> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Error::unavailable("mysql", "not connected"))?;
        let rows: Vec<Row> = match conn.exec(sql, ()).await {
            Ok(rows) => rows,
            Err(e) => {
                let e = classify(&self.url, &self.name, e);
                if breaks_connection(&e) {
                    self.conn = None;
                }
                return Err(e);
            }
        };
        let mut builder = RowsBuilder::new(schema.clone(), rows.len())?;
        for row in &rows {
            for i in 0..row.len() {
                let value = row.as_ref(i).map_or(Cell::Null, cell);
                builder.push(i, &value);
            }
            builder.end_row();
        }
        builder.finish()
    }
}

#[async_trait]
impl SourceBackend for MysqlReader {
    fn dialect(&self) -> Dialect {
        Dialect::Mysql
    }

    async fn connect(&mut self) -> Result<()> {
        if self.conn.is_none() {
            self.conn = Some(connect(&self.url, &self.name).await?);
        }
        Ok(())
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
}
