//! The composition root: the one module that names the infrastructure and the
//! web page, wires them into the application and starts the servers. The tests
//! start the service through [`start`] too, so they exercise what `cargo run` does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use infrastructure::{
    SeaOrmTaskRepository, SeedError, migrate, migration_status, rollback, seed_tasks,
};
use strata_app_api::application::{Cache, Dispatcher, Middleware, middleware};
use strata_app_api::http;
use strata_app_api::http::health::{Readiness, RedisPing, check_fn};
use strata_app_api::metrics::{Metrics, PoolUsage, UseCaseMetrics};
use strata_bff::Upstream;
use strata_domain::ports::{CacheStore, Propagation, RateLimiter, in_unit_of_work};
use strata_infrastructure::{
    Database, InMemoryRateLimiter, RateLimit, SeaOrmIdempotencyStore, SeaOrmUnitOfWork,
    cache_store_for,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, AppState, Operations};
use crate::application::tasks::{self, TaskHandlers};
use crate::settings::Settings;

/// How many requests one client address may make: a steady rate, and a burst
/// above it for a page that loads several things at once.
fn client_limit() -> RateLimit {
    RateLimit::per(600, Duration::from_secs(60)).with_burst(120)
}

/// The service could not start, or a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("the database could not be prepared")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The demo tasks could not be added.
    #[error("the demo tasks could not be added")]
    Seed(#[source] SeedError),
    /// The cache could not be set up.
    #[error("the cache could not be set up")]
    Cache(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The per-client request limit could not be set up.
    #[error("the request limit could not be set up")]
    RateLimit(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A listening address could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The web page's client for the API could not be built.
    #[error("the web page could not be set up")]
    Web(#[source] strata_bff::UpstreamError),
}

/// A started service: where it listens, and how to stop it.
#[derive(Debug)]
pub struct RunningService {
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// Where the web page listens, when it is served.
    pub web_addr: Option<SocketAddr>,
    api_router: axum::Router,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
}

impl RunningService {
    /// The router the API serves, for tests that inspect its routes.
    pub fn api_router(&self) -> &axum::Router {
        &self.api_router
    }

    /// Stops accepting connections, lets requests in flight finish (for up to
    /// `http.shutdown_grace`), and waits for every server to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for server in self.servers {
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(error = %error, "a server ended with an error"),
                Err(error) => tracing::error!(error = %error, "a server task failed"),
            }
        }
    }
}

/// Opens the database and, as configured, migrates and seeds it; wires the use
/// cases to it; starts the API and, when the settings ask for it, the web page.
///
/// # Errors
/// When the database cannot be prepared, the cache cannot be set up or an
/// address cannot be bound.
pub async fn start(settings: Settings) -> Result<RunningService, StartError> {
    let database = open_database(&settings).await?;
    if settings.migrate_on_start {
        migrate(&database)
            .await
            .map_err(|error| StartError::Database(Box::new(error)))?;
    }
    let operations = operations(&settings, &database)?;

    let task_repository = Arc::new(SeaOrmTaskRepository::new(database.clone()));
    let unit_of_work = Arc::new(SeaOrmUnitOfWork::new(database.clone()));
    if settings.seed {
        in_unit_of_work(
            unit_of_work.as_ref(),
            Propagation::Required,
            seed_tasks(task_repository.as_ref()),
        )
        .await
        .map_err(StartError::Seed)?;
    }

    let cache = Arc::new(Cache::new(cache_store(&settings)?));
    let chain = middleware::Standard::new(unit_of_work)
        .with_cache(cache)
        .with_idempotency(Arc::new(SeaOrmIdempotencyStore::new(database)))
        .build();
    // Metrics go first, so refusals by any later middleware are counted too.
    let dispatcher = Dispatcher::builder()
        .middleware([
            Arc::new(UseCaseMetrics::new(operations.metrics.clone())) as Arc<dyn Middleware>
        ])
        .middleware(chain);
    let dispatcher = tasks::register(dispatcher, Arc::new(TaskHandlers::new(task_repository)));

    // Bind everything before serving anything, so a start that fails leaves
    // nothing running.
    let api_listener = bind(settings.api_addr).await?;
    let api_addr = local_addr(&api_listener, settings.api_addr)?;
    let web = if settings.web_page {
        let listener = bind(settings.web_addr).await?;
        let addr = local_addr(&listener, settings.web_addr)?;
        let upstream = Upstream::new(format!("http://{api_addr}")).map_err(StartError::Web)?;
        Some((listener, addr, bff::router(upstream)))
    } else {
        None
    };

    let (api_router, _document) = api::router(
        AppState::new(dispatcher.build()),
        settings.http_settings(),
        throttle(client_limit())?,
        operations,
    );
    let grace = settings.http.shutdown_grace;
    let (stop, stopped) = watch::channel(false);
    let mut servers = vec![serve(
        api_listener,
        api_router.clone(),
        stopped.clone(),
        grace,
    )];
    let web_addr = web.map(|(listener, addr, page)| {
        servers.push(serve(listener, page, stopped, grace));
        addr
    });
    Ok(RunningService {
        api_addr,
        web_addr,
        api_router,
        stop,
        servers,
    })
}

/// Readiness checks the database (and Redis when configured); metrics watch
/// the database pool.
fn operations(settings: &Settings, database: &Database) -> Result<Operations, StartError> {
    let pinged = database.clone();
    let mut readiness = Readiness::new()
        .timeout(settings.health.check_timeout)
        .with(check_fn("database", move || {
            let database = pinged.clone();
            async move { database.ping().await }
        }));
    if let Some(url) = &settings.redis_url {
        readiness = readiness.with(RedisPing::new(url.expose()).map_err(StartError::Cache)?);
    }
    let metrics = Metrics::new();
    let pool = database.clone();
    metrics.register_pool("database", move || {
        let status = pool.pool_status();
        PoolUsage {
            open: status.open,
            idle: status.idle,
            max: status.max,
        }
    });
    Ok(Operations { readiness, metrics })
}

/// Connects to the configured database.
///
/// # Errors
/// When the URL is malformed or the database cannot be reached.
pub async fn open_database(settings: &Settings) -> Result<Database, StartError> {
    Database::connect(settings.database_url.expose())
        .await
        .map_err(|error| StartError::Database(Box::new(error)))
}

/// What `migrate` does to the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migration {
    /// Applies every migration not yet applied.
    Up,
    /// Undoes the newest `steps` applied migrations.
    Down {
        /// How many.
        steps: u32,
    },
    /// Changes nothing.
    Status,
}

/// Runs `migration` on the configured database, then answers every migration
/// with whether it is applied.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn run_migration(
    settings: &Settings,
    migration: Migration,
) -> Result<Vec<(String, bool)>, StartError> {
    fn failed(error: impl std::error::Error + Send + Sync + 'static) -> StartError {
        StartError::Database(Box::new(error))
    }
    let database = open_database(settings).await?;
    match migration {
        Migration::Up => migrate(&database).await.map_err(failed)?,
        Migration::Down { steps } => rollback(&database, steps).await.map_err(failed)?,
        Migration::Status => {}
    }
    migration_status(&database).await.map_err(failed)
}

/// Adds the demo tasks to an empty task list on the configured database (whose
/// schema must be up to date), and answers how many were added.
///
/// # Errors
/// When the database cannot be reached or the tasks cannot be stored.
pub async fn seed(settings: &Settings) -> Result<usize, StartError> {
    let database = open_database(settings).await?;
    let tasks = SeaOrmTaskRepository::new(database.clone());
    in_unit_of_work(
        &SeaOrmUnitOfWork::new(database),
        Propagation::Required,
        seed_tasks(&tasks),
    )
    .await
    .map_err(StartError::Seed)
}

/// The two-level cache over the configured Redis, or an in-process one.
fn cache_store(settings: &Settings) -> Result<Arc<dyn CacheStore>, StartError> {
    let redis_url = settings.redis_url.as_ref().map(|url| url.expose());
    cache_store_for(redis_url, &settings.cache_key_prefix)
        .map_err(|error| StartError::Cache(Box::new(error)))
}

fn throttle(limit: RateLimit) -> Result<Arc<dyn RateLimiter>, StartError> {
    InMemoryRateLimiter::new(limit)
        .map(|limiter| Arc::new(limiter) as Arc<dyn RateLimiter>)
        .map_err(|error| StartError::RateLimit(Box::new(error)))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, StartError> {
    listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })
}

fn serve(
    listener: TcpListener,
    app: axum::Router,
    mut stopped: watch::Receiver<bool>,
    grace: Duration,
) -> JoinHandle<std::io::Result<()>> {
    tokio::spawn(http::serve(
        listener,
        app,
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        },
        grace,
    ))
}
