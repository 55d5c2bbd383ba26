//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs.
//!
//! Two kinds of resource have settings here:
//! - a topic (type 2): the Kafka-named overrides kept in its `topic.json`, on top of the
//!   log defaults. Alters are validated as a whole with [`TopicConfig::resolve`] before
//!   anything is written, so a resource's changes apply completely or not at all.
//! - this broker (type 4): the log defaults from `sluice.toml`'s `[log]`, under Kafka's
//!   broker-level names. They are read-only at runtime: changing them means editing the
//!   file and restarting, so alters of a broker resource are refused.
//!
//! Every topic setting is described with its effective value: the override if the topic
//! has one (source DYNAMIC_TOPIC_CONFIG), the log default otherwise (DEFAULT_CONFIG).

mod settings;

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, RequestHeader,
    alter_configs_request, alter_configs_response, incremental_alter_configs_request,
    incremental_alter_configs_response,
};
use kafka_protocol::protocol::StrBytes;

use self::settings::{FLUSH_KEYS, SETTINGS, TYPE_INT, TYPE_LIST, TYPE_LONG, values};
use super::errors::code;
use super::server::Context;
use crate::config::{TOPIC_CONFIG_KEYS, TopicConfig};
use crate::error::{Error, Result};

/// `ConfigResource.Type` codes.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// `ConfigSource` codes (DescribeConfigs v1+).
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// A described setting, before encoding.
struct Described {
    name: String,
    value: String,
    source: i8,
    read_only: bool,
    kind: i8,
    doc: &'static str,
    /// (name, value, source), most specific first.
    synonyms: Vec<(String, String, i8)>,
}

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// The effective values of a topic without overrides: the log defaults.
fn default_values(ctx: &Context) -> Result<BTreeMap<String, String>> {
    Ok(values(&TopicConfig::resolve(
        ctx.log.config(),
        &BTreeMap::new(),
    )?))
}

fn wanted(keys: &Option<Vec<StrBytes>>, name: &str) -> bool {
    keys.as_ref()
        .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
}

fn describe_topic(ctx: &Context, resource: &DescribeConfigsResource) -> Result<Vec<Described>> {
    let topic = ctx.log.topic(resource.resource_name.as_str())?;
    let defaults = default_values(ctx)?;
    let effective = values(&topic.config);
    let overrides = &topic.meta.config;
    let durability_overridden = FLUSH_KEYS.iter().any(|k| overrides.contains_key(*k));
    let described = SETTINGS
        .iter()
        .filter(|s| wanted(&resource.configuration_keys, s.topic))
        .filter_map(|s| {
            let overridden = if s.writable {
                overrides.get(s.topic).cloned()
            } else if durability_overridden {
                effective.get(s.topic).cloned()
            } else {
                None
            };
            let default = defaults.get(s.topic).cloned();
            let mut synonyms = Vec::new();
            if let Some(v) = &overridden {
                synonyms.push((s.topic.to_string(), v.clone(), SOURCE_DYNAMIC_TOPIC));
            }
            if let Some(v) = &default {
                synonyms.push((s.broker.to_string(), v.clone(), SOURCE_DEFAULT));
            }
            let (value, source) = match overridden {
                Some(v) => (v, SOURCE_DYNAMIC_TOPIC),
                None => (effective.get(s.topic).cloned()?, SOURCE_DEFAULT),
            };
            Some(Described {
                name: s.topic.to_string(),
                value,
                source,
                read_only: !s.writable,
                kind: s.kind,
                doc: s.doc,
                synonyms,
            })
        })
        .collect();
    Ok(described)
}

/// The broker's settings: the log defaults under Kafka's broker-level names. A resource
/// name of "" asks for the cluster-wide dynamic defaults, of which Sluice has none.
fn describe_broker(ctx: &Context, resource: &DescribeConfigsResource) -> Result<Vec<Described>> {
    let name = resource.resource_name.as_str();
    if name.is_empty() {
        return Ok(Vec::new());
    }
    check_broker_name(ctx, name)?;
    let defaults = default_values(ctx)?;
    let log = ctx.log.config();
    let extra = [
        (
            "num.partitions",
            log.default_partitions.to_string(),
            TYPE_INT,
            "Partitions of topics created without a count.",
        ),
        (
            "log.retention.check.interval.ms",
            log.cleaner_interval_ms.to_string(),
            TYPE_LONG,
            "How often retention and compaction run.",
        ),
    ];
    let settings = SETTINGS.iter().filter_map(|s| {
        let value = defaults.get(s.topic)?.clone();
        Some((s.broker, value, s.kind, s.doc))
    });
    Ok(settings
        .chain(extra)
        .filter(|(name, ..)| wanted(&resource.configuration_keys, name))
        .map(|(name, value, kind, doc)| Described {
            name: name.to_string(),
            synonyms: vec![(name.to_string(), value.clone(), SOURCE_DEFAULT)],
            value,
            source: SOURCE_DEFAULT,
            read_only: true,
            kind,
            doc,
        })
        .collect())
}

fn check_broker_name(ctx: &Context, name: &str) -> Result<()> {
    if name.parse::<i32>().ok() == Some(ctx.config.node_id) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "broker '{name}' is not this broker: its node id is {}",
            ctx.config.node_id
        )))
    }
}

fn unsupported_resource(resource_type: i8) -> Error {
    Error::InvalidArgument(format!(
        "resource type {resource_type} has no settings on this broker: use 2 (topic) or 4 (broker)"
    ))
}

fn encode_described(
    d: Described,
    synonyms: bool,
    docs: bool,
    version: i16,
) -> DescribeConfigsResourceResult {
    let mut result = DescribeConfigsResourceResult::default()
        .with_name(text(d.name))
        .with_value(Some(text(d.value)))
        .with_read_only(d.read_only)
        .with_config_source(d.source)
        .with_is_sensitive(false);
    if synonyms {
        result = result.with_synonyms(
            d.synonyms
                .into_iter()
                .map(|(name, value, source)| {
                    DescribeConfigsSynonym::default()
                        .with_name(text(name))
                        .with_value(Some(text(value)))
                        .with_source(source)
                })
                .collect(),
        );
    }
    if version >= 3 {
        result = result
            .with_config_type(d.kind)
            .with_documentation(docs.then(|| text(d.doc)));
    }
    result
}

pub(crate) async fn describe_configs(
    ctx: &Context,
    _header: &RequestHeader,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let docs = version >= 3 && request.include_documentation;
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let described = match resource.resource_type {
                RESOURCE_TOPIC => describe_topic(ctx, resource),
                RESOURCE_BROKER => describe_broker(ctx, resource),
                other => Err(unsupported_resource(other)),
            };
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match described {
                Ok(described) => result.with_configs(
                    described
                        .into_iter()
                        .map(|d| encode_described(d, request.include_synonyms, docs, version))
                        .collect(),
                ),
                Err(e) => result
                    .with_error_code(code(&e))
                    .with_error_message(Some(text(e.to_string()))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn needs_value(key: &str) -> Error {
    Error::InvalidConfig {
        key: key.to_string(),
        value: String::new(),
        reason: "a value is required (delete the override to use the default)".into(),
    }
}

fn duplicate(key: &str) -> Error {
    Error::InvalidArgument(format!(
        "setting {key} appears more than once in the request"
    ))
}

fn check_known(key: &str, value: &str) -> Result<()> {
    if TOPIC_CONFIG_KEYS.contains(&key) {
        Ok(())
    } else {
        Err(Error::InvalidConfig {
            key: key.to_string(),
            value: value.to_string(),
            reason: format!(
                "unknown topic setting; known: {}",
                TOPIC_CONFIG_KEYS.join(", ")
            ),
        })
    }
}

/// Broker settings come from `sluice.toml`; they can't change while the broker runs.
fn broker_read_only(ctx: &Context, name: &str, keys: &[(String, String)]) -> Result<()> {
    if !name.is_empty() {
        check_broker_name(ctx, name)?;
    }
    match keys.first() {
        None => Ok(()),
        Some((key, value)) => Err(Error::InvalidConfig {
            key: key.clone(),
            value: value.clone(),
            reason: "broker settings can't be changed at runtime: set them in [log] of sluice.toml and restart, or override them per topic".into(),
        }),
    }
}

/// AlterConfigs on a topic: `configs` become its whole set of overrides.
fn replace_topic_config(
    ctx: &Context,
    name: &str,
    configs: &[alter_configs_request::AlterableConfig],
    validate_only: bool,
) -> Result<()> {
    let mut overrides = BTreeMap::new();
    for c in configs {
        let key = c.name.as_str();
        let value = c.value.as_ref().ok_or_else(|| needs_value(key))?;
        check_known(key, value)?;
        if overrides
            .insert(key.to_string(), value.to_string())
            .is_some()
        {
            return Err(duplicate(key));
        }
    }
    if validate_only {
        ctx.log.topic(name)?;
        TopicConfig::resolve(ctx.log.config(), &overrides).map(drop)
    } else {
        ctx.log.alter_topic_config(name, overrides)
    }
}

pub(crate) async fn alter_configs(
    ctx: &Context,
    _header: &RequestHeader,
    request: AlterConfigsRequest,
    _version: i16,
) -> AlterConfigsResponse {
    let responses = request
        .resources
        .iter()
        .map(|r| {
            let name = r.resource_name.as_str();
            let outcome = match r.resource_type {
                RESOURCE_TOPIC => {
                    replace_topic_config(ctx, name, &r.configs, request.validate_only)
                }
                RESOURCE_BROKER => {
                    let keys: Vec<(String, String)> = r
                        .configs
                        .iter()
                        .map(|c| (c.name.to_string(), c.value.as_deref().unwrap_or("").into()))
                        .collect();
                    broker_read_only(ctx, name, &keys)
                }
                other => Err(unsupported_resource(other)),
            };
            let response = alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match outcome {
                Ok(()) => response,
                Err(e) => response
                    .with_error_code(code(&e))
                    .with_error_message(Some(text(e.to_string()))),
            }
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Applies IncrementalAlterConfigs operations to `current` overrides. APPEND and SUBTRACT
/// start from the effective value (the override, or the log default in `defaults`).
fn apply_ops(
    current: &BTreeMap<String, String>,
    ops: &[incremental_alter_configs_request::AlterableConfig],
    defaults: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let mut next = current.clone();
    let mut seen = BTreeSet::new();
    for op in ops {
        let key = op.name.as_str();
        let value = op.value.as_deref();
        check_known(key, value.unwrap_or(""))?;
        if !seen.insert(key) {
            return Err(duplicate(key));
        }
        match op.config_operation {
            OP_SET => {
                let value = value.ok_or_else(|| needs_value(key))?;
                next.insert(key.to_string(), value.to_string());
            }
            OP_DELETE => {
                next.remove(key);
            }
            OP_APPEND | OP_SUBTRACT => {
                let value = value.ok_or_else(|| needs_value(key))?;
                if !SETTINGS
                    .iter()
                    .any(|s| s.topic == key && s.kind == TYPE_LIST)
                {
                    return Err(Error::InvalidConfig {
                        key: key.to_string(),
                        value: value.to_string(),
                        reason: "APPEND and SUBTRACT apply only to list settings (cleanup.policy); use SET".into(),
                    });
                }
                let base = next
                    .get(key)
                    .or_else(|| defaults.get(key))
                    .map(|v| split_list(v))
                    .unwrap_or_default();
                let items = split_list(value);
                let list: Vec<String> = if op.config_operation == OP_APPEND {
                    let mut list = base;
                    for item in items {
                        if !list.contains(&item) {
                            list.push(item);
                        }
                    }
                    list
                } else {
                    base.into_iter().filter(|v| !items.contains(v)).collect()
                };
                next.insert(key.to_string(), list.join(","));
            }
            other => {
                return Err(Error::InvalidArgument(format!(
                    "operation {other} on {key} is not one of 0 (SET), 1 (DELETE), 2 (APPEND), 3 (SUBTRACT)"
                )));
            }
        }
    }
    Ok(next)
}

fn edit_topic_config(
    ctx: &Context,
    name: &str,
    ops: &[incremental_alter_configs_request::AlterableConfig],
    validate_only: bool,
) -> Result<()> {
    let defaults = default_values(ctx)?;
    if validate_only {
        let topic = ctx.log.topic(name)?;
        let next = apply_ops(&topic.meta.config, ops, &defaults)?;
        TopicConfig::resolve(ctx.log.config(), &next).map(drop)
    } else {
        ctx.log
            .update_topic_config(name, |current| apply_ops(current, ops, &defaults))
    }
}

pub(crate) async fn incremental_alter_configs(
    ctx: &Context,
    _header: &RequestHeader,
    request: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
    let responses = request
        .resources
        .iter()
        .map(|r| {
            let name = r.resource_name.as_str();
            let outcome = match r.resource_type {
                RESOURCE_TOPIC => edit_topic_config(ctx, name, &r.configs, request.validate_only),
                RESOURCE_BROKER => {
                    let keys: Vec<(String, String)> = r
                        .configs
                        .iter()
                        .map(|c| (c.name.to_string(), c.value.as_deref().unwrap_or("").into()))
                        .collect();
                    broker_read_only(ctx, name, &keys)
                }
                other => Err(unsupported_resource(other)),
            };
            let response =
                incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone());
            match outcome {
                Ok(()) => response,
                Err(e) => response
                    .with_error_code(code(&e))
                    .with_error_message(Some(text(e.to_string()))),
            }
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogConfig;

    fn op(
        name: &str,
        operation: i8,
        value: Option<&str>,
    ) -> incremental_alter_configs_request::AlterableConfig {
        incremental_alter_configs_request::AlterableConfig::default()
            .with_name(text(name))
            .with_config_operation(operation)
            .with_value(value.map(text))
    }

    #[test]
    fn incremental_ops() {
        // Pins SET/DELETE/APPEND/SUBTRACT semantics: lists start from the effective value,
        // APPEND skips items already present, only list settings take APPEND/SUBTRACT.
        let defaults =
            values(&TopicConfig::resolve(&LogConfig::default(), &BTreeMap::new()).unwrap());
        let mut current = BTreeMap::new();
        current.insert("retention.ms".to_string(), "5".to_string());
        let next = apply_ops(
            &current,
            &[
                op("retention.ms", OP_DELETE, None),
                op("cleanup.policy", OP_APPEND, Some("compact,delete")),
                op("segment.bytes", OP_SET, Some("4096")),
            ],
            &defaults,
        )
        .unwrap();
        assert_eq!(next.get("retention.ms"), None);
        assert_eq!(next["cleanup.policy"], "delete,compact");
        assert_eq!(next["segment.bytes"], "4096");
        let next = apply_ops(
            &next,
            &[op("cleanup.policy", OP_SUBTRACT, Some("delete"))],
            &defaults,
        )
        .unwrap();
        assert_eq!(next["cleanup.policy"], "compact");
        let err = apply_ops(
            &next,
            &[op("retention.ms", OP_APPEND, Some("1"))],
            &defaults,
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { ref key, .. } if key == "retention.ms"),
            "{err}"
        );
        let err = apply_ops(&next, &[op("retention.mss", OP_DELETE, None)], &defaults).unwrap_err();
        assert!(err.to_string().contains("retention.mss"), "{err}");
        let err = apply_ops(
            &next,
            &[
                op("retention.ms", OP_SET, Some("1")),
                op("retention.ms", OP_DELETE, None),
            ],
            &defaults,
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        let err = apply_ops(&next, &[op("retention.ms", 9, Some("1"))], &defaults).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
}
