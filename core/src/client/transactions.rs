//! The transactional side of the embedded [`Producer`], named as in the Java and
//! librdkafka clients: `init_transactions`, `begin_transaction`, sends,
//! `send_offsets_to_transaction`, `commit_transaction` / `abort_transaction`.
//!
//! Every step goes through the log's transaction coordinator (`crate::txn`), the one the
//! broker's transaction APIs use, so an embedded producer and a Kafka client with the same
//! transactional id fence each other. A partition joins the open transaction when its
//! first batch is shipped (before the batch is appended), and the append runs under the
//! coordinator's lock, so no marker can overtake a batch of its transaction.
//!
//! States: `Uninitialized` -> `init_transactions` -> `Ready` <-> `InTransaction`
//! (begin / commit / abort). A failed send leaves `MustAbort`; the coordinator's timeout
//! leaves `TimedOut` (abort starts a new epoch, KIP-360); another producer taking the id
//! leaves `Fenced`, for good.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::ResponseError;

use super::TopicPartition;
use super::batches::State;
use super::producer::{Producer, ProducerConfig};
use crate::error::{Error, Result};
use crate::log::{AppendInfo, Log};
use crate::record::ProducerStamp;
use crate::txn::{StagedOffset, TRANSACTION_MAX_TIMEOUT_MS, TxnCoordinator};

/// Where a transactional producer is (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Uninitialized,
    Ready,
    InTransaction,
    /// A batch of the open transaction failed (the reason): only abort may follow.
    MustAbort(String),
    /// The coordinator aborted the open transaction at its timeout.
    TimedOut,
    /// Another producer took the transactional id.
    Fenced,
}

/// A transactional producer's transaction state, inside the producer's lock.
pub(super) struct TxnProducer {
    id: String,
    timeout_ms: i32,
    coordinator: Arc<TxnCoordinator>,
    phase: Phase,
    /// Partitions added to the open transaction (the coordinator has them too).
    partitions: HashSet<TopicPartition>,
}

impl TxnProducer {
    /// Checks the config and reaches the log's coordinator.
    pub(super) fn new(log: &Log, id: &str, config: &ProducerConfig) -> Result<TxnProducer> {
        if !config.idempotence {
            return Err(Error::InvalidConfig {
                key: "idempotence".into(),
                value: "false".into(),
                reason: format!(
                    "transactional id '{id}' needs an idempotent producer: remove idempotence(false)"
                ),
            });
        }
        let timeout_ms = config.transaction_timeout.as_millis();
        if !(1..=TRANSACTION_MAX_TIMEOUT_MS as u128).contains(&timeout_ms) {
            return Err(Error::InvalidConfig {
                key: "transaction_timeout".into(),
                value: format!("{:?}", config.transaction_timeout),
                reason: format!("must be 1 ms to {TRANSACTION_MAX_TIMEOUT_MS} ms (15 min)"),
            });
        }
        Ok(TxnProducer {
            id: id.to_string(),
            timeout_ms: timeout_ms as i32,
            coordinator: log.txn_coordinator()?,
            phase: Phase::Uninitialized,
            partitions: HashSet::new(),
        })
    }

    fn invalid(&self, reason: impl Into<String>) -> Error {
        Error::InvalidTxnState {
            transactional_id: self.id.clone(),
            reason: reason.into(),
        }
    }

    /// The error for the current phase when it is not `InTransaction`.
    fn phase_error(&self, (producer_id, epoch): (i64, i16)) -> Error {
        match &self.phase {
            Phase::Uninitialized => self.invalid("call init_transactions() first"),
            Phase::Ready => self.invalid("no transaction is open: call begin_transaction() first"),
            Phase::InTransaction => self.invalid("a transaction is already open"),
            Phase::MustAbort(cause) => self.invalid(format!(
                "a send of the open transaction failed ({cause}): call abort_transaction()"
            )),
            Phase::TimedOut => Error::TransactionTimedOut {
                transactional_id: self.id.clone(),
                timeout_ms: i64::from(self.timeout_ms),
            },
            Phase::Fenced => Error::TransactionalIdFenced {
                transactional_id: self.id.clone(),
                producer_id,
                epoch,
            },
        }
    }

    /// Turns a coordinator answer into an error, moving to `Fenced` or `TimedOut` when that
    /// is what it means.
    fn fail(&mut self, e: ResponseError, (producer_id, epoch): (i64, i16)) -> Error {
        match e {
            ResponseError::ProducerFenced
            | ResponseError::InvalidProducerEpoch
            | ResponseError::InvalidProducerIdMapping => {
                self.phase = if self.coordinator.timed_out(&self.id, producer_id, epoch) {
                    Phase::TimedOut
                } else {
                    Phase::Fenced
                };
                self.phase_error((producer_id, epoch))
            }
            ResponseError::InvalidTxnState => {
                self.invalid("the coordinator has no open transaction of this producer")
            }
            e => Error::TransactionCoordinator {
                transactional_id: self.id.clone(),
                reason: e.to_string(),
            },
        }
    }

    /// Before a record is buffered: a transaction must be open and this producer current.
    pub(super) fn check_send(&mut self, producer: Option<(i64, i16)>) -> Result<()> {
        let current = producer.unwrap_or((-1, -1));
        if self.phase != Phase::InTransaction {
            return Err(self.phase_error(current));
        }
        self.coordinator
            .check_current(&self.id, current.0, current.1)
            .map_err(|e| self.fail(e, current))
    }

    /// Appends one encoded batch of the open transaction, adding its partition first.
    pub(super) fn append(
        &mut self,
        log: &Log,
        stamp: &ProducerStamp,
        tp: &TopicPartition,
        bytes: &mut [u8],
    ) -> Result<AppendInfo> {
        let current = (stamp.producer_id, stamp.producer_epoch);
        if self.phase != Phase::InTransaction {
            return Err(self.phase_error(current));
        }
        if !self.partitions.contains(tp) {
            let added = (tp.topic.clone(), tp.partition);
            let code = self
                .coordinator
                .add_partitions(&self.id, current.0, current.1, &[added])
                .into_iter()
                .find(|&c| c != 0);
            if let Some(code) = code {
                if code == ResponseError::UnknownTopicOrPartition.code() {
                    return Err(Error::UnknownTopic {
                        topic: tp.topic.clone(),
                    });
                }
                let e =
                    ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError);
                return Err(self.fail(e, current));
            }
            self.partitions.insert(tp.clone());
        }
        let appended = self
            .coordinator
            .produce(current.0, current.1, &tp.topic, tp.partition, || {
                log.append_built(&tp.topic, tp.partition, bytes)
            })
            .map_err(|e| self.fail(e, current))?;
        appended.inspect_err(|e| {
            // The transaction lost a batch: committing it now would commit a hole.
            self.phase = Phase::MustAbort(e.to_string());
        })
    }

    /// Whether a transaction is open (or must still be aborted).
    fn open(&self) -> bool {
        matches!(self.phase, Phase::InTransaction | Phase::MustAbort(_))
    }
}

fn not_transactional() -> Error {
    Error::InvalidTxnState {
        transactional_id: String::new(),
        reason: "this producer has no transactional id: set ProducerConfig::transactional_id"
            .into(),
    }
}

impl Producer {
    /// Registers the transactional id with the log's coordinator: gets the producer id and
    /// a new epoch, fencing every older producer of the same id and aborting its open
    /// transaction. Call once, before the first [`begin_transaction`](Self::begin_transaction).
    pub fn init_transactions(&self) -> Result<()> {
        let mut state = self.state.lock();
        let State { txn, .. } = &mut *state;
        let txn = txn.as_mut().ok_or_else(not_transactional)?;
        if txn.phase != Phase::Uninitialized {
            return Err(txn.invalid("init_transactions() was already called"));
        }
        let ids = txn
            .coordinator
            .init_producer(&txn.id, txn.timeout_ms, None, true)
            .map_err(|e| txn.fail(e, (-1, -1)))?;
        txn.phase = Phase::Ready;
        state.producer_id = Some(ids);
        state.reset_sequences();
        Ok(())
    }

    /// Starts a transaction: records sent from now on are committed or aborted together.
    pub fn begin_transaction(&self) -> Result<()> {
        let mut state = self.state.lock();
        let current = state.producer_id.unwrap_or((-1, -1));
        let txn = state.txn.as_mut().ok_or_else(not_transactional)?;
        if txn.phase != Phase::Ready {
            return Err(txn.phase_error(current));
        }
        txn.phase = Phase::InTransaction;
        txn.partitions.clear();
        Ok(())
    }

    /// Stages consumed positions (the offset of the next record to read, per partition)
    /// for `group_id`: they become the group's committed offsets when, and only if, the
    /// transaction commits — the consume-transform-produce step of exactly-once processing.
    pub fn send_offsets_to_transaction(
        &self,
        offsets: &[(TopicPartition, i64)],
        group_id: &str,
    ) -> Result<()> {
        let mut state = self.state.lock();
        let current = state.producer_id.unwrap_or((-1, -1));
        let txn = state.txn.as_mut().ok_or_else(not_transactional)?;
        if txn.phase != Phase::InTransaction {
            return Err(txn.phase_error(current));
        }
        let (pid, epoch) = current;
        txn.coordinator
            .add_offsets(&txn.id, pid, epoch, group_id)
            .map_err(|e| txn.fail(e, current))?;
        let staged = offsets
            .iter()
            .map(|(tp, offset)| StagedOffset {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset: *offset,
                metadata: String::new(),
            })
            .collect();
        match txn
            .coordinator
            .stage_offsets(&txn.id, pid, epoch, group_id, staged)
        {
            Err(ResponseError::UnknownTopicOrPartition) => Err(txn.invalid(format!(
                "offsets for group '{group_id}' name a partition that does not exist"
            ))),
            result => result.map_err(|e| txn.fail(e, current)),
        }
    }

    /// Sends every buffered record of the open transaction, then commits it: COMMIT
    /// markers in every partition it wrote to and its staged offsets applied. If a send
    /// failed, nothing is committed and the error says to call
    /// [`abort_transaction`](Self::abort_transaction).
    pub fn commit_transaction(&self) -> Result<()> {
        let mut state = self.state.lock();
        let current = state.producer_id.unwrap_or((-1, -1));
        {
            let txn = state.txn.as_ref().ok_or_else(not_transactional)?;
            if txn.phase != Phase::InTransaction {
                return Err(txn.phase_error(current));
            }
        }
        // A failed batch of records sent without deliveries (`send_all`) fails the commit too.
        let failed = self.ship_all(&mut state);
        let failed = state.unacked_failure.take().or(failed);
        let txn = state.txn.as_mut().ok_or_else(not_transactional)?;
        if let Some(e) = failed {
            if txn.phase == Phase::InTransaction {
                txn.phase = Phase::MustAbort(e.to_string());
            }
            return Err(txn.phase_error(current));
        }
        txn.coordinator
            .end(&txn.id, current.0, current.1, true)
            .map_err(|e| txn.fail(e, current))?;
        txn.phase = Phase::Ready;
        txn.partitions.clear();
        Ok(())
    }

    /// Aborts the open transaction: buffered records are dropped (their deliveries fail),
    /// ABORT markers go to every partition it wrote to and its staged offsets are
    /// forgotten. After a timeout this also starts a new epoch, so the producer can go on.
    /// Without an open transaction it does nothing.
    pub fn abort_transaction(&self) -> Result<()> {
        let mut state = self.state.lock();
        let current = state.producer_id.unwrap_or((-1, -1));
        let txn = state.txn.as_mut().ok_or_else(not_transactional)?;
        let dropped =
            Arc::new(txn.invalid("the transaction was aborted before this record was sent"));
        match txn.phase {
            Phase::InTransaction | Phase::MustAbort(_) => {
                let ended = txn.coordinator.end(&txn.id, current.0, current.1, false);
                if let Err(e) = ended {
                    let e = txn.fail(e, current);
                    if txn.phase != Phase::TimedOut {
                        return Err(e);
                    }
                    return self.abort_timed_out(&mut state, &dropped);
                }
                txn.phase = Phase::Ready;
                txn.partitions.clear();
                Producer::discard_pending(&mut state, &dropped);
                Ok(())
            }
            Phase::TimedOut => self.abort_timed_out(&mut state, &dropped),
            Phase::Ready => Ok(()),
            Phase::Uninitialized | Phase::Fenced => Err(txn.phase_error(current)),
        }
    }

    /// After the coordinator aborted the transaction at its timeout: a new epoch from the
    /// coordinator (it accepts the timed-out one, KIP-360), sequences from zero.
    fn abort_timed_out(&self, state: &mut State, dropped: &Arc<Error>) -> Result<()> {
        let current = state.producer_id.unwrap_or((-1, -1));
        let txn = state.txn.as_mut().ok_or_else(not_transactional)?;
        let ids = txn
            .coordinator
            .init_producer(&txn.id, txn.timeout_ms, Some(current), true)
            .map_err(|e| txn.fail(e, current))?;
        txn.phase = Phase::Ready;
        txn.partitions.clear();
        state.producer_id = Some(ids);
        state.reset_sequences();
        Producer::discard_pending(state, dropped);
        Ok(())
    }

    /// On drop: aborts an open transaction. Returns whether the producer is transactional
    /// (its buffered records then belong to no transaction and are not sent).
    pub(super) fn drop_transaction(&self) -> bool {
        let open = match &self.state.lock().txn {
            None => return false,
            Some(txn) => txn.open(),
        };
        if open && let Err(e) = self.abort_transaction() {
            tracing::error!(
                "producer dropped with an open transaction that could not be aborted: {e}"
            );
        }
        // Records buffered for a transaction that ended without them (timed out, fenced).
        let mut state = self.state.lock();
        if let Some(txn) = &state.txn {
            let dropped =
                Arc::new(txn.invalid("the producer was dropped before this record was sent"));
            Producer::discard_pending(&mut state, &dropped);
        }
        true
    }
}
