//! What a service tells the runtime about itself, and what the runtime hands it
//! while it starts.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use sea_orm_migration::MigratorTrait;
use strata_app_api::application::{
    Cache, DispatcherBuilder, InvalidationLog, Middleware, middleware,
};
use strata_app_api::config::{Config, ConfigError, Environment, Pair};
use strata_app_api::http::HttpSettings;
use strata_app_api::http::health::{HealthCheck, Readiness};
use strata_app_api::metrics::{Metrics, UseCaseMetrics};
use strata_app_api::workers::{Worker, Workers};
use strata_domain::ports::{AuditTrail, CacheStore, RateLimiter, SystemClock, UnitOfWork};
use strata_infrastructure::{
    Database, InMemoryRateLimiter, RateLimit, SeaOrmIdempotencyStore, SeaOrmUnitOfWork,
};
use tokio::net::TcpListener;

use crate::settings::ServiceSettings;

/// Why something the service asked for failed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A service's whole configuration: the runtime's keys and the service's own,
/// read from the same files and `PREFIX_*` variables.
pub type Settings<S> = Pair<ServiceSettings, <S as Service>::Settings>;

/// A service, as the runtime runs it: its name, its own settings and
/// configuration files, its migrations, its demo data, and how it wires itself
/// when it starts. Everything else — the command line, configuration layers,
/// exit statuses, telemetry, the database and its pool, the cache, idempotency
/// keys, readiness and metrics, background workers, servers, signals and
/// graceful shutdown — is the runtime's.
///
/// ```ignore
/// struct Shop;
///
/// #[async_trait]
/// impl Service for Shop {
///     type Settings = ShopSettings;
///     type Migrator = shop_infrastructure::Migrator;
///     fn name() -> &'static str { "shop" }
///     fn version() -> &'static str { env!("CARGO_PKG_VERSION") }
///     fn config_files() -> &'static [(Environment, &'static str)] { &CONFIG_FILES }
///     async fn start(startup: &mut Startup<Self>) -> Result<(), BoxError> { ... }
/// }
///
/// fn main() -> std::process::ExitCode {
///     strata_runtime::main::<Shop>()
/// }
/// ```
#[async_trait]
pub trait Service: Sized + Send + Sync + 'static {
    /// The service's own keys, beside the runtime's ([`ServiceSettings`]).
    type Settings: Config + Clone + Send + Sync + 'static;
    /// The service's migrations; Strata's own tables are added to them.
    type Migrator: MigratorTrait;

    /// The command's name (`shop`): in messages, log lines and, upper-cased, the
    /// prefix of its variables (`SHOP_DATABASE_URL`).
    fn name() -> &'static str;

    /// The service's version, for `--version`.
    fn version() -> &'static str;

    /// The configuration file of each environment, compiled in so the service
    /// runs with no set-up; `--config-dir` reads files from a directory instead.
    fn config_files() -> &'static [(Environment, &'static str)];

    /// The prefix of the service's variables: its name upper-cased, `-` as `_`.
    #[must_use]
    fn env_prefix() -> String {
        Self::name().replace('-', "_").to_ascii_uppercase()
    }

    /// The runtime's keys before any file or variable: named after the service.
    #[must_use]
    fn defaults() -> ServiceSettings {
        ServiceSettings::named(Self::name())
    }

    /// Rules that depend on the environment (production wants a signing key that
    /// outlives the process, say).
    ///
    /// # Errors
    /// The key at fault and why.
    fn check(_settings: &Settings<Self>, _environment: Environment) -> Result<(), ConfigError> {
        Ok(())
    }

    /// What the demo data is, for `seed`'s report (`demo products`).
    #[must_use]
    fn demo_data() -> &'static str {
        "demo items"
    }

    /// Adds the demo data to an empty database; answers how many items it added.
    ///
    /// # Errors
    /// When the data cannot be stored.
    async fn seed(_resources: &Resources<Self>) -> Result<usize, BoxError> {
        Ok(0)
    }

    /// The bounded contexts that keep their data in a database of their own,
    /// beside the service's: each is migrated with the service (`migrate`,
    /// `migrate_on_start`), opened by [`Startup::context`], and may run as a
    /// process of its own (`serve --only <name>`). None unless the service
    /// says so.
    fn contexts(_settings: &Self::Settings) -> Vec<crate::ContextDatabase> {
        Vec::new()
    }

    /// Wires the service: builds its use cases on the runtime's middleware,
    /// binds and serves its routers, and adds its workers and readiness checks.
    ///
    /// # Errors
    /// Why it cannot start.
    async fn start(startup: &mut Startup<Self>) -> Result<(), BoxError>;
}

/// What the runtime opens for a service, for its commands and its start: the
/// settings, the environment, the database and a unit of work over it.
pub struct Resources<S: Service> {
    pub(crate) environment: Environment,
    pub(crate) settings: Settings<S>,
    pub(crate) database: Database,
    pub(crate) unit_of_work: Arc<SeaOrmUnitOfWork>,
}

impl<S: Service> std::fmt::Debug for Resources<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources")
            .field("service", &S::name())
            .field("environment", &self.environment)
            .finish_non_exhaustive()
    }
}

impl<S: Service> Resources<S> {
    pub(crate) fn new(environment: Environment, settings: Settings<S>, database: Database) -> Self {
        let unit_of_work = Arc::new(SeaOrmUnitOfWork::new(database.clone()));
        Self {
            environment,
            settings,
            database,
            unit_of_work,
        }
    }

    /// The service's own settings.
    #[must_use]
    pub fn settings(&self) -> &S::Settings {
        &self.settings.app
    }

    /// The runtime's settings.
    #[must_use]
    pub fn service_settings(&self) -> &ServiceSettings {
        &self.settings.service
    }

    /// The environment the service runs in.
    #[must_use]
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// The service's database.
    #[must_use]
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The unit of work over the database, as the concrete adapter.
    #[must_use]
    pub fn sea_orm_unit_of_work(&self) -> Arc<SeaOrmUnitOfWork> {
        Arc::clone(&self.unit_of_work)
    }

    /// The unit of work over the database.
    #[must_use]
    pub fn unit_of_work(&self) -> Arc<dyn UnitOfWork> {
        Arc::clone(&self.unit_of_work) as Arc<dyn UnitOfWork>
    }
}

/// A port the service listens on, bound before it serves so its address is
/// known (to the web page calling the API, to tests).
#[derive(Debug)]
pub struct Listener {
    name: String,
    addr: SocketAddr,
    socket: TcpListener,
}

impl Listener {
    /// Where it listens: the configured address, with the port the system chose
    /// when port 0 was asked for.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A router on a bound port, ready to serve.
pub(crate) struct Served {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    pub(crate) socket: TcpListener,
    pub(crate) router: axum::Router,
}

/// What a service is handed while it starts: everything of [`Resources`], the
/// pieces the runtime built (cache, idempotency store, metrics, readiness), and
/// where to add its routers, workers and checks.
pub struct Startup<S: Service> {
    pub(crate) resources: Resources<S>,
    pub(crate) cache: Arc<Cache>,
    pub(crate) cache_store: Arc<dyn CacheStore>,
    pub(crate) invalidation_log: Option<Arc<InvalidationLog>>,
    pub(crate) catch_up_counters: Arc<crate::running::CatchUpCounters>,
    pub(crate) idempotency: Arc<SeaOrmIdempotencyStore>,
    pub(crate) audit: Arc<dyn AuditTrail>,
    pub(crate) metrics: Metrics,
    pub(crate) readiness: Readiness,
    pub(crate) workers: Workers,
    pub(crate) event_log: Option<Arc<dyn strata_infrastructure::consumer::PartitionLog>>,
    pub(crate) groups: crate::running::Groups,
    pub(crate) consumer_gauges: crate::consumer_metrics::ConsumerGauges,
    pub(crate) tcc_recovery: bool,
    /// The databases whose barrier rows are purged by a worker already.
    pub(crate) barrier_purges: std::collections::BTreeSet<String>,
    pub(crate) contexts: std::collections::BTreeMap<&'static str, crate::Context>,
    pub(crate) consumers: crate::dead_letters::Consumers,
    pub(crate) served: Vec<Served>,
    pub(crate) announcements: Vec<String>,
}

impl<S: Service> std::fmt::Debug for Startup<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Startup")
            .field("service", &S::name())
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl<S: Service> std::ops::Deref for Startup<S> {
    type Target = Resources<S>;

    fn deref(&self) -> &Resources<S> {
        &self.resources
    }
}

impl<S: Service> Startup<S> {
    /// The middleware every use case runs through, outermost first: metrics,
    /// then the standard chain — logging, the audit trail, authorization,
    /// validation, caching (unless `[cache] enabled = false`), idempotency keys,
    /// the unit of work, the idempotency record, the audit record and cache
    /// invalidation (see
    /// `strata_app_api::application::middleware::Standard`).
    #[must_use]
    pub fn middleware(&self) -> Vec<Arc<dyn Middleware>> {
        self.middleware_over(
            self.unit_of_work(),
            Arc::clone(&self.idempotency),
            Arc::clone(&self.audit),
            self.invalidation_log.clone(),
        )
    }

    fn middleware_over(
        &self,
        unit_of_work: Arc<dyn UnitOfWork>,
        idempotency: Arc<SeaOrmIdempotencyStore>,
        audit: Arc<dyn AuditTrail>,
        invalidation_log: Option<Arc<InvalidationLog>>,
    ) -> Vec<Arc<dyn Middleware>> {
        let lease = self.service_settings().idempotency.lease;
        let mut chain: Vec<Arc<dyn Middleware>> =
            vec![Arc::new(UseCaseMetrics::new(self.metrics.clone()))];
        let mut standard = middleware::Standard::new(unit_of_work);
        if self.service_settings().cache.enabled {
            standard = standard.with_cache(Arc::clone(&self.cache));
        }
        if let Some(log) = invalidation_log {
            standard = standard.with_invalidation_log(log);
        }
        chain.extend(
            standard
                .with_idempotency(idempotency as _)
                .idempotency_lease(lease)
                .with_audit(audit, Arc::new(SystemClock))
                .build(),
        );
        chain
    }

    /// The context this process runs alone (`serve --only <name>`), if any:
    /// the service then wires that context only.
    #[must_use]
    pub fn only(&self) -> Option<&str> {
        self.service_settings().only.as_deref()
    }

    /// Opens context `name`'s database (see [`Service::contexts`]), migrated
    /// when `migrate_on_start` is set, with its readiness check
    /// (`database_<name>`), pool metrics, and the purges of its idempotency
    /// keys and audit trail; the same context on later calls.
    ///
    /// # Errors
    /// When the service has no such context, or its database cannot be
    /// opened or migrated.
    pub async fn context(&mut self, name: &str) -> Result<crate::Context, BoxError> {
        if let Some(context) = self.contexts.get(name) {
            return Ok(context.clone());
        }
        let declared = S::contexts(self.settings())
            .into_iter()
            .find(|context| context.name() == name)
            .ok_or_else(|| format!("{} has no context `{name}`", S::name()))?;
        let service = self.service_settings().clone();
        let database = crate::running::connect(declared.url(), &service).await?;
        if service.migrate_on_start {
            declared
                .migrate(&database, crate::Migration::Up)
                .await
                .map_err(|error| format!("the {name} database could not be migrated: {error}"))?;
        }
        let name = declared.name();
        crate::running::register_pools(&self.metrics, &database, &format!("database_{name}"));
        let pinged = database.clone();
        self.readiness.add(strata_app_api::http::health::check_fn(
            format!("database_{name}"),
            move || {
                let database = pinged.clone();
                async move { database.ping().await }
            },
        ));
        let idempotency = Arc::new(
            SeaOrmIdempotencyStore::new(database.clone())
                .with_retention(service.idempotency.retention),
        );
        let audit: Arc<dyn AuditTrail> = Arc::new(strata_infrastructure::SeaOrmAuditTrail::new(
            database.clone(),
        ));
        self.workers.add(crate::running::idempotency_purge(
            format!("{name}_idempotency_key_purge"),
            Arc::clone(&idempotency),
            &service,
        ));
        self.workers.add(crate::running::audit_purge(
            format!("{name}_audit_purge"),
            Arc::clone(&audit),
            &service,
        ));
        let invalidation_log = crate::running::invalidation_log(
            format!("{name}_cache_invalidation_catch_up"),
            &database,
            &self.cache,
            &self.cache_store,
            &service,
            &mut self.workers,
            &self.catch_up_counters,
        )
        .await;
        let unit_of_work = Arc::new(SeaOrmUnitOfWork::new(database.clone()));
        let middleware = self.middleware_over(
            Arc::clone(&unit_of_work) as Arc<dyn UnitOfWork>,
            Arc::clone(&idempotency),
            Arc::clone(&audit),
            invalidation_log,
        );
        let context = crate::Context {
            name,
            database,
            unit_of_work,
            audit,
            middleware,
        };
        self.contexts.insert(name, context.clone());
        Ok(context)
    }

    /// A dispatcher builder with [`Startup::middleware`] in place: register the
    /// use cases and build it.
    #[must_use]
    pub fn dispatcher(&self) -> DispatcherBuilder {
        strata_app_api::application::Dispatcher::builder().middleware(self.middleware())
    }

    /// The audit trail every command is recorded in, for the query that reads it
    /// (`strata_app_api::application::audit`).
    #[must_use]
    pub fn audit_trail(&self) -> Arc<dyn AuditTrail> {
        Arc::clone(&self.audit)
    }

    /// The query cache (two-level over Redis when `redis_url` is set, otherwise
    /// in-process).
    #[must_use]
    pub fn cache(&self) -> Arc<Cache> {
        Arc::clone(&self.cache)
    }

    /// The store behind the query cache.
    #[must_use]
    pub fn cache_store(&self) -> Arc<dyn CacheStore> {
        Arc::clone(&self.cache_store)
    }

    /// The service's metrics registry, served at `/metrics`.
    #[must_use]
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// The readiness checks behind `/health/ready`: the database, Redis when
    /// configured, each background worker, and what the service adds.
    #[must_use]
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// The readiness checks and metrics registry together, for the operational
    /// routes (`/health/ready`, `/metrics`).
    #[must_use]
    pub fn operations(&self) -> strata_app_api::http::Operations {
        strata_app_api::http::Operations {
            readiness: self.readiness(),
            metrics: self.metrics(),
        }
    }

    /// Adds a readiness check of the service's own.
    pub fn add_check(&mut self, check: impl HealthCheck) {
        self.readiness.add(check);
    }

    /// What the HTTP layers need: the request timeout and CORS origins.
    #[must_use]
    pub fn http_settings(&self) -> HttpSettings {
        self.service_settings().http_settings()
    }

    /// The per-client request limiter `[http.client_limit]` configures (600
    /// requests a minute, bursts of 120, unless set otherwise), or none when it
    /// is switched off.
    ///
    /// # Errors
    /// A limit that allows nothing (refused at start-up by the settings' check
    /// already).
    pub fn client_limiter(&self) -> Result<Option<Arc<dyn RateLimiter>>, BoxError> {
        let limit = &self.service_settings().http.client_limit;
        if !limit.enabled {
            return Ok(None);
        }
        let limiter = InMemoryRateLimiter::new(
            RateLimit::per(limit.requests, limit.period).with_burst(limit.burst),
        )?;
        Ok(Some(Arc::new(limiter)))
    }

    /// Binds `addr` for the router called `name` (`api`, `web`).
    ///
    /// # Errors
    /// When the address cannot be bound (a port in use).
    pub async fn bind(&mut self, name: &str, addr: SocketAddr) -> Result<Listener, BoxError> {
        let socket = TcpListener::bind(addr)
            .await
            .map_err(|source| BindError { addr, source })?;
        let addr = socket
            .local_addr()
            .map_err(|source| BindError { addr, source })?;
        Ok(Listener {
            name: name.to_owned(),
            addr,
            socket,
        })
    }

    /// Serves `router` on `listener` once the service has started, until
    /// shutdown, letting requests in flight finish within the grace period.
    pub fn serve(&mut self, listener: Listener, router: axum::Router) {
        self.served.push(Served {
            name: listener.name,
            addr: listener.addr,
            socket: listener.socket,
            router,
        });
    }

    /// The coordinator of the service's distributed transactions, its tables
    /// in the service's database, calling branches over HTTP with `token` as
    /// the bearer of each call (a service token). The first call also starts
    /// the recovery worker (`tcc_recovery`), which finishes what an initiator
    /// left on any instance.
    pub fn coordinator(
        &mut self,
        token: Option<strata_infrastructure::tcc::TokenSource>,
    ) -> strata_infrastructure::tcc::Coordinator {
        let config = self.service_settings().tcc.clone();
        let mut transport =
            strata_infrastructure::tcc::HttpBranchTransport::new(config.call_timeout);
        if let Some(token) = token {
            transport = transport.with_token(token);
        }
        let coordinator = strata_infrastructure::tcc::Coordinator::new(
            self.database().clone(),
            Arc::new(transport),
            config.coordinator_settings(),
        );
        if !self.tcc_recovery {
            self.tcc_recovery = true;
            let counts = Arc::default();
            crate::tcc::report_to(&self.metrics, &counts);
            self.workers.add(crate::tcc::RecoveryWorker {
                coordinator: coordinator.clone(),
                interval: config.recovery_interval,
                counts,
            });
        }
        coordinator
    }

    /// The barrier of the service's TCC participants (see
    /// `strata_app_api::tcc`); the first call also starts the worker that
    /// purges its rows after `tcc.barrier_retention`.
    pub fn tcc_barrier(&mut self) -> Arc<dyn strata_domain::ports::TccBarrier> {
        let database = self.database().clone();
        self.barrier_on(database, "tcc_barrier_purge".to_owned())
    }

    /// The barrier of TCC participants in `context`, its rows in the
    /// context's database; the first call also starts the worker
    /// (`<context>_tcc_barrier_purge`) that purges them.
    pub fn context_barrier(
        &mut self,
        context: &crate::Context,
    ) -> Arc<dyn strata_domain::ports::TccBarrier> {
        self.barrier_on(
            context.database.clone(),
            format!("{}_tcc_barrier_purge", context.name),
        )
    }

    fn barrier_on(
        &mut self,
        database: Database,
        purge: String,
    ) -> Arc<dyn strata_domain::ports::TccBarrier> {
        let barrier = strata_infrastructure::tcc::SeaOrmTccBarrier::new(database);
        if self.barrier_purges.insert(purge.clone()) {
            let purging = barrier.clone();
            let retention = self.service_settings().tcc.barrier_retention;
            self.workers.add(strata_app_api::workers::Periodic::new(
                purge,
                self.service_settings().outbox.purge_interval,
                move || {
                    let barrier = purging.clone();
                    async move {
                        let purged = barrier.purge(retention).await?;
                        if purged > 0 {
                            tracing::info!(purged, "purged TCC barrier rows past their retention");
                        }
                        Ok(())
                    }
                },
            ));
        }
        Arc::new(barrier)
    }

    /// Two-phase transactional messages in the service's database: prepared,
    /// committed by a local transaction, resolved by the check-back worker
    /// after `outbox.message_timeout`.
    pub fn transactional_messages(&self) -> Arc<dyn strata_domain::ports::TransactionalMessages> {
        Arc::new(strata_infrastructure::SeaOrmTransactionalMessages::new(
            self.database().clone(),
            self.service_settings().outbox.message_timeout,
        ))
    }

    /// Runs `worker` in the background from start to shutdown.
    pub fn worker(&mut self, worker: impl Worker) {
        self.workers.add(worker);
    }

    /// Runs an ordered consumer named `name` of the service's events (the
    /// in-process bus, or Redis Streams when `redis_url` is set): `handler`
    /// applies each message, in order per aggregate, effectively once.
    ///
    /// # Errors
    /// When the service's bus keeps no log to read in order (RabbitMQ, with
    /// `rabbitmq_url` set): its consumers run as groups
    /// ([`Startup::consume_group`]).
    pub fn consume(
        &mut self,
        name: impl Into<String>,
        handler: impl strata_app_api::messaging::MessageHandler,
    ) -> Result<(), BoxError> {
        let database = self.database().clone();
        let unit_of_work = self.unit_of_work();
        self.ordered_over(name.into(), Arc::new(handler), database, unit_of_work)
    }

    /// Runs a consumer named `name` of the service's events whose effects
    /// and inbox live in `context`'s database: ordered when the bus keeps a
    /// log ([`Startup::consume`]), otherwise a group with default settings
    /// ([`Startup::consume_group`]).
    ///
    /// # Errors
    /// When the broker's settings are not usable.
    pub fn consume_in(
        &mut self,
        context: &crate::Context,
        name: impl Into<String>,
        handler: impl strata_app_api::messaging::MessageHandler,
    ) -> Result<(), BoxError> {
        let database = context.database.clone();
        let unit_of_work = context.unit_of_work();
        if self.reads_in_order() {
            self.ordered_over(name.into(), Arc::new(handler), database, unit_of_work)
        } else {
            self.group_over(
                name.into(),
                Arc::new(handler),
                strata_infrastructure::consumer::GroupSettings::default(),
                database,
                unit_of_work,
            )
        }
    }

    fn ordered_over(
        &mut self,
        name: String,
        handler: Arc<dyn strata_app_api::messaging::MessageHandler>,
        database: Database,
        unit_of_work: Arc<dyn UnitOfWork>,
    ) -> Result<(), BoxError> {
        let Some(log) = &self.event_log else {
            return Err(
                "ordered consumers read a log, and RabbitMQ keeps none: consume it as a group"
                    .into(),
            );
        };
        let store = strata_infrastructure::consumer::ConsumerStore::new(database);
        self.consumers.add(
            &name,
            crate::dead_letters::ConsumerEntry {
                store: store.clone(),
                unit_of_work: Arc::clone(&unit_of_work),
                handler: Arc::clone(&handler),
            },
        );
        self.workers.add(
            crate::OrderedConsumer::new(
                name,
                Arc::clone(log),
                store,
                unit_of_work,
                handler,
                self.service_settings().consumers.clone(),
            )
            .reporting_to(self.consumer_gauges.clone()),
        );
        Ok(())
    }

    /// Whether the service's bus keeps a log that ordered consumers read
    /// ([`Startup::consume`]); RabbitMQ does not.
    #[must_use]
    pub fn reads_in_order(&self) -> bool {
        self.event_log.is_some()
    }

    /// Runs a group consumer named `name` of the service's events: the
    /// instances share its messages, unordered, each applied effectively once
    /// by `handler` and acknowledged after its commit. The group's members
    /// are the instances; a message one of them leaves unacknowledged longer
    /// than `settings.claim_idle` goes to another, and one delivered more
    /// than `settings.max_deliveries` times is dead-lettered by the broker.
    ///
    /// # Errors
    /// When the broker's settings are not usable.
    pub fn consume_group(
        &mut self,
        name: impl Into<String>,
        handler: impl strata_app_api::messaging::MessageHandler,
        settings: strata_infrastructure::consumer::GroupSettings,
    ) -> Result<(), BoxError> {
        let database = self.database().clone();
        let unit_of_work = self.unit_of_work();
        self.group_over(
            name.into(),
            Arc::new(handler),
            settings,
            database,
            unit_of_work,
        )
    }

    fn group_over(
        &mut self,
        name: String,
        handler: Arc<dyn strata_app_api::messaging::MessageHandler>,
        settings: strata_infrastructure::consumer::GroupSettings,
        database: Database,
        unit_of_work: Arc<dyn UnitOfWork>,
    ) -> Result<(), BoxError> {
        let member = uuid::Uuid::new_v4().simple().to_string();
        let subscription = self.groups.join(&name, &member, settings)?;
        let store = strata_infrastructure::consumer::ConsumerStore::new(database);
        self.consumers.add(
            &name,
            crate::dead_letters::ConsumerEntry {
                store: store.clone(),
                unit_of_work: Arc::clone(&unit_of_work),
                handler: Arc::clone(&handler),
            },
        );
        self.workers.add(
            crate::GroupConsumer::new(
                name,
                subscription,
                store,
                unit_of_work,
                handler,
                crate::GroupConsumerSettings::default(),
            )
            .reporting_to(self.consumer_gauges.clone()),
        );
        Ok(())
    }

    /// The dead letters of the service's consumers — those it runs now and
    /// those it adds later — for an operator to list and apply again
    /// (`strata_app_api::application::consumers`).
    #[must_use]
    pub fn consumer_dead_letters(&self) -> Arc<dyn strata_domain::ports::ConsumerDeadLetters> {
        Arc::new(crate::dead_letters::ConsumerOperator {
            consumers: self.consumers.clone(),
        })
    }

    /// A line to print once the service is serving (where to find it).
    pub fn announce(&mut self, line: impl Into<String>) {
        self.announcements.push(line.into());
    }
}

/// An address could not be listened on.
#[derive(Debug, thiserror::Error)]
#[error("could not listen on {addr}")]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// Why.
    #[source]
    pub source: std::io::Error,
}
