//! The transforms, one by one and chained, over small batches.

use std::sync::Arc;

use arrow::array::{
    Array, Float64Array, Int64Array, RecordBatch, StringArray, StructArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Fields};

use super::*;
use crate::schema::parse_schema;

fn settings(kind: &str, toml_text: &str) -> Settings {
    Settings::from_table("t", kind, toml::from_str(toml_text).unwrap())
}

fn chain(steps: &[(&str, &str)]) -> Chain {
    let settings: Vec<Settings> = steps.iter().map(|(k, t)| settings(k, t)).collect();
    Chain::build(&settings, true).unwrap()
}

fn orders() -> RecordBatch {
    RecordBatch::try_new(
        parse_schema("id BIGINT, status VARCHAR, amount VARCHAR, card VARCHAR").unwrap(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            Arc::new(StringArray::from(vec![
                Some("paid"),
                Some("open"),
                None,
                Some("paid"),
            ])),
            Arc::new(StringArray::from(vec!["10.5", "oops", "7", "250"])),
            Arc::new(StringArray::from(vec![
                "4111111111111111",
                "5500",
                "x",
                "378282246310005",
            ])),
        ],
    )
    .unwrap()
}

fn strings(rows: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let c = rows.column_by_name(name).unwrap();
    let c = c.as_any().downcast_ref::<StringArray>().unwrap();
    c.iter().map(|v| v.map(str::to_string)).collect()
}

#[test]
fn a_chain_renames_casts_filters_and_masks_and_names_the_rows_it_rejects() {
    // Proves: rows a cast cannot convert are set aside by their input index, the others run
    // on through later steps, and `origin` maps every output row to its input row.
    let chain = chain(&[
        ("rename", "fields = { status = \"state\" }"),
        ("cast", "fields = { amount = \"DOUBLE\" }"),
        ("filter", "condition = \"amount >= 10 and state = 'paid'\""),
        ("mask", "fields = [\"card\"]\nkeep_last = 4"),
        ("drop", "fields = [\"state\"]"),
    ]);
    let out = chain.apply(orders()).unwrap();
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].0, 1, "row 1 (`oops`) is the bad one");
    assert!(out.rejected[0].1.contains("oops"), "{}", out.rejected[0].1);
    let (topic, rows) = &out.routed[0];
    assert!(topic.is_none());
    assert_eq!(out.origin, vec![0, 3]);
    assert_eq!(
        strings(rows, "card"),
        vec![Some("****1111".into()), Some("****0005".into())]
    );
    let amount = rows.column_by_name("amount").unwrap();
    assert_eq!(
        amount
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .values(),
        &[10.5, 250.0]
    );
    assert!(rows.column_by_name("state").is_none());
    assert_eq!(chain.schema(&orders().schema()).unwrap(), rows.schema());
}

#[test]
fn route_splits_rows_by_topic_and_keeps_their_origin() {
    // Proves: `route` sends each row to the topic its field names, keeping input order
    // within a topic, and rows with a null field are not silently routed to "".
    let chain = chain(&[
        ("filter", "condition = \"status is not null\""),
        ("route", "topic = \"orders.{status}\""),
    ]);
    let out = chain.apply(orders()).unwrap();
    let topics: Vec<_> = out
        .routed
        .iter()
        .map(|(t, r)| (t.clone().unwrap(), r.num_rows()))
        .collect();
    assert_eq!(
        topics,
        vec![
            ("orders.paid".to_string(), 2),
            ("orders.open".to_string(), 1)
        ]
    );
    assert_eq!(out.origin, vec![0, 3, 1]);
    let unfiltered =
        Chain::build(&[settings("route", "topic = \"orders.{status}\"")], true).unwrap();
    assert!(
        unfiltered.apply(orders()).is_err(),
        "a null routing field is an error"
    );
}

#[test]
fn misplaced_or_unknown_transforms_are_config_errors() {
    // Proves: the chain refuses what cannot work before any data moves.
    let err = |steps: &[(&str, &str)], source: bool| {
        let s: Vec<Settings> = steps.iter().map(|(k, t)| settings(k, t)).collect();
        Chain::build(&s, source).err().unwrap().to_string()
    };
    assert!(err(&[("route", "topic = \"x\"")], false).contains("route works on sources"));
    assert!(err(&[("route", "topic = \"x\""), ("drop", "fields = []")], true).contains("last"));
    assert!(err(&[("explode", "")], true).contains("unknown transform type `explode`"));
    assert!(err(&[("cast", "fields = { a = \"LONG\" }")], true).contains("unknown type"));
    assert!(err(&[("filter", "condition = \"a >\"")], true).contains("filter condition"));
    assert!(err(&[("rename", "field = {}")], true).contains("unknown field"));
    let c = chain(&[("drop", "fields = [\"nope\"]")]);
    assert!(
        c.schema(&orders().schema())
            .unwrap_err()
            .to_string()
            .contains("no field `nope`")
    );
}

#[test]
fn insert_adds_constants_and_the_time() {
    // Proves: insert adds typed constant columns and a processing-time column.
    let c = chain(&[(
        "insert",
        "fields = { region = \"eu\", version = 2 }\nnow = \"loaded_at\"",
    )]);
    let rows = c.apply(orders()).unwrap().routed.remove(0).1;
    assert_eq!(strings(&rows, "region"), vec![Some("eu".to_string()); 4]);
    let v = rows.column_by_name("version").unwrap();
    assert_eq!(v.as_any().downcast_ref::<Int64Array>().unwrap().value(3), 2);
    let t = rows.column_by_name("loaded_at").unwrap();
    let t = t
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    assert!(t.value(0) > 1_700_000_000_000_000);
    let dup = chain(&[("insert", "fields = { id = 1 }")]);
    assert!(dup.apply(orders()).is_err());
}

#[test]
fn flatten_lifts_struct_fields() {
    // Proves: nested struct columns become top-level `parent_child` columns, and a null
    // parent makes its children null.
    let inner = Fields::from(vec![
        Field::new("city", DataType::Utf8, true),
        Field::new("zip", DataType::Utf8, true),
    ]);
    let address = StructArray::new(
        inner.clone(),
        vec![
            Arc::new(StringArray::from(vec!["Oslo", "Rome"])),
            Arc::new(StringArray::from(vec!["0150", "00100"])),
        ],
        Some(vec![true, false].into()),
    );
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("address", DataType::Struct(inner), true),
    ]));
    let rows = RecordBatch::try_new(
        schema,
        vec![Arc::new(Int64Array::from(vec![1, 2])), Arc::new(address)],
    )
    .unwrap();
    let out = chain(&[("flatten", "")])
        .apply(rows)
        .unwrap()
        .routed
        .remove(0)
        .1;
    assert_eq!(
        out.schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        vec!["id", "address_city", "address_zip"]
    );
    assert_eq!(
        strings(&out, "address_city"),
        vec![Some("Oslo".into()), None]
    );
}

#[test]
fn timestamp_converts_between_epochs_strings_and_timestamps() {
    // Proves: epoch milliseconds and formatted strings become TIMESTAMPs and back, and a
    // string that does not match the format is a rejected row.
    let schema = parse_schema("ms BIGINT, s VARCHAR").unwrap();
    let rows = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![Some(1_764_000_000_123), None])),
            Arc::new(StringArray::from(vec!["05/12/2026 13:45", "not a date"])),
        ],
    )
    .unwrap();
    let c = chain(&[("timestamp", "field = \"ms\"\nfrom = \"epoch_ms\"")]);
    let out = c.apply(rows.clone()).unwrap().routed.remove(0).1;
    let ts = out
        .column(0)
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    assert_eq!(ts.value(0), 1_764_000_000_123_000);
    assert!(ts.is_null(1));

    let c = chain(&[(
        "timestamp",
        "field = \"s\"\nfrom = \"string\"\nformat = \"%d/%m/%Y %H:%M\"",
    )]);
    let out = c.apply(rows.clone()).unwrap();
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].0, 1);
    let ts = out.routed[0]
        .1
        .column(1)
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap()
        .value(0);
    assert_eq!(
        chrono::DateTime::from_timestamp_micros(ts)
            .unwrap()
            .to_rfc3339(),
        "2026-12-05T13:45:00+00:00"
    );

    let c = chain(&[(
        "timestamp",
        "field = \"ms\"\nfrom = \"epoch_ms\"\nto = \"string\"\nformat = \"%Y-%m-%d\"",
    )]);
    let out = c.apply(rows).unwrap().routed.remove(0).1;
    assert_eq!(strings(&out, "ms"), vec![Some("2025-11-24".into()), None]);
}

#[test]
fn select_keeps_and_orders_columns() {
    // Proves: select keeps only the named columns, in the named order.
    let out = chain(&[("select", "fields = [\"card\", \"id\"]")])
        .apply(orders())
        .unwrap()
        .routed
        .remove(0)
        .1;
    assert_eq!(
        out.schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        vec!["card", "id"]
    );
}

#[cfg(feature = "sql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_runs_a_select_over_each_batch() {
    // Proves: the sql transform plans its SELECT against the input schema and runs it on
    // each batch, with DataFusion's functions available.
    let c = chain(&[(
        "sql",
        "query = \"SELECT id, upper(status) AS status, CAST(amount AS DOUBLE) * 2 AS doubled FROM input WHERE status IS NOT NULL AND amount <> 'oops'\"",
    )]);
    let schema = c.schema(&orders().schema()).unwrap();
    assert_eq!(
        crate::schema::format_schema(&schema),
        "id BIGINT, status VARCHAR, doubled DOUBLE"
    );
    let out = c.apply(orders()).unwrap().routed.remove(0).1;
    assert_eq!(
        strings(&out, "status"),
        vec![Some("PAID".into()), Some("PAID".into())]
    );
    let doubled = out
        .column(2)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    assert_eq!(doubled.values(), &[21.0, 500.0]);
    let bad = Chain::build(&[settings("sql", "query = \"DELETE FROM input\"")], true);
    assert!(bad.err().unwrap().to_string().contains("SELECT"));
}
