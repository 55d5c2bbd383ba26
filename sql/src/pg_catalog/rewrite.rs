//! PostgreSQL syntax that PostgreSQL tools send and DataFusion does not plan, rewritten in
//! the parsed statement before planning.
//!
//! [`rewrite`], on every statement DataFusion plans:
//!
//! | written | planned as |
//! |---|---|
//! | `a OPERATOR(pg_catalog.~) b` (any built-in operator) | `a ~ b` |
//! | `x COLLATE pg_catalog.default`, `COLLATE "C"`, `COLLATE "POSIX"` | `x`: text compares bytewise, which is what these collations mean |
//! | `pg_catalog.format_type(...)` (any function) | `format_type(...)` |
//! | `x::pg_catalog.text` (any type) | `x::text` |
//! | `x::oid`, `x::name`, `x::"char"` | `x::int`, `x::text`, `x::text` |
//! | `x::regclass`, `x::regtype`, `x::regnamespace` | `regclass(x)`, ... (see `functions`) |
//!
//! [`prune_empty_catalogs`], only for a statement DataFusion cannot plan (or optimize) as
//! written: a query block that reads a catalog Sluice keeps empty (`pg_index`,
//! `pg_policy`, ...; see `tables`) through an inner join returns no rows whatever its
//! expressions are, so it becomes `SELECT NULL AS <name>, ... FROM <that catalog> WHERE
//! false`. psql's `\d table` needs it: its footer queries over policies, statistics,
//! publications and column defaults use correlated `ARRAY(SELECT ...)`, set-returning
//! functions over outer columns and unaggregated correlated subqueries, none of which
//! DataFusion plans. A block with an aggregate and no `GROUP BY` (one row even over
//! nothing) or a `*` is kept as written. In the same pass, a scalar subquery that looks
//! up one value in the catalogs (`(SELECT typcollation FROM pg_type WHERE oid =
//! a.atttypid)`, as SQLAlchemy writes) takes `first_value` of it, since DataFusion
//! decorrelates only aggregated scalar subqueries.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, BinaryOperator, DataType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, GroupByExpr, Ident, JoinOperator, ObjectName,
    ObjectNamePart, Query, Select, SelectItem, SetExpr, TableFactor, TableWithJoins, Value, Visit,
    VisitMut, Visitor, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::tables;

/// Rewrites PostgreSQL syntax in `statement` (see the module docs).
pub(crate) fn rewrite(statement: &mut DfStatement) {
    visit(statement, &mut Syntax);
}

/// `statement` with its query blocks over catalogs Sluice keeps empty replaced by empty
/// ones (see the module docs), or `None` if it has no such block. `is_aggregate` says
/// whether a function name is an aggregate function.
pub(crate) fn prune_empty_catalogs(
    statement: &DfStatement,
    is_aggregate: &dyn Fn(&str) -> bool,
) -> Option<DfStatement> {
    let mut statement = statement.clone();
    let mut pruner = Pruner {
        is_aggregate,
        pruned: false,
    };
    visit(&mut statement, &mut pruner);
    pruner.pruned.then_some(statement)
}

fn visit<V: VisitorMut<Break = ()>>(statement: &mut DfStatement, visitor: &mut V) {
    match statement {
        DfStatement::Statement(inner) => {
            let _ = inner.visit(visitor);
        }
        DfStatement::Explain(explain) => visit(&mut explain.statement, visitor),
        _ => {}
    }
}

/// The last part of a name, lower-cased, if the name is unqualified or qualified with
/// `pg_catalog`.
fn catalog_name(name: &ObjectName) -> Option<String> {
    let parts: Vec<&Ident> = name.0.iter().filter_map(ObjectNamePart::as_ident).collect();
    match parts.as_slice() {
        [name] => Some(name.value.to_lowercase()),
        [schema, name] if schema.value.eq_ignore_ascii_case(super::SCHEMA) => {
            Some(name.value.to_lowercase())
        }
        _ => None,
    }
}

/// See [`rewrite`].
struct Syntax;

impl VisitorMut for Syntax {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::BinaryOp { op, .. } => {
                if let BinaryOperator::PGCustomBinaryOperator(parts) = op
                    && let Some(plain) = plain_operator(parts)
                {
                    *op = plain;
                }
            }
            Expr::Collate {
                expr: inner,
                collation,
            } if is_bytewise(collation) => {
                *expr = take(inner);
            }
            Expr::Function(function) if function.name.0.len() == 2 => {
                if let Some(name) = catalog_name(&function.name) {
                    function.name = ObjectName::from(vec![Ident::new(name)]);
                }
            }
            Expr::Cast {
                expr: inner,
                data_type,
                ..
            } => match reg_function(data_type) {
                Some(function) => *expr = call(function, take(inner)),
                None => plain_type(data_type),
            },
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

fn take(expr: &mut Expr) -> Expr {
    std::mem::replace(expr, Expr::value(Value::Null))
}

/// `OPERATOR(pg_catalog.op)`'s plain operator.
fn plain_operator(parts: &[String]) -> Option<BinaryOperator> {
    let op = match parts {
        [op] => op,
        [schema, op] if schema.eq_ignore_ascii_case(super::SCHEMA) => op,
        _ => return None,
    };
    Some(match op.as_str() {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "~~" => BinaryOperator::PGLikeMatch,
        "~~*" => BinaryOperator::PGILikeMatch,
        "!~~" => BinaryOperator::PGNotLikeMatch,
        "!~~*" => BinaryOperator::PGNotILikeMatch,
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        "<=" => BinaryOperator::LtEq,
        ">" => BinaryOperator::Gt,
        ">=" => BinaryOperator::GtEq,
        "||" => BinaryOperator::StringConcat,
        "+" => BinaryOperator::Plus,
        "-" => BinaryOperator::Minus,
        "*" => BinaryOperator::Multiply,
        "/" => BinaryOperator::Divide,
        _ => return None,
    })
}

/// Whether a collation means bytewise comparison (what Sluice does).
fn is_bytewise(collation: &ObjectName) -> bool {
    catalog_name(collation).is_some_and(|n| matches!(n.as_str(), "default" | "c" | "posix"))
}

/// The function a `::regclass`-style cast becomes.
fn reg_function(data_type: &DataType) -> Option<&'static str> {
    let DataType::Custom(name, modifiers) = data_type else {
        return matches!(data_type, DataType::Regclass).then_some("regclass");
    };
    if !modifiers.is_empty() {
        return None;
    }
    match catalog_name(name)?.as_str() {
        "regclass" => Some("regclass"),
        "regtype" => Some("regtype"),
        "regnamespace" => Some("regnamespace"),
        _ => None,
    }
}

/// Replaces a PostgreSQL type name DataFusion does not know with the type that holds its
/// values here.
fn plain_type(data_type: &mut DataType) {
    match data_type {
        DataType::Custom(name, modifiers) if modifiers.is_empty() => {
            let qualified = name.0.len() == 2;
            let Some(plain) = catalog_name(name) else {
                return;
            };
            match plain.as_str() {
                "oid" => *data_type = DataType::Int(None),
                "name" | "char" | "bpchar" => *data_type = DataType::Text,
                _ if qualified => {
                    let parsed = Parser::new(&GenericDialect {})
                        .try_with_sql(&plain)
                        .and_then(|mut p| p.parse_data_type());
                    if let Ok(parsed) = parsed {
                        *data_type = parsed;
                    }
                }
                _ => {}
            }
        }
        DataType::Array(
            ArrayElemTypeDef::AngleBracket(inner)
            | ArrayElemTypeDef::SquareBracket(inner, _)
            | ArrayElemTypeDef::Parenthesis(inner),
        ) => plain_type(inner),
        _ => {}
    }
}

/// `name(arg)`.
fn call(name: &str, arg: Expr) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))],
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// See [`prune_empty_catalogs`].
struct Pruner<'a> {
    is_aggregate: &'a dyn Fn(&str) -> bool,
    pruned: bool,
}

impl VisitorMut for Pruner<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Subquery(query) = expr {
            self.aggregate_lookup(query);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        // An empty block needs no order; the order of a set operation names its output
        // columns, which stay.
        if self.prune_body(&mut query.body) {
            query.order_by = None;
        }
        ControlFlow::Continue(())
    }
}

impl Pruner<'_> {
    /// Prunes the blocks of a query body; true if the body is one block, pruned.
    fn prune_body(&mut self, body: &mut SetExpr) -> bool {
        match body {
            SetExpr::Select(select) => self.prune_select(select),
            SetExpr::SetOperation { left, right, .. } => {
                self.prune_body(left);
                self.prune_body(right);
                false
            }
            _ => false,
        }
    }

    fn prune_select(&mut self, select: &mut Select) -> bool {
        let Some(empty) = empty_catalog(&select.from) else {
            return false;
        };
        let wildcard = select.projection.iter().any(|item| {
            matches!(
                item,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        });
        let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
        if wildcard || (!grouped && self.aggregates(select)) {
            return false;
        }
        let mut names = HashSet::new();
        select.projection = select
            .projection
            .iter()
            .map(|item| {
                let name = unique(column_name(item), &mut names);
                SelectItem::ExprWithAlias {
                    expr: Expr::value(Value::Null),
                    alias: Ident::with_quote('"', name),
                }
            })
            .collect();
        select.from = vec![TableWithJoins {
            relation: empty,
            joins: Vec::new(),
        }];
        select.selection = Some(Expr::value(Value::Boolean(false)));
        select.group_by = GroupByExpr::Expressions(Vec::new(), Vec::new());
        select.having = None;
        select.qualify = None;
        select.named_window.clear();
        select.sort_by.clear();
        select.distinct = None;
        self.pruned = true;
        true
    }

    /// Turns a scalar subquery that looks one row up in the catalogs, `(SELECT typcollation
    /// FROM pg_type WHERE oid = a.atttypid)`, into `(SELECT first_value(typcollation) ...)`,
    /// which DataFusion decorrelates (it plans a correlated scalar subquery only if it
    /// aggregates). The same answer whenever the lookup finds at most one row, as a lookup
    /// by id or name in the catalogs does; PostgreSQL would fail where it finds more.
    fn aggregate_lookup(&mut self, query: &mut Query) {
        let SetExpr::Select(select) = query.body.as_mut() else {
            return;
        };
        let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
        let only_catalogs = !select.from.is_empty()
            && select.from.iter().all(|item| {
                std::iter::once(&item.relation)
                    .chain(item.joins.iter().map(|j| &j.relation))
                    .all(is_catalog_table)
            });
        // A block over a catalog kept empty is pruned instead.
        if grouped
            || !only_catalogs
            || empty_catalog(&select.from).is_some()
            || select.distinct.is_some()
            || query.limit_clause.is_some()
            || select.projection.len() != 1
            || self.aggregates(select)
        {
            return;
        }
        let Some(item) = select.projection.first_mut() else {
            return;
        };
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(expr) => (take(expr), None),
            SelectItem::ExprWithAlias { expr, alias } => (take(expr), Some(alias.clone())),
            _ => return,
        };
        let name = Ident::with_quote('"', expr_name(&expr));
        *item = SelectItem::ExprWithAlias {
            expr: call("first_value", expr),
            alias: alias.unwrap_or(name),
        };
        query.order_by = None;
        self.pruned = true;
    }

    /// Whether the block's projection or HAVING calls an aggregate function (not counting
    /// those inside its subqueries).
    fn aggregates(&self, select: &Select) -> bool {
        let mut finder = AggregateFinder {
            is_aggregate: self.is_aggregate,
            depth: 0,
        };
        let projection = select.projection.visit(&mut finder);
        let having = select.having.visit(&mut finder);
        projection.is_break() || having.is_break()
    }
}

/// Whether a FROM item is a catalog table (named unqualified or in `pg_catalog`).
fn is_catalog_table(factor: &TableFactor) -> bool {
    matches!(factor, TableFactor::Table { name, args: None, .. }
        if catalog_name(name).is_some_and(|n| tables::exists(&n)))
}

/// The first catalog Sluice keeps empty that the FROM clause reads so that an empty
/// catalog makes the whole result empty: a comma-separated item, the left side of a join
/// chain without RIGHT or FULL joins, or the right side of an inner or cross join.
fn empty_catalog(from: &[TableWithJoins]) -> Option<TableFactor> {
    let is_empty = |factor: &TableFactor| {
        matches!(factor, TableFactor::Table { name, args: None, .. }
            if catalog_name(name).is_some_and(|n| tables::is_kept_empty(&n)))
    };
    for item in from {
        let keeps_left = item.joins.iter().all(|j| {
            !matches!(
                j.join_operator,
                JoinOperator::Right(_)
                    | JoinOperator::RightOuter(_)
                    | JoinOperator::FullOuter(_)
                    | JoinOperator::RightSemi(_)
                    | JoinOperator::RightAnti(_)
            )
        });
        if keeps_left && is_empty(&item.relation) {
            return Some(item.relation.clone());
        }
        for join in &item.joins {
            let inner = matches!(
                join.join_operator,
                JoinOperator::Join(_) | JoinOperator::Inner(_) | JoinOperator::CrossJoin(_)
            );
            if inner && is_empty(&join.relation) {
                return Some(join.relation.clone());
            }
        }
    }
    None
}

/// The name PostgreSQL gives a result column.
fn column_name(item: &SelectItem) -> String {
    match item {
        SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
        SelectItem::UnnamedExpr(expr) => expr_name(expr),
        _ => "?column?".into(),
    }
}

fn expr_name(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(ident) => ident.value.clone(),
        Expr::CompoundIdentifier(parts) => parts
            .last()
            .map_or_else(|| "?column?".into(), |p| p.value.clone()),
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(ObjectNamePart::as_ident)
            .map_or_else(|| "?column?".into(), |i| i.value.to_lowercase()),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => expr_name(expr),
        Expr::Case { .. } => "case".into(),
        _ => "?column?".into(),
    }
}

/// `name`, or `name_2`, `name_3`, ... if it is taken (DataFusion needs distinct names
/// where PostgreSQL allows repeats).
fn unique(name: String, taken: &mut HashSet<String>) -> String {
    if taken.insert(name.clone()) {
        return name;
    }
    let mut n = 2;
    loop {
        let candidate = format!("{name}_{n}");
        if taken.insert(candidate.clone()) {
            return candidate;
        }
        n += 1;
    }
}

/// Breaks at an aggregate call outside subqueries.
struct AggregateFinder<'a> {
    is_aggregate: &'a dyn Fn(&str) -> bool,
    depth: usize,
}

impl Visitor for AggregateFinder<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if self.depth == 0
            && let Expr::Function(f) = expr
            && f.over.is_none()
            && catalog_name(&f.name).is_some_and(|n| (self.is_aggregate)(&n))
        {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqlEngine;

    fn rewritten(sql: &str) -> String {
        let mut statement = SqlEngine::parse(sql).expect("parse").remove(0);
        rewrite(&mut statement);
        statement.to_string()
    }

    /// psql's name lookup, as psql 15 writes it, becomes SQL DataFusion plans.
    #[test]
    fn psql_syntax_is_rewritten() {
        assert_eq!(
            rewritten(
                "SELECT c.oid FROM pg_catalog.pg_class c \
                 WHERE c.relname OPERATOR(pg_catalog.~) '^(orders)$' COLLATE pg_catalog.default \
                 AND pg_catalog.pg_table_is_visible(c.oid)"
            ),
            "SELECT c.oid FROM pg_catalog.pg_class c \
             WHERE c.relname ~ '^(orders)$' AND pg_table_is_visible(c.oid)"
        );
        assert_eq!(
            rewritten("SELECT c.oid::pg_catalog.regclass::pg_catalog.text, 'x'::oid, 'y'::name"),
            "SELECT regclass(c.oid)::TEXT, 'x'::INT, 'y'::TEXT"
        );
        assert_eq!(
            rewritten("SELECT 'orders'::regclass, 'int8'::regtype"),
            "SELECT regclass('orders'), regtype('int8')"
        );
        // Other collations are left for DataFusion to judge.
        assert_eq!(
            rewritten("SELECT name COLLATE \"de_DE\" FROM t"),
            "SELECT name COLLATE \"de_DE\" FROM t"
        );
    }

    fn pruned(sql: &str) -> Option<String> {
        let statement = SqlEngine::parse(sql).expect("parse").remove(0);
        prune_empty_catalogs(&statement, &|n| n == "count").map(|s| s.to_string())
    }

    /// Blocks over catalogs kept empty become empty blocks; others stay as written.
    #[test]
    fn blocks_over_empty_catalogs_are_pruned() {
        assert_eq!(
            pruned(
                "SELECT pol.polname, array(SELECT 1), pg_get_expr(pol.polqual, pol.polrelid) \
                 FROM pg_catalog.pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid \
                 WHERE pol.polroles = '{0}' ORDER BY 1"
            )
            .as_deref(),
            Some(
                "SELECT NULL AS \"polname\", NULL AS \"array\", NULL AS \"pg_get_expr\" \
                 FROM pg_catalog.pg_policy pol WHERE false"
            )
        );
        // The empty catalog on the outer side of a LEFT JOIN empties nothing.
        assert_eq!(
            pruned("SELECT c.relname FROM pg_class c LEFT JOIN pg_index i ON i.indrelid = c.oid"),
            None
        );
        // One row even over nothing.
        assert_eq!(pruned("SELECT count(*) FROM pg_index"), None);
        // Subqueries are blocks of their own; repeated names are told apart.
        assert_eq!(
            pruned(
                "SELECT a.attname, (SELECT d.adbin FROM pg_attrdef d WHERE d.adrelid = a.attrelid) \
                 FROM pg_attribute a"
            )
            .as_deref(),
            Some(
                "SELECT a.attname, (SELECT NULL AS \"adbin\" FROM pg_attrdef d WHERE false) \
                 FROM pg_attribute a"
            )
        );
        assert_eq!(
            pruned("SELECT x, NULL, NULL FROM pg_publication").as_deref(),
            Some(
                "SELECT NULL AS \"x\", NULL AS \"?column?\", NULL AS \"?column?_2\" \
                 FROM pg_publication WHERE false"
            )
        );
    }
}
