//! One `source` or `sink` section split into the runtime's keys, its transforms and the
//! connector's keys, each a [`Settings`] that can place its problems on the file's lines.

use std::sync::Arc;

use super::env;
use super::raw::RawSection;
use super::settings::{Settings, SourceText, Syntax};

/// Splits one `[[source]]` / `[[sink]]` table into the runtime's keys, its transforms and
/// the connector's keys; problems are collected, `None` if the runtime's keys are unusable.
pub(super) fn section<C: serde::de::DeserializeOwned>(
    raw: RawSection,
    what: &str,
    index: usize,
    common_keys: &[&str],
    text: &Arc<SourceText>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<(C, Vec<Settings>, Settings)> {
    let RawSection {
        table,
        span,
        transform_spans,
        problems: read_problems,
    } = raw;
    let mut value = toml::Value::Table(table);
    let before = problems.len();
    env::substitute_value(&mut value, env, problems);
    let full = value.as_table().cloned().unwrap_or_default();
    let name = full
        .get("name")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("{what} #{}", index + 1));
    let kind = full
        .get("type")
        .and_then(|v| v.as_str())
        .unwrap_or(what)
        .to_string();
    let role: &'static str = if what == "source" { "source" } else { "sink" };
    let whole = Settings::new(
        role,
        name.clone(),
        what.into(),
        full.clone(),
        text.clone(),
        span.clone(),
    );
    for problem in problems.iter_mut().skip(before) {
        *problem = whole.problem(None, &*problem);
    }
    for (line, message) in read_problems {
        problems.push(whole.problem_at(line, message));
    }
    let syntax = text.syntax;

    let common_table: toml::Table = full
        .iter()
        .filter(|(k, _)| common_keys.contains(&k.as_str()) && *k != "transform")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let common = match Settings::new(
        role,
        name.clone(),
        what.into(),
        common_table,
        text.clone(),
        span.clone(),
    )
    .parse::<C>()
    {
        Ok(c) => Some(c),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };

    let mut transforms = Vec::new();
    match full.get("transform") {
        None => {}
        Some(toml::Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let Some(t) = item.as_table() else {
                    let example = match syntax {
                        Syntax::Toml => format!("a [[{what}.transform]] table"),
                        Syntax::Yaml => "a mapping: `- type: cast`".into(),
                    };
                    problems.push(
                        whole.problem(Some("transform"), format!("each transform is {example}")),
                    );
                    continue;
                };
                let kind = match t.get("type").and_then(|v| v.as_str()) {
                    Some(kind) => kind.to_string(),
                    None => {
                        problems.push(
                            whole.problem(None, format!("transform #{} has no `type`", i + 1)),
                        );
                        continue;
                    }
                };
                let mut own = t.clone();
                own.remove("type");
                // A transform's own span where the syntax gives it (YAML); else (TOML) the
                // section's, inside which its lines are found by key.
                let transform_span = transform_spans.get(i).unwrap_or(&span).clone();
                transforms.push(Settings::new(
                    "transform",
                    format!("{name} #{}", i + 1),
                    kind,
                    own,
                    text.clone(),
                    transform_span,
                ));
            }
        }
        Some(_) => {
            let example = match syntax {
                Syntax::Toml => format!("[[{what}.transform]] tables"),
                Syntax::Yaml => "a list: `transform:`, then `- type: ...` lines".into(),
            };
            problems
                .push(whole.problem(Some("transform"), format!("write transforms as {example}")));
        }
    }

    let own: toml::Table = full
        .into_iter()
        .filter(|(k, _)| !common_keys.contains(&k.as_str()))
        .collect();
    let settings = Settings::new(role, name, kind, own, text.clone(), span);
    common.map(|c| (c, transforms, settings))
}
