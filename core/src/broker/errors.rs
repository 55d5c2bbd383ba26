//! Mapping the log's errors onto Kafka error codes.

use kafka_protocol::ResponseError;

use crate::error::Error;

/// The Kafka error code a client should see for `error`.
pub(crate) fn code(error: &Error) -> i16 {
    let e = match error {
        Error::UnknownTopic { .. } | Error::UnknownPartition { .. } => {
            ResponseError::UnknownTopicOrPartition
        }
        Error::InvalidBatch { source, .. } => match source {
            crate::record::BatchError::TooLarge { .. } => ResponseError::MessageTooLarge,
            crate::record::BatchError::CrcMismatch { .. } => ResponseError::CorruptMessage,
            _ => ResponseError::InvalidRecord,
        },
        Error::CorruptRead { .. } | Error::Corrupt { .. } => ResponseError::CorruptMessage,
        Error::TopicExists { .. } => ResponseError::TopicAlreadyExists,
        Error::InvalidTopicName { .. } => ResponseError::InvalidTopicException,
        Error::PartitionCountNotIncreased { .. } => ResponseError::InvalidPartitions,
        Error::InvalidConfig { .. } => ResponseError::InvalidConfig,
        Error::InvalidArgument(_) => ResponseError::InvalidRequest,
        Error::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        Error::Poisoned { .. } | Error::Io { .. } => ResponseError::KafkaStorageError,
        Error::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        Error::ProducerFenced { .. } => ResponseError::InvalidProducerEpoch,
        _ => ResponseError::UnknownServerError,
    };
    e.code()
}
