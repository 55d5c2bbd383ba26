//! Parsing `sluice.toml` and refusing a bad `LogConfig`, with errors that name the
//! setting.

use std::path::PathBuf;

use sluice_core::{Config, Error, Log};

#[test]
fn config_from_toml_names_bad_keys_and_values() {
    // Guards against a typo or out-of-range value in sluice.toml being ignored, or an error
    // that does not say which setting is wrong.
    let config = Config::from_toml(
        "data_dir = \"/var/lib/sluice\"\n[log]\nsegment_bytes = 4096\ndurability = \"sync\"\nretention_ms = -1\n",
    )
    .unwrap();
    assert_eq!(config.data_dir, Some(PathBuf::from("/var/lib/sluice")));
    assert_eq!(config.log.segment_bytes, 4096);
    assert_eq!(config.log.retention_ms, -1);
    assert_eq!(Config::from_toml("").unwrap(), Config::default());

    let mut failures = Vec::new();
    for (text, key) in [
        ("[log]\nsegment_byts = 10\n", "log.segment_byts"),
        ("bogus = 1\n", "bogus"),
        ("[logs]\nsegment_bytes = 1\n", "logs"),
        ("[log]\nsegment_bytes = 3\n", "log.segment_bytes"),
        ("[log]\nsegment_bytes = 4294967296\n", "log.segment_bytes"),
        ("[log]\nsegment_bytes = \"big\"\n", "log.segment_bytes"),
        ("[log]\nretention_ms = -5\n", "log.retention_ms"),
        ("[log]\nretention_bytes = -2\n", "retention_bytes"),
        ("[log]\ndurability = \"sometimes\"\n", "log.durability"),
        ("[log]\ndurability = \"interval:0\"\n", "log.durability"),
        ("[log]\ndefault_partitions = 0\n", "log.default_partitions"),
        ("[log]\ncleanup_policy = \"shred\"\n", "log.cleanup_policy"),
        ("[log]\nmax_message_bytes = 10\n", "log.max_message_bytes"),
        (
            "[log]\ncleaner_interval_ms = 0\n",
            "log.cleaner_interval_ms",
        ),
        ("[log]\nsegment_ms = 0\n", "log.segment_ms"),
        ("log.segment_bytes = \"big\"\n", "log.segment_bytes"),
        ("data_dir = 5\n[log]\nsegment_bytes = 4096\n", "data_dir"),
        (
            "data_dir = \"/x\"\n\n[log]\n\nretention_ms = \"soon\"\n",
            "log.retention_ms",
        ),
    ] {
        match Config::from_toml(text) {
            Err(err @ Error::InvalidConfig { .. }) if err.to_string().contains(key) => {}
            other => failures.push(format!("{text:?} -> {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "errors not naming the key:\n{}",
        failures.join("\n")
    );

    // A bad LogConfig also stops Log::open.
    let dir = tempfile::tempdir().unwrap();
    let bad = sluice_core::LogConfig {
        segment_bytes: 1,
        ..Default::default()
    };
    let err = Log::options().config(bad).open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("segment_bytes"), "{err}");
}
