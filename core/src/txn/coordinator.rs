//! The transaction coordinator: one [`TxnMeta`] per transactional id, persisted as JSON on
//! the compacted internal topic `__transaction_state` (key: the transactional id) and
//! reloaded when the log opens.
//!
//! There is one coordinator per open [`Log`], created with the log when
//! `__transaction_state` exists and otherwise on first use (`Log::txn_coordinator`). The
//! broker's transaction APIs and the embedded transactional `Producer` share it; the log's
//! background thread aborts transactions past their timeout (`expire`). It holds the log
//! weakly: the log owns it, and a strong handle would keep the log open forever.
//!
//! Invariants:
//! - every change is written to `__transaction_state` before it is answered, so a restart
//!   resumes from what clients were told;
//! - ending a transaction goes Ongoing -> Prepare{Commit,Abort} (persisted) -> markers on
//!   every partition -> staged offsets applied (commit only) -> Empty (persisted); a
//!   Prepare state found at load or by the timer is driven to the end again (a second marker
//!   for a transaction already closed in a partition changes nothing there);
//! - one lock covers every transactional id, and transactional produce runs its check and
//!   append under it, so a marker can never land before a batch of the transaction it ends;
//! - at load, a transaction open by an embedded producer (`in_process`) is aborted: its
//!   producer died with the process that last had the log open.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Weak;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;

pub(crate) use super::txn_meta::{Phase, StagedOffset, TxnMeta};
use crate::error::Result;
use crate::log::{Log, LogInner, NewTopic};
use crate::record::{Compression, ProducerStamp, Record, encode_batch};

/// The internal topic holding the coordinator's state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// Kafka's `transaction.max.timeout.ms` default: the longest timeout a producer may ask for.
pub(crate) const TRANSACTION_MAX_TIMEOUT_MS: i32 = 900_000;

struct State {
    txns: HashMap<String, TxnMeta>,
    /// Producer id -> transactional id, for checking transactional produce.
    by_producer: HashMap<i64, String>,
}

/// The coordinator for every transactional id of one log (one node: always this one).
pub(crate) struct TxnCoordinator {
    /// The log that owns this coordinator (weak: see the module docs).
    log: Weak<LogInner>,
    state: Mutex<State>,
}

type TxnResult<T> = std::result::Result<T, ResponseError>;

impl TxnCoordinator {
    /// Creates `__transaction_state` if needed, loads it, finishes any transaction that
    /// was being committed or aborted when the log was last open and aborts those left
    /// open by embedded producers.
    pub fn load(log: &Log) -> Result<TxnCoordinator> {
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
            log: std::sync::Arc::downgrade(&log.inner),
            state: Mutex::new(State { txns, by_producer }),
        };
        coordinator.finish_prepared();
        coordinator.abort_orphans();
        Ok(coordinator)
    }

    /// The log, unless it is being dropped.
    fn log(&self) -> TxnResult<Log> {
        self.log
            .upgrade()
            .map(|inner| Log { inner })
            .ok_or(ResponseError::CoordinatorNotAvailable)
    }

    /// Aborts every transaction an embedded producer left open (see `TxnMeta::in_process`).
    fn abort_orphans(&self) {
        let mut state = self.state.lock();
        let orphans: Vec<String> = state
            .txns
            .iter()
            .filter(|(_, m)| m.in_process && m.phase == Phase::Ongoing)
            .map(|(id, _)| id.clone())
            .collect();
        for id in orphans {
            tracing::info!(transactional_id = %id, "aborting the transaction an embedded producer left open");
            let _ = self.abort_fencing(&mut state, &id, false);
        }
    }

    /// Aborts `id`'s open transaction at a new epoch, so whoever holds the old one is
    /// fenced; with `keep_prev` the old epoch may still re-initialise (a timed-out
    /// producer, KIP-360). Fails only if nothing changed; a failed marker leaves the
    /// Prepare state for `finish_prepared` to retry.
    fn abort_fencing(&self, state: &mut State, id: &str, keep_prev: bool) -> TxnResult<()> {
        let Some(mut meta) = state.txns.get(id).cloned() else {
            return Ok(());
        };
        let (old_pid, old_epoch) = (meta.producer_id, meta.epoch);
        self.bump_epoch(&mut meta)?;
        meta.prev_epoch = if keep_prev && old_pid == meta.producer_id {
            old_epoch
        } else {
            -1
        };
        meta.phase = Phase::PrepareAbort;
        self.persist(id, &meta)?;
        let _ = self.complete(id, &mut meta);
        if old_pid != meta.producer_id {
            state.by_producer.remove(&old_pid);
            state.by_producer.insert(meta.producer_id, id.to_string());
        }
        state.txns.insert(id.to_string(), meta);
        Ok(())
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
        let log = self.log()?;
        let result = encode_batch(&[record], Compression::None, ProducerStamp::default())
            .and_then(|mut batch| log.append(TRANSACTION_STATE_TOPIC, 0, &mut batch));
        result.map(drop).map_err(|e| {
            tracing::error!(transactional_id = %id, "could not persist transaction state: {e}");
            ResponseError::CoordinatorNotAvailable
        })
    }

    /// InitProducerId with a transactional id: the producer id for it (allocated the first
    /// time) at a new epoch, fencing every older one; an open transaction of the previous
    /// epoch is aborted first. `in_process`: the caller is an embedded producer (see
    /// `TxnMeta::in_process`).
    pub fn init_producer(
        &self,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        in_process: bool,
    ) -> TxnResult<(i64, i16)> {
        if !(1..=TRANSACTION_MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        let mut state = self.state.lock();
        let Some(mut meta) = state.txns.get(id).cloned() else {
            let producer_id = self
                .log()?
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
                in_process,
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
        meta.in_process = in_process;
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
                .log()?
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
        let log = match self.log() {
            Ok(log) => log,
            Err(e) => return all(e),
        };
        let unknown: Vec<bool> = partitions
            .iter()
            .map(|(t, p)| log.partition(t, *p).is_err())
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
        let log = self.log()?;
        for o in &offsets {
            if log.partition(&o.topic, o.partition).is_err() {
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
        let log = self.log()?;
        for (topic, index) in &meta.partitions {
            let partition = match log.partition(topic, *index) {
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
                if let Err(e) = log.inner.groups.commit(&log, group, &entries) {
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
            tracing::info!(transactional_id = %id, "aborting transaction past its timeout");
            if self.abort_fencing(&mut state, &id, true).is_ok() {
                aborted += 1;
            }
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

    /// Whether `producer_id` at `epoch` is still `id`'s current producer (with no commit or
    /// abort being written): what an embedded producer checks before buffering a record.
    pub fn check_current(&self, id: &str, producer_id: i64, epoch: i16) -> TxnResult<()> {
        let mut state = self.state.lock();
        Self::check(&mut state, id, producer_id, epoch).map(drop)
    }

    /// Whether `producer_id` at `epoch` lost `id` to the timeout (rather than to another
    /// producer): it may then re-initialise with that epoch (KIP-360).
    pub fn timed_out(&self, id: &str, producer_id: i64, epoch: i16) -> bool {
        let state = self.state.lock();
        state
            .txns
            .get(id)
            .is_some_and(|m| m.producer_id == producer_id && m.prev_epoch == epoch)
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
