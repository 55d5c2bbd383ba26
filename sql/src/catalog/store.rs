//! The durable catalog: topic-table definitions kept in the log itself, on the compacted
//! topic [`CATALOG_TOPIC`] (key = table name, value = the definition as JSON, a null value
//! = dropped), fsynced on every change like `__consumer_offsets`. Any process that opens
//! the same data directory, or connects to a broker serving it, reads the same tables back;
//! on another Kafka-compatible cluster the topic is created there.
//!
//! Invariant: the in-memory map is changed only after the change is durably in the topic,
//! so a failed write never leaves a table visible that a restart would lose.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use sluice_core::ProducerRecord;

use super::table::TableDef;
use crate::backend::Backend;
use crate::provider::pushdown::ScanBounds;
use crate::{Error, Result};

/// The internal topic holding the catalog.
pub const CATALOG_TOPIC: &str = "__sluice_catalog";

/// Topic-table definitions, read from and written to [`CATALOG_TOPIC`].
#[derive(Debug)]
pub struct Catalog {
    backend: Backend,
    tables: Mutex<BTreeMap<String, TableDef>>,
}

impl Catalog {
    /// Opens the catalog of `backend`, creating its topic on first use and reading every
    /// definition in it (the last entry per table wins).
    pub fn open(backend: &Backend) -> Result<Self> {
        backend.ensure_topic(
            CATALOG_TOPIC,
            1,
            &[("cleanup.policy", "compact"), ("flush.messages", "1")],
        )?;
        let mut tables = BTreeMap::new();
        for range in backend.plan_ranges(CATALOG_TOPIC, &ScanBounds::default())? {
            let mut reader = backend.reader(CATALOG_TOPIC, range)?;
            while reader.visit_next(|record| {
                let Some(key) = record.key else {
                    return Ok(true);
                };
                let name = String::from_utf8_lossy(key).into_owned();
                match record.value {
                    None => {
                        tables.remove(&name);
                    }
                    Some(value) => {
                        let def: TableDef =
                            serde_json::from_slice(value).map_err(|e| Error::CorruptCatalog {
                                topic: CATALOG_TOPIC.into(),
                                offset: record.offset,
                                reason: format!("definition of {name}: {e}"),
                            })?;
                        tables.insert(name, def);
                    }
                }
                Ok(true)
            })? {}
        }
        Ok(Self {
            backend: backend.clone(),
            tables: Mutex::new(tables),
        })
    }

    /// Every table, by name.
    pub fn tables(&self) -> Vec<TableDef> {
        self.tables.lock().values().cloned().collect()
    }

    /// One table's definition.
    pub fn get(&self, name: &str) -> Option<TableDef> {
        self.tables.lock().get(name).cloned()
    }

    /// Stores (or replaces) a definition durably.
    pub fn put(&self, def: TableDef) -> Result<()> {
        let value = serde_json::to_vec(&def).map_err(|e| Error::InvalidTable {
            table: def.name.clone(),
            reason: format!("cannot encode the definition: {e}"),
        })?;
        self.write(
            ProducerRecord::to(CATALOG_TOPIC)
                .key(def.name.clone())
                .value(value),
        )?;
        self.tables.lock().insert(def.name.clone(), def);
        Ok(())
    }

    /// Removes a definition durably; `false` if there was none. The topic is kept.
    pub fn remove(&self, name: &str) -> Result<bool> {
        if !self.tables.lock().contains_key(name) {
            return Ok(false);
        }
        self.write(ProducerRecord::to(CATALOG_TOPIC).key(name.to_string()))?;
        Ok(self.tables.lock().remove(name).is_some())
    }

    fn write(&self, record: ProducerRecord) -> Result<()> {
        let writer = self.backend.writer()?;
        writer.send_all(vec![record.partition(0)])?;
        writer.flush()
    }
}
