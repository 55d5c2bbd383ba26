//! Record value formats (`json`, `csv`, `raw`, `avro`): decoding records into Arrow batches
//! ([`decode`]) and encoding rows into records ([`encode`]), through one value type
//! ([`cell`]) so both directions agree on every type's text form.

pub(crate) mod avro;
pub(crate) mod cell;
pub(crate) mod csv;
pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod json;
