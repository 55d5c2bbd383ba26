//! Answering PostgreSQL simple-protocol queries (what `psql` sends) with [`SqlEngine`]: each
//! statement of a query string runs in turn and gets its own result — rows, or a command
//! tag such as `INSERT 0 3` or `CREATE TABLE`; the first error ends the query string, as
//! in PostgreSQL.

use std::fmt::Debug;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use futures::{Sink, stream};
use pgwire::api::auth::{self, DefaultServerParameterProvider, StartupHandler};
use pgwire::api::query::SimpleQueryHandler;
use pgwire::api::results::{QueryResponse, Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, PgWireServerHandlers, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::encode;
use super::extended::Parser;
use crate::{Error, SqlEngine, StatementOutput};

/// One engine shared by every connection.
#[derive(Debug)]
pub(crate) struct Handlers {
    engine: Arc<SqlEngine>,
}

impl Handlers {
    pub(crate) fn new(engine: Arc<SqlEngine>) -> Self {
        Self { engine }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::new(QueryHandler::new(Arc::clone(&self.engine)))
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        Arc::new(QueryHandler::new(Arc::clone(&self.engine)))
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::new(QueryHandler::new(Arc::clone(&self.engine)))
    }
}

/// Runs simple and extended queries; accepts every client without authentication (see
/// docs/sql.md: the endpoint listens on loopback by default).
#[derive(Debug)]
pub(crate) struct QueryHandler {
    pub(crate) engine: Arc<SqlEngine>,
    pub(crate) parser: Arc<Parser>,
}

impl QueryHandler {
    fn new(engine: Arc<SqlEngine>) -> Self {
        Self {
            parser: Arc::new(Parser {
                engine: Arc::clone(&engine),
            }),
            engine,
        }
    }
}

/// Process ids and cancel keys for the connections' BackendKeyData.
static BACKEND_KEYS: LazyLock<RandomPidSecretKeyGenerator> =
    LazyLock::new(RandomPidSecretKeyGenerator::default);

/// Accepts every client (no authentication), announcing the server parameters a client
/// reads on connect — `server_version` the one `SHOW server_version` answers (see
/// `session`), so psql picks its catalog queries for that version.
#[async_trait]
impl StartupHandler for QueryHandler {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(startup) = &message {
            auth::protocol_negotiation(client, startup).await?;
            auth::save_startup_parameters_to_metadata(client, startup);
            let (pid, secret_key) = BACKEND_KEYS.generate(client);
            client.set_pid_and_secret_key(pid, secret_key);
            let mut parameters = DefaultServerParameterProvider::default();
            if let Some(version) = crate::session::setting("server_version") {
                parameters.server_version = version.to_string();
            }
            auth::finish_authentication(client, &parameters).await?;
        }
        Ok(())
    }
}

/// An engine error as a PostgreSQL error with the closest SQLSTATE.
pub(crate) fn pg_error(e: Error) -> PgWireError {
    let code = match &e {
        Error::UnknownTable(_) => "42P01",
        Error::TableExists(_) => "42P07",
        Error::InvalidTable { .. } => "42601",
        Error::BadRecord { .. } | Error::BadRow { .. } => "22000",
        Error::BadParameter { .. } => "22023",
        Error::Unsupported(_) => "0A000",
        Error::DataFusion(e) => {
            use datafusion::error::DataFusionError as D;
            match e.find_root() {
                D::SQL(..) => "42601",
                D::Plan(m) if m.contains("not found") => "42P01",
                D::Plan(_) | D::SchemaError(..) => "42000",
                D::NotImplemented(_) => "0A000",
                _ => "XX000",
            }
        }
        _ => "XX000",
    };
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        e.to_string(),
    )))
}

/// The command tag PostgreSQL would give a statement that returns no rows.
fn command_tag(statement: &DfStatement) -> String {
    match statement {
        DfStatement::CreateExternalTable(_) => "CREATE TABLE".into(),
        DfStatement::CopyTo(_) => "COPY".into(),
        DfStatement::Statement(s) => match s.as_ref() {
            s if let Some(tag) = crate::session::command_tag(s) => tag.into(),
            SqlStatement::CreateTable(_) => "CREATE TABLE".into(),
            SqlStatement::CreateView { .. } => "CREATE VIEW".into(),
            SqlStatement::Drop { object_type, .. } => format!("DROP {object_type}"),
            SqlStatement::Set(_) => "SET".into(),
            _ => "OK".into(),
        },
        _ => "OK".into(),
    }
}

/// INSERT's result (DataFusion returns the count as a row) as PostgreSQL's tag.
fn inserted_rows(output: &StatementOutput) -> usize {
    output
        .batches
        .iter()
        .filter_map(|b| b.columns().first())
        .filter_map(|c| c.as_primitive_opt::<UInt64Type>())
        .filter(|c| !c.is_empty())
        .map(|c| c.value(0) as usize)
        .sum()
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = match SqlEngine::parse(query) {
            Ok(statements) => statements,
            Err(e) => return Ok(vec![Response::Error(Box::new(error_info(pg_error(e))))]),
        };
        let mut responses = Vec::with_capacity(statements.len());
        for statement in statements {
            let tag_source = statement.clone();
            let output = match self.engine.execute_statement(statement).await {
                Ok(output) => output,
                Err(e) => {
                    responses.push(Response::Error(Box::new(error_info(pg_error(e)))));
                    break;
                }
            };
            responses.push(respond(&tag_source, output, None)?);
        }
        Ok(responses)
    }
}

/// One statement's output as a PostgreSQL response: INSERT's count as its tag, rows with
/// their description (`formats`: what the client asked for; `None`: text), or a tag.
pub(crate) fn respond(
    statement: &DfStatement,
    output: StatementOutput,
    formats: Option<&pgwire::api::portal::Format>,
) -> PgWireResult<Response> {
    let is_insert = matches!(statement, DfStatement::Statement(s)
        if matches!(s.as_ref(), SqlStatement::Insert(_)));
    if is_insert {
        let tag = Tag::new("INSERT")
            .with_oid(0)
            .with_rows(inserted_rows(&output));
        return Ok(Response::Execution(tag));
    }
    if !output.has_rows() {
        return Ok(Response::Execution(Tag::new(&command_tag(statement))));
    }
    let fields = encode::fields(&output.schema, formats);
    let mut rows = Vec::with_capacity(output.row_count());
    for batch in &output.batches {
        rows.extend(encode::rows(&fields, batch)?.into_iter().map(Ok));
    }
    Ok(Response::Query(QueryResponse::new(
        fields,
        stream::iter(rows),
    )))
}

fn error_info(e: PgWireError) -> ErrorInfo {
    match e {
        PgWireError::UserError(info) => *info,
        other => ErrorInfo::new("ERROR".into(), "XX000".into(), other.to_string()),
    }
}
