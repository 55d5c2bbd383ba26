//! The broker: the log behind the Apache Kafka wire protocol, so existing Kafka clients and
//! tools (librdkafka, kcat, the Java and Python clients) work against Sluice unchanged.
//!
//! - `server.rs`: the listener, the connection cap, graceful shutdown.
//! - `connection.rs`: one task per connection: frames in, responses out in request order.
//! - `frame.rs`: length-prefixed framing with a size limit checked before allocating.
//! - `dispatch.rs`: the API versions this broker implements and the request router.
//! - one module per API (or family of APIs): `api_versions.rs`, `metadata.rs`,
//!   `produce.rs`, `fetch.rs`, `list_offsets.rs`, `admin.rs`, `configs.rs`,
//!   `coordinator.rs`.
//! - `prometheus.rs`: the broker's metrics and the `GET /metrics` endpoint.
//! - `txn/`: the transaction coordinator (InitProducerId with a transactional id,
//!   AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn) on `__transaction_state`.
//! - `group/`: the consumer-group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//!   ListGroups, DescribeGroups, DeleteGroups) and each group's state machine.
//!
//! Every message goes through the `kafka-protocol` crate; none is hand-written.
//!
//! A process that serves untrusted clients must install
//! [`ReserveLargeAllocator`](crate::alloc::ReserveLargeAllocator) as its global allocator
//! (the `sluice` binary does): `kafka-protocol` 0.18 reserves array capacity from counts
//! read off the wire, and with the system allocator an impossible count aborts.

mod admin;
mod api_versions;
mod config;
mod configs;
mod connection;
mod coordinator;
mod dispatch;
mod errors;
mod fetch;
mod frame;
mod group;
mod list_offsets;
mod metadata;
mod produce;
mod prometheus;
mod server;
mod thread;
mod txn;

pub use config::BrokerConfig;
pub use dispatch::{decode_request, supported_apis};
pub use server::Broker;
pub use thread::BrokerThread;
pub use txn::TRANSACTION_STATE_TOPIC;
