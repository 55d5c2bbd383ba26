//! Allocation of producer ids, unique for the life of a data directory.
//!
//! Ids are handed out from blocks: the end of the current block is persisted before any id
//! in it is used, so after a crash allocation resumes past every id that may have been
//! given out (some ids are skipped, none is reused).

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::log::io::{Storage, write_atomic};

const BLOCK: i64 = 1000;

pub(crate) struct ProducerIdAllocator {
    path: PathBuf,
    storage: Arc<dyn Storage>,
    next: i64,
    block_end: i64,
}

impl ProducerIdAllocator {
    pub fn open(path: PathBuf, storage: Arc<dyn Storage>) -> Result<Self> {
        let next = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<i64>().map_err(|_| Error::Corrupt {
                path: path.clone(),
                position: 0,
                reason: format!("producer id block end {text:?} is not a number"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(Error::io("read", path, e)),
        };
        Ok(ProducerIdAllocator {
            path,
            storage,
            next,
            block_end: next,
        })
    }

    pub fn allocate(&mut self) -> Result<i64> {
        if self.next >= self.block_end {
            let end = self.next + BLOCK;
            write_atomic(&*self.storage, &self.path, end.to_string().as_bytes())
                .map_err(|e| Error::io("persist producer id block to", &self.path, e))?;
            self.block_end = end;
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }
}
