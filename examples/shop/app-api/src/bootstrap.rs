//! The composition root: the one module that names the infrastructure and the
//! web page and wires them into the application. Everything around it — the
//! command line, configuration, the database and migrations, the cache,
//! idempotency keys, readiness, metrics, workers, serving and shutdown — is
//! the service runtime's (`strata-runtime`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use shop_infrastructure::{
    Argon2PasswordHasher, Migrator, SeaOrmProductRepository, SeaOrmRefreshTokens,
    SeaOrmSalesReportStore, SeaOrmUserRepository, SeaOrmWishlistRepository, seed_catalog,
};
use strata_app_api::Secret;
use strata_app_api::application::audit::{AuditTrailReader, ReadAuditTrail};
use strata_app_api::application::outbox::{ListDeadLetters, OutboxOperator, RetryDeadLetter};
use strata_app_api::application::{Dispatcher, RequestContext};
use strata_app_api::config::{ConfigError, Environment};
use strata_app_api::http::auth::{JwtAlgorithm, JwtKey, JwtSettings, TokenService};
use strata_app_api::workers::Periodic;
use strata_bff::Upstream;
use strata_domain::ports::{RateLimiter, SystemClock};
use strata_infrastructure::consumer::GroupSettings;
use strata_infrastructure::{InMemoryRateLimiter, RateLimit, SeaOrmOutbox};
use strata_runtime::{BoxError, Resources, Service, Settings, Startup, in_transaction};

use crate::api::{AppState, router};
use crate::application::catalog::{self, Catalog};
use crate::application::identity::{
    self, EnsureAdministrator, Identity, IdentityPorts, IdentitySettings, PurgeExpiredSessions,
    Throttles,
};
use crate::application::permissions::system_principal;
use crate::application::reports::{self, Reports};
use crate::application::wishlists::{self, Wishlists};
use crate::messaging::CatalogEventsToReport;
use crate::settings::{AdminSettings, CONFIG_FILES, ShopSettings, check_for};

/// The sample shop, as the service runtime runs it.
#[derive(Debug)]
pub struct Shop;

#[async_trait]
impl Service for Shop {
    type Settings = ShopSettings;
    type Migrator = Migrator;

    fn name() -> &'static str {
        "shop"
    }

    fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    fn config_files() -> &'static [(Environment, &'static str)] {
        &CONFIG_FILES
    }

    fn demo_data() -> &'static str {
        "demo products"
    }

    fn check(settings: &Settings<Self>, environment: Environment) -> Result<(), ConfigError> {
        check_for(environment, &settings.app)
    }

    async fn seed(resources: &Resources<Self>) -> Result<usize, BoxError> {
        let products = SeaOrmProductRepository::new(resources.database().clone());
        Ok(in_transaction(resources, seed_catalog(&products)).await?)
    }

    async fn start(startup: &mut Startup<Self>) -> Result<(), BoxError> {
        let settings = startup.settings().clone();
        let database = startup.database().clone();
        let products = Arc::new(SeaOrmProductRepository::new(database.clone()));
        let identity = Identity::new(
            IdentityPorts {
                users: Arc::new(SeaOrmUserRepository::new(database.clone())),
                hasher: Arc::new(Argon2PasswordHasher::default()),
                tokens: Arc::new(SeaOrmRefreshTokens::new(database.clone())),
                clock: Arc::new(SystemClock),
                unit_of_work: startup.unit_of_work(),
            },
            Throttles {
                failed_sign_ins_per_account_and_client: throttle(RateLimit::per(
                    5,
                    Duration::from_secs(60),
                ))?,
                failed_sign_ins_per_client: throttle(RateLimit::per(30, Duration::from_secs(60)))?,
                registrations_per_client: throttle(RateLimit::per(
                    30,
                    Duration::from_secs(60 * 60),
                ))?,
            },
            IdentitySettings::default(),
        )
        .await?;
        let wishlists = Wishlists::new(
            Arc::new(SeaOrmWishlistRepository::new(database.clone())),
            products.clone(),
        );
        let dispatcher = catalog::register(startup.dispatcher(), Arc::new(Catalog::new(products)));
        let dispatcher = identity::register(dispatcher, Arc::new(identity));
        let operator = Arc::new(OutboxOperator::new(Arc::new(SeaOrmOutbox::new(
            database.clone(),
        ))));
        let reports = Reports::new(Arc::new(SeaOrmSalesReportStore::new(database.clone())));
        let dispatcher = wishlists::register(dispatcher, Arc::new(wishlists));
        let dispatcher = reports::register(dispatcher, Arc::new(reports))
            .query::<ReadAuditTrail>(Arc::new(AuditTrailReader::new(startup.audit_trail())))
            .query::<ListDeadLetters>(operator.clone())
            .command::<RetryDeadLetter>(operator)
            .build();
        // The report keeps the latest of what it is told, so it is right in
        // any order: read in order where the bus keeps a log, as a group on
        // RabbitMQ.
        let report = CatalogEventsToReport::new(dispatcher.clone());
        if startup.reads_in_order() {
            startup.consume("sales_report", report)?;
        } else {
            startup.consume_group("sales_report", report, GroupSettings::default())?;
        }

        ensure_administrator(&dispatcher, &settings.admin).await?;
        startup.worker(session_purge(dispatcher.clone()));

        let api = startup
            .bind("api", startup.service_settings().api_addr)
            .await?;
        let web = startup.bind("web", settings.web_addr).await?;
        let (api_router, _document) = router(
            AppState::new(dispatcher, Arc::new(token_service(settings.jwt_secret)?)),
            startup.http_settings(),
            startup.client_limiter()?,
            startup.operations(),
        );
        let upstream = Upstream::new(format!("http://{}", api.addr()))?;
        startup.announce(format!("Shop API:      http://{}/api/products", api.addr()));
        startup.announce(format!("Shop web page: http://{}/", web.addr()));
        startup.announce(format!("API docs:      http://{}/docs", api.addr()));
        startup.serve(api, api_router);
        startup.serve(web, shop_bff::router(upstream));
        Ok(())
    }
}

/// Makes the configured administrator account, through its use case, as the
/// shop itself.
async fn ensure_administrator(
    dispatcher: &Dispatcher,
    admin: &AdminSettings,
) -> Result<(), BoxError> {
    let (Some(email), Some(password)) = (&admin.email, &admin.password) else {
        return Ok(());
    };
    let password = password.expose_str().ok_or("admin.password is not UTF-8")?;
    let made = dispatcher
        .execute(
            &RequestContext::background().with_principal(system_principal()),
            EnsureAdministrator {
                email: email.clone(),
                password: shop_domain::identity::Password::offered(password),
            },
        )
        .await?;
    if made {
        tracing::info!(email = %email, "made the administrator account");
    }
    Ok(())
}

/// Forgets expired refresh tokens every hour, through its use case.
fn session_purge(dispatcher: Dispatcher) -> impl strata_app_api::workers::Worker {
    Periodic::new("session_purge", Duration::from_secs(60 * 60), move || {
        let dispatcher = dispatcher.clone();
        async move {
            let request = RequestContext::background().with_principal(system_principal());
            let command = PurgeExpiredSessions {
                reason: "schedule".into(),
            };
            let purged = dispatcher.execute(&request, command).await?;
            if purged > 0 {
                tracing::info!(purged, "forgot expired refresh tokens");
            }
            Ok(())
        }
    })
}

/// Access tokens: HS256 with the configured key, or a random one.
fn token_service(secret: Option<Secret>) -> Result<TokenService, BoxError> {
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
    Ok(TokenService::new(JwtSettings {
        issuer: "shop".into(),
        audience: "shop-api".into(),
        algorithm: JwtAlgorithm::HS256,
        keys: vec![JwtKey::shared_secret("shop-1", secret)],
        signing_kid: Some("shop-1".into()),
        leeway: Duration::from_secs(30),
        access_token_lifetime: Duration::from_secs(15 * 60),
    })?)
}

fn throttle(limit: RateLimit) -> Result<Arc<dyn RateLimiter>, BoxError> {
    Ok(Arc::new(InMemoryRateLimiter::new(limit)?))
}
