//! The database source, once for all three systems: a [`Fetch`]ing connection plus the
//! [`Incremental`] planner.

use async_trait::async_trait;

use super::config::DbSourceConfig;
use super::incremental::{Fetch, Incremental};
use super::table::TableInfo;
use crate::batch::{Poll, Position};
use crate::error::{Error, Result};
use crate::source::Source;

/// A database system's side of the source.
#[async_trait]
pub trait SourceBackend: Fetch {
    /// The system's dialect.
    fn dialect(&self) -> super::Dialect;
    /// Connects if not connected.
    async fn connect(&mut self) -> Result<()>;
    /// Describes `table`.
    async fn table_info(&mut self, table: &str) -> Result<TableInfo>;
}

/// A database source over a [`SourceBackend`].
pub struct DbSource<B: SourceBackend> {
    name: String,
    config: DbSourceConfig,
    backend: B,
    plan: Option<Incremental>,
}

impl<B: SourceBackend> DbSource<B> {
    /// A source named `name` reading through `backend`.
    pub fn new(name: &str, config: DbSourceConfig, backend: B) -> DbSource<B> {
        DbSource {
            name: name.to_string(),
            config,
            backend,
            plan: None,
        }
    }

    async fn planner(&mut self) -> Result<Incremental, Vec<String>> {
        let what = format!("{} source \"{}\"", self.backend.dialect().name(), self.name);
        if let Err(e) = self.backend.connect().await {
            return Err(vec![format!("{what}: cannot connect: {e}")]);
        }
        let info = self
            .backend
            .table_info(&self.config.table)
            .await
            .map_err(|e| vec![format!("{what}: {e}")])?;
        Incremental::new(self.backend.dialect(), &info, &self.config).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| format!("{what}: {p}"))
                .collect()
        })
    }
}

#[async_trait]
impl<B: SourceBackend> Source for DbSource<B> {
    async fn check(&mut self) -> Vec<String> {
        self.planner().await.err().unwrap_or_default()
    }

    async fn open(&mut self, position: Option<Position>) -> Result<()> {
        self.backend.connect().await?;
        let mut plan = match self.planner().await {
            Ok(plan) => plan,
            Err(problems) => return Err(Error::config(problems.join("\n"))),
        };
        plan.open(position)?;
        self.plan = Some(plan);
        Ok(())
    }

    async fn poll(&mut self, max_rows: usize) -> Result<Poll> {
        let plan = self.plan.as_mut().ok_or_else(|| {
            Error::connector(&self.name, "polled before open (a bug, please report)")
        })?;
        self.backend.connect().await?;
        plan.poll(&mut self.backend, max_rows).await
    }
}
