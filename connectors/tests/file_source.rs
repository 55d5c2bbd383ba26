//! The `file` source over real files in temporary directories: formats, inference, rejects,
//! globs, exact resuming and tail mode.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::Write;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use sluice_connectors::file::FileSource;
use sluice_connectors::{Poll, Position, Reject, Settings, Source};

fn source(table: toml::Table) -> FileSource {
    FileSource::new(&Settings::from_table("files", "file", table)).unwrap()
}

fn table(text: &str) -> toml::Table {
    toml::from_str(text).unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Everything a source gives until Done (or Idle), with rows of each batch and its position.
struct Drained {
    batches: Vec<(RecordBatch, Position)>,
    rejects: Vec<Reject>,
    ended: &'static str,
}

async fn drain(source: &mut FileSource, max_rows: usize) -> Drained {
    let mut drained = Drained {
        batches: Vec::new(),
        rejects: Vec::new(),
        ended: "",
    };
    for _ in 0..10_000 {
        match source.poll(max_rows).await.unwrap() {
            Poll::Batch(batch) => {
                assert!(
                    batch.rows.num_rows() <= max_rows,
                    "a poll gave more rows than asked"
                );
                drained.rejects.extend(batch.rejects);
                drained.batches.push((batch.rows, batch.position));
            }
            Poll::Idle => {
                drained.ended = "idle";
                return drained;
            }
            Poll::Done => {
                drained.ended = "done";
                return drained;
            }
        }
    }
    panic!("the source never stopped");
}

fn strings(batches: &[(RecordBatch, Position)], column: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (rows, _) in batches {
        let col = rows.column_by_name(column).unwrap();
        let col = arrow::compute::cast(col, &DataType::Utf8).unwrap();
        let col = col.as_string::<i32>();
        for i in 0..col.len() {
            out.push(if col.is_null(i) {
                "NULL".into()
            } else {
                col.value(i).to_string()
            });
        }
    }
    out
}

#[tokio::test]
async fn csv_header_names_columns_and_types_are_inferred() {
    // Proves a CSV file with a header gives columns named by it, with types inferred from
    // the values, and ends with Done in once mode.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.csv");
    write(&path, "id,name,amount\n1,ann,1.5\n2,\"bob, jr\",2\n3,cy,\n");
    let mut src = source(table(&format!("path = {:?}", path.to_str().unwrap())));
    assert!(src.check().await.is_empty());
    src.open(None).await.unwrap();
    let out = drain(&mut src, 100).await;
    assert_eq!(out.ended, "done");
    let rows = &out.batches[0].0;
    let schema = rows.schema();
    assert_eq!(schema.field(0).name(), "id");
    assert_eq!(schema.field(0).data_type(), &DataType::Int64);
    assert_eq!(schema.field(2).data_type(), &DataType::Float64);
    assert_eq!(strings(&out.batches, "name"), ["ann", "bob, jr", "cy"]);
    assert_eq!(strings(&out.batches, "amount"), ["1.5", "2.0", "NULL"]);
}

#[tokio::test]
async fn declared_columns_without_header_and_with_other_delimiter() {
    // Proves declared columns are used as given (types, names), with header = false and a
    // `;` delimiter, and that a final line without newline is read in once mode.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.txt");
    write(&path, "7;x\n8;y\n9;z");
    let mut src = source(table(&format!(
        "path = {:?}\nformat = \"csv\"\nheader = false\ndelimiter = \";\"\ncolumns = \"id BIGINT, name VARCHAR\"",
        path.to_str().unwrap()
    )));
    src.open(None).await.unwrap();
    let out = drain(&mut src, 2).await;
    assert_eq!(out.batches.len(), 2);
    let ids: Vec<i64> = out
        .batches
        .iter()
        .flat_map(|(r, _)| r.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(ids, [7, 8, 9]);
    assert_eq!(strings(&out.batches, "name"), ["x", "y", "z"]);
}

#[tokio::test]
async fn bad_csv_lines_are_rejected_by_file_and_line_while_good_ones_flow() {
    // Proves a chunk with bad records is not lost: only the bad lines become rejects named
    // file:line (header counted), with their bytes, and the good rows keep their order.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    write(&path, "id,qty\n1,10\n2,oops\n3,30\n4,40,extra\n5,50\n");
    let mut src = source(table(&format!(
        "path = {:?}\ncolumns = \"id BIGINT, qty INT\"",
        path.to_str().unwrap()
    )));
    src.open(None).await.unwrap();
    let out = drain(&mut src, 1000).await;
    assert_eq!(strings(&out.batches, "id"), ["1", "3", "5"]);
    let positions: Vec<&str> = out.rejects.iter().map(|r| r.position.as_str()).collect();
    assert_eq!(positions.len(), 2, "{:?}", out.rejects);
    assert!(positions[0].ends_with("bad.csv:3"), "{positions:?}");
    assert!(positions[1].ends_with("bad.csv:5"), "{positions:?}");
    assert_eq!(out.rejects[0].bytes, b"2,oops");
    assert!(!out.rejects[0].error.is_empty());
}

#[tokio::test]
async fn jsonl_inferred_and_declared() {
    // Proves JSON lines are read with inferred columns, and with declared ones (unknown
    // fields ignored), and a line that is not JSON is rejected with its line number.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    write(
        &path,
        "{\"id\":1,\"kind\":\"a\"}\n{\"id\":2,\"kind\":\"b\",\"x\":true}\n",
    );
    let mut src = source(table(&format!("path = {:?}", path.to_str().unwrap())));
    src.open(None).await.unwrap();
    let out = drain(&mut src, 100).await;
    assert_eq!(
        out.batches[0]
            .0
            .schema()
            .field_with_name("id")
            .unwrap()
            .data_type(),
        &DataType::Int64
    );
    assert_eq!(strings(&out.batches, "kind"), ["a", "b"]);

    write(&path, "{\"id\":1,\"kind\":\"a\"}\nnot json\n{\"id\":3}\n");
    let mut src = source(table(&format!(
        "path = {:?}\nformat = \"jsonl\"\ncolumns = \"id BIGINT\"",
        path.to_str().unwrap()
    )));
    src.open(None).await.unwrap();
    let out = drain(&mut src, 100).await;
    assert_eq!(strings(&out.batches, "id"), ["1", "3"]);
    assert_eq!(out.rejects.len(), 1);
    assert!(out.rejects[0].position.ends_with("events.jsonl:2"));
}

#[tokio::test]
async fn glob_reads_files_in_name_order() {
    // Proves a glob's files are read in name order, each CSV header skipped, and files not
    // matching are left out.
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("b.csv"), "id\n3\n4\n");
    write(&dir.path().join("a.csv"), "id\n1\n2\n");
    write(&dir.path().join("c.csv"), "id\n5\n");
    write(&dir.path().join("skip.txt"), "id\n99\n");
    let pattern = dir.path().join("*.csv");
    let mut src = source(table(&format!("path = {:?}", pattern.to_str().unwrap())));
    src.open(None).await.unwrap();
    let out = drain(&mut src, 100).await;
    assert_eq!(strings(&out.batches, "id"), ["1", "2", "3", "4", "5"]);
}

#[tokio::test]
async fn resuming_from_any_returned_position_neither_repeats_nor_skips() {
    // Proves that for every position a source returned (mid-file and between files),
    // a new source opened there reads exactly the rows that followed.
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("1.log"), "a\nb\nc\n");
    write(&dir.path().join("2.log"), "d\ne\n");
    write(&dir.path().join("3.log"), "f\ng\nh");
    let pattern = dir.path().join("*.log");
    let settings = table(&format!("path = {:?}", pattern.to_str().unwrap()));
    let mut src = source(settings.clone());
    src.open(None).await.unwrap();
    let out = drain(&mut src, 2).await;
    let all = strings(&out.batches, "line");
    assert_eq!(all, ["a", "b", "c", "d", "e", "f", "g", "h"]);
    let mut seen = 0;
    for (rows, position) in &out.batches {
        seen += rows.num_rows();
        let mut again = source(settings.clone());
        again.open(Some(position.clone())).await.unwrap();
        let rest = strings(&drain(&mut again, 3).await.batches, "line");
        assert_eq!(rest, all[seen..], "resuming from {position}");
    }
}

#[tokio::test]
async fn tail_follows_appends_new_files_and_rotation_holding_partial_lines() {
    // Proves tail mode: appended lines arrive, a line without its newline waits for it, a
    // new file matching the glob is picked up, and a file renamed away and recreated is read
    // to its end and then the new file from its start.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    write(&log, "one\ntwo\n");
    let pattern = dir.path().join("*.log");
    let mut src = source(table(&format!(
        "path = {:?}\nmode = \"tail\"",
        pattern.to_str().unwrap()
    )));
    src.open(None).await.unwrap();
    let out = drain(&mut src, 100).await;
    assert_eq!(out.ended, "idle");
    assert_eq!(strings(&out.batches, "line"), ["one", "two"]);

    append(&log, "thr");
    assert!(
        drain(&mut src, 100).await.batches.is_empty(),
        "a partial line was emitted"
    );
    append(&log, "ee\nfour\n");
    assert_eq!(
        strings(&drain(&mut src, 100).await.batches, "line"),
        ["three", "four"]
    );

    // Rotation: written before the rename, renamed away (out of the glob), recreated.
    append(&log, "five\n");
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    write(&log, "new-1\n");
    let out = drain(&mut src, 100).await;
    assert_eq!(strings(&out.batches, "line"), ["five", "new-1"]);

    // Truncation: the file shrinks and is read again from its start.
    write(&log, "t\n");
    assert_eq!(strings(&drain(&mut src, 100).await.batches, "line"), ["t"]);

    // A newer file in name order.
    write(&dir.path().join("b.log"), "b1\n");
    let out = drain(&mut src, 100).await;
    assert_eq!(strings(&out.batches, "line"), ["b1"]);
    append(&dir.path().join("b.log"), "b2\n");
    let out = drain(&mut src, 100).await;
    assert_eq!(strings(&out.batches, "line"), ["b2"]);

    // Resuming in tail mode from the last position reads only what is new.
    let position = out.batches.last().unwrap().1.clone();
    append(&dir.path().join("b.log"), "b3\n");
    let mut again = source(table(&format!(
        "path = {:?}\nmode = \"tail\"",
        pattern.to_str().unwrap()
    )));
    again.open(Some(position)).await.unwrap();
    assert_eq!(
        strings(&drain(&mut again, 100).await.batches, "line"),
        ["b3"]
    );
}

#[tokio::test]
async fn a_large_csv_is_read_in_bounded_batches() {
    // Proves a file larger than one read chunk (8 MiB) is read whole, in batches of at most
    // max_rows, with rows in order and none lost at chunk boundaries.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    let mut text = String::from("id,name\n");
    let n = 400_000;
    for i in 0..n {
        text.push_str(&format!("{i},name-{i}-padding-padding\n"));
    }
    write(&path, &text);
    assert!(text.len() > 8 << 20);
    let mut src = source(table(&format!("path = {:?}", path.to_str().unwrap())));
    src.open(None).await.unwrap();
    let out = drain(&mut src, 50_000).await;
    let mut expected = 0i64;
    for (rows, _) in &out.batches {
        for v in rows.column(0).as_primitive::<Int64Type>().values() {
            assert_eq!(*v, expected);
            expected += 1;
        }
    }
    assert_eq!(expected, n);
}

#[tokio::test]
async fn parsing_ahead_on_threads_gives_the_batches_positions_and_rejects_of_one_thread() {
    // Proves `parse_threads`: batches parsed side by side come out in file order, each with
    // the position after it and the rejects of its own lines (named by line), exactly as
    // one thread gives them, across files and the short batch at a file's end; and
    // resuming from any of those positions reads exactly the rows that followed.
    let dir = tempfile::tempdir().unwrap();
    let mut a = String::from("id,qty\n");
    for i in 0..2_345 {
        if i % 397 == 5 {
            a.push_str(&format!("{i},not-a-number\n"));
        } else {
            a.push_str(&format!("{i},{}\n", i * 3));
        }
    }
    write(&dir.path().join("a.csv"), &a);
    write(&dir.path().join("b.csv"), "id,qty\n9001,1\n9002,2\n9003,3");
    let pattern = dir.path().join("*.csv");
    let settings = |threads: usize| {
        table(&format!(
            "path = {:?}\ncolumns = \"id BIGINT, qty INT\"\nparse_threads = {threads}",
            pattern.to_str().unwrap()
        ))
    };
    let mut one = source(settings(1));
    one.open(None).await.unwrap();
    let alone = drain(&mut one, 100).await;
    let mut many = source(settings(3));
    many.open(None).await.unwrap();
    let ahead = drain(&mut many, 100).await;

    assert_eq!(ahead.ended, "done");
    assert_eq!(ahead.batches.len(), alone.batches.len());
    for ((rows, position), (rows_alone, position_alone)) in ahead.batches.iter().zip(&alone.batches)
    {
        assert_eq!(rows, rows_alone, "the batch before {position}");
        assert_eq!(position, position_alone);
    }
    let lines = |rejects: &[Reject]| -> Vec<(String, Vec<u8>)> {
        rejects
            .iter()
            .map(|r| (r.position.clone(), r.bytes.clone()))
            .collect()
    };
    assert_eq!(lines(&ahead.rejects), lines(&alone.rejects));
    assert_eq!(ahead.rejects.len(), 6, "{:?}", ahead.rejects);
    assert!(
        ahead.rejects[1].position.ends_with("a.csv:404"),
        "{:?}",
        ahead.rejects[1]
    );
    let all = strings(&ahead.batches, "id");
    assert_eq!(all.len(), 2_345 - 6 + 3);

    let mut seen = 0;
    for (i, (rows, position)) in ahead.batches.iter().enumerate() {
        seen += rows.num_rows();
        if i % 4 != 1 {
            continue;
        }
        let mut again = source(settings(3));
        again.open(Some(position.clone())).await.unwrap();
        let rest = strings(&drain(&mut again, 100).await.batches, "id");
        assert_eq!(rest, all[seen..], "resuming from {position}");
    }
}

#[tokio::test]
async fn bad_settings_are_reported() {
    // Proves unknown keys, a two-character delimiter and columns for `lines` are refused
    // with messages naming the key, and a path matching nothing fails check().
    for (text, needle) in [
        ("path = \"x.csv\"\nheader_row = true", "header_row"),
        ("path = \"x.csv\"\ndelimiter = \";;\"", "delimiter"),
        ("path = \"x.log\"\ncolumns = \"a INT\"", "columns"),
        (
            "path = \"x.csv\"\nparse_threads = 0",
            "parse_threads must be at least 1",
        ),
    ] {
        let err = FileSource::new(&Settings::from_table("files", "file", table(text)))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
    let mut src = source(table("path = \"/nonexistent/*.csv\""));
    let problems = src.check().await;
    assert!(problems[0].contains("matches no file"), "{problems:?}");
}
