//! Black-box tests of `sluice sql` as a user runs it: `-e`, `-f`, the interactive shell on
//! piped input, each output format, and a failing statement's exit code. Guards the CLI
//! wiring (data directory, catalog across runs, printing) rather than SQL semantics,
//! which sql/tests/slt/ pins.

mod common;
use common::*;

#[test]
fn sql_over_produced_records() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&sluice_with_stdin(
        d,
        &["topics", "create", "orders", "--partitions", "2"],
        "",
    ));
    ok(&sluice_with_stdin(
        d,
        &["produce", "orders", "--key-separator", ":"],
        "ada:{\"id\": 1, \"amount\": 2.5}\nbea:{\"id\": 2, \"amount\": 4}\nada:{\"id\": 3, \"amount\": 1}\n",
    ));
    // The table made by one run is in the catalog for the next (default ./sluice-data).
    let out = sluice_with_stdin(
        d,
        &[
            "sql",
            "-e",
            "CREATE TABLE orders (id BIGINT, amount DOUBLE) WITH (topic = 'orders', format = 'json')",
        ],
        "",
    );
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("OK in"));

    let out = sluice_with_stdin(
        d,
        &[
            "sql",
            "-e",
            "SELECT _key, sum(amount) AS total FROM orders GROUP BY _key ORDER BY _key",
        ],
        "",
    );
    let table = ok(&out);
    assert!(table.contains("| _key | total |"), "{table}");
    assert!(table.contains("| ada  | 3.5   |"), "{table}");
    assert!(table.contains("| bea  | 4.0   |"), "{table}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 rows in "));

    let csv = ok(&sluice_with_stdin(
        d,
        &[
            "sql",
            "--format",
            "csv",
            "-e",
            "SELECT id, amount, _headers FROM orders ORDER BY id",
        ],
        "",
    ));
    assert_eq!(csv, "id,amount,_headers\n1,2.5,[]\n2,4.0,[]\n3,1.0,[]\n");

    std::fs::write(
        d.join("report.sql"),
        "INSERT INTO orders VALUES (4, 10);\n-- a comment\nSELECT count(*) AS n, max(id) AS top FROM orders;\n",
    )
    .unwrap();
    let json = ok(&sluice_with_stdin(
        d,
        &["sql", "--format", "json", "-f", "report.sql"],
        "",
    ));
    assert_eq!(json, "{\"count\":1}\n{\"n\":4,\"top\":4}\n");

    // The shell on piped input: a statement over two lines, \d, an error that does not
    // end the session, and history written to $HOME.
    let shell = ok(&sluice_with_stdin(
        d,
        &["sql"],
        "SELECT id\n  FROM orders WHERE id = 4;\n\\d\n\\d orders\nSELECT nope FROM orders;\nSELECT 7 AS seven;\n\\q\n",
    ));
    assert!(shell.contains("| 4  |"), "{shell}");
    // \d lists the user's tables, not the system schemas.
    assert!(
        shell.contains("| public       | orders     | BASE TABLE |"),
        "{shell}"
    );
    assert!(!shell.contains("pg_class"), "{shell}");
    assert!(shell.contains("| _headers    |"), "{shell}");
    assert!(shell.contains("| 7     |"), "{shell}");
    assert!(d.join(".sluice_history").exists());

    let out = sluice_with_stdin(d, &["sql", "-e", "SELECT * FROM missing"], "");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("table 'datafusion.public.missing' not found"),
        "{stderr}"
    );
}

/// A `sluice serve` child in `dir`, Kafka and PostgreSQL on free ports.
fn serve_both(dir: &std::path::Path) -> common::Served {
    common::serve(dir, &["--pg-listen", "127.0.0.1:0"])
}

/// The port of a served PostgreSQL endpoint.
fn pg_port(served: &common::Served) -> String {
    let addr = served.pg.as_deref().unwrap_or_default();
    addr.rsplit(':').next().unwrap_or_default().to_string()
}

// `sluice serve` answers SQL on its PostgreSQL endpoint over the tables of its data
// directory: a table created with `sluice sql` before the broker started is queried
// through a PostgreSQL client, and an INSERT made over the wire is in the log.
#[test]
fn serve_answers_sql_over_the_postgres_wire() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&sluice_with_stdin(
        d,
        &[
            "sql",
            "-e",
            "CREATE TABLE t (n INT) WITH (topic = 't', format = 'csv', partitions = 2);
             INSERT INTO t VALUES (1), (2), (3)",
        ],
        "",
    ));
    let served = serve_both(d);
    let port = pg_port(&served);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={port} user=sluice"),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect");
        tokio::spawn(connection);
        client
            .simple_query("INSERT INTO t VALUES (4)")
            .await
            .unwrap();
        let result = client
            .simple_query("SELECT sum(n) AS s, count(DISTINCT _partition) AS p FROM t")
            .await
            .unwrap();
        let row = result
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
                _ => None,
            })
            .expect("a row");
        assert_eq!(row.get("s"), Some("10"));
    });
    drop(served);
}

// `sluice sql --bootstrap` runs the same statements against a broker: the table it
// creates, and the rows it inserts, are in the served data directory, where the running
// broker's PostgreSQL endpoint sees them at once, and `sluice sql --data-dir` once the
// broker has stopped.
#[test]
fn sql_over_a_broker_with_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let served = serve_both(d);
    let addr = served.kafka.clone();

    let sql = |statements: &str| {
        ok(&sluice_with_stdin(
            d,
            &["sql", "--bootstrap", &addr, "-e", statements],
            "",
        ))
    };
    sql(
        "CREATE TABLE t (n INT, tag VARCHAR) WITH (topic = 't', format = 'csv', partitions = 2);
         INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'a')",
    );
    let query = "SELECT tag, sum(n) AS s FROM t GROUP BY tag ORDER BY tag";
    let remote = sql(query);
    assert!(remote.contains("| a   | 4 |"), "{remote}");
    assert!(remote.contains("| b   | 2 |"), "{remote}");

    // The topic was created on the broker, with its partitions.
    let described = ok(&sluice_with_stdin(
        d,
        &["topics", "describe", "t", "--bootstrap", &addr],
        "",
    ));
    assert!(described.contains("Partitions: 2"), "{described}");

    // The endpoint's session was open before the table existed.
    let port = pg_port(&served);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let total = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={port} user=sluice"),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect");
        tokio::spawn(connection);
        let row = client
            .query_one("SELECT sum(n) AS s FROM t", &[])
            .await
            .expect("query over the wire");
        row.get::<_, i64>("s")
    });
    assert_eq!(total, 6);

    drop(served);
    let local = ok(&sluice_with_stdin(d, &["sql", "-e", query], ""));
    assert_eq!(local, remote);
}
