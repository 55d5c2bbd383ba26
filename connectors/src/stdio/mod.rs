//! The `stdin` source and the `stdout` sink, for shell pipelines
//! (`zcat orders.csv.gz | sluice connect run p.toml`). The user reference is
//! `docs/connectors/stdio.md`.
//!
//! Both take any async reader or writer ([`StdinSource::with_input`],
//! [`StdoutSink::with_output`]) so they can be tested without the process's own streams.

mod sink;
mod source;

pub use sink::StdoutSink;
pub use source::StdinSource;
