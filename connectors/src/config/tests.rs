//! Pipeline files read from either syntax: a YAML file and its TOML twin give the same
//! sections, and problems in YAML carry the YAML text's lines.

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

const TOML: &str = r#"[pipeline]
name = "orders"
on_error = "dead_letter"
commit_interval_ms = 100

[[source]]
name = "orders-csv"
type = "file"
path = "orders/*.csv"
format = "csv"
topic = "orders"
key = ["order_id"]
partitions = 3

[[source.transform]]
type = "cast"
fields = { amount = "DOUBLE" }

[[source.transform]]
type = "filter"
where = "amount > 0.5"

[[sink]]
name = "warehouse"
type = "postgres"
topics = ["orders"]
url = "postgres://postgres@127.0.0.1/test"
create_table = true
batch_rows = 500
"#;

const YAML: &str = r#"# The TOML file above, in YAML.
pipeline:
  name: orders
  on_error: dead_letter
  commit_interval_ms: 100
source:
  - name: orders-csv
    type: file
    path: orders/*.csv
    format: csv
    topic: orders
    key: [order_id]
    partitions: 3
    transform:
      - type: cast
        fields: { amount: DOUBLE }
      - type: filter
        where: "amount > 0.5"
sink:
  - name: warehouse
    type: postgres
    topics:
      - orders
    url: postgres://postgres@127.0.0.1/test
    create_table: true
    batch_rows: 500
"#;

/// Everything parsing gives for each source and sink, written out to compare across
/// syntaxes: the runtime's keys, each transform's and the connector's.
fn sections(f: &PipelineFile) -> Vec<String> {
    let describe = |common: String, transforms: &[Settings], settings: &Settings| {
        let transforms: Vec<_> = transforms
            .iter()
            .map(|t| (&t.name, &t.kind, t.table()))
            .collect();
        format!(
            "{common} {transforms:?} {} {} {:?}",
            settings.name,
            settings.kind,
            settings.table()
        )
    };
    let sources = f
        .sources
        .iter()
        .map(|s| describe(format!("{:?}", s.common), &s.transforms, &s.settings));
    let sinks = f
        .sinks
        .iter()
        .map(|s| describe(format!("{:?}", s.common), &s.transforms, &s.settings));
    sources.chain(sinks).collect()
}

fn yaml_err(text: &str) -> String {
    match PipelineFile::parse_yaml("p.yaml", text, &no_env) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_yaml_file_reads_as_its_toml_twin() {
    // Proves: YAML and TOML are two spellings of one document: every section, its
    // runtime keys, its connector's keys and its transforms come out the same.
    let toml = PipelineFile::parse("p.toml", TOML, &no_env).unwrap();
    let yaml = PipelineFile::parse_yaml("p.yaml", YAML, &no_env).unwrap();
    assert_eq!(yaml.name, toml.name);
    assert_eq!(
        format!("{:?}", yaml.pipeline),
        format!("{:?}", toml.pipeline)
    );
    assert_eq!(yaml.sources.len(), 1);
    assert_eq!(yaml.sinks.len(), 1);
    assert_eq!(sections(&yaml), sections(&toml));
}

#[test]
fn yaml_keys_are_found_on_their_own_lines() {
    // Proves: connectors' problems land on the YAML line of the key they name, each
    // transform's inside its own item, and a nested key of the same name is not taken
    // for the section's own.
    let yaml = PipelineFile::parse_yaml("p.yaml", YAML, &no_env).unwrap();
    let source = &yaml.sources[0];
    assert_eq!(source.settings.line(), 7);
    assert_eq!(source.settings.line_of("path"), Some(9));
    assert_eq!(source.settings.line_of("format"), Some(10));
    // `type` is set by the transforms too, further right: the source's own is line 8.
    assert_eq!(source.settings.line_of("type"), Some(8));
    assert_eq!(source.transforms[0].line(), 15);
    assert_eq!(source.transforms[0].line_of("fields"), Some(16));
    assert_eq!(source.transforms[1].line_of("where"), Some(18));
    assert_eq!(source.transforms[1].line_of("fields"), None);
    let sink = &yaml.sinks[0];
    assert_eq!(sink.settings.line(), 20);
    assert_eq!(sink.settings.line_of("url"), Some(24));
    assert_eq!(
        sink.settings.problem(Some("create_table"), "no"),
        "p.yaml:25: sink \"warehouse\": no"
    );
}

#[test]
fn every_problem_of_a_yaml_file_is_reported_at_its_line() {
    // Proves: a YAML file's problems are all reported at once, each at its own line: the
    // runtime's checks (shared with TOML), a null, and a key that is not a string.
    let err = yaml_err(
        r#"pipeline:
  name: bad
source:
  - name: in
    type: file
    topic: t
    value_format: xml
    partitions: 0
    timestamp:
sink:
  - name: out
    type: postgres
    topics: [t]
    start: middle
    7: seven
"#,
    );
    let lines: Vec<&str> = err.lines().collect();
    for expected in [
        "p.yaml:7: source \"in\": unknown value_format `xml`",
        "p.yaml:8: source \"in\": partitions must be at least 1",
        "p.yaml:9: source \"in\": `timestamp` has no value (YAML null)",
        "p.yaml:14: sink \"out\": start is `earliest` or `latest`",
        "p.yaml:15: sink \"out\": keys are strings: write `\"7\":`",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(expected)),
            "no line starts with {expected:?} in:\n{err}"
        );
    }
    assert_eq!(lines.len(), 5, "{err}");
}

#[test]
fn yaml_nulls_name_their_key_and_line() {
    // Proves: TOML has no null, so each YAML null (empty value, `~`, `null`), nested or
    // in a list, is its own problem naming where it is, rather than a value made up.
    let err = yaml_err(
        "source:\n  - name: in\n    type: file\n    topic: t\n    path: ~\n    transform:\n      \
         - type: cast\n        fields:\n          amount: null\n    key: [a, ~]\n",
    );
    assert!(
        err.contains("p.yaml:5: source \"in\": `path` has no value (YAML null): give it one, or leave the key out"),
        "{err}"
    );
    assert!(
        err.contains("p.yaml:9: source \"in\": `transform[0].fields.amount` has no value"),
        "{err}"
    );
    assert!(
        err.contains("p.yaml:10: source \"in\": `key[1]` has no value"),
        "{err}"
    );
}

#[test]
fn env_substitution_works_in_yaml_as_in_toml() {
    // Proves: `${NAME}` and `${NAME:-default}` are replaced in YAML strings, quoted or not,
    // and an unset name is a problem at its section's line.
    let env = |name: &str| (name == "PG_PASSWORD").then(|| "s3cret".to_string());
    let text = "sink:\n  - name: out\n    type: postgres\n    topics: [t]\n    \
                url: postgres://app:${PG_PASSWORD}@db/app\n    table: \"${TABLE:-orders}\"\n";
    let file = PipelineFile::parse_yaml("p.yaml", text, &env).unwrap();
    let table = file.sinks[0].settings.table();
    assert_eq!(table["url"].as_str(), Some("postgres://app:s3cret@db/app"));
    assert_eq!(table["table"].as_str(), Some("orders"));
    let err = PipelineFile::parse_yaml("p.yaml", text, &no_env)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("p.yaml:2: sink \"out\": environment variable PG_PASSWORD is not set"),
        "{err}"
    );
}

#[test]
fn yaml_syntax_errors_and_wrong_shapes_name_their_line() {
    // Proves: a YAML syntax error, a duplicate key, a second document and a wrong
    // top-level shape each stop with `FILE:LINE: message`.
    let err = yaml_err("source:\n  - name: a\n    type: file\n   topic: [t\n");
    assert!(err.starts_with("p.yaml:4: "), "{err}");
    let err = yaml_err("source:\n  - name: a\n    name: b\n");
    assert!(err.starts_with("p.yaml:3: duplicated key"), "{err}");
    let err = yaml_err("pipeline:\n  name: a\n---\npipeline:\n  name: b\n");
    assert!(
        err.starts_with("p.yaml:4: a pipeline file is one YAML document"),
        "{err}"
    );
    let err = yaml_err("- name: a\n");
    assert!(
        err.starts_with("p.yaml:1: a pipeline file is a mapping"),
        "{err}"
    );
    let err = yaml_err("sources:\n  - name: a\nsink:\n  name: b\n");
    assert!(
        err.contains("p.yaml:1: unknown key `sources` (write `source`)"),
        "{err}"
    );
    assert!(err.contains("p.yaml:3: `sink` is a list"), "{err}");
    let err = yaml_err("# nothing yet\n");
    assert!(err.contains("no `source:` and no `sink:`"), "{err}");
}

#[test]
fn the_extension_picks_the_syntax() {
    // Proves: `load` reads `.yaml` and `.yml` files as YAML and anything else as TOML.
    let dir = tempfile::tempdir().unwrap();
    for (file, text) in [("p.yaml", YAML), ("p.YML", YAML), ("p.toml", TOML)] {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let parsed = PipelineFile::load(&path).unwrap();
        assert_eq!(parsed.sources[0].settings.name, "orders-csv", "{file}");
    }
}

#[test]
fn the_yaml_example_is_the_toml_example() {
    // Proves: examples/pipelines/csv-to-parquet.yaml says exactly what its TOML twin says
    // (its header promises the same pipeline), so the two cannot drift apart.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pipelines");
    let toml = PipelineFile::load(&dir.join("csv-to-parquet.toml")).unwrap();
    let yaml = PipelineFile::load(&dir.join("csv-to-parquet.yaml")).unwrap();
    assert_eq!(yaml.name, toml.name);
    assert_eq!(
        format!("{:?}", yaml.pipeline),
        format!("{:?}", toml.pipeline)
    );
    assert_eq!(sections(&yaml), sections(&toml));
}
