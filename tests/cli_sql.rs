//! Black-box tests of `sluice sql` as a user runs it: `-e`, `-f`, the interactive shell on
//! piped input, each output format, and a failing statement's exit code. Guards the CLI
//! wiring (data directory, catalog across runs, printing) rather than SQL semantics,
//! which sql/tests/slt/ pins.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn sluice(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("SLUICE_DATA_DIR")
        .env_remove("SLUICE_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sluice");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for sluice")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "sluice failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sql_over_produced_records() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&sluice(
        d,
        &["topics", "create", "orders", "--partitions", "2"],
        "",
    ));
    ok(&sluice(
        d,
        &["produce", "orders", "--key-separator", ":"],
        "ada:{\"id\": 1, \"amount\": 2.5}\nbea:{\"id\": 2, \"amount\": 4}\nada:{\"id\": 3, \"amount\": 1}\n",
    ));
    // The table made by one run is in the catalog for the next (default ./sluice-data).
    let out = sluice(
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

    let out = sluice(
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

    let csv = ok(&sluice(
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
    let json = ok(&sluice(
        d,
        &["sql", "--format", "json", "-f", "report.sql"],
        "",
    ));
    assert_eq!(json, "{\"count\":1}\n{\"n\":4,\"top\":4}\n");

    // The shell on piped input: a statement over two lines, \d, an error that does not
    // end the session, and history written to $HOME.
    let shell = ok(&sluice(
        d,
        &["sql"],
        "SELECT id\n  FROM orders WHERE id = 4;\n\\d orders\nSELECT nope FROM orders;\nSELECT 7 AS seven;\n\\q\n",
    ));
    assert!(shell.contains("| 4  |"), "{shell}");
    assert!(shell.contains("| _headers    |"), "{shell}");
    assert!(shell.contains("| 7     |"), "{shell}");
    assert!(d.join(".sluice_history").exists());

    let out = sluice(d, &["sql", "-e", "SELECT * FROM missing"], "");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("table 'datafusion.public.missing' not found"),
        "{stderr}"
    );
}
