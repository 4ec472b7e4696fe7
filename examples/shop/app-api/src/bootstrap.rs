//! The composition root: the one module that wires infrastructure into the
//! application and starts the API and the web page. Tests start the shop through
//! [`start`] too, so they exercise exactly what `cargo run` does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shop_domain::identity::{Email, Password, Role, UserRepository};
use shop_infrastructure::{
    Argon2PasswordHasher, SeaOrmProductRepository, SeaOrmRefreshTokens, SeaOrmUserRepository,
    SeaOrmWishlistRepository, migrate, seed_catalog,
};
use strata_bff::Upstream;
use strata_infrastructure::{Database, InMemoryRateLimiter, RateLimit, SeaOrmUnitOfWork};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use strata_app_api::application::{Dispatcher, middleware};
use strata_app_api::http::auth::{JwtAlgorithm, JwtKey, JwtSettings, Secret, TokenService};
use strata_app_api::http::{self, HttpSettings};
use strata_domain::UnitOfWork;
use strata_domain::ports::{Propagation, RateLimiter, SystemClock, in_unit_of_work};

use crate::api::{AppState, router};
use crate::application::catalog::{self, Catalog};
use crate::application::identity::{
    self, Identity, IdentitySettings, SignInThrottles, create_user,
};
use crate::application::wishlists::{self, Wishlists};

/// How long requests in flight may take to finish once shutdown begins.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Where the shop keeps its data and listens. Every field can be set from the
/// environment (see [`Settings::from_env`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The database URL: SQLite (the default, a file created on first run) or PostgreSQL.
    pub database_url: String,
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// Where the web page listens.
    pub web_addr: SocketAddr,
    /// Whether to add demo products to an empty catalog.
    pub seed: bool,
    /// The key access tokens are signed with (at least 32 bytes). Without one, a
    /// random key is made at start-up, and tokens die with the process.
    pub jwt_secret: Option<Secret>,
    /// An administrator account to make at start-up if it does not exist yet.
    pub admin: Option<AdminAccount>,
}

/// The administrator account made at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAccount {
    /// Its sign-in address.
    pub email: String,
    /// Its password; never printed.
    pub password: Secret,
}

/// A setting from the environment could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{variable}={value:?} is not valid: {reason}")]
pub struct SettingsError {
    variable: &'static str,
    value: String,
    reason: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://shop.db?mode=rwc".into(),
            api_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            web_addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            seed: true,
            jwt_secret: None,
            admin: None,
        }
    }
}

impl Settings {
    /// The defaults, overridden by `SHOP_DATABASE_URL`, `SHOP_API_ADDR`,
    /// `SHOP_WEB_ADDR`, `SHOP_SEED` (`true`/`false`), `SHOP_JWT_SECRET` and
    /// `SHOP_ADMIN_EMAIL` with `SHOP_ADMIN_PASSWORD` where they are set.
    ///
    /// # Errors
    /// Names the variable whose value cannot be used.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut settings = Self::default();
        if let Some(url) = lookup("SHOP_DATABASE_URL") {
            settings.database_url = url;
        }
        if let Some(addr) = lookup("SHOP_API_ADDR") {
            settings.api_addr = parse("SHOP_API_ADDR", addr)?;
        }
        if let Some(addr) = lookup("SHOP_WEB_ADDR") {
            settings.web_addr = parse("SHOP_WEB_ADDR", addr)?;
        }
        if let Some(seed) = lookup("SHOP_SEED") {
            settings.seed = parse("SHOP_SEED", seed)?;
        }
        if let Some(secret) = lookup("SHOP_JWT_SECRET") {
            if secret.len() < 32 {
                return Err(SettingsError {
                    variable: "SHOP_JWT_SECRET",
                    value: "[redacted]".into(),
                    reason: "must be at least 32 bytes".into(),
                });
            }
            settings.jwt_secret = Some(Secret::from(secret));
        }
        match (lookup("SHOP_ADMIN_EMAIL"), lookup("SHOP_ADMIN_PASSWORD")) {
            (Some(email), Some(password)) => {
                settings.admin = Some(AdminAccount {
                    email,
                    password: Secret::from(password),
                });
            }
            (None, None) => {}
            (email, _) => {
                return Err(SettingsError {
                    variable: if email.is_some() {
                        "SHOP_ADMIN_PASSWORD"
                    } else {
                        "SHOP_ADMIN_EMAIL"
                    },
                    value: String::new(),
                    reason:
                        "SHOP_ADMIN_EMAIL and SHOP_ADMIN_PASSWORD are set together or not at all"
                            .into(),
                });
            }
        }
        Ok(settings)
    }
}

fn parse<T>(variable: &'static str, value: String) -> Result<T, SettingsError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    value.trim().parse().map_err(|error: T::Err| SettingsError {
        variable,
        reason: error.to_string(),
        value,
    })
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
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
}

impl RunningShop {
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

/// Opens and migrates the database, seeds it when asked, and starts the API and
/// the web page.
///
/// # Errors
/// When the database cannot be prepared or an address cannot be bound.
pub async fn start(settings: Settings) -> Result<RunningShop, StartError> {
    let database = Database::connect(&settings.database_url)
        .await
        .map_err(|error| StartError::Database(Box::new(error)))?;
    migrate(&database)
        .await
        .map_err(|error| StartError::Database(Box::new(error)))?;

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
    if let Some(admin) = &settings.admin {
        ensure_admin(
            unit_of_work.as_ref(),
            users.as_ref(),
            hasher.as_ref(),
            admin,
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
        Arc::new(SeaOrmWishlistRepository::new(database)),
        products.clone(),
    );

    let dispatcher = Dispatcher::builder().middleware(middleware::standard(unit_of_work));
    let dispatcher = catalog::register(dispatcher, Arc::new(Catalog::new(products)));
    let dispatcher = identity::register(dispatcher, Arc::new(identity));
    let dispatcher = wishlists::register(dispatcher, Arc::new(wishlists)).build();

    let api_listener = bind(settings.api_addr).await?;
    let api_addr = local_addr(&api_listener, settings.api_addr)?;
    let web_listener = bind(settings.web_addr).await?;
    let web_addr = local_addr(&web_listener, settings.web_addr)?;
    let upstream = Upstream::new(format!("http://{api_addr}")).map_err(StartError::Web)?;

    let (stop, stopped) = watch::channel(false);
    let servers = vec![
        serve(
            api_listener,
            router(
                AppState::new(dispatcher, tokens),
                HttpSettings::default(),
                throttle(RateLimit::per(600, Duration::from_secs(60)).with_burst(120))?,
            ),
            stopped.clone(),
        ),
        serve(web_listener, shop_bff::router(upstream), stopped),
    ];
    Ok(RunningShop {
        api_addr,
        web_addr,
        stop,
        servers,
    })
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
    admin: &AdminAccount,
) -> Result<(), StartError> {
    let fail = |reason: String| StartError::Identity(reason.into());
    let email = Email::parse(&admin.email)
        .map_err(|failure| fail(format!("SHOP_ADMIN_EMAIL: {failure}")))?;
    let password = std::str::from_utf8(admin.password.expose())
        .map_err(|_| fail("SHOP_ADMIN_PASSWORD is not UTF-8".into()))
        .and_then(|text| {
            Password::new(text).map_err(|failure| fail(format!("SHOP_ADMIN_PASSWORD: {failure}")))
        })?;
    if users
        .find_by_email(&email)
        .await
        .map_err(|error| StartError::Identity(Box::new(error)))?
        .is_some()
    {
        return Ok(());
    }
    in_unit_of_work(
        unit_of_work,
        Propagation::Required,
        create_user(users, hasher, email, &password, Role::Admin),
    )
    .await
    .map(|_| tracing::info!(email = %admin.email, "made the administrator account"))
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
) -> JoinHandle<std::io::Result<()>> {
    tokio::spawn(http::serve(
        listener,
        app,
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        },
        SHUTDOWN_GRACE,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_defaults() {
        let settings = Settings::from_lookup(|name| match name {
            "SHOP_API_ADDR" => Some("127.0.0.1:9090".into()),
            "SHOP_SEED" => Some("false".into()),
            _ => None,
        })
        .expect("valid settings");
        assert_eq!(settings.api_addr, SocketAddr::from(([127, 0, 0, 1], 9090)));
        assert_eq!(settings.web_addr, Settings::default().web_addr);
        assert!(!settings.seed);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let error = Settings::from_lookup(|name| {
            (name == "SHOP_WEB_ADDR").then(|| "not an address".to_owned())
        })
        .expect_err("invalid address");
        assert!(
            error
                .to_string()
                .starts_with("SHOP_WEB_ADDR=\"not an address\"")
        );
    }
}
