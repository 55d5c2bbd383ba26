//! Per-partition producer state: for each producer id, its epoch and the sequence ranges of
//! its last few batches, as Kafka keeps them.
//!
//! Rules (Kafka's): a batch from an older epoch is fenced; a new epoch must start at
//! sequence 0; within an epoch a batch must start right after the previous one's last
//! sequence, unless it repeats one of the last [`CACHED_BATCHES`] batches exactly, in which
//! case it is a retry and the log answers with the original offsets instead of writing it
//! again. A producer the partition has never seen may start at any sequence (its state may
//! have gone with deleted segments).
//!
//! The table is rebuilt on open from a snapshot plus a header scan of the log after it.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// How many recent batches per producer are remembered for de-duplication (Kafka: 5, the
/// most in-flight requests an idempotent producer may have).
pub(crate) const CACHED_BATCHES: usize = 5;

/// One remembered batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BatchSeq {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

impl BatchSeq {
    /// The sequence range and offsets of a stored batch.
    pub fn of(header: &crate::record::BatchHeader<'_>) -> Self {
        BatchSeq {
            first_seq: header.base_sequence(),
            last_seq: header.last_sequence(),
            base_offset: header.base_offset(),
            last_offset: header.last_offset(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchSeq>,
}

/// The outcome of checking a batch's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Write it.
    Append,
    /// Already written: answer with these offsets, write nothing.
    Duplicate(BatchSeq),
    /// Older epoch than the newest seen.
    Fenced { current_epoch: i16 },
    /// Sequence gap or overlap.
    OutOfOrder { expected: i32 },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX { 0 } else { seq + 1 }
}

impl ProducerStateTable {
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> SequenceCheck {
        let Some(entry) = self.producers.get(&producer_id) else {
            return SequenceCheck::Append;
        };
        if epoch < entry.epoch {
            return SequenceCheck::Fenced {
                current_epoch: entry.epoch,
            };
        }
        if epoch > entry.epoch {
            return if first_seq == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::OutOfOrder { expected: 0 }
            };
        }
        // A retry ends at the same sequence. Compaction may have dropped the first records
        // of the stored batch (moving its first sequence up), so a retry may start earlier;
        // sequences and offsets advance together inside a batch, which gives back the
        // original base offset.
        if let Some(stored) = entry
            .batches
            .iter()
            .find(|b| b.last_seq == last_seq && first_seq <= b.first_seq)
        {
            let shift = i64::from(stored.first_seq - first_seq);
            return SequenceCheck::Duplicate(BatchSeq {
                first_seq,
                last_seq,
                base_offset: stored.base_offset - shift,
                last_offset: stored.last_offset,
            });
        }
        match entry.batches.back() {
            Some(last) if first_seq != next_seq(last.last_seq) => SequenceCheck::OutOfOrder {
                expected: next_seq(last.last_seq),
            },
            _ => SequenceCheck::Append,
        }
    }

    pub fn record(&mut self, producer_id: i64, epoch: i16, batch: BatchSeq) {
        let entry = self.producers.entry(producer_id).or_default();
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(batch);
        while entry.batches.len() > CACHED_BATCHES {
            entry.batches.pop_front();
        }
    }

    /// Raises `producer_id`'s epoch to `epoch` (a transaction marker written by a newer
    /// epoch), so later batches of older epochs are fenced.
    pub fn bump_epoch(&mut self, producer_id: i64, epoch: i16) {
        if let Some(entry) = self.producers.get_mut(&producer_id)
            && epoch > entry.epoch
        {
            entry.epoch = epoch;
            entry.batches.clear();
        }
    }

    /// Forgets batches at or after `offset` (the log was truncated there).
    pub fn truncate(&mut self, offset: i64) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.last_offset < offset);
        }
        self.producers.retain(|_, e| !e.batches.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(first: i32, last: i32, off: i64) -> BatchSeq {
        BatchSeq {
            first_seq: first,
            last_seq: last,
            base_offset: off,
            last_offset: off + i64::from(last - first),
        }
    }

    #[test]
    fn sequence_rules() {
        let mut t = ProducerStateTable::default();
        assert_eq!(t.check(7, 0, 0, 4), SequenceCheck::Append);
        t.record(7, 0, b(0, 4, 100));
        assert_eq!(t.check(7, 0, 0, 4), SequenceCheck::Duplicate(b(0, 4, 100)));
        // As stored after compaction dropped its first two records.
        let mut c = ProducerStateTable::default();
        c.record(
            7,
            0,
            BatchSeq {
                first_seq: 2,
                last_seq: 4,
                base_offset: 102,
                last_offset: 104,
            },
        );
        assert_eq!(c.check(7, 0, 0, 4), SequenceCheck::Duplicate(b(0, 4, 100)));
        assert_eq!(
            t.check(7, 0, 6, 9),
            SequenceCheck::OutOfOrder { expected: 5 }
        );
        assert_eq!(t.check(7, 0, 5, 9), SequenceCheck::Append);
        t.record(7, 1, b(0, 0, 200));
        assert_eq!(
            t.check(7, 0, 5, 9),
            SequenceCheck::Fenced { current_epoch: 1 }
        );
        assert_eq!(
            t.check(7, 2, 3, 3),
            SequenceCheck::OutOfOrder { expected: 0 }
        );
    }

    #[test]
    fn remembers_only_the_last_five() {
        let mut t = ProducerStateTable::default();
        for i in 0..7 {
            t.record(1, 0, b(i, i, i64::from(i)));
        }
        assert_eq!(t.check(1, 0, 2, 2), SequenceCheck::Duplicate(b(2, 2, 2)));
        assert_eq!(
            t.check(1, 0, 1, 1),
            SequenceCheck::OutOfOrder { expected: 7 }
        );
    }
}
