//! `filter`: keeps the rows where a condition holds.
//!
//! The condition is a small expression language over one row's fields:
//! comparisons `field OP literal` (OP is `=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`),
//! `field IS [NOT] NULL`, `field [NOT] IN (lit, ...)`, joined with `and`, `or`, `not` and
//! parentheses. Literals are numbers, `'strings'` (a quote doubled inside) and
//! `true`/`false`; a literal is converted to the field's type. A comparison with a null
//! field is false (so `not` of it is true only for `is null` forms, as in SQL's
//! WHERE-clause filtering of unknowns).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Datum, RecordBatch, Scalar, StringArray};
use arrow::compute::kernels::boolean::{and_kleene, is_not_null, is_null, not, or_kleene};
use arrow::compute::kernels::cmp;
use arrow::compute::{cast, filter_record_batch, prep_null_mask_filter};
use arrow::datatypes::SchemaRef;
use serde::Deserialize;

use super::{Applied, Rejected, Transform};
use crate::config::Settings;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Number(String),
    Text(String),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Compare(String, Op, Literal),
    IsNull(String, bool),
    In(String, Vec<Literal>, bool),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Number(String),
    Text(String),
    Op(String),
    Open,
    Close,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("a string is not closed with `'`".into()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Text(s));
            }
            '=' | '!' | '<' | '>' => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let op = if ["==", "!=", "<>", "<=", ">="].contains(&two.as_str()) {
                    two
                } else {
                    c.to_string()
                };
                if op == "!" {
                    return Err("`!` must be `!=`".into());
                }
                i += op.len();
                tokens.push(Token::Op(op));
            }
            c if c.is_ascii_digit() || c == '-' || c == '.' => {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || chars[i] == '.'
                        || chars[i] == '+'
                        || chars[i] == '-')
                {
                    i += 1;
                }
                tokens.push(Token::Number(chars[start..i].iter().collect()));
            }
            c if c.is_alphanumeric() || c == '_' || c == '"' => {
                if c == '"' {
                    let end = chars[i + 1..]
                        .iter()
                        .position(|&c| c == '"')
                        .ok_or("a \"name\" is not closed")?;
                    tokens.push(Token::Ident(chars[i + 1..i + 1 + end].iter().collect()));
                    i += end + 2;
                } else {
                    let start = i;
                    while i < chars.len()
                        && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
                    {
                        i += 1;
                    }
                    tokens.push(Token::Ident(chars[start..i].iter().collect()));
                }
            }
            other => return Err(format!("unexpected `{other}`")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word))
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_word("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.tokens.get(self.at) == Some(&Token::Open) {
            self.at += 1;
            let e = self.or()?;
            if self.next() != Some(Token::Close) {
                return Err("missing `)`".into());
            }
            return Ok(e);
        }
        let field = match self.next() {
            Some(Token::Ident(f)) => f,
            other => return Err(format!("expected a field name, found {other:?}")),
        };
        if self.peek_word("is") {
            self.at += 1;
            let negated = self.peek_word("not");
            if negated {
                self.at += 1;
            }
            if !self.peek_word("null") {
                return Err(format!(
                    "`{field} is` must be followed by `null` or `not null`"
                ));
            }
            self.at += 1;
            return Ok(Expr::IsNull(field, negated));
        }
        let negated = self.peek_word("not");
        if negated {
            self.at += 1;
        }
        if self.peek_word("in") {
            self.at += 1;
            if self.next() != Some(Token::Open) {
                return Err("`in` takes a list: in (1, 2)".into());
            }
            let mut items = vec![self.literal()?];
            loop {
                match self.next() {
                    Some(Token::Comma) => items.push(self.literal()?),
                    Some(Token::Close) => break,
                    _ => return Err("missing `)` after the `in` list".into()),
                }
            }
            return Ok(Expr::In(field, items, negated));
        }
        if negated {
            return Err("`not` after a field must be `not in`".into());
        }
        let op = match self.next() {
            Some(Token::Op(op)) => match op.as_str() {
                "=" | "==" => Op::Eq,
                "!=" | "<>" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                other => return Err(format!("unknown operator `{other}`")),
            },
            other => {
                return Err(format!(
                    "expected an operator after `{field}`, found {other:?}"
                ));
            }
        };
        Ok(Expr::Compare(field, op, self.literal()?))
    }

    fn literal(&mut self) -> Result<Literal, String> {
        match self.next() {
            Some(Token::Number(n)) => Ok(Literal::Number(n)),
            Some(Token::Text(s)) => Ok(Literal::Text(s)),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            other => Err(format!(
                "expected a literal (number, 'text', true, false), found {other:?}"
            )),
        }
    }
}

fn parse(text: &str) -> Result<Expr, String> {
    let mut parser = Parser {
        tokens: tokenize(text)?,
        at: 0,
    };
    let expr = parser.or()?;
    if parser.at < parser.tokens.len() {
        return Err(format!("unexpected {:?}", parser.tokens[parser.at]));
    }
    Ok(expr)
}

/// The filter transform.
struct Filter {
    expr: Expr,
}

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Transform>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        condition: String,
    }
    let config: Config = settings.parse()?;
    let expr = parse(&config.condition)
        .map_err(|e| settings.error(Some("condition"), format!("filter condition: {e}")))?;
    Ok(Box::new(Filter { expr }))
}

fn column(rows: &RecordBatch, field: &str) -> Result<ArrayRef> {
    rows.column_by_name(field).cloned().ok_or_else(|| {
        Error::config(format!(
            "filter: no field `{field}` (the rows have {})",
            crate::schema::format_schema(&rows.schema())
        ))
    })
}

fn scalar(literal: &Literal, like: &ArrayRef) -> Result<Scalar<ArrayRef>> {
    let text = match literal {
        Literal::Number(n) => n.clone(),
        Literal::Text(s) => s.clone(),
        Literal::Bool(b) => b.to_string(),
    };
    let one: ArrayRef = Arc::new(StringArray::from(vec![text.clone()]));
    let typed = cast(&one, like.data_type())?;
    if typed.is_null(0) {
        return Err(Error::config(format!(
            "filter: `{text}` is not a {} value",
            like.data_type()
        )));
    }
    Ok(Scalar::new(typed))
}

fn eval(expr: &Expr, rows: &RecordBatch) -> Result<BooleanArray> {
    Ok(match expr {
        Expr::Compare(field, op, literal) => {
            let c = column(rows, field)?;
            let s = scalar(literal, &c)?;
            let c: &dyn Datum = &c;
            match op {
                Op::Eq => cmp::eq(c, &s)?,
                Op::Ne => cmp::neq(c, &s)?,
                Op::Lt => cmp::lt(c, &s)?,
                Op::Le => cmp::lt_eq(c, &s)?,
                Op::Gt => cmp::gt(c, &s)?,
                Op::Ge => cmp::gt_eq(c, &s)?,
            }
        }
        Expr::IsNull(field, negated) => {
            let c = column(rows, field)?;
            if *negated {
                is_not_null(&c)?
            } else {
                is_null(&c)?
            }
        }
        Expr::In(field, items, negated) => {
            let c = column(rows, field)?;
            let mut any = BooleanArray::from(vec![false; c.len()]);
            for item in items {
                let s = scalar(item, &c)?;
                any = or_kleene(&any, &cmp::eq(&c as &dyn Datum, &s)?)?;
            }
            if *negated { not(&any)? } else { any }
        }
        Expr::And(a, b) => and_kleene(&eval(a, rows)?, &eval(b, rows)?)?,
        Expr::Or(a, b) => or_kleene(&eval(a, rows)?, &eval(b, rows)?)?,
        Expr::Not(a) => not(&eval(a, rows)?)?,
    })
}

fn fields(expr: &Expr, out: &mut Vec<String>) {
    match expr {
        Expr::Compare(f, ..) | Expr::IsNull(f, _) | Expr::In(f, ..) => out.push(f.clone()),
        Expr::And(a, b) | Expr::Or(a, b) => {
            fields(a, out);
            fields(b, out);
        }
        Expr::Not(a) => fields(a, out),
    }
}

impl Transform for Filter {
    fn schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let mut named = Vec::new();
        fields(&self.expr, &mut named);
        for f in named {
            if input.index_of(&f).is_err() {
                return Err(Error::config(format!(
                    "filter: no field `{f}` (the rows have {})",
                    crate::schema::format_schema(input)
                )));
            }
        }
        Ok(input.clone())
    }

    fn apply(&self, rows: RecordBatch) -> Result<Applied, Rejected> {
        // Unknown (null) counts as false: the row is dropped.
        let keep = eval(&self.expr, &rows)?;
        let keep = if keep.null_count() > 0 {
            prep_null_mask_filter(&keep)
        } else {
            keep
        };
        let out = filter_record_batch(&rows, &keep)?;
        Ok(Applied {
            rows: out,
            kept: Some(keep),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_with_precedence() {
        let e = parse("a > 1 and b = 'x' or not c is null").unwrap();
        assert!(matches!(e, Expr::Or(..)), "{e:?}");
        assert_eq!(
            parse("name = 'O''Brien'").unwrap(),
            Expr::Compare("name".into(), Op::Eq, Literal::Text("O'Brien".into()))
        );
        assert!(matches!(
            parse("x not in (1, 2)").unwrap(),
            Expr::In(_, _, true)
        ));
        for bad in ["a >", "a = 'x", "(a = 1", "a ! 1", "a is 3", "= 1"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
