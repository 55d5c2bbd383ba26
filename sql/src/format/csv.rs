//! One CSV line per record value (RFC 4180): fields separated by commas, a field in double
//! quotes may hold commas, quotes (doubled) and line breaks. An empty unquoted field is
//! NULL; `""` is the empty string, so NULL and '' survive a write and a read.

/// One field of a line: its text and whether it was quoted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) text: String,
    pub(crate) quoted: bool,
}

/// Splits one line (a trailing `\n` or `\r\n` is ignored) into fields.
pub(crate) fn parse_line(line: &str) -> Result<Vec<Field>, String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut text = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        text.push('"');
                    }
                    Some('"') => break,
                    Some(c) => text.push(c),
                    None => return Err("unterminated quoted field".into()),
                }
            }
            match chars.next() {
                None => {
                    fields.push(Field { text, quoted });
                    return Ok(fields);
                }
                Some(',') => fields.push(Field { text, quoted }),
                Some(c) => return Err(format!("'{c}' after a closing quote")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(Field { text, quoted });
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => text.push(c),
                }
            }
            fields.push(Field { text, quoted });
        }
    }
}

/// Writes fields as one line (no line break); `None` is NULL (an empty field).
pub(crate) fn write_line(fields: &[Option<String>]) -> String {
    let mut line = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let Some(text) = field else { continue };
        let needs_quotes = text.is_empty()
            || text.contains([',', '"', '\n', '\r'])
            || text.starts_with(' ')
            || text.ends_with(' ');
        if needs_quotes {
            line.push('"');
            line.push_str(&text.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(text);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<(String, bool)> {
        parse_line(line)
            .unwrap()
            .into_iter()
            .map(|f| (f.text, f.quoted))
            .collect()
    }

    // Quoting, doubled quotes, empty vs NULL, and a round trip through write_line.
    #[test]
    fn quoting_round_trips() {
        assert_eq!(
            texts("1,\"a, \"\"b\"\"\",,\"\"\r\n"),
            vec![
                ("1".into(), false),
                ("a, \"b\"".into(), true),
                (String::new(), false),
                (String::new(), true),
            ]
        );
        let fields = vec![
            Some("1".to_string()),
            Some("a, \"b\"".to_string()),
            None,
            Some(String::new()),
        ];
        let line = write_line(&fields);
        assert_eq!(line, "1,\"a, \"\"b\"\"\",,\"\"");
        let back: Vec<Option<String>> = parse_line(&line)
            .unwrap()
            .into_iter()
            .map(|f| (f.quoted || !f.text.is_empty()).then_some(f.text))
            .collect();
        assert_eq!(back, fields);
        assert!(parse_line("\"open").is_err());
        assert!(parse_line("\"a\"b").is_err());
    }
}
