//! The in-memory engine: a `BTreeMap`, rebuilt from the changelog on every start.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::KvBytes;

#[derive(Debug, Default)]
pub(crate) struct MemoryKv {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl KvBytes for MemoryKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Ok(self.map.get(key).cloned())
    }

    fn write(&mut self, batch: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), String> {
        for (k, v) in batch {
            match v {
                Some(v) => self.map.insert(k, v),
                None => self.map.remove(&k),
            };
        }
        Ok(())
    }

    fn range(
        &self,
        from: &[u8],
        to: Option<&[u8]>,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), String> {
        let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
        for (k, v) in self.map.range::<[u8], _>((Bound::Included(from), upper)) {
            if !f(k, v) {
                break;
            }
        }
        Ok(())
    }

    fn persist(&mut self) -> Result<(), String> {
        Ok(())
    }

    fn clear(&mut self) -> Result<(), String> {
        self.map.clear();
        Ok(())
    }
}
