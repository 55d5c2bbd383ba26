//! The PostgreSQL source's backend: runs each page's query and decodes the binary result
//! values into Arrow builders.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use tokio_postgres::Client;
use tokio_postgres::types::{FromSql, Type};

use super::copy::{read_date, read_numeric, read_timestamp};
use super::{catalog, classify, connect};
use crate::config::Settings;
use crate::db::Dialect;
use crate::db::cells::{Cell, RowsBuilder};
use crate::db::config::{DbSourceConfig, require_url};
use crate::db::incremental::Fetch;
use crate::db::source::{DbSource, SourceBackend};
use crate::db::table::TableInfo;
use crate::error::{Error, Result};

/// The `type = "postgres"` source.
pub type PostgresSource = DbSource<PostgresReader>;

/// Builds the source from its section of the pipeline file.
pub fn build(settings: &Settings) -> Result<PostgresSource> {
    let config: DbSourceConfig = settings.parse()?;
    let url = require_url(settings, &config.url, &config.path, "postgres")?;
    let reader = PostgresReader {
        url,
        name: settings.name.clone(),
        client: None,
    };
    Ok(DbSource::new(&settings.name, config, reader))
}

/// A PostgreSQL connection for a source.
pub struct PostgresReader {
    url: String,
    name: String,
    client: Option<Client>,
}

/// A value's bytes as the server sent them (binary format), decoded by column type later.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> Result<Raw<'a>, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn be<const N: usize>(raw: &[u8]) -> Option<[u8; N]> {
    raw.try_into().ok()
}

/// The cell of a binary value of type `ty`.
fn cell<'a>(ty: &Type, raw: &'a [u8]) -> Cell<'a> {
    let bad = Cell::Text("<undecodable value>");
    match *ty {
        Type::BOOL => raw.first().map_or(bad, |b| Cell::Bool(*b != 0)),
        Type::INT2 => be::<2>(raw).map_or(bad, |b| Cell::Int(i64::from(i16::from_be_bytes(b)))),
        Type::INT4 => be::<4>(raw).map_or(bad, |b| Cell::Int(i64::from(i32::from_be_bytes(b)))),
        Type::INT8 => be::<8>(raw).map_or(bad, |b| Cell::Int(i64::from_be_bytes(b))),
        Type::FLOAT4 => be::<4>(raw).map_or(bad, |b| Cell::Float(f64::from(f32::from_be_bytes(b)))),
        Type::FLOAT8 => be::<8>(raw).map_or(bad, |b| Cell::Float(f64::from_be_bytes(b))),
        Type::NUMERIC => read_numeric(raw)
            .map_or(Cell::Text("NaN, infinite or over 38 digits"), |(v, s)| {
                Cell::Decimal(v, s)
            }),
        Type::BYTEA => Cell::Bytes(raw),
        Type::DATE => read_date(raw).map_or(bad, Cell::Date),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => read_timestamp(raw).map_or(bad, Cell::Timestamp),
        // text, varchar, bpchar, name: UTF-8 bytes.
        _ => std::str::from_utf8(raw).map_or(bad, Cell::Text),
    }
}

#[async_trait]
impl Fetch for PostgresReader {
    async fn fetch(
        &mut self,
        sql: &str,
        schema: &SchemaRef,
    ) -> Result<(RecordBatch, crate::db::cells::BadValues)> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| Error::unavailable("postgres", "not connected"))?;
        let rows = client
            .query(sql, &[])
            .await
            .map_err(|e| classify(&self.url, &self.name, e))?;
        let mut builder = RowsBuilder::new(schema.clone(), rows.len())?;
        for row in &rows {
            for (i, column) in row.columns().iter().enumerate() {
                let raw: Option<Raw<'_>> = row
                    .try_get(i)
                    .map_err(|e| classify(&self.url, &self.name, e))?;
                let value = raw.map_or(Cell::Null, |r| cell(column.type_(), r.0));
                builder.push(i, &value);
            }
            builder.end_row();
        }
        builder.finish()
    }
}

#[async_trait]
impl SourceBackend for PostgresReader {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn connect(&mut self) -> Result<()> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.client = Some(connect(&self.url, &format!("sluice/{}", self.name)).await?);
        }
        Ok(())
    }

    async fn table_info(&mut self, table: &str) -> Result<TableInfo> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| Error::unavailable("postgres", "not connected"))?;
        catalog::table_info(client, table)
            .await
            .map_err(|e| classify(&self.url, &self.name, e))
    }
}
