//! `sluice-streams`: write streaming jobs the way Kafka Streams users do, in Rust, and run
//! them on Sluice's embedded log or against any Kafka-compatible cluster.
//!
//! # Layout
//!
//! - [`dsl`]: [`StreamsBuilder`], [`KStream`], [`KTable`], grouping, windowing and the
//!   option types ([`Consumed`], [`Produced`], [`Grouped`], [`Materialized`]).
//! - [`serdes`]: serdes as types — [`Str`], [`Raw`], [`I64`], [`Json`], [`Rkyv`], …
//! - [`window`]: tumbling, hopping, sliding and session windows, [`EmitStrategy`].
//! - `topology`: the recorded graph, split into sub-topologies and instantiated per task.
//! - `processor`: the operators as they run inside a task.
//! - `state`: key-value, window and session stores on memory or fjall, with change
//!   logging, write caching and restore.
//! - `task`: one sub-topology over one partition: input buffering, stream time.
//! - [`runtime`]: [`StreamsConfig`] and the running [`KafkaStreams`] instance.
//! - [`test_driver`]: [`TopologyTestDriver`], a synchronous driver for tests.
//!
//! # Example
//!
//! ```
//! use sluice_streams::prelude::*;
//!
//! // Running word counts: lines in, (word, count) out.
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream("text-input", Consumed::with(Unit, Str))
//!     .flat_map_values(|line: String| {
//!         line.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>()
//!     })
//!     .group_by(|_, word| word.clone(), Grouped::with(Str, Str))
//!     .count()
//!     .to_stream()
//!     .to("word-counts", Produced::with(Str, I64));
//!
//! let mut driver = TopologyTestDriver::new(builder.build()?)?;
//! let lines = TestInputTopic::new("text-input", Unit, Str);
//! let counts = TestOutputTopic::new("word-counts", Str, I64);
//! lines.pipe(&mut driver, (), "the cat and the hat".into(), 0)?;
//! let out = counts.read_key_values(&mut driver)?;
//! assert_eq!(out.last(), Some(&("hat".to_string(), 1)));
//! assert!(out.contains(&("the".to_string(), 2)));
//! # Ok::<(), sluice_streams::StreamsError>(())
//! ```

#![deny(clippy::unwrap_used)]

pub mod dsl;
mod error;
mod processor;
mod record;
pub mod runtime;
pub mod serdes;
mod state;
mod task;
pub mod test_driver;
mod topology;
pub mod window;

pub use dsl::{
    BranchedKStream, Consumed, Grouped, KGroupedStream, KGroupedTable, KStream, KTable,
    Materialized, Produced, Repartitioned, SessionWindowedKStream, SlidingWindowedKStream,
    StreamsBuilder, TimeWindowedKStream, WindowedBy,
};
pub use error::{Result, StreamsError};
pub use processor::Data;
pub use processor::ctx::TaskStats;
pub use processor::source::DeserializationHandler;
pub use processor::table::Change;
pub use record::{Header, InputRecord, OutputRecord, Record};
pub use runtime::{Connection, KafkaStreams, ProcessingGuarantee, StreamsConfig};
pub use serdes::{F64, I64, Json, Nullable, Raw, Rkyv, Serde, SerdeError, Str, U64, Unit};
pub use state::{StoreEngine, StoreKind};
pub use test_driver::{TestInputTopic, TestOutputTopic, TestRecord, TopologyTestDriver};
pub use topology::{TaskId, Topology};
pub use window::{
    EmitStrategy, SessionWindows, SlidingWindows, TimeWindows, Window, Windowed, WindowedSerde,
};

/// Everything a job needs, in one import.
pub mod prelude {
    pub use crate::{
        Consumed, DeserializationHandler, EmitStrategy, F64, Grouped, I64, Json, KStream, KTable,
        KafkaStreams, Materialized, Nullable, ProcessingGuarantee, Produced, Raw, Repartitioned,
        Rkyv, Serde, SessionWindows, SlidingWindows, Str, StreamsBuilder, StreamsConfig,
        TestInputTopic, TestOutputTopic, TimeWindows, TopologyTestDriver, U64, Unit, Window,
        Windowed, WindowedSerde,
    };
}
