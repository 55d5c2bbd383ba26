//! The extended query protocol (Parse / Bind / Describe / Execute: prepared statements
//! and parameters, what JDBC, psycopg and most drivers use). Parse plans the statement
//! in DataFusion, which infers the types of `$1`, `$2`, ... and the result columns;
//! Execute binds the parameters (text or binary) as literals of those types and runs the
//! plan. Statements the engine runs itself (topic-table CREATE / DROP) are kept unplanned
//! and take no parameters.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use futures::Sink;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::ExtendedQueryHandler;
use pgwire::api::results::{FieldFormat, FieldInfo, Response};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;

use super::encode;
use super::handler::{QueryHandler, pg_error, respond};
use crate::SqlEngine;

/// A parsed (and, where DataFusion runs it, planned) statement.
#[derive(Debug)]
pub(crate) struct Prepared {
    statement: DfStatement,
    /// `None` for statements the engine runs itself.
    plan: Option<LogicalPlan>,
    /// The type of each parameter, `$1` first.
    params: Vec<DataType>,
    /// The result columns (none for a statement without rows).
    schema: Arc<Schema>,
}

/// Parses and plans statements for the extended protocol.
#[derive(Debug)]
pub(crate) struct Parser {
    pub(crate) engine: Arc<SqlEngine>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Arc<Prepared>;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = SqlEngine::parse(sql).map_err(pg_error)?;
        let statement = match statements.len() {
            0 => return Ok(None),
            1 => statements.remove(0),
            n => {
                return Err(pg_error(crate::Error::Unsupported(format!(
                    "a prepared statement holds one statement, not {n}"
                ))));
            }
        };
        let plan = self
            .engine
            .plan_statement(&statement)
            .await
            .map_err(pg_error)?;
        let (params, schema) = match &plan {
            // A SHOW of a session setting answers rows the engine makes itself.
            None => match crate::session::answer(&statement) {
                Some(output) => (Vec::new(), Arc::new(output.schema.as_ref().clone())),
                None => (Vec::new(), Arc::new(Schema::empty())),
            },
            Some(plan) => (
                param_types(plan)?,
                Arc::new(plan.schema().as_arrow().clone()),
            ),
        };
        Ok(Some(Arc::new(Prepared {
            statement,
            plan,
            params,
            schema,
        })))
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        Ok(stmt.params.iter().map(encode::pg_type).collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        if is_insert(&stmt.statement) {
            // INSERT answers with a command tag, not rows.
            return Ok(Vec::new());
        }
        Ok(encode::fields(&stmt.schema, column_format).to_vec())
    }
}

fn is_insert(statement: &DfStatement) -> bool {
    matches!(statement, DfStatement::Statement(s)
        if matches!(s.as_ref(), datafusion::sql::sqlparser::ast::Statement::Insert(_)))
}

/// `$1`, `$2`, ... in order; a parameter DataFusion could not type, or typed as Null
/// (compared with a NULL), is text.
fn param_types(plan: &LogicalPlan) -> PgWireResult<Vec<DataType>> {
    let types: HashMap<String, Option<DataType>> =
        plan.get_parameter_types().map_err(|e| pg_error(e.into()))?;
    let count = types
        .keys()
        .filter_map(|k| k.strip_prefix('$')?.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    Ok((1..=count)
        .map(|i| {
            types
                .get(&format!("${i}"))
                .cloned()
                .flatten()
                .filter(|t| *t != DataType::Null)
                .unwrap_or(DataType::Utf8)
        })
        .collect())
}

/// The Arrow type of a parameter type a client declared in Parse, for the types `bind`
/// decodes; `None` (decode as the plan's type) for the rest and for "unknown".
fn declared_type(t: &Type) -> Option<DataType> {
    Some(match *t {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::TEXT | Type::VARCHAR => DataType::Utf8,
        Type::BYTEA => DataType::Binary,
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Millisecond, None),
        _ => return None,
    })
}

/// Parameter `index` (1 for `$1`) as a literal of its type.
fn bind(
    index: usize,
    bytes: Option<&[u8]>,
    format: FieldFormat,
    ty: &DataType,
) -> PgWireResult<ScalarValue> {
    let invalid = |reason: String| pg_error(crate::Error::BadParameter { index, reason });
    let Some(bytes) = bytes else {
        return ScalarValue::try_from(ty).map_err(|e| invalid(e.to_string()));
    };
    if format == FieldFormat::Text {
        let text = std::str::from_utf8(bytes).map_err(|_| invalid("not UTF-8 text".into()))?;
        let text = match ty {
            DataType::Boolean => match text {
                "t" | "true" | "1" => "true",
                "f" | "false" | "0" => "false",
                other => other,
            },
            _ => text,
        };
        return ScalarValue::try_from_string(text.to_string(), ty)
            .map_err(|e| invalid(format!("'{text}' as {ty}: {e}")));
    }
    let fixed = |n: usize| -> PgWireResult<&[u8]> {
        if bytes.len() == n {
            Ok(bytes)
        } else {
            Err(invalid(format!("{} bytes for {ty}", bytes.len())))
        }
    };
    let be = |n: usize| -> PgWireResult<i64> {
        let b = fixed(n)?;
        Ok(
            b.iter().fold(0_i64, |acc, x| (acc << 8) | i64::from(*x)) << (64 - 8 * n)
                >> (64 - 8 * n),
        )
    };
    Ok(match ty {
        DataType::Boolean => ScalarValue::Boolean(Some(fixed(1)?.first() != Some(&0))),
        DataType::Int16 => ScalarValue::Int16(Some(be(2)? as i16)),
        DataType::Int32 => ScalarValue::Int32(Some(be(4)? as i32)),
        DataType::Int64 => ScalarValue::Int64(Some(be(8)?)),
        DataType::Float32 => ScalarValue::Float32(Some(f32::from_bits(be(4)? as u32))),
        DataType::Float64 => ScalarValue::Float64(Some(f64::from_bits(be(8)? as u64))),
        DataType::Utf8 => ScalarValue::Utf8(Some(
            String::from_utf8(bytes.to_vec()).map_err(|_| invalid("not UTF-8 text".into()))?,
        )),
        DataType::Binary => ScalarValue::Binary(Some(bytes.to_vec())),
        DataType::Date32 => ScalarValue::Date32(Some(be(4)? as i32 + 10_957)),
        DataType::Timestamp(TimeUnit::Millisecond, tz) => ScalarValue::TimestampMillisecond(
            Some((be(8)? + 946_684_800_000_000).div_euclid(1_000)),
            tz.clone(),
        ),
        other => return Err(invalid(format!("binary parameters of type {other}"))),
    })
}

#[async_trait]
impl ExtendedQueryHandler for QueryHandler {
    type Statement = Arc<Prepared>;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let output = match &prepared.plan {
            None => {
                self.engine
                    .execute_statement(prepared.statement.clone())
                    .await
            }
            Some(plan) => {
                let mut values = Vec::with_capacity(prepared.params.len());
                for (i, ty) in prepared.params.iter().enumerate() {
                    let bytes = portal.parameters.get(i).and_then(|b| b.as_deref());
                    let format = portal.parameter_format.format_for(i);
                    // A client that declared the parameter's type (psycopg sends a small
                    // Python int as int2, say) encoded it as that type: decode it so,
                    // then cast to the type the plan wants.
                    let declared = portal
                        .statement
                        .parameter_types
                        .get(i)
                        .cloned()
                        .flatten()
                        .and_then(|t| declared_type(&t));
                    let value = match declared {
                        Some(wire) if wire != *ty => bind(i + 1, bytes, format, &wire)?
                            .cast_to(ty)
                            .map_err(|e| {
                                pg_error(crate::Error::BadParameter {
                                    index: i + 1,
                                    reason: format!("a {wire} value as {ty}: {e}"),
                                })
                            })?,
                        _ => bind(i + 1, bytes, format, ty)?,
                    };
                    values.push(value);
                }
                let plan = if values.is_empty() {
                    plan.clone()
                } else {
                    plan.clone()
                        .with_param_values(values)
                        .map_err(|e| pg_error(e.into()))?
                };
                self.engine.execute_plan(plan).await
            }
        };
        let output = output.map_err(pg_error)?;
        let formats = &portal.result_column_format;
        respond(&prepared.statement, output, Some(formats))
    }
}
