//! The PostgreSQL endpoint as a PostgreSQL client sees it (tokio-postgres over loopback,
//! simple query protocol, as psql uses): DDL tags, INSERT counts, rows with their
//! PostgreSQL types and text, NULLs, errors with a SQLSTATE that leave the connection
//! usable, and several statements in one query string. Guards the wire mapping that
//! psql and drivers depend on.

use std::sync::Arc;

use sluice_core::Log;
use sluice_sql::SqlEngine;
use sluice_sql::pg::PgServer;
use tokio_postgres::{NoTls, SimpleQueryMessage};

fn rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn counts(messages: &[SimpleQueryMessage]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_style_queries_over_the_wire() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Arc::new(SqlEngine::open(Log::open(dir.path()).expect("log")).expect("engine"));
    let server = PgServer::bind(engine, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = server.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={} user=sluice", addr.port()),
        NoTls,
    )
    .await
    .expect("connect");
    let connection = tokio::spawn(connection);

    let created = client
        .simple_query(
            "CREATE TABLE orders (id BIGINT, customer VARCHAR, amount DOUBLE, paid BOOLEAN, ts TIMESTAMP) \
             WITH (topic = 'orders', format = 'json', partitions = 2)",
        )
        .await
        .expect("create");
    assert_eq!(counts(&created), [0]);

    let inserted = client
        .simple_query(
            "INSERT INTO orders VALUES (1, 'ada', 2.5, true, TIMESTAMP '2024-05-01 10:00:00'), \
                                       (2, NULL, 4, false, NULL)",
        )
        .await
        .expect("insert");
    assert_eq!(counts(&inserted), [2]);

    let selected = client
        .simple_query("SELECT id, customer, amount, paid, ts, _key FROM orders ORDER BY id")
        .await
        .expect("select");
    assert_eq!(
        rows(&selected),
        [
            vec![
                Some("1".into()),
                Some("ada".into()),
                Some("2.5".into()),
                Some("t".into()),
                Some("2024-05-01 10:00:00".into()),
                None
            ],
            vec![
                Some("2".into()),
                None,
                Some("4.0".into()),
                Some("f".into()),
                None,
                None
            ],
        ]
    );
    assert_eq!(counts(&selected), [2]);

    // Typed results through the prepared-statement-free path: column types as announced.
    if let Some(SimpleQueryMessage::RowDescription(columns)) = selected.first() {
        let names: Vec<&str> = columns.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["id", "customer", "amount", "paid", "ts", "_key"]);
    }

    let error = client
        .simple_query("SELECT * FROM missing")
        .await
        .expect_err("unknown table");
    let db_error = error.as_db_error().expect("a server error");
    assert!(db_error.message().contains("missing"), "{db_error:?}");
    assert_eq!(db_error.code().code(), "42P01");

    // The connection goes on after an error; two statements, two results.
    let both = client
        .simple_query("SELECT count(*) AS n FROM orders; SELECT sum(amount) AS total FROM orders")
        .await
        .expect("two statements");
    assert_eq!(
        rows(&both),
        [vec![Some("2".to_string())], vec![Some("6.5".to_string())]]
    );

    // The extended protocol, as drivers use it: prepared statements, parameters inferred
    // by DataFusion and sent in binary, results in binary.
    let statement = client
        .prepare("SELECT id, customer, amount, paid, ts FROM orders WHERE id = $1")
        .await
        .expect("prepare");
    assert_eq!(statement.params(), [tokio_postgres::types::Type::INT8]);
    let row = client
        .query_one(&statement, &[&1_i64])
        .await
        .expect("query one");
    assert_eq!(row.get::<_, i64>("id"), 1);
    assert_eq!(row.get::<_, String>("customer"), "ada");
    assert_eq!(row.get::<_, f64>("amount"), 2.5);
    assert!(row.get::<_, bool>("paid"));
    let ts: std::time::SystemTime = row.get("ts");
    let ms = ts
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    assert_eq!(ms, 1_714_557_600_000);
    let row = client
        .query_one(&statement, &[&2_i64])
        .await
        .expect("query two");
    assert_eq!(row.get::<_, Option<String>>("customer"), None);

    let inserted = client
        .execute(
            "INSERT INTO orders (id, customer, amount) VALUES ($1, $2, $3)",
            &[&5_i64, &"eve", &0.5_f64],
        )
        .await
        .expect("insert with parameters");
    assert_eq!(inserted, 1);
    let row = client
        .query_one(
            "SELECT count(*) AS n, sum(amount) AS total FROM orders WHERE amount > $1",
            &[&0.1_f64],
        )
        .await
        .expect("aggregate");
    assert_eq!(row.get::<_, i64>("n"), 3);
    assert_eq!(row.get::<_, f64>("total"), 7.0);
    let created = client
        .execute(
            "CREATE TABLE other (a INT) WITH (topic = 'other', format = 'csv')",
            &[],
        )
        .await
        .expect("DDL through the extended protocol");
    assert_eq!(created, 0);

    // What drivers and BI tools send besides queries: a transaction around statements
    // (accepted; each statement takes effect as it runs), session settings, SHOW.
    let mut client = client;
    let tx = client.transaction().await.expect("BEGIN");
    let row = tx
        .query_one("SELECT count(*) AS n FROM orders", &[])
        .await
        .expect("query in a transaction");
    assert_eq!(row.get::<_, i64>("n"), 3);
    tx.commit().await.expect("COMMIT");
    let answered = client
        .simple_query(
            "SET extra_float_digits = 3; SET application_name = 'test';              SHOW server_version; SHOW TRANSACTION ISOLATION LEVEL;              SELECT current_database(), current_schema(); ROLLBACK",
        )
        .await
        .expect("session statements");
    assert_eq!(
        rows(&answered),
        [
            vec![Some("15.0".to_string())],
            vec![Some("read committed".to_string())],
            vec![Some("datafusion".to_string()), Some("public".to_string())],
        ]
    );
    let shown = client
        .query_one("SHOW search_path", &[])
        .await
        .expect("SHOW through the extended protocol");
    assert_eq!(shown.get::<_, String>(0), "public");
    // The system catalogs tools list tables and columns through.
    let tables = client
        .query(
            "SELECT c.relname FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname",
            &[],
        )
        .await
        .expect("pg_class");
    let names: Vec<String> = tables.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, ["orders", "other"]);
    let columns = client
        .query(
            "SELECT a.attname, t.typname FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
             WHERE c.relname = 'orders' ORDER BY a.attnum LIMIT 3",
            &[],
        )
        .await
        .expect("pg_attribute");
    let columns: Vec<(String, String)> = columns.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        columns,
        [
            ("id".to_string(), "int8".to_string()),
            ("customer".to_string(), "varchar".to_string()),
            ("amount".to_string(), "float8".to_string()),
        ]
    );
    let listed = client
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .expect("pg_tables");
    assert_eq!(listed.get::<_, i64>(0), 2);
    let unknown = client
        .simple_query("SET no_such_setting = 1")
        .await
        .expect_err("an unknown setting is an error");
    assert!(unknown.as_db_error().is_some(), "{unknown}");

    drop(client);
    let _ = connection.await;
    let _ = stop.send(());
    serving.await.expect("join").expect("serve");
}
