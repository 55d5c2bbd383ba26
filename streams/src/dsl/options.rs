//! The small option types operators take, named as in Kafka Streams: [`Consumed`],
//! [`Produced`], [`Grouped`], [`Materialized`], [`Repartitioned`].

use std::sync::Arc;

use crate::processor::source::{DeserializationHandler, Extractor};
use crate::serdes::Serde;
use crate::state::StoreEngine;

/// How a source reads a topic: its key and value serdes, where event time comes from,
/// and what to do with records the serdes cannot read.
pub struct Consumed<KS: Serde, VS: Serde> {
    pub(crate) key: KS,
    pub(crate) value: VS,
    pub(crate) extractor: Option<Extractor<KS::Target, VS::Target>>,
    pub(crate) on_error: Option<DeserializationHandler>,
}

impl<KS: Serde, VS: Serde> Consumed<KS, VS> {
    /// Reads keys with `key` and values with `value`; event time is the record timestamp.
    pub fn with(key: KS, value: VS) -> Self {
        Consumed {
            key,
            value,
            extractor: None,
            on_error: None,
        }
    }

    /// Takes event time (ms) from the record: `f(key, value, record_timestamp)`, e.g. a
    /// field of the value.
    pub fn timestamp(
        mut self,
        f: impl Fn(&KS::Target, &VS::Target, i64) -> i64 + Send + Sync + 'static,
    ) -> Self {
        self.extractor = Some(Arc::new(f));
        self
    }

    /// What to do with a record this source cannot deserialize (default: the job's
    /// [`StreamsConfig::deserialization_handler`](crate::StreamsConfig)).
    pub fn on_deserialization_error(mut self, handler: DeserializationHandler) -> Self {
        self.on_error = Some(handler);
        self
    }
}

/// How a sink writes a topic: its key and value serdes.
#[derive(Debug, Clone)]
pub struct Produced<KS, VS> {
    pub(crate) key: KS,
    pub(crate) value: VS,
}

impl<KS: Serde, VS: Serde> Produced<KS, VS> {
    /// Writes keys with `key` and values with `value`.
    pub fn with(key: KS, value: VS) -> Self {
        Produced { key, value }
    }
}

/// The serdes of a grouping, used for its repartition topic and its state store; a name
/// makes internal topic names stable when the topology changes.
#[derive(Debug, Clone)]
pub struct Grouped<KS, VS> {
    pub(crate) key: KS,
    pub(crate) value: VS,
    pub(crate) name: Option<String>,
}

impl<KS: Serde, VS: Serde> Grouped<KS, VS> {
    /// Groups with these serdes.
    pub fn with(key: KS, value: VS) -> Self {
        Grouped {
            key,
            value,
            name: None,
        }
    }

    /// Names the repartition topic `<application id>-<name>-repartition`.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// How a stateful operator keeps its state: the store's name, engine and changelog, and
/// (for `aggregate`) the serde of the aggregate.
#[derive(Debug, Clone)]
pub struct Materialized<VS> {
    pub(crate) name: Option<String>,
    pub(crate) engine: StoreEngine,
    pub(crate) logging: bool,
    pub(crate) value: VS,
}

impl Materialized<()> {
    /// A store named `name` (for `count`, `reduce` and tables, whose value serde is known).
    pub fn named(name: impl Into<String>) -> Self {
        Materialized::with(()).name(name)
    }

    /// A store with a generated name.
    pub fn default_store() -> Self {
        Materialized::with(())
    }
}

impl<VS> Materialized<VS> {
    /// A store whose values use `value` (the aggregate's serde, for `aggregate`).
    pub fn with(value: VS) -> Self {
        Materialized {
            name: None,
            engine: StoreEngine::Persistent,
            logging: true,
            value,
        }
    }

    /// Names the store (and its changelog topic `<application id>-<name>-changelog`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Keeps the store in memory (restored from its changelog on every start).
    pub fn in_memory(mut self) -> Self {
        self.engine = StoreEngine::InMemory;
        self
    }

    /// Turns the changelog off: the state is lost when the task moves or the local state
    /// directory is lost.
    pub fn without_logging(mut self) -> Self {
        self.logging = false;
        self
    }
}

/// An explicit repartition: serdes, and optionally a name and a partition count.
#[derive(Debug, Clone)]
pub struct Repartitioned<KS, VS> {
    pub(crate) key: KS,
    pub(crate) value: VS,
    pub(crate) name: Option<String>,
    pub(crate) partitions: Option<i32>,
}

impl<KS: Serde, VS: Serde> Repartitioned<KS, VS> {
    /// Repartitions with these serdes.
    pub fn with(key: KS, value: VS) -> Self {
        Repartitioned {
            key,
            value,
            name: None,
            partitions: None,
        }
    }

    /// Names the topic `<application id>-<name>-repartition`.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The topic's partition count (default: the largest of the upstream input topics).
    pub fn partitions(mut self, n: i32) -> Self {
        self.partitions = Some(n);
        self
    }
}
