//! Transforms: per-batch changes to rows between a connector and the topic, declared in
//! the pipeline file as `[[source.transform]]` / `[[sink.transform]]` tables, applied in
//! order.
//!
//! | type | keys | does |
//! |---|---|---|
//! | `rename` | `fields = { old = "new" }` | renames columns |
//! | `drop` | `fields = ["a", "b"]` | removes columns |
//! | `select` | `fields = ["a", "b"]` | keeps only these columns, in this order |
//! | `insert` | `fields = { region = "eu", version = 2 }`, `now = "loaded_at"` | adds constant columns, and the processing time |
//! | `cast` | `fields = { amount = "DECIMAL(12,2)" }` | converts column types; a value that does not convert is a bad record |
//! | `filter` | `condition = "amount > 100 and status = 'paid'"` | keeps rows where the condition holds |
//! | `route` | `topic = "orders.{region}"` | sends each row to the topic its fields name (sources only; last) |
//! | `mask` | `fields = ["card"]`, `with = "****"`, `keep_last = 4` | hides values of string columns |
//! | `flatten` | `separator = "_"` | turns struct columns into top-level columns `parent_child` |
//! | `timestamp` | `field`, `from`, `to`, `format` | converts between epoch numbers, strings and TIMESTAMP |
//! | `sql` | `query = "SELECT ... FROM input"` | a DataFusion query over each batch (the `sql` feature) |
//!
//! A transform that cannot handle some rows names them ([`Rejected`]); the chain sets those
//! rows aside as bad records (the pipeline's `on_error` decides) and runs the rest on.

mod fields;
mod filter;
#[cfg(feature = "sql")]
mod sql;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::SchemaRef;

use crate::config::Settings;
use crate::error::{Error, Result};

/// The transform types.
pub const TRANSFORM_KINDS: &[&str] = &[
    "rename",
    "drop",
    "select",
    "insert",
    "cast",
    "filter",
    "route",
    "mask",
    "flatten",
    "timestamp",
    "sql",
];

/// Why a transform failed.
#[derive(Debug)]
pub enum Rejected {
    /// These rows (by index in the transform's input) cannot be transformed; each with why.
    Rows(Vec<(usize, String)>),
    /// The whole batch failed.
    Batch(Error),
}

impl From<Error> for Rejected {
    fn from(e: Error) -> Self {
        Rejected::Batch(e)
    }
}

impl From<arrow::error::ArrowError> for Rejected {
    fn from(e: arrow::error::ArrowError) -> Self {
        Rejected::Batch(e.into())
    }
}

/// What a step made of a batch.
#[derive(Debug)]
pub struct Applied {
    /// The rows out.
    pub rows: RecordBatch,
    /// For a step that drops rows (a filter): which input rows were kept.
    pub kept: Option<BooleanArray>,
}

impl From<RecordBatch> for Applied {
    fn from(rows: RecordBatch) -> Self {
        Applied { rows, kept: None }
    }
}

/// One step of a chain.
pub trait Transform: Send + Sync {
    /// The output schema for an input schema (a check before any data moves).
    fn schema(&self, input: &SchemaRef) -> Result<SchemaRef>;
    /// Transforms a batch.
    fn apply(&self, rows: RecordBatch) -> Result<Applied, Rejected>;
}

/// Builds a transform from its table (`type` already taken out as `settings.kind`).
pub fn build(settings: &Settings) -> Result<Box<dyn Transform>> {
    match settings.kind.as_str() {
        "rename" => fields::rename(settings),
        "drop" => fields::drop(settings),
        "select" => fields::select(settings),
        "insert" => fields::insert(settings),
        "cast" => fields::cast(settings),
        "mask" => fields::mask(settings),
        "flatten" => fields::flatten(settings),
        "timestamp" => fields::timestamp(settings),
        "filter" => filter::build(settings),
        #[cfg(feature = "sql")]
        "sql" => sql::build(settings),
        "route" => Err(settings.error(None, "route is handled by the chain")),
        other => Err(settings.error(
            None,
            format!(
                "unknown transform type `{other}`: use one of {}",
                TRANSFORM_KINDS.join(", ")
            ),
        )),
    }
}

/// A topic name template: `orders.{region}` takes each row's `region`.
#[derive(Debug, Clone)]
pub struct TopicTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Field(String),
}

impl TopicTemplate {
    /// Parses `text`, where `{name}` stands for a field (or, in a source's `topic`, the
    /// batch's `{stream}`).
    pub fn parse(text: &str) -> Result<TopicTemplate> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| Error::config(format!("topic `{text}`: `{{` without `}}`")))?;
            parts.push(Part::Field(rest[open + 1..open + close].to_string()));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(TopicTemplate { parts })
    }

    /// The fields named.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(f) => Some(f.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Renders with `lookup` giving each field's text.
    pub fn render(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(f) => out.push_str(&lookup(f).ok_or_else(|| {
                    Error::config(format!("topic template: no value for `{{{f}}}`"))
                })?),
            }
        }
        Ok(out)
    }
}

/// A source's or sink's transforms, and a source's route.
pub struct Chain {
    steps: Vec<Box<dyn Transform>>,
    route: Option<TopicTemplate>,
}

/// Rows per destination topic (`None`: the connector's own).
pub type Routed = Vec<(Option<String>, RecordBatch)>;

/// What a chain made of a batch.
#[derive(Debug)]
pub struct Output {
    /// Rows per destination (`None`: the connector's own topic), in input order within each.
    pub routed: Routed,
    /// Rows set aside: index in the chain's input, and why.
    pub rejected: Vec<(usize, String)>,
    /// For each output row of `routed` (concatenated), its index in the input.
    pub origin: Vec<u32>,
}

impl Chain {
    /// Builds the chain of a section's transforms; `source` allows `route`.
    pub fn build(transforms: &[Settings], source: bool) -> Result<Chain> {
        Chain::build_with(transforms, source, &crate::registry::Extensions::default())
    }

    /// [`build`](Chain::build), with transform types added by `extensions`.
    pub fn build_with(
        transforms: &[Settings],
        source: bool,
        extensions: &crate::registry::Extensions,
    ) -> Result<Chain> {
        let mut steps = Vec::new();
        let mut route = None;
        let mut problems = Vec::new();
        for (i, settings) in transforms.iter().enumerate() {
            if settings.kind == "route" {
                if !source {
                    problems.push(settings.problem(
                        None,
                        "route works on sources (it picks the topic a row is written to)",
                    ));
                } else if i + 1 != transforms.len() {
                    problems.push(settings.problem(None, "route must be the last transform"));
                } else {
                    #[derive(serde::Deserialize)]
                    #[serde(deny_unknown_fields)]
                    struct Route {
                        topic: String,
                    }
                    match settings
                        .parse::<Route>()
                        .and_then(|r| TopicTemplate::parse(&r.topic))
                    {
                        Ok(t) => route = Some(t),
                        Err(e) => problems.push(e.to_string()),
                    }
                }
                continue;
            }
            let step = match extensions.transform_factory(&settings.kind) {
                Some(factory) => factory(settings),
                None => build(settings),
            };
            match step {
                Ok(step) => steps.push(step),
                Err(e) => problems.push(e.to_string()),
            }
        }
        if !problems.is_empty() {
            return Err(Error::config(problems.join("\n")));
        }
        Ok(Chain { steps, route })
    }

    /// An empty chain.
    pub fn none() -> Chain {
        Chain {
            steps: Vec::new(),
            route: None,
        }
    }

    /// The output schema for an input schema.
    pub fn schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let mut schema = input.clone();
        for step in &self.steps {
            schema = step.schema(&schema)?;
        }
        if let Some(route) = &self.route {
            for field in route.fields() {
                if schema.index_of(field).is_err() {
                    return Err(Error::config(format!(
                        "route: the rows have no field `{field}` (they have {})",
                        crate::schema::format_schema(&schema)
                    )));
                }
            }
        }
        Ok(schema)
    }

    /// Runs the chain.
    pub fn apply(&self, rows: RecordBatch) -> Result<Output> {
        let mut origin: Vec<u32> = (0..rows.num_rows() as u32).collect();
        let mut rejected = Vec::new();
        let mut rows = rows;
        for step in &self.steps {
            // A step that rejects rows runs again without them (bounded: each retry removes
            // at least one row).
            loop {
                match step.apply(rows.clone()) {
                    Ok(Applied { rows: out, kept }) => {
                        if let Some(kept) = kept {
                            origin = origin
                                .iter()
                                .enumerate()
                                .filter(|(i, _)| kept.is_valid(*i) && kept.value(*i))
                                .map(|(_, &o)| o)
                                .collect();
                        }
                        rows = out;
                        break;
                    }
                    Err(Rejected::Batch(e)) => return Err(e),
                    Err(Rejected::Rows(bad)) => {
                        if bad.is_empty() {
                            return Err(Error::config("a transform rejected no rows but failed"));
                        }
                        let bad_set: std::collections::HashSet<usize> =
                            bad.iter().map(|(i, _)| *i).collect();
                        for (i, why) in bad {
                            if let Some(&o) = origin.get(i) {
                                rejected.push((o as usize, why));
                            }
                        }
                        let keep: Vec<u32> = (0..rows.num_rows() as u32)
                            .filter(|i| !bad_set.contains(&(*i as usize)))
                            .collect();
                        origin = keep
                            .iter()
                            .filter_map(|&i| origin.get(i as usize).copied())
                            .collect();
                        rows = take_record_batch(&rows, &UInt32Array::from(keep))?;
                    }
                }
            }
        }
        let routed = match &self.route {
            None => vec![(None, rows)],
            Some(route) => {
                let (groups, order) = route_rows(route, &rows)?;
                origin = order
                    .iter()
                    .map(|&i| origin.get(i as usize).copied().unwrap_or(0))
                    .collect();
                groups
            }
        };
        Ok(Output {
            routed,
            rejected,
            origin,
        })
    }
}

/// Splits rows by rendered topic; returns the groups and the input index of each output row.
fn route_rows(route: &TopicTemplate, rows: &RecordBatch) -> Result<(Routed, Vec<u32>)> {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let columns: Vec<(String, ArrayRef)> = route
        .fields()
        .map(|f| {
            rows.column_by_name(f)
                .cloned()
                .map(|c| (f.to_string(), c))
                .ok_or_else(|| Error::config(format!("route: no field `{f}`")))
        })
        .collect::<Result<_>>()?;
    let options = FormatOptions::default();
    let formatters = columns
        .iter()
        .map(|(name, c)| {
            Ok((
                name.as_str(),
                c.clone(),
                ArrayFormatter::try_new(c.as_ref(), &options)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
    for row in 0..rows.num_rows() {
        let topic = route.render(&|field| {
            formatters
                .iter()
                .find(|(n, ..)| *n == field)
                .and_then(|(_, c, f)| c.is_valid(row).then(|| f.value(row).to_string()))
        })?;
        match groups.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, idx)) => idx.push(row as u32),
            None => groups.push((topic, vec![row as u32])),
        }
    }
    let mut order = Vec::with_capacity(rows.num_rows());
    let mut out = Vec::with_capacity(groups.len());
    for (topic, idx) in groups {
        order.extend_from_slice(&idx);
        out.push((
            Some(topic),
            take_record_batch(rows, &UInt32Array::from(idx))?,
        ));
    }
    Ok((out, order))
}

pub(crate) fn arc_schema(fields: Vec<arrow::datatypes::FieldRef>) -> SchemaRef {
    Arc::new(arrow::datatypes::Schema::new(fields))
}

#[cfg(test)]
mod tests;
