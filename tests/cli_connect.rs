//! Black-box tests of `sluice connect` as a data engineer runs it, end to end through the
//! real log, real files, the real PostgreSQL on this machine and DuckDB as an independent
//! Parquet reader: CSV -> topic -> PostgreSQL upsert; PostgreSQL change data capture ->
//! topic -> Parquet; a sink killed mid-run and restarted, and a source killed mid-file;
//! validate and status; the same for YAML pipeline files.

// Helpers here unwrap too: a panic in a test's setup is its failure report (STYLE.md).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

fn spawn(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("SLUICE_DATA_DIR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sluice")
}

/// Waits until `ready` holds (checked every 100 ms), failing after `secs`.
fn wait_for(secs: u64, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `sluice sql --format csv -e STATEMENTS` in `dir`: its output, or the test fails.
fn sql_csv(dir: &Path, statements: &str) -> String {
    ok(&sluice(dir, &["sql", "--format", "csv", "-e", statements]))
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}_{}_{}", std::process::id(), nanos % 1_000_000)
}

#[test]
fn csv_to_topic_to_postgres_upsert() {
    // Proves: a CSV directory read once flows through a keyed topic into a PostgreSQL table
    // created from the schema, later rows of a key replacing earlier ones (upsert), a bad
    // row dead-lettered, and the pipeline stops on its own when everything is written.
    let Some(url) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let table = unique("orders");
    std::fs::create_dir(d.join("in")).unwrap();
    std::fs::write(
        d.join("in/1.csv"),
        "id,customer,amount\n1,ada,10.5\n2,bea,3\n3,cy,oops\n",
    )
    .unwrap();
    std::fs::write(
        d.join("in/2.csv"),
        "id,customer,amount\n1,ada,99.25\n4,dan,1\n",
    )
    .unwrap();
    std::fs::write(
        d.join("orders.toml"),
        format!(
            r#"
[pipeline]
name = "orders"
on_error = "dead_letter"
commit_interval_ms = 100

[[source]]
name = "csv"
type = "file"
path = "in/*.csv"
format = "csv"
columns = "id BIGINT, customer VARCHAR, amount VARCHAR"
topic = "orders"
key = ["id"]

[[source.transform]]
type = "cast"
fields = {{ amount = "DOUBLE" }}

[[sink]]
name = "warehouse"
type = "postgres"
topics = ["orders"]
url = "${{PG_URL}}"
table = "{table}"
mode = "upsert"
create_table = true
"#
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"));
        child
            .args(args)
            .current_dir(d)
            .env("HOME", d)
            .env("PG_URL", &url)
            .env_remove("SLUICE_DATA_DIR");
        child.output().unwrap()
    };
    let out = run(&["connect", "validate", "orders.toml"]);
    assert!(ok(&out).contains("ok — pipeline \"orders\""));
    let out = run(&["connect", "run", "orders.toml", "--progress", "lines"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(&out);
    assert!(stderr.contains("dead-lettered 1"), "{stderr}");
    let rows = psql(
        &url,
        &format!("SELECT id, customer, amount FROM {table} ORDER BY id"),
    )
    .unwrap();
    assert_eq!(rows, "1|ada|99.25\n2|bea|3\n4|dan|1");
    // Offsets committed with the rows (exactly-once), and the group is caught up.
    let status = ok(&run(&["connect", "status", "orders.toml", "--json"]));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["sinks"][0]["lag"], 0, "{status}");
    assert_eq!(status["sources"][0]["records"], 4, "{status}");
    // The dead-lettered row kept its original bytes.
    let dead = ok(&sluice(
        d,
        &[
            "consume",
            "orders.dead-letter",
            "--from-beginning",
            "--max-records",
            "1",
        ],
    ));
    assert!(dead.contains("oops"), "{dead}");
    psql(
        &url,
        &format!(
            "DROP TABLE {table}; DELETE FROM sluice_connect_offsets WHERE pipeline = 'orders' AND sink = 'warehouse'"
        ),
    );
}

#[test]
fn postgres_cdc_to_topic_to_parquet_read_back_by_duckdb() {
    // Proves: change data capture snapshots a table, then streams inserts, updates and
    // deletes in commit order through a topic into Parquet files that an independent
    // reader (DuckDB) reads back, and a SIGTERM stops the pipeline after committing.
    let Some(url) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let table = unique("cdc_orders");
    let slot = unique("sluice_cdc_e2e");
    psql(&url, &format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, status TEXT, amount NUMERIC(10,2)); INSERT INTO {table} VALUES (1, 'new', 5.00), (2, 'new', 7.50)")).unwrap();
    std::fs::write(
        d.join("cdc.toml"),
        format!(
            r#"
[pipeline]
name = "cdc"
commit_interval_ms = 100

[[source]]
name = "pg"
type = "postgres-cdc"
url = "{url}"
tables = ["public.{table}"]
slot = "{slot}"
publication = "{slot}"
poll_interval_ms = 100
topic = "cdc.{{stream}}"

[[sink]]
name = "lake"
type = "parquet"
topics = ["cdc.public.{table}"]
path = "lake"
roll_interval_ms = 200
"#
        ),
    )
    .unwrap();
    let cleanup = || {
        psql(
            &url,
            &format!(
                "SELECT pg_drop_replication_slot('{slot}') WHERE EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '{slot}')"
            ),
        );
        psql(
            &url,
            &format!("DROP PUBLICATION IF EXISTS {slot}; DROP TABLE IF EXISTS {table}"),
        );
    };
    let mut child = spawn(d, &["connect", "run", "cdc.toml", "--progress", "none"]);
    let count = |d: &Path| {
        if !d.join("lake").exists() {
            return 0;
        }
        duckdb(d, "SELECT count(*) FROM read_parquet('lake/*.parquet')")
            .parse::<i64>()
            .unwrap_or(0)
    };
    wait_for(60, "the snapshot in Parquet", || count(d) >= 2);
    // Three transactions, so commit order is `_lsn` order.
    for change in [
        format!("INSERT INTO {table} VALUES (3, 'new', 1.25)"),
        format!("UPDATE {table} SET status = 'paid' WHERE id = 1"),
        format!("DELETE FROM {table} WHERE id = 2"),
    ] {
        psql(&url, &change).unwrap();
    }
    wait_for(60, "the changes in Parquet", || count(d) >= 5);
    // SIGTERM: the pipeline commits and exits cleanly.
    unsafe_kill(&child, "TERM");
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    let rows = duckdb(
        d,
        "SELECT id, _op, status, amount FROM read_parquet('lake/*.parquet') ORDER BY _lsn, id",
    );
    assert_eq!(
        rows, "1|r|new|5.00\n2|r|new|7.50\n3|c|new|1.25\n1|u|paid|5.00\n2|d||",
        "{rows}"
    );
    cleanup();
}

/// Sends a signal to a child by name (`TERM`, `KILL`) with the `kill` command.
fn unsafe_kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_sink_killed_mid_run_restarts_without_missing_or_duplicate_rows() {
    // Proves: SIGKILL of a pipeline while its PostgreSQL sink (insert mode, exactly-once)
    // is loading leaves the table at a committed batch boundary, and a restart finishes
    // with every row exactly once: no row missing, none twice (an insert-mode table would
    // show duplicates as extra rows).
    let Some(url) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let table = unique("loaded");
    let rows = 200_000;
    let mut csv = String::from("id,name\n");
    for i in 0..rows {
        csv.push_str(&format!("{i},name-{i}\n"));
    }
    std::fs::write(d.join("rows.csv"), csv).unwrap();
    std::fs::write(
        d.join("fill.toml"),
        "[[source]]\nname = \"csv\"\ntype = \"file\"\npath = \"rows.csv\"\nformat = \"csv\"\ntopic = \"rows\"\npartitions = 2\nkey = [\"id\"]\n",
    )
    .unwrap();
    ok(&sluice(
        d,
        &["connect", "run", "fill.toml", "--progress", "none"],
    ));
    std::fs::write(
        d.join("load.toml"),
        format!(
            "[pipeline]\nname = \"load\"\ncommit_interval_ms = 20\n\n[[sink]]\nname = \"pg\"\ntype = \"postgres\"\ntopics = [\"rows\"]\nbatch_rows = 2000\nurl = \"{url}\"\ntable = \"{table}\"\ncreate_table = true\n"
        ),
    )
    .unwrap();
    let count = || {
        psql(&url, &format!("SELECT count(*) FROM {table}"))
            .and_then(|c| c.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let mut child = spawn(
        d,
        &[
            "connect",
            "run",
            "load.toml",
            "--once",
            "--progress",
            "none",
        ],
    );
    wait_for(120, "some rows loaded", || count() > 0);
    unsafe_kill(&child, "KILL");
    child.wait().unwrap();
    let partial = count();
    assert!(
        partial < rows,
        "killed after all {partial} rows: make the run longer"
    );
    ok(&sluice(
        d,
        &[
            "connect",
            "run",
            "load.toml",
            "--once",
            "--progress",
            "none",
        ],
    ));
    let (total, distinct) = {
        let out = psql(
            &url,
            &format!("SELECT count(*), count(DISTINCT id) FROM {table}"),
        )
        .unwrap();
        let mut parts = out.split('|').map(|v| v.parse::<i64>().unwrap());
        (parts.next().unwrap(), parts.next().unwrap())
    };
    assert_eq!((total, distinct), (rows, rows), "killed at {partial} rows");
    psql(
        &url,
        &format!("DROP TABLE {table}; DELETE FROM sluice_connect_offsets WHERE pipeline = 'load'"),
    );
}

#[test]
fn a_source_killed_mid_file_restarts_without_missing_or_duplicate_records() {
    // Proves: SIGKILL of a pipeline while its `file` source is loading a CSV into a topic,
    // parsing batches ahead on three threads, leaves the topic at a committed batch
    // boundary; a restart resumes from the stored position and the topic ends up with
    // every row exactly once (read committed, through `sluice sql`).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = 2_000_000;
    let mut csv = String::with_capacity(rows * 24);
    csv.push_str("id,name\n");
    for i in 0..rows {
        csv.push_str(&format!("{i},name-{i}\n"));
    }
    std::fs::write(d.join("rows.csv"), csv).unwrap();
    std::fs::write(
        d.join("fill.toml"),
        "[pipeline]\nname = \"fill\"\n\n[[source]]\nname = \"csv\"\ntransaction_interval_ms = 50\n\
         type = \"file\"\npath = \"rows.csv\"\nformat = \"csv\"\ncolumns = \"id BIGINT, name VARCHAR\"\n\
         parse_threads = 3\ntopic = \"rows\"\nvalue_format = \"avro\"\n",
    )
    .unwrap();
    let run = [
        "connect",
        "run",
        "fill.toml",
        "--once",
        "--progress",
        "lines",
        "--progress-interval",
        "1",
    ];
    let mut child = spawn(d, &run);
    // Progress lines (on stderr, which `spawn` pipes) count committed records: wait for
    // the first that shows some.
    let stderr = child.stderr.take().unwrap();
    let committed = std::io::BufRead::lines(std::io::BufReader::new(stderr))
        .map_while(Result::ok)
        .find_map(|line| {
            let (_, after) = line.split_once("source csv:")?;
            let count: String = after
                .split_whitespace()
                .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            count.parse::<usize>().ok().filter(|&n| n > 0)
        })
        .expect("a progress line with committed records");
    unsafe_kill(&child, "KILL");
    child.wait().unwrap();
    assert!(
        committed < rows,
        "killed after all {committed} rows: make the file longer"
    );
    ok(&sluice(
        d,
        &[
            "connect",
            "run",
            "fill.toml",
            "--once",
            "--progress",
            "none",
        ],
    ));
    let out = sql_csv(
        d,
        "CREATE TABLE rows WITH (topic = 'rows'); \
         SELECT count(*) AS n, count(DISTINCT id) AS ids, min(id) AS lo, max(id) AS hi FROM rows",
    );
    assert_eq!(
        out.trim(),
        format!("n,ids,lo,hi\n{rows},{rows},0,{}", rows - 1),
        "killed at {committed} committed rows"
    );
}

#[test]
fn validate_reports_every_problem_with_its_line() {
    // Proves: `connect validate` exits non-zero and lists each problem of a file with its
    // line, including one found only by reaching out (an unreachable database).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("bad.toml"),
        r#"[pipeline]
name = "bad"

[[source]]
name = "in"
type = "file"
path = "missing/*.csv"
format = "csv"
topic = "t"
value_format = "xml"

[[sink]]
name = "out"
type = "postgres"
topics = ["t"]
url = "postgres://postgres@127.0.0.1:1/test"
table = "x"
"#,
    )
    .unwrap();
    let err = failed(&sluice(d, &["connect", "validate", "bad.toml"]));
    assert!(
        err.contains("bad.toml:10:") && err.contains("value_format `xml`"),
        "{err}"
    );
    std::fs::write(
        d.join("bad.toml"),
        std::fs::read_to_string(d.join("bad.toml"))
            .unwrap()
            .replace("value_format = \"xml\"\n", ""),
    )
    .unwrap();
    let err = failed(&sluice(d, &["connect", "validate", "bad.toml"]));
    assert!(err.contains("bad.toml:4: source \"in\""), "{err}");
    assert!(
        err.contains("bad.toml:11: sink \"out\"") && err.contains("127.0.0.1:1"),
        "{err}"
    );
    assert!(err.contains("bad.toml is not valid"), "{err}");
}

#[test]
fn validate_reports_every_problem_of_a_yaml_file_with_its_line() {
    // Proves: a `.yaml` pipeline file is read as YAML, and `connect validate` lists each
    // of its problems at its YAML line: the runtime's checks, a null, one found only by
    // reaching out (an unreachable database), and a syntax error.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = r#"pipeline:
  name: bad
source:
  - name: in
    type: file
    path: missing/*.csv
    format: csv
    topic: t
    value_format: xml
    batch_rows:
sink:
  - name: out
    type: postgres
    topics: [t]
    url: postgres://postgres@127.0.0.1:1/test
    table: x
"#;
    std::fs::write(d.join("bad.yaml"), text).unwrap();
    let err = failed(&sluice(d, &["connect", "validate", "bad.yaml"]));
    assert!(
        err.contains("bad.yaml:9: source \"in\": unknown value_format `xml`"),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:10: source \"in\": `batch_rows` has no value (YAML null)"),
        "{err}"
    );
    assert!(err.contains("bad.yaml is not valid"), "{err}");

    let fixed = text.replace("    value_format: xml\n    batch_rows:\n", "");
    std::fs::write(d.join("bad.yaml"), &fixed).unwrap();
    let err = failed(&sluice(d, &["connect", "validate", "bad.yaml"]));
    assert!(err.contains("bad.yaml:4: source \"in\""), "{err}");
    assert!(
        err.contains("bad.yaml:10: sink \"out\"") && err.contains("127.0.0.1:1"),
        "{err}"
    );

    std::fs::write(
        d.join("bad.yml"),
        fixed.replace("topics: [t]", "topics: [t"),
    )
    .unwrap();
    let err = failed(&sluice(d, &["connect", "validate", "bad.yml"]));
    // The parser notices the unclosed `[` at the next key.
    assert!(err.contains("error: bad.yml:13: "), "{err}");
    assert!(err.contains("bad.yml is not valid"), "{err}");
}

#[test]
fn a_yaml_pipeline_runs_csv_through_a_topic_into_sqlite() {
    // Proves: `connect run --once` runs a YAML pipeline end to end: CSV rows through a
    // keyed topic into a SQLite table, source and sink transforms applied, a `${NAME:-}`
    // default and a YAML alias expanded, later rows of a key replacing earlier ones.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("orders.csv"),
        "id,customer,amount\n1,ada,10.5\n2,bea,3\n3,cy,40\n1,ada,12.25\n",
    )
    .unwrap();
    std::fs::write(
        d.join("orders.yaml"),
        r#"pipeline:
  name: orders-yaml
source:
  - name: csv
    type: file
    path: orders.csv
    format: csv
    columns: "id BIGINT, customer VARCHAR, amount VARCHAR"
    topic: &topic orders
    key: [id]
    transform:
      - type: cast
        fields: { amount: DOUBLE }
sink:
  - name: local
    type: sqlite
    topics: [*topic]
    path: ${ORDERS_DB:-orders.db}
    table: orders
    mode: upsert
    create_table: true
    transform:
      - type: filter
        condition: amount >= 10
"#,
    )
    .unwrap();
    assert!(
        ok(&sluice(d, &["connect", "validate", "orders.yaml"]))
            .contains("ok — pipeline \"orders-yaml\"")
    );
    ok(&sluice(
        d,
        &[
            "connect",
            "run",
            "orders.yaml",
            "--once",
            "--progress",
            "none",
        ],
    ));
    let out = Command::new("python3")
        .args([
            "-c",
            r#"import sqlite3
for row in sqlite3.connect("orders.db").execute("SELECT id, customer, amount FROM orders ORDER BY id"):
    print(*row, sep="|")"#,
        ])
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1|ada|12.25\n3|cy|40.0",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_sql_transform_runs_on_batches_sent_while_the_next_is_read() {
    // Proves: with full batches (here 7 rows) a source's batch is sent from another thread
    // while the next one is read, and a `sql` transform, which runs its query on the
    // runtime, still shapes every row once, in order, with nothing lost at the end.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csv = String::from("id,name\n");
    for i in 0..50 {
        csv.push_str(&format!("{i},n{i}\n"));
    }
    std::fs::write(d.join("in.csv"), csv).unwrap();
    std::fs::write(
        d.join("p.toml"),
        r#"[pipeline]
name = "sqlt"

[[source]]
name = "csv"
type = "file"
path = "in.csv"
format = "csv"
columns = "id BIGINT, name VARCHAR"
topic = "shaped"
batch_rows = 7

[[source.transform]]
type = "sql"
query = "SELECT id, upper(name) AS name FROM input WHERE id % 2 = 0"

[[sink]]
name = "out"
type = "file"
topics = ["shaped"]
path = "out"
format = "jsonl"
"#,
    )
    .unwrap();
    ok(&sluice(
        d,
        &["connect", "run", "p.toml", "--once", "--progress", "none"],
    ));
    let mut lines = Vec::new();
    for entry in walk(&d.join("out")) {
        if entry.extension().is_some_and(|e| e == "jsonl") {
            let text = std::fs::read_to_string(&entry).unwrap();
            lines.extend(text.lines().map(str::to_string));
        }
    }
    let want: Vec<String> = (0..50)
        .filter(|i| i % 2 == 0)
        .map(|i| format!("{{\"id\":{i},\"name\":\"N{i}\"}}"))
        .collect();
    assert_eq!(lines, want);
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Copies `examples/pipelines` into `dir` (outputs land there, not in the repository).
fn copy_examples(dir: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pipelines");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    for entry in std::fs::read_dir(&src)
        .unwrap()
        .chain(std::fs::read_dir(src.join("data")).unwrap())
    {
        let path = entry.unwrap().path();
        if path.is_file() {
            let rel = path.strip_prefix(&src).unwrap();
            std::fs::copy(&path, dir.join(rel)).unwrap();
        }
    }
}

#[test]
fn pipeline_examples_run_as_documented() {
    // Proves: every TOML file in examples/pipelines validates and runs as its header
    // comment says, and its output reads back: Parquet by region (DuckDB), the upserted
    // PostgreSQL table, the SQLite table fed from the topic, and CDC rows in their topic.
    // (The YAML example: the_yaml_pipeline_example_runs_as_its_toml_twin.)
    let Some(url) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_examples(d);
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.args(args)
            .current_dir(d)
            .env("HOME", d)
            .env("PG_URL", &url)
            .env_remove("SLUICE_DATA_DIR");
        cmd.output().unwrap()
    };
    for file in ["csv-to-parquet.toml", "jsonl-to-postgres-upsert.toml"] {
        ok(&run(&["connect", "validate", file]));
    }
    // topic-to-sqlite reads the topic csv-to-parquet writes: until then it does not exist.
    let err = failed(&run(&["connect", "validate", "topic-to-sqlite.toml"]));
    assert!(err.contains("topic `orders` does not exist"), "{err}");

    ok(&run(&[
        "connect",
        "run",
        "csv-to-parquet.toml",
        "--progress",
        "none",
    ]));
    let by_region = duckdb(
        d,
        "SELECT region, count(*) FROM read_parquet('parquet/**/*.parquet', hive_partitioning = true) GROUP BY region ORDER BY region",
    );
    assert_eq!(by_region, "apac|17\neu|11\nus|12");

    psql(
        &url,
        "DROP TABLE IF EXISTS example_customers; DELETE FROM sluice_connect_offsets WHERE pipeline = 'customers-to-postgres'",
    );
    ok(&run(&[
        "connect",
        "run",
        "jsonl-to-postgres-upsert.toml",
        "--progress",
        "none",
    ]));
    let customers = psql(&url, "SELECT count(*), max(email) FILTER (WHERE id = 2), max(tier) FILTER (WHERE id = 2) FROM example_customers").unwrap();
    assert_eq!(customers, "8|****.com|gold");
    psql(
        &url,
        "DROP TABLE example_customers; DELETE FROM sluice_connect_offsets WHERE pipeline = 'customers-to-postgres'",
    );

    ok(&run(&["connect", "validate", "topic-to-sqlite.toml"]));
    ok(&run(&[
        "connect",
        "run",
        "topic-to-sqlite.toml",
        "--once",
        "--progress",
        "none",
    ]));
    let out = Command::new("python3")
        .args(["-c", "import sqlite3; print(sqlite3.connect('orders.db').execute('SELECT count(*), min(amount) >= 10 FROM orders').fetchone())"])
        .current_dir(d)
        .output()
        .unwrap();
    let expected = duckdb(
        d,
        "SELECT count(*) FROM read_parquet('parquet/**/*.parquet', hive_partitioning = true) WHERE amount >= 10",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("({expected}, 1)")
    );

    // The example's slot and publication names are fixed: clear what an interrupted run
    // may have left.
    let cleanup = || {
        psql(
            &url,
            "SELECT pg_drop_replication_slot('sluice_orders_cdc') WHERE EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'sluice_orders_cdc')",
        );
        psql(
            &url,
            "DROP PUBLICATION IF EXISTS sluice_orders_cdc; DROP TABLE IF EXISTS example_cdc_orders",
        );
    };
    cleanup();
    psql(&url, "CREATE TABLE example_cdc_orders (id BIGINT PRIMARY KEY, status TEXT); INSERT INTO example_cdc_orders VALUES (1, 'new')").unwrap();
    ok(&run(&["connect", "validate", "postgres-cdc-to-topic.toml"]));
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "connect",
            "run",
            "postgres-cdc-to-topic.toml",
            "--progress",
            "none",
        ])
        .current_dir(d)
        .env("HOME", d)
        .env("PG_URL", &url)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let records = || {
        let positions = d.join("sluice-data");
        positions.exists() && psql(&url, "SELECT confirmed_flush_lsn > '0/0' FROM pg_replication_slots WHERE slot_name = 'sluice_orders_cdc'").as_deref() == Some("t")
    };
    wait_for(60, "the CDC slot to advance", records);
    psql(&url, "DELETE FROM example_cdc_orders WHERE id = 1").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    unsafe_kill(&child, "TERM");
    assert!(child.wait().unwrap().success());
    let topic = ok(&sluice(
        d,
        &[
            "consume",
            "cdc.public.example_cdc_orders",
            "--from-beginning",
            "--max-records",
            "3",
            "--timeout-ms",
            "5000",
            "--format",
            "key-value",
        ],
    ));
    cleanup();
    assert!(
        topic.contains("\"_op\":\"r\"") && topic.contains("\"_op\":\"d\""),
        "{topic}"
    );
}

#[test]
fn the_yaml_pipeline_example_runs_as_its_toml_twin() {
    // Proves: examples/pipelines/csv-to-parquet.yaml validates and runs as its header
    // says, writing the same Parquet by region that pipeline_examples_run_as_documented
    // checks for csv-to-parquet.toml (a directory of its own: the two are one pipeline).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_examples(d);
    let out = ok(&sluice(d, &["connect", "validate", "csv-to-parquet.yaml"]));
    assert!(
        out.contains("ok — pipeline \"orders-to-parquet\": 1 source(s), 1 sink(s)"),
        "{out}"
    );
    ok(&sluice(
        d,
        &[
            "connect",
            "run",
            "csv-to-parquet.yaml",
            "--progress",
            "none",
        ],
    ));
    let by_region = duckdb(
        d,
        "SELECT region, count(*) FROM read_parquet('parquet/**/*.parquet', hive_partitioning = true) GROUP BY region ORDER BY region",
    );
    assert_eq!(by_region, "apac|17\neu|11\nus|12");
}

#[test]
fn avro_written_by_a_pipeline_reads_in_sql_without_declarations() {
    // Proves: a topic a pipeline wrote as avro reads back in `sluice sql` with nothing
    // declared but the topic: the table takes its columns and format from the source's
    // schema entry and decodes with the Avro schema the avro converter wrote with.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("people.csv"),
        "id,name,born\n1,ada,2024-05-01 10:00:00\n2,,\n",
    )
    .unwrap();
    std::fs::write(
        d.join("fill.toml"),
        "[[source]]\nname = \"csv\"\ntype = \"file\"\npath = \"people.csv\"\nformat = \"csv\"\n\
         columns = \"id BIGINT NOT NULL, name VARCHAR, born TIMESTAMP\"\n\
         topic = \"people\"\nvalue_format = \"avro\"\n",
    )
    .unwrap();
    ok(&sluice(
        d,
        &["connect", "run", "fill.toml", "--progress", "none"],
    ));
    let out = sql_csv(
        d,
        "CREATE TABLE people WITH (topic = 'people'); \
         SELECT id, name, born FROM people ORDER BY id",
    );
    assert_eq!(
        out.trim(),
        "id,name,born\n1,ada,2024-05-01T10:00:00\n2,,",
        "{out}"
    );
}
