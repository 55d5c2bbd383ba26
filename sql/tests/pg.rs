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

/// A server over a fresh data directory and a client connected to it.
struct Served {
    client: tokio_postgres::Client,
    connection: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn serve() -> Served {
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
    Served {
        client,
        connection: tokio::spawn(connection),
        stop,
        serving,
        _dir: dir,
    }
}

impl Served {
    async fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        match self.client.simple_query(sql).await {
            Ok(messages) => rows(&messages),
            Err(e) => panic!("{sql}\n  failed: {e:?}"),
        }
    }

    async fn close(self) {
        drop(self.client);
        let _ = self.connection.await;
        let _ = self.stop.send(());
        self.serving.await.expect("join").expect("serve");
    }
}

fn strings(rows: &[&[&str]]) -> Vec<Vec<Option<String>>> {
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|v| (*v != "NULL").then(|| (*v).to_string()))
                .collect()
        })
        .collect()
}

/// psql 15's `\dt`, `\d`, `\d orders`, `\dn` and `\l` send these queries (captured with
/// `psql -E` against PostgreSQL 15); each must run and describe the session's tables as
/// PostgreSQL would. Guards the catalog tables, the catalog functions, the rewrite of
/// psql's syntax and the pruning of its footer queries over catalogs Sluice keeps empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_describe_commands() {
    let served = serve().await;
    served
        .rows(
            "CREATE TABLE orders (id BIGINT NOT NULL, customer VARCHAR, amount DOUBLE, \
             paid BOOLEAN, ts TIMESTAMP) WITH (topic = 'orders', format = 'json'); \
             CREATE TABLE lines (value VARCHAR) WITH (topic = 'lines', format = 'raw')",
        )
        .await;

    // \dt (and \d, with more kinds).
    let list = |kinds: &str| {
        format!(
            "SELECT n.nspname as \"Schema\",
  c.relname as \"Name\",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as \"Type\",
  pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE c.relkind IN ({kinds})
      AND n.nspname <> 'pg_catalog'
      AND n.nspname !~ '^pg_toast'
      AND n.nspname <> 'information_schema'
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;"
        )
    };
    let expected = strings(&[
        &["public", "lines", "table", "sluice"],
        &["public", "orders", "table", "sluice"],
    ]);
    assert_eq!(served.rows(&list("'r','p',''")).await, expected);
    assert_eq!(
        served.rows(&list("'r','p','v','m','S','f',''")).await,
        expected
    );

    // \dt+: sizes on disk (the topic's segments; orders has one record).
    served
        .rows("INSERT INTO orders VALUES (1, 'ada', 2.5, true, NULL)")
        .await;
    let sized = served
        .rows(
            "SELECT n.nspname as \"Schema\",
  c.relname as \"Name\",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as \"Type\",
  pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\",
  CASE c.relpersistence WHEN 'p' THEN 'permanent' WHEN 't' THEN 'temporary' WHEN 'u' THEN 'unlogged' END as \"Persistence\",
  am.amname as \"Access method\",
  pg_catalog.pg_size_pretty(pg_catalog.pg_table_size(c.oid)) as \"Size\",
  pg_catalog.obj_description(c.oid, 'pg_class') as \"Description\"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE c.relkind IN ('r','p','')
      AND n.nspname <> 'pg_catalog'
      AND n.nspname !~ '^pg_toast'
      AND n.nspname <> 'information_schema'
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;",
        )
        .await;
    let sizes: Vec<(String, String)> = sized
        .iter()
        .map(|r| {
            assert_eq!(
                r[2..6],
                [
                    Some("table".into()),
                    Some("sluice".into()),
                    Some("permanent".into()),
                    None
                ]
            );
            (
                r[1].clone().unwrap_or_default(),
                r[6].clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(sizes.len(), 2, "{sized:?}");
    assert_eq!(sizes[0], ("lines".to_string(), "0 bytes".to_string()));
    assert_eq!(sizes[1].0, "orders");
    let orders_bytes: i64 = sizes[1]
        .1
        .strip_suffix(" bytes")
        .and_then(|n| n.parse().ok())
        .expect("a small size in bytes");
    assert!(orders_bytes > 0, "{sized:?}");

    // \d orders: find the table, then describe it by id.
    let found = served
        .rows(
            "SELECT c.oid,
  n.nspname,
  c.relname
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname OPERATOR(pg_catalog.~) '^(orders)$' COLLATE pg_catalog.default
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 2, 3;",
        )
        .await;
    assert_eq!(found.len(), 1, "{found:?}");
    let oid = found[0][0].clone().expect("an oid");
    assert_eq!(
        found[0][1..],
        [Some("public".into()), Some("orders".into())]
    );
    let info = served
        .rows(&format!(
            "SELECT c.relchecks, c.relkind, c.relhasindex, c.relhasrules, c.relhastriggers, c.relrowsecurity, c.relforcerowsecurity, false AS relhasoids, c.relispartition, '', c.reltablespace, CASE WHEN c.reloftype = 0 THEN '' ELSE c.reloftype::pg_catalog.regtype::pg_catalog.text END, c.relpersistence, c.relreplident, am.amname
FROM pg_catalog.pg_class c
 LEFT JOIN pg_catalog.pg_class tc ON (c.reltoastrelid = tc.oid)
LEFT JOIN pg_catalog.pg_am am ON (c.relam = am.oid)
WHERE c.oid = '{oid}';"
        ))
        .await;
    assert_eq!(
        info,
        strings(&[&[
            "0", "r", "f", "f", "f", "f", "f", "f", "f", "", "0", "", "p", "d", "NULL"
        ]])
    );
    let columns = served
        .rows(&format!(
            "SELECT a.attname,
  pg_catalog.format_type(a.atttypid, a.atttypmod),
  (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)
   FROM pg_catalog.pg_attrdef d
   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),
  a.attnotnull,
  (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t
   WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation,
  a.attidentity,
  a.attgenerated
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = '{oid}' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;"
        ))
        .await;
    assert_eq!(
        columns,
        strings(&[
            &["id", "bigint", "NULL", "t", "NULL", "", ""],
            &["customer", "character varying", "NULL", "f", "NULL", "", ""],
            &["amount", "double precision", "NULL", "f", "NULL", "", ""],
            &["paid", "boolean", "NULL", "f", "NULL", "", ""],
            &[
                "ts",
                "timestamp without time zone",
                "NULL",
                "f",
                "NULL",
                "",
                ""
            ],
            &["_key", "character varying", "NULL", "f", "NULL", "", ""],
            &["_partition", "integer", "NULL", "f", "NULL", "", ""],
            &["_offset", "bigint", "NULL", "f", "NULL", "", ""],
            &[
                "_timestamp",
                "timestamp without time zone",
                "NULL",
                "f",
                "NULL",
                "",
                ""
            ],
            &["_headers", "text", "NULL", "f", "NULL", "", ""],
        ])
    );
    // The footers: policies, extended statistics, publications, parents, children. Sluice
    // has none of them.
    let footers = [
        format!("SELECT pol.polname, pol.polpermissive,
  CASE WHEN pol.polroles = '{{0}}' THEN NULL ELSE pg_catalog.array_to_string(array(select rolname from pg_catalog.pg_roles where oid = any (pol.polroles) order by 1),',') END,
  pg_catalog.pg_get_expr(pol.polqual, pol.polrelid),
  pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid),
  CASE pol.polcmd
    WHEN 'r' THEN 'SELECT'
    WHEN 'a' THEN 'INSERT'
    WHEN 'w' THEN 'UPDATE'
    WHEN 'd' THEN 'DELETE'
    END AS cmd
FROM pg_catalog.pg_policy pol
WHERE pol.polrelid = '{oid}' ORDER BY 1;"),
        format!("SELECT oid, stxrelid::pg_catalog.regclass, stxnamespace::pg_catalog.regnamespace::pg_catalog.text AS nsp, stxname,
pg_catalog.pg_get_statisticsobjdef_columns(oid) AS columns,
  'd' = any(stxkind) AS ndist_enabled,
  'f' = any(stxkind) AS deps_enabled,
  'm' = any(stxkind) AS mcv_enabled,
stxstattarget
FROM pg_catalog.pg_statistic_ext
WHERE stxrelid = '{oid}'
ORDER BY nsp, stxname;"),
        format!("SELECT pubname
     , NULL
     , NULL
FROM pg_catalog.pg_publication p
     JOIN pg_catalog.pg_publication_namespace pn ON p.oid = pn.pnpubid
     JOIN pg_catalog.pg_class pc ON pc.relnamespace = pn.pnnspid
WHERE pc.oid ='{oid}' and pg_catalog.pg_relation_is_publishable('{oid}')
UNION
SELECT pubname
     , pg_get_expr(pr.prqual, c.oid)
     , (CASE WHEN pr.prattrs IS NOT NULL THEN
         (SELECT string_agg(attname, ', ')
           FROM pg_catalog.generate_series(0, pg_catalog.array_upper(pr.prattrs::pg_catalog.int2[], 1)) s,
                pg_catalog.pg_attribute
          WHERE attrelid = pr.prrelid AND attnum = prattrs[s])
        ELSE NULL END) FROM pg_catalog.pg_publication p
     JOIN pg_catalog.pg_publication_rel pr ON p.oid = pr.prpubid
     JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid
WHERE pr.prrelid = '{oid}'
UNION
SELECT pubname
     , NULL
     , NULL
FROM pg_catalog.pg_publication p
WHERE p.puballtables AND pg_catalog.pg_relation_is_publishable('{oid}')
ORDER BY 1;"),
        format!("SELECT c.oid::pg_catalog.regclass
FROM pg_catalog.pg_class c, pg_catalog.pg_inherits i
WHERE c.oid = i.inhparent AND i.inhrelid = '{oid}'
  AND c.relkind != 'p' AND c.relkind != 'I'
ORDER BY inhseqno;"),
        format!("SELECT c.oid::pg_catalog.regclass, c.relkind, inhdetachpending, pg_catalog.pg_get_expr(c.relpartbound, c.oid)
FROM pg_catalog.pg_class c, pg_catalog.pg_inherits i
WHERE c.oid = i.inhrelid AND i.inhparent = '{oid}'
ORDER BY pg_catalog.pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT', c.oid::pg_catalog.regclass::pg_catalog.text;"),
    ];
    for footer in &footers {
        assert_eq!(served.rows(footer).await, strings(&[]), "{footer}");
    }

    // \dn
    assert_eq!(
        served
            .rows(
                "SELECT n.nspname AS \"Name\",
  pg_catalog.pg_get_userbyid(n.nspowner) AS \"Owner\"
FROM pg_catalog.pg_namespace n
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
ORDER BY 1;"
            )
            .await,
        strings(&[&["public", "sluice"]])
    );

    // \l
    assert_eq!(
        served
            .rows(
                "SELECT d.datname as \"Name\",
       pg_catalog.pg_get_userbyid(d.datdba) as \"Owner\",
       pg_catalog.pg_encoding_to_char(d.encoding) as \"Encoding\",
       d.datcollate as \"Collate\",
       d.datctype as \"Ctype\",
       d.daticulocale as \"ICU Locale\",
       CASE d.datlocprovider WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu' END AS \"Locale Provider\",
       pg_catalog.array_to_string(d.datacl, E'\\n') AS \"Access privileges\"
FROM pg_catalog.pg_database d
ORDER BY 1;"
            )
            .await,
        strings(&[&[
            "datafusion",
            "sluice",
            "UTF8",
            "C",
            "C",
            "NULL",
            "libc",
            "NULL"
        ]])
    );

    served.close().await;
}

/// What drivers and ORMs ask of the catalogs through prepared statements (SQLAlchemy's
/// PostgreSQL dialect, psycopg's type lookup): casts to `regclass`, `to_regtype`,
/// `current_setting`, `version()`, `= ANY(ARRAY[...])` with parameters, and a parameter
/// that ends up compared with a block pruned to NULLs (typed from what the client sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_catalog_queries() {
    let served = serve().await;
    served
        .rows(
            "CREATE TABLE orders (id BIGINT NOT NULL, amount DOUBLE) \
             WITH (topic = 'orders', format = 'json'); \
             CREATE TABLE prices AS SELECT CAST(1.5 AS DECIMAL(10,2)) AS price",
        )
        .await;
    let client = &served.client;
    let row = client
        .query_one(
            "SELECT c.oid = 'orders'::regclass AS same, c.oid::regclass::text AS name, \
             to_regclass('missing') IS NULL AS missing, \
             to_regtype('int8') AS int8, current_setting('server_version') AS version, \
             version() LIKE 'PostgreSQL 15.0 %' AS postgres \
             FROM pg_class c WHERE c.relname = $1",
            &[&"orders"],
        )
        .await
        .expect("lookups");
    assert!(row.get::<_, bool>("same"));
    assert_eq!(row.get::<_, String>("name"), "orders");
    assert!(row.get::<_, bool>("missing"));
    assert_eq!(row.get::<_, i32>("int8"), 20);
    assert_eq!(row.get::<_, String>("version"), "15.0");
    assert!(row.get::<_, bool>("postgres"));
    let error = client
        .query("SELECT 'missing'::regclass", &[])
        .await
        .expect_err("an unknown relation");
    let message = error.as_db_error().map(|e| e.message().to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("relation \"missing\" does not exist")),
        "{error:?}"
    );

    // SQLAlchemy's table listing and column types.
    let tables = client
        .query(
            "SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class \
             JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace \
             WHERE pg_catalog.pg_class.relkind = ANY (ARRAY[$1::VARCHAR, $2::VARCHAR]) \
             AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid) \
             AND pg_catalog.pg_namespace.nspname != $3::VARCHAR \
             ORDER BY 1",
            &[&"r", &"p", &"pg_catalog"],
        )
        .await
        .expect("table names");
    let names: Vec<String> = tables.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, ["orders", "prices"]);
    let types = client
        .query(
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, \
             (SELECT t.typcollation FROM pg_catalog.pg_type t WHERE t.oid = a.atttypid) AS coll \
             FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid IN ('orders'::regclass, 'public.prices'::regclass) \
             AND a.attnum > 0 AND a.attnum < 3 ORDER BY a.attrelid = 'orders'::regclass DESC, a.attnum",
            &[],
        )
        .await
        .expect("column types");
    let types: Vec<(String, String, bool, i32)> = types
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        types,
        [
            ("id".into(), "bigint".into(), true, 0),
            ("amount".into(), "double precision".into(), false, 0),
            ("price".into(), "numeric(10,2)".into(), true, 0),
        ]
    );

    // A primary-key lookup over catalogs kept empty, the parameter declared int4.
    let statement = client
        .prepare_typed(
            "SELECT attr.conname, array_agg(attr.attname) AS cols FROM \
             (SELECT con.conname AS conname, a.attname AS attname FROM pg_catalog.pg_attribute a \
              JOIN (SELECT pg_constraint.conname AS conname, pg_constraint.conrelid AS conrelid, \
                    unnest(pg_index.indkey) AS attnum \
                    FROM pg_constraint JOIN pg_index ON pg_constraint.conindid = pg_index.indexrelid \
                    WHERE pg_constraint.conrelid IN ($1)) AS con \
              ON a.attnum = con.attnum AND a.attrelid = con.conrelid \
              WHERE con.conrelid IN ($1)) AS attr GROUP BY attr.conname",
            &[tokio_postgres::types::Type::INT4],
        )
        .await
        .expect("prepare the key lookup");
    let keys = client
        .query(&statement, &[&16_384_i32])
        .await
        .expect("key lookup");
    assert!(keys.is_empty());

    served.close().await;
}
