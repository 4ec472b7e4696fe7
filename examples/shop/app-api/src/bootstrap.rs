//! The composition root: the one module that wires infrastructure into the
//! application and starts the API and the web page. Tests start the shop through
//! [`start`] too, so they exercise exactly what `cargo run` does.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use serde::{Deserialize, Serialize};

use shop_domain::identity::{Email, Password, Role, UserRepository};
use shop_infrastructure::{
    Argon2PasswordHasher, SeaOrmProductRepository, SeaOrmRefreshTokens, SeaOrmUserRepository,
    SeaOrmWishlistRepository, migrate, migration_status, rollback, seed_catalog,
};
use strata_bff::Upstream;
use strata_infrastructure::{
    Database, InMemoryRateLimiter, RateLimit, SeaOrmIdempotencyStore, SeaOrmUnitOfWork,
    cache_store_for,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use strata_app_api::application::{Cache, Dispatcher, Middleware, middleware};
use strata_app_api::config::{
    Config, ConfigError, ConnectionUrl, Environment, Invalid, Loaded, Loader, duration,
};
use strata_app_api::http::auth::{JwtAlgorithm, JwtKey, JwtSettings, Secret, TokenService};
use strata_app_api::http::health::{Readiness, RedisPing, check_fn};
use strata_app_api::http::{self, HttpSettings};
use strata_app_api::metrics::{Metrics, PoolUsage, UseCaseMetrics};
#[cfg(feature = "otel")]
use strata_app_api::telemetry::{OtlpSettings, TelemetryError};
use strata_domain::UnitOfWork;
use strata_domain::ports::{CacheStore, Propagation, RateLimiter, SystemClock, in_unit_of_work};

use crate::api::{AppState, Operations, router};
use crate::application::catalog::{self, Catalog};
use crate::application::identity::{
    self, Identity, IdentitySettings, SignInThrottles, create_user,
};
use crate::application::wishlists::{self, Wishlists};

/// The configuration files, one per environment, compiled into the binary so
/// `cargo run` needs no set-up; `SHOP_CONFIG_DIR` names a directory of files
/// to read instead.
const CONFIG_FILES: [(Environment, &str); 3] = [
    (
        Environment::Development,
        include_str!("../config/development.toml"),
    ),
    (Environment::Test, include_str!("../config/test.toml")),
    (
        Environment::Production,
        include_str!("../config/production.toml"),
    ),
];

/// The prefix of the shop's environment variables: `SHOP_DATABASE_URL` sets
/// `database_url`, `SHOP_HTTP__SHUTDOWN_GRACE` (or `SHOP_HTTP_SHUTDOWN_GRACE`)
/// sets `http.shutdown_grace`.
pub const ENV_PREFIX: &str = "SHOP";

/// The shop's configuration: the defaults below, then the environment's file,
/// then `SHOP_*` variables (see [`load_settings`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The database: SQLite (a file, created on first run) or PostgreSQL.
    pub database_url: ConnectionUrl,
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// Where the web page listens.
    pub web_addr: SocketAddr,
    /// Whether `serve` brings the schema up to date before serving.
    pub migrate_on_start: bool,
    /// Whether `serve` adds demo products to an empty catalog.
    pub seed: bool,
    /// The key access tokens are signed with (32 bytes or more). Without one, a
    /// random key is made at start-up, and tokens die with the process.
    pub jwt_secret: Option<Secret>,
    /// An administrator account to make at start-up if it does not exist yet.
    pub admin: AdminSettings,
    /// A Redis server shared by every instance: when set, cached answers live in a
    /// two-level cache (in-process in front of Redis, invalidations broadcast to
    /// all instances) and readiness checks it; otherwise the cache is in-process.
    pub redis_url: Option<ConnectionUrl>,
    /// An OpenTelemetry collector's OTLP/HTTP address (`http://host:4318`) to
    /// export spans to. Only a shop built with the `otel` feature can.
    pub otlp_endpoint: Option<ConnectionUrl>,
    /// The prefix of the shop's keys in Redis, so services (or tests) sharing a
    /// server do not collide.
    pub cache_key_prefix: String,
    /// How the API treats requests.
    pub http: HttpConfig,
    /// How readiness checks its dependencies.
    pub health: HealthConfig,
}

/// The administrator account made at start-up: both keys or neither.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Its sign-in address.
    pub email: Option<String>,
    /// Its password (12 characters or more); never printed.
    pub password: Option<Secret>,
}

/// How the API treats requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// How long a request may take before it is answered 503.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// How long requests in flight may take to finish once shutdown begins.
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    /// Origins allowed to call the API from a browser; none means same-origin only.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// How readiness checks its dependencies.
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

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: ConnectionUrl::new("sqlite://shop.db?mode=rwc"),
            api_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            web_addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            migrate_on_start: true,
            seed: true,
            jwt_secret: None,
            admin: AdminSettings::default(),
            redis_url: None,
            otlp_endpoint: None,
            cache_key_prefix: "shop".into(),
            http: HttpConfig::default(),
            health: HealthConfig::default(),
        }
    }
}

impl Config for Settings {
    fn validate(&self) -> Result<(), Invalid> {
        let url = self.database_url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(Invalid::new(
                "database_url",
                "must be a sqlite: or postgres:// URL",
            ));
        }
        if self
            .jwt_secret
            .as_ref()
            .is_some_and(|secret| secret.len() < 32)
        {
            return Err(Invalid::new("jwt_secret", "must be at least 32 bytes"));
        }
        match (&self.admin.email, &self.admin.password) {
            (Some(email), Some(password)) => {
                if Email::parse(email).is_err() {
                    return Err(Invalid::new("admin.email", "is not an email address"));
                }
                let usable = password
                    .expose_str()
                    .is_some_and(|text| Password::new(text).is_ok());
                if !usable {
                    return Err(Invalid::new(
                        "admin.password",
                        format!(
                            "must be {} to {} characters",
                            Password::MIN_CHARS,
                            Password::MAX_CHARS
                        ),
                    ));
                }
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(Invalid::new(
                    "admin.password",
                    "must be set with admin.email",
                ));
            }
            (None, Some(_)) => {
                return Err(Invalid::new(
                    "admin.email",
                    "must be set with admin.password",
                ));
            }
        }
        if let Some(redis) = &self.redis_url {
            RedisPing::new(redis.expose())
                .map_err(|error| Invalid::new("redis_url", error.to_string()))?;
        }
        if self.otlp_endpoint.is_some() {
            self.check_otlp_endpoint()?;
        }
        if self.http.request_timeout.is_zero() {
            return Err(Invalid::new(
                "http.request_timeout",
                "must be more than zero",
            ));
        }
        if let Some(bad) = self
            .http
            .cors_allowed_origins
            .iter()
            .position(|origin| HeaderValue::from_str(origin).is_err())
        {
            return Err(Invalid::new(
                format!("http.cors_allowed_origins[{bad}]"),
                "is not a valid origin",
            ));
        }
        if self.health.check_timeout.is_zero() {
            return Err(Invalid::new(
                "health.check_timeout",
                "must be more than zero",
            ));
        }
        Ok(())
    }
}

impl Settings {
    /// Where spans are exported to, when `otlp_endpoint` is set.
    #[cfg(feature = "otel")]
    #[must_use]
    pub fn otlp(&self) -> Option<OtlpSettings> {
        self.otlp_endpoint.as_ref().map(|endpoint| OtlpSettings {
            endpoint: endpoint.expose().to_owned(),
            service_name: "shop".into(),
        })
    }

    #[cfg(feature = "otel")]
    fn check_otlp_endpoint(&self) -> Result<(), Invalid> {
        match self.otlp().map(|otlp| otlp.traces_url()) {
            Some(Err(TelemetryError::Endpoint(reason))) => {
                Err(Invalid::new("otlp_endpoint", reason))
            }
            Some(Err(error)) => Err(Invalid::new("otlp_endpoint", error.to_string())),
            Some(Ok(_)) | None => Ok(()),
        }
    }

    // Refused rather than ignored: an operator who set it expects traces, and
    // a silent shop would leave them looking for a fault in the collector.
    #[cfg(not(feature = "otel"))]
    fn check_otlp_endpoint(&self) -> Result<(), Invalid> {
        Err(Invalid::new(
            "otlp_endpoint",
            "is set, but the shop was built without the `otel` feature: build it with \
             `--features otel` to export traces, or unset the key",
        ))
    }

    fn http_settings(&self) -> HttpSettings {
        HttpSettings {
            request_timeout: self.http.request_timeout,
            cors_allowed_origins: self
                .http
                .cors_allowed_origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok())
                .collect(),
        }
    }
}

/// Loads the shop's configuration for `environment`: the defaults, then
/// `<environment>.toml` (compiled in, or read from `config_dir`), then `SHOP_*`
/// environment variables.
///
/// # Errors
/// One line naming the file or key at fault and why.
pub fn load_settings(
    environment: Environment,
    config_dir: Option<&Path>,
) -> Result<Loaded<Settings>, ConfigError> {
    let loader = Loader::new(ENV_PREFIX).reserve(["ENV", "CONFIG_DIR"]);
    let loader = match config_dir {
        Some(dir) => loader.read_file(&dir.join(format!("{environment}.toml")))?,
        None => loader.file(
            format!("config/{environment}.toml (built in)"),
            built_in_file(environment),
        ),
    };
    load_for(environment, loader)
}

fn built_in_file(environment: Environment) -> &'static str {
    CONFIG_FILES
        .iter()
        .find(|(name, _)| *name == environment)
        .map_or("", |(_, text)| text)
}

/// Loads with `loader`, then applies the rules of `environment`: production
/// refuses the random signing key that would sign users out on every restart.
fn load_for(environment: Environment, loader: Loader) -> Result<Loaded<Settings>, ConfigError> {
    let loaded = loader.load::<Settings>()?;
    if environment == Environment::Production && loaded.value().jwt_secret.is_none() {
        return Err(ConfigError::Missing {
            key: "jwt_secret".into(),
            reason: "production needs a signing key that outlives the process (SHOP_JWT_SECRET)"
                .into(),
        });
    }
    Ok(loaded)
}

/// The shop could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("the database could not be prepared")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The demo catalog could not be seeded.
    #[error("the demo catalog could not be seeded")]
    Seed(#[source] shop_infrastructure::catalog::SeedError),
    /// A listening address could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The web page's upstream client could not be built.
    #[error("the web page could not be set up")]
    Web(#[source] strata_bff::UpstreamError),
    /// The cache could not be set up.
    #[error("the cache could not be set up")]
    Cache(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Access tokens, throttles or accounts could not be set up.
    #[error("identity could not be set up")]
    Identity(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A started shop: where it listens, and how to stop it.
#[derive(Debug)]
pub struct RunningShop {
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// Where the web page listens.
    pub web_addr: SocketAddr,
    api_router: axum::Router,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
}

impl RunningShop {
    /// The router the API serves, for tests that inspect its routes.
    pub fn api_router(&self) -> &axum::Router {
        &self.api_router
    }

    /// Stops accepting connections, lets requests in flight finish, and waits for
    /// both servers to end.
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

/// Opens the database and, when configured, migrates and seeds it; then starts
/// the API and the web page.
///
/// # Errors
/// When the database cannot be prepared or an address cannot be bound.
pub async fn start(settings: Settings) -> Result<RunningShop, StartError> {
    let database = open_database(&settings).await?;
    if settings.migrate_on_start {
        migrate(&database)
            .await
            .map_err(|error| StartError::Database(Box::new(error)))?;
    }
    let operations = operations(&settings, &database)?;

    let products = Arc::new(SeaOrmProductRepository::new(database.clone()));
    let unit_of_work = Arc::new(SeaOrmUnitOfWork::new(database.clone()));
    if settings.seed {
        in_unit_of_work(
            unit_of_work.as_ref(),
            Propagation::Required,
            seed_catalog(products.as_ref()),
        )
        .await
        .map_err(StartError::Seed)?;
    }

    let tokens = Arc::new(token_service(settings.jwt_secret.clone())?);
    let users = Arc::new(SeaOrmUserRepository::new(database.clone()));
    let hasher = Arc::new(Argon2PasswordHasher);
    if let (Some(email), Some(password)) = (&settings.admin.email, &settings.admin.password) {
        ensure_admin(
            unit_of_work.as_ref(),
            users.as_ref(),
            hasher.as_ref(),
            email,
            password,
        )
        .await?;
    }
    let identity = Identity::new(
        users,
        hasher,
        Arc::new(SeaOrmRefreshTokens::new(database.clone())),
        Arc::new(SystemClock),
        SignInThrottles {
            per_account: throttle(RateLimit::per(5, Duration::from_secs(60)))?,
            per_client: throttle(RateLimit::per(30, Duration::from_secs(60)))?,
        },
        IdentitySettings::default(),
    )
    .await
    .map_err(|error| StartError::Identity(Box::new(error)))?;
    let wishlists = Wishlists::new(
        Arc::new(SeaOrmWishlistRepository::new(database.clone())),
        products.clone(),
    );

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
    let dispatcher = catalog::register(dispatcher, Arc::new(Catalog::new(products)));
    let dispatcher = identity::register(dispatcher, Arc::new(identity));
    let dispatcher = wishlists::register(dispatcher, Arc::new(wishlists)).build();

    let api_listener = bind(settings.api_addr).await?;
    let api_addr = local_addr(&api_listener, settings.api_addr)?;
    let web_listener = bind(settings.web_addr).await?;
    let web_addr = local_addr(&web_listener, settings.web_addr)?;
    let upstream = Upstream::new(format!("http://{api_addr}")).map_err(StartError::Web)?;

    let (api_router, _document) = router(
        AppState::new(dispatcher, tokens),
        settings.http_settings(),
        throttle(RateLimit::per(600, Duration::from_secs(60)).with_burst(120))?,
        operations,
    );
    let grace = settings.http.shutdown_grace;
    let (stop, stopped) = watch::channel(false);
    let servers = vec![
        serve(api_listener, api_router.clone(), stopped.clone(), grace),
        serve(web_listener, shop_bff::router(upstream), stopped, grace),
    ];
    Ok(RunningShop {
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
        readiness = readiness.with(RedisPing::new(url.expose()).map_err(StartError::Database)?);
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

/// What `shop migrate` does to the schema.
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

/// Adds the demo catalog to an empty catalog on the configured database (whose
/// schema must be up to date), and answers how many products were added.
///
/// # Errors
/// When the database cannot be reached or the products cannot be stored.
pub async fn seed(settings: &Settings) -> Result<usize, StartError> {
    let database = open_database(settings).await?;
    let products = SeaOrmProductRepository::new(database.clone());
    in_unit_of_work(
        &SeaOrmUnitOfWork::new(database),
        Propagation::Required,
        seed_catalog(&products),
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

/// Access tokens: HS256 with the configured key, or a random one.
fn token_service(secret: Option<Secret>) -> Result<TokenService, StartError> {
    let secret = secret.unwrap_or_else(|| {
        tracing::warn!(
            "SHOP_JWT_SECRET is not set: access tokens are signed with a random key and \
             stop working when the process ends"
        );
        Secret::from(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ))
    });
    TokenService::new(JwtSettings {
        issuer: "shop".into(),
        audience: "shop-api".into(),
        algorithm: JwtAlgorithm::HS256,
        keys: vec![JwtKey::shared_secret("shop-1", secret)],
        signing_kid: Some("shop-1".into()),
        leeway: Duration::from_secs(30),
        access_token_lifetime: Duration::from_secs(15 * 60),
    })
    .map_err(|error| StartError::Identity(Box::new(error)))
}

fn throttle(limit: RateLimit) -> Result<Arc<dyn RateLimiter>, StartError> {
    InMemoryRateLimiter::new(limit)
        .map(|limiter| Arc::new(limiter) as Arc<dyn RateLimiter>)
        .map_err(|error| StartError::Identity(Box::new(error)))
}

/// Makes the configured administrator account unless it exists already.
async fn ensure_admin(
    unit_of_work: &dyn UnitOfWork,
    users: &SeaOrmUserRepository,
    hasher: &Argon2PasswordHasher,
    email: &str,
    password: &Secret,
) -> Result<(), StartError> {
    let fail = |reason: String| StartError::Identity(reason.into());
    let address = Email::parse(email).map_err(|failure| fail(format!("admin.email: {failure}")))?;
    let password = password
        .expose_str()
        .ok_or_else(|| fail("admin.password is not UTF-8".into()))
        .and_then(|text| {
            Password::new(text).map_err(|failure| fail(format!("admin.password: {failure}")))
        })?;
    if users
        .find_by_email(&address)
        .await
        .map_err(|error| StartError::Identity(Box::new(error)))?
        .is_some()
    {
        return Ok(());
    }
    in_unit_of_work(
        unit_of_work,
        Propagation::Required,
        create_user(users, hasher, address, &password, Role::Admin),
    )
    .await
    .map(|_| tracing::info!(email = %email, "made the administrator account"))
    .map_err(|error| StartError::Identity(Box::new(error)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn load(environment: Environment, variables: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let loader = Loader::new(ENV_PREFIX)
            .reserve(["ENV", "CONFIG_DIR"])
            .file(format!("{environment}.toml"), built_in_file(environment))
            .variables(
                variables
                    .iter()
                    .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
            );
        load_for(environment, loader).map(Loaded::into_value)
    }

    #[test]
    fn every_environment_file_loads() {
        for (environment, _) in CONFIG_FILES {
            let variables: &[(&str, &str)] = if environment == Environment::Production {
                &[("SHOP_JWT_SECRET", "a production key of thirty-two bytes")]
            } else {
                &[]
            };
            load(environment, variables).unwrap_or_else(|error| panic!("{environment}: {error}"));
        }
    }

    #[test]
    fn development_is_what_the_readme_promises() {
        let settings = load(Environment::Development, &[]).expect("valid");
        assert_eq!(settings.api_addr, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(settings.web_addr, SocketAddr::from(([127, 0, 0, 1], 3000)));
        assert!(settings.seed && settings.migrate_on_start);
        assert!(settings.database_url.expose().starts_with("sqlite:"));
    }

    #[test]
    fn the_old_variable_names_still_work() {
        let settings = load(
            Environment::Development,
            &[
                ("SHOP_DATABASE_URL", "postgres://shop:pw@db/shop"),
                ("SHOP_API_ADDR", "127.0.0.1:9090"),
                ("SHOP_SEED", "false"),
                ("SHOP_ADMIN_EMAIL", "root@shop.test"),
                ("SHOP_ADMIN_PASSWORD", "123456789012"),
                ("SHOP_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
                ("SHOP_HTTP__SHUTDOWN_GRACE", "3s"),
            ],
        )
        .expect("valid settings");
        assert_eq!(settings.api_addr, SocketAddr::from(([127, 0, 0, 1], 9090)));
        assert_eq!(settings.web_addr, Settings::default().web_addr);
        assert!(!settings.seed);
        assert_eq!(settings.admin.email.as_deref(), Some("root@shop.test"));
        assert_eq!(settings.http.shutdown_grace, Duration::from_secs(3));
        assert_eq!(settings.database_url.expose(), "postgres://shop:pw@db/shop");
    }

    #[test]
    fn a_bad_value_names_its_key_and_variable_in_one_line() {
        for (variable, value, key) in [
            ("SHOP_WEB_ADDR", "not an address", "web_addr"),
            ("SHOP_JWT_SECRET", "short", "jwt_secret"),
            ("SHOP_ADMIN_EMAIL", "root@shop.test", "admin.password"),
            ("SHOP_HTTP_SHUTDOWN_GRACE", "soon", "http.shutdown_grace"),
        ] {
            let error = load(Environment::Development, &[(variable, value)]).expect_err(variable);
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("configuration key `{key}`")),
                "{message}"
            );
            assert!(!message.contains('\n'), "{message}");
            if variable == "SHOP_JWT_SECRET" {
                assert!(
                    !message.contains(value),
                    "a secret is never echoed: {message}"
                );
            }
        }
    }

    #[test]
    fn an_otlp_endpoint_is_used_only_by_a_shop_built_with_otel() {
        let endpoint = [("SHOP_OTLP_ENDPOINT", "http://collector:4318")];
        let result = load(Environment::Development, &endpoint);
        if cfg!(feature = "otel") {
            let settings = result.expect("valid with the feature");
            assert!(settings.otlp_endpoint.is_some());
            let tls = [("SHOP_OTLP_ENDPOINT", "https://collector:4318")];
            let error = load(Environment::Development, &tls).expect_err("no TLS built");
            assert!(error.to_string().contains("`otlp_endpoint`"), "{error}");
        } else {
            let message = result.expect_err("refused without the feature").to_string();
            assert!(
                message.starts_with("configuration key `otlp_endpoint`")
                    && message.contains("built without the `otel` feature"),
                "{message}"
            );
        }
    }

    #[test]
    fn production_wants_a_signing_key() {
        let error = load(Environment::Production, &[]).expect_err("no key");
        assert!(error.to_string().contains("`jwt_secret`"), "{error}");
    }
}
