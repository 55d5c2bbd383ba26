//! `${NAME}` substitution in a pipeline file's string values, for secrets and per-machine
//! settings: `url = "postgres://app:${PG_PASSWORD}@db/app"`.
//!
//! `${NAME:-default}` uses `default` when `NAME` is unset or empty; `$${` writes a literal
//! `${`. Substitution happens after parsing, inside strings only, so a value with quotes or
//! newlines cannot change the file's structure.

/// Substitutes in `text`, looking names up with `lookup`; an unset name without a default
/// is an error naming it.
pub fn substitute(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    if !text.contains("${") {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if at > 0 && rest[..at].ends_with('$') {
            // `$${` is an escaped `${`.
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let body = &rest[at + 2..];
        let end = body
            .find('}')
            .ok_or_else(|| format!("`${{` without a closing `}}` in \"{text}\""))?;
        let expr = &body[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (expr, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`${{{expr}}}`: a variable name is letters, digits and `_`"
            ));
        }
        match (lookup(name).filter(|v| !v.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (write `${{{name}:-default}}` for a default)"
                ));
            }
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Substitutes in every string of a TOML value, reporting each failure.
pub fn substitute_value(
    value: &mut toml::Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) {
    match value {
        toml::Value::String(s) => match substitute(s, lookup) {
            Ok(new) => *s = new,
            Err(e) => problems.push(e),
        },
        toml::Value::Array(items) => {
            for item in items {
                substitute_value(item, lookup, problems);
            }
        }
        toml::Value::Table(table) => {
            for (_, item) in table.iter_mut() {
                substitute_value(item, lookup, problems);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PASS" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_defaults_and_escapes() {
        assert_eq!(
            substitute("pg://u:${PASS}@h", &env).unwrap(),
            "pg://u:s3cret@h"
        );
        assert_eq!(substitute("${NOPE:-5432}", &env).unwrap(), "5432");
        assert_eq!(substitute("${EMPTY:-x}", &env).unwrap(), "x");
        assert_eq!(substitute("$${PASS}", &env).unwrap(), "${PASS}");
        assert_eq!(substitute("plain", &env).unwrap(), "plain");
    }

    #[test]
    fn unset_variables_are_named() {
        let err = substitute("${PG_PASSWORD}", &env).unwrap_err();
        assert!(err.contains("PG_PASSWORD is not set"), "{err}");
        assert!(substitute("${A", &env).unwrap_err().contains("closing"));
        assert!(substitute("${a b}", &env).is_err());
    }
}
