//! The transaction coordinator's state: one [`TxnMeta`] per transactional id, persisted as
//! JSON on the compacted internal topic `__transaction_state` (key: the transactional id)
//! and reloaded when the broker starts.
//!
//! Invariants:
//! - every change is written to `__transaction_state` before it is answered, so a restart
//!   resumes from what clients were told;
//! - ending a transaction goes Ongoing -> Prepare{Commit,Abort} (persisted) -> markers on
//!   every partition -> staged offsets applied (commit only) -> Empty (persisted); a
//!   Prepare state found at load or by the timer is driven to the end again (a second marker
//!   for a transaction already closed in a partition changes nothing there);
//! - one lock covers every transactional id, and transactional produce runs its check and
//!   append under it, so a marker can never land before a batch of the transaction it ends.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::log::{Log, NewTopic};
use crate::record::{Compression, ProducerStamp, Record, encode_batch};

/// The internal topic holding the coordinator's state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// Kafka's `transaction.max.timeout.ms` default: the longest timeout a producer may ask for.
pub(crate) const TRANSACTION_MAX_TIMEOUT_MS: i32 = 900_000;

/// Where a transactional id's current transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Phase {
    /// No transaction open.
    Empty,
    /// Partitions or offsets were added; EndTxn or the timeout will end it.
    Ongoing,
    /// Committing: markers and offsets are being written.
    PrepareCommit,
    /// Aborting: markers are being written.
    PrepareAbort,
}

/// An offset commit staged by TxnOffsetCommit, applied only if the transaction commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StagedOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub metadata: String,
}

/// One transactional id's state (the JSON value stored under its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TxnMeta {
    pub producer_id: i64,
    pub epoch: i16,
    /// The epoch before the coordinator bumped it on a timeout: the producer may still
    /// present it to InitProducerId to get a new epoch (KIP-360), and nobody else may.
    pub prev_epoch: i16,
    pub timeout_ms: i32,
    pub phase: Phase,
    /// When the current transaction began (ms since the epoch), for the timeout.
    pub started_ms: i64,
    pub partitions: BTreeSet<(String, i32)>,
    /// Group id -> offsets staged for it.
    pub offsets: BTreeMap<String, Vec<StagedOffset>>,
}

struct State {
    txns: HashMap<String, TxnMeta>,
    /// Producer id -> transactional id, for checking transactional produce.
    by_producer: HashMap<i64, String>,
}

/// The coordinator for every transactional id (one node: it is always this broker).
pub(crate) struct TxnCoordinator {
    log: Log,
    state: Mutex<State>,
}

type TxnResult<T> = std::result::Result<T, ResponseError>;

impl TxnCoordinator {
    /// Creates `__transaction_state` if needed, loads it and finishes any transaction that
    /// was being committed or aborted when the broker stopped.
    pub fn load(log: Log) -> Result<TxnCoordinator> {
        log.ensure_topic(
            NewTopic::new(TRANSACTION_STATE_TOPIC, 1)
                .config("cleanup.policy", "compact")
                .config("flush.messages", "1")
                .config("segment.bytes", (16 << 20).to_string()),
        )?;
        let partition = log.partition(TRANSACTION_STATE_TOPIC, 0)?;
        let mut txns = HashMap::new();
        partition.replay_records(|record| {
            let Some(key) = record.key.as_deref() else {
                return;
            };
            let id = String::from_utf8_lossy(key).into_owned();
            match record
                .value
                .as_deref()
                .map(serde_json::from_slice::<TxnMeta>)
            {
                Some(Ok(meta)) => {
                    txns.insert(id, meta);
                }
                Some(Err(e)) => {
                    tracing::warn!(transactional_id = %id, "skipping unreadable transaction state: {e}");
                }
                None => {
                    txns.remove(&id);
                }
            }
        })?;
        let by_producer = txns
            .iter()
            .map(|(id, meta)| (meta.producer_id, id.clone()))
            .collect();
        let coordinator = TxnCoordinator {
            log,
            state: Mutex::new(State { txns, by_producer }),
        };
        coordinator.finish_prepared();
        Ok(coordinator)
    }

    /// Writes `meta` as the state of `id`.
    fn persist(&self, id: &str, meta: &TxnMeta) -> TxnResult<()> {
        let value = serde_json::to_vec(meta).map_err(|_| ResponseError::UnknownServerError)?;
        let record = Record {
            offset: 0,
            timestamp: crate::now_ms(),
            key: Some(Bytes::copy_from_slice(id.as_bytes())),
            value: Some(Bytes::from(value)),
            headers: Vec::new(),
        };
        let result = encode_batch(&[record], Compression::None, ProducerStamp::default())
            .and_then(|mut batch| self.log.append(TRANSACTION_STATE_TOPIC, 0, &mut batch));
        result.map(drop).map_err(|e| {
            tracing::error!(transactional_id = %id, "could not persist transaction state: {e}");
            ResponseError::CoordinatorNotAvailable
        })
    }

    /// InitProducerId with a transactional id: the producer id for it (allocated the first
    /// time) at a new epoch, fencing every older one; an open transaction of the previous
    /// epoch is aborted first.
    pub fn init_producer(
        &self,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> TxnResult<(i64, i16)> {
        if !(1..=TRANSACTION_MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        let mut state = self.state.lock();
        let Some(mut meta) = state.txns.get(id).cloned() else {
            let producer_id = self
                .log
                .init_producer_id()
                .map_err(|e| {
                    tracing::error!("could not allocate a producer id: {e}");
                    ResponseError::CoordinatorNotAvailable
                })?
                .0;
            let meta = TxnMeta {
                producer_id,
                epoch: 0,
                prev_epoch: -1,
                timeout_ms,
                phase: Phase::Empty,
                started_ms: 0,
                partitions: BTreeSet::new(),
                offsets: BTreeMap::new(),
            };
            self.persist(id, &meta)?;
            state.by_producer.insert(producer_id, id.to_string());
            state.txns.insert(id.to_string(), meta);
            return Ok((producer_id, 0));
        };
        if let Some((producer_id, epoch)) = expected
            && (producer_id != meta.producer_id
                || (epoch != meta.epoch && epoch != meta.prev_epoch))
        {
            return Err(ResponseError::ProducerFenced);
        }
        // Bump first, so the abort markers fence the old epoch in every partition.
        let old_pid = meta.producer_id;
        self.bump_epoch(&mut meta)?;
        meta.prev_epoch = -1;
        meta.timeout_ms = timeout_ms;
        match meta.phase {
            Phase::Empty => {}
            Phase::Ongoing | Phase::PrepareAbort => meta.phase = Phase::PrepareAbort,
            Phase::PrepareCommit => {}
        }
        if meta.phase != Phase::Empty {
            self.persist(id, &meta)?;
            self.complete(id, &mut meta)?;
        } else {
            self.persist(id, &meta)?;
        }
        if old_pid != meta.producer_id {
            state.by_producer.remove(&old_pid);
            state.by_producer.insert(meta.producer_id, id.to_string());
        }
        let answer = (meta.producer_id, meta.epoch);
        state.txns.insert(id.to_string(), meta);
        Ok(answer)
    }

    /// Moves `meta` to the next epoch, or a new producer id when the epoch is exhausted.
    fn bump_epoch(&self, meta: &mut TxnMeta) -> TxnResult<()> {
        if meta.epoch >= i16::MAX - 1 {
            meta.producer_id = self
                .log
                .init_producer_id()
                .map_err(|_| ResponseError::CoordinatorNotAvailable)?
                .0;
            meta.epoch = 0;
        } else {
            meta.epoch += 1;
        }
        Ok(())
    }

    /// Checks a request's producer id and epoch against `id`'s state.
    fn check<'a>(
        state: &'a mut State,
        id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> TxnResult<&'a mut TxnMeta> {
        let meta = state
            .txns
            .get_mut(id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if meta.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if epoch < meta.epoch {
            return Err(ResponseError::ProducerFenced);
        }
        if epoch > meta.epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        if matches!(meta.phase, Phase::PrepareCommit | Phase::PrepareAbort) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        Ok(meta)
    }

    /// Starts the transaction if none is open.
    fn begin(meta: &mut TxnMeta) {
        if meta.phase == Phase::Empty {
            meta.phase = Phase::Ongoing;
            meta.started_ms = crate::now_ms();
        }
    }

    /// AddPartitionsToTxn: one error code per partition, all or nothing.
    pub fn add_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Vec<i16> {
        let mut state = self.state.lock();
        let all = |e: ResponseError| vec![e.code(); partitions.len()];
        let meta = match Self::check(&mut state, id, producer_id, epoch) {
            Ok(meta) => meta,
            Err(e) => return all(e),
        };
        let unknown: Vec<bool> = partitions
            .iter()
            .map(|(t, p)| self.log.partition(t, *p).is_err())
            .collect();
        if unknown.iter().any(|&u| u) {
            return unknown
                .into_iter()
                .map(|u| {
                    if u {
                        ResponseError::UnknownTopicOrPartition.code()
                    } else {
                        ResponseError::OperationNotAttempted.code()
                    }
                })
                .collect();
        }
        let mut next = meta.clone();
        Self::begin(&mut next);
        next.partitions.extend(partitions.iter().cloned());
        if next != *meta {
            if let Err(e) = self.persist(id, &next) {
                return all(e);
            }
            *meta = next;
        }
        vec![0; partitions.len()]
    }

    /// AddOffsetsToTxn: the group's offsets will be committed with the transaction.
    pub fn add_offsets(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        group: &str,
    ) -> TxnResult<()> {
        let mut state = self.state.lock();
        let meta = Self::check(&mut state, id, producer_id, epoch)?;
        let mut next = meta.clone();
        Self::begin(&mut next);
        next.offsets.entry(group.to_string()).or_default();
        if next != *meta {
            self.persist(id, &next)?;
            *meta = next;
        }
        Ok(())
    }

    /// TxnOffsetCommit: stages offsets for `group`, applied only on commit.
    pub fn stage_offsets(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        group: &str,
        offsets: Vec<StagedOffset>,
    ) -> TxnResult<()> {
        let mut state = self.state.lock();
        let meta = Self::check(&mut state, id, producer_id, epoch)?;
        if meta.phase != Phase::Ongoing || !meta.offsets.contains_key(group) {
            return Err(ResponseError::InvalidTxnState);
        }
        for o in &offsets {
            if self.log.partition(&o.topic, o.partition).is_err() {
                return Err(ResponseError::UnknownTopicOrPartition);
            }
        }
        let mut next = meta.clone();
        let staged = next.offsets.entry(group.to_string()).or_default();
        for o in offsets {
            staged.retain(|s| (s.topic.as_str(), s.partition) != (o.topic.as_str(), o.partition));
            staged.push(o);
        }
        self.persist(id, &next)?;
        *meta = next;
        Ok(())
    }

    /// EndTxn: commits or aborts the open transaction.
    pub fn end(&self, id: &str, producer_id: i64, epoch: i16, commit: bool) -> TxnResult<()> {
        let mut state = self.state.lock();
        let meta = Self::check(&mut state, id, producer_id, epoch)?;
        if meta.phase == Phase::Empty {
            // Nothing was added (or a retry of an EndTxn that completed): nothing to do.
            return Ok(());
        }
        let mut next = meta.clone();
        next.phase = if commit {
            Phase::PrepareCommit
        } else {
            Phase::PrepareAbort
        };
        self.persist(id, &next)?;
        *meta = next.clone();
        self.complete(id, &mut next)?;
        *meta = next;
        Ok(())
    }

    /// Writes the markers (and, for a commit, the staged offsets) of a prepared
    /// transaction, then empties it. On failure the Prepare state stays, to be retried.
    fn complete(&self, id: &str, meta: &mut TxnMeta) -> TxnResult<()> {
        let commit = meta.phase == Phase::PrepareCommit;
        for (topic, index) in &meta.partitions {
            let partition = match self.log.partition(topic, *index) {
                Ok(p) => p,
                // Deleted since: nothing left to mark.
                Err(_) => continue,
            };
            if let Err(e) = partition.append_marker(meta.producer_id, meta.epoch, commit) {
                tracing::error!(transactional_id = %id, %topic, partition = index, "could not write transaction marker: {e}");
                return Err(ResponseError::KafkaStorageError);
            }
        }
        if commit {
            for (group, offsets) in &meta.offsets {
                let entries: Vec<(String, i32, i64, String)> = offsets
                    .iter()
                    .map(|o| (o.topic.clone(), o.partition, o.offset, o.metadata.clone()))
                    .collect();
                if let Err(e) = self.log.inner.groups.commit(&self.log, group, &entries) {
                    tracing::error!(transactional_id = %id, %group, "could not commit transactional offsets: {e}");
                    return Err(ResponseError::KafkaStorageError);
                }
            }
        }
        let mut done = meta.clone();
        done.phase = Phase::Empty;
        done.partitions.clear();
        done.offsets.clear();
        done.started_ms = 0;
        self.persist(id, &done)?;
        *meta = done;
        Ok(())
    }

    /// Drives every prepared transaction to its end (after a restart or a failed write).
    fn finish_prepared(&self) {
        let mut state = self.state.lock();
        let ids: Vec<String> = state
            .txns
            .iter()
            .filter(|(_, m)| matches!(m.phase, Phase::PrepareCommit | Phase::PrepareAbort))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(mut meta) = state.txns.get(&id).cloned() {
                let _ = self.complete(&id, &mut meta);
                state.txns.insert(id, meta);
            }
        }
    }

    /// Aborts every transaction open past its timeout, bumping its epoch so the producer
    /// learns it was fenced; retries prepared ones. Returns how many were aborted.
    pub fn expire(&self, now_ms: i64) -> usize {
        self.finish_prepared();
        let mut state = self.state.lock();
        let expired: Vec<String> = state
            .txns
            .iter()
            .filter(|(_, m)| {
                m.phase == Phase::Ongoing && now_ms - m.started_ms > i64::from(m.timeout_ms)
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut aborted = 0;
        for id in expired {
            let Some(mut meta) = state.txns.get(&id).cloned() else {
                continue;
            };
            let old_pid = meta.producer_id;
            let old_epoch = meta.epoch;
            if self.bump_epoch(&mut meta).is_err() {
                continue;
            }
            meta.prev_epoch = if old_pid == meta.producer_id {
                old_epoch
            } else {
                -1
            };
            meta.phase = Phase::PrepareAbort;
            if self.persist(&id, &meta).is_err() {
                continue;
            }
            tracing::info!(transactional_id = %id, producer_id = meta.producer_id, "aborting transaction past its timeout");
            let _ = self.complete(&id, &mut meta);
            if old_pid != meta.producer_id {
                state.by_producer.remove(&old_pid);
                state.by_producer.insert(meta.producer_id, id.clone());
            }
            state.txns.insert(id, meta);
            aborted += 1;
        }
        aborted
    }

    /// Sets `id`'s phase and persists it, as if the broker stopped in that phase.
    #[cfg(test)]
    pub fn force_phase(&self, id: &str, phase: Phase) {
        let mut state = self.state.lock();
        if let Some(meta) = state.txns.get_mut(id) {
            meta.phase = phase;
            let meta = meta.clone();
            let _ = self.persist(id, &meta);
        }
    }

    /// Runs `append` for a transactional batch of `producer_id` at `epoch` to
    /// `topic`/`partition` if the producer is current and the partition is in its open
    /// transaction; otherwise answers the error the producer should see.
    pub fn produce<T>(
        &self,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
        append: impl FnOnce() -> T,
    ) -> TxnResult<T> {
        let state = self.state.lock();
        let meta = state
            .by_producer
            .get(&producer_id)
            .and_then(|id| state.txns.get(id))
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if meta.producer_id != producer_id || epoch != meta.epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        if meta.phase != Phase::Ongoing
            || !meta.partitions.contains(&(topic.to_string(), partition))
        {
            return Err(ResponseError::InvalidTxnState);
        }
        Ok(append())
    }
}
