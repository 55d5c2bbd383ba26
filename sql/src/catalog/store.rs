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
    /// The catalog topic's offset after the last entry read.
    next: Mutex<i64>,
}

/// One table's change found by [`Catalog::refresh`]: its new definition, or `None` if it
/// was dropped.
pub type CatalogChange = (String, Option<TableDef>);

impl Catalog {
    /// Opens the catalog of `backend`, creating its topic on first use and reading every
    /// definition in it (the last entry per table wins).
    pub fn open(backend: &Backend) -> Result<Self> {
        backend.ensure_topic(
            CATALOG_TOPIC,
            1,
            &[("cleanup.policy", "compact"), ("flush.messages", "1")],
        )?;
        let catalog = Self {
            backend: backend.clone(),
            tables: Mutex::new(BTreeMap::new()),
            next: Mutex::new(0),
        };
        catalog.refresh()?;
        Ok(catalog)
    }

    /// Reads the entries written since the last read (by this process or any other sharing
    /// the data directory or cluster) and applies them; returns each changed table, in the
    /// order the changes were written. Cheap when nothing changed: one look at the topic's
    /// end.
    pub fn refresh(&self) -> Result<Vec<CatalogChange>> {
        // One refresh at a time, so entries are applied once and in order.
        let mut next = self.next.lock();
        let bounds = ScanBounds {
            offset_min: Some(*next),
            ..ScanBounds::default()
        };
        let mut changes = Vec::new();
        for range in self.backend.plan_ranges(CATALOG_TOPIC, &bounds)? {
            if range.start >= range.end {
                continue;
            }
            let mut reader = self.backend.reader(CATALOG_TOPIC, range)?;
            while reader.visit_next(|record| {
                let Some(key) = record.key else {
                    return Ok(true);
                };
                let name = String::from_utf8_lossy(key).into_owned();
                let def = match record.value {
                    None => None,
                    Some(value) => {
                        Some(serde_json::from_slice::<TableDef>(value).map_err(|e| {
                            Error::CorruptCatalog {
                                topic: CATALOG_TOPIC.into(),
                                offset: record.offset,
                                reason: format!("definition of {name}: {e}"),
                            }
                        })?)
                    }
                };
                changes.push((name, def));
                Ok(true)
            })? {}
            *next = range.end;
        }
        let mut tables = self.tables.lock();
        for (name, def) in &changes {
            match def {
                Some(def) => tables.insert(name.clone(), def.clone()),
                None => tables.remove(name),
            };
        }
        Ok(changes)
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
