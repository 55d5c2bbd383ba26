//! Consumer groups: durable committed offsets and, for embedded consumers, in-process
//! membership with partition assignment.

mod assignor;
mod coordinator;
mod offsets;

pub use assignor::range_assign;
pub(crate) use coordinator::GroupCoordinator;
pub(crate) use offsets::GroupOffsets;
pub use offsets::{CONSUMER_OFFSETS_TOPIC, CommittedOffset};
