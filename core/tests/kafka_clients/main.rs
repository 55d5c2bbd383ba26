//! Black-box tests of the broker with a real Kafka client: librdkafka (through the `rdkafka`
//! crate) produces, consumes, commits and administers topics over loopback against a
//! `Broker` serving a `Log` in a temporary directory. They pin what a Kafka user sees: the
//! client's own partitioner, codecs, acks, idempotence, long polls, offset look-ups and
//! committed offsets all behave as they would against Apache Kafka.
//!
//! `harness` starts and stops brokers and builds client configs; one module per area.
//! Consumers use `assign` (no group membership), so these tests need no JoinGroup.
//!
//! To see the wire: `RUST_LOG=debug SLUICE_RDKAFKA_DEBUG=protocol,broker cargo test -p
//! sluice-core --test kafka_clients -- --nocapture`.

// Tests fail loudly on the first unexpected error.
#![allow(clippy::unwrap_used)]

mod harness;

mod admin;
mod fetch;
mod metadata;
mod offsets;
mod produce_consume;
