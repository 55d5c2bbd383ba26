//! [`Polled`]: one poll's records, left in the bytes of the batches they were read from.
//!
//! A consumer that turns records into something else at once (a sink decoding values into
//! columns) does not need a [`ConsumerRecord`] per record, with its own copy of the topic
//! name and a reference count on the batch for the key and for the value. A `Polled`
//! keeps each batch's records section once and, per record, where its key, value and
//! headers are in it: reading a record hands out slices of those bytes.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{ConsumerRecord, TopicPartition};
use crate::record::{Header, RecordRef};

/// One poll's records, in the order [`Consumer::poll`](super::Consumer::poll) would
/// return them, borrowed from the fetched batches' bytes
/// ([`Consumer::poll_batch`](super::Consumer::poll_batch)).
#[derive(Debug, Default, Clone)]
pub struct Polled {
    parts: Parts,
    records: Vec<Slot>,
}

/// A record of a [`Polled`]: its key, value and headers are slices of the fetched batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolledRecord<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp (ms since epoch).
    pub timestamp: i64,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Value (`None` for a tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers, in order.
    pub headers: &'a [Header],
}

impl Polled {
    /// Records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The `i`th record, if there are that many.
    pub fn get(&self, i: usize) -> Option<PolledRecord<'_>> {
        self.records.get(i).map(|slot| self.parts.record(slot))
    }

    /// The records, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = PolledRecord<'_>> + '_ {
        self.records.iter().map(|slot| self.parts.record(slot))
    }

    /// The records as owned [`ConsumerRecord`]s (their keys and values still share the
    /// batches' bytes).
    pub fn into_records(self) -> Vec<ConsumerRecord> {
        self.records
            .iter()
            .map(|slot| self.parts.owned(slot))
            .collect()
    }
}

/// What the records of a fetch point into: partitions, records sections and headers.
#[derive(Debug, Default, Clone)]
struct Parts {
    partitions: Vec<TopicPartition>,
    sections: Vec<Bytes>,
    headers: Vec<Header>,
}

/// Where one record is: indexes into [`Parts`] and spans of its section.
#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: i64,
    timestamp: i64,
    key: Span,
    value: Span,
    /// `headers[headers.0..headers.1]`.
    headers: (u32, u32),
    section: u32,
    partition: u32,
}

/// Bytes of a records section; `len == ABSENT` is no bytes at all (a null key or value).
/// A section is at most one batch (< 2 GiB): its positions fit in 32 bits.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

const ABSENT: u32 = u32::MAX;

impl Span {
    /// The span of `part`, a slice of the section that starts at address `base`.
    fn of(part: Option<&[u8]>, base: usize) -> Span {
        match part {
            Some(bytes) => Span {
                start: (bytes.as_ptr() as usize - base) as u32,
                len: bytes.len() as u32,
            },
            None => Span {
                start: 0,
                len: ABSENT,
            },
        }
    }

    fn range(self) -> Option<std::ops::Range<usize>> {
        (self.len != ABSENT).then(|| self.start as usize..self.start as usize + self.len as usize)
    }
}

impl Parts {
    fn record(&self, slot: &Slot) -> PolledRecord<'_> {
        let tp = &self.partitions[slot.partition as usize];
        let section = &self.sections[slot.section as usize];
        PolledRecord {
            topic: &tp.topic,
            partition: tp.partition,
            offset: slot.offset,
            timestamp: slot.timestamp,
            key: slot.key.range().map(|r| &section[r]),
            value: slot.value.range().map(|r| &section[r]),
            headers: &self.headers[slot.headers.0 as usize..slot.headers.1 as usize],
        }
    }

    fn owned(&self, slot: &Slot) -> ConsumerRecord {
        let tp = &self.partitions[slot.partition as usize];
        let section = &self.sections[slot.section as usize];
        ConsumerRecord {
            topic: tp.topic.clone(),
            partition: tp.partition,
            offset: slot.offset,
            timestamp: slot.timestamp,
            key: slot.key.range().map(|r| section.slice(r)),
            value: slot.value.range().map(|r| section.slice(r)),
            headers: self.headers[slot.headers.0 as usize..slot.headers.1 as usize].to_vec(),
        }
    }
}

/// A consumer's fetched records not yet handed out, front first.
#[derive(Debug, Default)]
pub(super) struct Buffer {
    parts: Parts,
    records: VecDeque<Slot>,
}

impl Buffer {
    pub(super) fn len(&self) -> usize {
        self.records.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Keeps the first `len` records only.
    pub(super) fn truncate(&mut self, len: usize) {
        self.records.truncate(len);
    }

    /// Forgets everything, keeping the allocations.
    pub(super) fn clear(&mut self) {
        self.records.clear();
        self.parts.partitions.clear();
        self.parts.sections.clear();
        self.parts.headers.clear();
    }

    /// Starts a batch's records section of `count` records; returns what
    /// [`push`](Self::push) takes with its records.
    pub(super) fn section(
        &mut self,
        tp: &TopicPartition,
        section: &Bytes,
        count: usize,
    ) -> Section {
        self.records.reserve(count);
        let partition = match self.parts.partitions.iter().position(|p| p == tp) {
            Some(i) => i,
            None => {
                self.parts.partitions.push(tp.clone());
                self.parts.partitions.len() - 1
            }
        };
        self.parts.sections.push(section.clone());
        Section {
            base: section.as_ptr() as usize,
            index: (self.parts.sections.len() - 1) as u32,
            partition: partition as u32,
        }
    }

    /// Appends a record of the section `at` (borrowed from that section's bytes).
    pub(super) fn push(&mut self, at: Section, record: RecordRef<'_>) {
        let first = self.parts.headers.len() as u32;
        self.parts.headers.extend(record.headers);
        self.records.push_back(Slot {
            offset: record.offset,
            timestamp: record.timestamp,
            key: Span::of(record.key, at.base),
            value: Span::of(record.value, at.base),
            headers: (first, self.parts.headers.len() as u32),
            section: at.index,
            partition: at.partition,
        });
    }

    /// Keeps only the records of partitions `keep` says yes to.
    pub(super) fn retain(&mut self, keep: impl Fn(&TopicPartition) -> bool) {
        let partitions = &self.parts.partitions;
        self.records
            .retain(|slot| keep(&partitions[slot.partition as usize]));
    }

    /// The offset of the first record of `tp` held, if any.
    pub(super) fn first_offset(&self, tp: &TopicPartition) -> Option<i64> {
        let index = self.parts.partitions.iter().position(|p| p == tp)? as u32;
        self.records
            .iter()
            .find(|slot| slot.partition == index)
            .map(|slot| slot.offset)
    }

    /// Hands out the first `n` records (all of them if fewer).
    pub(super) fn take(&mut self, n: usize) -> Polled {
        if n >= self.records.len() {
            return Polled {
                parts: std::mem::take(&mut self.parts),
                records: Vec::from(std::mem::take(&mut self.records)),
            };
        }
        Polled {
            parts: self.parts.clone(),
            records: self.records.drain(..n).collect(),
        }
    }

    /// Hands out the first `n` records (all of them if fewer) as [`ConsumerRecord`]s.
    pub(super) fn take_owned(&mut self, n: usize) -> Vec<ConsumerRecord> {
        let n = n.min(self.records.len());
        let parts = &self.parts;
        self.records
            .drain(..n)
            .map(|slot| parts.owned(&slot))
            .collect()
    }
}

/// A records section being appended to a [`Buffer`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Section {
    base: usize,
    index: u32,
    partition: u32,
}
