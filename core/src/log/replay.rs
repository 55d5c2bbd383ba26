//! Replaying a partition's records from the start: how the internal compacted topics
//! (`__consumer_offsets`, `__transaction_state`) are loaded into memory on open.

use super::partition::Partition;
use crate::error::{Error, Result};
use crate::record::{BatchIter, Record, decode_batch};

impl Partition {
    /// Calls `f` with every data record from the log start to the end, in offset order;
    /// control batches (transaction markers) are skipped. A batch that fails to decode is
    /// [`Error::CorruptRead`] naming its offset.
    pub(crate) fn replay_records(&self, mut f: impl FnMut(Record)) -> Result<()> {
        let corrupt = |offset: i64, reason: String| Error::CorruptRead {
            topic: self.topic().to_string(),
            partition: self.id(),
            offset,
            reason,
        };
        let mut offset = self.log_start_offset();
        loop {
            let read = self.read(offset, 1 << 20)?;
            if read.records.is_empty() {
                return Ok(());
            }
            for item in BatchIter::new(&read.records) {
                let (start, header) = item.map_err(|e| corrupt(offset, e.to_string()))?;
                let base = header.base_offset();
                offset = header.last_offset() + 1;
                if header.attributes().control() {
                    continue;
                }
                let batch = read.records.slice(start..start + header.batch_bytes());
                decode_batch(batch)
                    .map_err(|e| corrupt(base, e))?
                    .into_iter()
                    .for_each(&mut f);
            }
        }
    }
}
