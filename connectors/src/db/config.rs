//! The pipeline-file keys of the database sinks and sources, shared by the three systems
//! (`url` for PostgreSQL and MySQL, `path` for SQLite; the system's constructor refuses
//! the other).

use serde::Deserialize;

use super::incremental::Mode;

/// How a sink writes rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SinkMode {
    /// Append every row.
    #[default]
    Insert,
    /// Insert or replace by the key fields.
    Upsert,
}

/// A database sink's keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbSinkConfig {
    /// Connection URL (`postgres://...`, `mysql://...`).
    pub url: Option<String>,
    /// Database file (SQLite).
    pub path: Option<String>,
    /// Target table, optionally schema-qualified.
    pub table: String,
    /// insert (default) or upsert.
    #[serde(default)]
    pub mode: SinkMode,
    /// Whether tombstones delete rows by key (default: true in upsert mode).
    pub delete_on_tombstone: Option<bool>,
    /// Create the table from the rows' schema if it does not exist.
    #[serde(default)]
    pub create_table: bool,
    /// Store offsets with the rows, in one transaction (default true).
    #[serde(default = "yes")]
    pub exactly_once: bool,
    /// Rows held between commits before they are written ahead into the open transaction
    /// (default 10 000: a batch or so, so the database works while the sink reads on).
    #[serde(default = "buffer_rows_max")]
    pub buffer_rows_max: usize,
}

fn yes() -> bool {
    true
}

fn buffer_rows_max() -> usize {
    10_000
}

impl DbSinkConfig {
    /// Whether tombstones delete rows.
    pub fn deletes(&self) -> bool {
        self.delete_on_tombstone
            .unwrap_or(self.mode == SinkMode::Upsert)
    }
}

/// A database source's keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbSourceConfig {
    /// Connection URL (`postgres://...`, `mysql://...`).
    pub url: Option<String>,
    /// Database file (SQLite).
    pub path: Option<String>,
    /// Table to read, optionally schema-qualified.
    pub table: String,
    /// bulk (default), incrementing, timestamp or timestamp+incrementing.
    #[serde(default)]
    pub mode: Mode,
    /// The strictly increasing column (incrementing modes).
    pub incrementing_column: Option<String>,
    /// The last-modified column (timestamp modes).
    pub timestamp_column: Option<String>,
    /// Pause after a poll that found nothing new.
    #[serde(default = "poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Rows with a timestamp newer than now minus this wait for a later poll.
    #[serde(default)]
    pub timestamp_delay_ms: u64,
}

fn poll_interval_ms() -> u64 {
    1000
}

/// The URL a system needs, or a problem at the right key.
pub fn require_url(
    settings: &crate::Settings,
    url: &Option<String>,
    path: &Option<String>,
    scheme: &str,
) -> crate::Result<String> {
    if path.is_some() {
        return Err(settings.error(
            Some("path"),
            format!(
                "{} takes `url = \"{scheme}://user@host/db\"`, not `path`",
                settings.kind
            ),
        ));
    }
    match url {
        Some(url)
            if url.starts_with(&format!("{scheme}://"))
                || (scheme == "postgres" && url.starts_with("postgresql://")) =>
        {
            Ok(url.clone())
        }
        Some(_) => Err(settings.error(Some("url"), format!("`url` must start with {scheme}://"))),
        None => Err(settings.error(None, format!("missing `url = \"{scheme}://user@host/db\"`"))),
    }
}

/// `host:port` of a URL, for messages (never the password).
pub fn address(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_string()
}
