//! The persistent engine: fjall, one database per job instance (its state directory) and
//! one keyspace per task and store, so the LSM's background workers and block cache are
//! shared by every task instead of multiplied.

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::KvBytes;

/// The fjall database of one job instance.
#[derive(Clone)]
pub(crate) struct FjallEngine {
    db: Database,
}

impl std::fmt::Debug for FjallEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FjallEngine")
    }
}

impl FjallEngine {
    /// Opens (or creates) the database in `dir` with a block cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, String> {
        let db = Database::builder(dir)
            .cache_size(cache_bytes)
            .worker_threads(1)
            .open()
            .map_err(|e| format!("cannot open the state database in {}: {e}", dir.display()))?;
        Ok(FjallEngine { db })
    }

    /// The store `name` of task `task`.
    pub fn store(&self, task: &str, name: &str) -> Result<FjallKv, String> {
        let keyspace_name = format!("{task}.{name}");
        let keyspace = self
            .db
            .keyspace(&keyspace_name, KeyspaceCreateOptions::default)
            .map_err(|e| format!("cannot open keyspace {keyspace_name}: {e}"))?;
        Ok(FjallKv {
            db: self.db.clone(),
            keyspace,
        })
    }
}

/// One store's keyspace.
pub(crate) struct FjallKv {
    db: Database,
    keyspace: Keyspace,
}

impl KvBytes for FjallKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.keyspace
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| e.to_string())
    }

    fn write(&mut self, batch: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), String> {
        let mut b = self.db.batch();
        for (k, v) in batch {
            match v {
                Some(v) => b.insert(&self.keyspace, k, v),
                None => b.remove(&self.keyspace, k),
            }
        }
        b.commit().map_err(|e| e.to_string())
    }

    fn range(
        &self,
        from: &[u8],
        to: Option<&[u8]>,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), String> {
        let iter = match to {
            Some(to) => self.keyspace.range(from.to_vec()..to.to_vec()),
            None => self.keyspace.range(from.to_vec()..),
        };
        for guard in iter {
            let (k, v) = guard.into_inner().map_err(|e| e.to_string())?;
            if !f(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    fn persist(&mut self) -> Result<(), String> {
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(|e| e.to_string())
    }

    fn clear(&mut self) -> Result<(), String> {
        self.keyspace.clear().map_err(|e| e.to_string())
    }
}
