//! What PostgreSQL clients say besides queries: transaction control, session settings and
//! a few session functions. Drivers and BI tools send these on connect or around every
//! statement — psycopg opens a transaction before the first statement of a connection,
//! JDBC sets `extra_float_digits` and `application_name`, tools ask `SHOW server_version`
//! or `SELECT current_database()` — and a connection that fails them is unusable.
//!
//! Sluice runs each statement on its own: there are no multi-statement transactions over
//! topics. So:
//! - `BEGIN` / `START TRANSACTION` / `COMMIT` / `ROLLBACK` (and `SET TRANSACTION ...`) are
//!   accepted and change nothing: every statement, `INSERT` included, takes effect when it
//!   runs, and `ROLLBACK` does not undo it;
//! - `SET` of one of PostgreSQL's client session settings in [`SETTINGS`] (and `SET
//!   NAMES`) is accepted and ignored; any other `SET` is DataFusion's (`SET
//!   datafusion.execution.batch_size = ...`) and fails on a name it does not know;
//! - `SHOW` of those settings answers PostgreSQL's usual value, as one row in a column
//!   named after the setting;
//! - `current_database()` (the session's default catalog) and `current_schema()` (its
//!   default schema) are functions.

use std::sync::Arc;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Set, Statement as SqlStatement};

use crate::engine::StatementOutput;

/// PostgreSQL's client session settings a `SET` of is accepted and ignored, with the value
/// `SHOW` answers (PostgreSQL's defaults, and what holds here: UTF-8, ISO dates, UTC).
pub const SETTINGS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("bytea_output", "hex"),
    ("client_encoding", "UTF8"),
    ("client_min_messages", "notice"),
    ("datestyle", "ISO, MDY"),
    ("default_transaction_isolation", "read committed"),
    ("default_transaction_read_only", "off"),
    ("extra_float_digits", "1"),
    ("idle_in_transaction_session_timeout", "0"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("lc_messages", "C"),
    ("lc_monetary", "C"),
    ("lc_numeric", "C"),
    ("lc_time", "C"),
    ("lock_timeout", "0"),
    ("max_identifier_length", "63"),
    ("search_path", "public"),
    ("server_encoding", "UTF8"),
    ("server_version", "15.0"),
    ("server_version_num", "150000"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("timezone", "UTC"),
    ("transaction_isolation", "read committed"),
    ("transaction_read_only", "off"),
];

/// The answer to a session statement, or `None` for any other statement.
pub(crate) fn answer(statement: &DfStatement) -> Option<StatementOutput> {
    let DfStatement::Statement(statement) = statement else {
        return None;
    };
    match statement.as_ref() {
        SqlStatement::StartTransaction { .. }
        | SqlStatement::Commit { .. }
        | SqlStatement::Rollback { .. } => Some(StatementOutput::empty()),
        SqlStatement::Set(set) => match set {
            Set::SingleAssignment { variable, .. } => {
                setting(&variable.to_string()).map(|_| StatementOutput::empty())
            }
            Set::SetNames { .. } | Set::SetNamesDefault {} | Set::SetTransaction { .. } => {
                Some(StatementOutput::empty())
            }
            _ => None,
        },
        SqlStatement::ShowVariable { variable } => {
            let name = variable
                .iter()
                .map(|i| i.value.to_lowercase())
                .collect::<Vec<_>>()
                .join(" ");
            let name = match name.as_str() {
                "transaction isolation level" => "transaction_isolation".to_string(),
                "time zone" => "timezone".to_string(),
                _ => name,
            };
            let value = setting(&name)?;
            let schema = Arc::new(Schema::new(vec![Field::new(&name, DataType::Utf8, false)]));
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(StringArray::from(vec![value]))],
            )
            .ok()?;
            Some(StatementOutput {
                schema,
                batches: vec![batch],
            })
        }
        _ => None,
    }
}

/// The command tag PostgreSQL answers a session statement with, if it is one.
pub(crate) fn command_tag(statement: &SqlStatement) -> Option<&'static str> {
    Some(match statement {
        SqlStatement::StartTransaction { .. } => "BEGIN",
        SqlStatement::Commit { .. } => "COMMIT",
        SqlStatement::Rollback { .. } => "ROLLBACK",
        _ => return None,
    })
}

/// The value `SHOW name` answers, for the settings in [`SETTINGS`].
pub(crate) fn setting(name: &str) -> Option<&'static str> {
    let name = name.to_lowercase();
    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
    SETTINGS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// Registers `current_database()` and `current_schema()` on `ctx`.
pub(crate) fn register_functions(ctx: &SessionContext) {
    let options = ctx.state().config().options().catalog.clone();
    for (name, value) in [
        ("current_database", options.default_catalog),
        ("current_schema", options.default_schema),
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(Constant {
            name,
            value,
            signature: Signature::nullary(Volatility::Stable),
        }));
    }
}

/// A function of no arguments answering a fixed text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Constant {
    name: &'static str,
    value: String,
    signature: Signature,
}

impl ScalarUDFImpl for Constant {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(
        &self,
        _args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
            self.value.clone(),
        ))))
    }
}
