//! The one place that decides what a Kafka error means: retriable (the broker or network;
//! counts against the broker breaker), permanent (the record itself; dead-lettered) or fatal
//! (the producer instance must be rebuilt).

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// How a Kafka error affects the event and the producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The broker or network failed; the same event may succeed later. Counts against the
    /// broker circuit breaker.
    Retriable,
    /// The record itself was refused (too large, not authorized, invalid); retrying will not
    /// help. Goes to the dead-letter topic.
    Permanent,
    /// The producer instance is unusable (e.g. idempotence state lost); it must be rebuilt.
    Fatal,
}

/// Classifies an rdkafka error code. Every retry/DLQ/rebuild decision uses this.
pub fn classify(code: RDKafkaErrorCode) -> ErrorClass {
    use RDKafkaErrorCode as C;
    match code {
        C::Fatal
        | C::UnknownProducerId
        | C::OutOfOrderSequenceNumber
        | C::InvalidProducerEpoch
        | C::ProducerFenced => ErrorClass::Fatal,
        C::MessageTimedOut
        | C::QueueFull
        | C::AllBrokersDown
        | C::BrokerTransportFailure
        | C::Resolve
        | C::OperationTimedOut
        | C::TimedOutQueue
        | C::PurgeQueue
        | C::PurgeInflight
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::RequestTimedOut
        | C::NetworkException
        | C::UnknownTopicOrPartition
        | C::BrokerNotAvailable
        | C::CoordinatorLoadInProgress
        | C::KafkaStorageError
        | C::UnknownLeaderEpoch
        | C::FencedLeaderEpoch
        | C::ThrottlingQuotaExceeded => ErrorClass::Retriable,
        _ => ErrorClass::Permanent,
    }
}

/// The code of a Kafka error (`Fail` when it carries none).
pub fn error_code(e: &KafkaError) -> RDKafkaErrorCode {
    e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail)
}
