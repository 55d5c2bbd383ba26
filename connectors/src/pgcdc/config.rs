//! The `postgres-cdc` source's keys of the pipeline file.

use serde::Deserialize;

use crate::config::Settings;
use crate::error::Result;

/// What a `postgres-cdc` source section holds (besides the runtime's common keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdcConfig {
    /// `postgres://user:password@host:port/db`.
    pub url: String,
    /// Tables to capture, `schema.table` or `table` (schema `public`). Required unless
    /// `publication` names an existing publication, whose tables are then captured.
    #[serde(default)]
    pub tables: Vec<String>,
    /// The publication to read through. Default `sluice_<source name>`, created
    /// `FOR TABLE` the tables if missing.
    #[serde(default)]
    pub publication: Option<String>,
    /// The logical replication slot. Default `sluice_<source name>`, created with the
    /// `pgoutput` plugin if missing.
    #[serde(default)]
    pub slot: Option<String>,
    /// Whether to copy the tables' existing rows first.
    #[serde(default)]
    pub snapshot: SnapshotMode,
    /// How deletes are written.
    #[serde(default)]
    pub deletes: DeleteMode,
    /// How long to wait between reads of the slot when it had nothing new, in milliseconds.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Changes read from the slot per request, and the most held in memory at once.
    #[serde(default = "default_max_changes_per_poll")]
    pub max_changes_per_poll: usize,
}

/// `snapshot = "initial" | "never"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    /// Copy existing rows (`_op = 'r'`) before streaming changes (the default).
    #[default]
    Initial,
    /// Only stream changes made after the slot was created.
    Never,
}

/// `deletes = "row" | "tombstone"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteMode {
    /// A delete is a row with `_op = 'd'` and the known (key) columns (the default).
    #[default]
    Row,
    /// A delete is also marked as a tombstone, so upsert sinks delete the key.
    Tombstone,
}

fn default_poll_interval_ms() -> u64 {
    500
}

fn default_max_changes_per_poll() -> usize {
    10_000
}

/// The upper bound on `max_changes_per_poll`: a read's rows are held in memory.
pub const MAX_CHANGES_PER_POLL_LIMIT: usize = 1_000_000;

impl CdcConfig {
    /// Parses and checks the section.
    pub fn from_settings(settings: &Settings) -> Result<CdcConfig> {
        let config: CdcConfig = settings.parse()?;
        if !(1..=MAX_CHANGES_PER_POLL_LIMIT).contains(&config.max_changes_per_poll) {
            return Err(settings.error(
                Some("max_changes_per_poll"),
                format!("max_changes_per_poll must be from 1 to {MAX_CHANGES_PER_POLL_LIMIT}"),
            ));
        }
        if config.tables.is_empty() && config.publication.is_none() {
            return Err(settings.error(
                None,
                "name the tables to capture (`tables = [\"public.orders\"]`) or an existing \
                 `publication`",
            ));
        }
        if let Some(slot) = &config.slot
            && !valid_slot_name(slot)
        {
            return Err(settings.error(
                Some("slot"),
                format!(
                    "slot `{slot}`: PostgreSQL slot names are 1 to 63 lowercase letters, \
                     digits and underscores"
                ),
            ));
        }
        for table in &config.tables {
            if TableName::parse(table).is_none() {
                return Err(settings.error(
                    Some("tables"),
                    format!("table `{table}`: write `schema.table` or `table`"),
                ));
            }
        }
        Ok(config)
    }
}

/// Whether PostgreSQL accepts `name` as a replication slot name.
pub fn valid_slot_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `sluice_<name>` with everything but `[a-z0-9_]` made `_`, at most 63 bytes: the default
/// slot and publication name.
pub fn default_object_name(source_name: &str) -> String {
    let mut name: String = format!("sluice_{source_name}")
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.truncate(63);
    name
}

/// A table as `schema.table`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    /// The schema (`public` when not given).
    pub schema: String,
    /// The table.
    pub table: String,
}

impl TableName {
    /// `schema.table` or `table`; quotes are not interpreted (names are taken as written).
    pub fn parse(text: &str) -> Option<TableName> {
        let (schema, table) = text.split_once('.').unwrap_or(("public", text));
        if schema.is_empty() || table.is_empty() || table.contains('.') {
            return None;
        }
        Some(TableName {
            schema: schema.to_string(),
            table: table.to_string(),
        })
    }

    /// `"schema"."table"`, quoted for SQL.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// An identifier quoted for SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_valid_slot_names() {
        // Proves any source name gives a slot name PostgreSQL accepts.
        let name = default_object_name("Orders-CDC.v2/ünïcode");
        assert!(valid_slot_name(&name), "{name}");
        assert_eq!(default_object_name("orders cdc"), "sluice_orders_cdc");
        assert!(valid_slot_name(&default_object_name(&"x".repeat(200))));
    }

    #[test]
    fn table_names_default_to_public() {
        // Proves `orders` means public.orders and bad names are refused.
        assert_eq!(
            TableName::parse("orders").unwrap().to_string(),
            "public.orders"
        );
        assert_eq!(TableName::parse("s.t").unwrap().quoted(), "\"s\".\"t\"");
        assert!(TableName::parse("a.b.c").is_none());
        assert!(TableName::parse(".t").is_none());
    }
}
