//! Bounded contexts of a service that keep their data in a database of their
//! own: each with its migrations, unit of work, audit trail, idempotency keys
//! and middleware, so one process can host several contexts and any of them
//! can run as a process of its own (`serve --only <context>`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sea_orm_migration::{DbErr, MigratorTrait};
use strata_app_api::application::{DispatcherBuilder, Middleware};
use strata_app_api::config::ConnectionUrl;
use strata_domain::ports::{AuditTrail, UnitOfWork};
use strata_infrastructure::{
    Database, SeaOrmUnitOfWork, migrate_down, migrate_up, migration_status,
};

use crate::running::Migration;

/// What a migration run answers: every migration with whether it is applied.
pub type MigrationFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<(String, bool)>, DbErr>> + Send + 'a>>;

/// A bounded context's database, as a service declares it
/// ([`crate::Service::contexts`]): its name, where it is, and its
/// migrations (Strata's tables are added to them, as to the service's).
#[derive(Clone)]
pub struct ContextDatabase {
    name: &'static str,
    url: ConnectionUrl,
    migrate: for<'a> fn(&'a Database, Migration) -> MigrationFuture<'a>,
}

impl std::fmt::Debug for ContextDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextDatabase")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl ContextDatabase {
    /// Context `name`'s database at `url`, its schema made by `M`.
    #[must_use]
    pub fn new<M: MigratorTrait>(name: &'static str, url: ConnectionUrl) -> Self {
        Self {
            name,
            url,
            migrate: run_migration::<M>,
        }
    }

    /// The context's name (`inventory`).
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Where its database is.
    #[must_use]
    pub fn url(&self) -> &ConnectionUrl {
        &self.url
    }

    /// Runs `migration` on `database`, then answers every migration with
    /// whether it is applied.
    pub(crate) fn migrate<'a>(
        &self,
        database: &'a Database,
        migration: Migration,
    ) -> MigrationFuture<'a> {
        (self.migrate)(database, migration)
    }
}

fn run_migration<M: MigratorTrait>(
    database: &Database,
    migration: Migration,
) -> MigrationFuture<'_> {
    Box::pin(async move {
        match migration {
            Migration::Up => migrate_up::<M>(database).await?,
            Migration::Down { steps } => migrate_down::<M>(database, steps).await?,
            Migration::Status => {}
        }
        migration_status::<M>(database).await
    })
}

/// A context's database opened for the service: a unit of work over it, and
/// the middleware chain with the audit trail and idempotency keys kept in it,
/// so a use case of the context commits its change, its audit record and its
/// idempotency record together, in the context's own database.
#[derive(Clone)]
pub struct Context {
    pub(crate) name: &'static str,
    pub(crate) database: Database,
    pub(crate) unit_of_work: Arc<SeaOrmUnitOfWork>,
    pub(crate) audit: Arc<dyn AuditTrail>,
    pub(crate) middleware: Vec<Arc<dyn Middleware>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// The context's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its database.
    #[must_use]
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The unit of work over its database.
    #[must_use]
    pub fn unit_of_work(&self) -> Arc<dyn UnitOfWork> {
        Arc::clone(&self.unit_of_work) as Arc<dyn UnitOfWork>
    }

    /// Its audit trail.
    #[must_use]
    pub fn audit_trail(&self) -> Arc<dyn AuditTrail> {
        Arc::clone(&self.audit)
    }

    /// The middleware its use cases run through: the service's chain
    /// ([`crate::Startup::middleware`]) over the context's database.
    #[must_use]
    pub fn middleware(&self) -> Vec<Arc<dyn Middleware>> {
        self.middleware.clone()
    }

    /// A dispatcher builder with [`Context::middleware`] in place.
    #[must_use]
    pub fn dispatcher(&self) -> DispatcherBuilder {
        strata_app_api::application::Dispatcher::builder().middleware(self.middleware())
    }
}
