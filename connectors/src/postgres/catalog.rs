//! Reading a table's description from PostgreSQL's catalog.

use tokio_postgres::Client;

use crate::db::Dialect;
use crate::db::table::{Column, TableInfo};

/// The columns and primary key of `table` (schema-qualified or on the search path).
pub(crate) async fn table_info(
    client: &Client,
    table: &str,
) -> Result<TableInfo, tokio_postgres::Error> {
    let (schema, name) = match table.split_once('.') {
        Some((s, n)) => (Some(s), n),
        None => (None, table),
    };
    let rows = client
        .query(
            "SELECT column_name::text, data_type::text, numeric_precision::int, numeric_scale::int, \
                    is_nullable::text = 'YES' \
             FROM information_schema.columns \
             WHERE table_schema = COALESCE($1, current_schema()) AND table_name = $2 \
             ORDER BY ordinal_position",
            &[&schema, &name],
        )
        .await?;
    let mut columns = Vec::with_capacity(rows.len());
    for row in &rows {
        let sql_type: String = row.try_get(1)?;
        let precision: Option<i32> = row.try_get(2)?;
        let scale: Option<i32> = row.try_get(3)?;
        let numeric = sql_type == "numeric";
        columns.push(Column {
            name: row.try_get(0)?,
            arrow: Dialect::Postgres.arrow_type(
                &sql_type,
                precision.filter(|_| numeric).map(i64::from),
                scale.filter(|_| numeric).map(i64::from),
            ),
            sql_type,
            nullable: row.try_get(4)?,
        });
    }
    let mut primary_key = Vec::new();
    if !columns.is_empty() {
        let quoted = Dialect::Postgres.quote_table(table);
        for row in client
            .query(
                "SELECT a.attname::text FROM pg_index i \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 WHERE i.indrelid = $1::text::regclass AND i.indisprimary \
                 ORDER BY array_position(i.indkey::int2[], a.attnum)",
                &[&quoted],
            )
            .await?
        {
            primary_key.push(row.try_get(0)?);
        }
    }
    Ok(TableInfo {
        columns,
        primary_key,
    })
}
