//! The `stdin` source and `stdout` sink over in-memory streams (the process's own are the
//! same code with tokio's stdin/stdout plugged in).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::Int64Type;
use sluice_connectors::schema::parse_schema;
use sluice_connectors::stdio::{StdinSource, StdoutSink};
use sluice_connectors::{Offsets, Poll, Settings, Sink, SinkBatch, SinkContext, SinkOp, Source};
use tokio::io::AsyncReadExt;

fn settings(kind: &str, text: &str) -> Settings {
    Settings::from_table("io", kind, toml::from_str(text).unwrap())
}

#[tokio::test]
async fn stdin_csv_is_parsed_like_files_and_ends_at_eof() {
    // Proves stdin CSV gets header-named, type-inferred columns, emits the final
    // unterminated line, and is Done at end of input.
    let input = std::io::Cursor::new(b"id,name\n1,a\n2,\"b,c\"\n3,d".to_vec());
    let mut src =
        StdinSource::with_input(&settings("stdin", "format = \"csv\""), Box::new(input)).unwrap();
    src.open(None).await.unwrap();
    let mut ids = Vec::new();
    let mut names = Vec::new();
    loop {
        match src.poll(2).await.unwrap() {
            Poll::Batch(b) => {
                assert_eq!(b.rows.schema().field(1).name(), "name");
                ids.extend(
                    b.rows
                        .column(0)
                        .as_primitive::<Int64Type>()
                        .values()
                        .to_vec(),
                );
                names.extend(
                    b.rows
                        .column(1)
                        .as_string::<i32>()
                        .iter()
                        .map(|v| v.unwrap().to_string()),
                );
                assert!(b.rejects.is_empty());
            }
            Poll::Idle => continue,
            Poll::Done => break,
        }
    }
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(names, ["a", "b,c", "d"]);
}

#[tokio::test]
async fn stdin_lines_with_declared_jsonl() {
    // Proves JSON lines on stdin with declared columns, a bad line rejected by line number.
    let input = std::io::Cursor::new(b"{\"id\":1}\n{\"id\":\"no\"}\n{\"id\":3}\n".to_vec());
    let text = "format = \"jsonl\"\ncolumns = \"id BIGINT\"";
    let mut src = StdinSource::with_input(&settings("stdin", text), Box::new(input)).unwrap();
    src.open(None).await.unwrap();
    let mut ids = Vec::new();
    let mut rejects = Vec::new();
    while let Poll::Batch(b) = src.poll(2).await.unwrap() {
        ids.extend(
            b.rows
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec(),
        );
        rejects.extend(b.rejects);
    }
    assert_eq!(ids, [1, 3]);
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].position, "<stdin>:2");
}

#[tokio::test]
async fn stdout_writes_csv_with_one_header_and_flushes_at_commit() {
    // Proves the stdout sink writes one CSV header then rows across batches, skips deletes,
    // and has everything flushed once commit returns.
    let (writer, mut reader) = tokio::io::duplex(1 << 16);
    let mut sink =
        StdoutSink::with_output(&settings("stdout", "format = \"csv\""), Box::new(writer)).unwrap();
    let schema = parse_schema("id BIGINT, name VARCHAR").unwrap();
    let rows = |ids: Vec<i64>| {
        let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap()
    };
    let context = SinkContext {
        pipeline: "p".into(),
        sink: "io".into(),
        schema: schema.clone(),
        key: vec![],
    };
    assert_eq!(sink.open(&context).await.unwrap(), None);
    for ids in [vec![1, 2], vec![3]] {
        let batch = SinkBatch {
            topic: "t".into(),
            ops: vec![
                SinkOp::Upsert(rows(ids.clone())),
                SinkOp::Delete(rows(ids).project(&[0]).unwrap()),
            ],
            bytes: 0,
        };
        sink.write(batch).await.unwrap();
    }
    assert!(sink.commit(&Offsets::new(), false).await.unwrap());
    drop(sink);
    let mut out = String::new();
    reader.read_to_string(&mut out).await.unwrap();
    assert_eq!(out, "id,name\n1,n1\n2,n2\n3,n3\n");
}
