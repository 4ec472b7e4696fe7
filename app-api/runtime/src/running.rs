//! Starting a service and stopping it again.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use strata_app_api::application::{Cache, CatchUpError, InvalidationLog};
use strata_app_api::config::Environment;
use strata_app_api::http::health::{Readiness, check_fn};
use strata_app_api::metrics::{Metrics, PoolUsage};
use strata_app_api::workers::{Periodic, RestartPolicy, RunningWorkers, Workers};
use strata_domain::ports::{AuditTrail, CacheStore, IdempotencyStore, in_unit_of_work};
use strata_domain::ports::{DeadLetter, DeadLetters, EventPublisher, Propagation};
use strata_infrastructure::consumer::{
    ConsumerStore, GroupSettings, GroupSubscription, InProcessGroup, PartitionLog,
    RedisStreamsGroup, RedisStreamsLog,
};
use strata_infrastructure::outbox::{
    InProcessBus, InProcessReplay, OutboxRelay, OutboxStatus, RedisStreamsConfig,
    RedisStreamsPublisher,
};
use strata_infrastructure::{
    Database, PoolStatus, SeaOrmAuditTrail, SeaOrmIdempotencyStore, SeaOrmInvalidationJournal,
    SeaOrmOutbox, SeaOrmTransactionalMessages, SeaOrmUnitOfWork, cache_store_for, migrate_down,
    migrate_up, migration_status,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::service::{BoxError, Resources, Service, Settings, Startup};

/// The service could not start, or a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("the database could not be prepared")]
    Database(#[source] BoxError),
    /// The demo data could not be added.
    #[error("the demo data could not be added")]
    Seed(#[source] BoxError),
    /// The cache could not be set up.
    #[error("the cache could not be set up")]
    Cache(#[source] BoxError),
    /// The event bus the outbox is relayed into could not be set up.
    #[error("the event bus could not be set up")]
    EventBus(#[source] BoxError),
    /// The service's own start failed (a port in use, a key it could not use).
    #[error("{0} could not start")]
    Service(&'static str, #[source] BoxError),
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

/// Opens the database the settings name.
///
/// # Errors
/// When the URL is malformed or the database cannot be reached.
pub async fn open_database<S: Service>(settings: &Settings<S>) -> Result<Database, StartError> {
    connect(&settings.service.database_url, &settings.service).await
}

/// Opens the database at `url` with the service's connection options.
pub(crate) async fn connect(
    url: &strata_app_api::config::ConnectionUrl,
    service: &crate::ServiceSettings,
) -> Result<Database, StartError> {
    Database::connect_with(url.expose(), &service.database_options())
        .await
        .map_err(|error| {
            // The driver may quote the URL it could not use, password and all.
            let text = error.to_string().replace(url.expose(), &url.masked());
            StartError::Database(text.into())
        })
}

/// Runs `migration` on the service's database and on each of its contexts'
/// (the one `only` names, when set), then answers every migration, Strata's
/// included, with whether it is applied; a context's are named
/// `<context>/<migration>`.
///
/// # Errors
/// When a database cannot be reached or a migration fails.
pub async fn migrate<S: Service>(
    settings: &Settings<S>,
    migration: Migration,
) -> Result<Vec<(String, bool)>, StartError> {
    let database = open_database::<S>(settings).await?;
    let failed = |error: sea_orm_migration::DbErr| StartError::Database(Box::new(error));
    match migration {
        Migration::Up => migrate_up::<S::Migrator>(&database).await.map_err(failed)?,
        Migration::Down { steps } => migrate_down::<S::Migrator>(&database, steps)
            .await
            .map_err(failed)?,
        Migration::Status => {}
    }
    let mut status = migration_status::<S::Migrator>(&database)
        .await
        .map_err(failed)?;
    for context in S::contexts(&settings.app) {
        if settings
            .service
            .only
            .as_deref()
            .is_some_and(|only| only != context.name())
        {
            continue;
        }
        let database = connect(context.url(), &settings.service).await?;
        let applied = context
            .migrate(&database, migration)
            .await
            .map_err(failed)?;
        status.extend(
            applied
                .into_iter()
                .map(|(name, applied)| (format!("{}/{name}", context.name()), applied)),
        );
    }
    Ok(status)
}

/// Adds the service's demo data to its database (whose schema must be up to
/// date); answers how many items were added.
///
/// # Errors
/// When the database cannot be reached or the data cannot be stored.
pub async fn seed<S: Service>(
    environment: Environment,
    settings: Settings<S>,
) -> Result<usize, StartError> {
    let database = open_database::<S>(&settings).await?;
    S::seed(&Resources::<S>::new(environment, settings, database))
        .await
        .map_err(StartError::Seed)
}

/// What the operator asks of the outbox from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxCommand {
    /// How many events wait, how many are dead, and the dead letters.
    Status,
    /// Gives dead letter `id` a fresh set of attempts.
    Retry(uuid::Uuid),
}

/// What an [`OutboxCommand`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxReport {
    /// The outbox's state, and its newest dead letters.
    Status(OutboxStatus, Vec<DeadLetter>),
    /// Whether the dead letter was there to retry.
    Retried(bool),
}

/// Runs `command` on the service's outbox.
///
/// # Errors
/// When the database cannot be opened or the outbox read or written.
pub async fn outbox<S: Service>(
    settings: &Settings<S>,
    command: OutboxCommand,
) -> Result<OutboxReport, StartError> {
    let database = open_database::<S>(settings).await?;
    let outbox = SeaOrmOutbox::new(database.clone());
    let failed = |error: strata_domain::RepositoryError| StartError::Database(Box::new(error));
    match command {
        OutboxCommand::Status => Ok(OutboxReport::Status(
            outbox.status().await.map_err(failed)?,
            outbox
                .dead_letters(strata_domain::PageRequest::first())
                .await
                .map_err(failed)?
                .items,
        )),
        OutboxCommand::Retry(id) => {
            let unit_of_work = SeaOrmUnitOfWork::new(database);
            let retried = in_unit_of_work(&unit_of_work, Propagation::Required, outbox.retry(id))
                .await
                .map_err(failed)?;
            Ok(OutboxReport::Retried(retried))
        }
    }
}

/// A started service: where it listens, and how to stop it.
pub struct Running<S: Service> {
    addresses: BTreeMap<String, SocketAddr>,
    routers: BTreeMap<String, axum::Router>,
    announcements: Vec<String>,
    stop: watch::Sender<bool>,
    servers: Vec<(String, JoinHandle<std::io::Result<()>>)>,
    workers: RunningWorkers,
    grace: Duration,
    database: Database,
    /// The databases of the contexts it opened.
    contexts: Vec<Database>,
    _service: std::marker::PhantomData<S>,
}

impl<S: Service> std::fmt::Debug for Running<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("service", &S::name())
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

impl<S: Service> Running<S> {
    /// Where the router called `name` (`api`, `web`) listens.
    #[must_use]
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.addresses.get(name).copied()
    }

    /// The router served as `name`, for tests that inspect its routes.
    #[must_use]
    pub fn router(&self, name: &str) -> Option<&axum::Router> {
        self.routers.get(name)
    }

    /// The lines the service asked to print once serving.
    #[must_use]
    pub fn announcements(&self) -> &[String] {
        &self.announcements
    }

    /// The service's database.
    #[must_use]
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Stops accepting connections and tells the workers to stop, at once; lets
    /// requests in flight finish and workers stop within one grace period; then
    /// waits for the commits already under way (and their after-commit hooks).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let servers = async {
            for (name, server) in self.servers {
                match server.await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::error!(server = %name, error = %error, "a server ended with an error");
                    }
                    Err(error) => {
                        tracing::error!(server = %name, error = %error, "a server task failed");
                    }
                }
            }
        };
        let ((), _overran) = tokio::join!(servers, self.workers.shutdown(self.grace));
        self.database.settle().await;
        for database in &self.contexts {
            database.settle().await;
        }
    }
}

/// Opens the database and, as configured, migrates and seeds it; builds the
/// cache, idempotency store, metrics, readiness and workers; lets the service
/// wire itself; then serves its routers and starts the workers.
///
/// # Errors
/// When the database cannot be prepared, the cache cannot be set up, or the
/// service's own start fails.
pub async fn start<S: Service>(
    environment: Environment,
    settings: Settings<S>,
) -> Result<Running<S>, StartError> {
    let service = settings.service.clone();
    if let Some(only) = &service.only
        && !S::contexts(&settings.app)
            .iter()
            .any(|context| context.name() == only)
    {
        let known: Vec<&str> = S::contexts(&settings.app)
            .iter()
            .map(crate::ContextDatabase::name)
            .collect();
        return Err(StartError::Service(
            S::name(),
            format!(
                "`only` names `{only}`, which is not one of its contexts ({})",
                known.join(", ")
            )
            .into(),
        ));
    }
    let database = open_database::<S>(&settings).await?;
    if service.migrate_on_start {
        migrate_up::<S::Migrator>(&database)
            .await
            .map_err(|error| StartError::Database(Box::new(error)))?;
    }
    let resources = Resources::<S>::new(environment, settings, database.clone());
    // A context run alone has no demo data of its own.
    if service.seed && service.only.is_none() {
        let added = S::seed(&resources).await.map_err(StartError::Seed)?;
        if added > 0 {
            tracing::info!(added, "added the demo data to an empty database");
        }
    }

    let cache_store = cache_store_for(
        service.redis_url.as_ref().map(|url| url.expose()),
        &service.cache_key_prefix,
    )
    .map_err(|error| StartError::Cache(Box::new(error)))?;
    let cache = Arc::new(Cache::new(Arc::clone(&cache_store)));
    let idempotency = Arc::new(
        SeaOrmIdempotencyStore::new(database.clone()).with_retention(service.idempotency.retention),
    );
    let audit = Arc::new(SeaOrmAuditTrail::new(database.clone()));
    let metrics = Metrics::new();
    register_pools(&metrics, &database, "database");
    let readiness = readiness(&database, &cache_store, service.health.check_timeout);
    let mut workers = Workers::new(RestartPolicy::default());
    workers.add(idempotency_purge(
        "idempotency_key_purge",
        Arc::clone(&idempotency),
        &service,
    ));
    workers.add(audit_purge(
        "audit_purge",
        Arc::clone(&audit) as _,
        &service,
    ));
    let catch_up_counters = Arc::new(CatchUpCounters::default());
    catch_up_counters.report_to(&metrics);
    let invalidation_log = invalidation_log(
        "cache_invalidation_catch_up",
        &database,
        &cache,
        &cache_store,
        &service,
        &mut workers,
        &catch_up_counters,
    )
    .await;

    let EventBus {
        publisher,
        log: event_log,
        groups,
    } = event_bus(&service).map_err(StartError::EventBus)?;
    let consumer_gauges = crate::consumer_metrics::ConsumerGauges::default();
    consumer_gauges.report_to(&metrics);
    if let (Groups::InProcess(bus), true) = (&groups, service.outbox.relay) {
        workers.add(in_process_replay(&database, bus).await?);
    }
    if service.outbox.relay {
        let relay = OutboxRelay::new(database.clone(), publisher, service.outbox.relay_settings());
        let counters = Arc::new(crate::outbox::RelayCounters::default());
        crate::outbox::report_to(&metrics, &counters);
        let purging = relay.clone();
        workers.add(crate::outbox::RelayWorker {
            relay,
            outbox: SeaOrmOutbox::new(database.clone()),
            counters,
        });
        let inbox = ConsumerStore::new(database.clone());
        let inbox_retention = service.outbox.retention;
        workers.add(Periodic::new(
            "consumer_inbox_purge",
            service.outbox.purge_interval,
            move || {
                let inbox = inbox.clone();
                async move {
                    let purged = inbox.purge_inbox(inbox_retention).await?;
                    if purged > 0 {
                        tracing::info!(purged, "purged consumer inbox rows past their retention");
                    }
                    Ok(())
                }
            },
        ));
        let messages =
            SeaOrmTransactionalMessages::new(database.clone(), service.outbox.message_timeout);
        let message_retention = service.outbox.retention;
        workers.add(Periodic::new(
            "message_check_back",
            service.outbox.check_back_interval,
            move || {
                let messages = messages.clone();
                async move {
                    // Each round takes what is due, a thousand at a time.
                    while messages.check_back(1_000).await?.failed == 1_000 {}
                    let purged = messages.purge(message_retention).await?;
                    if purged > 0 {
                        tracing::info!(
                            purged,
                            "purged resolved two-phase messages past their retention"
                        );
                    }
                    Ok(())
                }
            },
        ));
        workers.add(Periodic::new(
            "outbox_purge",
            service.outbox.purge_interval,
            move || {
                let relay = purging.clone();
                async move {
                    let purged = relay.purge_published().await?;
                    if purged > 0 {
                        tracing::info!(
                            purged,
                            "purged published outbox events past their retention"
                        );
                    }
                    Ok(())
                }
            },
        ));
    }

    let mut startup = Startup {
        resources,
        cache,
        cache_store,
        invalidation_log,
        catch_up_counters,
        idempotency,
        audit,
        metrics: metrics.clone(),
        readiness: readiness.clone(),
        workers,
        event_log,
        groups,
        consumer_gauges,
        tcc_recovery: false,
        barrier_purges: std::collections::BTreeSet::new(),
        contexts: BTreeMap::new(),
        consumers: crate::dead_letters::Consumers::default(),
        served: Vec::new(),
        announcements: Vec::new(),
    };
    S::start(&mut startup)
        .await
        .map_err(|error| StartError::Service(S::name(), error))?;

    // Every consumer of the in-process bus has subscribed: what none of them
    // needs is not kept.
    if let Groups::InProcess(bus) = &startup.groups {
        bus.all_readers_subscribed();
    }
    for check in startup.workers.health_checks() {
        readiness.add(check);
    }
    startup.workers.report_to(&metrics);
    let contexts = startup
        .contexts
        .values()
        .map(|context| context.database.clone())
        .collect();
    let workers = startup.workers.start();

    let grace = service.http.shutdown_grace;
    let limits = service.connection_limits();
    let (stop, stopped) = watch::channel(false);
    let mut addresses = BTreeMap::new();
    let mut routers = BTreeMap::new();
    let mut servers = Vec::new();
    for served in startup.served {
        addresses.insert(served.name.clone(), served.addr);
        routers.insert(served.name.clone(), served.router.clone());
        let mut stopped = stopped.clone();
        let server = tokio::spawn(strata_app_api::http::serve(
            served.socket,
            served.router,
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
            grace,
            limits,
        ));
        servers.push((served.name, server));
    }
    Ok(Running {
        addresses,
        routers,
        announcements: startup.announcements,
        stop,
        servers,
        workers,
        grace,
        database,
        contexts,
        _service: std::marker::PhantomData,
    })
}

/// Reports `database`'s pools as `{name}` (writes) and `{name}_reads`.
pub(crate) fn register_pools(metrics: &Metrics, database: &Database, name: &str) {
    let usage = |status: PoolStatus| PoolUsage {
        open: status.open,
        idle: status.idle,
        max: status.max,
    };
    let writes = database.clone();
    metrics.register_pool(name, move || usage(writes.pool_status()));
    let reads = database.clone();
    metrics.register_pool(format!("{name}_reads"), move || {
        usage(reads.read_pool_status())
    });
}

/// Forgets the idempotency keys of `store` past their retention, every
/// `idempotency.purge_interval`.
pub(crate) fn idempotency_purge(
    name: impl Into<String>,
    store: Arc<SeaOrmIdempotencyStore>,
    service: &crate::ServiceSettings,
) -> impl strata_app_api::workers::Worker {
    Periodic::new(name, service.idempotency.purge_interval, move || {
        let store = Arc::clone(&store);
        async move {
            let purged = store.purge_expired().await?;
            if purged > 0 {
                tracing::info!(purged, "purged idempotency keys past their retention");
            }
            Ok(())
        }
    })
}

/// With a cache that outlives the process, the log of the invalidations
/// `database`'s units of work owe: what a previous run left owed is applied
/// now, before anything is served (unless the cache cannot be reached: then
/// the worker applies it once it can), and a worker named `name` applies what
/// stays owed every `cache.catch_up_interval`. An unreachable cache is not the
/// worker's failure — readiness reports the cache itself — so the worker
/// keeps its interval and applies the debt as soon as the cache is back. None
/// with an in-process cache (it died with the process that owed it anything)
/// or with caching off.
pub(crate) async fn invalidation_log(
    name: impl Into<String>,
    database: &Database,
    cache: &Arc<Cache>,
    store: &Arc<dyn CacheStore>,
    service: &crate::ServiceSettings,
    workers: &mut Workers,
    counters: &Arc<CatchUpCounters>,
) -> Option<Arc<InvalidationLog>> {
    if !service.cache.enabled || !store.is_remote() {
        return None;
    }
    let log = Arc::new(InvalidationLog::new(Arc::new(
        SeaOrmInvalidationJournal::new(database.clone()),
    )));
    match log.catch_up(cache, Duration::ZERO).await {
        Ok(0) => {}
        Ok(applied) => {
            counters.applied(applied);
            tracing::info!(
                applied,
                "applied cache invalidations a previous run left owed"
            );
        }
        Err(error) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                error = %strata_app_api::application::error_chain(&error),
                "cache invalidations left owed could not be applied yet; the catch-up retries"
            );
        }
    }
    let (after, interval) = (
        service.cache.catch_up_after,
        service.cache.catch_up_interval,
    );
    let (caught_up, cache, counters) = (Arc::clone(&log), Arc::clone(cache), Arc::clone(counters));
    workers.add(Periodic::new(name, interval, move || {
        let (log, cache, counters) = (
            Arc::clone(&caught_up),
            Arc::clone(&cache),
            Arc::clone(&counters),
        );
        async move {
            match log.catch_up(&cache, after).await {
                Ok(0) => {}
                Ok(applied) => {
                    counters.applied(applied);
                    tracing::warn!(
                        applied,
                        "applied cache invalidations their commits had not applied"
                    );
                }
                Err(CatchUpError::Cache(error)) => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        error = %strata_app_api::application::error_chain(&error),
                        "the cache cannot apply owed invalidations yet; trying again in {:?}",
                        interval
                    );
                }
                Err(error) => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    return Err(error.into());
                }
            }
            Ok(())
        }
    }));
    Some(log)
}

/// What the catch-ups of owed cache invalidations did, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct CatchUpCounters {
    /// Owed invalidations a catch-up applied (their commits had not).
    caught_up: AtomicU64,
    /// Catch-ups that could not apply what was owed.
    failed: AtomicU64,
}

impl CatchUpCounters {
    fn applied(&self, entries: usize) {
        self.caught_up.fetch_add(
            u64::try_from(entries).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Reports the counters on every scrape.
    pub(crate) fn report_to(self: &Arc<Self>, metrics: &Metrics) {
        metrics.register_collector(Box::new(CatchUpCollector(Arc::clone(self))));
    }
}

#[derive(Debug)]
struct CatchUpCollector(Arc<CatchUpCounters>);

impl strata_app_api::metrics::prometheus::collector::Collector for CatchUpCollector {
    fn encode(
        &self,
        mut encoder: strata_app_api::metrics::prometheus::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use strata_app_api::metrics::prometheus::encoding::EncodeMetric;
        use strata_app_api::metrics::prometheus::metrics::counter::ConstCounter;
        for (name, help, value) in [
            (
                "cache_invalidations_caught_up",
                "Cache invalidations a catch-up applied because their commit's own had not",
                &self.0.caught_up,
            ),
            (
                "cache_invalidation_catch_up_failures",
                "Catch-ups of owed cache invalidations that could not apply them",
                &self.0.failed,
            ),
        ] {
            let metric = ConstCounter::new(value.load(Ordering::Relaxed));
            let metric_encoder =
                encoder.encode_descriptor(name, help, None, metric.metric_type())?;
            metric.encode(metric_encoder)?;
        }
        Ok(())
    }
}

/// Forgets the entries of `trail` past `audit.retention`, every
/// `audit.purge_interval`.
pub(crate) fn audit_purge(
    name: impl Into<String>,
    trail: Arc<dyn AuditTrail>,
    service: &crate::ServiceSettings,
) -> impl strata_app_api::workers::Worker {
    let retention = service.audit.retention;
    Periodic::new(name, service.audit.purge_interval, move || {
        let trail = Arc::clone(&trail);
        async move {
            let cutoff = SystemTime::now()
                .checked_sub(retention)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let purged = trail.purge_before(cutoff).await?;
            if purged > 0 {
                tracing::info!(purged, "purged audit entries past their retention");
            }
            Ok(())
        }
    })
}

/// The database by `SELECT 1`, the cache's server by its own client when it has
/// one.
fn readiness(database: &Database, cache: &Arc<dyn CacheStore>, timeout: Duration) -> Readiness {
    let pinged = database.clone();
    let readiness = Readiness::new()
        .timeout(timeout)
        .with(check_fn("database", move || {
            let database = pinged.clone();
            async move { database.ping().await }
        }));
    if cache.is_remote() {
        let cache = Arc::clone(cache);
        readiness.add(check_fn("redis", move || {
            let cache = Arc::clone(&cache);
            async move { cache.ping().await }
        }));
    }
    readiness
}

/// Runs `work` in a unit of work of `resources`' database, committed when it
/// answers `Ok`: for seeding and start-up work outside any request.
///
/// # Errors
/// The work's own error, or the unit of work's.
pub async fn in_transaction<S, T, E, W>(resources: &Resources<S>, work: W) -> Result<T, E>
where
    S: Service,
    W: std::future::Future<Output = Result<T, E>> + Send,
    T: Send,
    E: From<strata_domain::UnitOfWorkError> + Send,
{
    in_unit_of_work(
        resources.unit_of_work().as_ref(),
        strata_domain::ports::Propagation::Required,
        work,
    )
    .await
}

/// Where the relay publishes, and where consumers read.
/// Where events go and where consumers read them.
pub(crate) struct EventBus {
    publisher: Arc<dyn EventPublisher>,
    /// The log ordered consumers read; a broker without one (RabbitMQ) has
    /// consumer groups only.
    log: Option<Arc<dyn PartitionLog>>,
    groups: Groups,
}

/// Where a group consumer joins its group.
#[derive(Clone)]
pub(crate) enum Groups {
    InProcess(Arc<InProcessBus>),
    RedisStreams(RedisStreamsConfig),
    #[cfg(feature = "rabbitmq")]
    RabbitMq {
        config: strata_infrastructure::rabbitmq::RabbitMqConfig,
        publisher: Arc<strata_infrastructure::rabbitmq::RabbitMqPublisher>,
    },
}

impl Groups {
    /// This instance's membership, as `member`, of the group `group`.
    pub(crate) fn join(
        &self,
        group: &str,
        member: &str,
        settings: GroupSettings,
    ) -> Result<Arc<dyn GroupSubscription>, BoxError> {
        Ok(match self {
            Self::InProcess(bus) => Arc::new(InProcessGroup::new(Arc::clone(bus), group, settings)),
            Self::RedisStreams(config) => Arc::new(RedisStreamsGroup::new(
                config.clone(),
                group,
                member,
                settings,
            )?),
            #[cfg(feature = "rabbitmq")]
            Self::RabbitMq { config, publisher } => {
                // Its queue exists before the relay's first publish.
                publisher.declare(group, settings);
                Arc::new(strata_infrastructure::rabbitmq::RabbitMqGroup::new(
                    strata_infrastructure::rabbitmq::RabbitMqConfig {
                        group_settings: settings,
                        ..config.clone()
                    },
                    group,
                    member,
                ))
            }
        })
    }
}

/// Publishes into the new in-process `bus` what the previous process's had
/// not delivered (before the relay and the consumers start), and answers the
/// worker that keeps recording how far this one's readers have got.
async fn in_process_replay(
    database: &Database,
    bus: &Arc<InProcessBus>,
) -> Result<impl strata_app_api::workers::Worker + use<>, StartError> {
    let replay = InProcessReplay::new(database.clone());
    let replayed = replay
        .replay_into(bus, REPLAY_WATERMARK_STALE)
        .await
        .map_err(|error| StartError::EventBus(Box::new(error)))?;
    if replayed > 0 {
        tracing::info!(
            replayed,
            "published again the events an earlier process's in-process bus had not delivered"
        );
    }
    let bus = Arc::clone(bus);
    Ok(Periodic::new(
        "in_process_bus_watermark",
        REPLAY_WATERMARK_INTERVAL,
        move || {
            let replay = replay.clone();
            let bus = Arc::clone(&bus);
            async move {
                replay.record(&bus).await?;
                Ok(())
            }
        },
    ))
}

/// How often a running in-process bus records how far its readers have got:
/// what a process killed since had not delivered is at most this much older
/// than the watermark the next one replays from.
const REPLAY_WATERMARK_INTERVAL: Duration = Duration::from_secs(1);

/// A watermark not renewed for this long belongs to a process that has
/// ended; the next start that replays its events forgets it.
const REPLAY_WATERMARK_STALE: Duration = Duration::from_secs(10);

/// Where the relay publishes and consumers read: Redis Streams when the
/// service has Redis, the in-process bus otherwise.
fn event_bus(service: &crate::ServiceSettings) -> Result<EventBus, BoxError> {
    let partitions = service.outbox.partitions;
    #[cfg(feature = "rabbitmq")]
    if let Some(url) = &service.rabbitmq_url {
        let config = strata_infrastructure::rabbitmq::RabbitMqConfig {
            partitions,
            ..strata_infrastructure::rabbitmq::RabbitMqConfig::new(
                url.expose(),
                service.cache_key_prefix.clone(),
            )
        };
        let publisher = Arc::new(strata_infrastructure::rabbitmq::RabbitMqPublisher::new(
            config.clone(),
        ));
        return Ok(EventBus {
            publisher: publisher.clone(),
            log: None,
            groups: Groups::RabbitMq { config, publisher },
        });
    }
    let Some(url) = &service.redis_url else {
        // 0 keeps every entry, as it does for a stream.
        let max_len = match service.outbox.stream_max_len {
            0 => usize::MAX,
            max_len => max_len,
        };
        let bus = Arc::new(InProcessBus::new(partitions, max_len));
        return Ok(EventBus {
            publisher: bus.clone(),
            log: Some(bus.clone()),
            groups: Groups::InProcess(bus),
        });
    };
    let config = RedisStreamsConfig {
        partitions,
        max_len: (service.outbox.stream_max_len > 0).then_some(service.outbox.stream_max_len),
        ..RedisStreamsConfig::new(url.expose(), service.cache_key_prefix.clone())
    };
    let log = RedisStreamsLog::new(config.clone(), Duration::from_secs(1))?;
    Ok(EventBus {
        publisher: Arc::new(RedisStreamsPublisher::new(config.clone())?),
        log: Some(Arc::new(log)),
        groups: Groups::RedisStreams(config),
    })
}
