//! The settings every Strata service has, defined and checked once. A service's
//! own settings type sits beside them in the same files and variables
//! ([`crate::Settings`]).

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::HeaderValue;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use strata_app_api::config::{Config, ConnectionUrl, IdempotencySettings, Invalid, duration};
use strata_app_api::http::{ConnectionLimits, ForwardedHeader, HttpSettings, TrustedProxies};
use strata_infrastructure::outbox::RelaySettings;
use strata_infrastructure::{DatabaseOptions, RedisCacheConfig};

/// The keys the runtime reads: where the service listens, its database and
/// Redis, how it treats requests, checks its dependencies, keeps idempotency
/// keys and exports traces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceSettings {
    /// The database: SQLite (`sqlite://file.db?mode=rwc`, created on first run)
    /// or PostgreSQL (`postgres://user:password@host/db`).
    pub database_url: ConnectionUrl,
    /// How the database's connections are managed.
    pub database: DatabaseConfig,
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// Whether `serve` brings the schema up to date before serving.
    pub migrate_on_start: bool,
    /// Whether `serve` adds the demo data to an empty database.
    pub seed: bool,
    /// A Redis server shared by every instance: when set, cached answers live in
    /// a two-level cache (in-process in front of Redis, invalidations broadcast
    /// to every instance) and readiness checks it; otherwise the cache is
    /// in-process.
    pub redis_url: Option<ConnectionUrl>,
    /// The prefix of the service's keys in Redis, so services (or tests) sharing
    /// a server do not collide.
    pub cache_key_prefix: String,
    /// The query cache.
    pub cache: CacheConfig,
    /// A RabbitMQ server (`amqp://`) to publish events to instead of Redis
    /// Streams or the in-process bus; only a build with the `rabbitmq`
    /// feature can. RabbitMQ keeps no log to read from an offset, so the
    /// service's consumers then run as consumer groups.
    pub rabbitmq_url: Option<ConnectionUrl>,
    /// An OpenTelemetry collector's OTLP/HTTP address (`http://host:4318`) to
    /// export spans to; only a build with the `otel` feature can.
    pub otlp_endpoint: Option<ConnectionUrl>,
    /// How the API treats requests.
    pub http: HttpConfig,
    /// How readiness checks the dependencies.
    pub health: HealthConfig,
    /// How idempotency keys are kept.
    pub idempotency: IdempotencySettings,
    /// How long the audit trail is kept.
    pub audit: AuditConfig,
    /// How the outbox's events are published.
    pub outbox: OutboxConfig,
    /// How the service's ordered consumers read their partitions.
    pub consumers: crate::ConsumerSettings,
    /// How distributed transactions are coordinated and recovered.
    pub tcc: TccConfig,
    /// Runs only the named context of a service that has several (see
    /// `Service::contexts`), as a process of its own; `serve --only <name>`
    /// sets it too. Unset, the service runs whole.
    pub only: Option<String>,
}

/// How the service's distributed transactions run (`[tcc]`): as the
/// initiator's coordinator and recovery worker, and as a participant's
/// barrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TccConfig {
    /// How long a transaction may stay prepared before it aborts.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// How long each branch call may take; past it the answer is unknown.
    #[serde(with = "duration")]
    pub call_timeout: Duration,
    /// The pause before the first retry of an unfinished phase; it doubles
    /// with each retry that makes no progress.
    #[serde(with = "duration")]
    pub retry_interval: Duration,
    /// Doublings after which a transaction waits for an operator.
    pub max_doublings: u32,
    /// How long a recovery worker's claim on a transaction holds.
    #[serde(with = "duration")]
    pub lease: Duration,
    /// How often the recovery worker looks for due transactions.
    #[serde(with = "duration")]
    pub recovery_interval: Duration,
    /// How many transactions one recovery pass takes and drives at once.
    pub recovery_concurrency: usize,
    /// How long a participant keeps its barrier rows: longer than any call
    /// of their transaction can still arrive.
    #[serde(with = "duration")]
    pub barrier_retention: Duration,
}

impl Default for TccConfig {
    fn default() -> Self {
        let coordinator = strata_infrastructure::tcc::TccSettings::default();
        Self {
            timeout: coordinator.timeout,
            call_timeout: Duration::from_secs(5),
            retry_interval: coordinator.retry_interval,
            max_doublings: coordinator.max_doublings,
            lease: coordinator.lease,
            recovery_interval: Duration::from_secs(1),
            recovery_concurrency: coordinator.recovery_concurrency,
            barrier_retention: Duration::from_secs(7 * 24 * 60 * 60),
        }
    }
}

impl TccConfig {
    /// The coordinator's settings.
    #[must_use]
    pub fn coordinator_settings(&self) -> strata_infrastructure::tcc::TccSettings {
        strata_infrastructure::tcc::TccSettings {
            timeout: self.timeout,
            retry_interval: self.retry_interval,
            max_doublings: self.max_doublings,
            lease: self.lease,
            recovery_concurrency: self.recovery_concurrency,
        }
    }
}

/// How the outbox's events are published (`[outbox]`): by a relay on every
/// instance, into Redis Streams when `redis_url` is set and into the
/// in-process bus otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Whether this instance runs a relay.
    pub relay: bool,
    /// How many events one pass publishes at most.
    pub batch: u32,
    /// How long a relay's claim on events holds; after it, another relay
    /// publishes them.
    #[serde(with = "duration")]
    pub lease: Duration,
    /// Failed attempts after which an event is dead-lettered.
    pub max_attempts: u32,
    /// The pause after a first failed attempt; it doubles with each one.
    #[serde(with = "duration")]
    pub backoff: Duration,
    /// The longest pause between attempts.
    #[serde(with = "duration")]
    pub max_backoff: Duration,
    /// How often the relay looks for events without being woken.
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// How long published events are kept.
    #[serde(with = "duration")]
    pub retention: Duration,
    /// How often published events past their retention are purged.
    #[serde(with = "duration")]
    pub purge_interval: Duration,
    /// How many partitions (streams) events are spread over by aggregate.
    pub partitions: u32,
    /// Trim each stream to about this many entries; 0 keeps every entry.
    pub stream_max_len: usize,
    /// How long a two-phase message may stay prepared: past it, the
    /// check-back fails it unless its local transaction committed.
    #[serde(with = "duration")]
    pub message_timeout: Duration,
    /// How often the check-back looks for prepared messages past their
    /// timeout.
    #[serde(with = "duration")]
    pub check_back_interval: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        let relay = RelaySettings::default();
        Self {
            relay: true,
            batch: relay.batch,
            lease: relay.lease,
            max_attempts: relay.max_attempts,
            backoff: relay.backoff,
            max_backoff: relay.max_backoff,
            poll_interval: relay.poll_interval,
            retention: relay.retention,
            purge_interval: Duration::from_secs(60 * 60),
            partitions: 8,
            stream_max_len: 1_000_000,
            message_timeout: Duration::from_secs(60),
            check_back_interval: Duration::from_secs(5),
        }
    }
}

impl OutboxConfig {
    /// The relay's settings.
    #[must_use]
    pub fn relay_settings(&self) -> RelaySettings {
        RelaySettings {
            batch: self.batch,
            lease: self.lease,
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            max_backoff: self.max_backoff,
            poll_interval: self.poll_interval,
            retention: self.retention,
        }
    }
}

/// How long the audit trail is kept (`[audit]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Entries older than this are purged.
    #[serde(with = "duration")]
    pub retention: Duration,
    /// How often entries past their retention are purged.
    #[serde(with = "duration")]
    pub purge_interval: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(90 * 24 * 60 * 60),
            purge_interval: Duration::from_secs(60 * 60),
        }
    }
}

/// How the database's connections are managed (`[database]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// The most connections each pool (writes, reads) opens.
    pub max_connections: u32,
    /// How long a request waits for a free connection before it is answered
    /// 503 with `Retry-After`.
    #[serde(with = "duration")]
    pub acquire_timeout: Duration,
    /// How long a statement waits for a lock another transaction holds before
    /// the request is answered 503 (PostgreSQL's `lock_timeout`, SQLite's busy
    /// timeout).
    #[serde(with = "duration")]
    pub lock_timeout: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        let options = DatabaseOptions::default();
        Self {
            max_connections: options.max_connections,
            acquire_timeout: options.acquire_timeout,
            lock_timeout: options.lock_timeout,
        }
    }
}

/// How the API treats requests (`[http]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// How long a request may take before it is answered 503.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// How long requests in flight, and background workers, may take to finish
    /// once shutdown begins.
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    /// Origins allowed to call the API from a browser (`https://shop.example`);
    /// none means same-origin only. `"*"` is refused: an API that takes bearer
    /// tokens names the sites it trusts.
    pub cors_allowed_origins: Vec<String>,
    /// The reverse proxies (addresses or networks, `10.0.0.0/8`, `::1/128`)
    /// whose forwarding header says who the client is. Requests from anywhere
    /// else are keyed by their own address, whatever headers they carry.
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<IpNet>,
    /// The header those proxies write: `x-forwarded-for` (the default) or
    /// `forwarded` (RFC 7239). Only that one is read.
    pub forwarded_header: ForwardedHeader,
    /// How many requests each client (an IPv4 address, an IPv6 /64) may make.
    pub client_limit: ClientLimitConfig,
    /// How long a client may take to send a request's headers (or, on a kept
    /// alive connection, to begin the next request) before it is cut off.
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    /// How many connections each listener serves at once; one more is answered
    /// 503 with `Retry-After`.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            cors_allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::default(),
            client_limit: ClientLimitConfig::default(),
            header_read_timeout: ConnectionLimits::default().header_read_timeout,
            max_connections: ConnectionLimits::default().max_connections,
        }
    }
}

/// The per-client request limit (`[http.client_limit]`): `requests` per
/// `period` on average, `burst` of them back to back; over it, 429 with
/// `Retry-After`. Each instance counts on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientLimitConfig {
    /// Whether requests are limited at all (off for load tests, or where a
    /// gateway in front limits them).
    pub enabled: bool,
    /// Requests allowed per period.
    pub requests: u32,
    /// The period.
    #[serde(with = "duration")]
    pub period: Duration,
    /// Requests allowed back to back by a client that has been quiet.
    pub burst: u32,
}

impl Default for ClientLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            requests: 600,
            period: Duration::from_secs(60),
            burst: 120,
        }
    }
}

/// The query cache (`[cache]`): where a query names a cache policy, its answer
/// is kept and served until a command's commit invalidates it or it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Whether answers are cached at all. Off, every query asks the database
    /// (to measure it, or to rule the cache out while looking for a fault).
    pub enabled: bool,
    /// With Redis, how often invalidations still owed are applied: those whose
    /// commit's own invalidation failed (Redis unreachable) or never ran (the
    /// instance died between the commit and it). Each instance also applies
    /// every owed invalidation when it starts.
    #[serde(with = "duration")]
    pub catch_up_interval: Duration,
    /// How long an invalidation is left to the commit that owes it before a
    /// catch-up applies it.
    #[serde(with = "duration")]
    pub catch_up_after: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            catch_up_interval: Duration::from_secs(5),
            catch_up_after: Duration::from_secs(10),
        }
    }
}

/// How readiness checks the dependencies (`[health]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// How long each dependency may take to answer before it counts as down.
    #[serde(with = "duration")]
    pub check_timeout: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            check_timeout: Duration::from_secs(2),
        }
    }
}

impl ServiceSettings {
    /// The defaults for the service called `name`: its SQLite file and Redis
    /// keys are named after it.
    #[must_use]
    pub fn named(name: &str) -> Self {
        let file_name = name.replace('-', "_");
        Self {
            database_url: ConnectionUrl::new(format!("sqlite://{file_name}.db?mode=rwc")),
            database: DatabaseConfig::default(),
            api_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            migrate_on_start: true,
            seed: true,
            redis_url: None,
            rabbitmq_url: None,
            cache_key_prefix: name.to_owned(),
            cache: CacheConfig::default(),
            otlp_endpoint: None,
            http: HttpConfig::default(),
            health: HealthConfig::default(),
            idempotency: IdempotencySettings::default(),
            audit: AuditConfig::default(),
            outbox: OutboxConfig::default(),
            consumers: crate::ConsumerSettings::default(),
            tcc: TccConfig::default(),
            only: None,
        }
    }

    /// The database's connection options.
    #[must_use]
    pub fn database_options(&self) -> DatabaseOptions {
        DatabaseOptions {
            max_connections: self.database.max_connections,
            acquire_timeout: self.database.acquire_timeout,
            lock_timeout: self.database.lock_timeout,
            ..DatabaseOptions::default()
        }
    }

    /// How many connections each listener holds, and for how long a client
    /// may send its headers.
    #[must_use]
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: self.http.header_read_timeout,
            max_connections: self.http.max_connections,
        }
    }

    /// What the HTTP layers need.
    #[must_use]
    pub fn http_settings(&self) -> HttpSettings {
        HttpSettings {
            request_timeout: self.http.request_timeout,
            // Checked by `validate`, so none is dropped here.
            cors_allowed_origins: self
                .http
                .cors_allowed_origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok())
                .collect(),
            trusted_proxies: TrustedProxies {
                networks: self.http.trusted_proxies.clone(),
                header: self.http.forwarded_header,
            },
        }
    }

    #[cfg(feature = "otel")]
    fn check_otlp_endpoint(&self) -> Result<(), Invalid> {
        let Some(endpoint) = &self.otlp_endpoint else {
            return Ok(());
        };
        let settings = strata_app_api::telemetry::OtlpSettings {
            endpoint: endpoint.expose().to_owned(),
            service_name: String::new(),
        };
        match settings.traces_url() {
            Ok(_) => Ok(()),
            Err(strata_app_api::telemetry::TelemetryError::Endpoint(reason)) => {
                Err(Invalid::new("otlp_endpoint", reason))
            }
            Err(error) => Err(Invalid::new("otlp_endpoint", error.to_string())),
        }
    }

    fn check_rabbitmq_url(&self) -> Result<(), Invalid> {
        let Some(url) = &self.rabbitmq_url else {
            return Ok(());
        };
        if !cfg!(feature = "rabbitmq") {
            return Err(Invalid::new(
                "rabbitmq_url",
                "is set, but the service was built without the `rabbitmq` feature: build it \
                 with the feature to publish to RabbitMQ, or unset the key",
            ));
        }
        if url.expose().starts_with("amqp://") || url.expose().starts_with("amqps://") {
            Ok(())
        } else {
            Err(Invalid::new("rabbitmq_url", "must be an amqp:// URL"))
        }
    }

    // Refused rather than ignored: an operator who set it expects traces, and a
    // silent service would leave them looking for a fault in the collector.
    #[cfg(not(feature = "otel"))]
    fn check_otlp_endpoint(&self) -> Result<(), Invalid> {
        if self.otlp_endpoint.is_none() {
            return Ok(());
        }
        Err(Invalid::new(
            "otlp_endpoint",
            "is set, but the service was built without the `otel` feature: build it with \
             `--features otel` to export traces, or unset the key",
        ))
    }
}

/// Networks (`10.0.0.0/8`) or single addresses (`10.0.0.7`, taken as a /32 or
/// /128).
fn networks<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    let written = Vec::<String>::deserialize(deserializer)?;
    written
        .iter()
        .map(|text| {
            text.parse::<IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "`{text}` is neither an address nor a network (`10.0.0.0/8`, \
                         `fd00::/8`, `10.0.0.7`)"
                    ))
                })
        })
        .collect()
}

/// Whether `origin` is one a browser sends: `scheme://host[:port]`, nothing
/// else.
fn check_origin(origin: &str) -> Result<(), &'static str> {
    if origin == "*" {
        return Err(
            "may not be `*`: name each site allowed to call the API with its \
                    credentials (`https://shop.example`)",
        );
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err("is not an origin: `scheme://host[:port]`, such as `https://shop.example`");
    };
    let host_and_port_only = !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', '*'])
        && !rest.chars().any(char::is_whitespace);
    if !matches!(scheme, "http" | "https")
        || !host_and_port_only
        || HeaderValue::from_str(origin).is_err()
    {
        return Err("is not an origin: `scheme://host[:port]`, such as `https://shop.example`");
    }
    Ok(())
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self::named("service")
    }
}

impl Config for ServiceSettings {
    fn validate(&self) -> Result<(), Invalid> {
        self.database_url
            .check_database(cfg!(feature = "mysql"))
            .map_err(|reason| Invalid::new("database_url", reason))?;
        for (key, value) in [
            ("database.acquire_timeout", self.database.acquire_timeout),
            ("database.lock_timeout", self.database.lock_timeout),
            ("http.request_timeout", self.http.request_timeout),
            ("http.header_read_timeout", self.http.header_read_timeout),
            ("health.check_timeout", self.health.check_timeout),
            ("cache.catch_up_interval", self.cache.catch_up_interval),
            ("audit.retention", self.audit.retention),
            ("audit.purge_interval", self.audit.purge_interval),
            ("outbox.lease", self.outbox.lease),
            ("consumers.lease", self.consumers.lease),
            ("consumers.idle_wait", self.consumers.idle_wait),
            ("outbox.poll_interval", self.outbox.poll_interval),
            ("outbox.purge_interval", self.outbox.purge_interval),
            ("outbox.message_timeout", self.outbox.message_timeout),
            (
                "outbox.check_back_interval",
                self.outbox.check_back_interval,
            ),
        ] {
            if value.is_zero() {
                return Err(Invalid::new(key, "must be more than zero"));
            }
        }
        for (key, value) in [
            ("outbox.batch", self.outbox.batch),
            ("outbox.max_attempts", self.outbox.max_attempts),
            ("outbox.partitions", self.outbox.partitions),
            (
                "consumers.batch",
                u32::try_from(self.consumers.batch).unwrap_or(u32::MAX),
            ),
            (
                "consumers.parallel",
                u32::try_from(self.consumers.parallel).unwrap_or(u32::MAX),
            ),
        ] {
            if value == 0 {
                return Err(Invalid::new(key, "must be at least 1"));
            }
        }
        if self.http.max_connections == 0 {
            return Err(Invalid::new("http.max_connections", "must be at least 1"));
        }
        if self.database.max_connections == 0 {
            return Err(Invalid::new(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if let Some(redis) = &self.redis_url {
            RedisCacheConfig::new(redis.expose(), &self.cache_key_prefix)
                .map_err(|error| Invalid::new("redis_url", error.to_string()))?;
        }
        self.check_otlp_endpoint()?;
        self.check_rabbitmq_url()?;
        for (index, origin) in self.http.cors_allowed_origins.iter().enumerate() {
            if let Err(reason) = check_origin(origin) {
                return Err(Invalid::new(
                    format!("http.cors_allowed_origins[{index}]"),
                    reason,
                ));
            }
        }
        let limit = &self.http.client_limit;
        if limit.enabled
            && (limit.requests == 0
                || limit.burst == 0
                || limit.period.is_zero()
                || (limit.period / limit.requests).is_zero())
        {
            return Err(Invalid::new(
                "http.client_limit",
                "needs at least one request per period, a period longer than a nanosecond per \
                 request and a burst of at least one; set `enabled = false` to switch it off",
            ));
        }
        self.idempotency
            .check("idempotency", self.http.request_timeout)
    }
}
