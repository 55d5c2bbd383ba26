//! The DSL: [`StreamsBuilder`], [`KStream`], [`KTable`], grouping, windowing and the
//! option types, named after their Kafka Streams counterparts.

mod builder;
mod grouped;
mod kstream;
mod ktable;
mod options;
mod windowed;

pub use builder::StreamsBuilder;
pub use grouped::{KGroupedStream, KGroupedTable};
pub use kstream::{BranchedKStream, KStream};
pub use ktable::KTable;
pub use options::{Consumed, Grouped, Materialized, Produced, Repartitioned};
pub use windowed::{
    SessionWindowedKStream, SlidingWindowedKStream, TimeWindowedKStream, WindowedBy,
};
